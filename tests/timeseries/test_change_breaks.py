"""detect_breaks (BFAST Monitor): truth on synthetic series, reference agreement, laziness, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from eoai.errors import (
    DataSkippedWarning,
    EoaiWarning,
    InputError,
    MissingDimensionError,
    TimeAxisError,
)
from eoai.testing.bfast_reference import bfastmonitor_pixel
from eoai.timeseries import _breaks_numba
from eoai.timeseries._mosum_critvals import mosum_critval, simulate_mosum_critvals
from eoai.timeseries.breaks import detect_breaks

SD = 0.03
MONITOR = "2021-01-01"


def _series_cube(n_pix=2000, n_t=200, seed=0, cloud=0.2, share_break=0.5, mag=(3.0, 6.0)):
    """Harmonic seasons + noise (sd SD) + negative steps of mag*SD at known dates; clouds NaN."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2018-01-01", periods=n_t, freq="8D")
    ty = _breaks_numba.decimal_year(t.values)
    amp = rng.uniform(0.1, 0.3, n_pix)[:, None]
    phase = rng.uniform(0, 2 * np.pi, n_pix)[:, None]
    y = 0.5 + amp * np.sin(2 * np.pi * ty + phase) + 0.04 * np.cos(4 * np.pi * ty)
    y = y + 0.01 * (ty - ty[0])  # a slow trend
    y = y + rng.normal(0, SD, y.shape)
    mon_idx = int(np.searchsorted(t.values, np.datetime64(MONITOR)))
    has_break = rng.random(n_pix) < share_break
    bidx = rng.integers(mon_idx, mon_idx + 30, n_pix)
    size = rng.uniform(*mag, n_pix)
    after = np.arange(n_t)[None, :] >= bidx[:, None]
    y = y - np.where(has_break[:, None] & after, size[:, None] * SD, 0.0)
    y[rng.random(y.shape) < cloud] = np.nan
    shape = (n_pix // 50, 50) if n_pix % 50 == 0 else (n_pix // 10, 10)
    da = xr.DataArray(
        y.reshape(*shape, n_t),
        dims=("y", "x", "time"),
        coords={"time": t, "y": np.arange(shape[0]) * -10.0, "x": np.arange(shape[1]) * 10.0},
        name="ndvi",
        attrs={"units": "1"},
    ).transpose("time", "y", "x")
    truth = {
        "has_break": has_break.reshape(shape),
        "break_idx": bidx.reshape(shape),
        "valid": np.isfinite(y).reshape(*shape, n_t),
    }
    return da, truth


@pytest.fixture(scope="module")
def cube_truth():
    return _series_cube()


def _obs_error(out, da, truth):
    """Break date error in valid observations for detected true breaks."""
    valid = truth["valid"]
    nvalid_before = np.cumsum(valid, axis=-1) - valid  # valid obs strictly before each date
    sel = truth["has_break"] & (out["break"].values == 1)
    times = da["time"].values
    est_idx = np.searchsorted(times, out["break_date"].values[sel])
    iy, ix = np.nonzero(sel)
    est = nvalid_before[iy, ix, est_idx]
    true = nvalid_before[iy, ix, truth["break_idx"][sel]]
    return est - true


@pytest.mark.parametrize("history", ["roc", "all"])
def test_detection_false_alarm_and_dates(cube_truth, history):
    da, truth = cube_truth
    out = detect_breaks(da, MONITOR, history=history)
    assert (out["status"].values == 0).all()
    brk = out["break"].values == 1
    detection = brk[truth["has_break"]].mean()
    false_alarm = brk[~truth["has_break"]].mean()
    assert detection >= 0.95, detection
    assert false_alarm <= 0.05, false_alarm
    err = _obs_error(out, da, truth)
    assert (np.abs(err) <= 1).mean() >= 0.95, np.abs(err).max()
    assert np.median(err) == 0
    # no break date on pixels without break, every detection after monitor start
    assert np.isnat(out["break_date"].values[~brk]).all()
    assert (out["detection_date"].values[brk] >= np.datetime64(MONITOR)).all()
    assert (out["detection_date"].values[brk] >= out["break_date"].values[brk]).all()
    # magnitude: median residual ~ -step on broken pixels (most of the period after the break)
    mag = out["magnitude"].values
    assert np.nanmedian(mag[truth["has_break"]]) < -3 * SD
    assert abs(np.nanmedian(mag[~truth["has_break"]])) < 0.5 * SD


def test_asymptotic_scaling_with_trend_is_oversized(cube_truth):
    """bfastmonitor's plain scaling with a trend: far more false alarms than the level (why 'exact')."""
    da, truth = cube_truth
    out = detect_breaks(da, MONITOR, history="all", standardize="asymptotic")
    fa = (out["break"].values == 1)[~truth["has_break"]].mean()
    assert fa > 0.08
    assert out.attrs["eoai:standardize"] == "asymptotic"


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("roc", [False, True])
def test_kernel_matches_per_pixel_reference(roc, exact):
    da, _ = _series_cube(n_pix=120, seed=3)
    y = da.transpose("y", "x", "time").values.reshape(-1, da.sizes["time"])
    y[::7, :40] += 0.2  # disturbed early history for ROC to cut off
    t = da["time"].values
    X = _breaks_numba.design_matrix(_breaks_numba.decimal_year(t), 3, True)
    mon_idx = int(np.searchsorted(t, np.datetime64(MONITOR)))
    lam, cv = _breaks_numba.roc_critval(0.05), mosum_critval(0.25, 10, 0.05)
    got = _breaks_numba.run_kernel(y, X, mon_idx, 0, roc, lam, 0.25, cv, 9, exact)
    names = ["break", "detect_idx", "break_idx", "magnitude", "start_idx", "n_valid", "n_history"]
    ref = [
        bfastmonitor_pixel(y[p], X, mon_idx, 0, roc, lam, 0.25, cv, 9, exact) for p in range(120)
    ]
    for i, name in enumerate(names):
        want = np.array([r[name] for r in ref])
        if name == "magnitude":
            np.testing.assert_allclose(got[i], want, atol=1e-10)
        else:
            np.testing.assert_array_equal(got[i], want, err_msg=name)
    if roc:
        assert (got[4] > 0).sum() >= 10  # the disturbed histories were cut


@pytest.mark.parametrize("order", [1, 3, 4, 5])
def test_roc_lanes_kernel_matches_givens_kernel(order):
    """The lane-block ROC pass (Givens then RLS) gives the starts of the all-Givens first version.

    Random NaN-laden series (20 % clouds, empty pixels, very cloudy pixels, pixels with a short
    history: blocks that never leave the Givens phase, dates clouded over whole blocks: skipped
    steps), disturbed early histories to be cut,
    pixel counts that are not a multiple of the lane block, with and without trend, order 5 +
    trend (12 columns) through the fallback.
    """
    rng = np.random.default_rng(order)
    n_pix, t = 1001, pd.date_range("2017-01-01", periods=230, freq="8D")
    ty = _breaks_numba.decimal_year(t.values)
    y = 0.5 + 0.2 * np.sin(2 * np.pi * ty + rng.uniform(0, 6, (n_pix, 1)))
    y = y + rng.normal(0, SD, (n_pix, t.size))
    y[::5, : rng.integers(20, 120)] -= 0.15  # old land cover early in the history
    y[rng.random(y.shape) < 0.2] = np.nan
    y[::11] = np.nan
    y[5::13, rng.random(t.size) < 0.7] = np.nan
    y[3::17, :150] = np.nan
    y[:, rng.random(t.size) < 0.05] = np.nan  # dates clouded everywhere
    y[:96, rng.random(t.size) < 0.3] = np.nan  # clouds over the first lane blocks
    y = y.astype(np.float32)
    lam = _breaks_numba.roc_critval(0.05)
    for trend in (True, False):
        X = _breaks_numba.design_matrix(ty, order, trend)
        for mon_date, hist_idx in (("2021-01-01", 0), ("2020-06-01", 10)):
            mon_idx = int(np.searchsorted(t.values, np.datetime64(mon_date)))
            want, got = np.zeros(n_pix, np.int64), np.zeros(n_pix, np.int64)
            _breaks_numba.roc_starts_general(y, X, mon_idx, hist_idx, lam, want)
            _breaks_numba.roc_starts(y, X, mon_idx, hist_idx, lam, got)
            np.testing.assert_array_equal(got, want)
            assert (want > 0).sum() >= 50  # many histories were cut


@pytest.mark.parametrize("order, trend", [(3, True), (1, False), (4, True)])
def test_bfm_kernel_matches_first_kernel(order, trend):
    """The vectorised monitoring kernel gives the results of the first (per-observation) one.

    Random NaN-laden series (20 % clouds, empty pixels, 70 % cloudy pixels, 5-observation
    histories, nothing to monitor), disturbed early histories and breaks, every combination of
    ROC / fixed history, exact / asymptotic scaling, h and history start. Flags, dates, counts
    equal; magnitudes to rounding (on the well-conditioned fits).
    """
    from eoai.testing.bfast_reference import bfm_kernel_v1

    rng = np.random.default_rng(order)
    n_pix, t = 1003, pd.date_range("2018-01-01", periods=200, freq="8D")
    ty = _breaks_numba.decimal_year(t.values)
    y = 0.5 + 0.2 * np.sin(2 * np.pi * ty + rng.uniform(0, 6, (n_pix, 1)))
    y = y + rng.normal(0, SD, (n_pix, t.size))
    y[::5, :40] -= 0.15
    y[rng.random(n_pix) < 0.3, 150:] -= 4 * SD
    y[rng.random(y.shape) < 0.2] = np.nan
    y[::11] = np.nan
    y[5::13, rng.random(t.size) < 0.7] = np.nan
    y[3::17, :132] = np.nan
    y[2::19, 105:] = np.nan
    y = y.astype(np.float32)
    X = _breaks_numba.design_matrix(ty, order, trend)
    lam = _breaks_numba.roc_critval(0.05)
    names = ["break", "detect_idx", "break_idx", "magnitude", "start_idx", "n_valid", "n_history"]
    for mon_date, hist_idx in (("2021-01-01", 0), ("2020-06-01", 10)):
        mon_idx = int(np.searchsorted(t.values, np.datetime64(mon_date)))
        for h in (0.25, 0.5):
            cv = mosum_critval(h, 10, 0.05)
            for roc in (False, True):
                s0 = np.zeros(n_pix, np.int64)
                if roc:
                    _breaks_numba.roc_starts(y, X, mon_idx, hist_idx, lam, s0)
                for exact in (False, True):
                    got = _breaks_numba.run_kernel(
                        y, X, mon_idx, hist_idx, roc, lam, h, cv, 9, exact
                    )
                    want = [
                        np.zeros(n_pix, np.bool_),
                        *(np.empty(n_pix, np.int64) for _ in range(2)),
                        np.empty(n_pix),
                        np.empty(n_pix, np.int64),
                        *(np.empty(n_pix, np.int32) for _ in range(2)),
                        np.empty(n_pix, np.int8),
                    ]
                    bfm_kernel_v1(y, X, mon_idx, hist_idx, s0, h, cv, 9, exact, *want)
                    # fits of a few weeks of history (ROC cuts, 10 parameters on 11 dates) are
                    # ill-conditioned: rounding decides there, they are left out (few)
                    sel = (want[6] >= 3 * X.shape[1]) | ~np.isin(want[7], [0, 4])
                    assert sel.mean() > 0.9
                    for i, name in enumerate([*names, "status"]):
                        g, w = got[i][sel], want[i][sel]
                        if name == "magnitude":
                            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9)
                        else:
                            np.testing.assert_array_equal(g, w, err_msg=name)
                    assert 0.05 < got[0].mean() < 0.6
                    assert {0, 1, 2, 3} <= set(np.unique(got[7]).tolist())


