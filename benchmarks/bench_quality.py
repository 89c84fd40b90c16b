"""Benchmark of sample quality (SOM flags) and Bayesian smoothing, on synthetic and real data.

``som``: recall and precision of :func:`eoai.ml.sample_quality`'s ``flagged`` set against labels
swapped on purpose (10 % of the samples, or of the polygons, to another class, seeds 0-2), against
the simplest baseline (flag samples at random: precision = the swap rate, recall = the share
flagged), for

- synthetic samples (``eoai.datasets.synthetic_cube`` 64 x 64 px, 25 dates x 10 bands, 30 %
  clouds, 20 px per parcel, as tests/ml/conftest.py builds them);
- the eo-learn Slovenia patch (68 NDVI dates with real clouds as NaN, the LULC polygons, at most
  100 px per polygon): its own labels are not all right and its classes overlap, so flags of the
  unswapped samples are counted too and the precision is a lower bound.

``smooth``: overall accuracy of the class map before / after :func:`eoai.ml.bayes_smooth` (and a
3 x 3 majority filter, the simplest baseline) on

- a noisy synthetic probability map with known truth (the parcels of a 96 x 96 scene,
  probabilities = softmax(one-hot + N(0, sigma)));
- Slovenia: a random forest (100 trees) trained on half of the polygons (seeds 0-2), the whole
  tile classified, accuracy on the pixels of the other polygons against the LULC raster.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_quality.py [som|smooth]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
SLOVENIA = ROOT.parent / "shared" / "data" / "eolearn_slovenia"


def swap(samples: pd.DataFrame, fraction: float, seed: int, by_group: bool):
    """``fraction`` of the samples (or polygons) relabelled to another class; the swapped mask."""
    rng = np.random.default_rng(seed)
    out = samples.copy()
    classes = np.unique(out["label"])
    if by_group:
        groups = out["group"].unique()
        picked = rng.choice(groups, max(1, int(fraction * len(groups))), replace=False)
        swapped = out["group"].isin(picked).to_numpy()
        first = out.groupby("group")["label"].first()
        new = {g: rng.choice(classes[classes != first[g]]) for g in picked}
        out.loc[swapped, "label"] = out.loc[swapped, "group"].map(new)
    else:
        swapped = np.zeros(len(out), bool)
        swapped[rng.choice(len(out), int(fraction * len(out)), replace=False)] = True
        out.loc[swapped, "label"] = [
            rng.choice(classes[classes != v]) for v in out.loc[swapped, "label"]
        ]
    return out, swapped


def synthetic_samples() -> pd.DataFrame:
    import eoai.datasets

    cube, truth = eoai.datasets.synthetic_cube(
        shape=(64, 64), freq="15D", breaks=False, seed=3, parcel_size=60,
        chunks={"time": -1, "y": 32, "x": 32},
    )  # fmt: skip
    cube = cube.drop_vars("scl")
    parcels = eoai.datasets.parcels(truth)
    return cube.eoai.extract(parcels, label="class", max_per_polygon=20)


def slovenia():
    import geopandas as gpd

    ds = xr.open_dataset(SLOVENIA / "eolearn_testpatch.nc")
    ndvi = ds["NDVI"].where(ds["CLM"] == 0).rename(time_all="time").rename("ndvi")
    labels = gpd.read_file(SLOVENIA / "LULC_polygons.gpkg")
    labels = labels[labels["LULC_ID"] > 0].reset_index(drop=True)
    return ds, ndvi, labels


def som(args: argparse.Namespace) -> None:
    from eoai.ml.quality import sample_quality

    _, ndvi, labels = slovenia()
    sets = {
        "synthetic (6 classes, 250 features)": synthetic_samples(),
        "Slovenia (5 classes, 68 NDVI dates)": ndvi.eoai.extract(
            labels, label="LULC_ID", max_per_polygon=100
        ),
    }
    print(
        "| samples | swapped | grid | recall | precision | random precision | flagged | seconds |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, samples in sets.items():
        clean = sample_quality(samples)
        table = clean.attrs["eoai:som"]
        print(
            f"| {name}, {len(samples)} | none (own labels) | {table['grid']} | | | | "
            f"{clean['flagged'].mean():.1%} ({int(clean['flagged'].sum())}); mean purity "
            f"{clean['neuron_purity'].mean():.2f} | |"
        )
        for by_group in (False, True):
            rec, prec, share, secs = [], [], [], []
            for seed in (0, 1, 2):
                noisy, swapped = swap(samples, 0.10, seed, by_group)
                t0 = time.perf_counter()
                q = sample_quality(noisy)
                secs.append(time.perf_counter() - t0)
                flagged = q["flagged"].to_numpy()
                rec.append((flagged & swapped).sum() / swapped.sum())
                prec.append((flagged & swapped).sum() / max(flagged.sum(), 1))
                share.append(swapped.mean())
            what = "10 % of polygons" if by_group else "10 % of pixels"
            print(
                f"| {name}, {len(samples)} | {what} | {table['grid']} | {np.mean(rec):.2f} | "
                f"{np.mean(prec):.2f} | {np.mean(share):.2f} | | {np.mean(secs):.2f} |"
            )


def smooth(args: argparse.Namespace) -> None:
    import rasterio.features

    import eoai.datasets
    import eoai.ml
    from eoai.ml.smoothing import bayes_smooth

    settings = [(5, 5.0), (7, 10.0), (9, 20.0)]  # the default, sits 1.x, sits' current default
    print(
        "| map | before | majority 3x3 | "
        + " | ".join(f"bayes w={w} s={s:g}" for w, s in settings)
        + " |"
    )
    print("|---|---:|---:|" + "---:|" * len(settings))
    _, truth = eoai.datasets.synthetic_cube(shape=(96, 96), freq="60D", breaks=False, seed=1)
    t = truth["class"].values
    codes = np.asarray(truth["class"].attrs["flag_values"])
    onehot = (t[None] == codes[:, None, None]).astype("float64")
    for sigma in (1.0, 1.5, 2.0):
        logit = onehot + np.random.default_rng(0).normal(0, sigma, onehot.shape)
        p = (np.exp(logit) / np.exp(logit).sum(0)).astype("float32")
        proba = xr.DataArray(
            p, dims=("class_name", "y", "x"), coords={"class_name": [str(c) for c in codes]}
        )
        cls = codes[p.argmax(0)].astype("uint8")
        maj = eoai.ml.majority_filter(xr.DataArray(cls, dims=("y", "x")), 3).values
        accs = [
            (bayes_smooth(proba, window=w, smoothness=s)["class"].values == t).mean()
            for w, s in settings
        ]
        print(
            f"| synthetic 96 x 96, noise {sigma:g} | {(cls == t).mean():.3f} | {(maj == t).mean():.3f} | "
            + " | ".join(f"{a:.3f}" for a in accs) + " | |"
        )  # fmt: skip

    ds, ndvi, labels = slovenia()
    samples = ndvi.eoai.extract(labels, label="LULC_ID", max_per_polygon=300)
    lulc = ds["LULC"].values
    gbox = ndvi.odc.geobox
    owner = rasterio.features.rasterize(
        [(g, i) for i, g in enumerate(labels.to_crs(gbox.crs.to_wkt()).geometry)],
        out_shape=gbox.shape, transform=gbox.affine, fill=-1, dtype="int32",
    )  # fmt: skip
    for seed in (0, 1, 2):
        rng = np.random.default_rng(seed)
        groups = samples["group"].unique()
        train = rng.choice(groups, len(groups) // 2, replace=False)
        model = eoai.ml.fit(samples[samples["group"].isin(train)], n_estimators=100, threads=2)
        out = ndvi.eoai.classify(model, probabilities=True).compute()
        test = (owner >= 0) & ~np.isin(owner, train) & (lulc > 0)
        before = (out["class"].values[test] == lulc[test]).mean()
        maj = eoai.ml.majority_filter(out["class"], 3).values
        t0 = time.perf_counter()
        accs = [
            (bayes_smooth(out, window=w, smoothness=s)["class"].values[test] == lulc[test]).mean()
            for w, s in settings
        ]
        secs = time.perf_counter() - t0
        print(
            f"| Slovenia held-out polygons, split {seed} ({int(test.sum())} px) | {before:.3f} | "
            f"{(maj[test] == lulc[test]).mean():.3f} | " + " | ".join(f"{a:.3f}" for a in accs)
            + f" | {secs / len(settings):.2f} |"
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="som", choices=["som", "smooth"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    {"som": som, "smooth": smooth}[args.what](args)


if __name__ == "__main__":
    main()
