"""Deterministic eoai outputs for the write tests, built the same way in the test process and in
the subprocess that is killed mid-write (``python tests/io/write_cases.py <case> <path> ...``).

- ``classes(n)``: ``classify`` output (``class`` uint8 with names/colours, ``confidence``,
  ``uncertainty``) of a dask-backed ``n x n`` synthetic cube, 16 x 16 px chunks;
- ``pheno(n)``: ``phenology`` Dataset of the gap-filled NDVI of the same kind of cube;
- ``ndvi(n)``: the gap-filled NDVI cube ``(time, y, x)`` itself.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

import eoai
import eoai.ml
from eoai.ml.features import feature_array


def _cube(n: int, chunk: int = 16):
    return eoai.datasets.synthetic_cube(
        shape=(n, n), freq="15D", breaks=False, seed=3, parcel_size=60, bands=["red", "nir"],
        chunks={"time": -1, "y": chunk, "x": chunk},
    )  # fmt: skip


def classes(n: int = 64, chunk: int = 16):
    """``classify`` output of an ``n x n`` synthetic cube (random forest on every 4th pixel)."""
    cube, truth = _cube(n, chunk)
    cube = cube.drop_vars("scl")
    feats = feature_array(cube).values.reshape(-1, feature_array(cube).sizes["feature"])
    label = truth["class"].values.ravel()
    take = np.arange(0, n * n, 4)
    names = list(feature_array(cube).feature.values)
    samples = pd.DataFrame(feats[take], columns=names)
    samples["label"] = label[take]
    model = eoai.ml.fit(
        samples, n_estimators=8, threads=1, class_names=dict(enumerate(truth.attrs["class_names"]))
    )
    return cube.eoai.classify(model)


def ndvi(n: int = 64, chunk: int = 16):
    """Gap-filled NDVI ``(time, y, x)`` on a 15-day grid, dask-backed."""
    cube, _ = _cube(n, chunk)
    return cube.eoai.index("ndvi").eoai.gapfill("linear")


def pheno(n: int = 64, chunk: int = 16):
    """``phenology`` of the gap-filled NDVI (one season, one year: ``(y, x)`` variables)."""
    return ndvi(n, chunk).eoai.phenology()


def classmap(n: int = 64, chunk: int = 16):
    """The ``class`` variable of :func:`classes` (a DataArray)."""
    return classes(n, chunk)["class"]


CASES = {"classes": classes, "classmap": classmap, "ndvi": ndvi, "pheno": pheno}

if __name__ == "__main__":  # python write_cases.py CASE N PATH [BATCH]: write, e.g. to be killed
    import os
    import time

    import dask
    from dask.callbacks import Callback

    # EOAI_SLOW_TASKS=<seconds>: sleep after every task (the graph, hence the fingerprint, is the
    # same as without it), so that a test can kill the process between two batches
    pause = float(os.environ.get("EOAI_SLOW_TASKS", "0") or 0)
    if pause:
        Callback(posttask=lambda key, result, dsk, state, worker_id: time.sleep(pause)).register()

    case, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    dask.config.set(scheduler="threads", num_workers=1)
    obj = CASES[case](n)
    eoai.write(obj, path, batch_size=batch, progress=False)
