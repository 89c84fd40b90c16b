"""The torch backend of gap-filling (``device="torch"`` / ``"cuda"``) against the numba kernels."""

from __future__ import annotations

import subprocess
import sys
import warnings

import dask.array as dsa
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from eoai_testing import EILERS, eilers_case

from eoai.errors import DataSkippedWarning, InputError
from eoai.timeseries.gapfill import gapfill, whittaker_smooth

torch = pytest.importorskip("torch")
CUDA = torch.cuda.is_available()


def _series(n: int = 400, n_t: int = 45, seed: int = 0):
    """Random NaN-laden series on unequally spaced dates, with edge cases in the first rows."""
    rng = np.random.default_rng(seed)
    days = np.sort(rng.choice(365, n_t, replace=False))
    t = pd.Timestamp("2021-01-01") + pd.to_timedelta(days, "D")
    y = np.sin(days / 40.0)[None] + rng.normal(0, 0.1, (n, n_t))
    y[rng.random((n, n_t)) < 0.35] = np.nan
    y[0] = np.nan  # all-NaN pixel
    y[1] = np.nan
    y[1, 7] = 0.5  # a single valid observation
    y[2, :9] = np.nan  # leading gap
    y[2, -6:] = np.nan  # trailing gap
    y[2, 9], y[2, -7] = 0.1, 0.9
    y[3, 1:] = np.nan  # only the first date
    y[3, 0] = 0.3
    y[4, :-1] = np.nan  # only the last date
    y[4, -1] = 0.7
    da = xr.DataArray(y, dims=("pixel", "time"), coords={"time": t})
    w = xr.DataArray(rng.uniform(0, 2, (n, n_t)), dims=("pixel", "time"), coords={"time": t})
    w[5, ::3] = 0.0  # zero weights leave observations out
    return da, w


