"""Gap-filling: reference outputs (OTB linear, Eilers Whittaker), methods, laziness, errors."""

from __future__ import annotations

import json
import warnings

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from eoai_testing import EILERS, eilers_case
from scipy.signal import savgol_filter

from eoai.errors import (
    DataSkippedWarning,
    EoaiWarning,
    ExtrapolationWarning,
    InputError,
    LargeChunkWarning,
    MissingDimensionError,
    TimeAxisError,
)
from eoai.timeseries import _gapfill_numba as K
from eoai.timeseries.gapfill import gapfill, whittaker_smooth

T0 = pd.Timestamp("2020-01-01")


def _series(values, day_offsets, name="ndvi"):
    t = T0 + pd.to_timedelta(np.asarray(day_offsets, float), unit="D")
    return xr.DataArray(np.asarray(values, float), dims="time", coords={"time": t}, name=name)


def _cube(n_pix=600, n_t=73, gaps=0.3, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    t = pd.date_range("2020-01-01", "2020-12-31", periods=n_t).round("D")
    doy = np.asarray(t.day_of_year, float)
    truth = 0.2 + 0.6 * (1 / (1 + np.exp(-(doy - 120) / 8)) - 1 / (1 + np.exp(-(doy - 270) / 10)))
    y = truth[None] + rng.normal(0, 0.02, (n_pix, n_t))
    y[rng.random((n_pix, n_t)) < gaps] = np.nan
    ny = n_pix // 20
    da = xr.DataArray(
        y.reshape(ny, 20, n_t).transpose(2, 0, 1).astype(dtype),
        dims=("time", "y", "x"),
        coords={"time": t, "y": np.arange(ny) * -10.0, "x": np.arange(20) * 10.0, "spatial_ref": 0},
        attrs={"units": "1", "long_name": "NDVI"},
    )
    return da, xr.DataArray(truth, dims="time", coords={"time": t})


# ------------------------------------------------------------------------------------------
# reference: OTB / iota2 linear gap-filling test vectors
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def otb_cases(shared_data):
    ref = json.loads(
        (shared_data / "reference" / "otb_gapfilling_linear_testcases.json").read_text()
    )
    return ref["cases_regular_and_irregular"], ref["cases_with_output_dates"]


def _otb_expected(case):
    exp = np.asarray(case["expected"], float)
    if all(m != 0 for m in case["mask"]):
        # OTB writes 0 (its invalid value) for a pixel without valid date; eoai leaves NaN
        assert (exp == 0).all()
        return np.full_like(exp, np.nan)
    return exp


def test_otb_linear_kernel_every_case(otb_cases):
    regular, with_out = otb_cases
    assert len(regular) == 13 and len(with_out) == 4
    for case in regular + with_out:
        y = np.where(np.asarray(case["mask"]) == 0, case["pixel"], np.nan)[None].astype(float)
        x_in = np.asarray(case["dates"], float)
        x_out = np.asarray(case.get("out_dates", case["dates"]), float)
        out = np.empty((1, x_out.size))
        K.linear_fill(y, x_in, x_out, np.inf, out)
        np.testing.assert_allclose(
            out[0], _otb_expected(case), rtol=0, atol=1e-12, err_msg=str(case)
        )


def test_otb_linear_public_api_every_case(otb_cases):
    regular, with_out = otb_cases
    for case in regular + with_out:
        y = np.where(np.asarray(case["mask"]) == 0, case["pixel"], np.nan)
        da = _series(y, case["dates"])
        exp = _otb_expected(case)
        out_days = np.asarray(case.get("out_dates", case["dates"]), float)
        ctx = warnings.catch_warnings(record=True)
        with ctx as rec:
            warnings.simplefilter("always")
            if "out_dates" in case:
                got = gapfill(da, "linear", dates=T0 + pd.to_timedelta(out_days, unit="D"))
            else:
                got = gapfill(da, "linear")
        if len(set(case["dates"])) < len(case["dates"]):
            # duplicate dates are merged (mean of valid values) with a warning: one value per date
            assert any(issubclass(w.category, DataSkippedWarning) for w in rec)
            _, first = np.unique(out_days, return_index=True)
            exp = exp[np.sort(first)]
        np.testing.assert_allclose(got.values, exp, rtol=0, atol=1e-12, err_msg=str(case))
        if np.isnan(exp).all():
            assert any("1 of 1 pixels have no valid observation" in str(w.message) for w in rec)


# ------------------------------------------------------------------------------------------
# reference: Eilers (2003) Whittaker outputs
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EILERS))
def test_whittaker_reproduces_eilers_reference(shared_data, name):
    y, x, w, order, ref = eilers_case(shared_data, name)
    z = whittaker_smooth(y, 2e4, x=x, weights=w, order=order)
    assert ref.shape == (1024,)
    np.testing.assert_allclose(z, ref, rtol=1e-6)


