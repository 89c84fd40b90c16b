"""Mosaics: one grid across MGRS tiles (real data) and across a UTM zone boundary (synthetic COGs).

Real data: the bbox (16.0, 45.9, 16.1, 46.1) covers rows only tile 33TWL has (south of 45.957),
rows both tiles have, and rows only 33TWM has (north of 46.054). Synthetic: two COGs, one in
UTM 32N west of 12 deg E and one in UTM 33N east of it, overlapping by about 1.5 km.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from pyproj import Transformer

import eoai
from eoai.errors import CRSError
from eoai.timeseries.gapfill import gapfill

BBOX = (16.0, 45.9, 16.1, 46.1)
DAY = "2023-08-15"
TILES = {"33TWL": "S2A_33TWL_20230815_0_L2A", "33TWM": "S2A_33TWM_20230815_0_L2A"}


@pytest.fixture(scope="module")
def catalog(shared_data):
    return shared_data / "earthsearch_l2a" / "catalog.json"


def test_two_mgrs_tiles_one_continuous_grid(catalog):
    mosaic = eoai.load(catalog, ["red", "nir"], bbox=BBOX, datetime=DAY, resolution=120, mask=None)
    assert mosaic.sizes["time"] == 1 and mosaic.attrs["eoai:n_items"] == 2
    grid = mosaic.odc.geobox
    tiles = {
        name: eoai.load(catalog, ["red", "nir"], ids=[item], geobox=grid, mask=None).compute()
        for name, item in TILES.items()
    }
    mosaic = mosaic.compute()
    assert mosaic.odc.geobox == grid and grid.crs.epsg == 32633
    for band in ("red", "nir"):
        m = mosaic[band].values
        low, high = (tiles[t][band].values for t in ("33TWL", "33TWM"))
        ok_l, ok_h = np.isfinite(low), np.isfinite(high)
        # the bbox holds pixels of each tile alone and of both
        assert (ok_l & ~ok_h).sum() > 1000 and (ok_h & ~ok_l).sum() > 1000
        assert (ok_l & ok_h).sum() > 1000
        # no seam: wherever a tile has data the mosaic has data, and nowhere else
        np.testing.assert_array_equal(np.isfinite(m), ok_l | ok_h)
        # every mosaic pixel is the pixel of one of the tiles
        only_l, only_h = ok_l & ~ok_h, ok_h & ~ok_l
        np.testing.assert_array_equal(m[only_l], low[only_l])
        np.testing.assert_array_equal(m[only_h], high[only_h])
        both = ok_l & ok_h
        assert ((m[both] == low[both]) | (m[both] == high[both])).all()
    # every row of the grid has data: no NaN line between the tiles
    assert np.isfinite(mosaic.red.values[0]).any(axis=1).all()


def test_two_mgrs_tiles_index_and_gapfill_stay_continuous(catalog):
    cube = eoai.load(catalog, ["red", "nir"], bbox=BBOX, resolution=120)  # 5 dates, SCL-masked
    ndvi = eoai.indices.index(cube, "ndvi")
    filled = gapfill(ndvi, "linear").compute()
    seen = ndvi.notnull().any("time").compute().values
    assert seen.mean() > 0.99
    # a pixel seen once on either tile is filled on every date; no NaN row at the tiles' edges
    assert np.isfinite(filled.values[:, seen]).all()
    assert np.isfinite(filled.values).any(axis=2).all()


# -- across a UTM zone boundary ---------------------------------------------------------------

ZONES = {  # item id: (EPSG, lon range, value offset)
    "west-32N": (32632, (11.85, 12.01), 1000),
    "east-33N": (32633, (11.99, 12.15), 5000),
}
LAT = (45.95, 46.05)
RES = 30.0
BLOCK = 10  # source pixels per block of one value (so nearest resampling keeps block values)


def _write_cog(path, epsg, lon, offset):
    """A COG whose 10 x 10 pixel blocks hold offset + block number; returns its grid."""
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    xs, ys = to_utm.transform([lon[0], lon[1], lon[0], lon[1]], [LAT[0], LAT[0], LAT[1], LAT[1]])
    x0, y1 = np.floor(min(xs) / 300) * 300, np.ceil(max(ys) / 300) * 300
    w, h = int(np.ceil((max(xs) - x0) / 300)) * BLOCK, int(np.ceil((y1 - min(ys)) / 300)) * BLOCK
    transform = Affine(RES, 0, x0, 0, -RES, y1)
    rows, cols = np.mgrid[0:h, 0:w] // BLOCK
    data = (offset + rows * 100 + cols).astype("uint16")
    profile = dict(driver="GTiff", width=w, height=h, count=1, dtype="uint16",
                   crs=f"EPSG:{epsg}", transform=transform, nodata=0)  # fmt: skip
    with rasterio.MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(data, 1)
        with mem.open() as tmp:
            rasterio.shutil.copy(tmp, path, driver="COG")
    return transform, (h, w), data


def _item(tmp_path, name, epsg, lon, offset):
    import pystac
    from pystac.extensions.projection import ProjectionExtension
    from shapely.geometry import box, mapping

    href = tmp_path / f"{name}.tif"
    transform, shape, data = _write_cog(href, epsg, lon, offset)
    item = pystac.Item(
        name, mapping(box(lon[0], LAT[0], lon[1], LAT[1])), [lon[0], LAT[0], lon[1], LAT[1]],
        dt.datetime(2023, 8, 15, 10, tzinfo=dt.timezone.utc), {}, collection="zones",
    )  # fmt: skip
    item.add_asset(
        "red",
        pystac.Asset(str(href), media_type=pystac.MediaType.COG, roles=["data"],
                     extra_fields={"raster:bands": [{"nodata": 0, "data_type": "uint16"}]}),
    )  # fmt: skip
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.epsg, proj.shape, proj.transform = epsg, list(shape), list(transform)[:6]
    return item, (epsg, transform, data)


@pytest.fixture
def zone_items(tmp_path):
    made = {name: _item(tmp_path, name, *spec) for name, spec in ZONES.items()}
    return [it for it, _ in made.values()], {name: src for name, (_, src) in made.items()}


def _source_value(src, lon, lat):
    epsg, transform, data = src
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    col, row = ~transform * (x, y)
    return int(data[int(row), int(col)])


def _cube_value(cube, lon, lat):
    x, y = Transformer.from_crs(4326, cube.odc.crs.epsg, always_xy=True).transform(lon, lat)
    return cube.red.isel(time=0).sel(x=x, y=y, method="nearest").item()


#: points near block centres, west and east of 12 deg E, and in the overlap
def _points(src):
    epsg, transform, data = src
    to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
    h, w = data.shape
    for r in range(BLOCK // 2, h, 7 * BLOCK):
        for c in range(BLOCK // 2, w, 7 * BLOCK):
            yield to_ll.transform(*(transform * (c + 0.5, r + 0.5)))


@pytest.mark.parametrize("crs", [None, "EPSG:32632", "EPSG:3035"])
def test_utm_zone_boundary_one_grid(zone_items, crs):
    items, sources = zone_items
    bbox = (11.9, LAT[0] + 0.005, 12.1, LAT[1] - 0.005)
    cube = eoai.load(items, ["red"], bbox=bbox, crs=crs, resolution=RES, mask=None).compute()
    # default: the UTM zone of the bbox centre (12.0 E -> zone 33), whatever the items' order
    expected = {None: 32633, "EPSG:32632": 32632, "EPSG:3035": 3035}[crs]
    assert cube.odc.crs.epsg == expected and cube.sizes["time"] == 1
    if crs is None:
        again = eoai.load(items[::-1], ["red"], bbox=bbox, resolution=RES, mask=None)
        assert again.odc.geobox == cube.odc.geobox
    # no gap at the boundary: the whole bbox lies inside the union of the two rasters
    assert np.isfinite(cube.red.values).all()
    # known points: the value of the block they fall in, from the raster that covers them
    n = dict.fromkeys(sources, 0)
    for name, src in sources.items():
        other = sources[next(k for k in sources if k != name)]
        for lon, lat in _points(src):
            if not (bbox[0] + 0.002 < lon < bbox[2] - 0.002 and bbox[1] < lat < bbox[3]):
                continue
            got = _cube_value(cube, lon, lat)
            here = _source_value(src, lon, lat)
            inside_other = ZONES[next(k for k in sources if k != name)][1]
            if inside_other[0] + 0.002 < lon < inside_other[1] - 0.002:  # overlap: either
                assert got in (here, _source_value(other, lon, lat)), (name, lon, lat)
            else:
                assert got == here, (name, lon, lat, got, here)
                n[name] += 1
    assert min(n.values()) > 10, n


def test_mixed_crs_that_are_not_all_utm_need_crs(zone_items, tmp_path):
    items, _ = zone_items
    laea, _ = _item(tmp_path, "laea", 3035, (12.0, 12.1), 9000)
    with pytest.raises(CRSError) as err:
        eoai.load([items[0], laea], ["red"], resolution=RES, mask=None)
    msg = str(err.value)
    assert "the items are in 2 different CRSs" in msg and "EPSG:3035 (1 item)" in msg
    assert "pass crs= (e.g. crs=" in msg and "or geobox=" in msg
    cube = eoai.load([items[0], laea], ["red"], resolution=RES, mask=None, crs="EPSG:3035")
    assert cube.odc.crs.epsg == 3035 and np.isfinite(cube.red.values).any()


def test_items_with_different_scaling_share_one_grid_over_all_of_them(zone_items):
    # items with different scale factors load as separate groups: all onto one grid covering
    # every item (before: the grid of the first group, which cut the others off)
    items, sources = zone_items
    items[1].assets["red"].extra_fields["raster:bands"][0]["scale"] = 0.5
    cube = eoai.load(items, ["red"], crs="EPSG:32633", resolution=RES, mask=None).compute()
    west, south, east, north = cube.odc.geobox.extent.to_crs("EPSG:4326").boundingbox
    assert west < ZONES["west-32N"][1][0] + 0.01 and east > ZONES["east-33N"][1][1] - 0.01
    lon, lat = 12.1, 46.0  # inside the second item only: its value, scaled
    assert _cube_value(cube, lon, lat) == 0.5 * _source_value(sources["east-33N"], lon, lat)
    lon = 11.9  # inside the first only, unscaled
    assert _cube_value(cube, lon, lat) == _source_value(sources["west-32N"], lon, lat)
