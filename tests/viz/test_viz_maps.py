"""explore(): overlays in Web Mercator at the right place, class colours, slider, split, click panel."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from viz_grids import utm_grid, utm_series

from eoai.errors import CRSError, InputError, MissingDimensionError
from eoai.viz.maps import explore


def decode(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_overlay_bounds_match_data_extent_and_no_basemap(sample_ndvi):
    m = sample_ndvi.eoai.explore(time="2016-07-20")
    overlay = m.eoai_layers["ndvi"]
    bb = sample_ndvi.odc.geobox.extent.to_crs("epsg:4326").boundingbox
    (south, west), (north, east) = overlay.bounds
    # the Web-Mercator grid covers the UTM footprint to within a pixel (~10 m ~ 1.3e-4 deg)
    assert south == pytest.approx(bb.bottom, abs=2e-4) and north == pytest.approx(bb.top, abs=2e-4)
    assert west == pytest.approx(bb.left, abs=2e-4) and east == pytest.approx(bb.right, abs=2e-4)
    # basemap=None: no tile layer at all, so nothing is requested from the network
    import ipyleaflet

    assert not any(isinstance(layer, ipyleaflet.TileLayer) for layer in m.layers)
    assert m.center[0] == pytest.approx((south + north) / 2)


def test_nan_pixels_are_transparent_and_date_is_nearest(sample_ndvi):
    m = explore(sample_ndvi, time="2016-07-20")
    shown = m.eoai_slider.label
    assert (
        shown
        == str(sample_ndvi.time.sel(time=np.datetime64("2016-07-20"), method="nearest").values)[:10]
    )
    img = decode(m.eoai_layers["ndvi"].url)
    frame = sample_ndvi.sel(time=np.datetime64(shown), method="nearest").values
    # same share of transparent pixels as of NaN pixels (nearest-neighbour-ish resampling)
    assert (img[..., 3] == 0).mean() == pytest.approx(np.isnan(frame).mean(), abs=0.08)


def test_slider_changes_the_image_and_basemap_true_adds_tiles():
    series = utm_series(4)
    m = explore(series, basemap=True)
    import ipyleaflet

    assert sum(isinstance(layer, ipyleaflet.TileLayer) for layer in m.layers) == 1
    first = m.eoai_layers["ndvi"].url
    m.eoai_slider.value = 3
    assert m.eoai_layers["ndvi"].url != first
    # one stretch for all dates (0..3): date 3 is the top of the colour map everywhere
    img = decode(m.eoai_layers["ndvi"].url)
    import matplotlib

    top = np.array(matplotlib.colormaps["RdYlGn"](1.0, bytes=True)[:3])
    assert np.all(img[img[..., 3] > 0][:, :3] == top)


def test_class_map_uses_class_colours_and_names():
    grid = utm_grid()
    classes = xr.zeros_like(grid, dtype="int16") + (np.arange(grid.sizes["x"]) // 20).astype(
        "int16"
    )
    classes = classes.rename("landcover")
    classes.attrs = {
        "flag_values": [0, 1, 2],
        "flag_meanings": "crop forest water",
        "flag_colors": "#ffff00 #006400 #0000ff",
    }
    m = explore(classes)
    colours = {tuple(c) for c in decode(m.eoai_layers["landcover"].url).reshape(-1, 4)}
    assert colours == {(255, 255, 0, 255), (0, 100, 0, 255), (0, 0, 255, 255)}
    import ipyleaflet

    legend = [c for c in m.controls if isinstance(c, ipyleaflet.LegendControl)][0]
    assert legend.legend == {"crop": "#ffff00", "forest": "#006400", "water": "#0000ff"}


def test_click_shows_the_pixel_series(sample_ndvi):
    m = explore(sample_ndvi)
    x, y = float(sample_ndvi.x[10]), float(sample_ndvi.y[20])
    from odc.geo import geom

    lon, lat = geom.point(x, y, "epsg:32633").to_crs("epsg:4326").coords[0]
    pixel = m.show_pixel(lat, lon)
    expected = sample_ndvi.isel(x=10, y=20).values
    np.testing.assert_array_equal(pixel.values, expected)
    assert m.show_pixel(0.0, 0.0) is None  # outside the data


def test_split_vectors_and_layers_control(sample_ndvi):
    import ipyleaflet

    import eoai

    labels = eoai.datasets.sample_labels()
    m = explore(sample_ndvi, split=("2015-08-01", "2017-08-01"), vectors={"land cover": labels})
    split = [c for c in m.controls if isinstance(c, ipyleaflet.SplitMapControl)][0]

    def nearest(d):
        return str(sample_ndvi.time.sel(time=np.datetime64(d), method="nearest").values)[:10]

    assert split.left_layer.name == f"before: {nearest('2015-08-01')} ndvi"
    assert split.right_layer.name == f"after: {nearest('2017-08-01')} ndvi"
    geo = [layer for layer in m.layers if isinstance(layer, ipyleaflet.GeoJSON)][0]
    assert len(geo.data["features"]) == len(labels)
    assert any(isinstance(c, ipyleaflet.LayersControl) for c in m.controls)


def test_images_are_bounded_in_size():
    big = utm_grid(ny=1500, nx=2100, res=10.0).chunk({"y": 500, "x": 700})
    m = explore(big, max_size=256)
    img = decode(m.eoai_layers["ndvi"].url)
    assert max(img.shape[:2]) <= 256


def test_rgb_composite_from_dataset(sample_l1c):
    m = explore(sample_l1c)
    assert list(m.eoai_layers) == ["rgb"]
    img = decode(m.eoai_layers["rgb"].url)
    assert img.shape[2] == 4 and img[..., :3].std() > 10


def test_errors():
    grid = utm_grid()
    with pytest.raises(CRSError, match="no CRS"):
        explore(
            xr.DataArray(
                grid.values, dims=("y", "x"), coords={"y": grid.y.values, "x": grid.x.values}
            )
        )
    with pytest.raises(MissingDimensionError, match="needs 'y' and 'x'"):
        explore(grid.rename(x="lon"))
    with pytest.raises(InputError, match="unknown layer 'nope'"):
        explore(grid.to_dataset(), variables=["nope"])
    with pytest.raises(InputError, match="unknown basemap"):
        explore(grid, basemap="No.SuchTiles")
    with pytest.raises(MissingDimensionError, match="no 'time' dim"):
        explore(grid, split=("2020-01-01", "2020-02-01"))


def test_a_fully_cloudy_date_says_why_the_map_is_empty(sample_ndvi):
    from eoai.errors import DataSkippedWarning

    with pytest.warns(DataSkippedWarning, match="'ndvi' has no valid pixel on 2016-07-25"):
        m = explore(sample_ndvi, time="2016-07-25")  # 100 % cloud in the real sample
    assert not decode(m.eoai_layers["ndvi"].url)[..., 3].any()


def test_embedding_shown_as_rgb_of_three_dimensions():
    grid = utm_grid()  # values increase along x
    # dim 0 increases along x, dim 1 decreases, dim 2 constant over y halves
    halves = xr.DataArray(
        np.repeat([0.0, 1.0], 20).astype("float32"), dims="y", coords={"y": grid.y}
    )
    emb = xr.concat([grid, 1 - grid, grid * 0 + halves], "embedding").rename("presto")
    emb = emb.assign_coords(embedding=["presto_000", "presto_001", "presto_002"])
    m = explore(emb, ["presto_001", "presto_000", "presto_002"])
    assert list(m.eoai_layers) == ["presto RGB (presto_001, presto_000, presto_002)"]
    img = decode(next(iter(m.eoai_layers.values())).url).astype(float)
    row = img[img.shape[0] // 2 + 5, :, :3]  # red = presto_001 falls along x, green rises
    assert row[3, 0] > row[-4, 0] + 150 and row[-4, 1] > row[3, 1] + 150
    assert img[2, :, 2].mean() != img[-3, :, 2].mean()  # blue = presto_002: two halves
    with pytest.raises(InputError, match="three of its dimensions"):
        explore(emb, ["presto_000"])
    with pytest.raises(InputError, match="unknown embedding dimension"):
        explore(emb, ["presto_000", "presto_001", "presto_009"])


def test_one_end_of_the_stretch_given_keeps_it_and_fills_the_other_from_the_data():
    # regression: vmin alone crashed the legend (vmax None), vmax alone was replaced by the
    # image's 98th percentile
    import ipyleaflet
    import matplotlib

    grid = utm_grid()  # 0..1 along x: 2-98 percentiles ~0.02 and ~0.98

    def legend_range(m):
        widgets = [c.widget for c in m.controls if isinstance(c, ipyleaflet.WidgetControl)]
        html = [w.value for w in widgets if "eoai-legend" in getattr(w, "value", "")][0]
        return [float(part.split("</span>")[0]) for part in html.split("<span>")[1:]]

    m = explore(grid, vmin=0.25)
    lo, hi = legend_range(m)
    assert lo == 0.25 and hi == pytest.approx(0.98, abs=0.02)

    m = explore(grid, vmax=0.5)
    lo, hi = legend_range(m)
    assert lo == pytest.approx(0.02, abs=0.02) and hi == 0.5
    # the given top is the top of the colour map: every pixel >= 0.5 has its colour
    img = decode(m.eoai_layers["ndvi"].url)
    top = np.array(matplotlib.colormaps["RdYlGn"](1.0, bytes=True)[:3])
    right = img[:, int(img.shape[1] * 0.6) :]
    assert np.all(right[right[..., 3] > 0][:, :3] == top)
