"""The embedded sample (eoai.datasets.sample_catalog) loads through eoai.load, checked against the
original eo-learn NetCDF in ../shared/data/eolearn_slovenia (pixel for pixel)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import eoai


@pytest.fixture(scope="module")
def original(shared_data):
    path = shared_data / "eolearn_slovenia" / "eolearn_testpatch.nc"
    with xr.open_dataset(path) as ds:
        yield ds.load()


@pytest.fixture(scope="module")
def sample():
    return eoai.datasets.sample_catalog()


def test_ndvi_series_masked_by_clm(sample, original, count_computes):
    with count_computes() as c:
        cube = eoai.load(sample, collections="slovenia-ndvi", groupby="time", keep_mask=True)
    assert c.count == 0
    assert isinstance(cube.ndvi.data, da.Array)
    assert cube.attrs["eoai:mask"] == "clm bits 0,1,2,3,4,5,6,7"  # mask="auto" found clm
    assert cube.sizes == {"time": 68, "y": 101, "x": 100}
    assert cube.odc.crs.epsg == 32633
    np.testing.assert_array_equal(
        cube.time.values.astype("M8[s]"), original.time_all.values.astype("M8[s]")
    )
    np.testing.assert_allclose(cube.x.values, original.x.values, atol=1e-6)
    np.testing.assert_allclose(cube.y.values, original.y.values, atol=1e-6)
    cube = cube.compute()
    clm = original.CLM.values.reshape(cube.clm.shape)
    np.testing.assert_array_equal(cube.clm.values, clm)
    ndvi = original.NDVI.values.reshape(cube.ndvi.shape)
    expected = np.where(clm == 1, np.nan, ndvi)
    np.testing.assert_array_equal(cube.ndvi.values, expected.astype("float32"))
    np.testing.assert_allclose(
        cube.eoai.valid_fraction().values, 1 - clm.mean(axis=(1, 2)), rtol=0, atol=1e-12
    )


def test_solar_day_fuses_the_two_overpasses_of_2015_12_08(sample):
    cube = eoai.load(sample, ["ndvi"], collections="slovenia-ndvi")
    assert cube.sizes["time"] == 67
    days = cube.time.values.astype("M8[D]")
    assert (days == np.datetime64("2015-12-08")).sum() == 1


def test_l1c_reflectance_scaled_from_dn(sample, original):
    cube = eoai.load(sample, ["red", "nir08", "B11"], collections="slovenia-l1c").compute()
    assert cube.sizes == {"time": 5, "y": 101, "x": 100}
    # the sample stores DN (uint16) with raster:bands scale 1e-4; the NetCDF holds DN * 1e-4
    for name, band in (("red", "B04"), ("nir08", "B8A"), ("B11", "B11")):
        assert cube[name].dtype == np.float32
        np.testing.assert_allclose(
            cube[name].values[~np.isnan(cube[name].values)],
            original[band].values[~np.isnan(cube[name].values)],
            atol=1e-4 / 2 + 1e-7,
        )
    # clouds of those dates are NaN (mask auto = clm)
    clm = original.CLM.sel(time_all=original.time.values).values
    assert np.isnan(cube.red.values).sum() == int((clm == 1).sum())
