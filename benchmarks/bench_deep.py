"""Benchmark of eoai.ml.deep: speed of training and inference, lazy-path overhead, Slovenia accuracy.

``speed`` (default) prints, for TempCNN and L-TAE on a synthetic cube (10 bands x 25 dates):

1. training throughput (samples/s, one epoch = every training sample once) on the device;
2. inference pixels/s of a plain torch loop over the in-memory tensor (baseline: normalise, batches
   of ``model.batch_size``, ``torch.no_grad``, eval mode) and of the lazy path ``classify(cube, model)`` computed
   with dask over the same pixels, and the overhead of the lazy path (goal <= 15 %);
3. the same for the U-Net (``predict_proba_image`` tiled with its halo vs the network on the whole
   image), where the halo overlap is the expected cost.

``slovenia`` prints overall accuracy and kappa of the forest, TempCNN (linearly gap-filled NDVI, on
the acquisition dates and on a regular 10-day grid) and L-TAE (raw NDVI, clouds NaN, and gap-filled) on the eo-learn Slovenia patch with the random forest's protocol:
5-fold cross-validation grouped by polygon, at most 300 px per polygon, seed 0 (``--ensemble N``:
also TempCNN with ``ensemble=N``).

``algae`` prints overall accuracy and kappa of the random forest (300 trees), TempCNN and L-TAE on
the real Presto algae-bloom series (S1 + S2 + ERA5 + SRTM, 18 channels x 12 months, raw values),
bloom severity 1-5 as five classes, trained on the authors' train split (777) and tested on their
test split (345); each model is fitted with seeds 0 ... ``--seeds`` - 1 and the mean is shown.

``matogrosso`` prints overall accuracy and kappa of the random forest, TempCNN and L-TAE on the real
MODIS NDVI samples of Mato Grosso (``data/real/sits_matogrosso``: 2115 one-year series x 23
composites, 9 classes, no NaN, so every model reads the same values) with 5-fold cross-validation
grouped by location (a location sampled in several years is never in both sets), seed 0; the
networks with the training defaults before issue #16 (``OLD_DEFAULTS``) and now.

``cerrado`` prints the same for the real MODIS NDVI + EVI samples of ``data/real/sits_cerrado`` (746
one-year series x 23 composites x 2 bands, Cerrado vs Pasture, no NaN) with 5-fold cross-validation
grouped by location (83): the columns are date-major (``ndvi_d0, evi_d0, ndvi_d1, ...``), the
order in which the networks' band-major features differ from the table's.

Run: ``.venv/bin/python benchmarks/bench_deep.py [speed|slovenia|algae|matogrosso|cerrado] [--quick]
[--threads N] [--device cpu|cuda] [--seeds N] [--k K]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from eoai.ml.models.tempcnn import PAPER_WIDTHS

NAMES = {1: "cultivated land", 2: "forest", 3: "grassland", 4: "shrubland", 8: "artificial surface"}
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eolearn_slovenia"
ALGAE = DATA.parent / "presto" / "data" / "algae_blooms" / "npy"
MATOGROSSO = Path(__file__).resolve().parents[1] / "data" / "real" / "sits_matogrosso"
CERRADO = MATOGROSSO.parent / "sits_cerrado"
#: ``eoai.ml.deep.TRAINING_DEFAULTS`` before issue #16 (the "before" rows), plus the batch size
#: and TempCNN's widths (the paper's 64 filters and 256 dense units).
OLD_DEFAULTS = {
    "tempcnn": dict(epochs=40, val_fraction=0.2, date_dropout=0.0, noise=0.0, shift=0,
                    label_smoothing=0.0, average_last=0, batch_size=256, **PAPER_WIDTHS),
    "ltae": dict(epochs=40, val_fraction=0.0, date_dropout=0.2, noise=0.05, shift=1,
                 label_smoothing=0.1, average_last=10, batch_size=256),
}  # fmt: skip
#: The 18 channels of the Presto series, in order (S1 dB, S2 DN x 1e4, ERA5, SRTM, NDVI).
ALGAE_BANDS = ["vv", "vh", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b8a", "b9", "b11", "b12",
               "temperature", "precipitation", "elevation", "slope", "ndvi"]  # fmt: skip


def _timed(fn, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def speed(args: argparse.Namespace) -> None:
    import dask
    import torch

    import eoai.datasets
    import eoai.ml
    from eoai.ml.deep import fit_segmentation
    from eoai.ml.features import feature_array
    from eoai.timeseries.gapfill import gapfill

    side = 128 if args.quick else 256
    cube, truth = eoai.datasets.synthetic_cube(
        shape=(side, side), freq="15D", breaks=False, seed=3, parcel_size=120
    )
    cube = cube.drop_vars("scl")
    filled = gapfill(cube, "linear").compute()
    rng = np.random.default_rng(0)
    n_train = 4000 if args.quick else 20000
    iy, ix = rng.integers(0, side, n_train), rng.integers(0, side, n_train)
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, dask threads "
          f"{args.threads}, cube {side} x {side} px, 10 bands x {cube.sizes['time']} dates")  # fmt: skip
    for arch, src, kw in (
        ("tempcnn", filled, PAPER_WIDTHS),  # as in the README rows
        ("ltae", cube, dict(d_model=128, n_head=16, d_k=8, mlp=(128, 64))),
    ):
        _bench_pixel_model(arch, src, kw, truth, iy, ix, args)

    # U-Net: tiled with halo vs one pass over the whole image
    small = cube.isel(time=slice(0, 12))[["red", "nir", "swir16"]]
    small = gapfill(small, "linear").compute()
    seg = fit_segmentation(small, truth["class"], patch=64, patches_per_epoch=16, epochs=1,
                           depth=3, base=32, device=args.device, progress=False)  # fmt: skip
    feats = feature_array(small, seg.features).values

    def whole():
        return seg.predict_proba_image(feats)

    tiles = side // 2
    lazy = eoai.ml.classify(small.chunk({"time": -1, "y": tiles, "x": tiles}), seg,
                            confidence=False, uncertainty=None)["class"]  # fmt: skip

    def run_tiled():
        with dask.config.set(scheduler="threads", num_workers=args.threads):
            return lazy.compute()

    t_whole, t_tiled = _timed(whole, 2), _timed(run_tiled, 2)
    area = (tiles + 2 * seg.halo) ** 2 / tiles**2
    print(f"unet (depth 3, base 32, halo {seg.halo}, tiles {tiles} px): whole image "
          f"{side * side / t_whole:,.0f} px/s, tiled lazy {side * side / t_tiled:,.0f} px/s "
          f"(x{t_tiled / t_whole:.2f} time; the haloed tiles hold x{area:.2f} the pixels)")  # fmt: skip


def _bench_pixel_model(arch, src, kw, truth, iy, ix, args) -> None:
    import dask
    import pandas as pd
    import torch
    import xarray as xr

    import eoai.ml
    from eoai.ml.deep import fit_network
    from eoai.ml.features import feature_array

    side = src.sizes["y"]
    feats = feature_array(src)
    X = feats.isel(y=xr.DataArray(iy, dims="s"), x=xr.DataArray(ix, dims="s")).values
    samples = pd.DataFrame(X, columns=list(feats.feature.values))
    samples["label"] = truth["class"].values[iy, ix]
    samples = samples[~np.isnan(X).all(1)]
    epochs = 2 if args.quick else 3
    t0 = time.perf_counter()
    model = fit_network(samples, arch, epochs=epochs, val_fraction=0, device=args.device,
                        batch_size=256, progress=False, **kw)  # fmt: skip
    dt = time.perf_counter() - t0
    print(f"{arch}: training {len(samples) * epochs / dt:,.0f} samples/s "
          f"({len(samples)} samples x {epochs} epochs, {dt:.1f} s)")  # fmt: skip

    # baseline: the plain torch loop over the same in-memory tensor
    data = feature_array(src, model.features).values.reshape(-1, len(model.features))
    n_px = data.shape[0]
    net, dev = model.net, model._device()
    days = torch.from_numpy(model.days).to(dev) if model.uses_days else None
    valid = ~np.isnan(data).all(1) if model.allow_nan else ~np.isnan(data).any(1)
    bs = model.batch_size  # the same batches as the lazy path

    def plain():
        x = torch.from_numpy(np.ascontiguousarray(data[valid][:, model.layout.perm]))
        x = x.view(x.shape[0], len(model.layout.dates), len(model.bands))
        x = (x - torch.from_numpy(model.mean)) / torch.from_numpy(model.std)
        out = []
        with torch.no_grad():
            for k in range(0, x.shape[0], bs):
                xb = x[k : k + bs].to(dev)
                lg = net(xb, days) if days is not None else net(xb)
                out.append(torch.softmax(lg, 1).cpu())
        return torch.cat(out)

    chunked = src.chunk({"time": -1, "y": side // 2, "x": side // 2})
    lazy = eoai.ml.classify(chunked, model, confidence=False, uncertainty=None)["class"]

    def run_lazy():
        with dask.config.set(scheduler="threads", num_workers=args.threads):
            return lazy.compute()

    ref = np.asarray(model.codes)[plain().argmax(1).numpy()]
    agree = (ref == run_lazy().values.ravel()[valid]).mean()
    t_plain, t_lazy = _timed(plain), _timed(run_lazy)
    print(f"  inference plain torch loop {n_px / t_plain:,.0f} px/s, lazy classify "
          f"{n_px / t_lazy:,.0f} px/s: overhead {100 * (t_lazy / t_plain - 1):+.1f} % "
          f"(goal <= 15 %), class agreement {agree:.4f}")  # fmt: skip


def slovenia(args: argparse.Namespace) -> None:
    import geopandas as gpd
    import torch
    import xarray as xr

    import eoai.ml
    from eoai.timeseries.gapfill import gapfill

    ds = xr.open_dataset(DATA / "eolearn_testpatch.nc")
    ndvi = ds["NDVI"].where(ds["CLM"] == 0).rename(time_all="time").rename("ndvi")
    ndvi = ndvi.chunk({"time": -1, "y": 64, "x": 64})
    labels = gpd.read_file(DATA / "LULC_polygons.gpkg")
    labels = labels[labels["LULC_ID"] > 0]
    filled = gapfill(ndvi, "linear")
    grid = gapfill(ndvi, "linear", freq="10D")  # TempCNN reads dates by position
    rf = dict(n_estimators=100, threads=args.threads)
    runs = {
        "rf (raw, clouds NaN)": (ndvi, "rf", rf),
        "rf (linear gap-filled)": (filled, "rf", rf),
        "rf (linear gap-filled, 10-day grid)": (grid, "rf", rf),
        "tempcnn (linear gap-filled)": (filled, "tempcnn", {}),  # the defaults of fit_network
        "tempcnn (linear gap-filled, 10-day grid)": (grid, "tempcnn", {}),
        "ltae (raw, clouds NaN)": (ndvi, "ltae", {}),  # recipe "ltae" (the table has NaN)
        "ltae (linear gap-filled)": (filled, "ltae", {}),  # recipe "ltae" (dense dates)
        "ltae (linear gap-filled, 10-day grid)": (grid, "ltae", {}),
    }
    if args.ensemble > 1:
        runs[f"tempcnn (linear gap-filled), ensemble={args.ensemble}"] = (
            filled, "tempcnn", {"ensemble": args.ensemble}
        )  # fmt: skip
    if args.before:
        runs["tempcnn (linear gap-filled), before"] = (filled, "tempcnn", OLD_DEFAULTS["tempcnn"])
        runs["tempcnn (linear gap-filled, 10-day grid), paper widths"] = (
            grid, "tempcnn", PAPER_WIDTHS
        )  # fmt: skip
        runs["ltae (raw, clouds NaN), before"] = (ndvi, "ltae", OLD_DEFAULTS["ltae"])
    if args.quick:
        runs = {
            k: (s, m, {**kw, "epochs": 5} if m != "rf" else kw) for k, (s, m, kw) in runs.items()
        }
    if args.only:  # rows whose name contains one of the comma-separated strings
        runs = {k: v for k, v in runs.items() if any(o in k for o in args.only.split(","))}
    print(f"torch threads {torch.get_num_threads()}")
    for name, (src, model, kw) in runs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples = src.eoai.extract(labels, label="LULC_ID", max_per_polygon=300)
        if model != "rf":
            kw = {**kw, "progress": False, "device": args.device}
        for seed in args.cv_seeds:  # seed= draws the folds and seeds the model
            t0 = time.perf_counter()
            cv = eoai.ml.cross_validate(
                samples, model, k=args.k, class_names=NAMES, seed=seed, **kw
            )
            f1 = " ".join(f"{NAMES[c]}={v:.2f}" for c, v in cv.f1.items())
            folds = " ".join(f"{v:.3f}" for v in cv.extra["folds"]["overall_accuracy"])
            print(f"{name} [cv seed {seed}]: OA {cv.overall_accuracy:.3f} kappa {cv.kappa:.3f} "
                  f"F1 {f1} folds {folds} ({len(samples)} samples, "
                  f"{time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip


def algae_samples():
    """The Presto algae-bloom series as a sample table and the authors' test mask.

    1122 series x 12 monthly steps x 18 channels, raw units; ``label`` = bloom severity 1-5 (five
    ordinal classes), one group per series; features ``<band>_<date>`` on a nominal monthly grid
    (2000-01 ... 2000-12: the steps are consecutive months, whose calendar month varies by sample).
    """
    import pandas as pd

    x = np.load(ALGAE / "s1_s2_era5_srtm.npy").astype("float32")  # (n, 12, 18)
    n, t, c = x.shape
    dates = pd.date_range("2000-01-01", periods=t, freq="MS").strftime("%Y-%m-%d")
    cols = [f"{b}_{d}" for d in dates for b in ALGAE_BANDS]  # time-major, like x.reshape(n, -1)
    samples = pd.DataFrame(x.reshape(n, t * c), columns=cols)
    samples["label"] = np.load(ALGAE / "target.npy").astype("int64")
    samples["group"] = np.arange(n)
    return samples, np.load(ALGAE / "is_test.npy").astype(bool)


def algae(args: argparse.Namespace) -> None:
    import torch
    from sklearn.metrics import accuracy_score, cohen_kappa_score

    import eoai.ml

    samples, is_test = algae_samples()
    train, test = samples[~is_test].reset_index(drop=True), samples[is_test]
    runs = {
        "rf (raw features)": ("rf", dict(n_estimators=300, threads=args.threads)),
        "tempcnn": ("tempcnn", {}),
        "ltae": ("ltae", {}),
        "ltae (noise=0.2)": ("ltae", dict(noise=0.2)),
    }
    if args.quick:
        runs = {k: (m, {**kw, "epochs": 5} if m != "rf" else kw) for k, (m, kw) in runs.items()}
    print(f"torch threads {torch.get_num_threads()}; algae blooms: {len(train)} train / "
          f"{len(test)} test series (authors' split), 18 channels x 12 months")  # fmt: skip
    for name, (model, kw) in runs.items():
        if model != "rf":
            kw = {**kw, "progress": False, "device": args.device}
        oa, kappa, secs = [], [], []
        for seed in range(args.seeds):  # one test split of 345 series: seeds show the spread
            t0 = time.perf_counter()
            fitted = eoai.ml.fit(train, model, seed=seed, **kw)
            secs.append(time.perf_counter() - t0)
            pred = fitted.predict(test[fitted.features].to_numpy("float32"))
            ref = test["label"].to_numpy()
            oa.append(accuracy_score(ref, pred))
            kappa.append(cohen_kappa_score(ref, pred))
        print(f"{name}: OA {np.mean(oa):.3f} kappa {np.mean(kappa):.3f} (mean of seeds "
              f"0-{args.seeds - 1}; OA {' '.join(f'{v:.3f}' for v in oa)}; fit "
              f"{np.mean(secs):.0f} s each)", flush=True)  # fmt: skip
    ref = test["label"].to_numpy()
    major = np.bincount(train["label"]).argmax()
    print(f"(predicting the commonest training class, {major}, everywhere: OA "
          f"{np.mean(ref == major):.3f})")  # fmt: skip


def matogrosso_samples():
    """The sits Mato Grosso samples as a sample table (one group per location).

    2115 one-year MODIS NDVI series (14 September - 29 August, 23 16-day composites) of 9 classes;
    the years differ between samples, so the features are named on the nominal grid of 2000/01
    (the composite dates of a year repeat, and the networks read the position in the season).
    """
    import pandas as pd

    d = np.load(MATOGROSSO / "sits_matogrosso_ndvi.npz")
    x = d["sample_ndvi"].astype("float32")
    dates = pd.date_range("2000-09-14", periods=x.shape[1], freq="16D").strftime("%Y-%m-%d")
    samples = pd.DataFrame(x, columns=[f"ndvi_{t}" for t in dates])
    samples["label"] = d["sample_label"].astype("int64")
    samples["group"] = np.unique(d["sample_lonlat"], axis=0, return_inverse=True)[1].ravel()
    names = {i: str(v) for i, v in enumerate(d["labels"])}
    return samples, names


def cerrado_samples():
    """The sits Cerrado / Pasture samples as a sample table (one group per location).

    ``series.npz`` joins the 746 one-year samples per location (83 x 15 crop years x 23 16-day
    composites from 13/14 September); each year with data is one sample, its features named on the
    nominal grid of 2000/01, date-major (``ndvi_<d0>, evi_<d0>, ndvi_<d1>, ...``).
    """
    import pandas as pd

    with np.load(CERRADO / "series.npz") as z:
        x = np.stack([z["ndvi"], z["evi"]], -1).astype("float32")  # (83, 345, 2)
        label = z["label"]
    n_loc, n_t = x.shape[:2]
    x = x.reshape(n_loc, n_t // 23, 23, 2)
    has = ~np.isnan(x).all(axis=(2, 3))  # (location, year): a sample
    loc = np.broadcast_to(np.arange(n_loc)[:, None], has.shape)[has]
    dates = pd.date_range("2000-09-13", periods=23, freq="16D").strftime("%Y-%m-%d")
    cols = [f"{b}_{d}" for d in dates for b in ("ndvi", "evi")]
    samples = pd.DataFrame(x[has].reshape(-1, 46), columns=cols)
    names = {i: str(v) for i, v in enumerate(np.unique(label))}
    samples["label"] = np.searchsorted(np.unique(label), label[loc]).astype("int64")
    samples["group"] = loc
    return samples, names


def matogrosso(args: argparse.Namespace) -> None:
    samples, names = matogrosso_samples()
    _complete_series_cv(samples, names, "Mato Grosso", args)


def cerrado(args: argparse.Namespace) -> None:
    samples, names = cerrado_samples()
    _complete_series_cv(samples, names, "Cerrado", args)


def _complete_series_cv(samples, names, title: str, args: argparse.Namespace) -> None:
    import torch

    import eoai.ml

    runs = {
        "rf": ("rf", dict(n_estimators=100, threads=args.threads)),
        "tempcnn (before)": ("tempcnn", OLD_DEFAULTS["tempcnn"]),
        "tempcnn": ("tempcnn", {}),
        "ltae (before)": ("ltae", OLD_DEFAULTS["ltae"]),
        "ltae": ("ltae", {}),
    }
    if args.only:
        runs = {k: v for k, v in runs.items() if k in args.only.split(",")}
    if args.quick:
        runs = {k: (m, {**kw, "epochs": 5} if m != "rf" else kw) for k, (m, kw) in runs.items()}
    n_t = len({c.rsplit("_", 1)[1] for c in samples.columns if c not in ("label", "group")})
    print(f"torch threads {torch.get_num_threads()}; {title}: {len(samples)} series x {n_t} "
          f"dates, {samples['group'].nunique()} locations, {args.k}-fold CV grouped by location")  # fmt: skip
    for name, (model, kw) in runs.items():
        if model != "rf":
            kw = {**kw, "progress": False, "device": args.device}
        t0, c0 = time.perf_counter(), time.process_time()
        cv = eoai.ml.cross_validate(samples, model, k=args.k, class_names=names, **kw)
        folds = " ".join(f"{v:.3f}" for v in cv.extra["folds"]["overall_accuracy"])
        print(f"{name}: OA {cv.overall_accuracy:.3f} kappa {cv.kappa:.3f} (folds {folds}; "
              f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU)",
              flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "what",
        nargs="?",
        default="speed",
        choices=["speed", "slovenia", "algae", "matogrosso", "cerrado"],
    )
    parser.add_argument("--k", type=int, default=5, help="slovenia, matogrosso, cerrado: CV folds")
    parser.add_argument("--before", action="store_true", help="slovenia: also the old defaults")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--only", default="", help="comma-separated rows (slovenia: substrings of the row names)"
    )
    parser.add_argument("--threads", type=int, default=2, help="dask threads")
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, default=3, help="algae: seeds averaged")
    parser.add_argument("--ensemble", type=int, default=1, help="slovenia: + a TempCNN ensemble")
    parser.add_argument(
        "--cv-seeds", type=int, nargs="+", default=[0], help="slovenia: repeated CV, one per seed"
    )
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    modes = {
        "speed": speed,
        "slovenia": slovenia,
        "algae": algae,
        "matogrosso": matogrosso,
        "cerrado": cerrado,
    }
    modes[args.what](args)


if __name__ == "__main__":
    main()
