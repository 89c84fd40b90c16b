"""Benchmark of eoai.ml regression and of spatial cross-validation.

``fuel`` (default): the Presto fuel-moisture series (2313 x 3 months x 18 channels, live fuel
moisture in %, the authors' split by site: 1578 train / 735 test), raw 54 features. RMSE, MAE,
bias and R² on the test split of random forests (the scikit-learn reference: 300 trees,
``max_features=1.0``, RMSE 25.20), of a forest with ``max_features=1/3`` (Breiman's regression
default), extra trees and gradient boosting, against the simplest baseline (the training mean);
coverage and width of the forest's 90 % band of per-tree predictions; fit seconds. Also the algae
bloom severity (1122 x 12 x 18, 216 features; reference raw forest RMSE 1.32) for the same forest
variants, so that the default ``max_features`` is chosen on two real sets.

``folds``: how much the cross-validated scores depend on the folds, on

- the eo-learn Slovenia patch (68 NDVI dates, clouds NaN, 88 LULC polygons, max 300 px per
  polygon, 100 trees, 5 folds): overall accuracy and kappa with pixel-random folds, folds grouped
  by polygon, by 200 m spatial blocks and by 10 k-means clusters of polygons;
- a synthetic cube (eoai.datasets, 96 x 96 px, 10 bands, 30 % clouds): classes (OA) and the
  known mean-NDVI field (RMSE) with the same four kinds of folds.

``unet``: the U-Net regressor (``fit_segmentation`` on a continuous target raster, issue #13)
against a per-pixel random forest (``eoai.ml.fit(..., target=)``) on a synthetic cube (eoai.datasets,
128 x 128 px, 13 dates x red / nir / swir16, no clouds) with two known fields, the target known
on the left 85 columns and scored on the right 43 (never trained on): a *neighbourhood* field (the
9 x 9 px mean of the pixel's mean NIR, as canopy height depends on the stand around a pixel) and a
*per-pixel* field (a linear function of the pixel's own mean NIR and red). Both models are mapped
with ``eoai.ml.predict`` on 64 x 64 px chunks.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_regression.py [fuel|folds|unet] [--threads N]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PRESTO = ROOT / "presto" / "data"
SLOVENIA = ROOT / "eolearn_slovenia"
BANDS = ["vv", "vh", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b8a", "b9", "b11", "b12",
         "temperature", "precipitation", "elevation", "slope", "ndvi"]  # fmt: skip
NAMES = {1: "cultivated land", 2: "forest", 3: "grassland", 4: "shrubland", 8: "artificial surface"}


def presto_samples(name: str, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    """A Presto set as a sample table: ``<band>_<date>`` features, ``target``, site groups."""
    d = PRESTO / name / "npy"
    x = np.load(d / "s1_s2_era5_srtm.npy").astype("float32")
    n, t, c = x.shape
    dates = pd.date_range("2000-01-01", periods=t, freq="MS").strftime("%Y-%m-%d")
    df = pd.DataFrame(x.reshape(n, t * c), columns=[f"{b}_{dd}" for dd in dates for b in BANDS])
    df[target] = np.load(d / "target.npy").astype("float64")
    return df, np.load(d / "is_test.npy").astype(bool)


def fuel(args: argparse.Namespace) -> None:
    import eoai.ml

    n = args.threads
    sets = [("fuel_moisture", "lfmc", "%", 25.20), ("algae_blooms", "severity", "", 1.32)]
    runs = {
        "rf 300 trees, max_features=1.0 (reference)": (
            "rf",
            dict(n_estimators=300, max_features=1.0),
        ),
        "rf 300 trees, max_features=1/3": ("rf", dict(n_estimators=300, max_features=1 / 3)),
        "rf 300 trees, max_features=sqrt": ("rf", dict(n_estimators=300, max_features="sqrt")),
        "extra trees 300, max_features=1.0": ("et", dict(n_estimators=300, max_features=1.0)),
        "gbt (HistGradientBoosting defaults)": ("gbt", {}),
    }
    for name, target, units, reference in sets:
        samples, is_test = presto_samples(name, target)
        train, test = samples[~is_test], samples[is_test]
        ref = test[target].to_numpy()
        base = eoai.ml.assess_regression(np.full(len(test), train[target].mean()), ref)
        print(f"\n{name}: {len(train)} train / {len(test)} test, {samples.shape[1] - 1} features; "
              f"reference RMSE {reference}; training mean -> RMSE {base.rmse:.2f}")  # fmt: skip
        for label, (model, kw) in runs.items():
            if name == "algae_blooms" and model in ("et",):
                continue
            t0 = time.perf_counter()
            # gbt: OpenMP threads; measured 10x slower with 2 threads than 1 on the loaded machine
            m = eoai.ml.fit(train, model, target=target, units=units, task="regression",
                            threads=1 if model == "gbt" else n, **kw)  # fmt: skip
            secs = time.perf_counter() - t0
            X = test[m.features].to_numpy("float32")
            a = eoai.ml.assess_regression(m.predict(X), ref)
            extra = ""
            if m.has_interval:
                _, lo, hi = m.predict_interval(X, 0.9)
                cover = np.mean((ref >= lo) & (ref <= hi))
                extra = f"; 90 % tree band: coverage {cover:.3f}, mean width {np.mean(hi - lo):.1f}"
            print(f"  {label}: RMSE {a.rmse:.2f} ({a.rmse / reference:.3f} x ref) MAE {a.mae:.2f} "
                  f"bias {a.bias:+.2f} R2 {a.r2:.3f}; fit {secs:.1f} s{extra}", flush=True)  # fmt: skip


SEEDS = [0]


def _cv_row(label, samples, folds, model_kw, target="label", **kw):
    """Cross-validate with each seed of SEEDS (fold assignment and forest); print mean and range."""
    import eoai.ml

    t0 = time.perf_counter()
    scores = []
    for seed in SEEDS:
        cv = eoai.ml.cross_validate(samples, "rf", k=5, target=target, seed=seed, **model_kw, **kw)
        scores.append((cv.overall_accuracy, cv.kappa) if target == "label" else (cv.rmse, cv.r2))
    secs = (time.perf_counter() - t0) / len(SEEDS)
    a, b = np.array(scores).T
    names = ("OA", "kappa") if target == "label" else ("RMSE", "R2")
    spread = f" [{a.min():.3f}-{a.max():.3f}]" if len(SEEDS) > 1 else ""
    score = f"{names[0]} {a.mean():.4f}{spread} {names[1]} {b.mean():.3f}"
    print(f"  {label:<34} {folds:<26} {score} ({secs:.0f} s per seed)", flush=True)


def _fold_kinds(samples, block_m: float, n_clusters: int):
    import eoai.ml

    return {
        "pixel-random": None,
        "grouped by polygon": "group",
        f"spatial blocks {block_m:g} m": eoai.ml.spatial_blocks(samples, block_m),
        f"{n_clusters} clusters of polygons": eoai.ml.spatial_clusters(samples, n_clusters),
    }


def folds(args: argparse.Namespace) -> None:
    n = args.threads
    if args.only != "synthetic":
        _slovenia_folds(n)
    if args.only != "slovenia":
        _synthetic_folds(n)


def _slovenia_folds(n: int) -> None:
    import geopandas as gpd
    import xarray as xr

    import eoai.ml  # noqa: F401  (the .eoai accessor)

    ds = xr.open_dataset(SLOVENIA / "eolearn_testpatch.nc")
    ndvi = ds["NDVI"].where(ds["CLM"] == 0).rename(time_all="time").rename("ndvi")
    ndvi = ndvi.chunk({"time": -1, "y": 64, "x": 64})
    labels = gpd.read_file(SLOVENIA / "LULC_polygons.gpkg")
    labels = labels[labels["LULC_ID"] > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = ndvi.eoai.extract(labels, label="LULC_ID", max_per_polygon=300)
    kinds = _fold_kinds(samples, 200, 10)
    print(f"Slovenia: {len(samples)} samples of {samples['group'].nunique()} polygons, "
          f"{len(samples.attrs['eoai:features'])} NDVI dates; "
          f"{kinds['spatial blocks 200 m'].nunique()} blocks of 200 m")  # fmt: skip
    for fold_name, group in kinds.items():
        _cv_row("rf 100 trees, classes", samples, fold_name,
                dict(n_estimators=100, threads=n), group=group)  # fmt: skip


def _synthetic_folds(n: int) -> None:
    import geopandas as gpd

    import eoai.datasets
    import eoai.ml  # noqa: F401

    cube, truth = eoai.datasets.synthetic_cube(
        shape=(96, 96), freq="15D", breaks=False, seed=5, parcel_size=80,
        chunks={"time": -1, "y": 48, "x": 48},
    )  # fmt: skip
    cube = cube.drop_vars("scl")
    import rasterio.features
    from shapely.geometry import shape

    gbox = cube.odc.geobox
    values = np.asarray(truth["class"].values, dtype="int32")
    shapes = list(rasterio.features.shapes(values, transform=gbox.affine, connectivity=4))
    parcels = gpd.GeoDataFrame(
        {"class": [int(v) for _, v in shapes]}, geometry=[shape(g) for g, _ in shapes],
        crs=gbox.crs.to_wkt(),
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = cube.eoai.extract(parcels, label="class", max_per_polygon=20)
    known = truth["ndvi"].mean("time").values
    col = np.floor((samples["x"] - gbox.affine.c) / gbox.affine.a).astype(int)
    row = np.floor((samples["y"] - gbox.affine.f) / gbox.affine.e).astype(int)
    samples["mean_ndvi"] = known[row, col]
    kinds = _fold_kinds(samples, 240, 10)
    print(f"synthetic: {len(samples)} samples of {samples['group'].nunique()} parcels, "
          f"{len(samples.attrs['eoai:features'])} features; "
          f"{kinds['spatial blocks 240 m'].nunique()} blocks of 240 m (24 px)")  # fmt: skip
    for fold_name, group in kinds.items():
        _cv_row("rf 50 trees, classes", samples, fold_name,
                dict(n_estimators=50, threads=n), group=group)  # fmt: skip
        _cv_row("rf 50 trees, mean NDVI", samples, fold_name,
                dict(n_estimators=50, threads=n), group=group, target="mean_ndvi")  # fmt: skip


def unet(args: argparse.Namespace) -> None:
    import torch
    from scipy.ndimage import uniform_filter

    import eoai.datasets
    import eoai.ml
    from eoai.ml.deep import fit_segmentation

    torch.set_num_threads(args.threads)
    cube, _ = eoai.datasets.synthetic_cube(
        shape=(128, 128), freq="30D", breaks=False, seed=7, parcel_size=40, cloud_fraction=0.0,
        bands=["red", "nir", "swir16"],
    )  # fmt: skip
    cube = cube.drop_vars("scl")
    nir, red = cube["nir"].mean("time"), cube["red"].mean("time")
    local = nir.copy(data=uniform_filter(nir.values, size=9, mode="reflect"))
    fields = {
        "neighbourhood (9 x 9 px mean of mean NIR) x 40 m": 40 * local,
        "per-pixel (30 x mean NIR - 10 x mean red + 5) m": 30 * nir - 10 * red + 5,
    }
    train_cols, n_px = 85, 6000
    lazy = cube.chunk({"time": -1, "y": 64, "x": 64})
    rng = np.random.default_rng(0)
    print(f"cube 128 x 128 px, {len(eoai.ml.features.feature_names(cube))} features; target on "
          f"x < {train_cols} ({128 * train_cols} px), scored on the other {128 * (128 - train_cols)}")  # fmt: skip
    for name, field in fields.items():
        field = field.astype("float32").rename("height").assign_attrs(units="m")
        target = field.where(field.x < field.x[train_cols])
        ref = field.values[:, train_cols:]
        print(f"\n{name}: std on the scored part {ref.std():.2f} m", flush=True)
        t0 = time.perf_counter()
        m = fit_segmentation(
            cube, target, patch=32, patches_per_epoch=64, epochs=args.epochs, batch_size=8,
            lr=3e-3, depth=3, base=16, seed=0, progress=False,
        )  # fmt: skip
        secs = time.perf_counter() - t0
        hist = m.metadata["history"]
        pred = eoai.ml.predict(lazy, m)["prediction"].values[:, train_cols:]
        a = eoai.ml.assess_regression(pred.ravel(), ref.ravel())
        print(f"  U-Net (depth 3, base 16, patch 32, {len(hist)} epochs): RMSE {a.rmse:.3f} "
              f"MAE {a.mae:.3f} bias {a.bias:+.3f} R2 {a.r2:.3f}; fit {secs:.0f} s", flush=True)  # fmt: skip
        # the forest: a random sample of the labelled pixels as a table
        feats = eoai.ml.features.feature_array(cube).transpose("y", "x", "feature")
        X = feats.values[:, :train_cols].reshape(-1, feats.sizes["feature"])
        y = field.values[:, :train_cols].ravel()
        pick = rng.choice(len(y), size=n_px, replace=False)
        table = pd.DataFrame(X[pick], columns=list(feats["feature"].values)).assign(height=y[pick])
        t0 = time.perf_counter()
        rf = eoai.ml.fit(table, "rf", target="height", units="m", threads=args.threads)
        secs = time.perf_counter() - t0
        pred = eoai.ml.predict(lazy, rf)["prediction"].values[:, train_cols:]
        b = eoai.ml.assess_regression(pred.ravel(), ref.ravel())
        print(f"  random forest (200 trees, {n_px} px): RMSE {b.rmse:.3f} MAE {b.mae:.3f} "
              f"bias {b.bias:+.3f} R2 {b.r2:.3f}; fit {secs:.0f} s; U-Net / forest RMSE "
              f"{a.rmse / b.rmse:.3f}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", nargs="?", default="fuel", choices=["fuel", "folds", "unet"])
    parser.add_argument("--epochs", type=int, default=40, help="unet: training epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=1, help="folds: seeds 0..N-1, mean and range")
    parser.add_argument("--only", choices=["slovenia", "synthetic"], help="folds: one data set")
    args = parser.parse_args()
    SEEDS[:] = list(range(args.seeds))
    import os

    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}, {os.cpu_count()} CPUs")  # fmt: skip
    {"fuel": fuel, "folds": folds, "unet": unet}[args.what](args)


if __name__ == "__main__":
    main()
