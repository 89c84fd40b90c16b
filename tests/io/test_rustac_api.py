"""Search and load through a real STAC API: ``rustac serve`` on 127.0.0.1 (fixture in conftest.py)."""

from __future__ import annotations

import json
import socket
import time

import numpy as np
import pytest
from pystac_client import Client

import eoai
from eoai.errors import CatalogUnreachableError, EmptySearchError

BBOX = (16, 46, 16.1, 46.1)
ALL_IDS = sorted(
    f"{sat}_{tile}_202308{day}_0_L2A"
    for sat, days in (("S2A", ("15", "18")), ("S2B", ("10", "13", "20")))
    for day in days
    for tile in ("33TWL", "33TWM")
)


def test_pystac_client_bbox_datetime_ids_paging(rustac_api):
    client = Client.open(rustac_api)
    got = client.search(collections=["sentinel-2-l2a"], max_items=None)
    assert sorted(i.id for i in got.items()) == ALL_IDS
    in_time = client.search(datetime="2023-08-13/2023-08-15")
    assert sorted(i.id for i in in_time.items()) == [
        i for i in ALL_IDS if "0813" in i or "0815" in i
    ]
    twm_only = client.search(bbox=(16.3, 46.8, 16.4, 46.9))  # north of tile 33TWL
    assert {i.id.split("_")[1] for i in twm_only.items()} == {"33TWM"}
    one = client.search(ids=["S2A_33TWL_20230818_0_L2A"])
    assert [i.id for i in one.items()] == ["S2A_33TWL_20230818_0_L2A"]
    paged = client.search(limit=3)
    pages = list(paged.pages())
    assert [len(p.items) for p in pages] == [3, 3, 3, 1]
    assert sorted(i.id for p in pages for i in p.items) == ALL_IDS


def test_eoai_search_against_api(rustac_api):
    items = eoai.search(
        rustac_api, collections="sentinel-2-l2a", bbox=BBOX, datetime="2023-08-13/2023-08-15"
    )
    assert sorted(i.id for i in items) == [i for i in ALL_IDS if "0813" in i or "0815" in i]
    # paging with a small limit still returns every item; max_items stops early
    assert sorted(i.id for i in eoai.search(rustac_api, limit=2)) == ALL_IDS
    assert len(eoai.search(rustac_api, limit=2, max_items=3)) == 3
    assert [i.id for i in eoai.search(rustac_api, ids="S2B_33TWM_20230820_0_L2A")] == [
        "S2B_33TWM_20230820_0_L2A"
    ]


def test_eoai_search_cloud_cover_against_api(rustac_api, shared_data):
    # rustac's memory backend conforms to neither filter nor query: the cut is client-side here
    # (server-side CQL2 filter / query are tested against stac-fastapi-pgstac in tests/pgstac)
    covers = {}
    for p in (shared_data / "earthsearch_l2a" / "sentinel-2-l2a").glob("*/*_L2A.json"):
        d = json.loads(p.read_text())
        covers[d["id"]] = d["properties"]["eo:cloud_cover"]
    threshold = sorted(covers.values())[3]
    got = eoai.search(rustac_api, max_cloud_cover=threshold)
    assert sorted(i.id for i in got) == sorted(k for k, v in covers.items() if v <= threshold)


def test_empty_api_search_repeats_query(rustac_api):
    with pytest.raises(EmptySearchError) as err:
        eoai.search(rustac_api, bbox=(5, 40, 5.1, 40.1), datetime="2023-08")
    msg = str(err.value)
    assert rustac_api in msg and "bbox=(5.0, 40.0, 5.1, 40.1)" in msg and "'2023-08'" in msg


def test_load_what_the_api_returns(rustac_api):
    items = eoai.search(rustac_api, bbox=BBOX)
    cube = eoai.load(items, ["red", "nir"], bbox=BBOX, resolution=120, keep_mask=True)
    assert dict(cube.sizes) == {"time": 5, "y": 94, "x": 67}
    np.testing.assert_allclose(
        cube.eoai.valid_fraction().values, [0.205, 1, 1, 0.369, 0.997], atol=0.01
    )
    # loading straight from the API URL gives the same cube
    direct = eoai.load(
        rustac_api,
        ["red", "nir"],
        collections="sentinel-2-l2a",
        bbox=BBOX,
        resolution=120,
        keep_mask=True,
    )
    np.testing.assert_array_equal(direct.red.values, cube.red.values)
    assert np.isfinite(cube.red.values).sum() > 10000


def test_unreachable_catalog_names_url_and_is_fast():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the socket is released
    url = f"http://127.0.0.1:{port}/v1"
    start = time.monotonic()
    with pytest.raises(CatalogUnreachableError) as err:
        eoai.search(url, bbox=BBOX, timeout=2, retries=2)
    assert time.monotonic() - start < 20
    assert url in str(err.value) and "after 2 retries" in str(err.value)
    assert isinstance(err.value, ConnectionError)
    with pytest.raises(CatalogUnreachableError, match=f"127.0.0.1:{port}"):
        eoai.load(url + "/catalog.json", ["red"], timeout=2, retries=0)


def test_geometry_search_and_load(rustac_api):
    # a GeoJSON polygon equal to the bbox gives the same items and the same cube
    w, s, e, n = BBOX
    poly = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    by_geom = eoai.search(rustac_api, geometry=poly, datetime="2023-08-18")
    assert sorted(i.id for i in by_geom) == ["S2A_33TWL_20230818_0_L2A", "S2A_33TWM_20230818_0_L2A"]
    a = eoai.load(by_geom, ["red"], geometry=poly, resolution=120, mask=None)
    b = eoai.load(by_geom, ["red"], bbox=BBOX, resolution=120, mask=None)
    assert a.odc.geobox == b.odc.geobox
    np.testing.assert_array_equal(a.red.values, b.red.values)
