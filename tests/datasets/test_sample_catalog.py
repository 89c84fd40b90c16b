"""eoai.datasets.sample: the embedded STAC catalog equals the eo-learn NetCDF it was built from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from eoai.datasets import sample_catalog, sample_labels, sample_path
from eoai.errors import InputError

pystac = pytest.importorskip("pystac")
rasterio = pytest.importorskip("rasterio")

COMMON = ["coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
          "nir09", "cirrus", "swir16", "swir22"]  # fmt: skip
NC_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
            "B12"]  # fmt: skip


@pytest.fixture(scope="module")
def nc(shared_data):
    path = shared_data / "eolearn_slovenia" / "eolearn_testpatch.nc"
    with xr.open_dataset(path) as ds:
        yield ds.load()


@pytest.fixture(scope="module")
def catalog():
    return pystac.Catalog.from_file(str(sample_catalog()))


def _items(catalog, cid):
    return sorted(catalog.get_child(cid).get_items(), key=lambda i: (i.datetime, i.id))


def _read(item, key):
    """Pixels and metadata of one asset (read while the file is open)."""
    with rasterio.open(item.assets[key].get_absolute_href()) as src:
        meta = {
            "epsg": src.crs.to_epsg(),
            "gdal": src.transform.to_gdal(),
            "dtype": src.dtypes[0],
            "nodata": src.nodata,
            "layout": src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT"),
            "compression": src.compression.name.lower() if src.compression else None,
        }
        return src.read(1), meta


def test_structure_and_relative_hrefs(catalog):
    root = sample_catalog().parent
    assert sample_catalog().name == "catalog.json" and sample_catalog().is_file()
    assert sorted(c.id for c in catalog.get_children()) == ["slovenia-l1c", "slovenia-ndvi"]
    assert len(_items(catalog, "slovenia-ndvi")) == 68
    assert len(_items(catalog, "slovenia-l1c")) == 5
    for path in root.rglob("*.json"):
        doc = json.loads(path.read_text())
        hrefs = [link["href"] for link in doc.get("links", []) if link["rel"] != "license"]
        hrefs += [a["href"] for a in doc.get("assets", {}).values()]
        for href in hrefs:
            assert href.startswith(("./", "../")), f"{path}: non-relative href {href}"
            assert (path.parent / href).resolve().is_file(), f"{path}: {href} missing"
        assert not any(link["rel"] == "self" for link in doc.get("links", []))
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size < 6e6, f"embedded sample is {size / 1e6:.1f} MB"


def test_every_object_validates_against_the_core_schemas(catalog):
    # core STAC schemas ship with pystac (offline); extension schemas would need a download, so the
    # extension fields are checked structurally in the tests below
    from pystac.validation import validate_dict

    n = 0
    for obj in [catalog, *catalog.get_children(), *catalog.get_items(recursive=True)]:
        uri = validate_dict(obj.to_dict(), extensions=[])
        assert uri and "schemas.stacspec.org/v1.1.0" in uri[0]
        n += 1
    assert n == 1 + 2 + 73
    bad = _items(catalog, "slovenia-ndvi")[0].to_dict()
    del bad["properties"]["datetime"]
    with pytest.raises(pystac.STACValidationError):
        validate_dict(bad, extensions=[])


def test_item_metadata_matches_the_netcdf(catalog, nc):
    gt = [float(v) for v in nc.spatial_ref.attrs["GeoTransform"].split()]
    transform = [gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]]
    ndvi_items = _items(catalog, "slovenia-ndvi")
    dates = np.array([np.datetime64(i.datetime.replace(tzinfo=None), "ns") for i in ndvi_items])
    np.testing.assert_array_equal(dates, nc.time_all.values)
    cloud = 100 * nc.CLM.where(nc.IS_DATA == 1).mean(("y", "x")).values
    for i, item in enumerate(ndvi_items):
        props = item.properties
        assert props["proj:code"] == "EPSG:32633"
        assert props["proj:shape"] == [101, 100]
        np.testing.assert_allclose(props["proj:transform"], transform, rtol=0, atol=1e-9)
        assert props["eo:cloud_cover"] == pytest.approx(cloud[i], abs=0.01)
        assert set(item.assets) == {"ndvi", "clm"}
        assert item.assets["ndvi"].extra_fields["raster:bands"][0]["nodata"] == "nan"
        assert item.assets["clm"].extra_fields["raster:bands"][0]["nodata"] == 255
        lon, lat = np.mean(item.bbox[::2]), np.mean(item.bbox[1::2])
        assert 14.5 < lon < 14.6 and 45.8 < lat < 45.9  # central Slovenia
    l1c = _items(catalog, "slovenia-l1c")
    np.testing.assert_array_equal(
        [np.datetime64(i.datetime.replace(tzinfo=None), "ns") for i in l1c], nc.time.values
    )
    for item in l1c:
        assert set(item.assets) == {*COMMON, "clm"}
        for key, name in zip(COMMON, NC_BANDS, strict=True):
            asset = item.assets[key]
            (eo,) = asset.extra_fields["eo:bands"]
            assert eo["common_name"] == key and eo["name"] == name
            (rb,) = asset.extra_fields["raster:bands"]
            assert rb["scale"] == 0.0001 and rb["offset"] == 0 and rb["nodata"] == 0
            assert rb["data_type"] == "uint16"


def test_ndvi_and_clm_cogs_equal_the_netcdf_pixel_for_pixel(catalog, nc):
    gt = [float(v) for v in nc.spatial_ref.attrs["GeoTransform"].split()]
    for i, item in enumerate(_items(catalog, "slovenia-ndvi")):
        ndvi, src = _read(item, "ndvi")
        assert src["epsg"] == 32633
        assert src["gdal"] == pytest.approx(tuple(gt), abs=1e-9)
        assert src["dtype"] == "float32" and np.isnan(src["nodata"])
        assert src["layout"] == "COG" and src["compression"] == "deflate"
        expected = np.where(nc.IS_DATA.values[i] == 1, nc.NDVI.values[i], np.nan)
        np.testing.assert_array_equal(ndvi, expected)
        clm, src = _read(item, "clm")
        assert src["dtype"] == "uint8" and src["nodata"] == 255
        np.testing.assert_array_equal(
            clm, np.where(nc.IS_DATA.values[i] == 1, nc.CLM.values[i], 255)
        )


def test_l1c_cogs_are_the_dn_of_the_netcdf_reflectance(catalog, nc):
    for i, item in enumerate(_items(catalog, "slovenia-l1c")):
        for key, name in zip(COMMON, NC_BANDS, strict=True):
            dn, src = _read(item, key)
            assert src["dtype"] == "uint16" and src["nodata"] == 0 and src["layout"] == "COG"
            refl = nc[name].values[i]
            np.testing.assert_array_equal(dn, np.round(refl * 1e4).astype(np.uint16))
            np.testing.assert_allclose(dn * 1e-4, refl, atol=6e-8 + 1e-6)
        clm, _ = _read(item, "clm")
        j = int(np.flatnonzero(nc.time_all.values == nc.time.values[i])[0])
        np.testing.assert_array_equal(clm, nc.CLM.values[j])


def test_labels_are_the_land_cover_reference(nc):
    labels = sample_labels()
    assert labels.crs.to_epsg() == 32633
    assert {"class", "class_id", "geometry"} <= set(labels.columns)
    names = dict(zip(labels.class_id, labels["class"], strict=True))
    assert names == {1: "cultivated_land", 2: "forest", 3: "grassland", 4: "shrubland",
                     8: "artificial_surface"}  # fmt: skip
    x0, y0, x1, y1 = labels.total_bounds
    assert x0 >= 465181.05 - 0.01 and x1 <= 466180.54 and y0 >= 5079244.88 and y1 <= 5080254.64
    # pixel centres inside a polygon carry that polygon's class in the NetCDF LULC raster
    import geopandas as gpd

    xx, yy = np.meshgrid(nc.x.values, nc.y.values)
    pts = gpd.GeoDataFrame(
        {"lulc": nc.LULC.values.ravel()}, geometry=gpd.points_from_xy(xx.ravel(), yy.ravel()),
        crs=32633,
    )  # fmt: skip
    joined = gpd.sjoin(pts, labels, predicate="within")
    assert len(joined) > 0.9 * len(pts)
    agree = float((joined["lulc"] == joined["class_id"]).mean())
    assert agree > 0.95, agree


def test_sample_path_errors_name_the_content():
    assert sample_path("slovenia-ndvi", "collection.json").is_file()
    with pytest.raises(InputError, match="not in the embedded sample.*catalog.json"):
        sample_path("nope.json")


def test_loads_through_eoai_load(nc):
    import eoai

    cube = eoai.load(sample_catalog(), collections=["slovenia-ndvi"], bands=["ndvi"], mask=None,
                     groupby="id")  # fmt: skip
    assert cube.odc.crs.epsg == 32633
    assert dict(cube.sizes) == {"time": 68, "y": 101, "x": 100}
    cube = cube.sortby("time")
    np.testing.assert_array_equal(cube.time.values.astype("datetime64[ns]"), nc.time_all.values)
    np.testing.assert_allclose(cube.x, nc.x, atol=1e-6)
    np.testing.assert_allclose(cube.y, nc.y, atol=1e-6)
    np.testing.assert_array_equal(cube.ndvi.values, nc.NDVI.values)
    # default groupby="solar_day": the two acquisitions of 2015-12-08 become one time step
    daily = eoai.load(sample_catalog(), collections=["slovenia-ndvi"], bands=["ndvi"], mask=None)
    assert daily.sizes["time"] == 67
    days = nc.time_all.dt.floor("D").values
    single = np.array([(days == d).sum() == 1 for d in days])
    keep = np.isin(daily.time.dt.floor("D").values, days[single])
    np.testing.assert_array_equal(daily.ndvi.values[keep], nc.NDVI.values[single])


def test_l1c_loads_as_reflectance_through_eoai_load(nc):
    import eoai

    cube = eoai.load(sample_catalog(), collections=["slovenia-l1c"], bands=["red", "nir"],
                     mask=None)  # fmt: skip
    assert cube.red.dtype == np.float32
    np.testing.assert_allclose(cube.red.values, nc.B04.values, atol=1e-6)
    np.testing.assert_allclose(cube.nir.values, nc.B08.values, atol=1e-6)


def test_sample_folder_is_packaged():
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert "datasets/sample/**/*" in pyproject.read_text()
