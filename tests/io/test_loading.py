"""eoai.load on the real Earth Search Sentinel-2 L2A static catalog in ../shared/data/earthsearch_l2a.

Known values (from ../shared/data/README.md): over bbox (16, 46, 16.1, 46.1) at 120 m, groupby
solar_day, 5 dates x 94 x 67 px in EPSG:32633 with SCL-valid fractions about
0.205, 1, 1, 0.369, 0.997.
"""

from __future__ import annotations

import json
import warnings

import dask
import numpy as np
import pytest
import rasterio
import xarray as xr

import eoai
from eoai.errors import (
    DataSkippedWarning,
    EmptySearchError,
    NoOverlapError,
    UnknownBandError,
)
from eoai.io.masks import SCL_DEFAULT_CLASSES, MaskSpec

BBOX = (16, 46, 16.1, 46.1)
README_FRACTIONS = np.array([0.205, 1, 1, 0.369, 0.997])
DATES = ["2023-08-10", "2023-08-13", "2023-08-15", "2023-08-18", "2023-08-20"]


@pytest.fixture(scope="module")
def catalog(shared_data):
    path = shared_data / "earthsearch_l2a" / "catalog.json"
    assert path.is_file(), f"missing {path}"
    return path


def _load(catalog, bands=("red", "nir"), **kw):
    return eoai.load(catalog, list(bands), bbox=BBOX, resolution=120, **kw)


def test_valid_fraction_per_date_matches_reference(catalog):
    cube = _load(catalog, keep_mask=True)
    assert dict(cube.sizes) == {"time": 5, "y": 94, "x": 67}
    assert [str(t)[:10] for t in cube.time.values] == DATES
    frac = cube.eoai.valid_fraction().values
    np.testing.assert_allclose(frac, README_FRACTIONS, atol=0.01)
    # the masked red band is NaN exactly as often as the mask says
    np.testing.assert_allclose(cube.red.notnull().mean(("y", "x")).values, frac)


def test_reference_fractions_mask_dark_pixels_too(catalog):
    # the README's figures come from masking SCL class 2 (dark area) as well: to 0.001
    spec = MaskSpec.scl(classes=(*SCL_DEFAULT_CLASSES, 2))
    cube = _load(catalog, mask=spec, keep_mask=True)
    np.testing.assert_allclose(cube.eoai.valid_fraction().values, README_FRACTIONS, atol=0.001)


def test_load_is_lazy_and_keeps_crs(catalog, count_computes):
    with count_computes() as c:
        cube = _load(catalog, bands=("red", "nir", "green"), keep_mask=True)
        frac = cube.eoai.valid_fraction()
        masked = eoai.io.masks.mask(cube, "scl")
    assert c.count == 0
    for obj in (cube.red, cube.scl, frac, masked.red):
        assert isinstance(obj.data, dask.array.Array)
    assert cube.odc.crs.epsg == 32633
    assert int(cube.spatial_ref) == 32633
    assert cube.red.dtype == np.float32 and cube.scl.dtype == np.uint8
    assert cube.red.dims == ("time", "y", "x")
    # 120 m pixels, north-up, inside the UTM 33N bbox of the area
    assert float(cube.x[1] - cube.x[0]) == 120 and float(cube.y[1] - cube.y[0]) == -120
    # the cube covers the bbox (projected to UTM 33N) to within one pixel
    from pyproj import Transformer

    to_utm = Transformer.from_crs(4326, 32633, always_xy=True)
    xs, ys = to_utm.transform([16, 16.1, 16, 16.1], [46, 46, 46.1, 46.1])
    left, right = float(cube.x.min()) - 60, float(cube.x.max()) + 60
    bottom, top = float(cube.y.min()) - 60, float(cube.y.max()) + 60
    assert abs(left - min(xs)) < 120 and abs(right - max(xs)) < 120
    assert abs(bottom - min(ys)) < 120 and abs(top - max(ys)) < 120
    assert cube.attrs["eoai:method"] == "load"
    assert cube.attrs["eoai:mask"] == "scl classes 0,1,3,8,9,10"
    assert "scl" not in _load(catalog).data_vars  # dropped unless keep_mask
    # the settings also as one JSON step, so that a lineage after load has them (issue #14)
    params = json.loads(cube.attrs["eoai:parameters"])
    assert params["bands"] == cube.attrs["eoai:bands"] and params["resolution"] == 120
    assert params["mask"] == "scl classes 0,1,3,8,9,10" and params["n_items"] == 10
    # mask() keeps the cube's attrs and moves load into the lineage with its parameters
    lineage = json.loads(masked.attrs["eoai:lineage"])
    assert [s["method"] for s in lineage] == ["load"] and lineage[0]["parameters"] == params
    assert masked.attrs["eoai:method"] == "mask" and masked.attrs["eoai:bands"] == params["bands"]
    assert json.loads(frac.attrs["eoai:parameters"]) == {"mask": "auto"}


