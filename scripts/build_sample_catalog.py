"""Build the embedded sample STAC catalog (``eoai/datasets/sample/``) from the eo-learn TestEOPatch.

Source: ``../shared/data/eolearn_slovenia`` (sentinel-hub/eo-learn ``example_data/TestEOPatch``, MIT
licence, Copyright (c) Sinergise); contains modified Copernicus Sentinel data 2015-2017. Central
Slovenia, 101 x 100 pixels (~10 m), EPSG:32633.

Output (static, self-contained STAC 1.1 catalog with relative hrefs; COGs are deflate-compressed):

- ``catalog.json``
- ``slovenia-ndvi/collection.json`` + 68 items: ``ndvi`` (float32, NaN where IS_DATA is false) and
  ``clm`` (uint8, 1 cloud, 0 clear, 255 no data), ``eo:cloud_cover`` = % of cloudy data pixels;
- ``slovenia-l1c/collection.json`` + 5 items: the 13 L1C bands as uint16 DN (``round(reflectance *
  1e4)``; asset keys = common names; ``eo:bands`` and ``raster:bands`` scale 1e-4, offset 0, nodata 0)
  and ``clm``;
- ``lulc_polygons.geojson``: the land-cover polygons clipped to the patch, columns ``class``,
  ``class_id``, ``area_m2`` (polygons of class 0 "no data" are left out; the script prints how many).

Run from the project root::

    .venv/bin/python scripts/build_sample_catalog.py [--source DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import rasterio
import xarray as xr
from affine import Affine
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping, shape

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "eolearn_slovenia"
OUT = ROOT / "eoai" / "datasets" / "sample"
EPSG = 32633

# netcdf variable -> (asset key = common name, centre wavelength um, FWHM um, GSD m)
L1C_BANDS: dict[str, tuple[str, float, float, int]] = {
    "B01": ("coastal", 0.443, 0.027, 60),
    "B02": ("blue", 0.490, 0.098, 10),
    "B03": ("green", 0.560, 0.045, 10),
    "B04": ("red", 0.665, 0.038, 10),
    "B05": ("rededge1", 0.704, 0.019, 20),
    "B06": ("rededge2", 0.740, 0.018, 20),
    "B07": ("rededge3", 0.783, 0.028, 20),
    "B08": ("nir", 0.842, 0.145, 10),
    "B8A": ("nir08", 0.865, 0.033, 20),
    "B09": ("nir09", 0.945, 0.026, 60),
    "B10": ("cirrus", 1.375, 0.075, 60),
    "B11": ("swir16", 1.610, 0.143, 20),
    "B12": ("swir22", 2.190, 0.242, 20),
}
LULC_NAMES = {
    1: "cultivated_land",
    2: "forest",
    3: "grassland",
    4: "shrubland",
    8: "artificial_surface",
}
ATTRIBUTION = (
    "Source: sentinel-hub/eo-learn example_data/TestEOPatch (MIT licence, Copyright (c) Sinergise). "
    "Contains modified Copernicus Sentinel data 2015-2017."
)
LICENSE_URL = "https://github.com/sentinel-hub/eo-learn/blob/master/LICENSE"
COG_OPTIONS = {"compress": "DEFLATE", "predictor": "YES", "blocksize": 128, "level": 9}


def write_cog(path: Path, array: np.ndarray, transform: Affine, nodata: float | int) -> None:
    """Write one band as a deflate-compressed Cloud-Optimized GeoTIFF."""
    profile = {
        "driver": "COG",
        "width": array.shape[1],
        "height": array.shape[0],
        "count": 1,
        "dtype": array.dtype.name,
        "crs": f"EPSG:{EPSG}",
        "transform": transform,
        "nodata": nodata,
        **COG_OPTIONS,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


def item_for(
    item_id: str, when: np.datetime64, transform: Affine, shape_: tuple[int, int], collection: str
) -> pystac.Item:
    """An item with its footprint (lon/lat), datetime and projection."""
    h, w = shape_
    x0, y0 = transform.c, transform.f
    x1, y1 = x0 + w * transform.a, y0 + h * transform.e
    footprint = box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    geom = transform_geom(f"EPSG:{EPSG}", "EPSG:4326", mapping(footprint))
    when_dt = dt.datetime.fromisoformat(str(np.datetime_as_string(when, unit="s"))).replace(
        tzinfo=dt.timezone.utc
    )
    item = pystac.Item(
        id=item_id,
        geometry=geom,
        bbox=list(shape(geom).bounds),
        datetime=when_dt,
        properties={"constellation": "sentinel-2", "instruments": ["msi"], "gsd": 10},
        collection=collection,
    )
    ProjectionExtension.ext(item, add_if_missing=True).apply(
        epsg=EPSG,
        shape=[h, w],
        transform=list(transform)[:6],
        bbox=[footprint.bounds[0], footprint.bounds[1], footprint.bounds[2], footprint.bounds[3]],
    )
    return item


def add_clm(item: pystac.Item, href: str) -> None:
    asset = pystac.Asset(
        href=href,
        media_type=pystac.MediaType.COG,
        title="s2cloudless cloud mask (1 cloud, 0 clear, 255 no data)",
        roles=["cloud", "data-mask"],
    )
    item.add_asset("clm", asset)
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(nodata=255, data_type=DataType.UINT8, spatial_resolution=10)
    ]
    ClassificationExtension.ext(asset, add_if_missing=True).classes = [
        Classification.create(value=0, name="clear", description="no cloud"),
        Classification.create(value=1, name="cloud", description="s2cloudless cloud mask"),
    ]


def collection_for(cid: str, title: str, description: str, items: list[pystac.Item]):
    bboxes = np.array([i.bbox for i in items])
    spatial = pystac.SpatialExtent(
        [[*bboxes[:, :2].min(axis=0).tolist(), *bboxes[:, 2:].max(axis=0).tolist()]]
    )
    times = sorted(i.datetime for i in items)
    coll = pystac.Collection(
        id=cid,
        title=title,
        description=f"{description} {ATTRIBUTION}",
        extent=pystac.Extent(spatial, pystac.TemporalExtent([[times[0], times[-1]]])),
        license="other",
        providers=[
            pystac.Provider(
                "ESA",
                roles=[pystac.ProviderRole.PRODUCER, pystac.ProviderRole.LICENSOR],
                url="https://sentinels.copernicus.eu",
            ),  # fmt: skip
            pystac.Provider(
                "Sinergise / sentinel-hub eo-learn",
                roles=[pystac.ProviderRole.PROCESSOR],
                url="https://github.com/sentinel-hub/eo-learn",
            ),  # fmt: skip
            pystac.Provider("eoai", roles=[pystac.ProviderRole.PROCESSOR]),
        ],
    )
    coll.add_link(pystac.Link("license", LICENSE_URL, media_type="text/html", title="eo-learn MIT"))
    coll.add_items(items)
    return coll


def build(source: Path, out: Path) -> None:
    nc = source / "eolearn_testpatch.nc"
    ds = xr.open_dataset(nc)
    gt = [float(v) for v in ds.spatial_ref.attrs["GeoTransform"].split()]
    transform = Affine.from_gdal(*gt)
    h, w = ds.sizes["y"], ds.sizes["x"]
    # the coordinates are pixel centres of that transform
    assert np.allclose(ds.x.values, transform.c + (np.arange(w) + 0.5) * transform.a)
    assert np.allclose(ds.y.values, transform.f + (np.arange(h) + 0.5) * transform.e)
    assert ds.attrs.get("crs") == f"EPSG:{EPSG}"

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    catalog = pystac.Catalog(
        id="eoai-sample",
        title="eoai embedded sample: Sentinel-2 over central Slovenia",
        description=(
            "A 101 x 100 pixel (10 m) Sentinel-2 time series with clouds and a land-cover reference, "
            f"converted by eoai scripts/build_sample_catalog.py. {ATTRIBUTION}"
        ),
    )

    is_data = ds.IS_DATA.values.astype(bool)
    clm = ds.CLM.values
    ndvi = ds.NDVI.values.astype(np.float32)

    # --- slovenia-ndvi: 68 dates
    ndvi_items = []
    for i, when in enumerate(ds.time_all.values):
        stamp = np.datetime_as_string(when, unit="s").replace("-", "").replace(":", "")
        item = item_for(f"slovenia-ndvi-{stamp}", when, transform, (h, w), "slovenia-ndvi")
        data = is_data[i]
        cover = 100.0 * float(clm[i][data].mean()) if data.any() else 100.0
        EOExtension.ext(item, add_if_missing=True).cloud_cover = round(cover, 2)
        asset = pystac.Asset(href="ndvi.tif", media_type=pystac.MediaType.COG,
                             title="NDVI from L1C B08/B04 (NaN = no data)", roles=["data"])  # fmt: skip
        item.add_asset("ndvi", asset)
        RasterExtension.ext(asset, add_if_missing=True)
        # JSON has no NaN: the raster extension spells it "nan"
        asset.extra_fields["raster:bands"] = [
            {"nodata": "nan", "data_type": "float32", "spatial_resolution": 10, "unit": "1"}
        ]
        EOExtension.ext(asset, add_if_missing=True).bands = [
            Band.create(name="NDVI", description="(B08 - B04) / (B08 + B04), top of atmosphere")
        ]
        add_clm(item, "clm.tif")
        ndvi_items.append(
            (
                item,
                {
                    "ndvi.tif": (np.where(data, ndvi[i], np.nan).astype(np.float32), float("nan")),
                    "clm.tif": (np.where(data, clm[i], 255).astype(np.uint8), 255),
                },
            )  # fmt: skip
        )

    # --- slovenia-l1c: 5 dates with the 13 bands
    l1c_items = []
    for i, when in enumerate(ds.time.values):
        j = int(np.flatnonzero(ds.time_all.values == when)[0])
        stamp = np.datetime_as_string(when, unit="s").replace("-", "").replace(":", "")
        item = item_for(f"slovenia-l1c-{stamp}", when, transform, (h, w), "slovenia-l1c")
        data = is_data[j]
        cover = 100.0 * float(clm[j][data].mean()) if data.any() else 100.0
        EOExtension.ext(item, add_if_missing=True).cloud_cover = round(cover, 2)
        files = {}
        for var, (key, centre, fwhm, gsd) in L1C_BANDS.items():
            refl = ds[var].values[i]
            dn = np.round(refl * 1e4)
            ok = data & np.isfinite(dn)
            if (dn[ok] <= 0).any() or (dn[ok] > 65535).any():
                raise ValueError(
                    f"{var} on {when}: DN outside 1..65535 would collide with nodata 0"
                )
            dn = np.where(ok, dn, 0).astype(np.uint16)
            asset = pystac.Asset(href=f"{key}.tif", media_type=pystac.MediaType.COG,
                                 title=f"{var} ({key}) TOA reflectance, DN x 1e-4", roles=["data"])  # fmt: skip
            item.add_asset(key, asset)
            EOExtension.ext(asset, add_if_missing=True).bands = [
                Band.create(
                    name=var, common_name=key, center_wavelength=centre, full_width_half_max=fwhm
                )  # fmt: skip
            ]
            RasterExtension.ext(asset, add_if_missing=True).bands = [
                RasterBand.create(
                    nodata=0,
                    data_type=DataType.UINT16,
                    scale=0.0001,
                    offset=0,
                    spatial_resolution=gsd,
                )  # fmt: skip
            ]
            files[f"{key}.tif"] = (dn, 0)
        add_clm(item, "clm.tif")
        files["clm.tif"] = (np.where(data, clm[j], 255).astype(np.uint8), 255)
        l1c_items.append((item, files))

    colls = [
        collection_for(
            "slovenia-ndvi", "Sentinel-2 L1C NDVI and cloud mask, Slovenia (68 dates)",
            "NDVI (float32) and s2cloudless cloud mask of 68 Sentinel-2 L1C acquisitions "
            "2015-07-11 to 2017-12-22 over a 1 km2 patch in central Slovenia (EPSG:32633).",
            [it for it, _ in ndvi_items],
        ),
        collection_for(
            "slovenia-l1c", "Sentinel-2 L1C 13 bands, Slovenia (5 dates)",
            "The 13 Sentinel-2 L1C bands (uint16 DN, reflectance = DN x 1e-4; 20 m and 60 m bands "
            "resampled to 10 m by the provider) and the cloud mask on 5 dates in summer 2015.",
            [it for it, _ in l1c_items],
        ),
    ]  # fmt: skip
    for coll in colls:
        catalog.add_child(coll)
    catalog.normalize_hrefs(str(out))
    # write the rasters next to their item json, then keep all hrefs relative
    for item, files in ndvi_items + l1c_items:
        folder = Path(item.get_self_href()).parent
        folder.mkdir(parents=True, exist_ok=True)
        for name, (array, nodata) in files.items():
            write_cog(folder / name, array, transform, nodata)
        for asset in item.assets.values():
            asset.href = str(folder / Path(asset.href).name)
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)

    # --- land-cover polygons, clipped to the patch
    polys = gpd.read_file(source / "LULC_polygons.gpkg")
    assert polys.crs.to_epsg() == EPSG
    patch = box(
        transform.c, transform.f + h * transform.e, transform.c + w * transform.a, transform.f
    )
    n_nodata = int((polys["LULC_ID"] == 0).sum())
    polys = polys[polys["LULC_ID"] != 0].copy()
    polys["geometry"] = polys.geometry.intersection(patch)
    polys = polys[~polys.geometry.is_empty & (polys.geometry.area > 0)]
    labels = gpd.GeoDataFrame(
        {
            "class": polys["LULC_ID"].map(LULC_NAMES).astype(str).to_numpy(),
            "class_id": polys["LULC_ID"].astype("int32").to_numpy(),
            "area_m2": polys.geometry.area.round(1).to_numpy(),
        },
        geometry=polys.geometry.to_numpy(),
        crs=polys.crs,
    )
    labels.to_file(out / "lulc_polygons.geojson", driver="GeoJSON", COORDINATE_PRECISION=2)
    (out / "README.md").write_text(
        "# eoai embedded sample\n\nBuilt by `scripts/build_sample_catalog.py` from eo-learn "
        "TestEOPatch.\n\n" + ATTRIBUTION + "\n\nSee the NOTICE file at the project root.\n"
    )
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(
        json.dumps(
            {
                "out": str(out),
                "ndvi_items": len(ndvi_items),
                "l1c_items": len(l1c_items),
                "polygons": len(labels),
                "polygons_left_out_no_data_class": n_nodata,
                "total_MB": round(size / 1e6, 2),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    build(args.source, args.out)


if __name__ == "__main__":
    main()
