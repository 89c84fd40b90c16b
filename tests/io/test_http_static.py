"""A static catalog read over HTTP (a throw-away http.server on 127.0.0.1), with timeouts/retries."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

import eoai
from eoai.errors import CatalogError, CatalogUnreachableError


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def http_catalog(shared_data):
    handler = functools.partial(_Quiet, directory=str(shared_data / "earthsearch_l2a"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_search_static_catalog_over_http(http_catalog):
    items = eoai.search(
        f"{http_catalog}/catalog.json",
        bbox=(16, 46, 16.1, 46.1),
        datetime="2023-08-20",
        timeout=5,
        retries=1,
    )
    assert sorted(i.id for i in items) == ["S2B_33TWL_20230820_0_L2A", "S2B_33TWM_20230820_0_L2A"]
    # relative asset hrefs resolve against the item's URL
    assert items[0].assets["red"].get_absolute_href() == (
        f"{http_catalog}/sentinel-2-l2a/{items[0].id}/B04.tif"
    )


def test_missing_document_and_non_stac(http_catalog):
    with pytest.raises(CatalogUnreachableError, match="HTTP 404") as err:
        eoai.search(f"{http_catalog}/nope.json", timeout=5, retries=0)
    assert f"{http_catalog}/nope.json" in str(err.value)
    with pytest.raises(CatalogError, match="did not answer with JSON"):
        eoai.search(f"{http_catalog}/Readme.md", timeout=5, retries=0)
