"""Benchmark of multi-source fusion (``eoai.ml.fit(..., "fusion")``) and of the deep regression heads.

On the two real Sentinel-1 + Sentinel-2 series of ``../shared/data/presto`` (regression targets,
the authors' train / test split): fuel moisture (2313 x 3 monthly steps, live fuel moisture in %,
split by site, RMSE of a 300-tree random forest on all 54 raw features: 25.20) and algae blooms
(1122 x 12 monthly steps, bloom severity 1-5, reference forest RMSE 1.32). The features are named
``s1.vv_<date>``, ``s1.vh_<date>`` (Sentinel-1, dB) and ``s2.b2_<date>`` ... ``s2.b12_<date>``
(Sentinel-2, 11 bands) on the monthly dates, as ``feature_names`` names a Dataset with variables
``s1.vv`` ... ``s2.b12`` (ERA5, SRTM and NDVI are left out: fusion of the two satellites only).

For each set: RMSE / R² on the test split and the training seconds of

- the training mean (the simplest baseline);
- the random forest of eoai (200 trees, ``max_features="sqrt"``) on the same S1 + S2 features;
- L-TAE and TempCNN regression heads on Sentinel-2 only and on Sentinel-1 only;
- fusion: one L-TAE (or TempCNN) branch per source with auxiliary per-source losses
  (``aux_weight`` 0.5), and the same without the auxiliary losses (``aux_weight=0``).

``--synthetic``: a two-source cube of known truth where the classes are separable only by
combining the sources (``s1.vv`` on 5 dates, ``s2.red`` / ``s2.nir`` on 6 other dates of one time
axis; class = sign of the s1 slope XOR sign of the s2 red bump, so each source alone is at chance):
overall accuracy on a new cube of fusion (with and without the auxiliary losses) and of L-TAE on
each source alone, over seeds.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_fusion.py [--sets fuel algae] [--seeds 1]``
(one torch thread; about 30 minutes with 3 seeds on the loaded 2-core dev machine), or
``... bench_fusion.py --synthetic --seeds 3``.
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
CHANNELS = ["vv", "vh", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b8a", "b9", "b11", "b12"]
SOURCE = {c: ("s1" if c in ("vv", "vh") else "s2") for c in CHANNELS}
#: the other five channels of the files (``--covariates``): ERA5, SRTM (repeated monthly), NDVI
COVARIATES = {"temperature": "era5", "precipitation": "era5", "elevation": "srtm",
              "slope": "srtm", "ndvi": "s2"}  # fmt: skip
SETS = {
    "fuel": ("fuel_moisture", "lfmc", "%", 25.20),
    "algae": ("algae_blooms", "severity", "", 1.32),
}


def presto_samples(
    name: str, target: str, covariates: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """A Presto set as a sample table of ``<source>.<band>_<date>`` features, target and groups."""
    d = PRESTO / name / "npy"
    x = np.load(d / "s1_s2_era5_srtm.npy").astype("float32")
    sources = {**SOURCE, **COVARIATES}
    bands = list(sources) if covariates else CHANNELS
    x = x[:, :, : len(bands)]
    n, t, c = x.shape
    dates = pd.date_range("2000-01-01", periods=t, freq="MS").strftime("%Y-%m-%d")
    # band-major, the order of eoai.ml.features.feature_names
    cols = [f"{sources[b]}.{b}_{dd}" for b in bands for dd in dates]
    df = pd.DataFrame(x.transpose(0, 2, 1).reshape(n, c * t), columns=cols)
    df[target] = np.load(d / "target.npy").astype("float64")
    site = d / "site.npy"
    df["group"] = np.load(site, allow_pickle=False) if site.exists() else np.arange(n)
    df.attrs["eoai:features"] = cols
    return df, np.load(d / "is_test.npy").astype(bool)


def runs(small: dict) -> dict[str, tuple[str, str, dict]]:
    """label -> (model, which features, parameters)."""
    ltae, tcnn = small["ltae"], small["tempcnn"]
    return {
        "L-TAE, Sentinel-2 only": ("ltae", "s2", ltae),
        "L-TAE, Sentinel-1 only": ("ltae", "s1", ltae),
        "fusion (L-TAE branches, aux 0.5)": ("fusion", "all", {"encoder_kw": ltae}),
        "fusion (L-TAE branches, aux 0)": ("fusion", "all", {"encoder_kw": ltae, "aux_weight": 0}),
        "TempCNN, Sentinel-2 only": ("tempcnn", "s2", tcnn),
        "TempCNN, Sentinel-1 only": ("tempcnn", "s1", tcnn),
        "fusion (TempCNN branches, aux 0.5)": (
            "fusion", "all", {"encoder": "tempcnn", "encoder_kw": tcnn},
        ),
    }  # fmt: skip


def two_source_cube(size: int, seed: int) -> tuple[object, np.ndarray]:
    """(cube, classes) of the XOR design of ``--synthetic`` (noise 0.4 on signals of amplitude 1)."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    a, b = rng.choice([-1.0, 1.0], (2, size, size))
    d1 = pd.date_range("2021-01-03", periods=5, freq="12D")
    d2 = pd.date_range("2021-01-08", periods=6, freq="10D")
    time = d1.union(d2)
    i1, i2 = time.isin(d1), time.isin(d2)
    vv, red, nir = (np.full((len(time), size, size), np.nan, "float32") for _ in range(3))
    vv[i1] = a * np.linspace(-1, 1, 5)[:, None, None] + rng.normal(0, 0.4, (5, size, size))
    red[i2] = b * np.sin(np.linspace(0, np.pi, 6))[:, None, None] + rng.normal(
        0, 0.4, (6, size, size)
    )
    nir[i2] = rng.normal(0, 1, (6, size, size))
    coords = {"time": time, "y": np.arange(size, 0, -1.0), "x": np.arange(size, dtype=float)}
    dims = ("time", "y", "x")
    cube = xr.Dataset({"s1.vv": (dims, vv), "s2.red": (dims, red), "s2.nir": (dims, nir)}, coords)
    return cube, np.where(a == b, 1, 2)


