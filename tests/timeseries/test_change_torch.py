"""detect_breaks torch backend (device="torch" / "cuda"): equals the numba kernels, lazy, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from eoai.errors import InputError
from eoai.timeseries import _breaks_numba
from eoai.timeseries._mosum_critvals import mosum_critval
from eoai.timeseries.breaks import detect_breaks

torch = pytest.importorskip("torch")
_breaks_torch = pytest.importorskip("eoai.timeseries._breaks_torch")

SD = 0.03
NAMES = ["break", "detect_idx", "break_idx", "magnitude", "start_idx", "n_valid", "n_history"]


def _nan_laden(n_pix: int, seed: int) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Seasons + noise, disturbed early histories, breaks, 20 % clouds, empty/cloudy pixels."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2018-01-01", periods=200, freq="8D")
    ty = _breaks_numba.decimal_year(t.values)
    y = 0.5 + 0.2 * np.sin(2 * np.pi * ty + rng.uniform(0, 6, (n_pix, 1)))
    y = y + rng.normal(0, SD, (n_pix, t.size))
    y[::5, :40] -= 0.15  # old land cover early in the history (ROC cuts it)
    y[rng.random(n_pix) < 0.3, 150:] -= 4 * SD  # breaks
    y[rng.random(y.shape) < 0.2] = np.nan
    y[::11] = np.nan  # no data
    y[5::13, rng.random(t.size) < 0.7] = np.nan  # very cloudy
    y[3::17, :132] = np.nan  # short history
    y[2::19, 105:] = np.nan  # nothing to monitor
    y[:, rng.random(t.size) < 0.05] = np.nan  # dates clouded everywhere
    return t, y.astype(np.float32)


@pytest.mark.parametrize("order, trend", [(3, True), (1, False)])
def test_torch_kernel_equals_numba_kernel(order, trend):
    t, y = _nan_laden(300, order)
    X = _breaks_numba.design_matrix(_breaks_numba.decimal_year(t.values), order, trend)
    lam = _breaks_numba.roc_critval(0.05)
    for mon_date, hist_idx in (("2021-01-01", 0), ("2020-06-01", 10)):
        mon_idx = int(np.searchsorted(t.values, np.datetime64(mon_date)))
        for h in (0.25, 0.5):
            cv = mosum_critval(h, 10, 0.05)
            for roc in (False, True):
                for exact in (False, True):
                    args = (mon_idx, hist_idx, roc, lam, h, cv, 9, exact)
                    want = _breaks_numba.run_kernel(y, X, *args)
                    # small batches: several batches, the last one partial
                    got = _breaks_torch.run_kernel(y, X, *args, device="cpu", batch=256)
                    for i, name in enumerate([*NAMES, "status"]):
                        assert got[i].dtype == want[i].dtype, name
                        if name != "magnitude":
                            np.testing.assert_array_equal(got[i], want[i], err_msg=name)
                    # magnitudes: the fits of a few weeks of (ROC-cut) history are
                    # ill-conditioned, rounding decides there; the others to 1e-6
                    np.testing.assert_array_equal(np.isnan(got[3]), np.isnan(want[3]))
                    mon = want[7] == 0
                    sel = mon & (want[6] >= 3 * X.shape[1])
                    assert sel.sum() >= 0.8 * mon.sum()
                    np.testing.assert_allclose(got[3][sel], want[3][sel], rtol=0, atol=1e-6)
                    # the data exercise every status and both outcomes
                    assert {0, 1, 2, 3} <= set(np.unique(got[7]).tolist())
                    assert 0.05 < got[0].mean() < 0.6


def test_roc_starts_equal_givens_kernel():
    t, y = _nan_laden(500, 7)
    X = _breaks_numba.design_matrix(_breaks_numba.decimal_year(t.values), 3, True)
    lam = _breaks_numba.roc_critval(0.05)
    mon_idx = int(np.searchsorted(t.values, np.datetime64("2021-01-01")))
    want = np.zeros(len(y), np.int64)
    _breaks_numba.roc_starts_general(y, X, mon_idx, 0, lam, want)
    got = _breaks_torch.roc_starts(
        torch.as_tensor(y.astype(np.float64)), torch.as_tensor(X), mon_idx, 0, lam
    )
    np.testing.assert_array_equal(got.numpy(), want)
    assert (want > 0).sum() >= 30


def _cube(n_y=12, n_x=10, seed=4):
    t, y = _nan_laden(n_y * n_x, seed)
    return xr.DataArray(
        y.reshape(n_y, n_x, t.size),
        dims=("y", "x", "time"),
        coords={"time": t, "y": np.arange(n_y) * -10.0, "x": np.arange(n_x) * 10.0},
        name="ndvi",
        attrs={"units": "1"},
    ).transpose("time", "y", "x")


@pytest.mark.parametrize("history", ["roc", "2018-06-01"])
@pytest.mark.parametrize("standardize", ["exact", "asymptotic"])
def test_detect_breaks_torch_equals_cpu_and_is_lazy(history, standardize, count_computes):
    da = _cube()
    kw = dict(history=history, standardize=standardize)
    cpu = detect_breaks(da, "2021-01-01", **kw)
    lazy = da.chunk({"time": 50, "y": 5})
    with count_computes() as c:
        out = detect_breaks(lazy, "2021-01-01", device="torch", **kw)
        assert out["break"].chunks is not None
    assert c.count == 0
    got = out.compute()
    eager = detect_breaks(da, "2021-01-01", device="torch", **kw)
    xr.testing.assert_identical(got, eager)
    for name in ("break", "break_date", "detection_date", "history_start", "n_valid", "status"):
        xr.testing.assert_identical(got[name], cpu[name])
    xr.testing.assert_identical(got["n_history"], cpu["n_history"])
    sel = (cpu["n_history"] >= 24).values
    np.testing.assert_allclose(
        got["magnitude"].values[sel], cpu["magnitude"].values[sel], rtol=0, atol=1e-6
    )
    assert got.attrs == cpu.attrs
    assert (cpu["break"].values == 1).any() and (cpu["status"].values > 0).any()


def test_device_errors():
    da = _cube(2, 2)
    with pytest.raises(InputError, match=r"device='tpu' is unknown; use 'auto'"):
        detect_breaks(da, "2021-01-01", device="tpu")
    with pytest.raises(InputError, match="device='cuda:x' is unknown"):
        detect_breaks(da, "2021-01-01", device="cuda:x")
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        with pytest.raises(InputError, match=f"does not exist; torch sees {n} GPU"):
            detect_breaks(da, "2021-01-01", device=f"cuda:{n}")
    else:
        for dev in ("cuda", "cuda:0"):
            with pytest.raises(InputError, match=f"device='{dev}' but torch sees no CUDA GPU"):
                detect_breaks(da, "2021-01-01", device=dev)
        # auto without a GPU: the numba kernels
        assert _breaks_torch.resolve_device("auto") is None
        assert _breaks_torch.resolve_device(None) is None  # None is "auto", as everywhere
    assert _breaks_torch.resolve_device("torch") == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_equals_numba():
    t, y = _nan_laden(2000, 3)
    X = _breaks_numba.design_matrix(_breaks_numba.decimal_year(t.values), 3, True)
    mon_idx = int(np.searchsorted(t.values, np.datetime64("2021-01-01")))
    args = (
        mon_idx,
        0,
        True,
        _breaks_numba.roc_critval(0.05),
        0.25,
        mosum_critval(0.25, 10, 0.05),
        9,
    )
    for exact in (False, True):
        want = _breaks_numba.run_kernel(y, X, *args, exact)
        got = _breaks_torch.run_kernel(y, X, *args, exact, device="cuda")
        for i in (0, 1, 2, 4, 5, 6, 7):
            np.testing.assert_array_equal(got[i], want[i], err_msg=NAMES[i] if i < 7 else "s")
        sel = want[6] >= 3 * X.shape[1]
        np.testing.assert_allclose(got[3][sel], want[3][sel], rtol=0, atol=1e-6)
