"""eoai.load on the real Sentinel-1 GeoTIFFs (rico-hdl SSL4EO-S12 / BigEarthNet-S1, pyroSAR) through
a local STAC built in the test (tests/io/s1_local.py): units, filters, values, polarisations."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from s1_local import BEN, SSL4EO, bigearthnet_items, pyrosar_item, ssl4eo_items

import eoai
from eoai.errors import DataSkippedWarning, InputError, UnknownBandError
from eoai.indices import index
from eoai.sar import from_db, speckle_filter


def _read(path):
    with rasterio.open(path) as f:
        return f.read(1)


def test_ssl4eo_two_dates_units_and_values(shared_data):
    items = ssl4eo_items(shared_data)  # no raster:bands unit: the unit is unknown
    with pytest.raises(InputError, match="units='dB'"):
        eoai.load(items, ["vv", "vh"])
    cube = eoai.load(items, ["vv", "vh"], units="dB")
    assert [str(t)[:10] for t in cube.time.values] == ["2020-06-07", "2020-09-03"]
    assert cube.vv.attrs["units"] == "dB" and cube.vh.attrs["eoai:looks"] == 4.4
    assert dict(cube.sizes) == {"time": 2, "latitude": 264, "longitude": 264}
    folders = sorted((shared_data / SSL4EO).iterdir())
    for t, folder in enumerate(folders):  # the pixels of the files, unchanged
        np.testing.assert_array_equal(cube.vv.isel(time=t).values, _read(folder / "VV.tif"))
        np.testing.assert_array_equal(cube.vh.isel(time=t).values, _read(folder / "VH.tif"))
    # orbit filters through load (items in memory are filtered client-side)
    desc = eoai.load(items, ["vv"], units="dB", orbit_state="descending")
    assert [str(t)[:10] for t in desc.time.values] == ["2020-06-07"]
    track = eoai.load(items, ["vv"], units={"vv": "dB"}, relative_orbit=173)
    assert [str(t)[:10] for t in track.time.values] == ["2020-09-03"]


def test_unit_from_raster_bands_and_rvi_in_linear_power(shared_data):
    item = bigearthnet_items(shared_data, unit="dB")[0]
    cube = eoai.load([item], ["vv", "vh"])
    assert cube.vv.attrs["units"] == "dB"
    folder = shared_data / BEN / item.id
    vv_db, vh_db = (_read(folder / f"{item.id}_{p}.tif").astype(np.float64) for p in ("VV", "VH"))
    vv, vh = 10 ** (vv_db / 10), 10 ** (vh_db / 10)
    rvi = index(cube, "RVI").isel(time=0).values  # Sentinel-1 cube: dual-pol RVI
    np.testing.assert_allclose(rvi, 4 * vh / (vv + vh), rtol=1e-5)
    np.testing.assert_allclose(index(cube, "VHVVD").isel(time=0).values, vh_db - vv_db, atol=1e-4)
    # a speckle-filtered cube stays in dB and averages in linear power
    out = speckle_filter(cube, "boxcar", window=3).vv.isel(time=0).values
    np.testing.assert_allclose(10 ** (out[60, 60] / 10), vv[59:62, 59:62].mean(), rtol=1e-5)


def test_pyrosar_scene_and_missing_polarisation(shared_data):
    item = pyrosar_item(shared_data)  # raster:bands unit dB, nodata -99
    cube = eoai.load([item], ["vv"])
    assert cube.vv.attrs["units"] == "dB" and dict(cube.sizes) == {"time": 1, "y": 217, "x": 268}
    assert abs(float(cube.vv.mean()) - (-12.125)) < 1e-3  # the PAM statistics of the file
    assert float(from_db(cube.vv).min()) > 0
    with pytest.raises(UnknownBandError, match=r"VH are not in these Sentinel-1 items.*VV \(1"):
        eoai.load([item], ["vv", "vh"])


def test_static_catalog_on_disk(shared_data, tmp_path):
    """The same items written as a static STAC catalog: search and load by path, S1 filters."""
    import pystac

    catalog = pystac.Catalog("s1-local", "real Sentinel-1 GeoTIFFs of shared/data")
    for item in ssl4eo_items(shared_data, unit="dB") + [pyrosar_item(shared_data)]:
        catalog.add_item(item)
    catalog.normalize_and_save(str(tmp_path / "stac"), pystac.CatalogType.SELF_CONTAINED)
    path = tmp_path / "stac" / "catalog.json"
    asc = eoai.search(path, orbit_state="ascending")
    assert sorted(i.id for i in asc) == sorted(
        [
            "S1A__IW___A_20150309T173017",
            "S1A_IW_GRDH_1SDV_20200903T131212_20200903T131237_034195_03F8F5_AC1C",
        ]
    )
    # the pyroSAR scene has no sat:relative_orbit: left out, and said so
    with pytest.warns(DataSkippedWarning, match="1 without sat:relative_orbit"):
        found = eoai.search(path, polarizations="VH", relative_orbit=107)
    assert [i.id for i in found] == [
        "S1A_IW_GRDH_1SDV_20200607T010800_20200607T010825_032904_03CFBA_D457"
    ]
    with pytest.warns(DataSkippedWarning, match="sat:relative_orbit"):
        cube = eoai.load(path, ["vh"], relative_orbit=107)
    assert cube.vh.attrs["units"] == "dB" and [str(t)[:10] for t in cube.time.values] == [
        "2020-06-07"
    ]


def test_unreachable_signing_service_is_an_eoai_error(monkeypatch):
    """planetary_computer.sign failing offline raises CatalogUnreachableError, not requests'."""
    pc = pytest.importorskip("planetary_computer")
    import pystac
    import requests

    from eoai.errors import CatalogUnreachableError
    from eoai.io.loading import _sign_if_needed

    def offline(item):
        raise requests.ConnectionError("Max retries exceeded with url: /api/sas/v1/token")

    monkeypatch.setattr(pc, "sign", offline)
    item = pystac.Item("a", None, None, pystac.utils.str_to_datetime("2021-01-01"), {})
    item.add_asset("vv", pystac.Asset("https://x.blob.core.windows.net/c/vv.tif"))
    with pytest.raises(CatalogUnreachableError, match="could not sign.*PC_SDK_SUBSCRIPTION_KEY"):
        _sign_if_needed([item], None)
