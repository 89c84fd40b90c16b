"""Benchmark of eoai.ml.classify: lazy chunked prediction against model.predict_proba in memory.

Prints, for the same random forest and the same number of threads:

1. pixels/s of ``estimator.predict_proba`` on the whole feature array in memory (baseline, threads=N);
2. pixels/s of ``classify(cube)`` computed with dask (threads scheduler, N workers, forest threads=1)
   and with the synchronous scheduler (forest threads=N), and the ratio lazy / baseline (goal >= 0.9);
3. peak Python-traced memory (tracemalloc; numpy buffers included) while classifying lazily
   generated cubes 10x and 40x larger than one chunk, against the size of one chunk and of the
   cube (goal: bounded by a few chunks per thread, the same for both cubes, not growing with the cube).

Run: ``.venv/bin/python benchmarks/bench_classify.py [--quick] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr


def make_cube(
    ny: int, nx: int, n_dates: int, n_bands: int, chunk: int, seed: int = 0
) -> xr.Dataset:
    """Lazy cube of n_bands x n_dates with 4 classes in vertical stripes (class-dependent curves)."""
    t = pd.date_range("2021-01-01", periods=n_dates, freq="14D")
    doy = np.asarray(t.day_of_year, dtype="float32")
    rng = da.random.default_rng(seed)
    stripe = (da.arange(nx, chunks=chunk) * 4 // nx).astype("float32")  # class 0..3 by column
    data = {}
    for b in range(n_bands):
        phase = (stripe[None, None, :] + 1) * 40.0 + b * 5
        curve = 0.3 + 0.2 * da.sin((da.from_array(doy, chunks=-1)[:, None, None] - phase) / 58.0)
        noise = rng.normal(0, 0.05, (n_dates, ny, nx), chunks=(-1, chunk, chunk)).astype("float32")
        data[f"b{b}"] = (("time", "y", "x"), (curve + noise).astype("float32"))
    coords = {
        "time": t,
        "y": np.arange(ny, dtype="float64")[::-1] * 10,
        "x": np.arange(nx, dtype="float64") * 10,
    }
    return xr.Dataset(data, coords=coords)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    n = args.threads
    import eoai.ml
    from eoai.ml.features import feature_array

    side, chunk = (256, 128) if args.quick else (768, 256)
    n_dates, n_bands, trees = 20, 4, (50 if args.quick else 100)
    cube = make_cube(side, side, n_dates, n_bands, chunk)
    n_feat = n_dates * n_bands
    print(
        f"cube {side} x {side} px, {n_feat} features, chunks {chunk} x {chunk}, {trees} trees, {n} threads"
    )

    # training samples: a random pixel subset
    rng = np.random.default_rng(1)
    iy, ix = rng.integers(0, side, 3000), rng.integers(0, side, 3000)
    feats = feature_array(cube)
    X_train = feats.isel(y=xr.DataArray(iy, dims="s"), x=xr.DataArray(ix, dims="s")).values
    samples = pd.DataFrame(X_train, columns=list(feats.feature.values))
    samples["label"] = (ix * 4 // side).astype(int)
    model = eoai.ml.fit(samples, n_estimators=trees, threads=n, random_state=0)

    # 1. baseline: predict_proba on the in-memory array, n_jobs = n
    in_memory = cube.compute()
    X = feature_array(in_memory).values.reshape(-1, n_feat)
    model.estimator.set_params(threads=n)
    model.estimator.predict_proba(X[:1000])  # warm up
    t0 = time.perf_counter()
    base = model.estimator.predict_proba(X)
    t_base = time.perf_counter() - t0
    px = X.shape[0]
    print(
        f"baseline predict_proba (in memory, threads={n}): {px / t_base:,.0f} px/s ({t_base:.2f} s)"
    )

    # 2. lazy classify on the same (in-memory, chunked) data
    chunked = in_memory.chunk({"time": -1, "y": chunk, "x": chunk})
    results = {}
    for label, sched, kw, jobs in (
        (f"dask threads={n}, forest threads=1", "threads", {"num_workers": n}, 1),
        (f"dask synchronous, forest threads={n}", "synchronous", {}, n),
    ):
        out = eoai.ml.classify(chunked, model, confidence=False, uncertainty=None, threads=jobs)[
            "class"
        ]
        t0 = time.perf_counter()
        cls = out.compute(scheduler=sched, **kw)
        dt = time.perf_counter() - t0
        results[label] = dt
        agree = (cls.values.ravel() == model.estimator.classes_[base.argmax(1)]).mean()
        print(
            f"lazy classify ({label}): {px / dt:,.0f} px/s ({dt:.2f} s), ratio to baseline {t_base / dt:.2f}, agreement {agree:.4f}"
        )
    best = min(results.values())
    print(f"best lazy / baseline throughput ratio: {t_base / best:.2f} (goal >= 0.9)")

    # 3. peak memory: cubes of 10 and 40 chunks, generated lazily (never in memory as a whole)
    mchunk = 128
    chunk_mb = mchunk * mchunk * n_feat * 4 / 2**20
    for n_chunks in (10, 40):
        big = make_cube(mchunk * 2, mchunk * n_chunks // 2, n_dates, n_bands, mchunk, seed=3)
        cube_mb = big.nbytes / 2**20
        out = eoai.ml.classify(big, model, confidence=True, uncertainty="entropy", threads=1)
        tracemalloc.start()
        with dask.config.set(scheduler="threads", num_workers=n):
            res = out.compute()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"peak traced memory, cube of {n_chunks} chunks ({cube_mb:.0f} MB, chunk {chunk_mb:.1f} MB): "
            f"{peak / 2**20:.1f} MB = {peak / 2**20 / chunk_mb:.1f} chunks = {peak / big.nbytes:.2f} x cube "
            f"({int((res['class'] != 255).sum())} px classified)"
        )


if __name__ == "__main__":
    main()