def test_kernels_match_first_kernels_on_real_clouds():
    """Embedded Slovenia NDVI (67 dates, 39 % masked by the real cloud mask, clouds spatially
    coherent so that whole lane blocks miss dates): current and first kernels agree."""
    import eoai
    from eoai.testing.bfast_reference import run_kernel_v1

    ds = eoai.load(eoai.datasets.sample_catalog(), bands=["ndvi"], collections=["slovenia-ndvi"])
    t = ds["time"].values
    Y = np.ascontiguousarray(ds["ndvi"].transpose("y", "x", "time").values.reshape(-1, t.size))
    assert 0.3 < np.isnan(Y).mean() < 0.5
    X = _breaks_numba.design_matrix(_breaks_numba.decimal_year(t), 1, True)
    lam, cv = _breaks_numba.roc_critval(0.05), mosum_critval(0.25, 10, 0.05)
    for roc, exact in ((True, True), (False, False)):
        got = _breaks_numba.run_kernel(Y, X, 44, 0, roc, lam, 0.25, cv, 9, exact)
        want = run_kernel_v1(Y, X, 44, 0, roc, lam, 0.25, cv, 9, exact)
        for i in (0, 1, 2, 4, 5, 6, 7):
            np.testing.assert_array_equal(got[i], want[i])
        np.testing.assert_allclose(got[3], want[3], rtol=1e-9, atol=1e-12)
        assert 0.02 < got[0].mean() < 0.5 and (got[7] == 0).all()


