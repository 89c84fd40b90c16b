"""Plots (HoloViews / hvplot, Bokeh backend) that render inline in JupyterLab and in HTML reports.

- :func:`plot_series`: time series at points, raw (masked) values as markers and the gap-filled
  curve as a line;
- :func:`quicklook`: RGB or false-colour composite with a percentile stretch;
- :func:`plot_phenology`: a seasonal curve with SOS / POS / EOS marked;
- :func:`plot_confusion_matrix`: deprecated, the one confusion-matrix plot is
  :func:`eoai.ml.plot_confusion_matrix` (rows map, columns reference, as :func:`eoai.ml.assess`).

Each returns a HoloViews object (display it, ``+`` / ``*`` it, or ``hv.save`` it). In a notebook,
call ``eoai.viz.notebook()`` once so the Bokeh JavaScript is inlined (reports then work offline).

Examples
--------
>>> import eoai.viz.plots as P
>>> P.quicklook  # doctest: +ELLIPSIS
<function quicklook at ...>
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError, MissingDimensionError, NoOverlapError
from . import colours

__all__ = ["plot_series", "quicklook", "plot_phenology", "plot_confusion_matrix"]


def _hv():
    import holoviews as hv

    if not hv.Store.renderers or "bokeh" not in hv.Store.renderers:
        import holoviews.plotting.bokeh  # noqa: F401  (registers the backend without display)
    hv.Store.set_current_backend("bokeh")
    return hv


def _single_var(obj: xr.DataArray | xr.Dataset, what: str) -> xr.DataArray:
    if isinstance(obj, xr.DataArray):
        return obj
    if isinstance(obj, xr.Dataset) and len(obj.data_vars) == 1:
        return obj[next(iter(obj.data_vars))]
    if isinstance(obj, xr.Dataset):
        raise InputError(
            f"{what} is a Dataset with variables {sorted(map(str, obj.data_vars))}: pick one, "
            f"e.g. ds[{next(iter(obj.data_vars))!r}]"
        )
    raise InputError(f"{what} must be an xarray DataArray, got {type(obj).__name__}")


def _points_xy(points: Any, crs: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Point labels and x / y coordinates in the data CRS."""
    if hasattr(points, "geometry") and hasattr(points, "to_crs"):  # GeoDataFrame
        if points.crs is None:
            raise InputError("the points GeoDataFrame has no CRS: set it with gdf.set_crs(...)")
        if crs is not None:
            points = points.to_crs(str(crs))
        geoms = points.geometry
        if not all(geoms.geom_type == "Point"):
            geoms = geoms.representative_point()
        names = [str(i) for i in points.index]
        return names, np.asarray(geoms.x, float), np.asarray(geoms.y, float)
    if isinstance(points, dict):
        names = [str(k) for k in points]
        xy = np.asarray(list(points.values()), dtype=float)
    else:
        xy = np.asarray(points, dtype=float)
        if xy.ndim == 1 and xy.size == 2:
            xy = xy[None, :]
        names = [f"point {i}" for i in range(len(xy))]
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0:
        raise InputError(
            "points must be (x, y) pairs in the data's CRS, a dict {name: (x, y)} or a "
            f"GeoDataFrame of points; got an array of shape {xy.shape}"
        )
    return names, xy[:, 0], xy[:, 1]


def _at_points(da: xr.DataArray, xs: np.ndarray, ys: np.ndarray, names: list[str]) -> xr.DataArray:
    """Values at the nearest pixel of each point (one vectorised selection), in memory."""
    for dim, vals in (("x", xs), ("y", ys)):
        coord = da[dim].values
        half = abs(float(coord[1] - coord[0])) / 2 if coord.size > 1 else 0.0
        lo, hi = float(coord.min()) - half, float(coord.max()) + half
        outside = (vals < lo) | (vals > hi)
        if outside.any():
            raise NoOverlapError(
                f"{int(outside.sum())} point(s) fall outside the data ({dim} range {lo:.1f} to "
                f"{hi:.1f}): give points in the data's CRS ({_crs_name(da)}) inside its extent"
            )
    sel = da.sel(
        x=xr.DataArray(xs, dims="point"), y=xr.DataArray(ys, dims="point"), method="nearest"
    )
    return sel.assign_coords(point=names).compute()  # the user asked for these values


