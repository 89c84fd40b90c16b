"""Phenology on real southern-hemisphere MODIS NDVI (Mato Grosso, Brazil: soy + second crop).

Data: ``data/real/sits_matogrosso`` (from the R package sits, see the README there). Crop calendar
of Mato Grosso (CONAB, "Calendário de plantio e colheita de grãos no Brasil"; USDA FAS IPAD crop
calendar for Brazil): soybean sown from mid-September (end of the soy-free period) to December and
harvested from January to April; the second crop (maize, cotton, millet) sown from January to March
right after the soy harvest and harvested from June to August. The NDVI start of season (20 % of the
amplitude) follows sowing by a few weeks and the end of season precedes harvest.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from eoai.errors import DataSkippedWarning
from eoai.timeseries.phenology import phenology

DATA = Path(__file__).resolve().parents[2] / "data" / "real" / "sits_matogrosso"
SOY_SOS = {9, 10, 11, 12}  # NDVI start of the soy season (sowing mid-September to December)
SOY_EOS = {12, 1, 2, 3, 4}  # end of the soy season (harvest January to April)


@pytest.fixture(scope="module")
def mt():
    path = DATA / "sits_matogrosso_ndvi.npz"
    if not path.is_file():
        pytest.fail(f"missing {path}: rebuild it with scripts/build_sits_matogrosso.py")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _run(da, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSkippedWarning)
        return phenology(da, 0.2, seasons=2, **kw)


def _months(a):
    return pd.DatetimeIndex(a.ravel()).month.values.reshape(a.shape)


def test_point_series_soy_season_every_crop_year(mt):
    # one MODIS pixel, 2000-2017: forest, cleared in 2003/04, pasture, soy + second crop from
    # 2008/09
    da = xr.DataArray(
        mt["point_ndvi"], dims="time", coords={"time": mt["point_time"].astype("datetime64[ns]")}
    )
    ph = _run(da, year_start="08-01")
    crop = ph.sel(year=slice(2008, 2016)).isel(season=0)
    sos_m, eos_m = _months(crop.sos.values), _months(crop.eos.values)
    assert all(m in SOY_SOS for m in sos_m) and all(m in SOY_EOS for m in eos_m), (sos_m, eos_m)
    # the season ends in the calendar year after it starts
    assert (crop.eos.dt.year == crop.year + 1).sum() >= 8
    # calendar years: the soy seasons are cut by 1 January; only 2011/12 (an early harvest,
    # October to December 2011) fits in a calendar year
    cal = _run(da)
    n_cal = 0
    for s in (0, 1):
        c = cal.isel(season=s)
        ok = np.isin(_months(c.sos.values), list(SOY_SOS)) & np.isin(
            _months(c.eos.values), list(SOY_EOS)
        )
        n_cal += int(ok.sum())
    assert n_cal <= 1 and crop.sizes["year"] == 9


def test_samples_soy_season_found_and_in_the_crop_calendar(mt):
    t_s, v_s = mt["sample_time"], mt["sample_ndvi"]
    labels = [str(v) for v in mt["labels"]]
    soy = np.array([labels[i].startswith("Soy_") for i in mt["sample_label"]])
    assert soy.sum() > 1000
    # each sample is one September-August year; on the common MODIS date axis (2000-2016) the
    # other years of a sample are missing (NaN)
    t = np.unique(t_s)
    panel = np.full((len(t_s), len(t)), np.nan, np.float32)
    panel[np.arange(len(t_s))[:, None], np.searchsorted(t, t_s)] = v_s
    da = xr.DataArray(panel, dims=("sample", "time"), coords={"time": t.astype("datetime64[ns]")})

    def soy_found(ph):
        sos = ph.sos.transpose("sample", ...).values.reshape(len(t_s), -1)
        eos = ph.eos.transpose("sample", ...).values.reshape(len(t_s), -1)
        own = (sos >= t_s[:, :1]) & (sos <= t_s[:, -1:])  # a season of the sample's own year
        ok = own & np.isin(_months(sos), list(SOY_SOS)) & np.isin(_months(eos), list(SOY_EOS))
        return ok.any(axis=1), np.where(ok, sos, np.datetime64("NaT")), eos

    found, sos, eos = soy_found(_run(da, year_start="08-01"))
    found_cal, _, _ = soy_found(_run(da))
    frac, frac_cal = found[soy].mean(), found_cal[soy].mean()
    # measured: 0.78 with August-July years, 0.02 with calendar years
    assert frac >= 0.75 and frac_cal <= 0.05, (frac, frac_cal)
    # most soy seasons start in October-November and end in January-February
    sos_m = _months(sos[soy])[~np.isnat(sos[soy])]
    eos_m = _months(np.where(np.isnat(sos[soy]), np.datetime64("NaT"), eos[soy]))
    eos_m = eos_m[~np.isnat(sos[soy])]
    assert np.isin(sos_m, [10, 11]).mean() >= 0.7, np.unique(sos_m, return_counts=True)
    assert np.isin(eos_m, [1, 2]).mean() >= 0.7, np.unique(eos_m, return_counts=True)


SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "eolearn_slovenia"


def test_flagship_sample_meadows_get_their_2016_season():
    """The flagship pipeline on the embedded sample: gap-filled NDVI (10 days), season of 2016."""
    import eoai

    path = SHARED / "eolearn_testpatch.nc"
    if not path.is_file():
        pytest.fail(f"missing {path} (the shared real data folder ../shared/data)")
    series = eoai.load(
        eoai.datasets.sample_catalog(), collections=["slovenia-ndvi"], bands=["ndvi"], chunks={}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filled = series["ndvi"].chunk({"time": -1}).eoai.gapfill("whittaker", freq="10D").compute()
        before = filled.sel(time="2016").eoai.phenology()  # one calendar-year window
        after = filled.eoai.phenology(years=2016, windows="minima")
    lulc = xr.open_dataset(path).LULC.interp(x=filled.x, y=filled.y, method="nearest").values
    meadow = lulc == 3  # grassland
    assert meadow.sum() > 1500
    b, a = before.sos.notnull().values, after.sos.notnull().values
    # measured with the V-curve smoother: 66 % -> 91 % of the pixels, 33 % -> 99 % of the grassland;
    # with today's default Whittaker (GCV 2e3-2e4 days, smoother): 37 % -> 82 % of the pixels,
    # 16 % -> 99 % of the grassland (forest 42 % -> 77 %: its weak evergreen season is flattened)
    assert b.mean() < 0.7 and a.mean() > 0.8, (b.mean(), a.mean())
    assert b[meadow].mean() < 0.4 and a[meadow].mean() > 0.95, (b[meadow].mean(), a[meadow].mean())
    # why: the meadows stay green until late autumn; their minimum is in January-February, after the
    # calendar window: the seasons recovered end after 31 December or just before it
    gained = meadow & a & ~b
    eos = pd.DatetimeIndex(after.eos.values[gained])
    assert ((eos.year == 2017) | (eos.month == 12)).mean() > 0.9
    assert (pd.DatetimeIndex(after.sos.values[a]).year == 2016).all()
    # pixels found both ways keep their start of season (same left minimum)
    both = a & b
    d = np.abs((after.sos - before.sos) / np.timedelta64(1, "D")).values[both]
    assert np.median(d) < 15
