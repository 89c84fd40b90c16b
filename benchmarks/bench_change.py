"""Throughput of detect_breaks (BFAST Monitor) on one core, against a per-pixel numpy baseline.

Run: ``python benchmarks/bench_change.py [n_pixels] [--device torch|cuda]`` (with ``--device``:
the torch backend next to the numba kernels, results checked equal). Series of 200 dates (8-day step, 20 %
clouds as NaN, monitoring the last ~60), order-3 harmonics + trend. The numba kernel is serial
(one core; numba and BLAS threads set to 1; CPU time of this process is measured, so other
load on the machine does not count); the baseline is the per-pixel numpy translation of
R's bfastmonitor in ``eoai.testing.bfast_reference`` (lstsq fits; ``recresid`` refits) run on
a subset of the same pixels in the same process. Results of the two are checked equal. The
"before" column runs the first numba kernels (``roc_starts_general``: Givens QR for every observation,
``bfm_kernel_v1``: per-observation normal equations and triangular solves per monitoring step) on
the same pixels in the same process; their break flags, dates and history starts are checked
equal to the current kernels'. Last line: the default kernels, current and first, on the embedded
Slovenia NDVI (real, spatially coherent clouds; order 1 + trend, monitoring the last 23 dates).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402

import dask  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from eoai.testing.bfast_reference import bfastmonitor_pixel, run_kernel_v1  # noqa: E402
from eoai.timeseries import _breaks_numba  # noqa: E402
from eoai.timeseries._mosum_critvals import mosum_critval  # noqa: E402
from eoai.timeseries.breaks import detect_breaks  # noqa: E402


def make(n_pix: int, n_t: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = pd.date_range("2018-01-01", periods=n_t, freq="8D")
    ty = _breaks_numba.decimal_year(t.values)
    y = 0.5 + 0.2 * np.sin(2 * np.pi * ty + rng.uniform(0, 6, (n_pix, 1)))
    y = y + rng.normal(0, 0.03, (n_pix, n_t))
    brk = rng.random(n_pix) < 0.3
    y[brk, 150:] -= 0.12
    y[rng.random(y.shape) < 0.2] = np.nan
    return t, y.astype(np.float32)


def best_of(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main(n_pix: int = 50_000, n_ref: int = 200) -> None:
    t, y = make(n_pix)
    X = _breaks_numba.design_matrix(_breaks_numba.decimal_year(t.values), 3, True)
    mon_idx = int(np.searchsorted(t.values, np.datetime64("2021-01-01")))
    lam, cv = _breaks_numba.roc_critval(0.05), mosum_critval(0.25, 10, 0.05)
    _breaks_numba.run_kernel(y[:10], X, mon_idx, 0, True, lam, 0.25, cv, 9, True)  # compile
    run_kernel_v1(y[:10], X, mon_idx, 0, True, lam, 0.25, cv, 9, True)
    print(f"series: {y.shape[1]} dates, monitoring from index {mon_idx}; {n_pix} pixels")
    print(
        f"{'variant':38s} {'kernel px/s':>12s} {'before px/s':>12s} {'speed-up':>8s} "
        f"{'numpy px/s':>11s} {'ratio':>7s}"
    )
    rows = []
    for roc in (False, True):
        for exact in (False, True):
            name = f"history={'roc' if roc else 'all'}, standardize={'exact' if exact else 'asymptotic'}"
            args = (mon_idx, 0, roc, lam, 0.25, cv, 9, exact)
            dt = best_of(lambda a=args: _breaks_numba.run_kernel(y, X, *a))
            dt1 = best_of(lambda a=args: run_kernel_v1(y, X, *a))
            new, old = _breaks_numba.run_kernel(y, X, *args), run_kernel_v1(y, X, *args)
            for i in (0, 1, 2, 4, 7):  # break, detection, break date, history start, status
                assert (new[i] == old[i]).all(), (name, i, int((new[i] != old[i]).sum()))
            t0 = time.process_time()
            ref = [
                bfastmonitor_pixel(
                    y[p].astype(np.float64), X, mon_idx, 0, roc, lam, 0.25, cv, 9, exact
                )
                for p in range(n_ref)
            ]
            dref = time.process_time() - t0
            assert (new[0][:n_ref] == np.array([r["break"] for r in ref])).all()
            kp, bp, rp = n_pix / dt, n_pix / dt1, n_ref / dref
            rows.append((name, kp, bp, rp))
            print(f"{name:38s} {kp:12,.0f} {bp:12,.0f} {kp / bp:7.1f}x {rp:11,.0f} {kp / rp:6.0f}x")
    # end to end through xarray + dask (one thread), default parameters
    side = int(np.sqrt(n_pix))
    da = xr.DataArray(
        y[: side * side].T.reshape(len(t), side, side), dims=("time", "y", "x"), coords={"time": t}
    ).chunk({"y": max(side // 4, 1)})
    with dask.config.set(scheduler="synchronous"):
        dt = best_of(lambda: detect_breaks(da, "2021-01-01").compute(), repeat=2)
    print(f"{'detect_breaks (dask, 1 thread, default)':38s} {side * side / dt:12,.0f}")
    real_clouds()


def real_clouds() -> None:
    """Default kernels on the embedded Slovenia NDVI: real, spatially coherent clouds."""
    import eoai

    ds = eoai.load(eoai.datasets.sample_catalog(), bands=["ndvi"], collections=["slovenia-ndvi"])
    t = ds["time"].values
    y = np.ascontiguousarray(ds["ndvi"].transpose("y", "x", "time").values.reshape(-1, t.size))
    X = _breaks_numba.design_matrix(_breaks_numba.decimal_year(t), 1, True)
    lam, cv = _breaks_numba.roc_critval(0.05), mosum_critval(0.25, 10, 0.05)
    args = (44, 0, True, lam, 0.25, cv, 9, True)
    dt = best_of(lambda: _breaks_numba.run_kernel(y, X, *args), repeat=20)
    dt1 = best_of(lambda: run_kernel_v1(y, X, *args), repeat=20)
    assert (_breaks_numba.run_kernel(y, X, *args)[0] == run_kernel_v1(y, X, *args)[0]).all()
    name = f"Slovenia NDVI {t.size} dates, {np.isnan(y).mean():.0%} NaN"
    print(f"{name:38s} {y.shape[0] / dt:12,.0f} {y.shape[0] / dt1:12,.0f} {dt1 / dt:7.1f}x")


def torch_backend(n_pix: int, device: str) -> None:
    """The torch backend (``device="torch"``: CPU, one thread; or "cuda") next to numba."""
    import torch

    from eoai.timeseries import _breaks_torch

    torch.set_num_threads(1)
    dev = _breaks_torch.resolve_device(device)
    t, y = make(n_pix)
    X = _breaks_numba.design_matrix(_breaks_numba.decimal_year(t.values), 3, True)
    mon_idx = int(np.searchsorted(t.values, np.datetime64("2021-01-01")))
    lam, cv = _breaks_numba.roc_critval(0.05), mosum_critval(0.25, 10, 0.05)
    print(f"series: {y.shape[1]} dates; {n_pix} pixels; torch {torch.__version__} on {dev}")
    print(f"{'variant':38s} {'torch px/s':>12s} {'numba px/s':>12s} {'ratio':>7s}")
    for roc in (False, True):
        args = (mon_idx, 0, roc, lam, 0.25, cv, 9, True)
        _breaks_numba.run_kernel(y[:10], X, *args)  # compile
        _breaks_torch.run_kernel(y[:10], X, *args, device=dev)

        def run_torch(a=args):
            out = _breaks_torch.run_kernel(y, X, *a, device=dev)
            if dev != "cpu":
                torch.cuda.synchronize()
            return out

        # CPU time on the CPU; wall time on a GPU
        timer = time.process_time if dev == "cpu" else time.perf_counter
        t0 = timer()
        got = run_torch()
        dtt = timer() - t0
        dtn = best_of(lambda a=args: _breaks_numba.run_kernel(y, X, *a), repeat=3)
        want = _breaks_numba.run_kernel(y, X, *args)
        for i in (0, 1, 2, 4, 5, 6, 7):
            assert (got[i] == want[i]).all(), (i, int((got[i] != want[i]).sum()))
        name = f"history={'roc' if roc else 'all'}, standardize=exact"
        print(f"{name:38s} {n_pix / dtt:12,.0f} {n_pix / dtn:12,.0f} {dtn / dtt:6.2f}x")


if __name__ == "__main__":
    argv = sys.argv[1:]
    device = None
    if "--device" in argv:
        i = argv.index("--device")
        device = argv[i + 1]
        del argv[i : i + 2]
    n = int(argv[0]) if argv else 50_000
    if device in (None, "cpu"):
        main(n)
    else:
        torch_backend(n, device)