def test_whittaker_batch_rows_match_single_rows(shared_data):
    folder = shared_data / "reference" / "whittaker_eilers_data"
    x, y, _, wrand = np.loadtxt(folder / "input" / "nmr_with_weights_and_x.csv", delimiter=",").T
    batch = np.stack([y, y[::-1], 2 * y])
    z = whittaker_smooth(batch, 2e4, x=x, weights=np.stack([wrand] * 3), order=2)
    for row, yy in zip(z, batch, strict=True):
        np.testing.assert_allclose(row, whittaker_smooth(yy, 2e4, x=x, weights=wrand), rtol=1e-12)


def test_inverse_diagonal_matches_dense_inverse():
    rng = np.random.default_rng(3)
    for d in (1, 2, 3):
        n = 30
        x = np.cumsum(rng.uniform(1, 10, n))
        coef = K.difference_coefficients(x, n, d, scale=True)
        pen = K.penalty_band(coef, n)
        w = (rng.random(n) > 0.3).astype(float)
        lam = 50.0
        L, Dg = np.zeros((n, d + 1)), np.zeros(n)
        assert K._ldl_factor(w, pen, lam, d, L, Dg)
        Z, diag = np.zeros((n, d + 1)), np.zeros(n)
        K._inverse_diagonal(L, Dg, d, Z, diag)
        D = np.zeros((n - d, n))
        for r in range(n - d):
            D[r, r : r + d + 1] = coef[r]
        dense = np.linalg.inv(np.diag(w) + lam * D.T @ D)
        np.testing.assert_allclose(diag, np.diag(dense), rtol=1e-8)


def test_gapfill_whittaker_lambda_in_days_equals_eilers_on_a_daily_grid():
    rng = np.random.default_rng(1)
    y = np.sin(np.arange(60) / 8) + rng.normal(0, 0.1, 60)
    y[[3, 10, 11, 12, 40]] = np.nan
    got = gapfill(_series(y, np.arange(60)), "whittaker", lam=30.0).values
    np.testing.assert_allclose(got, whittaker_smooth(y, 30.0), rtol=1e-10)
    # on a 5-day grid lam (days) = lam_step * 5**3: same curve as the unit-step smoother
    got5 = gapfill(_series(y, np.arange(60) * 5), "whittaker", lam=30.0 * 5**3).values
    np.testing.assert_allclose(got5, whittaker_smooth(y, 30.0), rtol=1e-8)


def test_whittaker_smoothing_does_not_depend_on_the_output_grid():
    da, _ = _cube(n_pix=100, dtype="float64")
    on_input = gapfill(da, "whittaker", lam=1e3)
    daily = gapfill(da, "whittaker", lam=1e3, freq="1D")
    common = daily.sel(time=on_input.time)
    # the daily curve at the input dates is the input-date curve up to discretisation
    assert float(np.abs(common - on_input).max()) < 0.01
    assert float(np.abs(common - on_input).mean()) < 0.002


def test_whittaker_onto_regular_grid_equals_zero_weight_union_solve():
    days = np.array([0, 3, 9, 14, 22, 23, 31, 40, 47, 55], float)
    y = np.array([0.2, 0.25, np.nan, 0.4, 0.5, 0.52, np.nan, 0.7, 0.65, 0.6])
    got = gapfill(_series(y, days), "whittaker", lam=100.0, freq="10D")
    np.testing.assert_array_equal(got.time.values, pd.date_range(T0, periods=6, freq="10D").values)
    grid = np.union1d(days, np.arange(0, 51, 10.0))
    yy = np.full(grid.size, np.nan)
    yy[np.searchsorted(grid, days)] = y
    ref = whittaker_smooth(yy, 100.0, x=grid, order=2, derivative=True)
    np.testing.assert_allclose(
        got.values, ref[np.searchsorted(grid, np.arange(0, 51, 10.0))], rtol=1e-10
    )


