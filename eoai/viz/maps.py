"""Interactive maps of cubes in the notebook: ``obj.eoai.explore()`` (ipyleaflet).

Rasters are reprojected to Web Mercator with odc-geo, downsampled to at most ``max_size`` pixels
a side, colour-mapped and shown as PNG image overlays (data URLs, so the map also renders in an
exported HTML report with no network). Class maps use their class colours and names.

Examples
--------
>>> import eoai
>>> cube = eoai.load(eoai.datasets.sample_catalog(), collections=["slovenia-ndvi"])  # doctest: +SKIP
>>> cube.ndvi.eoai.explore()  # doctest: +SKIP
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._skipped import user_stacklevel
from ..errors import CRSError, DataSkippedWarning, InputError, MissingDimensionError
from . import colours

__all__ = ["explore"]

_WORLD = 40075016.68557849  # Web Mercator world width in metres
_COMPOSITES = {
    "rgb": ("red", "green", "blue"),
    "false_colour": ("nir", "red", "green"),
}


@dataclass
class _Layer:
    """One raster layer: its Web-Mercator data (lazy), how to colour it, its overlay."""

    name: str
    data: xr.DataArray | xr.Dataset  # (time?, y, x) in EPSG:3857; Dataset for composites
    legend: dict | None
    cmap: str | None
    vmin: float | None
    vmax: float | None
    overlay: Any = None
    cache: dict | None = None

    @property
    def has_time(self) -> bool:
        return "time" in self.data.dims and self.data.sizes["time"] > 1

    def image(self, t: int | None) -> str:
        """PNG data URL of date index ``t`` (computed once, then cached)."""
        if self.cache is None:
            self.cache = {}
        key = t if self.has_time else None
        if key not in self.cache:
            data = self.data
            if "time" in data.dims:
                data = data.isel(time=key or 0)
            with warnings.catch_warnings():  # rasterio warns about in-memory warps; harmless
                warnings.filterwarnings("ignore", message="Dataset has no geotransform")
                rgba = self._rgba(data)
            if not rgba[..., 3].any():
                when = f" on {str(data['time'].values)[:10]}" if "time" in data.coords else ""
                warnings.warn(
                    f"layer {self.name!r} has no valid pixel{when} (all masked, e.g. clouds), so "
                    "its overlay is empty: choose another date (time=... or the slider)",
                    DataSkippedWarning,
                    stacklevel=user_stacklevel(),
                )
            self.cache[key] = colours.png_data_url(rgba)
        return self.cache[key]

    def _rgba(self, data: xr.DataArray | xr.Dataset) -> np.ndarray:
        if isinstance(data, xr.Dataset):  # RGB composite, stretched per band
            bands = [np.asarray(data[v].values, dtype="float64") for v in data.data_vars]
            rgb = np.stack([_stretch(b, self.vmin, self.vmax) for b in bands], axis=-1)
            valid = np.all(np.isfinite(np.stack(bands, -1)), axis=-1)
            rgba = np.concatenate([rgb, np.where(valid, 255, 0)[..., None]], axis=-1)
            return rgba.astype(np.uint8)
        values = np.asarray(data.values, dtype="float64")
        open_end = self.vmin is None or self.vmax is None
        if open_end and self.legend is None and self.cmap is not None:
            if not np.isfinite(values).any():
                return np.zeros(values.shape + (4,), dtype=np.uint8)
            lo, hi = colours.robust_range(values)  # only the end the caller did not give
            self.vmin = lo if self.vmin is None else self.vmin
            self.vmax = hi if self.vmax is None else self.vmax
        return colours.colourise(values, self.cmap or "viridis", self.vmin, self.vmax, self.legend)


def _stretch(band: np.ndarray, vmin: float | None, vmax: float | None) -> np.ndarray:
    if vmin is None or vmax is None:
        if not np.isfinite(band).any():
            return np.zeros(band.shape)
        lo, hi = colours.robust_range(band)
    else:
        lo, hi = vmin, vmax
    return np.clip(np.nan_to_num((band - lo) / (hi - lo), nan=0.0), 0, 1) * 255


def _check_spatial(obj: xr.DataArray | xr.Dataset, what: str) -> None:
    import odc.geo.xr  # noqa: F401  (registers .odc)

    missing = [d for d in ("y", "x") if d not in obj.dims]
    if missing:
        raise MissingDimensionError(
            f"{what} has dims {tuple(obj.dims)} but a map needs 'y' and 'x'; "
            "load it with eoai.load or rename its spatial dims to y, x"
        )
    if obj.odc.crs is None:
        raise CRSError(
            f"{what} has no CRS: assign one with obj.odc.assign_crs('EPSG:32633') "
            "(or load it with eoai.load, which keeps it)"
        )


def _to_mercator(obj: xr.DataArray | xr.Dataset, max_size: int, categorical: bool):
    """Reproject lazily to EPSG:3857, at most ``max_size`` pixels a side."""
    import odc.geo.xr  # noqa: F401

    gbox = obj.odc.geobox.to_crs("epsg:3857")
    factor = max(gbox.shape) / max_size
    if factor > 1:
        gbox = gbox.zoom_to(max_size)
    if categorical:
        resampling = "nearest"
    else:
        resampling = "average" if factor > 1.5 else "bilinear"
    out = obj.odc.reproject(gbox, resampling=resampling)
    return out, gbox


def _latlon_bounds(gbox) -> list[list[float]]:
    bb = gbox.extent.to_crs("epsg:4326").boundingbox
    return [[bb.bottom, bb.left], [bb.top, bb.right]]


def _center_zoom(gbox, width: int = 800, height: int = 450) -> tuple[tuple[float, float], int]:
    bb = gbox.boundingbox
    (south, west), (north, east) = _latlon_bounds(gbox)
    dx, dy = max(bb.right - bb.left, 1.0), max(bb.top - bb.bottom, 1.0)
    zoom = math.floor(math.log2(min(width * _WORLD / (256 * dx), height * _WORLD / (256 * dy))))
    return ((south + north) / 2, (west + east) / 2), int(min(max(zoom, 1), 18))


def _resolve_basemap(basemap: Any):
    import ipyleaflet

    if basemap is None or basemap is False:
        return None
    if basemap is True or basemap == "osm":
        return ipyleaflet.basemap_to_tiles(ipyleaflet.basemaps.OpenStreetMap.Mapnik)
    if isinstance(basemap, ipyleaflet.TileLayer):
        return basemap
    if isinstance(basemap, str):
        try:
            provider = ipyleaflet.basemaps.query_name(basemap)
        except ValueError as err:
            raise InputError(
                f"unknown basemap {basemap!r}: use a name such as 'OpenStreetMap.Mapnik' or "
                "'Esri.WorldImagery' (see ipyleaflet.basemaps), True for OpenStreetMap, "
                "or None for no basemap (offline)"
            ) from err
        return ipyleaflet.basemap_to_tiles(provider)
    return ipyleaflet.basemap_to_tiles(basemap)


def _time_labels(obj: xr.DataArray | xr.Dataset) -> list[str]:
    if "time" not in obj.coords:
        return []
    return [str(t)[:10] for t in obj["time"].values]


def _select_time(obj: xr.DataArray | xr.Dataset, when: Any) -> xr.DataArray | xr.Dataset:
    if "time" not in obj.dims:
        raise MissingDimensionError(
            f"split={when!r} selects a date but the data has no 'time' dim; pass a pair of "
            "2-D DataArrays (before, after) instead"
        )
    if isinstance(when, (int, np.integer)):
        return obj.isel(time=int(when))
    return obj.sel(time=np.datetime64(when), method="nearest")


def _make_layers(
    obj: xr.DataArray | xr.Dataset,
    variables: list[str] | None,
    cmap: str | None,
    vmin: float | None,
    vmax: float | None,
    max_size: int,
    prefix: str = "",
) -> tuple[list[_Layer], Any]:
    layers: list[_Layer] = []
    gbox = None
    if isinstance(obj, xr.DataArray) and "embedding" in obj.dims:
        items: list[tuple[Hashable, Any]] = [_embedding_rgb(obj, variables)]
    elif isinstance(obj, xr.DataArray):
        items = [(obj.name or "layer", obj)]
    else:
        names: Sequence[Hashable] | None = variables
        if names is None:
            names = (
                ["rgb"]
                if all(b in obj.data_vars for b in _COMPOSITES["rgb"])
                else list(obj.data_vars)
            )
        items = []
        for name in names:
            if isinstance(name, str) and name in _COMPOSITES:
                missing = [b for b in _COMPOSITES[name] if b not in obj.data_vars]
                if missing:
                    raise InputError(
                        f"layer {name!r} needs bands {_COMPOSITES[name]}, missing {missing}; "
                        f"available: {sorted(map(str, obj.data_vars))}"
                    )
                items.append((name, obj[list(_COMPOSITES[name])]))
            elif name in obj.data_vars:
                items.append((name, obj[name]))
            else:
                raise InputError(
                    f"unknown layer {name!r}: available variables are {sorted(map(str, obj.data_vars))} "
                    f"and the composites {sorted(_COMPOSITES)}"
                )
    for name, data in items:
        extra = [d for d in data.dims if d not in ("time", "y", "x")]
        if extra:
            raise InputError(
                f"layer {name!r} has extra dims {extra}: select one value first, "
                f"e.g. obj.isel({extra[0]}=0)"
            )
        categorical = isinstance(data, xr.DataArray) and colours.is_class_map(data.attrs)
        legend = colours.class_legend(data) if categorical else None
        merc, gbox = _to_mercator(data, max_size, categorical)
        layer_cmap = None if legend else (cmap or colours.default_cmap(str(name)))
        layers.append(_Layer(prefix + str(name), merc, legend, layer_cmap, vmin, vmax))
    return layers, gbox


def _embedding_rgb(obj: xr.DataArray, variables: list[str] | None) -> tuple[str, xr.Dataset]:
    """Three dimensions of an ``(embedding, y, x)`` array (:func:`eoai.ml.presto.embed`) as an
    RGB composite (each stretched to its 2-98 percentiles): ``variables`` names them (labels of
    the ``embedding`` coordinate or indices), default the first three."""
    labels = (
        [str(v) for v in obj["embedding"].values]
        if "embedding" in obj.coords
        else [str(i) for i in range(obj.sizes["embedding"])]
    )
    picked = list(variables) if variables is not None else labels[:3]
    if len(picked) != 3:
        raise InputError(
            f"an embedding is shown as RGB of three of its dimensions; got {len(picked)} "
            f"({picked}): pass variables=[three of {labels[:3]} ... {labels[-1]}]"
        )
    idx = []
    for v in picked:
        if isinstance(v, (int, np.integer)) and 0 <= v < len(labels):
            idx.append(int(v))
        elif str(v) in labels:
            idx.append(labels.index(str(v)))
        else:
            raise InputError(
                f"unknown embedding dimension {v!r}: use labels {labels[0]} ... {labels[-1]} "
                f"or indices 0 ... {len(labels) - 1}"
            )
    rgb = xr.Dataset({labels[i]: obj.isel(embedding=i, drop=True) for i in idx}, attrs=obj.attrs)
    name = f"{obj.name or 'embedding'} RGB ({', '.join(labels[i] for i in idx)})"
    return name, rgb


def _explore_map_class():
    import ipyleaflet

    class ExploreMap(ipyleaflet.Map):
        """An ipyleaflet Map made by :func:`explore`; ``show_pixel(lat, lon)`` fills the panel."""

        def show_pixel(self, lat: float, lon: float) -> xr.DataArray | None:
            """Plot the time series of the pixel at (lat, lon) in the side panel; return it."""
            return _show_pixel(self, lat, lon)

    return ExploreMap


def _show_pixel(m: Any, lat: float, lon: float) -> xr.DataArray | None:
    from odc.geo import geom

    series = m.eoai_series
    panel = m.eoai_panel
    if series is None:
        return None
    pt = geom.point(lon, lat, "epsg:4326").to_crs(series.odc.crs)
    x, y = pt.coords[0]
    xs, ys = series["x"].values, series["y"].values
    resx = abs(float(xs[1] - xs[0])) if xs.size > 1 else 0.0
    resy = abs(float(ys[1] - ys[0])) if ys.size > 1 else 0.0
    inside = (min(xs) - resx / 2 <= x <= max(xs) + resx / 2) and (
        min(ys) - resy / 2 <= y <= max(ys) + resy / 2
    )
    panel.clear_output()
    if not inside:
        with panel:
            print(f"({lat:.5f}, {lon:.5f}) is outside the data")
        m.eoai_last_pixel = None
        return None
    pixel = series.sel(x=x, y=y, method="nearest").compute()  # the user asked for this pixel
    m.eoai_last_pixel = pixel
    with panel:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.2, 2.2), dpi=90)
        ax.plot(pixel["time"].values, pixel.values, "o-", ms=3, lw=1)
        ax.set_title(f"{pixel.name or 'value'} at {lat:.4f}, {lon:.4f}", fontsize=9)
        ax.tick_params(labelsize=7)
        fig.autofmt_xdate()
        fig.tight_layout()
        plt.show()
        plt.close(fig)
    return pixel


def explore(
    obj: xr.DataArray | xr.Dataset,
    variables: list[str] | None = None,
    *,
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    time: Any = None,
    split: tuple[Any, Any] | None = None,
    vectors: Any = None,
    basemap: Any = None,
    opacity: float = 0.85,
    series: xr.DataArray | None = None,
    max_size: int = 1024,
    height: str = "450px",
):
    """Show a cube on an interactive map (ipyleaflet) in the notebook.

    Each variable (or ``"rgb"`` / ``"false_colour"`` composite) becomes an image overlay,
    reprojected to Web Mercator and downsampled to at most ``max_size`` pixels a side, with a
    legend (class maps in their class colours and names), an opacity slider and a layer control.
    A series gets a date slider; ``split`` compares two dates (or two maps) side by side;
    ``vectors`` adds GeoDataFrames as GeoJSON layers; clicking a pixel plots its time series in a
    side panel. The displayed image is computed (only at display resolution).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        ``(y, x)`` or ``(time, y, x)`` data with a CRS (odc-geo).
    variables : list of str, optional
        Dataset variables to show; ``"rgb"`` and ``"false_colour"`` make composites. Default:
        ``["rgb"]`` when red, green and blue are present, else every variable. For an
        ``(embedding, y, x)`` array (:func:`eoai.ml.presto.embed`): the three dimensions shown as
        red, green, blue (labels such as ``"presto_005"`` or indices; default the first three).
    cmap : str, optional
        Matplotlib colour map for continuous layers (default by variable name, e.g. ``RdYlGn``
        for NDVI).
    vmin, vmax : float, optional
        Colour stretch; default the 2-98 percentiles of the displayed image.
    time : int, str or datetime, optional
        Date shown first (index or label; nearest date); the slider starts there.
    split : (before, after), optional
        Two dates of ``obj`` (labels or indices) or two 2-D DataArrays, shown left and right
        of a split-map control.
    vectors : geopandas.GeoDataFrame or dict of them, optional
        Vector layers (e.g. training polygons); a ``class`` column colours the features.
    basemap : None, True, str or TileProvider, optional
        ``None`` (default) draws no tiles and needs no network; ``True`` adds OpenStreetMap;
        a name such as ``"Esri.WorldImagery"`` picks an ipyleaflet basemap.
    opacity : float
        Initial opacity of the raster layers.
    series : xarray.DataArray, optional
        ``(time, y, x)`` data plotted when a pixel is clicked; default ``obj`` (first variable
        of a Dataset) when it has a time axis.
    max_size : int
        Largest side of the displayed images in pixels.
    height : str
        CSS height of the map.

    Returns
    -------
    ipyleaflet.Map
        With extra attributes ``eoai_layers`` (name -> ImageOverlay), ``eoai_panel`` (the
        click panel, an ``ipywidgets.Output``), ``eoai_slider`` (or None) and the method
        ``show_pixel(lat, lon)``.

    Raises
    ------
    eoai.errors.CRSError
        When the data has no CRS.
    eoai.errors.MissingDimensionError
        When ``y`` / ``x`` (or ``time`` for a date split) is missing.
    eoai.errors.InputError
        For unknown variables, extra dims or bad parameters.

    Examples
    --------
    >>> import numpy as np, xarray as xr, odc.geo.xr
    >>> from odc.geo.geobox import GeoBox
    >>> gbox = GeoBox.from_bbox((500000, 5100000, 501000, 5101000), "epsg:32633", resolution=10)
    >>> da = odc.geo.xr.xr_zeros(gbox, dtype="float32").rename("ndvi") + 0.5
    >>> m = explore(da)
    >>> sorted(m.eoai_layers), m.eoai_layers["ndvi"].url[:22]
    (['ndvi'], 'data:image/png;base64,')
    >>> emb = xr.concat([da * i for i in range(5)], "embedding").rename("presto")
    >>> sorted(explore(emb, [4, 0, 2]).eoai_layers)
    ['presto RGB (4, 0, 2)']
    """
    import ipyleaflet
    import ipywidgets as w

    if not isinstance(obj, (xr.DataArray, xr.Dataset)):
        raise InputError(f"explore needs an xarray DataArray or Dataset, got {type(obj).__name__}")
    if not 0 <= opacity <= 1:
        raise InputError(f"opacity must be between 0 and 1, got {opacity}")
    if max_size < 16:
        raise InputError(f"max_size must be at least 16 pixels, got {max_size}")
    _check_spatial(obj, "the data")
    if isinstance(obj, xr.DataArray) and obj.name is None:
        obj = obj.rename("layer")

    layers, gbox = _make_layers(obj, variables, cmap, vmin, vmax, max_size)
    labels = _time_labels(obj) if any(layer.has_time for layer in layers) else []
    t0 = 0
    if time is not None and labels:
        t0 = (
            int(time)
            if isinstance(time, (int, np.integer))
            else int(np.argmin(np.abs(obj["time"].values - np.datetime64(time))))
        )

    split_layers: list[_Layer] = []
    if split is not None:
        if len(split) != 2:
            raise InputError("split must be a pair (before, after)")
        for side, item in zip(("before: ", "after: "), split, strict=True):
            if isinstance(item, (xr.DataArray, xr.Dataset)):
                _check_spatial(item, f"split {side.strip(': ')}")
                part = (
                    item
                    if not (isinstance(item, xr.DataArray) and item.name is None)
                    else item.rename("layer")
                )
            else:
                part = _select_time(obj, item)
                side = f"{side.strip()} {str(part['time'].values)[:10]} "
            made, _ = _make_layers(part, variables, cmap, vmin, vmax, max_size, prefix=side)
            if made and layers and made[0].legend is None and layers[0].vmin is not None:
                made[0].vmin, made[0].vmax = layers[0].vmin, layers[0].vmax
            split_layers.append(made[0])

    ExploreMap = _explore_map_class()
    center, zoom = _center_zoom(gbox)
    base = _resolve_basemap(basemap)
    m = ExploreMap(
        center=center,
        zoom=zoom,
        layers=(base,) if base is not None else (),
        scroll_wheel_zoom=True,
        layout=w.Layout(height=height),
    )
    m.eoai_layers = {}
    m.eoai_series = None
    m.eoai_last_pixel = None
    m.eoai_slider = None

    sliders = []
    for layer in layers + split_layers:
        overlay = ipyleaflet.ImageOverlay(
            url=layer.image(t0 if layer.has_time else None),
            bounds=_latlon_bounds(layer.data.odc.geobox),
            name=layer.name,
            opacity=opacity,
        )
        layer.overlay = overlay
        m.add(overlay)
        m.eoai_layers[layer.name] = overlay
        slider = w.FloatSlider(
            value=opacity,
            min=0,
            max=1,
            step=0.05,
            description=layer.name[:14],
            readout=False,
            layout=w.Layout(width="220px"),
        )
        w.jslink((slider, "value"), (overlay, "opacity"))
        sliders.append(slider)

    # legends: one per distinct layer (the first of a split pair stands for both)
    for layer in layers + split_layers[:1]:
        if layer.legend:
            m.add(
                ipyleaflet.LegendControl(
                    {name: colour for name, colour in layer.legend.values()},
                    title=layer.name,
                    position="bottomleft",
                )
            )
        elif layer.cmap and layer.vmin is not None and layer.vmax is not None:
            html = colours.continuous_legend_html(layer.name, layer.cmap, layer.vmin, layer.vmax)
            m.add(ipyleaflet.WidgetControl(widget=w.HTML(html), position="bottomleft"))

    if split_layers:
        m.add(
            ipyleaflet.SplitMapControl(
                left_layer=split_layers[0].overlay, right_layer=split_layers[1].overlay
            )
        )

    for name, gdf in _as_vector_dict(vectors).items():
        m.add(_geojson_layer(name, gdf, layers))

    controls: list = [w.HTML("<b>opacity</b>"), *sliders]
    if labels:
        slider = w.SelectionSlider(
            options=[(lab, i) for i, lab in enumerate(labels)],
            value=t0,
            description="date",
            continuous_update=False,
            layout=w.Layout(width="260px"),
        )

        def _on_date(change: dict) -> None:
            for layer in layers:
                if layer.has_time:
                    layer.overlay.url = layer.image(change["new"])

        slider.observe(_on_date, names="value")
        m.eoai_slider = slider
        controls.insert(0, slider)
    m.add(ipyleaflet.WidgetControl(widget=w.VBox(controls), position="topright"))
    m.add(ipyleaflet.LayersControl(position="topright"))

    if series is None:
        first = obj if isinstance(obj, xr.DataArray) else None
        if isinstance(obj, xr.Dataset):
            names = [v for v in (variables or obj.data_vars) if v in obj.data_vars]
            first = obj[names[0]] if names else None
        series = first if first is not None and "time" in first.dims else None
    elif "time" not in series.dims:
        raise MissingDimensionError("series must have a 'time' dim (it is plotted on click)")
    if series is not None:
        _check_spatial(series, "series")
    m.eoai_series = series
    m.eoai_panel = w.Output(layout=w.Layout(width="400px"))
    if series is not None:
        m.eoai_panel.append_stdout("click a pixel to plot its time series\n")
        m.add(ipyleaflet.WidgetControl(widget=m.eoai_panel, position="bottomright"))

        def _on_interaction(**event: Any) -> None:
            if event.get("type") == "click":
                lat, lon = event["coordinates"]
                m.show_pixel(lat, lon)

        m.on_interaction(_on_interaction)
    return m


def _as_vector_dict(vectors: Any) -> dict:
    if vectors is None:
        return {}
    if isinstance(vectors, dict):
        return vectors
    return {"vectors": vectors}


def _geojson_layer(name: str, gdf: Any, layers: list[_Layer]):
    import ipyleaflet

    if not hasattr(gdf, "to_crs") or not hasattr(gdf, "geometry"):
        raise InputError(
            f"vector layer {name!r} must be a geopandas GeoDataFrame, got {type(gdf).__name__}"
        )
    if gdf.crs is None:
        raise CRSError(f"vector layer {name!r} has no CRS: set one with gdf.set_crs(...)")
    gdf = gdf.to_crs(4326)
    colour_of: dict = {}
    if "class" in gdf.columns:
        legend = next((layer.legend for layer in layers if layer.legend), None)
        by_name = {n: c for n, c in legend.values()} if legend else {}
        for i, value in enumerate(sorted(gdf["class"].astype(str).unique())):
            colour_of[value] = by_name.get(value, colours.PALETTE[i % len(colours.PALETTE)])
    keep = [c for c in gdf.columns if c != gdf.geometry.name]
    data = gdf[[*keep, gdf.geometry.name]].copy()
    for c in keep:  # JSON-safe properties
        if not pd.api.types.is_numeric_dtype(data[c].dtype):
            data[c] = data[c].astype(str)

    def _style(feature: dict) -> dict:
        colour = colour_of.get(str(feature["properties"].get("class")), "#ff00ff")
        return {"color": colour, "fillColor": colour, "weight": 2, "fillOpacity": 0.15}

    return ipyleaflet.GeoJSON(
        data=data.__geo_interface__,
        name=name,
        style_callback=_style,
        style={"color": "#ff00ff", "weight": 2, "fillOpacity": 0.1},
    )