def test_mask_pixel_for_pixel_against_scl(catalog):
    raw = _load(catalog, bands=("red", "nir", "scl"), mask=None).compute()
    masked = _load(catalog, bands=("red", "nir"), keep_mask=True).compute()
    np.testing.assert_array_equal(masked.scl.values, raw.scl.values)
    bad = np.isin(raw.scl.values, [0, 1, 3, 8, 9, 10])
    assert 0 < bad.sum() < bad.size
    for band in ("red", "nir"):
        expected = np.where(bad, np.nan, raw[band].values)
        np.testing.assert_array_equal(masked[band].values, expected)
    # snow is optional and absent here; a custom class list is honoured
    only_high = _load(catalog, bands=("red",), mask=MaskSpec.scl(classes=[9])).compute()
    np.testing.assert_array_equal(
        np.isnan(only_high.red.values), (raw.scl.values == 9) | np.isnan(raw.red.values)
    )


def _dn_at(href, cube):
    """Raw DN of ``href`` at the centres of the cube's pixels (nearest source pixel)."""
    with rasterio.open(href) as src:
        dn, transform = src.read(1), src.transform
    xx, yy = np.meshgrid(cube.x.values, cube.y.values)
    cols, rows = ~transform * (xx, yy)
    return dn[np.floor(rows).astype(int), np.floor(cols).astype(int)]


def test_scaling_against_known_dn(catalog):
    # Earth Search v1 items: raster:bands says offset -0.1 but earthsearch:boa_offset_applied is
    # true (the DN are already harmonised: vegetation red ~300 DN), so reflectance = DN * 1e-4.
    items = eoai.search(catalog, ids="S2A_33TWL_20230815_0_L2A")
    item = items[0]
    assert item.assets["red"].extra_fields["raster:bands"][0]["offset"] == -0.1
    assert item.properties["earthsearch:boa_offset_applied"] is True
    small = (16, 46, 16.02, 46.02)
    cube = eoai.load(items, ["red"], mask=None, resolution=10, bbox=small).compute()
    dn = _dn_at(item.assets["red"].get_absolute_href(), cube)
    assert dn.min() > 0 and 150 < np.median(dn) < 2000
    expected = dn.astype("float32") * np.float32(1e-4)
    np.testing.assert_array_equal(cube.red.values[0], expected)
    assert cube.red.attrs["add_offset_applied"] == 0.0

    # the same pixels, with the provider flag absent: baseline 05.09 >= 04.00 -> -1000 DN
    clone = item.clone()
    del clone.properties["earthsearch:boa_offset_applied"]
    for key in ("red", "scl"):
        clone.assets[key].href = item.assets[key].get_absolute_href()
    shifted = eoai.load([clone], ["red"], mask=None, resolution=10, bbox=small).compute()
    np.testing.assert_allclose(shifted.red.values[0], expected - np.float32(0.1), atol=1e-7)
    assert shifted.red.attrs["add_offset_applied"] == pytest.approx(-0.1)


def test_nodata_becomes_nan_never_zero(catalog):
    # 2023-08-13 tile 33TWL has a no-data edge (DN 0); SCL 0 there too
    items = eoai.search(catalog, ids="S2B_33TWL_20230813_0_L2A")
    href = items[0].assets["red"].get_absolute_href()
    with rasterio.open(href) as src:
        assert (
            src.nodata == 0 or items[0].assets["red"].extra_fields["raster:bands"][0]["nodata"] == 0
        )
        zero = (src.read(1) == 0).mean()
    assert zero > 0.05
    cube = eoai.load(items, ["red"], mask=None, resolution=120).compute()
    values = cube.red.values
    assert not (values == 0).any()
    assert np.isnan(values).mean() == pytest.approx(zero, abs=0.01)


def test_numpy_and_dask_agree(catalog):
    lazy = _load(catalog, bands=("red", "scl"), mask=None)
    eager = lazy.compute()
    for spec in ("scl", MaskSpec.scl(snow=True)):
        a = eoai.io.masks.mask(lazy, spec)
        b = eoai.io.masks.mask(eager, spec)
        assert isinstance(a.red.data, dask.array.Array) and isinstance(b.red.data, np.ndarray)
        xr.testing.assert_identical(a.compute(), b)
        xr.testing.assert_identical(
            eoai.io.masks.valid_fraction(lazy, spec).compute(),
            eoai.io.masks.valid_fraction(eager, spec),
        )


class _Recorder:
    """A dask scheduler that records the keys of every graph it computes."""

    def __init__(self):
        self.graphs = []

    def __call__(self, dsk, keys, **kw):
        graph = dsk.__dask_graph__() if hasattr(dsk, "__dask_graph__") else dsk
        self.graphs.append([str(k) for k in dict(graph)])
        return dask.get(dsk, keys, **kw)


