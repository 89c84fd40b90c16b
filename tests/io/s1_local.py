"""A local STAC of the real Sentinel-1 GeoTIFFs in ``shared/data/sentinel1`` (helpers for tests).

:func:`s1_items` builds pystac items (``proj:*`` from the files, ``sar:*`` / ``sat:*`` from the
products' own metadata: SSL4EO ``metadata.json`` and the product names) whose assets ``vv`` / ``vh``
point at the local files, as a real catalog of these products would.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pystac
import rasterio
from rasterio.warp import transform_bounds

RICO = Path("sentinel1/rico-hdl/integration_tests/tiffs")
SSL4EO = RICO / "SSL4EO-S12/s1/0000200"
BEN = RICO / "BigEarthNet/BigEarthNet-S1/S1A_IW_GRDH_1SDV_20170613T165043"
PYROSAR = Path(
    "sentinel1/pyrosar/tests/data/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
)


def _asset(path: Path, unit: str | None, nodata: float | None) -> pystac.Asset:
    with rasterio.open(path) as src:
        band = {"data_type": str(src.dtypes[0])}
        if nodata is not None:
            band["nodata"] = nodata
        if unit is not None:
            band["unit"] = unit
        return pystac.Asset(
            str(path.resolve()),
            media_type="image/tiff; application=geotiff",
            roles=["data"],
            extra_fields={
                "proj:epsg": src.crs.to_epsg(),
                "proj:shape": [src.height, src.width],
                "proj:transform": list(src.transform)[:6],
                "raster:bands": [band],
            },
        )


def _item(item_id, when, files, props, collection, unit, nodata=None) -> pystac.Item:
    first = next(iter(files.values()))
    with rasterio.open(first) as src:
        bbox = list(transform_bounds(src.crs, "EPSG:4326", *src.bounds))
    w, s, e, n = bbox
    geom = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    base = {
        "platform": "sentinel-1a",
        "constellation": "sentinel-1",
        "sar:instrument_mode": "IW",
        "sar:product_type": "GRD",
        "sar:frequency_band": "C",
        "sar:looks_equivalent_number": 4.4,
    }
    item = pystac.Item(
        item_id, geom, bbox, when, {**base, **props}, collection=collection,
        stac_extensions=[
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
        ],
    )  # fmt: skip
    for key, path in files.items():
        item.add_asset(key, _asset(path, unit, nodata))
    return item


def ssl4eo_items(shared: Path, unit: str | None = None) -> list[pystac.Item]:
    """The two SSL4EO-S12 dates of patch 0000200 (VV + VH, EPSG:4326), from their metadata.json."""
    items = []
    for folder in sorted((shared / SSL4EO).iterdir()):
        meta = json.loads((folder / "metadata.json").read_text())
        when = dt.datetime.fromtimestamp(meta["system:time_start"] / 1000, dt.timezone.utc)
        props = {
            "sat:orbit_state": meta["orbitProperties_pass"].lower(),
            "sat:relative_orbit": int(meta["relativeOrbitNumber_start"]),
            "sat:absolute_orbit": int(meta["orbitNumber_start"]),
            "sar:polarizations": [p for p in meta["transmitterReceiverPolarisation"]],
        }
        files = {"vv": folder / "VV.tif", "vh": folder / "VH.tif"}
        items.append(_item(folder.name, when, files, props, "ssl4eo-s12-s1", unit))
    return items


def bigearthnet_items(shared: Path, unit: str | None = None) -> list[pystac.Item]:
    """Three BigEarthNet-S1 patches of 2017-06-13 (VV + VH, EPSG:32633, 120 x 120 px)."""
    items = []
    when = dt.datetime(2017, 6, 13, 16, 50, 43, tzinfo=dt.timezone.utc)
    for folder in sorted((shared / BEN).iterdir()):
        files = {p: folder / f"{folder.name}_{p.upper()}.tif" for p in ("vv", "vh")}
        props = {"sat:orbit_state": "ascending", "sar:polarizations": ["VV", "VH"]}
        items.append(_item(folder.name, when, files, props, "bigearthnet-s1", unit))
    return items


def pyrosar_item(shared: Path, unit: str | None = "dB") -> pystac.Item:
    """The pyroSAR VV scene (GAMMA, dB, EPSG:32631, nodata -99)."""
    when = dt.datetime(2015, 3, 9, 17, 30, 17, tzinfo=dt.timezone.utc)
    props = {"sat:orbit_state": "ascending", "sar:polarizations": ["VV"]}
    return _item("S1A__IW___A_20150309T173017", when, {"vv": shared / PYROSAR}, props,
                 "pyrosar-gamma", unit, nodata=-99.0)  # fmt: skip
