"""stack_sources on the real SSL4EO-S12 patch 0000200 (rico-hdl): Sentinel-1 (2 dates, sigma0 dB)
and Sentinel-2 L2A (2 other dates, its grid offset from S1's by a fraction of a pixel) on one
GeoBox, each source with its own dates; SAR resampled in linear power; errors; gap-filling
per source; laziness."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import wrap_xr
from rasterio.warp import Resampling, reproject
from s1_local import BEN, RICO

import eoai
from eoai.errors import CRSError, InputError, MissingDimensionError, NoOverlapError
from eoai.io.stack import gapfill_sources, stack_sources
from eoai.ml.features import feature_array, feature_names
from eoai.testing import raise_if_dask_computes
from eoai.timeseries.gapfill import gapfill

PATCH = RICO / "SSL4EO-S12"


def _read(path):
    with rasterio.open(path) as f:
        return f.read(1), GeoBox(f.shape, f.transform, f.crs)


def _cube(folders, files, times, *, scale=None, units=None):
    out = {}
    for name, fname in files.items():
        arrays = []
        for folder in folders:
            a, gbox = _read(folder / fname)
            arrays.append(a if scale is None else a.astype("float32") * np.float32(scale))
        out[name] = wrap_xr(np.stack(arrays), gbox, time=pd.DatetimeIndex(times))
        if units:
            out[name].attrs["units"] = units
    return xr.Dataset(out)


@pytest.fixture(scope="module")
def ssl4eo(shared_data):
    """(s1, s2): S1 vv/vh in dB (264 x 264, EPSG:4326), S2 L2A red/nir reflectance (10 m bands)."""
    s1_dirs = sorted((shared_data / PATCH / "s1/0000200").iterdir())
    s1_times = [
        pd.Timestamp(json.loads((d / "metadata.json").read_text())["system:time_start"], unit="ms")
        for d in s1_dirs
    ]
    s1 = _cube(s1_dirs, {"vv": "VV.tif", "vh": "VH.tif"}, s1_times, units="dB")
    s2_dirs = sorted((shared_data / PATCH / "s2a/0000200").iterdir())
    s2_times = [pd.Timestamp(d.name[:15]) for d in s2_dirs]
    s2 = _cube(s2_dirs, {"red": "B4.tif", "nir": "B8.tif"}, s2_times, scale=1e-4)
    return s1, s2


def _rio(src: np.ndarray, src_gbox, dst_gbox, method) -> np.ndarray:
    out = np.full(dst_gbox.shape, np.nan, dtype="float64")
    reproject(
        src.astype("float64"), out, src_transform=src_gbox.affine, src_crs=src_gbox.crs.to_wkt(),
        dst_transform=dst_gbox.affine, dst_crs=dst_gbox.crs.to_wkt(), resampling=method,
        src_nodata=np.nan, dst_nodata=np.nan,
    )  # fmt: skip
    return out


def _gbox(ds) -> GeoBox:
    return ds.to_dataset().odc.geobox if isinstance(ds, xr.DataTree) else ds.odc.geobox


def test_s2_onto_the_s1_grid_with_its_own_dates(ssl4eo):
    s1, s2 = ssl4eo
    g1, g2 = s1.odc.geobox, s2.odc.geobox
    assert abs(g2.affine.c - g1.affine.c) / g1.resolution.x % 1 > 0.1  # really a sub-pixel shift
    tree = stack_sources({"s1": s1, "s2": s2}, like=g1)
    assert _gbox(tree["s2"]) == g1 and _gbox(tree["s1"]) == g1 and _gbox(tree) == g1
    # each source keeps its own two dates and attrs
    np.testing.assert_array_equal(tree["s1"].time.values, s1.time.values)
    np.testing.assert_array_equal(tree["s2"].time.values, s2.time.values)
    assert [str(t)[:10] for t in tree["s2"].time.values] == ["2020-06-04", "2020-08-13"]
    assert [str(t)[:10] for t in tree["s1"].time.values] == ["2020-06-07", "2020-09-03"]
    assert tree["s1"].vv.attrs["units"] == "dB"
    # S1 is on its own grid: unchanged; S2 as a direct rasterio bilinear reproject gives it
    np.testing.assert_array_equal(tree["s1"].vv.values, s1.vv.values)
    for t in range(2):
        want = _rio(s2.red.values[t], g2, g1, Resampling.bilinear)
        got = tree["s2"].red.values[t]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, atol=1e-6, equal_nan=True)
    assert np.isnan(tree["s2"].red.values[0, :, :3]).all()  # S1's first columns: outside S2
    # the same through dask, tile by tile (lazy until computed)
    with raise_if_dask_computes():
        lazy = stack_sources(
            {
                "s1": s1.chunk(longitude=100, latitude=100),
                "s2": s2.chunk(longitude=100, latitude=100),
            },
            like=g1,
        )
    np.testing.assert_allclose(lazy["s2"].red.values, tree["s2"].red.values, atol=1e-6)
    # like= a source name: its grid over the intersection (whole pixels inside both)
    inter = stack_sources({"s1": s1, "s2": s2}, like="s1")
    gi = _gbox(inter)
    col, row = ~g1.affine @ (gi.affine.c, gi.affine.f)
    assert (col, row) == (pytest.approx(4), pytest.approx(3)) and gi.resolution == g1.resolution
    assert not np.isnan(inter["s2"].red.values).any() and gi.shape == (261, 260)
    np.testing.assert_array_equal(inter["s1"].vv.values, s1.vv.values[:, 3:264, 4:264])


def test_default_grid_is_the_finest_source_over_the_intersection(ssl4eo):
    s1, s2 = ssl4eo
    tree = stack_sources({"s1": s1, "s2": s2})
    g, g2 = _gbox(tree), s2.odc.geobox
    assert g.crs == g2.crs and g.resolution == g2.resolution  # S2's pixels are ~1 % smaller
    col, row = ~g2.affine @ (g.affine.c, g.affine.f)
    assert col == pytest.approx(round(col)) and row == pytest.approx(round(row))
    r0, c0 = round(row), round(col)
    np.testing.assert_array_equal(  # S2 sliced, not resampled
        tree["s2"].red.values, s2.red.values[:, r0 : r0 + g.shape[0], c0 : c0 + g.shape[1]]
    )
    assert not np.isnan(tree["s1"].vv.values).any()
    assert json.loads(tree["s2"].attrs["eoai:stack"])["red"]["resampling"].startswith("none")
    assert "linear power" in json.loads(tree["s1"].attrs["eoai:stack"])["vv"]["averaged_in"]
    # a UTM grid at 10 m (y / x, as the ML chain needs): features of both sources
    utm = stack_sources({"s1": s1, "s2": s2}, crs="EPSG:32643", resolution=10)
    g = _gbox(utm)
    assert g.crs.epsg == 32643 and g.resolution.x == 10 and g.affine.c % 10 == 0
    assert feature_names(utm)[::2] == [
        "s1.vv_2020-06-07", "s1.vh_2020-06-07", "s2.red_2020-06-04", "s2.nir_2020-06-04",
    ]  # fmt: skip
    assert np.isnan(feature_array(utm).values).mean() < 0.03  # edges of the rotated footprints


def test_db_is_averaged_in_linear_power(ssl4eo):
    s1, s2 = ssl4eo
    res = 3 * s1.odc.geobox.resolution.x
    tree = stack_sources({"s1": s1, "s2": s2}, crs="EPSG:4326", resolution=res,
                         resampling="average")  # fmt: skip
    dst, g1 = _gbox(tree), s1.odc.geobox
    assert tree["s1"].vv.attrs["units"] == "dB"
    got = tree["s1"].vv.values[0]
    power = 10 * np.log10(_rio(10 ** (s1.vv.values[0] / 10), g1, dst, Resampling.average))
    in_db = _rio(s1.vv.values[0], g1, dst, Resampling.average)
    ok = np.isfinite(got)
    assert ok.mean() > 0.95
    np.testing.assert_allclose(got[ok], power[ok], atol=1e-3)
    # averaging the dB values would be biased low (geometric mean of speckle): > 200 x the tolerance
    assert np.nanmean(power - in_db) > 0.2


def test_errors_name_the_source(ssl4eo, shared_data):
    s1, s2 = ssl4eo
    with pytest.raises(MissingDimensionError, match=r"'dem' has no time axis.*static=\['dem'\]"):
        stack_sources({"s1": s1, "dem": s2.red.isel(time=0, drop=True).to_dataset()})
    tree = stack_sources({"s1": s1, "dem": s2[["red"]].isel(time=0, drop=True)}, static=["dem"])
    assert dict(tree["dem"].to_dataset().red.sizes) == {"latitude": 261, "longitude": 261}
    with pytest.raises(InputError, match="static=.*has a time axis"):
        stack_sources({"s1": s1, "s2": s2}, static="s2")
    folder = next((shared_data / BEN).iterdir())  # BigEarthNet-S1, Austria: not in Pakistan
    vv, gbox = _read(folder / f"{folder.name}_VV.tif")
    austria = wrap_xr(vv[None], gbox, time=pd.to_datetime(["2017-06-13"])).to_dataset(name="vv")
    austria["vv"].attrs["units"] = "dB"
    with pytest.raises(NoOverlapError, match="'s2' and 'ben' do not overlap"):
        stack_sources({"s2": s2, "ben": austria})
    with pytest.raises(NoOverlapError, match=r"\['ben'\] do not overlap the grid of like="):
        stack_sources({"s2": s2, "ben": austria}, like=s1.odc.geobox)
    bare = xr.Dataset({"red": (("time", "y", "x"), np.zeros((1, 2, 2)))},
                      coords={"time": pd.to_datetime(["2020-01-01"])})  # fmt: skip
    with pytest.raises(CRSError, match="'nocrs' has no CRS"):
        stack_sources({"s2": s2, "nocrs": bare})
    with pytest.raises(InputError, match=r"unit of backscatter variable 'vv' is unknown"):
        stack_sources({"s1": s1.assign(vv=s1.vv.drop_attrs()), "s2": s2})
    with pytest.raises(InputError, match="cannot contain '.'"):
        stack_sources({"s2.l2a": s2, "s1": s1})
    with pytest.raises(InputError, match="like= a grid gives CRS, resolution and extent"):
        stack_sources({"s2": s2, "s1": s1}, like=s1.odc.geobox, extent="union")
    with pytest.raises(InputError, match="like='s3' is not a source"):
        stack_sources({"s2": s2, "s1": s1}, like="s3")
    with pytest.raises(InputError, match="unknown resampling 'bicubic'"):
        stack_sources({"s2": s2, "s1": s1}, resampling={"s1": "bicubic"})


def _synthetic_tree(chunks=None):
    s2, _ = eoai.datasets.synthetic_cube(shape=(16, 16), start="2021-04-01", end="2021-07-31",
                                         freq="5D", bands=["red", "nir"], seed=1, chunks=chunks)  # fmt: skip
    s1, _ = eoai.datasets.synthetic_cube(shape=(8, 8), start="2021-04-03", end="2021-07-31",
                                         freq="12D", bands=["nir"], resolution=20.0, seed=2,
                                         cloud_fraction=0.0, chunks=chunks)  # fmt: skip
    s1 = s1[["nir"]].rename(nir="vh")
    s1["vh"] = 10 * np.log10(s1.vh.clip(min=1e-3)).assign_attrs(units="dB")
    return stack_sources({"s2": s2[["red", "nir"]], "s1": s1})


def test_gapfill_each_source_onto_its_own_dates():
    tree = _synthetic_tree()
    out = gapfill_sources(tree, freq={"s2": "10D", "s1": "24D"})
    want_s2 = pd.date_range(tree["s2"].time.values[0], tree["s2"].time.values[-1], freq="10D")
    np.testing.assert_array_equal(out["s2"].time.values, want_s2.values)
    assert pd.DatetimeIndex(out["s1"].time.values).to_series().diff().dropna().eq("24D").all()
    for src in ("s2", "s1"):
        ds = tree[src].to_dataset()
        direct = gapfill(ds, freq={"s2": "10D", "s1": "24D"}[src])
        xr.testing.assert_allclose(out[src].to_dataset(), direct)
    assert _gbox(out) == _gbox(tree) and out["s1"].vh.attrs["units"] == "dB"


def test_stack_and_gapfill_stay_lazy():
    with raise_if_dask_computes():
        tree = _synthetic_tree(chunks={"time": -1, "y": 8, "x": 8})
        filled = gapfill_sources(tree, "linear", freq="15D")
    assert all(
        hasattr(v.data, "dask") for c in filled.children.values() for v in c.data_vars.values()
    )
    assert filled["s1"].vh.chunks is not None and not np.isnan(filled["s1"].vh.values).all()
