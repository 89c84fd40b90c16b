"""Phenology metrics against synthetic double-logistic truth, NaN cases, laziness, errors."""

from __future__ import annotations

import json
import warnings

import dask.array as dsa
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from eoai.datasets import crossing_dates, double_logistic, synthetic_cube
from eoai.datasets.synthetic import LandClass
from eoai.errors import DataSkippedWarning, InputError, MissingDimensionError, TimeAxisError
from eoai.timeseries.phenology import METRICS, phenology


@pytest.fixture(scope="module")
def daily():
    return synthetic_cube(
        shape=(20, 20), freq="1D", cloud_fraction=0.0, noise=0.0, breaks=False, seed=1,
        bands=["red", "nir"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def tenday():
    return synthetic_cube(
        shape=(20, 20), freq="10D", cloud_fraction=0.0, noise=0.0, breaks=False, seed=1,
        bands=["red", "nir"],
    )  # fmt: skip


def _record(fn, *args, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn(*args, **kw)
    return out, [str(w.message) for w in rec if issubclass(w.category, DataSkippedWarning)]


@pytest.mark.parametrize("grid,tol", [("daily", 1.0), ("tenday", 5.0)])
@pytest.mark.parametrize("threshold", [0.2, 0.5])
def test_one_season_dates_match_truth(request, grid, tol, threshold):
    _, truth = request.getfixturevalue(grid)
    ph, msgs = _record(phenology, truth.ndvi, threshold)
    one = truth.n_seasons == 1
    none = truth.n_seasons == 0
    assert int(one.sum()) > 50 and int(none.sum()) > 20
    exp = crossing_dates(truth, threshold).isel(year=0, season=0)
    for key in ("sos", "eos"):
        err = np.abs(ph[f"{key}_doy"] - exp[f"{key}_doy"]).where(one)
        assert float(err.max()) <= tol, (key, float(err.max()))
        assert bool(ph[key].notnull().where(one, True).all())
        # datetime and day-of-year agree
        doy = ph[key].dt.dayofyear + (ph[key] - ph[key].dt.floor("D")) / np.timedelta64(1, "D")
        np.testing.assert_allclose(
            doy.where(one).values, ph[f"{key}_doy"].where(one).values, atol=1e-3
        )
    pos_err = np.abs(ph.pos_doy - truth.pos_doy.isel(year=0, season=0)).where(one)
    assert float(pos_err.max()) <= tol
    # pixels without a season (water, urban): NaN/NaT, never a date, and counted in a warning
    assert bool(ph.sos.where(none).isnull().all()) and bool(ph.vpos.where(none).isnull().all())
    assert any(f"{int(none.sum())} flat" in m for m in msgs), msgs


@pytest.mark.parametrize("grid,tol", [("daily", 1.0), ("tenday", 5.0)])
def test_two_seasons_found_as_two(request, grid, tol):
    _, truth = request.getfixturevalue(grid)
    ph, msgs = _record(phenology, truth.ndvi, 0.2, seasons=2)
    assert ph.sos.dims == ("season", "y", "x") and list(ph.season.values) == [0, 1]
    two = truth.n_seasons == 2
    one = truth.n_seasons == 1
    assert int(two.sum()) > 20
    exp = crossing_dates(truth, 0.2).isel(year=0)
    for key in ("sos", "eos"):
        err = np.abs(ph[f"{key}_doy"] - exp[f"{key}_doy"]).where(two)
        assert float(err.max()) <= tol, (key, float(err.max()))
    assert bool(ph.sos.isel(season=1).where(two).notnull().where(two, True).all())
    # one-season pixels: the second season is NaN and counted
    assert bool(ph.sos.isel(season=1).where(one).isnull().all())
    err1 = np.abs(ph.sos_doy.isel(season=0) - exp.sos_doy.isel(season=0)).where(one)
    assert float(err1.max()) <= tol
    assert any(f"{int(one.sum())} of 400 pixel-years have fewer than 2 seasons" in m for m in msgs)


def test_multi_year_series_gets_a_year_dimension():
    _, truth = synthetic_cube(
        shape=(12, 12), start="2020-01-01", end="2021-12-31", freq="5D", cloud_fraction=0.0,
        noise=0.0, breaks=False, seed=3, bands=["red", "nir"], classes=["cropland", "forest", "water"],
    )  # fmt: skip
    ph, _ = _record(phenology, truth.ndvi, 0.2)
    assert ph.sos.dims == ("year", "y", "x") and list(ph.year.values) == [2020, 2021]
    exp = crossing_dates(truth, 0.2).isel(season=0)
    one = truth.n_seasons == 1
    for key in ("sos", "eos"):
        err = np.abs(ph[f"{key}_doy"] - exp[f"{key}_doy"]).where(one)
        assert float(err.max()) <= 2.5, (key, float(err.max()))
    assert (ph.sos.dt.year.where(one) == ph.year).where(one, True).all()
    # one year asked: no year dimension, scalar year coordinate
    ph21, _ = _record(phenology, truth.ndvi, 0.2, years=2021)
    assert ph21.sos.dims == ("y", "x") and int(ph21.year) == 2021
    xr.testing.assert_allclose(ph21.sos_doy, ph.sos_doy.sel(year=2021))


def _dense_truth(par, threshold):
    """Every metric from the curve evaluated every 0.001 day (independent of the kernel)."""
    t = np.arange(1.0, 366.0, 0.001)
    f = double_logistic(t, *par)
    ip = int(f.argmax())
    base = min(f[: ip + 1].min(), f[ip:].min())
    vpos = f[ip]

    def up(level):
        return t[np.nonzero(f[:ip] < level)[0][-1] + 1]

    def down(level):
        return t[ip + np.nonzero(f[ip:] < level)[0][0]]

    amp = vpos - base
    sos, eos = up(base + threshold * amp), down(base + threshold * amp)
    inside = (t >= sos) & (t <= eos)
    return {
        "sos_doy": sos, "eos_doy": eos, "pos_doy": t[ip], "vpos": vpos, "base": base,
        "amplitude": amp, "los": eos - sos,
        "vsos": base + threshold * amp, "veos": base + threshold * amp,
        "greenup_rate": 0.6 * amp / (up(base + 0.8 * amp) - up(base + 0.2 * amp)),
        "senescence_rate": 0.6 * amp / (down(base + 0.2 * amp) - down(base + 0.8 * amp)),
        "mos_doy": 0.5 * (up(base + 0.8 * amp) + down(base + 0.8 * amp)),
        "large_integral": np.trapezoid(f[inside], t[inside]),
        "small_integral": np.trapezoid(f[inside] - base, t[inside]),
    }  # fmt: skip


def test_every_metric_against_the_dense_curve():
    pars = [(0.2, 0.6, 120, 270, 0.1, 0.08), (0.35, 0.4, 95, 300, 0.06, 0.12)]
    t = pd.date_range("2021-01-01", "2021-12-31", freq="D")
    doy = np.arange(1, 366.0)
    da = xr.DataArray(
        np.stack([double_logistic(doy, *p) for p in pars], axis=1),
        dims=("time", "pixel"),
        coords={"time": t, "pixel": ["a", "b"]},
        attrs={"units": "1"},
    )
    ph = phenology(da, 0.25)
    assert set(METRICS) == set(ph.data_vars)
    for i, par in enumerate(pars):
        exp = _dense_truth(par, 0.25)
        for key, value in exp.items():
            got = float(ph[key].isel(pixel=i))
            tol = {"large_integral": 0.1, "small_integral": 0.1}.get(key, 0.02)
            rel = "rate" in key
            assert abs(got - value) <= (tol * abs(value) if rel else tol), (i, key, got, value)
    assert ph.los.attrs["units"] == "days" and ph.greenup_rate.attrs["units"] == "1/day"


def test_absolute_threshold():
    t = pd.date_range("2021-01-01", "2021-12-31", freq="D")
    doy = np.arange(1, 366.0)
    low = double_logistic(doy, 0.1, 0.3, 120, 260, 0.1, 0.1)  # peaks at 0.4 < 0.5
    high = double_logistic(doy, 0.2, 0.6, 120, 270, 0.1, 0.1)
    da = xr.DataArray(np.stack([low, high], 1), dims=("time", "p"), coords={"time": t})
    ph, msgs = _record(phenology, da, 0.5, absolute=True)
    dense = np.arange(1, 366, 0.001)
    f = double_logistic(dense, 0.2, 0.6, 120, 270, 0.1, 0.1)
    above = dense[f >= 0.5]
    assert (
        abs(float(ph.sos_doy[1]) - above[0]) < 0.05 and abs(float(ph.eos_doy[1]) - above[-1]) < 0.05
    )
    assert np.isnan(float(ph.sos_doy[0])) and np.isnat(ph.sos.values[0])
    assert any("1 without a complete season" in m for m in msgs)


def test_flat_no_season_and_all_nan_pixels_are_nan_with_counts():
    t = pd.date_range("2021-01-01", "2021-12-31", freq="5D")
    doy = np.asarray(t.day_of_year, float)
    good = double_logistic(doy, 0.2, 0.6, 120, 270, 0.1, 0.1)
    flat = np.full_like(good, 0.3) + 0.01 * np.sin(doy)
    rising = np.linspace(0.1, 0.8, doy.size)  # no peak inside the year
    empty = np.full_like(good, np.nan)
    sparse = np.where(np.arange(doy.size) % 30 == 0, good, np.nan)  # 3 valid values
    data = np.stack([good, flat, rising, empty, sparse[:]], axis=1)
    data[:, 4] = np.nan
    data[[0, 1], 4] = good[[0, 1]]
    da = xr.DataArray(data, dims=("time", "p"), coords={"time": t})
    with pytest.warns(DataSkippedWarning) as rec:
        ph = phenology(da)
    msg = str(rec[0].message)
    assert "4 of 5 pixel-years left NaN" in msg, msg
    assert "2 without data" in msg and "1 flat" in msg and "1 without a complete season" in msg
    assert np.isfinite(ph.sos_doy.values[0]) and np.isnan(ph.sos_doy.values[1:]).all()
    assert np.isnat(ph.pos.values[1:]).all() and np.isnan(ph.amplitude.values[1:]).all()


def test_lazy_dask_equals_numpy_and_metadata(count_computes, tenday):
    cube, truth = tenday
    ndvi = ((cube.nir - cube.red) / (cube.nir + cube.red)).rename("ndvi")
    ndvi.attrs["units"] = "1"
    lazy_in = ndvi.chunk({"time": 12, "y": 8, "x": 10})
    with count_computes() as c:
        lazy = phenology(lazy_in, 0.3, seasons=2, smooth="whittaker", smooth_kw={"lam": 1e4})
        assert c.count == 0
    assert isinstance(lazy.sos.data, dsa.Array) and lazy.sos.chunks[1] == (8, 8, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSkippedWarning)
        eager = phenology(ndvi, 0.3, seasons=2, smooth="whittaker", smooth_kw={"lam": 1e4})
        computed = lazy.compute()
    xr.testing.assert_identical(computed, eager)
    assert "spatial_ref" in eager.coords and eager.attrs["eoai:method"] == "phenology:threshold"
    params = json.loads(eager.attrs["eoai:parameters"])
    assert params["threshold"] == 0.3 and params["seasons"] == 2 and params["smooth"] == "whittaker"


def test_smoothed_cloudy_series_close_to_truth():
    cube, truth = synthetic_cube(shape=(16, 16), freq="5D", cloud_fraction=0.3, noise=0.01, breaks=False,
                                 seed=4, bands=["red", "nir"])  # fmt: skip
    ndvi = (cube.nir - cube.red) / (cube.nir + cube.red)
    assert float(ndvi.isnull().mean()) > 0.2
    ph, _ = _record(
        phenology, ndvi, 0.5, smooth="whittaker", smooth_kw={"lam": "gcv", "freq": "1D"}
    )
    one = truth.n_seasons == 1
    exp = crossing_dates(truth, 0.5).isel(year=0, season=0)
    err = np.abs(ph.sos_doy - exp.sos_doy).where(one).values
    err = err[np.isfinite(err)]
    assert err.size >= 0.95 * int(one.sum())
    assert np.median(err) <= 3.0 and np.percentile(err, 90) <= 8.0, (
        np.median(err),
        np.percentile(err, 90),
    )


def test_accessor_calls_phenology(daily):
    import eoai  # noqa: F401

    _, truth = daily
    sub = truth.ndvi.isel(x=slice(0, 4))
    a, _ = _record(sub.eoai.phenology, 0.3)
    b, _ = _record(phenology, sub, 0.3)
    xr.testing.assert_identical(a, b)


def test_errors():
    t = pd.date_range("2021-01-01", periods=10, freq="10D")
    da = xr.DataArray(np.linspace(0, 1, 10), dims="time", coords={"time": t})
    with pytest.raises(InputError, match="seasons must be 1 or 2"):
        phenology(da, seasons=3)
    with pytest.raises(InputError, match=r"must be a fraction of the amplitude in \(0, 1\)"):
        phenology(da, threshold=1.5)
    with pytest.raises(InputError, match="base must be 'min' or 'sides'"):
        phenology(da, base="mean")
    with pytest.raises(InputError, match="choose the variable"):
        phenology(xr.Dataset({"a": da, "b": da}))
    with pytest.raises(TimeAxisError, match=r"years \[2019\] are outside the series"):
        phenology(da, years=[2019])
    with pytest.raises(MissingDimensionError):
        phenology(da.rename(time="t"))
    with pytest.raises(TimeAxisError, match="2 dates are too few"):
        phenology(da.isel(time=slice(0, 2)))


def test_base_sides_uses_each_side_minimum():
    t = pd.date_range("2021-01-01", "2021-12-31", freq="D")
    doy = np.arange(1, 366.0)
    # late, slow senescence: the curve is still well above its base on 31 December
    v = double_logistic(doy, 0.2, 0.6, 120, 330, 0.1, 0.03)
    da = xr.DataArray(v, dims="time", coords={"time": t})
    dense = np.arange(1, 365.0005, 0.001)  # the span of the daily samples
    f = double_logistic(dense, 0.2, 0.6, 120, 330, 0.1, 0.03)
    ip = int(f.argmax())
    lmin, rmin, vpos = f[: ip + 1].min(), f[ip:].min(), f[ip]
    assert rmin - lmin > 0.1
    sides = phenology(da, 0.3, base="sides")
    low = phenology(da, 0.3)  # base="min": one base, the lower minimum
    lev_r = rmin + 0.3 * (vpos - rmin)
    exp_eos = dense[ip + np.nonzero(f[ip:] < lev_r)[0][0]]
    assert abs(float(sides.eos_doy) - exp_eos) < 0.05
    assert abs(float(sides.base) - 0.5 * (lmin + rmin)) < 1e-3
    assert abs(float(low.base) - lmin) < 1e-3
    # with one (lower) base the end-of-season level is lower, so the season ends later or not at all
    assert np.isnan(float(low.eos_doy)) or float(low.eos_doy) > exp_eos
    np.testing.assert_allclose(float(sides.sos_doy), float(low.sos_doy), atol=1e-6)


# --- season years that cross 1 January (southern hemisphere, double cropping) -------------------

# soy from October to April (peak in January); soy (October-January) then a second crop
# (February-June), as in Mato Grosso. Days past 366 fall in the next calendar year.
SOY_SOUTH = LandClass(
    "soy_south", "#ffd92f", base=0.2, seasons=((290, 465),), amplitude=0.6, rate_up=0.1,
    rate_down=0.1,
)  # fmt: skip
SOY_MAIZE = LandClass(
    "soy_maize", "#ff7f00", base=0.2, seasons=((280, 380), (425, 530)), amplitude=(0.6, 0.5),
    rate_up=0.14, rate_down=0.12,
)  # fmt: skip


@pytest.fixture(scope="module")
def south():
    return synthetic_cube(
        shape=(20, 20), start="2021-01-01", end="2022-12-31", freq="5D", cloud_fraction=0.0,
        noise=0.0, breaks=False, seed=5, bands=["red", "nir"],
        classes=["water", "urban", SOY_SOUTH, SOY_MAIZE],
    )  # fmt: skip


def _days_off(a, b):
    return np.abs((a - b) / np.timedelta64(1, "D"))


def test_southern_season_found_with_year_start(south):
    _, truth = south
    # the season drawn for 2020 reaches into the series, so the truth starts in 2020
    assert list(truth.year.values) == [2020, 2021, 2022]
    soy = truth["class"] == 2
    assert int(soy.sum()) > 50
    exp = crossing_dates(truth, 0.2).sel(year=2021, season=0)
    # 20 % crossings: late September / October and late April / May
    assert set(np.unique(exp.sos.dt.month.values[soy.values])) <= {9, 10}
    assert set(np.unique(exp.eos.dt.month.values[soy.values])) <= {4, 5}
    # calendar years (the old and default behaviour): the season is cut by 1 January, NaN
    cal, msgs = _record(phenology, truth.ndvi, 0.2)
    assert list(cal.year.values) == [2021, 2022]
    assert bool(cal.sos.where(soy).isnull().all()) and bool(cal.eos.where(soy).isnull().all())
    assert any("without a complete season" in m for m in msgs)
    # August-July season years: found in every soy pixel, dates within a day of the truth
    ph, _ = _record(phenology, truth.ndvi, 0.2, year_start="08-01")
    assert list(ph.year.values) == [2020, 2021, 2022]
    assert str(ph.window_start.sel(year=2021).values)[:10] == "2021-08-01"
    assert str(ph.window_end.sel(year=2021).values)[:10] == "2022-08-01"
    p = ph.sel(year=2021)
    for key in ("sos", "eos"):
        err = _days_off(p[key], exp[key]).where(soy)
        assert bool(p[key].notnull().where(soy, True).all()) and float(err.max()) <= 1.0, key
    assert float(_days_off(p.pos, truth.pos.sel(year=2021, season=0)).where(soy).max()) <= 1.0
    assert (p.eos.dt.year.where(soy) == 2022).where(soy, True).all()
    # days since the window start keep counting past 1 January; day of year is the calendar one
    days = (p.eos - p.window_start) / np.timedelta64(1, "D")
    np.testing.assert_allclose(p.eos_days.where(soy), days.where(soy), atol=1e-3)
    assert bool((p.eos_days > p.sos_days).where(soy, True).all())
    assert bool((p.eos_doy < p.sos_doy).where(soy, True).all())
    np.testing.assert_allclose(p.los.where(soy), (p.eos_days - p.sos_days).where(soy), atol=1e-3)
    # the first window holds only the end of the 2020 season: NaN, never a made-up date
    assert bool(ph.sos.sel(year=2020).where(soy).isnull().all())
    assert json.loads(ph.attrs["eoai:parameters"])["year_start"] == "08-01"


def test_double_cropping_across_new_year(south):
    _, truth = south
    dbl = truth["class"] == 3
    assert int(dbl.sum()) > 50
    exp = crossing_dates(truth, 0.2).sel(year=2021)
    ph, _ = _record(phenology, truth.ndvi, 0.2, seasons=2, year_start="08-01")
    p = ph.sel(year=2021)
    assert p.sos.dims == ("season", "y", "x")
    for key in ("sos", "eos"):
        err = _days_off(p[key], exp[key]).where(dbl)
        assert bool(p[key].notnull().where(dbl, True).all()) and float(err.max()) <= 1.5, key
    # soy from October to January, the second crop from February to June
    months = {k: p[k].dt.month.where(dbl) for k in ("sos", "eos")}
    assert set(np.unique(months["sos"].isel(season=0).values[dbl.values])) <= {9, 10}
    assert set(np.unique(months["eos"].isel(season=0).values[dbl.values])) <= {1, 2}
    assert set(np.unique(months["sos"].isel(season=1).values[dbl.values])) <= {2, 3}
    assert set(np.unique(months["eos"].isel(season=1).values[dbl.values])) <= {6, 7}
    # calendar years: the soy season (peak in November, end in January) is never found
    cal, _ = _record(phenology, truth.ndvi, 0.2, seasons=2)
    soy_sos = exp.sos.isel(season=0)
    near = [(_days_off(cal.sos.sel(year=y).isel(season=s), soy_sos) < 10) for y in (2021, 2022)
            for s in (0, 1)]  # fmt: skip
    assert not any(bool(n.where(dbl, False).any()) for n in near)


def test_minima_windows_cross_the_window_edges(south):
    _, truth = south
    soy = truth["class"] == 2
    exp = crossing_dates(truth, 0.2).sel(season=0)
    # calendar windows, seasons between the pixel's own minima: each season belongs to the year of
    # its peak and its start (October of the year before) lies outside that window
    ph, _ = _record(phenology, truth.ndvi, 0.2, windows="minima")
    peak_year = truth.pos.sel(year=2021, season=0).dt.year
    for y in (2021, 2022):
        here = soy & (peak_year == y)
        if not bool(here.any()):
            continue
        p = ph.sel(year=y)
        for key in ("sos", "eos"):
            err = _days_off(p[key], exp[key].sel(year=2021)).where(here)
            assert float(err.max()) <= 1.0 and bool(p[key].notnull().where(here, True).all())
    both = soy & (peak_year == 2022)
    assert int(both.sum()) > 10
    assert bool((ph.sos_days.sel(year=2022) < 0).where(both, True).all())
    # with a season year starting in the off-season, the same dates as windows="year"
    a, _ = _record(phenology, truth.ndvi, 0.2, windows="minima", year_start="08-01")
    b, _ = _record(phenology, truth.ndvi, 0.2, year_start="08-01")
    err = _days_off(a.sos.sel(year=2021), b.sos.sel(year=2021)).where(soy)
    assert float(err.max()) <= 0.5
    assert bool(a.sos.sel(year=2021).notnull().where(soy, True).all())


def test_minima_windows_equal_year_windows_on_one_window(daily):
    _, truth = daily
    sub = truth.ndvi.isel(x=slice(0, 6))
    a, _ = _record(phenology, sub, 0.3, seasons=2)
    b, _ = _record(phenology, sub, 0.3, seasons=2, windows="minima")
    for k in a.data_vars:
        xr.testing.assert_identical(a[k], b[k])


def test_year_start_errors():
    t = pd.date_range("2021-01-01", periods=40, freq="10D")
    da = xr.DataArray(np.sin(np.arange(40) / 6.0), dims="time", coords={"time": t})
    for bad in ("9-01", "13-01", "02-29", "09/01", 901, "auto"):
        with pytest.raises(InputError, match="year_start must be 'MM-DD'"):
            phenology(da, year_start=bad)
    with pytest.raises(InputError, match="windows must be 'year'"):
        phenology(da, windows="calendar")
    with pytest.raises(TimeAxisError, match=r"years \[2019\] are outside .*starting on 09-01"):
        phenology(da, years=2019, year_start="09-01")
    with pytest.raises(InputError, match="has duplicates"):
        phenology(da, years=[2021, 2021])