def test_min_valid_fraction_computes_the_mask_band_only(catalog):
    rec = _Recorder()
    with dask.config.set(scheduler=rec), pytest.warns(DataSkippedWarning, match="2 of 5 date"):
        cube = _load(catalog, bands=("red", "nir"), min_valid_fraction=0.5)
    assert len(rec.graphs) == 1, "exactly one compute: the valid fraction of the mask band"
    keys = " ".join(rec.graphs[0])
    assert "scl" in keys
    assert "red" not in keys and "nir" not in keys
    assert [str(t)[:10] for t in cube.time.values] == [DATES[i] for i in (1, 2, 4)]
    assert isinstance(cube.red.data, dask.array.Array)
    np.testing.assert_allclose(cube.valid_fraction.values, README_FRACTIONS[[1, 2, 4]], atol=0.01)
    with count_none() as c:
        _load(catalog, min_valid_fraction=None)
    assert c.graphs == []


def count_none():
    rec = _Recorder()

    class _Ctx:
        def __enter__(self):
            self._cfg = dask.config.set(scheduler=rec)
            self._cfg.__enter__()
            return rec

        def __exit__(self, *exc):
            self._cfg.__exit__(*exc)

    return _Ctx()


def test_unknown_band_lists_available(catalog):
    with pytest.raises(UnknownBandError) as err:
        _load(catalog, bands=("red", "swir99"))
    msg = str(err.value)
    assert "'swir99'" in msg
    for name in ("blue", "green", "nir", "red", "scl", "swir16", "rededge1"):
        assert name in msg


def test_bbox_outside_items(catalog):
    with pytest.raises(NoOverlapError, match=r"does not intersect any of the 10 items") as err:
        eoai.load(catalog, ["red"], bbox=(5, 40, 5.1, 40.1), resolution=120)
    assert "bbox (5, 40, 5.1, 40.1)" in str(err.value)
    assert "(14.9998, 45.0568, 16.4425, 46.9537)" in str(err.value)  # the items' extent


def test_empty_search_repeats_query(catalog):
    with pytest.raises(EmptySearchError) as err:
        eoai.search(catalog, datetime="2020-01", bbox=BBOX)
    msg = str(err.value)
    assert "datetime='2020-01'" in msg and "bbox=(16.0, 46.0, 16.1, 46.1)" in msg
    assert "sentinel-2-l2a" in msg
    with pytest.raises(EmptySearchError, match="datetime='2021'"):
        eoai.load(catalog, ["red"], bbox=BBOX, datetime="2021", resolution=120)


def test_groupby_time_keeps_every_item(catalog):
    cube = eoai.load(catalog, ["red"], bbox=BBOX, resolution=120, groupby="time", mask=None)
    assert cube.sizes["time"] == 10  # two MGRS tiles per overpass


def test_search_static_filters(catalog):
    items = eoai.search(catalog, bbox=BBOX, datetime="2023-08-13/2023-08-15")
    assert sorted(i.id for i in items) == [
        "S2A_33TWL_20230815_0_L2A",
        "S2A_33TWM_20230815_0_L2A",
        "S2B_33TWL_20230813_0_L2A",
        "S2B_33TWM_20230813_0_L2A",
    ]
    import json

    covers = {}
    for p in (catalog.parent / "sentinel-2-l2a").glob("*/*_L2A.json"):
        d = json.loads(p.read_text())
        covers[d["id"]] = d["properties"]["eo:cloud_cover"]
    threshold = sorted(covers.values())[4]
    low = eoai.search(catalog, max_cloud_cover=threshold)
    assert sorted(i.id for i in low) == sorted(k for k, v in covers.items() if v <= threshold)
    assert len(low) == 5


def test_no_data_skipped_warning_by_default(catalog):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _load(catalog)
    assert not [w for w in caught if issubclass(w.category, eoai.errors.EoaiWarning)]


def test_input_validation(catalog, tmp_path):
    from eoai.errors import CatalogError, InputError

    with pytest.raises(CatalogError, match="the file does not exist"):
        eoai.search(tmp_path / "catalog.json")
    with pytest.raises(InputError, match="is empty: need west < east"):
        eoai.load(catalog, ["red"], bbox=(16.1, 46, 16, 46.1))
    with pytest.raises(InputError, match="not in longitude/latitude degrees"):
        eoai.load(catalog, ["red"], bbox=(577000, 5095000, 585000, 5106000))
    with pytest.raises(InputError, match="min_valid_fraction must be in"):
        _load(catalog, min_valid_fraction=1.5)
    with pytest.raises(InputError, match="cannot read 'last week' as a date"):
        eoai.search(catalog, datetime="last week")
    with pytest.raises(InputError, match="min_valid_fraction needs a mask band"):
        _load(catalog, mask=None, min_valid_fraction=0.5)