def test_roc_cuts_disturbed_history():
    rng = np.random.default_rng(5)
    t = pd.date_range("2016-01-01", periods=230, freq="8D")
    ty = _breaks_numba.decimal_year(t.values)
    y = 0.6 + 0.2 * np.sin(2 * np.pi * ty) + rng.normal(0, SD, (50, t.size))
    y[:, t < "2017-06-01"] -= 0.25  # the old land cover, before a change in mid-2017
    da = xr.DataArray(y.T[:, :, None], dims=("time", "y", "x"), coords={"time": t})
    out = detect_breaks(da, "2020-06-01", history="roc")
    start = pd.DatetimeIndex(out["history_start"].values.ravel())
    # the reverse CUSUM crosses its boundary some observations after passing the change (going
    # backwards), so the history starts a little before mid-2017 but after most of the old cover
    assert (start >= pd.Timestamp("2016-10-01")).all() and (
        start < pd.Timestamp("2017-06-01")
    ).all()
    assert (out["break"].values == 1).mean() <= 0.5
    # with the whole history the model is wrong and breaks everywhere
    assert (detect_breaks(da, "2020-06-01", history="all")["break"].values == 1).mean() >= 0.9
    # a fixed history date gives that start
    fixed = detect_breaks(da, "2020-06-01", history="2018-01-01")
    assert (fixed["history_start"].values >= np.datetime64("2018-01-01")).all()
    assert (fixed["history_start"].values < np.datetime64("2018-01-10")).all()