@pytest.mark.parametrize(
    "kw", [{"lam": 100.0}, {"lam": 100.0, "order": 3}, {"lam": 100.0, "p": 0.8}, {}]
)
def test_whittaker_edges_hold_the_end_values(kw):
    days = np.arange(0, 100, 5.0)
    y = np.sin(days / 15) + 0.5
    y[[0, 1, 2, 9, 17, 18, 19]] = np.nan  # first valid at day 15, last at day 80
    da = _series(y, days)
    held = gapfill(da, "whittaker", freq="1D", **kw)
    free = gapfill(da, "whittaker", freq="1D", edges="extrapolate", **kw)
    inside = (held.time >= T0 + pd.Timedelta("15D")) & (held.time <= T0 + pd.Timedelta("80D"))
    np.testing.assert_allclose(held.where(inside).values, free.where(inside).values, rtol=1e-12)
    first, last = free.sel(time=T0 + pd.Timedelta("15D")), free.sel(time=T0 + pd.Timedelta("80D"))
    np.testing.assert_allclose(held.sel(time=held.time < first.time).values, float(first))
    np.testing.assert_allclose(held.sel(time=held.time > last.time).values, float(last))
    assert not np.allclose(free.isel(time=0), float(first))  # the straight line goes on
    assert json.loads(held.attrs["eoai:parameters"])["edges"] == "hold"


def test_default_robust_refit_resists_gross_outliers():
    da, truth = _cube(n_pix=200, seed=11, dtype="float64")
    rng = np.random.default_rng(11)
    residue = rng.random(da.shape) < 0.05  # undetected cloud residue: large drops
    dirty = da.where(~residue, da - 0.5)
    tr = truth.values[:, None, None]
    robust = gapfill(dirty, "whittaker")
    plain = gapfill(dirty, "whittaker", robust=False)
    assert _rmse(robust.values, tr) < 0.7 * _rmse(plain.values, tr)
    params = json.loads(robust.attrs["eoai:parameters"])
    assert params["robust"] is True and params["lam"] == "gcv" and params["edges"] == "hold"
    assert json.loads(gapfill(da, "whittaker", lam=1e3).attrs["eoai:parameters"])["robust"] is False
    # without outliers the re-fit changes little
    clean = _rmse(gapfill(da, "whittaker").values, tr)
    assert clean < 1.05 * _rmse(gapfill(da, "whittaker", robust=False).values, tr)
    # robust with a fixed lam leaves the fast path and agrees with the emulation through weights=
    once = gapfill(dirty, "whittaker", lam=1e3, robust=False, edges="extrapolate")
    r = dirty - once
    u = r / (10.0 * 1.4826 * np.abs(r).median("time"))
    w = ((1 - u**2) ** 2).where(np.abs(u) < 1, 0.0).where(dirty.notnull(), 0.0)
    ref = gapfill(dirty, "whittaker", lam=1e3, weights=w.where(w > 0), edges="extrapolate")
    got = gapfill(dirty, "whittaker", lam=1e3, robust=True, edges="extrapolate")
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-10, atol=1e-12)


