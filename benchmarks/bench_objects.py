"""Object-based against pixel-based classification on a synthetic scene of parcels.

Run: ``PYTHONPATH=. python benchmarks/bench_objects.py [size] [seed]``. A synthetic cube (``size``
x ``size`` pixels, 25 dates, 10 bands, 30 % clouds masked to NaN, parcels of ~60 px,
Gaussian noise 0.05 in reflectance: ``[size] [seed] [noise]``) is classified
twice with a random forest (100 trees, one thread) trained on the parcels of one half of the
scene (the left half) and scored on every pixel of the other half against the truth class map:

- pixels: ``extract`` -> ``fit`` -> ``classify`` (the baseline);
- objects: ``segment`` -> ``object_features`` -> ``object_samples`` -> ``fit`` ->
  ``classify_objects``, for each segmentation method (defaults).

It also prints the boundary agreement of each segmentation with the truth (share of truth
boundary pixels within 1 px of a segment boundary, and the reverse), the object purity (share
of pixels in their object's majority class) and the wall time of each path relative to the pixel
path (threaded dask scheduler, 2 workers).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import dask  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

import eoai  # noqa: E402
import eoai.ml  # noqa: E402
from eoai.ml import objects  # noqa: E402


def boundaries(a: np.ndarray) -> np.ndarray:
    b = np.zeros(a.shape, bool)
    dx, dy = a[:, 1:] != a[:, :-1], a[1:] != a[:-1]
    b[:, 1:] |= dx
    b[:, :-1] |= dx
    b[1:] |= dy
    b[:-1] |= dy
    return b


def main(size: int = 128, seed: int = 3, noise: float = 0.05) -> None:
    warnings.simplefilter("ignore")
    dask.config.set(scheduler="threads", num_workers=2)
    cube, truth = eoai.datasets.synthetic_cube(
        shape=(size, size), freq="15D", breaks=False, seed=seed, parcel_size=60, noise=noise,
        chunks={"time": -1, "y": size // 2, "x": size // 2},
    )  # fmt: skip
    cube = cube.drop_vars("scl")
    tc = truth["class"].values
    parcels = eoai.datasets.parcels(truth)
    half = float(cube.x.values[size // 2])
    cx = parcels.geometry.centroid.x
    train = parcels[cx < half]
    test = np.zeros(tc.shape, bool)
    test[:, size // 2 :] = True
    tb = boundaries(tc)

    t0 = time.perf_counter()
    samples = cube.eoai.extract(train, label="class", min_samples=1)
    model = eoai.ml.fit(samples, n_estimators=100, threads=1)
    pix = cube.eoai.classify(model, confidence=False, uncertainty=None)["class"].values
    t_pix = time.perf_counter() - t0
    acc_pix = float((pix[test] == tc[test]).mean())
    print(f"{size} x {size} px, {cube.sizes['time']} dates, {len(parcels)} parcels")
    print(
        "| path | overall accuracy (right half) | boundary recall | boundary precision | purity | objects | time / pixel path |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| pixels (rf) | {acc_pix:.3f} | | | | | 1.00 ({t_pix:.1f} s) |")
    for method in objects.METHODS:
        for time_first in (False, True):
            t0 = time.perf_counter()
            seg = cube.eoai.segment(method=method, time_first=time_first).persist()
            feats = cube.eoai.object_features(seg)
            table = objects.object_samples(feats, seg, train)
            omodel = eoai.ml.fit(table, n_estimators=100, threads=1)
            _, maps = objects.classify_objects(feats, seg, omodel, polygons=False)
            cls = maps["class"].values
            t_obj = time.perf_counter() - t0
            s = seg.values
            sb = boundaries(s)
            recall = (ndimage.binary_dilation(sb) & tb).sum() / tb.sum()
            precision = (ndimage.binary_dilation(tb) & sb).sum() / sb.sum()
            pair = s.ravel().astype(np.int64) * (tc.max() + 1) + tc.ravel()
            _, counts = np.unique(pair, return_counts=True)
            owners = np.unique(pair) // (tc.max() + 1)
            pur = sum(counts[owners == k].max() for k in np.unique(owners))
            acc = float((cls[test] == tc[test]).mean())
            name = f"{method}{', time_first' if time_first else ''}"
            print(
                f"| objects: {name} | {acc:.3f} | {recall:.3f} | {precision:.3f} | "
                f"{pur / s.size:.3f} | {int(s.max())} | {t_obj / t_pix:.2f} ({t_obj:.1f} s) |"
            )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*[int(a) for a in args[:2]], *[float(a) for a in args[2:3]])
