"""Cloud-cover searches (``query`` and CQL2 ``filter``) against a real stac-fastapi-pgstac.

A session fixture runs PostgreSQL + PostGIS + pgstac + stac-fastapi-pgstac (tests/pgstac/
pgstac_server.py) loaded with the 10 real Earth Search Sentinel-2 L2A items of
``../shared/data/earthsearch_l2a``. Expected sets are computed from the item JSON files.
Without PostgreSQL these tests skip locally and fail in CI (``skip_or_fail``).

The fixture lives here rather than in a sub-folder conftest.py; shared helpers come from
``tests/eoai_testing.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from eoai_testing import skip_or_fail
from pgstac_server import Unavailable, read_static_collection, serve

pytestmark = pytest.mark.pgstac

COLLECTION = "sentinel-2-l2a"
BBOX = (16.0, 46.0, 16.1, 46.1)
# SCL-valid fraction per date over BBOX at 120 m (../shared/data/README.md, earthsearch_l2a).
README_VALID_FRACTION = {
    dt.date(2023, 8, 10): 0.205,
    dt.date(2023, 8, 13): 1.0,
    dt.date(2023, 8, 15): 1.0,
    dt.date(2023, 8, 18): 0.369,
    dt.date(2023, 8, 20): 0.997,
}


@pytest.fixture(scope="session")
def earthsearch_collection(shared_data: Path) -> Path:
    path = shared_data / "earthsearch_l2a" / COLLECTION / "collection.json"
    assert path.is_file(), f"missing {path}"
    return path


@pytest.fixture(scope="session")
def cloud_cover(earthsearch_collection: Path) -> dict[str, float]:
    """``eo:cloud_cover`` of every item, read from the item JSON files themselves."""
    out = {}
    for item_json in earthsearch_collection.parent.glob("*/*.json"):
        item = json.loads(item_json.read_text())
        out[item["id"]] = float(item["properties"]["eo:cloud_cover"])
    assert len(out) == 10, f"expected the 10 Earth Search items, found {sorted(out)}"
    return out


@pytest.fixture(scope="session")
def pgstac_url(earthsearch_collection: Path) -> Iterator[str]:
    """URL of a stac-fastapi-pgstac serving the Earth Search items (skip/fail when unavailable)."""
    collection, items = read_static_collection(earthsearch_collection)
    try:
        with serve(collection, items) as url:
            yield url
    except Unavailable as exc:
        skip_or_fail(str(exc))


def below(cloud_cover: dict[str, float], threshold: float) -> set[str]:
    expected = {item_id for item_id, cc in cloud_cover.items() if cc < threshold}
    # a threshold that keeps everything or nothing would not test the filter
    assert 0 < len(expected) < len(cloud_cover), (threshold, cloud_cover)
    return expected


# 1.5 and 10 split dates apart (tile 33TWL at 1.70, 33TWM at 1.11 on 2023-08-13); 50 keeps all but
# 2023-08-10. "median" is the exact cloud cover of one item, which `lt` must exclude.
THRESHOLDS = [1.5, 10.0, 50.0, "median"]


def resolve(threshold, cloud_cover: dict[str, float]) -> float:
    if threshold == "median":
        return sorted(cloud_cover.values())[len(cloud_cover) // 2]
    return threshold


def _ids(search) -> list[str]:
    ids = [item.id for item in search.items()]
    assert len(ids) == len(set(ids)), f"duplicate items returned: {ids}"
    return ids


@pytest.fixture(scope="session")
def client(pgstac_url: str):
    from pystac_client import Client

    return Client.open(pgstac_url)


def test_api_serves_all_items_with_cloud_cover(client, cloud_cover):
    items = list(client.search(collections=[COLLECTION], limit=3).items())  # 4 pages of 3
    assert {i.id: i.properties["eo:cloud_cover"] for i in items} == pytest.approx(cloud_cover)
    red = items[0].assets["red"].href
    assert red.startswith("file:///") and Path(red[len("file://") :]).is_file(), red


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_query_extension_cloud_cover(client, cloud_cover, threshold):
    x = resolve(threshold, cloud_cover)
    search = client.search(collections=[COLLECTION], query={"eo:cloud_cover": {"lt": x}})
    assert set(_ids(search)) == below(cloud_cover, x)


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_cql2_json_filter_cloud_cover(client, cloud_cover, threshold):
    x = resolve(threshold, cloud_cover)
    search = client.search(
        collections=[COLLECTION],
        filter={"op": "<", "args": [{"property": "eo:cloud_cover"}, x]},
        filter_lang="cql2-json",
    )
    assert set(_ids(search)) == below(cloud_cover, x)


@pytest.mark.parametrize("threshold", [1.5, 10.0])
def test_cql2_text_filter_cloud_cover_and_bbox(client, cloud_cover, threshold):
    # cql2-text travels in the query string of GET /search (POST takes cql2-json only)
    search = client.search(
        method="GET",
        collections=[COLLECTION],
        bbox=BBOX,
        filter=f'"eo:cloud_cover" < {threshold} AND "eo:cloud_cover" >= 0',
        filter_lang="cql2-text",
    )
    assert set(_ids(search)) == below(cloud_cover, threshold)


def test_query_on_unknown_collection_returns_nothing(client):
    search = client.search(collections=["no-such-collection"], query={"eo:cloud_cover": {"lt": 50}})
    assert _ids(search) == []


@pytest.fixture(scope="session")
def eoai_search():
    try:
        from eoai.io.catalog import search
    except ImportError as exc:  # the IO helper writes eoai/io/catalog.py in parallel
        pytest.fail(f"eoai.search is not available yet: {exc}")
    return search


@pytest.mark.parametrize("threshold", [1.5, 10.0, 50.0])
def test_eoai_search_max_cloud_cover(pgstac_url, eoai_search, cloud_cover, threshold):
    import eoai

    items = eoai.search(pgstac_url, collections=[COLLECTION], max_cloud_cover=threshold)
    ids = [item.id for item in items]
    assert len(ids) == len(set(ids))
    assert set(ids) == below(cloud_cover, threshold)


def test_eoai_load_of_cloud_filtered_search(pgstac_url, eoai_search, cloud_cover):
    """Search at < 10 % cloud, load with SCL masking: only the clear dates, right valid fraction."""
    import eoai

    threshold = 10.0
    items = eoai.search(pgstac_url, collections=[COLLECTION], max_cloud_cover=threshold)
    expected_ids = below(cloud_cover, threshold)
    assert {item.id for item in items} == expected_ids
    expected_dates = sorted({item.datetime.date() for item in items})
    # the filter removes whole dates here (2023-08-10, 2023-08-18), so the check can fail
    assert len(expected_dates) < len(README_VALID_FRACTION)

    cube = eoai.load(items, bands=["red", "nir"], bbox=BBOX, resolution=120, mask="scl")
    dates = [dt.date.fromisoformat(str(t)[:10]) for t in cube.time.values]
    assert dates == expected_dates
    assert cube.sizes["y"] == 94 and cube.sizes["x"] == 67, dict(cube.sizes)
    assert cube["red"].chunks is not None  # lazy, dask-backed

    red = cube["red"].compute()
    assert red.dtype == np.float32
    valid = red.notnull().mean(("y", "x")).values
    np.testing.assert_allclose(
        valid, [README_VALID_FRACTION[d] for d in dates], atol=0.01, err_msg=str(dates)
    )
    finite = red.values[np.isfinite(red.values)]
    assert finite.size and 0.0 <= np.median(finite) <= 0.5  # float reflectance, not DN

    # pixel for pixel: NaN exactly where SCL is no data (0), saturated (1), cloud shadow (3),
    # cloud medium/high probability (8, 9) or thin cirrus (10)
    scl = eoai.load(items, bands=["scl"], bbox=BBOX, resolution=120, mask=None)["scl"].values
    assert np.isnan(red.values).sum() > 0  # 2023-08-20 has cloud there
    np.testing.assert_array_equal(np.isnan(red.values), np.isin(scl, [0, 1, 3, 8, 9, 10]))


@pytest.mark.parametrize("rank", [2, 5])
def test_eoai_search_max_cloud_cover_is_inclusive(pgstac_url, eoai_search, cloud_cover, rank):
    """``max_cloud_cover`` means "at most": an item exactly at the threshold is kept."""
    import eoai

    x = sorted(cloud_cover.values())[rank]
    items = eoai.search(pgstac_url, collections=[COLLECTION], max_cloud_cover=x)
    expected = {item_id for item_id, cc in cloud_cover.items() if cc <= x}
    assert {item.id for item in items} == expected
