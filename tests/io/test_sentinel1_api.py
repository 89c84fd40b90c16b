"""Sentinel-1 search through a real STAC API: ``rustac serve`` on 127.0.0.1 with the real Planetary
Computer ``sentinel-1-rtc`` items of shared/data/sentinel1 (current and early asset keys).

rustac's memory backend conforms to neither *filter* nor *query*, so the orbit / mode /
polarisation filters are applied by eoai on the items the API returns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eoai_testing import rustac_server
from pystac_client import Client

import eoai
from eoai.errors import EmptySearchError

S1 = Path("sentinel1")
PCT = S1 / "planetary-computer-tasks/pctasks/task/tests/data-files/items/s1-rtc/2019/12/15/IW"


def _rtc_items(shared: Path) -> list[dict]:
    items = json.loads(
        (shared / S1 / "stac-geoparquet/tests/data/sentinel-1-rtc-pc.json").read_text()
    )
    items += [
        json.loads(p.read_text())
        for p in sorted((shared / S1).glob("stac-geoparquet/_extracted/sentinel-1-rtc__*.json"))
    ]
    items += [json.loads(p.read_text()) for p in sorted((shared / PCT).glob("*/*_rtc.json"))]  # fmt: skip
    for item in items:  # early items have no collection field; the API needs one
        item["collection"] = "sentinel-1-rtc"
        item["links"] = []
    return items


@pytest.fixture(scope="module")
def s1_api(shared_data, tmp_path_factory) -> Iterator[tuple[str, list[dict]]]:
    items = _rtc_items(shared_data)
    collection = {
        "type": "Collection", "stac_version": "1.0.0", "id": "sentinel-1-rtc",
        "description": "Sentinel-1 RTC (Planetary Computer items)", "license": "proprietary",
        "links": [], "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                "temporal": {"interval": [["2014-10-10T00:00:00Z", None]]}},
    }  # fmt: skip
    with rustac_server(tmp_path_factory.mktemp("rustac_s1"), collection, items) as url:
        yield url, items


def _ids(items, **props):
    return sorted(
        i["id"] for i in items if all(i["properties"].get(k) == v for k, v in props.items())
    )


def test_orbit_and_polarisation_filters_through_the_api(s1_api):
    url, items = s1_api
    assert len(items) == 13
    assert len(list(Client.open(url).search(max_items=None).items())) == 13
    asc5 = eoai.search(url, collections="sentinel-1-rtc", orbit_state="ascending", relative_orbit=5)
    assert sorted(i.id for i in asc5) == _ids(items, **{"sat:relative_orbit": 5})
    assert len(asc5) == 4 and all("1SDV" in i.id for i in asc5)
    desc = eoai.search(url, orbit_state="descending", limit=2)  # paging, then filtering
    assert sorted(i.id for i in desc) == _ids(items, **{"sat:orbit_state": "descending"})
    assert sorted({i.properties["sat:relative_orbit"] for i in desc}) == [11, 51, 80]
    dual_h = eoai.search(url, polarizations=["HH", "HV"], instrument_mode="IW")
    assert len(dual_h) == 4 and {i.properties["sat:relative_orbit"] for i in dual_h} == {6, 11}
    # the asset keys of both generations resolve to the same polarisation names
    assert eoai.io.bands.resolve_bands(list(asc5), ["vv"]) == {"vv": "vv-rtc"}
    track51 = eoai.search(url, relative_orbit=51, polarizations="VH")
    assert eoai.io.bands.resolve_bands(list(track51), ["vv"]) == {"vv": "vv"}


def test_empty_api_search_lists_what_is_there(s1_api):
    url, _ = s1_api
    with pytest.raises(EmptySearchError) as err:
        eoai.search(url, orbit_state="ascending", relative_orbit=51)
    msg = str(err.value)
    assert "relative_orbit=[51]" in msg and "sat:relative_orbit" in msg and "VV+VH" in msg