def test_flags_for_pixels_without_enough_data():
    rng = np.random.default_rng(2)
    t = pd.date_range("2019-01-01", periods=100, freq="10D")
    y = 0.5 + rng.normal(0, SD, (4, t.size))
    y[0] = np.nan  # no data at all
    y[1, : int(np.searchsorted(t, np.datetime64("2020-06-01"))) - 5] = np.nan  # 5 history obs
    y[2, t >= "2020-06-01"] = np.nan  # nothing to monitor
    da = xr.DataArray(y.T.reshape(t.size, 2, 2), dims=("time", "y", "x"), coords={"time": t})
    with pytest.warns(DataSkippedWarning) as rec:
        out = detect_breaks(da, "2020-06-01")
    msgs = [str(w.message) for w in rec if issubclass(w.category, DataSkippedWarning)]
    assert msgs == [
        "detect_breaks: 3 of 4 pixels were not monitored and are NaN/NaT in break, break_date, "
        "detection_date and magnitude (1 no valid observations, 1 history too short, "
        "1 no observation in monitoring period); see the status variable"
    ], msgs
    assert out["status"].values.ravel().tolist() == [1, 2, 3, 0]
    assert np.isnat(out["break_date"].values.ravel()[:3]).all()
    assert out["n_valid"].values.ravel().tolist()[:1] == [0]
    assert np.isnan(out["magnitude"].values.ravel()[:3]).all()
    # not monitored is no answer, never "no break" (it was False before)
    assert np.isnan(out["break"].values.ravel()[:3]).all()
    assert out["break"].values.ravel()[3] in (0.0, 1.0)
    assert "history_too_short" in out["status"].attrs["flag_meanings"]


def test_lazy_and_numpy_dask_agree(cube_truth, count_computes):
    da, _ = cube_truth
    small = da.isel(y=slice(0, 20))
    lazy = small.chunk({"time": 50, "y": 10, "x": 25})  # time split on purpose
    with count_computes() as c:
        out = detect_breaks(lazy, MONITOR)
        assert out["break"].chunks is not None
    assert c.count == 0
    eager = detect_breaks(small, MONITOR)
    computed = out.compute()
    xr.testing.assert_identical(computed, eager)
    assert eager.attrs["eoai:method"] == "detect_breaks:bfastmonitor"
    assert eager.attrs["eoai:monitor_start"] == MONITOR
    assert eager["magnitude"].attrs["units"] == "1"


def test_dataset_variable_crs_and_accessor(cube_truth):
    da, _ = cube_truth
    small = da.isel(y=slice(0, 4)).assign_coords(
        spatial_ref=xr.DataArray(0, attrs={"crs_wkt": "x"})
    )
    ds = xr.Dataset({"ndvi": small, "other": small * 2})
    with pytest.raises(InputError, match="variable="):
        detect_breaks(ds, MONITOR)
    out = ds.eoai.detect_breaks(MONITOR, variable="ndvi")
    ref = detect_breaks(small, MONITOR)
    np.testing.assert_array_equal(out["break"].values, ref["break"].values)
    assert "spatial_ref" in out.coords
    assert out.attrs["eoai:variable"] == "ndvi"