def _rmse(a, b):
    return float(np.sqrt(np.nanmean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_vcurve_and_gcv_are_close_to_the_oracle_lambda():
    da, truth = _cube(n_pix=200)
    tr = truth.values[:, None, None]
    fixed = {
        lam: _rmse(gapfill(da, "whittaker", lam=lam).values, tr) for lam in 10.0 ** np.arange(1, 8)
    }
    best = min(fixed.values())
    worst = max(fixed.values())
    for how in ("vcurve", "gcv"):
        err = _rmse(gapfill(da, "whittaker", lam=how).values, tr)
        assert err < 1.3 * best, (how, err, fixed)
        assert err < 0.5 * worst
    # the raw noise is 0.02; a good smoother gets well below it
    assert best < 0.015


def test_default_whittaker_beats_linear_on_the_synthetic_cube():
    # white noise and sharp (8-10 day) logistic transitions: the default's lambda band (tuned on
    # real series) is smoother than the oracle here, but must still beat linear interpolation
    da, truth = _cube(n_pix=400)
    tr = truth.values[:, None, None]
    assert _rmse(gapfill(da, "whittaker").values, tr) < _rmse(gapfill(da, "linear").values, tr)


def test_asymmetric_weights_resist_negative_outliers():
    da, truth = _cube(n_pix=200, seed=5)
    rng = np.random.default_rng(5)
    residue = rng.random(da.shape) < 0.15  # cloud residue: values pulled down
    dirty = da.where(~residue, da - 0.3)
    tr = truth.values[:, None, None]
    sym = _rmse(gapfill(dirty, "whittaker", lam=300.0).values, tr)
    env = _rmse(gapfill(dirty, "whittaker", lam=300.0, p=0.9).values, tr)
    assert env < 0.6 * sym, (env, sym)


def test_savgol_matches_scipy_on_a_complete_regular_series():
    rng = np.random.default_rng(2)
    y = np.cumsum(rng.normal(size=80))
    got = gapfill(_series(y, np.arange(80) * 5.0), "savgol", window=5 * 9 - 1, polyorder=2).values
    ref = savgol_filter(y, 9, 2)
    np.testing.assert_allclose(got[4:-4], ref[4:-4], rtol=1e-9, atol=1e-9)


def test_savgol_bridges_a_gap_longer_than_the_window_linearly():
    days = np.arange(0, 200, 5.0)
    y = 0.01 * days
    y[10:20] = np.nan  # 50 days without observation, window 21 days
    got = gapfill(_series(y, days), "savgol", window=21).values
    np.testing.assert_allclose(got, 0.01 * days, atol=1e-10)


def test_harmonic_recovers_a_harmonic_signal_exactly():
    days = np.sort(np.random.default_rng(0).choice(730, 90, replace=False)).astype(float)
    x = days / 365.25
    mid = 0.5 * (days[0] + days[-1]) / 365.25
    y = 0.4 + 0.05 * (x - mid) + 0.2 * np.cos(2 * np.pi * x) - 0.1 * np.sin(4 * np.pi * x)
    yg = y.copy()
    yg[::3] = np.nan
    got = gapfill(_series(yg, days), "harmonic", harmonics=2).values
    np.testing.assert_allclose(got, y, atol=1e-10)


# ------------------------------------------------------------------------------------------
# output grids, max_gap, metadata, Dataset
# ------------------------------------------------------------------------------------------
def test_freq_dates_and_max_gap():
    days = [0, 5, 10, 50, 55, 60]
    y = [0.0, 0.5, 1.0, 5.0, 5.5, 6.0]
    da = _series(y, days)
    out = gapfill(da, "linear", freq="10D")
    np.testing.assert_array_equal(out.time.values, pd.date_range(T0, periods=7, freq="10D").values)
    np.testing.assert_allclose(out.values, [0, 1, 2, 3, 4, 5, 6])
    # the values max_gap leaves NaN are counted once (they were silent before)
    msg = r"gapfill\(linear\): 3 of 7 output values are farther than max_gap=30 days"
    with pytest.warns(DataSkippedWarning, match=msg):
        gap = gapfill(da, "linear", freq="10D", max_gap="30D")
    np.testing.assert_allclose(gap.values, [0, 1, np.nan, np.nan, np.nan, 5, 6])
    lazy = da.expand_dims(x=4).chunk({"x": 1})  # 4 chunks: one warning, the totals
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        gapfill(lazy, "whittaker", lam=10.0, freq="10D", max_gap="30D").compute()
    msgs = [str(w.message) for w in rec if issubclass(w.category, DataSkippedWarning)]
    assert msgs == [
        "gapfill(whittaker): 12 of 28 output values are farther than max_gap=30 days from a "
        "valid observation and were left NaN"
    ], msgs
    # output dates beyond the last observation: farther than max_gap from it -> NaN
    d = gapfill(da, "linear", dates=T0 + pd.to_timedelta([62, 70, 100], unit="D"), max_gap=20)
    np.testing.assert_allclose(d.values, [6.0, 6.0, np.nan])
    for method in ("whittaker", "savgol", "harmonic"):
        kw = (
            {"lam": 10.0}
            if method == "whittaker"
            else {"harmonics": 1}
            if method == "harmonic"
            else {}
        )
        g = gapfill(da, method, freq="10D", max_gap=30, **kw)
        assert np.isnan(g.values[2:5]).all() and np.isfinite(g.values[[0, 1, 5, 6]]).all(), method


def test_metadata_and_dataset_every_variable():
    da, _ = _cube(n_pix=100)
    ds = xr.Dataset(
        {"ndvi": da, "qa": (da > 0.5).fillna(0).astype("uint8"), "dem": da.isel(time=0, drop=True)},
        attrs={"title": "t"},
    )
    with pytest.warns(DataSkippedWarning, match=r"class/mask variable\(s\) \['qa'\] were left out"):
        out = gapfill(ds, "whittaker", lam=1e3, freq="10D")
    assert set(out.data_vars) == {"ndvi", "dem"}  # qa was interpolated into fractions before
    assert out.ndvi.dtype == np.float32
    xr.testing.assert_identical(out.dem, ds.dem)
    assert out.ndvi.sizes["time"] == 37 and "spatial_ref" in out.coords
    assert out.ndvi.attrs["units"] == "1" and out.ndvi.attrs["eoai:method"] == "gapfill:whittaker"
    params = json.loads(out.attrs["eoai:parameters"])
    assert params["lam"] == 1e3 and params["freq"] == "10D" and out.attrs["title"] == "t"
    np.testing.assert_array_equal(out.x, ds.x)
    assert not np.isnan(out.ndvi.values).any()


def test_all_nan_pixels_stay_nan_with_a_counted_warning():
    da, _ = _cube(n_pix=100)
    da[:, 0, :3] = np.nan
    for method in ("linear", "whittaker", "savgol", "harmonic"):
        with pytest.warns(DataSkippedWarning, match=r"gapfill\(" + method + r"\): 3 of 100 pixels"):
            out = gapfill(da, method, lam=100.0) if method == "whittaker" else gapfill(da, method)
        assert np.isnan(out.values[:, 0, :3]).all() and not np.isnan(out.values[:, 1:]).any()
        assert not (out.values[:, 0, :3] == 0).any()


# ------------------------------------------------------------------------------------------
# laziness, dask == numpy, chunking
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "method,kw",
    [("linear", {}), ("whittaker", {}), ("whittaker", {"lam": "vcurve"}),
     ("whittaker", {"lam": "gcv", "p": 0.8}), ("savgol", {}), ("harmonic", {})],
)  # fmt: skip
def test_lazy_and_dask_equals_numpy(count_computes, method, kw):
    da, _ = _cube(n_pix=200)
    lazy_in = da.chunk({"time": -1, "y": 4, "x": 10})
    with count_computes() as c:
        lazy = gapfill(lazy_in, method, freq="10D", max_gap=40, **kw)
        assert c.count == 0
    assert isinstance(lazy.data, dsa.Array)
    assert lazy.chunks[1] == (4, 4, 2) and len(lazy.chunks[0]) == 1
    np.testing.assert_array_equal(
        lazy.compute().values, gapfill(da, method, freq="10D", max_gap=40, **kw).values
    )


def test_time_chunks_are_merged_and_large_chunks_warned(count_computes):
    da, _ = _cube(n_pix=400)
    split = da.chunk({"time": 10, "y": -1, "x": -1})
    with count_computes() as c:
        out = gapfill(split, "linear")
        assert c.count == 0
    np.testing.assert_array_equal(out.values, gapfill(da, "linear").values)
    with dask.config.set({"array.chunk-size": "20kiB"}):
        with pytest.warns(LargeChunkWarning, match="was split over 8 chunks"):
            out = gapfill(split, "linear")
    assert len(out.chunks[0]) == 1 and len(out.chunks[1]) > 1
    np.testing.assert_array_equal(out.values, gapfill(da, "linear").values)


def test_accessor_calls_gapfill():
    import eoai  # noqa: F401

    da, _ = _cube(n_pix=40)
    xr.testing.assert_identical(
        da.eoai.gapfill("linear", freq="10D"), gapfill(da, "linear", freq="10D")
    )


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------
def test_errors():
    da = _series([1.0, np.nan, 3.0, 4.0], [0, 1, 2, 3])
    with pytest.raises(MissingDimensionError, match="needs a 'time' dimension"):
        gapfill(da.rename(time="date"))
    with pytest.raises(TimeAxisError, match="must hold datetime64"):
        gapfill(da.assign_coords(time=[0, 1, 2, 3]))
    with pytest.raises(
        InputError, match="unknown method 'spline'; choose one of linear, whittaker"
    ):
        gapfill(da, "spline")
    for bad in (0, -1.0, np.nan, np.inf):
        with pytest.raises(InputError, match="lam must be > 0"):
            gapfill(da, "whittaker", lam=bad)
    with pytest.raises(InputError, match="robust must be True or False"):
        gapfill(da, "whittaker", robust="yes")
    with pytest.raises(InputError, match="edges must be 'hold' or 'extrapolate'"):
        gapfill(da, "whittaker", lam=1.0, edges="clip")
    with pytest.raises(InputError, match="lam must be a positive number, 'vcurve' or 'gcv'"):
        gapfill(da, "whittaker", lam="auto")
    with pytest.raises(TimeAxisError, match="3 dates are too few for Whittaker of order 3"):
        gapfill(da.isel(time=slice(0, 3)), "whittaker", lam=1.0, order=3)
    with pytest.raises(TimeAxisError, match="too few for 3 harmonics"):
        gapfill(da, "harmonic")
    with pytest.raises(InputError, match="freq or dates, not both"):
        gapfill(da, freq="10D", dates=da.time.values)
    with pytest.raises(InputError, match="not a pandas frequency"):
        gapfill(da, freq="ten days")
    with pytest.raises(InputError, match="max_gap must be a positive duration"):
        gapfill(da, max_gap=-3)
    with pytest.raises(InputError, match="p must be in"):
        gapfill(da, "whittaker", lam=1.0, p=1.5)
    with pytest.raises(InputError, match="needs an xarray DataArray or Dataset"):
        gapfill(np.zeros(4))
    with pytest.raises(TimeAxisError, match="strictly increasing"):
        gapfill(da, dates=da.time.values[::-1])


def test_unsorted_dates_are_sorted_with_a_warning():
    da = _series([1.0, np.nan, 3.0, 4.0], [0, 1, 2, 3])
    shuffled = da.isel(time=[2, 0, 3, 1])
    with pytest.warns(EoaiWarning, match="was not sorted"):
        out = gapfill(shuffled, "linear")
    xr.testing.assert_allclose(out, gapfill(da, "linear"))
    np.testing.assert_allclose(out.values, [1, 2, 3, 4])


def test_duplicate_dates_are_merged_with_a_counted_warning():
    da = _series([1.0, 3.0, np.nan, 5.0, 7.0], [0, 1, 1, 2, 2])
    with pytest.warns(DataSkippedWarning, match="2 duplicate date"):
        out = gapfill(da, "linear")
    np.testing.assert_allclose(out.values, [1.0, 3.0, 6.0])


def test_whittaker_observation_weights(count_computes):
    da, _ = _cube(n_pix=100, dtype="float64")
    rng = np.random.default_rng(7)
    w = xr.DataArray(rng.uniform(0.1, 1.0, da.shape), dims=da.dims, coords={"time": da.time})
    # edges="extrapolate": the plain solve, as whittaker_smooth (the default holds the end values)
    got = gapfill(da, "whittaker", lam=500.0, weights=w, edges="extrapolate")
    days = (da.time.values - da.time.values[0]) / np.timedelta64(1, "D")
    series = da.values.reshape(da.sizes["time"], -1).T
    ref = whittaker_smooth(series, 500.0, x=days, weights=w.values.reshape(da.sizes["time"], -1).T,
                           derivative=True)  # fmt: skip
    np.testing.assert_allclose(
        got.values.reshape(da.sizes["time"], -1).T, ref, rtol=1e-6, atol=1e-7
    )
    # a zero weight is the same as a missing observation
    w0 = w.where(da.notnull() & (rng.random(da.shape) > 0.2), 0.0)
    np.testing.assert_allclose(
        gapfill(da, "whittaker", lam=500.0, weights=w0).values,
        gapfill(da.where(w0 > 0), "whittaker", lam=500.0, weights=w0).values, rtol=1e-10,
    )  # fmt: skip
    # weights along time only broadcast over pixels; lazy with dask; dask == numpy
    wt = w.isel(y=0, x=0, drop=True)
    with count_computes() as c:
        lazy = gapfill(da.chunk({"y": 2}), "whittaker", lam="vcurve", weights=wt)
        assert c.count == 0
    np.testing.assert_allclose(
        lazy.values, gapfill(da, "whittaker", lam="vcurve", weights=wt).values
    )
    with pytest.raises(InputError, match="weights are used by method='whittaker' only"):
        gapfill(da, "linear", weights=w)
    with pytest.raises(InputError, match="weights need the 'time' dimension"):
        gapfill(da, "whittaker", lam=1.0, weights=w.isel(time=0))
    with pytest.raises(TimeAxisError, match="weights have 72 dates, the data 73"):
        gapfill(da, "whittaker", lam=1.0, weights=w.isel(time=slice(1, None)))
    with pytest.raises(TimeAxisError, match="the dates of weights differ"):
        gapfill(
            da, "whittaker", lam=1.0, weights=w.assign_coords(time=w.time + np.timedelta64(1, "D"))
        )


def test_output_dates_seconds_from_an_acquisition_share_its_grid_point():
    t = pd.date_range("2020-01-01T10:00:08", periods=40, freq="5D")
    y = np.sin(np.arange(40) / 5.0)
    y[[5, 6, 20]] = np.nan
    da = xr.DataArray(y, dims="time", coords={"time": t})
    shifted = t + pd.Timedelta(seconds=3)  # output dates 3 s after each acquisition
    got = gapfill(da, "whittaker", lam=1e3, dates=shifted)
    ref = gapfill(da, "whittaker", lam=1e3)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-12)
    assert np.isfinite(got.values).all()


