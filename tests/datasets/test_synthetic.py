"""eoai.datasets.synthetic: the generated cube matches the truth it returns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from eoai.datasets import (
    DEFAULT_CLASSES,
    LandClass,
    crossing_dates,
    double_logistic,
    logistic_crossing,
    synthetic_cube,
)
from eoai.errors import InputError, UnknownBandError

MASKED_SCL = [3, 8, 9, 10]


@pytest.fixture(scope="module")
def clean():
    """No noise: NDVI from the bands must equal the truth exactly."""
    return synthetic_cube(shape=(48, 40), noise=0.0, seed=5)


def _ndvi(cube):
    return (cube.nir - cube.red) / (cube.nir + cube.red)


def test_double_logistic_values_and_broadcast():
    t = np.array([1.0, 120.0, 195.0, 270.0, 365.0])
    v = double_logistic(t, 0.2, 0.6, 120, 270, 0.1, 0.1)
    # f(sos) = base + amp * (1/2 - s(-15)), s(-15) = 1/(1+e^15)
    assert v[1] == pytest.approx(0.2 + 0.6 * (0.5 - 1 / (1 + math.exp(15))), abs=1e-12)
    assert v[2] == pytest.approx(0.2 + 0.6 * (1 / (1 + math.exp(-7.5)) - 1 / (1 + math.exp(7.5))))
    assert v[0] == pytest.approx(0.2, abs=1e-4) and v[4] == pytest.approx(0.2, abs=1e-3)
    grid = double_logistic(t[:, None], 0.1, np.array([0.5, 0.7]), 120, 270, 0.1, 0.08)
    assert grid.shape == (5, 2)
    assert grid[2, 1] > grid[2, 0]


def test_logistic_crossing_is_the_inverse_of_each_logistic():
    up, down = logistic_crossing(0.2, 100.0, 250.0, 0.12, 0.07)
    assert up == pytest.approx(100 + math.log(0.25) / 0.12)
    assert down == pytest.approx(250 - math.log(0.25) / 0.07)
    assert 1 / (1 + math.exp(-0.12 * (up - 100))) == pytest.approx(0.2)
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        logistic_crossing(1.0, 100, 250, 0.1, 0.1)


def test_same_seed_same_cube_other_seed_other_cube():
    a = synthetic_cube(shape=(16, 16), seed=11)
    b = synthetic_cube(shape=(16, 16), seed=11)
    xr.testing.assert_identical(a[0], b[0])
    xr.testing.assert_identical(a[1], b[1])
    c = synthetic_cube(shape=(16, 16), seed=12)
    assert not np.array_equal(a[1]["class"].values, c[1]["class"].values)


def test_grid_crs_dtypes():
    cube, truth = synthetic_cube(shape=(20, 30), seed=1)
    assert dict(cube.sizes) == {"time": 73, "y": 20, "x": 30}
    assert cube.odc.crs.epsg == 32631
    assert cube.odc.geobox.resolution.x == 10 and cube.odc.geobox.resolution.y == -10
    assert float(cube.x[1] - cube.x[0]) == 10.0 and float(cube.y[1] - cube.y[0]) == -10.0
    assert cube.time.dtype == np.dtype("datetime64[ns]")
    assert str(cube.time[0].dt.date.item()) == "2021-01-01"
    assert all(cube[b].dtype == np.float32 for b in cube.data_vars if b != "scl")
    assert cube.scl.dtype == np.uint8
    assert truth.odc.crs.epsg == 32631
    assert truth["class"].attrs["class_names"] == list(DEFAULT_CLASSES)
    assert cube.attrs["eoai:method"] == "synthetic_cube"


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.6])
def test_cloud_fraction_close_to_request_and_masks_match_scl(fraction):
    cube, truth = synthetic_cube(shape=(40, 40), cloud_fraction=fraction, seed=3)
    scl = cube.scl.values
    assert np.isin(scl, [8, 9, 10]).mean() == pytest.approx(fraction, abs=0.02)
    masked = np.isin(scl, MASKED_SCL)
    assert (scl == 3).any()  # shadows exist
    np.testing.assert_array_equal(truth.clear.values, ~masked)
    for band in ("red", "nir", "swir16"):
        np.testing.assert_array_equal(np.isnan(cube[band].values), masked)
    # clouds are blobs, not salt-and-pepper: most cloudy pixels have a cloudy right neighbour
    cl = np.isin(scl, [8, 9, 10])
    assert (cl[:, :, 1:] & cl[:, :, :-1]).sum() / cl[:, :, 1:].sum() > 0.85


def test_ndvi_of_clear_pixels_equals_the_truth_without_noise(clean):
    cube, truth = clean
    nd = _ndvi(cube)
    clear = truth.clear.values
    np.testing.assert_allclose(nd.values[clear], truth.ndvi.values[clear], atol=2e-6)


def test_ndvi_follows_the_curve_within_noise():
    cube, truth = synthetic_cube(shape=(40, 40), noise=0.01, seed=4, classes=["cropland", "forest"])
    resid = (_ndvi(cube) - truth.ndvi).values[truth.clear.values]
    rms = float(np.sqrt(np.mean(resid**2)))
    # red + nir ~ 0.3..0.45 and noise 0.01 on each: NDVI noise ~ 0.01 * sqrt(2) * ~1 / 0.4 ~ 0.035
    assert 0.015 < rms < 0.06
    assert abs(float(np.mean(resid))) < 0.005


def test_truth_ndvi_is_the_double_logistic_of_the_curve_parameters(clean):
    cube, truth = clean
    doy = cube.time.dt.dayofyear.values.astype(float)  # 00:00 of day n -> doy n
    single = (truth.n_seasons == 1) & truth.break_date.isnull()
    p = truth.isel(year=0, season=0)
    expected = double_logistic(
        doy[:, None],
        p.curve_base.values[single.values],
        p.curve_amplitude.values[single.values],
        p.curve_sos.values[single.values],
        p.curve_eos.values[single.values],
        p.curve_rate_up.values[single.values],
        p.curve_rate_down.values[single.values],
    )
    np.testing.assert_allclose(truth.ndvi.values[:, single.values], expected, atol=2e-6)


def _full_curve(truth, t, ok):
    """The whole (all seasons) truth curve at doy ``t`` for the pixels ``ok`` (year 0)."""
    p = truth.isel(year=0)
    out = p.curve_base.values[ok].astype(float)
    for s in range(truth.sizes["season"]):
        q = p.isel(season=s)
        amp = np.nan_to_num(q.curve_amplitude.values[ok])
        pars = [
            np.nan_to_num(q[v].values[ok], nan=1.0)
            for v in ("curve_sos", "curve_eos", "curve_rate_up", "curve_rate_down")
        ]
        out = out + double_logistic(t, 0.0, amp, *pars)
    return out


@pytest.mark.parametrize("season", [0, 1])
def test_phenology_truth_is_the_exact_crossing(clean, season):
    cube, truth = clean
    p = truth.isel(year=0, season=season)
    ok = p.sos_doy.notnull().values
    assert ok.sum() > 50
    base = p.curve_base.values[ok]
    peak = _full_curve(truth, p.pos_doy.values[ok], ok) - base
    args = [p[v].values[ok] for v in ("curve_sos", "curve_eos", "curve_rate_up", "curve_rate_down")]
    for frac in (0.2, 0.5):
        c = crossing_dates(truth, frac).isel(year=0, season=season)
        for key in ("sos_doy", "eos_doy"):
            value = _full_curve(truth, c[key].values[ok], ok) - base
            np.testing.assert_allclose(value / peak, frac, atol=1e-4)
        # the analytic inflection-point formula is close to the exact crossing
        up, down = logistic_crossing(frac, *args)
        assert np.nanmax(np.abs(c.sos_doy.values[ok] - up)) < 2.0
        assert np.nanmax(np.abs(c.eos_doy.values[ok] - down)) < 2.0
        assert np.nanmedian(np.abs(c.sos_doy.values[ok] - up)) < 0.5
    c50 = crossing_dates(truth, 0.5)
    np.testing.assert_allclose(c50.sos_doy, truth.sos_doy, atol=1e-3)
    gap = np.abs(c50.sos.values[0, season][ok] - truth.sos.values[0, season][ok])
    assert gap.max() < np.timedelta64(5, "m")  # float32 storage of the curve parameters
    # the date and doy variables agree
    doy_from_date = truth.sos.dt.dayofyear + truth.sos.dt.hour / 24 + truth.sos.dt.minute / 1440
    np.testing.assert_allclose(doy_from_date.values[0, season][ok], truth.sos_doy.values[0, season][ok],
                               atol=2e-3)  # fmt: skip
    # order and plausibility: sos < pos < eos, within the year; cropland green-up ~ doy 125
    assert (p.sos_doy.values[ok] < p.pos_doy.values[ok]).all()
    assert (p.pos_doy.values[ok] < p.eos_doy.values[ok]).all()
    if season == 0:
        crop = (truth["class"] == list(DEFAULT_CLASSES).index("cropland")).values & ok
        assert abs(float(np.median(p.sos_doy.values[crop])) - 125) < 8


def test_no_season_classes_have_nat(clean):
    cube, truth = clean
    names = list(DEFAULT_CLASSES)
    for name in ("water", "urban"):
        where = (truth["class"] == names.index(name)).values
        assert where.any()
        assert truth.sos.isnull().values[:, :, where].all()
    dc = (truth["class"] == names.index("double_crop")).values & truth.break_date.isnull().values
    assert truth.sos.notnull().values[0, 1][dc].all()
    assert (truth.sos_doy.values[0, 1][dc] > truth.eos_doy.values[0, 0][dc]).all()
    assert truth.sos.isnull().values[0, 1][(truth.n_seasons == 1).values].all()


def test_breaks_at_known_pixels_and_dates(clean):
    cube, truth = clean
    has = truth.break_date.notnull().values
    assert has.any()
    assert (truth["class"].values[has] == list(DEFAULT_CLASSES).index("forest")).all()
    idx = np.searchsorted(cube.time.values, truth.break_date.values[has])
    assert np.array_equal(cube.time.values[idx], truth.break_date.values[has])  # an acquisition
    nd = truth.ndvi.values[:, has]
    before = nd[idx - 1, np.arange(has.sum())]
    at = nd[idx, np.arange(has.sum())]
    np.testing.assert_allclose(at, 0.12, atol=0.05)  # bare soil afterwards
    assert (truth.break_magnitude.values[has] < -0.2).all()
    assert np.all(at - before < -0.2)
    assert np.isnan(truth.break_magnitude.values[~has]).all()
    # phenology after a break is not defined
    after = truth.pos.values[0, 0][has] > truth.break_date.values[has]
    assert not after.any()
    _, none = synthetic_cube(shape=(24, 24), breaks=False, seed=5)
    assert none.break_date.isnull().all()


def test_multi_year_per_year_seasons():
    cube, truth = synthetic_cube(shape=(24, 24), start="2020-01-01", end="2021-12-31", seed=2,
                                 breaks=False)  # fmt: skip
    assert list(truth.year.values) == [2020, 2021]
    crop = (truth["class"] == list(DEFAULT_CLASSES).index("cropland")).values
    for i, year in enumerate((2020, 2021)):
        sos = truth.sos.values[i, 0][crop]
        assert (truth.sos.dt.year.values[i, 0][crop] == year).all()
        assert abs(float(np.median(truth.sos_doy.values[i, 0][crop])) - 125) < 10
        assert sos.dtype == np.dtype("datetime64[ns]")
    # two cropland seasons, one a year: the truth NDVI peaks twice
    series = truth.ndvi.values[:, crop].mean(axis=1)
    year = cube.time.dt.year.values
    assert series[year == 2020].max() > 0.6 and series[year == 2021].max() > 0.6


def test_highres_originals_of_degraded_bands():
    cube, truth = synthetic_cube(shape=(32, 32), highres=True, seed=6, cloud_fraction=0.0)
    for band in ("rededge1", "swir16", "swir22"):
        hr = truth[f"{band}_highres"]
        lr = cube[band]
        np.testing.assert_allclose(
            lr.coarsen(y=2, x=2).mean(), hr.coarsen(y=2, x=2).mean(), atol=1e-6
        )
        v = lr.values
        assert np.array_equal(v[:, ::2, ::2], v[:, 1::2, 1::2])  # constant 2x2 blocks
        assert not np.array_equal(hr.values[:, ::2, ::2], hr.values[:, 1::2, 1::2])
    assert "red_highres" not in truth and "nir_highres" not in truth
    c3, t3 = synthetic_cube(shape=(30, 30), highres=3, seed=6, bands=["red", "swir16"])
    assert list(c3.data_vars) == ["red", "swir16", "scl"] and "swir16_highres" in t3
    with pytest.raises(InputError, match="divisible by the highres factor 2"):
        synthetic_cube(shape=(31, 32), highres=True)


def test_dask_chunks_give_the_same_values():
    eager, _ = synthetic_cube(shape=(32, 32), seed=8)
    lazy, _ = synthetic_cube(shape=(32, 32), seed=8, chunks={"time": -1, "y": 16, "x": 16})
    assert lazy.red.chunks == ((73,), (16, 16), (16, 16))
    xr.testing.assert_identical(eager, lazy.compute())


def test_unmasked_clouds_are_bright_and_shadows_dark():
    cube, truth = synthetic_cube(shape=(40, 40), mask_clouds=False, seed=9, noise=0.0)
    assert not np.isnan(cube.red.values).any()
    scl = cube.scl.values
    thick = np.isin(scl, [8, 9])
    assert cube.blue.values[thick].min() >= 0.45
    shadow = scl == 3
    assert cube.nir.values[shadow].mean() < 0.5 * cube.nir.values[truth.clear.values].mean()


def test_scl_surface_codes(clean):
    cube, truth = clean
    clear = truth.clear.values
    scl = cube.scl.values
    water = (truth["class"] == 0).values[None] & clear
    assert (scl[water] == 6).all()
    veg = (truth.ndvi.values >= 0.4) & clear & ~water
    assert (scl[veg] == 4).all()
    assert (scl[clear & ~water & ~veg] == 5).all()


def test_custom_classes_and_errors():
    grass = LandClass("meadow", "#00ff00", base=0.3, seasons=((90, 250),), amplitude=0.4)
    cube, truth = synthetic_cube(shape=(16, 16), classes=[grass, "water"], breaks=False, seed=1)
    assert truth.attrs["class_names"] == ["meadow", "water"]
    assert truth.sizes["season"] == 1
    with pytest.raises(UnknownBandError, match="available: coastal, blue"):
        synthetic_cube(bands=["red", "B04"])
    with pytest.raises(InputError, match="cloud_fraction must be in"):
        synthetic_cube(cloud_fraction=1.2)
    with pytest.raises(InputError, match="unknown class 'rice'"):
        synthetic_cube(classes=["rice"])
    with pytest.raises(InputError, match="only 0 parcels of breakable classes"):
        synthetic_cube(classes=["water", "urban"], breaks=3)
    with pytest.raises(InputError, match="chronological and not overlapping"):
        LandClass("x", "#000000", base=0.1, seasons=((200, 150),), amplitude=0.3)
    with pytest.raises(InputError, match="need >= 3"):
        synthetic_cube(start="2021-01-01", end="2021-01-05")


def test_seasons_across_new_year_have_exact_truth_dates():
    # October to April: days past 366 fall in the next calendar year
    soy = LandClass("soy", "#ffd92f", base=0.2, seasons=((290, 465),), amplitude=0.6)
    cube, truth = synthetic_cube(
        shape=(8, 8), start="2021-01-01", end="2022-12-31", freq="5D", classes=[soy],
        cloud_fraction=0.0, noise=0.0, breaks=False, seed=2, jitter_days=0.0,
    )  # fmt: skip
    # the 2020 season reaches into the series: it is drawn and comes first in the truth
    assert list(truth.year.values) == [2020, 2021, 2022]
    eos = truth.eos.sel(year=2021, season=0)
    # inflection point on day 465 of 2021 (+- the 1-day per-pixel jitter) = 10 April 2022
    target = np.datetime64("2022-04-10")
    assert float(np.abs((eos - target) / np.timedelta64(1, "D")).max()) < 4
    assert float(np.abs(truth.eos_doy.sel(year=2021, season=0) - 465).max()) < 4
    # the series starts in the middle of the 2020 season (high NDVI on 1 January 2021)
    assert float(truth.ndvi.isel(time=0).min()) > 0.6
    # the curve crosses 50 % of the amplitude at the truth dates
    t = truth.ndvi.time.values
    k = int(np.searchsorted(t, eos.values[0, 0]))
    assert truth.ndvi.values[k - 1, 0, 0] > 0.5 > truth.ndvi.values[k, 0, 0]
    with pytest.raises(InputError, match="last eos <= first sos"):
        LandClass("x", "#000000", base=0.1, seasons=((100, 470),), amplitude=0.3)
