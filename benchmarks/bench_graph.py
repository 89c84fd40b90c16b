"""Benchmark: a large model enters the dask graph of ``classify`` once, not once per chunk.

Prints:

1. the pickled size of the class-map graph of ``classify`` for 4 and 64 chunks with a ~5 MB forest:
   the whole graph (``cloudpickle.dumps(dict(graph))``, pickle's memo stores a shared object once)
   and the sum of the tasks pickled one by one (what the scheduler ships to the workers, one task at
   a time), with the model inside each task (before) or as one key of its own (after);
2. a random forest of >= 150 MB (2 deep trees, 64 classes) on a lazily generated 1024 x 1024 cube of
   4 features in 16 chunks: seconds of the threaded scheduler (2 threads) and of
   ``LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="1.5GiB")`` (scikit-learn imported
   on the workers before timing, as on a warm cluster), the warnings
   ("Sending large graph ...") and whether both class maps are equal; a crash (``KilledWorker``)
   is printed, not raised.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_graph.py [--skip-cluster]``
(``PYTHONPATH=<checkout>`` chooses which eoai is measured).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pickle
import time
import warnings

import numpy as np
import pandas as pd
import xarray as xr

DATES = ["2021-05-01", "2021-06-01"]
BANDS = ["a", "b"]
FEATURES = [f"{b}_{d}" for b in BANDS for d in DATES]


def make_cube(side: int, chunk: int, seed: int = 0) -> xr.Dataset:
    """Lazy (dask-generated) cube of 2 bands x 2 dates, uniform [0, 1): a small graph."""
    import dask.array as da

    rng = da.random.default_rng(seed)
    data = {
        b: (
            ("time", "y", "x"),
            rng.random((len(DATES), side, side), chunks=(-1, chunk, chunk), dtype="float32"),
        )
        for b in BANDS
    }
    coords = {
        "time": pd.to_datetime(DATES),
        "y": np.arange(side, dtype="float64")[::-1] * 10,
        "x": np.arange(side, dtype="float64") * 10,
    }
    return xr.Dataset(data, coords=coords)


def make_forest(n_samples: int, n_trees: int, n_classes: int, seed: int = 0):
    """An eoai random forest made big by deep trees: random labels grow one leaf per sample."""
    import eoai.ml

    rng = np.random.default_rng(seed)
    X = rng.random((n_samples, len(FEATURES)), dtype="float32")
    samples = pd.DataFrame(X, columns=FEATURES).assign(label=rng.integers(0, n_classes, n_samples))
    return eoai.ml.fit(samples, "rf", n_estimators=n_trees, threads=1)


def graph_sizes(result) -> tuple[float, float]:
    """(whole graph, sum of the tasks pickled one by one) in MB."""
    import cloudpickle

    graph = dict(result.__dask_graph__())
    whole = len(cloudpickle.dumps(graph))
    per_task = sum(len(cloudpickle.dumps(task)) for task in graph.values())
    return whole / 1e6, per_task / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-cluster", action="store_true", help="graph sizes only")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for the cluster run")
    args = parser.parse_args()
    import eoai
    import eoai.ml

    print(f"eoai from {eoai.__file__}")
    small = make_forest(20_000, 5, 4)
    print(f"graph sizes, forest {len(pickle.dumps(small)) / 1e6:.1f} MB:")
    for n_chunks in (4, 64):
        side = 32 * int(np.sqrt(n_chunks))
        out = eoai.ml.classify(make_cube(side, 32), small, threads=1)["class"]
        whole, per_task = graph_sizes(out)
        print(
            f"  {n_chunks:2d} chunks ({len(out.__dask_graph__())} tasks): whole graph "
            f"{whole:.2f} MB, tasks one by one {per_task:.2f} MB"
        )
    if args.skip_cluster:
        return

    t0 = time.perf_counter()
    model = make_forest(120_000, 2, 64)
    size = len(pickle.dumps(model))
    print(f"forest: {size / 1e6:.0f} MB pickled, trained in {time.perf_counter() - t0:.1f} s")
    cube = make_cube(1024, 256)
    t0 = time.perf_counter()
    expected = eoai.ml.classify(cube, model, threads=1)["class"].compute(
        scheduler="threads", num_workers=2
    )
    t_threads = time.perf_counter() - t0
    print(f"threaded scheduler (2 threads): {t_threads:.1f} s")

    import distributed

    logging.getLogger("distributed").setLevel(logging.ERROR)  # nanny restarts are printed below
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with (
                distributed.LocalCluster(
                    n_workers=2, threads_per_worker=1, memory_limit="1.5GiB", processes=True,
                    dashboard_address=None, host="127.0.0.1",
                ) as cluster,
                distributed.Client(cluster) as client,
            ):  # fmt: skip
                client.run(importlib.import_module, "sklearn.ensemble")  # as on a warm cluster
                t1 = time.perf_counter()
                lazy = eoai.ml.classify(cube, model, threads=1)["class"]
                t2 = time.perf_counter()
                got = client.compute(lazy).result(timeout=args.timeout)
                t3 = time.perf_counter()
                same = bool(np.array_equal(got.values, expected.values))
                print(
                    f"LocalCluster (2 x 1 thread, 1.5 GiB): {t3 - t1:.1f} s after start = "
                    f"classify() {t2 - t1:.1f} s (graph; scatter with a client) + compute "
                    f"{t3 - t2:.1f} s (cluster start and scikit-learn import on the workers "
                    f"{t1 - t0:.1f} s); same class map: {same}"
                )
        except Exception as err:  # noqa: BLE001 - the failure is the measurement
            print(
                f"LocalCluster failed after {time.perf_counter() - t0:.1f} s: "
                f"{type(err).__name__}: {str(err)[:200]}"
            )
    large = [str(w.message).splitlines()[0] for w in caught if "large graph" in str(w.message)]
    print(f"'Sending large graph' warnings: {large or 'none'}")


if __name__ == "__main__":
    main()
