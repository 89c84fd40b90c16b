"""Band names, scale/offset and baseline offsets parsed from real STAC item JSON.

../shared/data/stac_items: an Earth Search v0 item (asset keys B01..B12, SCL; no eo:bands, no
raster ext, baseline only in the product id N0214), and a Planetary Computer item with and without
the raster extension (baseline 02.12). ../shared/data/earthsearch_l2a: Earth Search v1 items
(common-name asset keys, raster:bands offset -0.1, DN already harmonised).
"""

from __future__ import annotations

import json

import pystac
import pytest

import eoai
from eoai.errors import InputError, UnknownBandError
from eoai.io.bands import available_bands, common_name, resolve_bands
from eoai.io.presets import PRESETS, band_scaling, get_preset, processing_baseline

ES_V0 = "S2A_28QCH_20200714_0_L2A.json"
PC = "S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json"
PC_RASTER = "S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531_raster_ext.json"
S2_IDS = {
    "coastal": "B01",
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "rededge1": "B05",
    "rededge2": "B06",
    "rededge3": "B07",
    "nir": "B08",
    "nir08": "B8A",
    "nir09": "B09",
    "swir16": "B11",
    "swir22": "B12",
    "scl": "SCL",
}


def _item(shared_data, name) -> pystac.Item:
    return pystac.Item.from_dict(json.loads((shared_data / "stac_items" / name).read_text()))


@pytest.fixture(scope="module")
def es_v1(shared_data):
    path = shared_data / "earthsearch_l2a" / "sentinel-2-l2a" / "S2A_33TWL_20230815_0_L2A"
    return pystac.Item.from_file(str(path / "S2A_33TWL_20230815_0_L2A.json"))


@pytest.mark.parametrize("name", [ES_V0, PC, PC_RASTER])
def test_common_names_resolve_to_band_ids(shared_data, name):
    item = _item(shared_data, name)
    assert resolve_bands([item], list(S2_IDS)) == S2_IDS
    # band ids and asset keys resolve to themselves, case-insensitively
    assert resolve_bands([item], ["B04", "b8a", "SCL"]) == {
        "B04": "B04",
        "b8a": "B8A",
        "SCL": "SCL",
    }


def test_planetary_computer_rededge_label_is_ambiguous(shared_data):
    # PC labels B05, B06, B07 and B8A all 'rededge': that name is ambiguous and not offered
    item = _item(shared_data, PC)
    assert [b["common_name"] for b in item.assets["B8A"].extra_fields["eo:bands"]] == ["rededge"]
    assert "rededge" not in available_bands([item])
    with pytest.raises(UnknownBandError, match="'rededge' is not in these items"):
        resolve_bands([item], ["rededge"])


def test_earth_search_v1_names(es_v1):
    assert resolve_bands([es_v1], ["red", "nir08", "rededge2", "scl", "B04", "B8A"]) == {
        "red": "red",
        "nir08": "nir08",
        "rededge2": "rededge2",
        "scl": "scl",
        "B04": "red",
        "B8A": "nir08",
    }
    names = available_bands([es_v1])
    assert not any(k.endswith("-jp2") for k in names.values())  # duplicate JP2 assets skipped
    assert "thumbnail" not in names and "granule_metadata" not in names


def test_unknown_band_message_lists_available(shared_data):
    with pytest.raises(UnknownBandError) as err:
        resolve_bands([_item(shared_data, ES_V0)], ["ndvi"])
    msg = str(err.value)
    assert "'ndvi'" in msg
    for name in ("B04", "red", "nir08", "SCL", "swir22"):
        assert name in msg
    assert isinstance(err.value, KeyError)


def test_baselines(shared_data, es_v1):
    assert processing_baseline(_item(shared_data, ES_V0).properties) == 2.14  # from N0214
    assert processing_baseline(_item(shared_data, PC).properties) == 2.12
    assert processing_baseline(es_v1.properties) == 5.09


