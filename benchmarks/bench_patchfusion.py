"""Benchmark of the M3Fusion patch branch (``eoai.ml.fit(..., "m3fusion")``, issue #15).

On the synthetic scene of :mod:`eoai.datasets.fusion_patches` (four classes = early / late NDVI
peak x rows / no rows in a 2.5 m panchromatic image; each property alone tells two pairs of
classes apart, so a model reading one source is at about 0.5): train on the parcels of one scene
(``--size`` px square at 10 m, parcels of 4 x 4 px, ``--per-parcel`` pixels each), classify a
second scene (another seed) with :func:`eoai.ml.classify` on the stacked tree and score every
pixel against its truth:

- ``m3fusion``: L-TAE on the series + CNN on the ``--patch`` x ``--patch`` fine patch, auxiliary
  heads (aux 0.5); the same with ``aux_weight=0``;
- its branches alone, read from the same network's auxiliary heads (patch head, series head);
- ``fusion`` (L-TAE, the series only);
- ``multireso`` (MultiResoLCC): CNNs on the fine patch and on a 3 x 3 patch of a one-date 10 m
  multispectral image (``red``, ``nir`` on day 120), no series;
- a random forest (200 trees) on the series + the raw patch pixels, and on the patch pixels only.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_patchfusion.py [--seeds 3]`` (one torch
thread).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import eoai
from eoai.datasets.fusion_patches import fusion_patches


def _scene(size: int, seed: int):
    sources, truth, labels = fusion_patches(shape=(size, size), parcel=4, seed=seed, ms=True)
    return eoai.stack_sources(sources, fine="vhr", static=["ms"]), truth, labels


def _score(out, truth) -> float:
    return float((out["class"].values == truth["class"].values).mean())


def _aux_scores(model, tree, truth) -> list[float]:
    """OA of each auxiliary head (series branches..., patch) of a PatchFusionModel on a scene."""
    m = model.for_cube(tree)
    samples_all = _all_pixels(tree, m.patches["vhr"])
    X = samples_all[m.features].to_numpy("float32")
    x = m._tensor(X)
    days = torch.from_numpy(m.days)
    with torch.no_grad():
        _, aux = m.net.eval()(x, days, aux=True)
    codes = np.asarray(m.classes)
    t = truth["class"].values.reshape(-1)
    return [float((codes[a.argmax(1).numpy()] == t).mean()) for a in aux]


def _all_pixels(tree, patch):
    """Every pixel of the tree as a sample row (extract under one polygon over the scene)."""
    import geopandas as gpd
    from shapely.geometry import box

    gb = tree.to_dataset().odc.geobox
    b = gb.boundingbox
    gdf = gpd.GeoDataFrame({"class": [0]}, geometry=[box(b.left, b.bottom, b.right, b.top)],
                           crs=str(gb.crs))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = eoai.ml.extract(tree, gdf, label="class", patch={"vhr": patch}, min_samples=1)
    # extract gives raster order (rows, then columns)
    return df


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--per-parcel", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    rows: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, oa: float, secs: float) -> None:
        rows.setdefault(name, []).append((oa, secs))
        print(f"  {name:42s} OA {oa:.3f}  {secs:6.1f} s", flush=True)

    for seed in range(args.seeds):
        tree, _, labels = _scene(args.size, 100 + seed)
        test, truth, _ = _scene(args.size, 200 + seed)
        s = eoai.ml.extract(tree, labels, label="class", patch={"vhr": args.patch, "ms": 3},
                            max_per_polygon=args.per_parcel, seed=seed, min_samples=1)  # fmt: skip
        series = [c for c in s.columns if c.startswith("s2.")]
        patchc = [c for c in s.columns if c.startswith("vhr.")]
        msc = [c for c in s.columns if c.startswith("ms.") and "[" in c]
        print(f"seed {seed}: {len(s)} samples, {len(series)} series + {len(patchc)} patch features")
        for aux in (0.5, 0.0):
            t0 = time.perf_counter()
            m = eoai.ml.fit(s, "m3fusion", features=series + patchc, epochs=args.epochs,
                            seed=seed, aux_weight=aux, progress=False)  # fmt: skip
            out = eoai.ml.classify(test, m)
            add(
                f"m3fusion (series + patch), aux {aux}",
                _score(out, truth),
                time.perf_counter() - t0,
            )
            if aux:
                heads = _aux_scores(m, test, truth)
                add("  its series head alone", heads[0], 0.0)
                add("  its patch head alone", heads[-1], 0.0)
        t0 = time.perf_counter()
        m = eoai.ml.fit(s, "multireso", features=patchc + msc, epochs=args.epochs, seed=seed,
                        progress=False)  # fmt: skip
        add("multireso (pan 8 x 8 + ms 3 x 3 patches)", _score(eoai.ml.classify(test, m), truth),
            time.perf_counter() - t0)  # fmt: skip
        t0 = time.perf_counter()
        m = eoai.ml.fit(s[[*series, "label", "group"]], "fusion", features=series,
                        epochs=args.epochs, seed=seed, progress=False)  # fmt: skip
        add("fusion (L-TAE, series only)", _score(eoai.ml.classify(test, m), truth),
            time.perf_counter() - t0)  # fmt: skip
        allpix = _all_pixels(test, args.patch)
        t = truth["class"].values.reshape(-1)
        for name, cols in (("forest, series + patch pixels", series + patchc),
                           ("forest, patch pixels only", patchc)):  # fmt: skip
            t0 = time.perf_counter()
            rf = eoai.ml.fit(s, "rf", features=cols, n_estimators=200, seed=seed, threads=1)
            pred = rf.predict(allpix[cols].to_numpy("float32"))
            add(name, float((pred == t).mean()), time.perf_counter() - t0)
    print("\n| model | OA (mean ± sd over seeds) | seconds |\n|---|---|---|")
    for name, v in rows.items():
        oa = np.array([a for a, _ in v])
        print(
            f"| {name.strip()} | {oa.mean():.3f} ± {oa.std():.3f} | {np.mean([b for _, b in v]):.0f} |"
        )


if __name__ == "__main__":
    main()