# ------------------------------------------------------------------------------------------
# no silent wrong result: nodata codes, class/mask variables, extrapolation (issue #16)
# ------------------------------------------------------------------------------------------
def _dn_series(seed=0, n_pix=60, missing=0.35):
    t = pd.date_range("2020-01-01", "2020-12-31", freq="5D")
    rng = np.random.default_rng(seed)
    doy = np.asarray(t.day_of_year, float)
    truth = 1000 + 3000 * np.sin(np.pi * doy / 366)
    dn = np.round(truth[:, None] + rng.normal(0, 50, (t.size, n_pix))).astype("uint16")
    gone = rng.random(dn.shape) < missing
    return t, dn, gone


@pytest.mark.parametrize(
    "declare",
    ["attrs:nodata", "attrs:_FillValue", "attrs:missing_value", "encoding:_FillValue", "rio",
     "scale_offset"],
)  # fmt: skip
def test_integer_nodata_becomes_nan_before_filling(declare):
    t, dn, gone = _dn_series()
    code = 65535 if declare == "attrs:_FillValue" else 0
    dn[gone] = code
    da = xr.DataArray(dn, dims=("time", "pixel"), coords={"time": t}, name="red")
    scale, offset = (1e-4, -0.1) if declare == "scale_offset" else (1.0, 0.0)
    if declare == "rio":
        pytest.importorskip("rioxarray")  # registers .rio
        da = da.rio.write_nodata(code)
        assert da.rio.nodata == code
    elif declare == "scale_offset":
        da.attrs.update(_FillValue=code, scale_factor=scale, add_offset=offset)
    else:
        where, key = declare.split(":")
        getattr(da, where)[key] = code
    # the truth: the same series as float with NaN at the nodata codes
    ref = xr.DataArray(np.where(gone, np.nan, dn * scale + offset), dims=da.dims,
                       coords={"time": t}, name="red")  # fmt: skip
    for lazy in (False, True):
        got = gapfill(da.chunk({"pixel": 20}) if lazy else da, "linear", freq="10D")
        want = gapfill(ref, "linear", freq="10D")
        # within 0.001 DN; interpolating the codes as observations (the old behaviour) was off
        # by about 1000 DN
        np.testing.assert_allclose(got.values, want.values, rtol=1e-5, atol=1e-3 * scale)
    assert got.dtype == np.float32 and np.isnan(got.attrs["nodata"])
    assert not {"_FillValue", "scale_factor", "add_offset"} & set(got.attrs)
    decoded = json.loads(got.attrs["eoai:parameters"])["decoded"]
    assert decoded["nodata"] == [float(code)]


