"""Default chunking of eoai.load: several dates per chunk for small local grids, one date per
chunk for remote files and with min_valid_fraction (dropped dates must never be read)."""

from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pystac
import pytest

import eoai
from eoai.io.loading import default_chunks


def test_default_chunks_bound_memory_and_keep_threads_busy():
    assert default_chunks((10980, 10980)) == {"time": 1, "y": 2048, "x": 2048}
    small = default_chunks((512, 512))
    assert small["time"] * 512 * 512 <= 2048 * 2048  # never more pixels than one full date
    assert small["time"] == 16
    # 60 dates x 1 band over 16 threads: 4 dates per chunk keeps every thread busy
    assert default_chunks((512, 512), n_dates=60, n_bands=1, workers=16)["time"] == 4


def test_small_local_load_has_several_dates_per_chunk_and_same_values():
    sample = eoai.datasets.sample_catalog()
    auto = eoai.load(sample, collections="slovenia-ndvi", bands=["ndvi"], groupby="time")
    one = eoai.load(
        sample, collections="slovenia-ndvi", bands=["ndvi"], groupby="time",
        chunks={"time": 1, "y": 2048, "x": 2048},
    )  # fmt: skip
    assert max(auto.ndvi.chunks[0]) > 1 and max(one.ndvi.chunks[0]) == 1
    np.testing.assert_array_equal(auto.ndvi.values, one.ndvi.values)


def test_min_valid_fraction_keeps_one_date_per_chunk():
    with pytest.warns(eoai.errors.DataSkippedWarning):
        cube = eoai.load(
            eoai.datasets.sample_catalog(), collections="slovenia-ndvi", bands=["ndvi"],
            groupby="time", min_valid_fraction=0.5,
        )  # fmt: skip
    assert max(cube.ndvi.chunks[0]) == 1


@pytest.fixture
def served_sample(tmp_path):
    """The sample's NDVI items with their assets served over http on 127.0.0.1."""
    root = eoai.datasets.sample_catalog().parent
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        items = list(eoai.search(eoai.datasets.sample_catalog(), collections="slovenia-ndvi"))[:6]
        remote = []
        for item in items:
            item = item.clone()
            for asset in item.assets.values():
                rel = pystac.utils.make_relative_href(asset.get_absolute_href(), str(root) + "/")
                asset.href = f"{base}/{rel.removeprefix('./')}"
            remote.append(item)
        yield remote
    finally:
        server.shutdown()


def test_remote_files_keep_one_date_per_chunk(served_sample, count_computes):
    with count_computes() as c:
        cube = eoai.load(served_sample, bands=["ndvi"], groupby="time", mask=None)
    assert c.count == 0
    assert cube.sizes["time"] == 6 and max(cube.ndvi.chunks[0]) == 1
