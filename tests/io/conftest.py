"""A real STAC API for the io tests: ``rustac serve`` on 127.0.0.1 with the Earth Search items.

The fixture copies the collection and the 10 Sentinel-2 L2A items of
``../shared/data/earthsearch_l2a`` into a temporary folder, rewrites the local asset hrefs
(``./B04.tif``) to absolute ``file:///...`` URLs (remote hrefs are left alone), starts
``rustac serve --addr 127.0.0.1:<free port> collection.json items.json``, waits until the landing
page answers, yields its URL and stops the server afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from eoai_testing import free_port, skip_or_fail, stop_process


def _rustac() -> str | None:
    local = Path(sys.executable).parent / "rustac"
    return str(local) if local.is_file() else shutil.which("rustac")


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
    exe = _rustac()
    if exe is None:
        skip_or_fail("rustac is not installed (pip install rustac)")
    src = shared_data / "earthsearch_l2a" / "sentinel-2-l2a"
    tmp = tmp_path_factory.mktemp("rustac")
    collection = json.loads((src / "collection.json").read_text())
    collection["links"] = []
    (tmp / "collection.json").write_text(json.dumps(collection))
    items = _absolute_items(src)
    assert len(items) == 10
    (tmp / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / "rustac.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [exe, "serve", "--addr", f"127.0.0.1:{port}", "collection.json", "items.json"],
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"rustac serve exited: {(tmp / 'rustac.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/search?limit=1", timeout=2) as resp:
                    if json.load(resp).get("features"):
                        break
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rustac serve did not answer on {url} within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        stop_process(proc, timeout=10)
        log.close()
