"""A real STAC API for the io tests: ``rustac serve`` on 127.0.0.1 with the Earth Search items.

The fixture copies the collection and the 10 Sentinel-2 L2A items of
``../shared/data/earthsearch_l2a`` into a temporary folder, rewrites the local asset hrefs
(``./B04.tif``) to absolute ``file:///...`` URLs (remote hrefs are left alone), starts
``rustac serve --addr 127.0.0.1:<free port> collection.json items.json``, waits until the landing
page answers, yields its URL and stops the server afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eoai_testing import rustac_server


def _absolute_items(src: Path) -> list[dict]:
    """Item dicts with local asset hrefs made absolute file:// URLs and relative links dropped."""
    items = []
    for path in sorted(src.glob("*/*_L2A.json")):
        item = json.loads(path.read_text())
        for asset in item["assets"].values():
            href = asset["href"]
            if "://" not in href:
                asset["href"] = (path.parent / href).resolve().as_uri()
        item["links"] = [link for link in item["links"] if "://" in link["href"]]
        items.append(item)
    return items


@pytest.fixture(scope="session")
def rustac_api(shared_data, tmp_path_factory) -> Iterator[str]:
    """URL of a running ``rustac serve`` STAC API holding the 10 earthsearch_l2a items."""
    src = shared_data / "earthsearch_l2a" / "sentinel-2-l2a"
    collection = json.loads((src / "collection.json").read_text())
    collection["links"] = []
    items = _absolute_items(src)
    assert len(items) == 10
    with rustac_server(tmp_path_factory.mktemp("rustac"), collection, items) as url:
        yield url
