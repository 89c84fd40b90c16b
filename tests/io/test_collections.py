"""eoai.load over items of several collections (the embedded sample holds two with different bands).

Decision (issue #16): ``bands=None`` over collections with different bands is an error that lists
each collection with its bands; asked bands load from the collections that have them, onto one grid,
with the dates of the other collections NaN; a band in no collection lists every collection's bands.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import eoai
from eoai.errors import InputError, UnknownBandError


@pytest.fixture(scope="module")
def catalog():
    return eoai.datasets.sample_catalog()


def test_no_bands_over_two_collections_lists_them(catalog):
    # before: ValueError: No such band/alias: blue (from inside odc-stac)
    with pytest.raises(InputError) as err:
        eoai.load(catalog)
    msg = str(err.value)
    assert "2 collections with different bands" in msg
    assert "'slovenia-ndvi' (68 items; assets ndvi, clm)" in msg
    assert "'slovenia-l1c' (5 items; assets blue, " in msg and "swir22, clm)" in msg
    assert "pass collections= one of ['slovenia-l1c', 'slovenia-ndvi']" in msg
    # one collection: every band, as before
    cube = eoai.load(catalog, collections="slovenia-l1c")
    assert len(cube.data_vars) == 13 and "clm" not in cube


def test_bands_from_two_collections_load_per_collection(catalog):
    # before: ValueError: No such band/alias: red
    both = eoai.load(catalog, bands=["ndvi", "B04"])
    assert list(both.data_vars) == ["ndvi", "B04"]
    assert both.attrs["eoai:bands"] == "ndvi=ndvi,B04=red"
    l1c = eoai.load(catalog, bands=["B04"], collections="slovenia-l1c").compute()
    ndvi = eoai.load(catalog, bands=["ndvi"], collections="slovenia-ndvi").compute()
    both = both.compute()
    # one grid, each band exactly as loaded from its own collection; NaN at the other dates
    assert both.odc.geobox == ndvi.odc.geobox == l1c.odc.geobox
    xr.testing.assert_identical(both.B04.sel(time=l1c.time), l1c.B04)
    xr.testing.assert_identical(both.ndvi.sel(time=ndvi.time), ndvi.ndvi)
    others = np.setdiff1d(both.time.values, l1c.time.values)
    assert len(others) == both.sizes["time"] - 5 and both.B04.sel(time=others).isnull().all()


def test_band_of_one_collection_leaves_the_other_out(catalog):
    cube = eoai.load(catalog, bands=["ndvi"])
    assert cube.attrs["eoai:n_items"] == 68 and list(cube.data_vars) == ["ndvi"]
    # the mask band alone does not bring a collection in; asked alone, it comes from both
    assert eoai.load(catalog, bands=["ndvi", "clm"]).attrs["eoai:n_items"] == 68
    assert eoai.load(catalog, bands=["clm"], mask=None).attrs["eoai:n_items"] == 73
    kept = eoai.load(catalog, bands=["ndvi", "red"], keep_mask=True)
    assert list(kept.data_vars) == ["ndvi", "red", "clm"] and kept.attrs["eoai:n_items"] == 73


def test_band_in_no_collection_lists_each(catalog):
    with pytest.raises(UnknownBandError) as err:
        eoai.load(catalog, bands=["ndvi", "swir99"])
    msg = str(err.value)
    assert "'swir99' are in none of the 2 collections" in msg
    assert "'slovenia-ndvi' (68 items; assets ndvi, clm)" in msg and "'slovenia-l1c'" in msg
    assert "in bands=[...]" in msg


def test_reversed_datetime_range_is_an_error_before_any_request(catalog, monkeypatch):
    # before: EmptySearchError "no item found ... Widen the bbox or the datetime range"
    from eoai.io import _http

    def no_request(*args, **kwargs):
        raise AssertionError("a request was made")

    monkeypatch.setattr(_http, "get_json", no_request)
    for source in (catalog, "https://example.invalid/stac"):
        with pytest.raises(InputError) as err:
            eoai.search(source, datetime="2021-12-31/2021-01-01")
        msg = str(err.value)
        assert "datetime '2021-12-31/2021-01-01' is reversed" in msg
        assert "give the earlier date first, e.g. datetime='2021-01-01/2021-12-31'" in msg
    with pytest.raises(InputError, match=r"is reversed.*datetime=\('2015-07-01', '2015-09-30'\)"):
        eoai.load(catalog, ["ndvi"], datetime=("2015-09-30", "2015-07-01"))
    # one day and open ranges are fine
    assert len(eoai.search(catalog, datetime="2015-07-11/2015-07-11")) == 2
    assert len(eoai.search(catalog, datetime="../2015-07-11")) == 2


def test_resolution_pair(catalog):
    # before: ValueError: Unsupported input type: res_(x: <class 'tuple'>) from odc-geo
    cube = eoai.load(catalog, ["ndvi"], collections="slovenia-ndvi", datetime="2015-07",
                     resolution=(20, 10))  # fmt: skip
    assert cube.odc.geobox.resolution.xy == (20, -10) and cube.attrs["eoai:resolution"] == [20, 10]
    with pytest.raises(InputError, match=r"an \(x, y\) pair of them .* got \(1, 2, 3\)"):
        eoai.load(catalog, ["ndvi"], collections="slovenia-ndvi", resolution=(1, 2, 3))