def synthetic(seeds: int) -> None:
    import eoai.ml
    from eoai.ml.features import feature_array, feature_names

    small = dict(d_model=16, n_head=4, d_k=4, mlp=(16,), encoder=())
    train_kw = dict(epochs=20, batch_size=32, progress=False)
    cube, classes = two_source_cube(32, seed=100)
    names = feature_names(cube)
    samples = pd.DataFrame(
        feature_array(cube, names).values.reshape(-1, len(names)), columns=names
    ).assign(label=classes.ravel())  # fmt: skip
    test, truth = two_source_cube(32, seed=200)
    print(f"synthetic XOR: {len(samples)} training pixels, {truth.size} test pixels")
    runs = {
        "fusion (L-TAE branches, aux 0.5)": ("fusion", names, {"encoder_kw": small, "fused": (16,)}),
        "fusion (L-TAE branches, aux 0)": (
            "fusion", names, {"encoder_kw": small, "fused": (16,), "aux_weight": 0},
        ),
        "L-TAE, s1 only": ("ltae", [n for n in names if n.startswith("s1.")], small),
        "L-TAE, s2 only": ("ltae", [n for n in names if n.startswith("s2.")], small),
        "L-TAE on all bands (one encoder)": ("ltae", names, small),
    }  # fmt: skip
    for label, (model, feats, kw) in runs.items():
        acc, secs = [], []
        for seed in range(seeds):
            t0 = time.perf_counter()
            m = eoai.ml.fit(samples, model, features=feats, seed=seed, **kw, **train_kw)
            secs.append(time.perf_counter() - t0)
            acc.append(float((eoai.ml.classify(test, m)["class"].values == truth).mean()))
        print(f"| {label} | {np.mean(acc):.3f} ± {np.std(acc):.3f} | {np.mean(secs):.0f} |",
              flush=True)  # fmt: skip


def main() -> None:
    import torch

    import eoai.ml

    p = argparse.ArgumentParser()
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--epochs", type=int, default=None, help="default: each network's")
    p.add_argument("--only", default=None, help="run only the runs whose label contains this")
    p.add_argument("--synthetic", action="store_true")
    p.add_argument(
        "--covariates", action="store_true",
        help="all 18 channels: ERA5 and SRTM as two more sources (the README forest's inputs)",
    )  # fmt: skip
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.synthetic:
        synthetic(args.seeds)
        return
    small = {
        "ltae": dict(d_model=64, n_head=8, d_k=8, mlp=(64,), encoder=(32,)),
        "tempcnn": dict(hidden=32, dense=64),
    }
    extra = {} if args.epochs is None else {"epochs": args.epochs}
    for key in args.sets:
        name, target, units, reference = SETS[key]
        samples, is_test = presto_samples(name, target, args.covariates)
        train, test = samples[~is_test], samples[is_test]
        y = test[target].to_numpy()
        feats = samples.attrs["eoai:features"]
        base = eoai.ml.assess_regression(np.full(len(test), train[target].mean()), y)
        print(f"\n{name}: {len(train)} train / {len(test)} test, {len(feats)} features "
              f"({', '.join(sorted({f.partition('.')[0] for f in feats}))}); "
              f"forest on all 54 raw features (data README) RMSE {reference}; "
              f"training mean RMSE {base.rmse:.3f}", flush=True)  # fmt: skip
        t0 = time.perf_counter()
        rf = eoai.ml.fit(train, "rf", features=feats, target=target, threads=1)
        s = eoai.ml.assess_regression(rf.predict(test[feats].to_numpy("float32")), y)
        print(f"| rf 200 trees sqrt, these features | {s.rmse:.3f} | {s.r2:.3f} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)  # fmt: skip
        for label, (model, which, kw) in runs(small).items():
            if args.only and args.only not in label:
                continue
            cols = feats if which == "all" else [f for f in feats if f.startswith(which + ".")]
            rmse, r2, secs = [], [], []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = eoai.ml.fit(
                        train, model, features=cols, target=target, units=units,
                        seed=seed, progress=False, **kw, **extra,
                    )  # fmt: skip
                secs.append(time.perf_counter() - t0)
                s = eoai.ml.assess_regression(m.predict(test[m.features].to_numpy("float32")), y)
                rmse.append(s.rmse)
                r2.append(s.r2)
            sd = f" ± {np.std(rmse):.3f}" if len(rmse) > 1 else ""
            print(f"| {label} | {np.mean(rmse):.3f}{sd} | {np.mean(r2):.3f} | "
                  f"{np.mean(secs):.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