def test_scaling_before_baseline_4(shared_data):
    for name in (ES_V0, PC, PC_RASTER):
        item = _item(shared_data, name)
        assert band_scaling(item, "B04") == (1e-4, 0.0)
        assert band_scaling(item, "B8A") == (1e-4, 0.0)
        assert band_scaling(item, "SCL") is None  # classes, never scaled
    # raster ext gives nodata 0 and no scale: the preset scale 1e-4 is used
    rb = _item(shared_data, PC_RASTER).assets["B04"].extra_fields["raster:bands"][0]
    assert rb == {"nodata": 0, "data_type": "uint16"}


def test_scaling_from_baseline_4(shared_data):
    for name in (PC, PC_RASTER):
        item = _item(shared_data, name)
        item.properties["s2:processing_baseline"] = "04.00"
        assert band_scaling(item, "B04") == (1e-4, pytest.approx(-0.1))
        assert band_scaling(item, "SCL") is None
    v0 = _item(shared_data, ES_V0)
    v0.properties["sentinel:product_id"] = v0.properties["sentinel:product_id"].replace(
        "N0214", "N0400"
    )
    assert band_scaling(v0, "B02") == (1e-4, pytest.approx(-0.1))
    # Earth Search said it already applied the offset: none again
    v0.properties["sentinel:boa_offset_applied"] = True
    assert band_scaling(v0, "B02") == (1e-4, 0.0)


def test_earth_search_v1_scaling(es_v1):
    # raster:bands offset -0.1, but earthsearch:boa_offset_applied: DN are harmonised already
    assert es_v1.assets["red"].extra_fields["raster:bands"][0]["offset"] == -0.1
    assert band_scaling(es_v1, "red") == (1e-4, 0.0)
    assert band_scaling(es_v1, "aot") == (0.001, 0.0)  # non-reflectance: raster:bands as given
    assert band_scaling(es_v1, "scl") is None
    es_v1.properties["earthsearch:boa_offset_applied"] = False
    assert band_scaling(es_v1, "red") == (1e-4, pytest.approx(-0.1))


def test_landsat_collection_scaling():
    import datetime as dt

    item = pystac.Item(
        "LC09_x", None, None, dt.datetime(2023, 1, 1), {}, collection="landsat-c2-l2"
    )
    item.add_asset("red", pystac.Asset("red.tif", media_type="image/tiff"))
    item.add_asset("qa_pixel", pystac.Asset("qa.tif", media_type="image/tiff"))
    assert band_scaling(item, "red") == (2.75e-5, -0.2)
    assert band_scaling(item, "qa_pixel") is None
    assert common_name("SR_B5") == "nir08" and common_name("QA_PIXEL") == "qa_pixel"


def test_cdse_and_theia_asset_keys():
    import datetime as dt

    item = pystac.Item("S2B_MSIL2A_x", None, None, dt.datetime(2025, 3, 2), {})
    for key in ("B04_10m", "B04_20m", "B04_60m", "SCL_20m", "SCL_60m", "B8A_20m", "TCI_10m"):
        item.add_asset(key, pystac.Asset(f"{key}.jp2", media_type="image/jp2"))
    assert resolve_bands([item], ["red", "scl", "nir08", "B04_60m"]) == {
        "red": "B04_10m",
        "scl": "SCL_20m",
        "nir08": "B8A_20m",
        "B04_60m": "B04_60m",
    }
    assert common_name("B04_10m") == "red" and common_name("SCL_20m") == "scl"
    assert common_name("FRE_B8A") == "nir08" and common_name("CLM_R1") == "clm"
    assert common_name("B2") == "blue" and common_name("visual") is None


def test_presets():
    assert set(PRESETS) == {"earth-search", "planetary-computer", "cdse", "theia"}
    assert get_preset("earthsearch") is PRESETS["earth-search"]
    assert get_preset("planetary-computer").sign
    pc = get_preset("planetary-computer").modifier()
    import planetary_computer

    assert pc is planetary_computer.sign_inplace
    with pytest.raises(InputError, match="unknown preset 'usgs'; use one of earth-search"):
        get_preset("usgs")
    with pytest.raises(InputError, match="unknown preset"):
        eoai.search(preset="usgs")