def test_synthetic_cube_clear_cuts():
    """Clear-cuts of eoai.datasets.synthetic_cube (double-logistic forest, clouds): found and dated.

    Its stable forest varies from year to year (amplitude x 0.85-1.1), more than the noise, which
    bfastmonitor's model calls change too: only the clear-cuts' detection and dates are checked
    here; the false-alarm rate is checked on the harmonic series above.
    """
    from eoai.datasets.synthetic import synthetic_cube

    cube, truth = synthetic_cube(
        shape=(30, 30), start="2016-01-01", end="2021-12-31", freq="10D", classes=["forest"],
        breaks=6, cloud_fraction=0.2, noise=0.01, seed=3, parcel_size=60, bands=["red", "nir"],
    )  # fmt: skip
    ndvi = (cube["nir"] - cube["red"]) / (cube["nir"] + cube["red"])
    out = detect_breaks(ndvi, "2019-01-01", history="all")
    bd = truth["break_date"].values
    monitored = ~np.isnat(bd) & (bd > np.datetime64("2019-01-01"))
    stable = np.isnat(bd)
    assert monitored.sum() > 100 and stable.sum() > 100
    assert (out["break"].values == 1)[monitored].mean() >= 0.95
    err = np.abs(out["break_date"].values[monitored] - bd[monitored]) / np.timedelta64(1, "D")
    assert np.nanmedian(err) == 0
    assert np.nanmean(err <= 10) >= 0.9  # within one acquisition
    assert np.nanmedian(out["magnitude"].values[monitored]) < -0.3  # forest -> bare soil
    assert abs(np.nanmedian(out["magnitude"].values[stable])) < 0.05
    assert "spatial_ref" in out.coords


def test_critical_values_match_strucchange():
    # strucchange's monitorMECritvalTable ("max") at (h, period=10, 1 - alpha)
    published = {
        (0.25, 0.05): 1.34182,
        (0.25, 0.01): 1.52164,
        (0.5, 0.05): 1.90200,
        (1.0, 0.05): 2.74593,
    }
    for (h, alpha), want in published.items():
        assert mosum_critval(h, 10, alpha) == pytest.approx(want, rel=0.005)
    assert _breaks_numba.roc_critval(0.05) == pytest.approx(
        0.9479, abs=1e-3
    )  # Brown-Durbin-Evans 0.948
    # the simulation function reproduces the table (roughly, few replicates)
    sim = simulate_mosum_critvals((0.25,), (10,), (0.95,), nrep=3000, seed=7)
    assert sim[0, 0, 0] == pytest.approx(mosum_critval(0.25, 10, 0.05), rel=0.03)


def test_errors(cube_truth):
    da, _ = cube_truth
    small = da.isel(y=slice(0, 2))
    with pytest.raises(TimeAxisError, match="outside the series"):
        detect_breaks(small, "2030-01-01")
    with pytest.raises(TimeAxisError, match="outside the series"):
        detect_breaks(small, "2010-01-01")
    with pytest.raises(TimeAxisError, match=r"shorter than the model needs: 8 parameters"):
        detect_breaks(small, "2018-02-01")
    with pytest.raises(TimeAxisError, match="must be before monitor_start"):
        detect_breaks(small, MONITOR, history="2021-06-01")
    with pytest.raises(InputError, match="h=0.3"):
        detect_breaks(small, MONITOR, h=0.3)
    with pytest.raises(InputError, match="level"):
        detect_breaks(small, MONITOR, level=0.2)
    with pytest.raises(InputError, match="order"):
        detect_breaks(small, MONITOR, order=0)
    with pytest.raises(InputError, match="standardize"):
        detect_breaks(small, MONITOR, standardize="x")
    with pytest.raises(InputError, match="device"):
        detect_breaks(small, MONITOR, device="tpu")
    with pytest.raises(MissingDimensionError, match="'time'"):
        detect_breaks(small.isel(time=0), MONITOR)
    # the time axis is checked as gapfill / phenology check it: sorted with a warning
    with pytest.warns(EoaiWarning, match="detect_breaks: the 'time' axis was not sorted"):
        reversed_ = detect_breaks(small.isel(time=slice(None, None, -1)), MONITOR)
    xr.testing.assert_identical(reversed_, detect_breaks(small, MONITOR))
    with pytest.raises(InputError, match="DataArray or Dataset"):
        detect_breaks(small.values, MONITOR)
