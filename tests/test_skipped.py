"""One DataSkippedWarning per user call with the totals over all chunks (eoai._skipped).

On a 64-chunk cube with known NaN pixels: local schedulers (threads, synchronous), numpy input,
a second compute (warns again), a partial compute, and dask.distributed with worker processes (the
client receives the one warning).
"""

from __future__ import annotations

import inspect
import time
import warnings

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from eoai import _skipped
from eoai.datasets import double_logistic
from eoai.errors import DataSkippedWarning
from eoai.timeseries.gapfill import gapfill
from eoai.timeseries.phenology import phenology

N = 64  # 64 x 64 pixels in 8 x 8 chunks: 64 chunks
NAN_PIXELS = [(0, 0), (0, 1), (5, 9), (17, 40), (40, 40), (63, 63), (63, 0)]  # 7 chunks


def _cube(chunked: bool = True) -> xr.DataArray:
    t = pd.date_range("2021-01-01", "2021-12-31", freq="5D")
    doy = np.asarray(t.day_of_year, float)
    curve = double_logistic(doy, 0.2, 0.6, 120, 270, 0.1, 0.1)
    rng = np.random.default_rng(3)
    v = curve[:, None, None] + rng.normal(0, 0.005, (t.size, N, N))
    v[rng.random(v.shape) < 0.2] = np.nan
    for iy, ix in NAN_PIXELS:
        v[:, iy, ix] = np.nan
    da = xr.DataArray(v.astype(np.float32), dims=("time", "y", "x"), coords={"time": t})
    return da.chunk({"time": -1, "y": 8, "x": 8}) if chunked else da


def _skipped_messages(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in rec if issubclass(w.category, DataSkippedWarning)]


GAPFILL_MSG = f"gapfill(linear): {len(NAN_PIXELS)} of {N * N} pixels have no valid observation"
PHENO_MSG = f"phenology: {len(NAN_PIXELS)} of {N * N} pixel-years left NaN: {len(NAN_PIXELS)} without data (fewer than 3 valid dates)"


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_gapfill_one_warning_per_compute_with_totals(scheduler):
    da = _cube()
    out = gapfill(da, "linear")
    assert out.data.npartitions == 64
    with dask.config.set(scheduler=scheduler):
        for _ in range(2):  # a second compute is a new round: it warns again
            msgs = _skipped_messages(out.compute)
            assert msgs == [GAPFILL_MSG + " and were left NaN"], msgs


def test_phenology_one_warning_per_compute_with_totals():
    out = phenology(_cube())
    assert out.sos.data.npartitions == 64
    for _ in range(2):
        msgs = _skipped_messages(out.compute)
        assert msgs == [PHENO_MSG], msgs
    sos = out.sos_doy.compute  # one variable of the Dataset: still every chunk, one warning
    assert _skipped_messages(sos) == [PHENO_MSG]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSkippedWarning)
        assert int(np.isnan(out.sos_doy.values).sum()) == len(NAN_PIXELS)


def test_numpy_input_warns_once_during_the_call():
    msgs = _skipped_messages(lambda: gapfill(_cube(chunked=False), "linear"))
    assert msgs == [GAPFILL_MSG + " and were left NaN"], msgs


def test_dataset_is_one_call_naming_each_variable():
    da = _cube()
    ds = xr.Dataset({"a": da, "b": da.fillna(0.5)})
    msgs = _skipped_messages(lambda: gapfill(ds, "linear").compute())
    assert msgs == [
        f"gapfill(linear): pixels that have no valid observation were left NaN: "
        f"{len(NAN_PIXELS)} of {N * N} in 'a'"
    ], msgs


def test_partial_compute_warns_with_the_chunks_computed():
    out = gapfill(_cube(), "linear")
    # the 2 x 2 top-left chunks hold (0, 0), (0, 1) and (5, 9)
    msgs = _skipped_messages(out.isel(y=slice(0, 16), x=slice(0, 16)).compute)
    assert msgs == [
        "gapfill(linear): 3 of 256 pixels have no valid observation and were left NaN "
        "(partial compute: 4 of 64 chunks)"
    ], msgs
    # the next full compute has the true totals, not the partial ones added in
    assert _skipped_messages(out.compute) == [GAPFILL_MSG + " and were left NaN"]


def test_warning_points_at_the_users_line_and_filters_apply():
    da = _cube()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        lineno = inspect.currentframe().f_lineno + 1
        out = gapfill(da, "linear")
        out.compute()
    (w,) = [w for w in rec if issubclass(w.category, DataSkippedWarning)]
    assert (w.filename, w.lineno) == (__file__, lineno)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataSkippedWarning)
        with pytest.raises(DataSkippedWarning, match="7 of 4096"):
            out.compute(scheduler="synchronous")


def test_count_outside_a_reporting_chunk_is_an_error():
    with pytest.raises(RuntimeError, match="outside a reporting chunk"):
        _skipped.count(left_nan=1)


def _wait_for(rec: list, n: int, timeout: float = 30.0) -> list[str]:
    """Bounded poll: events reach the client asynchronously (normally before compute returns)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = [str(w.message) for w in rec if issubclass(w.category, DataSkippedWarning)]
        if len(msgs) >= n:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # and no more than n arrive
    return [str(w.message) for w in rec if issubclass(w.category, DataSkippedWarning)]


def test_distributed_client_receives_one_warning_with_the_totals():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB",
            dashboard_address=":0",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        # the workers import this eoai (the one under test), not another checkout
        files = client.run(lambda: __import__("eoai._skipped").__file__)
        assert set(files.values()) == {__import__("eoai").__file__}
        da = _cube()
        filled = gapfill(da, "linear")  # built under the client: subscribes it
        pheno = phenology(da)
        for _ in range(2):
            with warnings.catch_warnings(record=True) as rec:
                warnings.simplefilter("always")
                filled.compute()
                msgs = _wait_for(rec, 1)
            assert msgs == [GAPFILL_MSG + " and were left NaN"], msgs
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            pheno.compute()
            msgs = _wait_for(rec, 1)
        assert msgs == [PHENO_MSG], msgs


def test_chunk_of_an_unknown_call_warns_by_itself():
    # what a chunk sees where its call is not registered (the "processes" scheduler, a graph
    # built in another process): it warns with its own counts rather than dropping them
    import functools

    from eoai.timeseries.gapfill import _left_nan_message

    msg = functools.partial(_left_nan_message, method="linear", why="have no valid observation")
    token = _skipped._Token("not-a-registered-call", msg, DataSkippedWarning, None)
    with pytest.warns(DataSkippedWarning, match=r"3 of 64 pixels .* left NaN \(one chunk\)"):
        _skipped._report(token, 0, "", {"left_nan": 3, "pixels": 64})
    with pytest.warns(DataSkippedWarning, match="from a worker"):
        _skipped._on_event((0.0, {"call": "unknown", "fallback": "from a worker"}))