def test_integer_without_declared_nodata_is_refused():
    t, dn, _ = _dn_series()
    da = xr.DataArray(dn, dims=("time", "pixel"), coords={"time": t}, name="red")
    with pytest.raises(InputError, match=r"uint16 and declares no nodata.*attrs\['nodata'\] = 0"):
        gapfill(da, "linear")
    # an explicit float conversion says "every value is an observation"
    assert not np.isnan(gapfill(da.astype("float32"), "linear").values).any()


def test_duplicate_dates_merge_values_not_nodata_codes():
    t = pd.to_datetime(["2020-01-01", "2020-01-11", "2020-01-11", "2020-01-21"])
    da = xr.DataArray(np.array([100, 0, 300, 500], "uint16"), dims="time", coords={"time": t},
                      attrs={"nodata": 0})  # fmt: skip
    with pytest.warns(DataSkippedWarning, match="1 duplicate date"):
        out = gapfill(da, "linear")
    assert out.values.tolist() == [100.0, 300.0, 500.0]  # not (0 + 300) / 2


def test_dataset_leaves_out_class_and_mask_variables_with_one_warning():
    t, dn, gone = _dn_series(n_pix=10)
    dims = ("time", "pixel")
    ds = xr.Dataset(
        {
            "red": xr.DataArray(np.where(gone, np.nan, dn), dims=dims),
            "SCL": xr.DataArray(np.full(dn.shape, 4, "uint8"), dims=dims),
            "cls": xr.DataArray(np.zeros(dn.shape, "uint8"), dims=dims,
                                attrs={"flag_values": [0, 1], "flag_meanings": "a b"}),
            "bits": xr.DataArray(np.zeros(dn.shape, "uint16"), dims=dims,
                                 attrs={"flag_masks": [1, 2], "nodata": 0}),
            "m": xr.DataArray(np.zeros(dn.shape, "uint8"), dims=dims,
                              attrs={"eoai:mask_kind": "scl"}),
            "dem": xr.DataArray(np.zeros(10), dims="pixel", attrs={"flag_values": [0]}),
        },
        coords={"time": t},
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = gapfill(ds.chunk({"pixel": 5}), "linear", freq="10D")
    msgs = [str(w.message) for w in rec if issubclass(w.category, DataSkippedWarning)]
    assert len(msgs) == 1 and "4 class/mask variable(s) ['SCL', 'cls', 'bits', 'm']" in msgs[0]
    assert set(out.data_vars) == {"red", "dem"}  # dem has no time: kept unchanged


def test_dates_far_outside_the_series_warn_and_max_gap_bounds_them():
    t = pd.date_range("2020-01-01", "2020-12-31", freq="5D")
    da = xr.DataArray(np.linspace(0.0, 1.0, t.size), dims="time", coords={"time": t})
    last = t[-1]
    dates = pd.DatetimeIndex([t[10], last + pd.Timedelta("10D"), last + pd.Timedelta("60D"),
                              last + pd.DateOffset(years=8)])  # fmt: skip
    for method, kw in (("linear", {}), ("whittaker", {"lam": 10.0}), ("harmonic", {})):
        with pytest.warns(ExtrapolationWarning, match=r"3 of 4 output dates lie outside") as rec:
            free = gapfill(da, method, dates=dates, **kw)
        assert "pass max_gap" in str(rec[0].message)
        assert np.isfinite(free.values).all()  # extrapolated: flagged, not hidden
        with pytest.warns(ExtrapolationWarning, match=r"2 of them are farther than max_gap=30"):
            bounded = gapfill(da, method, dates=dates, max_gap="30D", **kw)
        assert np.isfinite(bounded.values[:2]).all() and np.isnan(bounded.values[2:]).all()
    np.testing.assert_allclose(free.values[0], da.values[10], atol=0.05)
    # inside the series: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        gapfill(da, "linear", dates=t[::3])
        # observations at 10:00 and a daily grid at midnight: hours, not an extrapolation
        gapfill(da.assign_coords(time=t + pd.Timedelta("10h")), "linear", freq="5D")