def _both(da, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        a = gapfill(da, **kw)
        b = gapfill(da, device="torch", **kw)
    counts = [str(r.message) for r in rec if issubclass(r.category, DataSkippedWarning)]
    return a, b, counts


@pytest.mark.parametrize(
    "kw",
    [{}, {"freq": "3D"}, {"freq": "7D", "max_gap": 30},
     {"dates": pd.date_range("2020-12-01", "2022-02-01", freq="11D")}],
)  # fmt: skip
def test_linear_torch_equals_numba(kw):
    da, _ = _series()
    a, b, counts = _both(da, method="linear", **kw)
    np.testing.assert_array_equal(np.isnan(a.values), np.isnan(b.values))
    np.testing.assert_allclose(b.values, a.values, rtol=0, atol=1e-12)
    assert np.isnan(b.values[0]).all()  # all-NaN pixel stays NaN, never 0
    # a single observation is extended to every date (within max_gap)
    assert np.all(b.values[1][np.isfinite(b.values[1])] == 0.5)
    # leading / trailing gaps take the first / last valid value (OTB rule)
    if "max_gap" not in kw and "dates" not in kw:
        assert b.values[2, 0] == 0.1 and b.values[2, -1] == 0.9
        assert (b.values[3] == 0.3).all() and (b.values[4] == 0.7).all()
    assert counts[0] == counts[1] and "1 of 400 pixels have no valid observation" in counts[1]
    assert b.attrs["eoai:method"] == "gapfill:linear"
    assert '"device": "torch"' in b.attrs["eoai:parameters"]


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("use_w", [False, True])
@pytest.mark.parametrize("kw", [{"lam": 1e3}, {"lam": 50.0, "freq": "5D", "max_gap": 45}])
def test_whittaker_torch_equals_numba(order, use_w, kw):
    da, w = _series()
    a, b, counts = _both(da, method="whittaker", order=order, weights=w if use_w else None, **kw)
    np.testing.assert_array_equal(np.isnan(a.values), np.isnan(b.values))
    assert np.isfinite(b.values).sum() > 0.9 * b.size * (0.5 if "max_gap" in kw else 1)
    np.testing.assert_allclose(b.values, a.values, rtol=1e-6, atol=1e-6)
    assert counts[0] == counts[1]
    # pixels with fewer than `order` valid observations are NaN (with the count in the warning)
    assert np.isnan(b.values[:2]).all()
    assert f"have fewer than {order} valid observations" in counts[1]


def test_whittaker_asymmetric_weights_torch_equals_numba():
    da, w = _series(seed=3)
    a, b, _ = _both(da, method="whittaker", lam=300.0, p=0.9, freq="10D", weights=w)
    np.testing.assert_array_equal(np.isnan(a.values), np.isnan(b.values))
    np.testing.assert_allclose(b.values, a.values, rtol=1e-6, atol=1e-6)
    # the upper envelope lies above the symmetric fit on average
    sym = gapfill(da, "whittaker", lam=300.0, freq="10D", weights=w, device="torch")
    assert float((b - sym).mean()) > 0.01


@pytest.mark.parametrize("name", sorted(EILERS))
def test_torch_whittaker_reproduces_eilers_reference(shared_data, name):
    y, x, w, order, ref = eilers_case(shared_data, name)
    z = whittaker_smooth(y, 2e4, x=x, weights=w, order=order, device="torch")
    assert z.shape == ref.shape == (1024,)
    np.testing.assert_allclose(z, ref, rtol=1e-6)
    # a batch of rows gives the same rows
    zz = whittaker_smooth(np.stack([y, 2 * y]), 2e4, x=x,
                          weights=None if w is None else np.stack([w, w]), order=order,
                          device="torch")  # fmt: skip
    np.testing.assert_allclose(zz, np.stack([z, 2 * z]), rtol=1e-12)


@pytest.mark.parametrize("method, kw", [("linear", {}), ("whittaker", {"lam": 1e3, "p": 0.8})])
def test_torch_is_lazy_and_dask_equals_numpy(count_computes, method, kw):
    da, _ = _series(n=120)
    cube = xr.DataArray(
        da.values.T.reshape(-1, 8, 15).astype(np.float32),
        dims=("time", "y", "x"),
        coords={"time": da.time},
    )
    lazy_in = cube.chunk({"time": -1, "y": 4, "x": 10})
    with count_computes() as c:
        lazy = gapfill(lazy_in, method, freq="10D", max_gap=40, device="torch", **kw)
        assert c.count == 0
    assert isinstance(lazy.data, dsa.Array) and lazy.dtype == np.float32
    assert lazy.chunks[1] == (4, 4) and lazy.chunks[2] == (10, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSkippedWarning)
        got = lazy.compute().values
        np.testing.assert_array_equal(
            got, gapfill(cube, method, freq="10D", max_gap=40, device="torch", **kw).values
        )
        ref = gapfill(cube, method, freq="10D", max_gap=40, **kw).values
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


def test_device_errors():
    da, _ = _series(n=10)
    with pytest.raises(InputError, match="device='gpu' is unknown; use 'auto'"):
        gapfill(da, "linear", device="gpu")
    with pytest.raises(InputError, match="device='cuda:x' is unknown"):
        gapfill(da, "linear", device="cuda:x")
    with pytest.raises(InputError, match="runs method 'linear' and 'whittaker' with a numeric lam"):
        gapfill(da, "savgol", device="torch")
    with pytest.raises(InputError, match="not 'whittaker' with lam='vcurve'"):
        gapfill(da, "whittaker", lam="vcurve", device="torch")
    with pytest.raises(InputError, match="not 'whittaker' with lam=1.0, robust=True"):
        gapfill(da, "whittaker", lam=1.0, robust=True, device="torch")
    if not CUDA:
        with pytest.raises(InputError, match="device='cuda' but torch sees no CUDA GPU"):
            gapfill(da, "linear", device="cuda")
        with pytest.raises(InputError, match="device='cuda:1' but torch sees no CUDA GPU"):
            whittaker_smooth(np.arange(5.0), 1.0, device="cuda:1")
        # auto without CUDA: the numba path, recorded as such
        out = gapfill(da, "linear", device="auto")
        assert "device" not in out.attrs["eoai:parameters"]


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_equals_numba():  # runs where a GPU is present
    da, w = _series()
    for kw in ({"method": "linear", "freq": "3D"},
               {"method": "whittaker", "lam": 1e3, "order": 3, "weights": w}):  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataSkippedWarning)
            a = gapfill(da, **kw).values
            b = gapfill(da, device="cuda", **kw)
            auto = gapfill(da, device="auto", **kw)
        np.testing.assert_allclose(b.values, a, rtol=1e-6, atol=1e-6)
        assert '"device": "cuda"' in auto.attrs["eoai:parameters"]


def test_import_eoai_and_cpu_gapfill_do_not_import_torch():
    code = (
        "import sys, numpy as np, pandas as pd, xarray as xr, eoai\n"
        "from eoai.timeseries.gapfill import gapfill\n"
        "t = pd.date_range('2021-01-01', periods=5, freq='5D')\n"
        "gapfill(xr.DataArray([1.0, np.nan, 3, 4, 5], dims='time', coords={'time': t}),"
        " 'whittaker', lam=10.0)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