def _crs_name(da: xr.DataArray) -> str:
    try:
        import odc.geo.xr  # noqa: F401

        return str(da.odc.crs)
    except Exception:  # pragma: no cover - no CRS at all
        return "unknown CRS"


def _data_crs(da: xr.DataArray):
    import odc.geo.xr  # noqa: F401

    return da.odc.crs


def plot_series(
    obj: xr.DataArray | xr.Dataset,
    points: Any,
    raw: xr.DataArray | xr.Dataset | None = None,
    *,
    title: str | None = None,
    width: int = 700,
    height: int = 300,
):
    """Time series at points: the (gap-filled) series as lines, raw masked values as markers.

    Parameters
    ----------
    obj : xarray.DataArray
        ``(time, y, x)`` series, typically gap-filled (a one-variable Dataset is accepted).
    points : sequence of (x, y), dict or geopandas.GeoDataFrame
        Locations in the data's CRS (a GeoDataFrame is reprojected); nearest pixel is used.
    raw : xarray.DataArray, optional
        The raw series with clouds masked (NaN), drawn as markers on the same axes.
    title : str, optional
        Plot title (default the variable name).
    width, height : int
        Plot size in pixels.

    Returns
    -------
    holoviews.Overlay
        Lines per point (and markers for ``raw``); values are computed at the points only.

    Raises
    ------
    eoai.errors.MissingDimensionError
        When ``time``, ``y`` or ``x`` is missing.
    eoai.errors.NoOverlapError
        When a point lies outside the data.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2020-01-01", periods=4, freq="MS")
    >>> da = xr.DataArray(np.arange(16.0).reshape(4, 2, 2), name="ndvi",
    ...                   coords={"time": t, "y": [1.0, 0.0], "x": [0.0, 1.0]}, dims=("time", "y", "x"))
    >>> plot = plot_series(da, [(0.0, 1.0)])
    >>> plot["point 0"].data["ndvi"].tolist()
    [0.0, 4.0, 8.0, 12.0]
    """
    import hvplot.pandas  # noqa: F401

    da = _single_var(obj, "obj")
    for dim in ("time", "y", "x"):
        if dim not in da.dims:
            raise MissingDimensionError(
                f"plot_series needs dims (time, y, x); {dim!r} missing from {da.dims}"
            )
    name = str(da.name or "value")
    crs = None
    if hasattr(points, "to_crs"):
        crs = _data_crs(da)
    names, xs, ys = _points_xy(points, crs)
    values = _at_points(da, xs, ys, names)
    df = values.rename(name).to_dataframe()[[name]].reset_index()
    plot = df.hvplot.line(
        x="time",
        y=name,
        by="point",
        width=width,
        height=height,
        title=title or name,
        legend="top_left",
    )
    if raw is not None:
        raw_da = _single_var(raw, "raw")
        if "time" not in raw_da.dims:
            raise MissingDimensionError("raw must have a 'time' dim")
        raw_vals = _at_points(raw_da, xs, ys, names).rename(name)
        rdf = raw_vals.to_dataframe()[[name]].reset_index().dropna(subset=[name])
        plot = plot * rdf.hvplot.scatter(x="time", y=name, by="point", size=40, legend=False)
    return plot.opts(title=title or name)


