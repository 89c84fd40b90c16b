"""Sentinel-1 speckle filters: quality on real patches and synthetic speckle, speed vs the boxcar.

Run from the project root: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_sentinel1.py [--size 1024]``.

1. Real patches (rico-hdl BigEarthNet-S1 x 3 and SSL4EO-S12 x 2 dates, VV and VH, sigma0 dB,
   loaded with eoai.load from a local STAC; ENL 4.4): per method, the median over the 10 bands of
   (a) the ENL gain in the most homogeneous 16 x 16 block (filtered ENL / raw ENL), (b) the mean
   power kept (filtered mean / raw mean over the patch) and (c) the ENL of the ratio image over the
   whole patch (a filter that removes only speckle leaves a ratio image of pure speckle, ENL ~ the
   looks of the data; one that also removes texture and edges lowers it).
2. Synthetic speckle (gamma, L = 4.4, step edges 0.05 / 0.5 / 0.01): ENL in a homogeneous area
   (theory: boxcar 7 x 7 ~ 49 L = 216) and RMSE in a 16-px band across the step edge.
3. Speed: one date ``size x size`` float32 in dB (chunks 512 x 512, synchronous scheduler so the
   load of the machine affects every method alike), Mpx/s and time relative to the boxcar.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dask
import numpy as np
import xarray as xr

import eoai
from eoai.sar import from_db, speckle_filter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))
from s1_local import bigearthnet_items, ssl4eo_items  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
METHODS = ("boxcar", "lee", "refined_lee", "enhanced_lee")
L = 4.4


def enl(a: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean() ** 2 / a.var())


def real_quality() -> None:
    items = bigearthnet_items(SHARED, "dB") + ssl4eo_items(SHARED, "dB")
    rows = {m: [] for m in METHODS}
    for item in items:
        cube = eoai.load([item], ["vv", "vh"])
        for band in ("vv", "vh"):
            p = from_db(cube[band]).isel(time=0).values
            blocks = [(enl(p[i : i + 16, j : j + 16]), i, j)
                      for i in range(0, p.shape[0] - 15, 16) for j in range(0, p.shape[1] - 15, 16)]  # fmt: skip
            raw, i, j = max(blocks)
            for m in METHODS:
                f = from_db(speckle_filter(cube[band], m)).isel(time=0).values
                ratio = p / f
                gain = enl(f[i : i + 16, j : j + 16]) / raw
                rows[m].append((gain, np.nanmean(f) / np.nanmean(p), enl(ratio)))
    print("real patches (10 bands): median ENL gain | mean kept | ratio-image ENL")
    for m, r in rows.items():
        g, mu, e = np.median(np.array(r), axis=0)
        print(f"  {m:13s} {g:6.2f} | {mu:6.3f} | {e:5.2f}")


def synthetic_quality() -> None:
    rng = np.random.default_rng(0)
    truth = np.full((256, 256), 0.05)
    truth[:, 128:] = 0.5
    truth[192:, :64] = 0.01
    x = xr.DataArray(truth * rng.gamma(L, 1 / L, truth.shape), dims=("y", "x"),
                     attrs={"units": "linear", "eoai:looks": L})  # fmt: skip
    homog, edge = (slice(8, 180), slice(8, 120)), (slice(None), slice(120, 136))
    print(
        f"synthetic (L = {L}): ENL homogeneous | edge RMSE (raw {np.sqrt(np.mean((x.values[edge] - truth[edge]) ** 2)):.4f})"
    )
    for m in METHODS:
        f = speckle_filter(x, m).values
        rmse = np.sqrt(np.mean((f[edge] - truth[edge]) ** 2))
        print(f"  {m:13s} {enl(f[homog]):7.1f} | {rmse:.4f}")
    cube = xr.DataArray(truth * rng.gamma(L, 1 / L, (8, *truth.shape)), dims=("time", "y", "x"),
                        attrs={"units": "linear"})  # fmt: skip
    q = speckle_filter(cube, "quegan").values
    print(
        f"  quegan T=8    {np.median([enl(q[t][homog]) for t in range(8)]):7.1f} (theory <= 8 L = {8 * L:.0f})"
    )


def speed(size: int) -> None:
    rng = np.random.default_rng(1)
    db = xr.DataArray(10 * np.log10(rng.gamma(L, 0.05 / L, (1, size, size))).astype(np.float32),
                      dims=("time", "y", "x"), attrs={"units": "dB", "eoai:looks": L})  # fmt: skip
    lazy = db.chunk({"y": 512, "x": 512})
    times = {}
    with dask.config.set(scheduler="synchronous"):
        for m in METHODS:
            best = np.inf
            for _ in range(2):
                t = time.perf_counter()
                speckle_filter(lazy, m).compute()
                best = min(best, time.perf_counter() - t)
            times[m] = best
    print(f"speed, {size} x {size} dB, chunks 512, synchronous: Mpx/s | time / boxcar")
    for m, t in times.items():
        print(f"  {m:13s} {size * size / t / 1e6:6.2f} | {t / times['boxcar']:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    real_quality()
    synthetic_quality()
    speed(args.size)


if __name__ == "__main__":
    main()
