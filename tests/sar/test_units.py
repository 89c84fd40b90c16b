"""Backscatter units: to_db / from_db / convert_units, lazy, NaN and nodata kept NaN."""

from __future__ import annotations

import datetime as dt
import sys
import warnings
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import xarray as xr

import eoai
from eoai.errors import DataSkippedWarning, InputError
from eoai.sar import convert_units, from_db, to_db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from s1_local import PYROSAR, _asset  # noqa: E402


def test_known_values_and_round_trip():
    p = xr.DataArray(np.array([1.0, 0.1, 0.01, 2.0, np.nan]), dims="x", attrs={"units": "linear"})
    db = to_db(p)
    np.testing.assert_allclose(db.values, [0, -10, -20, 10 * np.log10(2), np.nan])
    assert db.attrs["units"] == "dB" and db.attrs["eoai:method"] == "to_db"
    back = from_db(db)
    np.testing.assert_allclose(back.values, p.values, rtol=1e-12)
    assert back.attrs["units"] == "linear"
    assert "to_db" in back.attrs["eoai:lineage"]
    amp = convert_units(p, "amplitude")
    np.testing.assert_allclose(amp.values**2, p.values, rtol=1e-12)
    np.testing.assert_allclose(to_db(amp).values, db.values, atol=1e-12)  # 20 log10(a)
    assert to_db(db) is not db and np.array_equal(to_db(db).values, db.values, equal_nan=True)


def test_nodata_and_nonpositive_are_nan_never_zero():
    db = xr.DataArray(
        np.array([-12.0, -99.0, 0.0], dtype=np.float32),
        dims="x",
        attrs={"units": "dB", "nodata": -99},
    )
    lin = from_db(db)
    assert lin.dtype == np.float32
    np.testing.assert_allclose(lin.values, [10**-1.2, np.nan, 1.0], rtol=1e-6)
    p = xr.DataArray(np.array([0.0, -1.0, 0.5, 0.2]), dims="x", attrs={"units": "linear"})
    with pytest.warns(DataSkippedWarning, match=r"to_db: 2 of 4 value\(s\) are <= 0"):
        out = to_db(p)
    assert np.isnan(out.values[:2]).all() and np.isfinite(out.values[2:]).all()


def test_lazy_dask_in_dask_out_one_warning(count_computes):
    p = xr.DataArray(np.tile([0.0, 0.5, 0.25], (4, 4)), dims=("y", "x"), attrs={"units": "linear"})
    lazy = p.chunk({"y": 2, "x": 6})
    with count_computes() as counter:
        out = to_db(lazy)
    assert counter.count == 0 and out.chunks == lazy.chunks
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        values = out.compute().values
    skipped = [w for w in rec if issubclass(w.category, DataSkippedWarning)]
    assert len(skipped) == 1 and "16 of 48" in str(skipped[0].message)  # totals over 4 chunks
    with pytest.warns(DataSkippedWarning, match="16 of 48"):
        np.testing.assert_array_equal(values, to_db(p).values)


def test_dataset_converts_backscatter_only_and_accessor():
    ds = xr.Dataset(
        {
            "vv": ("x", np.array([-10.0, -20.0]), {"units": "dB"}),
            "vh": ("x", np.array([-20.0, -30.0]), {"units": "dB"}),
            "angle": ("x", np.array([30.0, 40.0]), {"units": "degrees"}),
        }
    )
    lin = ds.eoai.from_db()
    np.testing.assert_allclose(lin.vv.values, [0.1, 0.01])
    np.testing.assert_array_equal(lin.angle.values, ds.angle.values)
    assert lin.angle.attrs["units"] == "degrees"
    np.testing.assert_allclose(lin.eoai.to_db().vh.values, ds.vh.values)


def test_unknown_units_raise():
    with pytest.raises(InputError, match="units='dB'"):
        to_db(xr.DataArray(np.ones(2), dims="x", name="vv"))
    with pytest.raises(InputError, match="not a backscatter unit"):
        to_db(xr.DataArray(np.ones(2), dims="x", attrs={"units": "m"}))
    with pytest.raises(InputError, match="not a backscatter unit"):
        convert_units(xr.DataArray(np.ones(2), dims="x", attrs={"units": "dB"}), "kelvin")
    with pytest.raises(InputError, match="no backscatter variable"):
        to_db(xr.Dataset({"ndvi": ("x", np.ones(2))}))
    # units= overrides missing attrs
    out = to_db(xr.DataArray(np.array([0.1]), dims="x"), units="linear")
    assert out.attrs["units"] == "dB"


def test_pyrosar_nodata_minus_99_loaded_as_nan(shared_data, tmp_path):
    """The pyroSAR GAMMA scene (dB, nodata -99) with a nodata hole: NaN after load and from_db."""
    src = shared_data / PYROSAR
    dst = tmp_path / "holed_db.tif"
    with rasterio.open(src) as f:
        profile, data = f.profile, f.read(1)
    data[100:110, 50:70] = -99.0
    with rasterio.open(dst, "w", **profile) as f:
        f.write(data, 1)
    item = pystac.Item(
        "holed", None, None, dt.datetime(2015, 3, 9, tzinfo=dt.timezone.utc),
        {"sar:polarizations": ["VV"]}, collection="pyrosar-gamma",
        stac_extensions=["https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                         "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
    )  # fmt: skip
    item.add_asset("vv", _asset(dst, "dB", -99.0))
    with rasterio.open(dst) as f:
        from rasterio.warp import transform_bounds

        item.bbox = list(transform_bounds(f.crs, "EPSG:4326", *f.bounds))
    cube = eoai.load([item], ["vv"])
    vv = cube.vv.isel(time=0).values
    assert np.isnan(vv[100:110, 50:70]).all() and np.isnan(vv).sum() == 200
    np.testing.assert_array_equal(vv[:100], data[:100])  # dB values as in the file
    lin = from_db(cube.vv).isel(time=0).values
    assert np.isnan(lin[100:110, 50:70]).all() and not (lin == 0).any()
    # the raw -99 values given with nodata= are NaN too (no load in between)
    raw = xr.DataArray(data, dims=("y", "x"), attrs={"units": "dB"})
    assert np.isnan(from_db(raw, nodata=-99).values).sum() == 200


def test_outputs_write_to_netcdf_and_zarr(tmp_path):
    from eoai.sar import speckle_filter

    rng = np.random.default_rng(0)
    cube = xr.Dataset(
        {p: (("time", "y", "x"), rng.gamma(4.4, 0.01, (2, 12, 12)), {"units": "linear"})
         for p in ("vv", "vh")},
        coords={"time": np.array(["2020-01-01", "2020-01-13"], dtype="datetime64[ns]")},
    )  # fmt: skip
    for i, out in enumerate((to_db(cube), speckle_filter(to_db(cube), "lee", looks=4.4))):
        out.to_netcdf(tmp_path / f"o{i}.nc", engine="h5netcdf")
        out.to_zarr(tmp_path / f"o{i}.zarr")
        back = xr.open_dataset(tmp_path / f"o{i}.nc", engine="h5netcdf")
        np.testing.assert_allclose(back.vv.values, out.vv.values)
        assert (
            back.vv.attrs["units"] == "dB"
            and back.vv.attrs["eoai:method"] == out.vv.attrs["eoai:method"]
        )
        back.close()