def _pick_date(ds: xr.Dataset, bands: Sequence[str], time: Any, max_size: int) -> xr.Dataset:
    if "time" not in ds.dims:
        return ds
    if time is not None:
        if isinstance(time, (int, np.integer)):
            return ds.isel(time=int(time))
        return ds.sel(time=np.datetime64(time), method="nearest")
    if ds.sizes["time"] == 1:
        return ds.isel(time=0)
    # the clearest date: valid fraction on a subsample of at most 256 px a side
    step = max(1, max(ds.sizes["y"], ds.sizes["x"]) // 256)
    sub = ds[list(bands)].isel(y=slice(None, None, step), x=slice(None, None, step))
    # a sum of DataArrays is one (bands is never empty: quicklook takes three)
    n_valid = cast(xr.DataArray, sum(sub[b].notnull() for b in bands))
    valid = n_valid.mean(("y", "x")).compute()
    return ds.isel(time=int(valid.argmax("time")))


def quicklook(
    ds: xr.Dataset,
    bands: Sequence[str] = ("red", "green", "blue"),
    *,
    time: Any = None,
    percentiles: tuple[float, float] = (2, 98),
    per_band: bool = True,
    max_size: int = 1024,
    title: str | None = None,
    width: int = 500,
):
    """RGB or false-colour composite of three bands with a percentile stretch.

    Parameters
    ----------
    ds : xarray.Dataset
        Reflectance bands ``(y, x)`` or ``(time, y, x)``.
    bands : three str
        Bands mapped to red, green, blue; e.g. ``("nir", "red", "green")`` for false colour.
    time : int, str or datetime, optional
        Date to show (nearest); default the date with the most valid pixels.
    percentiles : (low, high)
        Stretch between these percentiles of the valid values.
    per_band : bool
        Stretch each band on its own (default; removes haze casts of top-of-atmosphere data);
        ``False`` stretches the three bands together, keeping their relative balance.
    max_size : int
        Largest side in pixels (strided downsampling beyond it).
    title : str, optional
        Default ``"red/green/blue <date>"``.
    width : int
        Plot width in pixels.

    Returns
    -------
    holoviews.RGB
        Values in 0-1 with an alpha channel (NaN pixels transparent).

    Raises
    ------
    eoai.errors.UnknownBandError
        When a band is missing (the message lists the available ones).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({b: (("y", "x"), np.random.default_rng(0).random((4, 5)))
    ...                  for b in ("red", "green", "blue")}, coords={"y": np.arange(4.0)[::-1], "x": np.arange(5.0)})
    >>> rgb = quicklook(ds)
    >>> rgb.dimension_values(2, flat=False).shape
    (4, 5)
    """
    from ..errors import UnknownBandError

    if not isinstance(ds, xr.Dataset):
        raise InputError(f"quicklook needs an xarray Dataset of bands, got {type(ds).__name__}")
    bands = list(bands)
    if len(bands) != 3:
        raise InputError(
            f"quicklook needs exactly three bands (red, green, blue channels), got {bands}"
        )
    missing = [b for b in bands if b not in ds.data_vars]
    if missing:
        raise UnknownBandError(
            f"bands {missing} are not in the dataset; available: {sorted(map(str, ds.data_vars))}"
        )
    for dim in ("y", "x"):
        if dim not in ds.dims:
            raise MissingDimensionError(f"quicklook needs dims y and x; got {tuple(ds.dims)}")
    lo_p, hi_p = percentiles
    if not 0 <= lo_p < hi_p <= 100:
        raise InputError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    hv = _hv()
    scene = _pick_date(ds[bands], bands, time, max_size)
    step = max(1, int(np.ceil(max(scene.sizes["y"], scene.sizes["x"]) / max_size)))
    scene = scene.isel(y=slice(None, None, step), x=slice(None, None, step)).compute()
    arr = np.stack([np.asarray(scene[b].values, dtype="float64") for b in bands], axis=-1)
    valid = np.all(np.isfinite(arr), axis=-1)
    if not valid.any():
        raise InputError(
            "every pixel of this scene is NaN (masked): choose another date with time="
        )
    if per_band:
        ranges = [colours.robust_range(arr[..., i][valid], percentiles) for i in range(3)]
    else:
        ranges = [colours.robust_range(arr[valid], percentiles)] * 3
    out = np.stack(
        [np.clip((arr[..., i] - lo) / (hi - lo), 0, 1) for i, (lo, hi) in enumerate(ranges)]
        + [valid.astype(float)],
        axis=-1,
    )
    out[..., :3] = np.nan_to_num(out[..., :3])
    date = f" {str(scene['time'].values)[:10]}" if "time" in scene.coords else ""
    xs, ys = scene["x"].values, scene["y"].values
    rgb = hv.RGB((xs, ys, *[out[..., i] for i in range(4)]), vdims=["R", "G", "B", "A"])
    height = int(width * len(ys) / max(len(xs), 1))
    return rgb.opts(
        title=title or "/".join(bands) + date,
        width=width,
        height=max(height, 150),
        data_aspect=1,
        xlabel="x",
        ylabel="y",
    )


def _as_date(value: Any, year0: int) -> np.datetime64 | None:
    if value is None:
        return None
    if isinstance(value, (xr.DataArray,)):
        value = value.values
    value = np.asarray(value)
    if value.ndim != 0:
        raise InputError(
            f"phenology values must be scalars for one pixel, got shape {value.shape}: "
            "select the pixel first, e.g. pheno.sel(x=..., y=..., method='nearest')"
        )
    if np.issubdtype(value.dtype, np.datetime64):
        return None if np.isnat(value) else value.astype("datetime64[ns]")
    v = float(value)
    if not np.isfinite(v):
        return None
    return np.datetime64(f"{year0}-01-01", "ns") + np.timedelta64(int(round((v - 1) * 86400)), "s")


def plot_phenology(
    curve: xr.DataArray,
    pheno: Any = None,
    *,
    raw: xr.DataArray | None = None,
    title: str | None = None,
    width: int = 700,
    height: int = 300,
):
    """A seasonal curve with start (SOS), peak (POS) and end (EOS) of season marked.

    Parameters
    ----------
    curve : xarray.DataArray
        1-D ``(time,)`` curve of one pixel (e.g. gap-filled NDVI).
    pheno : dict, pandas.Series or xarray.Dataset, optional
        Scalars ``sos``, ``pos``, ``eos`` (any present): datetimes, or days of year counted from
        1 January of the curve's first year.
    raw : xarray.DataArray, optional
        Raw observations ``(time,)`` drawn as markers.
    title : str, optional
        Plot title.
    width, height : int
        Plot size.

    Returns
    -------
    holoviews.Overlay
        Curve, markers labelled ``SOS`` / ``POS`` / ``EOS`` and vertical lines at their dates.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2020-01-01", periods=12, freq="MS")
    >>> c = xr.DataArray(np.sin(np.linspace(0, np.pi, 12)), coords={"time": t}, dims="time")
    >>> p = plot_phenology(c, {"sos": np.datetime64("2020-03-01"), "pos": 183, "eos": np.datetime64("2020-10-01")})
    >>> p.Labels.I.data["event"].tolist()
    ['SOS', 'POS', 'EOS']
    """
    hv = _hv()
    da = _single_var(curve, "curve").squeeze(drop=True)
    if da.dims != ("time",):
        raise InputError(
            f"plot_phenology needs a 1-D (time,) curve, got dims {da.dims}: select one pixel "
            "with .sel(x=..., y=..., method='nearest')"
        )
    da = da.compute()  # one pixel, the user asked for the plot
    name = str(da.name or "value")
    times = da["time"].values.astype("datetime64[ns]")
    elements = [
        hv.Curve((times, da.values), "time", name, label=name).opts(color="#2ca02c", line_width=2)
    ]
    if raw is not None:
        r = _single_var(raw, "raw").squeeze(drop=True).compute()
        ok = np.isfinite(r.values)
        elements.append(
            hv.Scatter((r["time"].values[ok], r.values[ok]), "time", name, label="observed").opts(
                color="#555555", size=5
            )
        )
    if pheno is not None:
        year0 = int(str(times[0])[:4])
        rows = []
        for key in ("sos", "pos", "eos"):
            try:
                val = pheno[key]
            except (KeyError, IndexError):
                continue
            date = _as_date(val, year0)
            if date is None:
                continue
            y = float(np.interp(date.astype("int64"), times.astype("int64"), da.values))
            rows.append((date, y, key.upper()))
        if rows:
            df = pd.DataFrame(rows, columns=["time", name, "event"])
            elements.append(
                hv.Scatter(df, "time", [name, "event"], label="events").opts(
                    color="#d62728", size=10, marker="diamond"
                )
            )
            elements.append(
                hv.Labels(df, ["time", name], "event").opts(
                    text_color="#d62728", yoffset=0.04, text_font_size="10pt"
                )
            )
            elements.extend(
                hv.VLine(d).opts(color="#d62728", line_dash="dashed", line_width=1)
                for d in df["time"]
            )
    return hv.Overlay(elements).opts(
        title=title or f"{name} phenology", width=width, height=height, legend_position="top_left"
    )


def plot_confusion_matrix(
    cm: Any,
    labels: Sequence[str] | None = None,
    *,
    normalize: bool = False,
    title: str | None = None,
    width: int = 450,
):
    """Confusion matrix heat map, reference classes as rows (deprecated).

    .. deprecated:: 0.1
        eoai has one confusion-matrix plot, :func:`eoai.ml.plot_confusion_matrix`, with the
        orientation of :func:`eoai.ml.assess` (rows map, columns reference). This HoloViews
        version (rows reference, the transpose) is kept for one release with a ``FutureWarning``.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)
    ...     p = plot_confusion_matrix([[5, 1], [0, 4]], labels=["crop", "forest"])
    >>> sorted(p.Labels.I.data["text"].tolist())
    ['0', '1', '4', '5']
    """
    import warnings

    from .._skipped import user_stacklevel

    warnings.warn(
        "eoai.viz.plot_confusion_matrix is deprecated and will be removed in the next release: "
        "use eoai.ml.plot_confusion_matrix(eoai.ml.assess(...)) (rows map, columns reference, "
        "the orientation of assess; this one has reference rows)",
        FutureWarning,
        stacklevel=user_stacklevel(),
    )
    hv = _hv()
    if isinstance(cm, pd.DataFrame):
        labels = labels or [str(v) for v in cm.index]
        matrix = cm.to_numpy(dtype=float)
    elif isinstance(cm, xr.DataArray):
        if labels is None and cm.dims and cm.dims[0] in cm.coords:
            labels = [str(v) for v in cm[cm.dims[0]].values]
        matrix = np.asarray(cm.values, dtype=float)
    else:
        matrix = np.asarray(cm, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise InputError(f"a confusion matrix must be square, got shape {matrix.shape}")
    n = matrix.shape[0]
    labels = [str(v) for v in (labels if labels is not None else range(n))]
    if len(labels) != n:
        raise InputError(f"{len(labels)} labels for a {n}x{n} confusion matrix")
    accuracy = np.trace(matrix) / matrix.sum() if matrix.sum() else np.nan
    shown = matrix
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        shown = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    rows = []
    for i in range(n):
        for j in range(n):
            text = f"{shown[i, j]:.2f}" if normalize else f"{int(round(shown[i, j]))}"
            rows.append((labels[j], labels[i], shown[i, j], text))
    df = pd.DataFrame(rows, columns=["predicted", "reference", "value", "text"])
    heat = hv.HeatMap(df, ["predicted", "reference"], ["value", "text"]).opts(
        cmap="Blues",
        colorbar=True,
        tools=["hover"],
        xrotation=45,
        invert_yaxis=True,
        width=width,
        height=width - 40,
    )
    text = hv.Labels(df, ["predicted", "reference"], "text").opts(
        text_color="black", text_font_size="10pt"
    )
    return (heat * text).opts(title=title or f"confusion matrix (overall accuracy {accuracy:.1%})")
