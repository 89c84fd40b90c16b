"""Several sensors on one grid: :func:`stack_sources` puts sources on one GeoBox as a DataTree.

Sources differ in CRS, resolution, pixel alignment and dates (Sentinel-1 every 6-12 days on its
orbit's grid, Sentinel-2 every 5 days on the MGRS grid, a DEM once). :func:`stack_sources`
reprojects every source lazily (odc-geo, one task per output chunk for dask input) onto one
GeoBox and returns an :class:`xarray.DataTree`: the root holds the grid (``y`` / ``x`` or
``latitude`` / ``longitude`` and ``spatial_ref``, inherited by every child), and each source is one
child, named by its key, with its own ``time`` axis and attributes. :func:`gapfill_sources`
regularises each source onto its own date grid with :func:`eoai.timeseries.gapfill.gapfill`, and
the tree goes straight into :func:`eoai.ml.extract` / :func:`eoai.ml.classify` (features
``"<source>.<band>_<YYYY-MM-DD>"``, see :mod:`eoai.ml.features`).

Rules:

- **Grid.** ``like=`` a source name, or by default the source with the finest pixels (smallest
  pixel area; the first of equals), gives CRS, resolution and pixel alignment; the extent is the
  intersection of all sources' footprints (``extent="union"``: their union), snapped to that grid
  (intersection: only whole pixels inside every footprint). ``like=`` a GeoBox or an xarray object
  gives the exact grid. ``crs=`` / ``resolution=`` give a new grid over that extent (pixel edges on
  multiples of the resolution).
- **Exact where possible.** A source already on the grid, or on a grid it is a whole-pixel window
  of, is sliced (or padded with NaN), not resampled: its values are unchanged.
- **Resampling** (``"bilinear"`` by default, per source or per ``"source.var"`` with a mapping) of
  continuous variables (measured on the real S1 / S2 patch at a half-pixel shift: 2.2x lower RMSE
  than nearest; Lanczos is 26 % lower again on clear images but overshoots, see
  ``benchmarks/README.md``); class and mask variables (``flag_values`` / ``eoai:mask_kind`` attrs or mask
  names such as ``scl``) always take ``"nearest"`` and keep their integer codes. Other integer
  variables become float32 with their declared nodata as NaN (nodata is never a value).
- **SAR in linear power.** Backscatter (``vv``, ``vh``... or ``attrs["units"]`` dB / linear /
  amplitude) in dB or amplitude is converted to linear power (:mod:`eoai.sar.units`), resampled,
  and converted back to its own unit: averaging dB values would give the log of a geometric mean,
  biased low. Order statistics (``"nearest"``, ``"mode"``, ``"min"``...) need no conversion.
- **Time.** Every source keeps its own ``time`` axis; a source without one is an error unless it
  is named in ``static=`` (a DEM, a land-cover map): its variables are then ``(y, x)`` features.
- **Fine sources.** A very-high-resolution or panchromatic image named in ``fine=`` is not
  resampled down: it keeps its own pixels on a grid aligned with the base grid at an integer ratio
  (:func:`fine_geobox`; dims ``y_fine`` / ``x_fine``, attrs ``eoai:fine_ratio``), sliced (NaN
  outside it) and never interpolated. :func:`eoai.ml.extract` (``patch=``) reads a patch of it
  around every pixel for a patch branch (``eoai.ml.fit(..., model="m3fusion")``).

Examples
--------
>>> import eoai
>>> s2, _ = eoai.datasets.synthetic_cube(shape=(8, 8), start="2021-05-01", end="2021-06-30",
...                                      freq="10D", bands=["red", "nir"], seed=1)
>>> s1, _ = eoai.datasets.synthetic_cube(shape=(4, 4), start="2021-05-03", end="2021-06-30",
...                                      freq="12D", bands=["red"], resolution=20.0, seed=2)
>>> tree = stack_sources({"s2": s2, "s1": s1[["red"]].rename(red="nir")})
>>> list(tree.children), tree["s1"].nir.shape, tree["s2"].nir.shape
(['s2', 's1'], (5, 8, 8), (7, 8, 8))
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._provenance import provenance, step
from ..errors import CRSError, InputError, MissingDimensionError, NoOverlapError, TimeAxisError

__all__ = [
    "stack_sources", "gapfill_sources", "map_sources", "fine_geobox", "fine_sources", "EXTENTS",
    "RESAMPLING", "FINE_SUFFIX",
]  # fmt: skip

#: extents of the default grid: the sources' common area, or all of it
EXTENTS = ("intersection", "union")
#: resampling methods (GDAL's, through odc-geo / rasterio)
RESAMPLING = (
    "nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "gauss",
    "max", "min", "med", "q1", "q3", "sum", "rms",
)  # fmt: skip
#: methods whose output is one of the input values: no unit conversion needed for backscatter
_ORDER_STATISTICS = frozenset({"nearest", "mode", "max", "min", "med", "q1", "q3"})
#: suffix of the pixel dims of a fine source (``y_fine``, ``x_fine``)
FINE_SUFFIX = "_fine"


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InputError(f"stack_sources: source names must be non-empty strings, got {name!r}")
    bad = [c for c in "./" if c in name]
    if bad:
        raise InputError(
            f"stack_sources: source name {name!r} cannot contain {' or '.join(map(repr, bad))} "
            "(features are named '<source>.<band>_<date>', tree paths '/<source>'); use names "
            "such as 's1', 's2', 'dem'"
        )
    return name


def _geobox(ds: xr.Dataset, name: str) -> Any:
    import odc.geo.xr  # noqa: F401  (registers .odc)

    try:
        gbox = ds.odc.geobox
    except Exception:  # noqa: BLE001 - odc-geo raises several types for odd coordinates
        gbox = None
    if gbox is None or getattr(gbox, "crs", None) is None:
        raise CRSError(
            f"stack_sources: source {name!r} has no CRS / geotransform (dims {tuple(ds.dims)}); "
            "set it with ds.odc.assign_crs('EPSG:....') (odc-geo) or load it with eoai.load"
        )
    if not hasattr(gbox, "affine"):  # a GCP geobox (radar geometry)
        raise CRSError(
            f"stack_sources: source {name!r} is in radar geometry (ground control points), not on "
            "a map grid; terrain-correct it first (e.g. Sentinel-1 RTC / GRD GTC products)"
        )
    return gbox


def _as_source(obj: Any, name: str, static: bool) -> xr.Dataset:
    if isinstance(obj, xr.DataArray):
        obj = obj.to_dataset(name=str(obj.name) if obj.name is not None else "value")
    if not isinstance(obj, xr.Dataset):
        raise InputError(
            f"stack_sources: source {name!r} must be an xarray Dataset or DataArray, got "
            f"{type(obj).__name__}"
        )
    if not obj.data_vars:
        raise InputError(f"stack_sources: source {name!r} has no data variables")
    if static:
        if "time" in obj.dims:
            raise InputError(
                f"stack_sources: source {name!r} is named in static= but has a time axis of "
                f"{obj.sizes['time']} date(s); select one (ds.isel(time=0, drop=True)) or leave "
                "it out of static="
            )
        return obj
    if "time" not in obj.dims:
        raise MissingDimensionError(
            f"stack_sources: source {name!r} has no time axis (dims {tuple(obj.dims)}); give it "
            f"one (ds.expand_dims(time=[date])), or pass static=[{name!r}] if it does not change "
            "with time (a DEM, a land-cover map): its variables then become features of their own"
        )
    if not np.issubdtype(obj["time"].dtype, np.datetime64):
        raise TimeAxisError(
            f"stack_sources: the time coordinate of source {name!r} is {obj['time'].dtype}, not "
            "datetime; convert it with ds.assign_coords(time=pd.to_datetime(ds.time.values))"
        )
    return obj


def _pixel_area(gbox: Any) -> float:
    """Area of one pixel in m² (geographic grids: at the latitude of their centre)."""
    a = gbox.affine
    area = abs(a.a * a.e - a.b * a.d)
    if gbox.crs.geographic:
        lat = float(gbox.extent.centroid.points[0][1])
        metres = math.pi / 180 * 6371008.8  # one degree on the mean Earth radius
        return area * metres * metres * math.cos(math.radians(lat))
    axes = gbox.crs.proj.axis_info
    factor = float(axes[0].unit_conversion_factor) if axes else 1.0
    return area * factor * factor


def _footprints(boxes: Mapping[str, Any], crs: Any) -> dict[str, Any]:
    return {k: g.extent.to_crs(crs) for k, g in boxes.items()}


def _common_extent(boxes: Mapping[str, Any], crs: Any, extent: str) -> Any:
    feet = _footprints(boxes, crs)
    names = list(feet)
    if extent == "union":
        out = feet[names[0]]
        for k in names[1:]:
            out = out.union(feet[k])
        return out
    for i, a in enumerate(names):  # name the pair that does not overlap
        for b in names[i + 1 :]:
            if feet[a].intersection(feet[b]).area <= 0:
                ba = tuple(round(v, 4) for v in boxes[a].extent.to_crs("EPSG:4326").boundingbox)
                bb = tuple(round(v, 4) for v in boxes[b].extent.to_crs("EPSG:4326").boundingbox)
                raise NoOverlapError(
                    f"stack_sources: sources {a!r} and {b!r} do not overlap ({a} covers lon/lat "
                    f"{ba}, {b} covers {bb}); load them over the same area"
                )
    out = feet[names[0]]
    for k in names[1:]:
        out = out.intersection(feet[k])
    if out.area <= 0:
        raise NoOverlapError(
            f"stack_sources: the sources {names} overlap two by two but have no area in common; "
            "load them over the same area, or pass extent='union'"
        )
    return out


def _snap(base: Any, region: Any, extent: str) -> Any:
    """The window of ``base``'s pixel grid over ``region`` (intersection: whole pixels inside)."""
    from odc.geo.geobox import GeoBox

    inv = ~base.affine
    pts = np.asarray(region.to_crs(base.crs).exterior.points)
    col, row = _apply(inv, pts[:, 0], pts[:, 1])
    tol = 1e-3
    if extent == "union":
        c0, c1 = math.floor(col.min() + tol), math.ceil(col.max() - tol)
        r0, r1 = math.floor(row.min() + tol), math.ceil(row.max() - tol)
    else:
        c0, c1 = math.ceil(col.min() - tol), math.floor(col.max() + tol)
        r0, r1 = math.ceil(row.min() - tol), math.floor(row.max() + tol)
    if c1 <= c0 or r1 <= r0:
        raise NoOverlapError(
            "stack_sources: the sources have less than one whole pixel of the grid in common; "
            "load them over the same area, or pass extent='union'"
        )
    return GeoBox((r1 - r0, c1 - c0), _shifted(base.affine, c0, r0), base.crs)


def _apply(aff: Any, x: Any, y: Any) -> tuple[Any, Any]:
    """``aff`` applied to points (written out: affine 3 deprecates ``*`` for this)."""
    return aff.a * x + aff.b * y + aff.c, aff.d * x + aff.e * y + aff.f


def _shifted(aff: Any, col: int, row: int) -> Any:
    """The transform of the grid whose pixel (0, 0) is pixel (row, col) of ``aff``'s grid."""
    from affine import Affine

    c, f = _apply(aff, col, row)
    return Affine(aff.a, aff.b, c, aff.d, aff.e, f)


def target_geobox(
    sources: Mapping[str, xr.Dataset],
    *,
    like: Any = None,
    crs: Any = None,
    resolution: Any = None,
    extent: str | None = None,
) -> Any:
    """The GeoBox :func:`stack_sources` puts the sources on (see its parameters).

    Examples
    --------
    >>> import eoai
    >>> a, _ = eoai.datasets.synthetic_cube(shape=(8, 8), freq="60D", bands=["red"])
    >>> b, _ = eoai.datasets.synthetic_cube(shape=(4, 4), freq="60D", bands=["red"], resolution=20.0)
    >>> target_geobox({"a": a, "b": b}).shape
    Shape2d(x=8, y=8)
    """
    from odc.geo.geobox import GeoBox

    from .._crs import check_crs

    if extent is not None and extent not in EXTENTS:
        raise InputError(f"stack_sources: extent must be one of {EXTENTS}, got {extent!r}")
    boxes = {k: _geobox(v, k) for k, v in sources.items()}
    if like is not None and not isinstance(like, str):
        if crs is not None or resolution is not None or extent is not None:
            raise InputError(
                "stack_sources: like= a grid gives CRS, resolution and extent; pass crs= / "
                "resolution= / extent= only without it (or with like= a source name)"
            )
        if isinstance(like, GeoBox):
            gbox = like
        elif isinstance(like, (xr.Dataset, xr.DataArray)):
            gbox = _geobox(like if isinstance(like, xr.Dataset) else like.to_dataset(name="v"),
                           "like")  # fmt: skip
        else:
            raise InputError(
                "stack_sources: like= must be a source name, an odc-geo GeoBox or an xarray "
                f"object with a CRS, got {type(like).__name__}"
            )
        feet = _footprints(boxes, gbox.crs)
        outside = [k for k, f in feet.items() if f.intersection(gbox.extent).area <= 0]
        if outside:
            raise NoOverlapError(
                f"stack_sources: source(s) {outside} do not overlap the grid of like= (bounds "
                f"{tuple(round(v, 4) for v in gbox.boundingbox)} in {gbox.crs}); load them over "
                "that area"
            )
        return gbox
    if like is not None:
        if like not in boxes:
            raise InputError(
                f"stack_sources: like={like!r} is not a source; the sources are {list(boxes)}"
            )
        base_name = like
    else:  # the finest pixels; the first of equals (0.1 % apart)
        areas = {k: _pixel_area(g) for k, g in boxes.items()}
        smallest = min(areas.values())
        base_name = next(k for k, a in areas.items() if a <= smallest * 1.001)
    base = boxes[base_name]
    extent = extent or "intersection"
    if crs is None and resolution is None:
        return _snap(base, _common_extent(boxes, base.crs, extent), extent)
    out_crs = base.crs if crs is None else check_crs(crs, "stack_sources: crs")
    if resolution is None:
        if out_crs != base.crs:
            raise InputError(
                f"stack_sources: crs={crs!r} differs from the CRS of source {base_name!r}; pass "
                "resolution= too (in units of that CRS, e.g. resolution=10 for metres)"
            )
        resolution = base.resolution
    if isinstance(resolution, (int, float)) and not isinstance(resolution, bool):
        if not resolution > 0:
            raise InputError(f"stack_sources: resolution must be > 0, got {resolution}")
    region = _common_extent(boxes, out_crs, extent)
    return GeoBox.from_geopolygon(region, resolution=resolution, crs=out_crs)


def _aligned_window(src: Any, dst: Any) -> tuple[int, int] | None:
    """(row, col) offset of ``dst`` in ``src``'s pixel grid when it is a whole-pixel window."""
    if src.crs != dst.crs:
        return None
    a, b = src.affine, dst.affine
    if not all(math.isclose(getattr(a, k), getattr(b, k), rel_tol=1e-9) for k in "abde"):
        return None
    col, row = _apply(~a, b.c, b.f)
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return int(round(row)), int(round(col))


def _window(var: xr.DataArray, off: tuple[int, int], shape: Any, ydim: str, xdim: str):
    """The window of ``var`` (whole pixels; NaN / nodata outside) without resampling."""
    r0, c0 = off
    ny, nx = int(shape[0]), int(shape[1])
    inside = (
        r0 >= 0 and c0 >= 0 and r0 + ny <= var.sizes[ydim] and c0 + nx <= var.sizes[xdim]
    )  # fmt: skip
    if inside:
        return var.isel({ydim: slice(r0, r0 + ny), xdim: slice(c0, c0 + nx)})
    return None  # padding: left to the (exact, nearest) reprojection of aligned grids


def _resampling_of(resampling: Any, source: str, var: str) -> str:
    if isinstance(resampling, Mapping):
        method = resampling.get(f"{source}.{var}", resampling.get(source, "bilinear"))
    else:
        method = resampling
    if method not in RESAMPLING:
        raise InputError(
            f"stack_sources: unknown resampling {method!r} for {source}.{var}; use one of "
            f"{', '.join(RESAMPLING)}"
        )
    return method


def _declared_nodata(var: xr.DataArray) -> float | None:
    for key in ("nodata", "_FillValue", "missing_value"):
        if key in var.attrs:
            try:
                return float(var.attrs[key])
            except (TypeError, ValueError):
                return None
    return None


def _reproject_var(
    var: xr.DataArray, name: str, source: str, src_gbox: Any, dst: Any, method: str
) -> tuple[xr.DataArray, dict[str, Any]]:
    """One variable on ``dst``: (values, what was done)."""
    from odc.geo.xr import xr_reproject

    from ..sar.units import _is_backscatter, backscatter_units, convert_units
    from .presets import is_class_or_mask

    ydim, xdim = src_gbox.dimensions if var.odc.spatial_dims is None else var.odc.spatial_dims
    attrs = dict(var.attrs)
    var = var.transpose(..., ydim, xdim)
    info: dict[str, Any] = {"resampling": method}
    off = _aligned_window(src_gbox, dst)
    categorical = is_class_or_mask(var)
    if categorical:
        info["resampling"] = method = "nearest"
    if off is not None:
        win = _window(var, off, dst.shape, ydim, xdim)
        if win is not None:
            info["resampling"] = "none (window of the source grid)"
            return win, info
        method = "nearest"  # aligned grids: nearest copies the pixels exactly
        info["resampling"] = "none (window of the source grid, padded)"
    nodata = _declared_nodata(var)
    if categorical or not np.issubdtype(var.dtype, np.number):
        if np.issubdtype(var.dtype, np.integer) and nodata is None:
            raise InputError(
                f"stack_sources: class/mask variable {source}.{name} ({var.dtype}) declares no "
                "nodata, so pixels outside it could not be told from a class; set "
                f"ds[{name!r}].attrs['nodata'] = <an unused code>"
            )
        out = xr_reproject(var, dst, resampling="nearest", dst_nodata=nodata)
        out.attrs = attrs
        return out, info
    if not np.issubdtype(var.dtype, np.floating):  # integer measurements: float32, nodata NaN
        info["dtype"] = f"{var.dtype} -> float32"
        var = var.astype("float32")
    if nodata is not None and not math.isnan(nodata):
        var = var.where(var != nodata)
    units = None
    if _is_backscatter(name, var, None) and method not in _ORDER_STATISTICS:
        units = backscatter_units(var, None, "stack_sources")
        if units != "linear":
            var = convert_units(var, "linear", units=units, nodata=None)
            info["averaged_in"] = f"linear power (from {units})"
    out = xr_reproject(var, dst, resampling=method, src_nodata=np.nan, dst_nodata=np.nan)
    if units is not None and units != "linear":
        out = convert_units(out, units, units="linear", nodata=None)
    attrs.pop("_FillValue", None)
    if "nodata" in attrs or nodata is not None:
        attrs["nodata"] = np.nan
    out.attrs = attrs
    return out, info


def stack_sources(
    sources: Mapping[str, xr.Dataset | xr.DataArray],
    *,
    like: Any = None,
    crs: Any = None,
    resolution: Any = None,
    extent: str | None = None,
    resampling: str | Mapping[str, str] = "bilinear",
    static: Sequence[str] = (),
    fine: str | Sequence[str] = (),
) -> xr.DataTree:
    """Put several sources (sensors, products, a DEM) on one grid, each with its own dates.

    Parameters
    ----------
    sources
        ``{name: cube}``: Datasets (or DataArrays) with a CRS (odc-geo: ``spatial_ref``, as
        :func:`eoai.load` gives) and a ``time`` axis, in any CRS, resolution and pixel alignment.
        Names become the children of the tree and the prefix of the features (``"s2.red_..."``):
        non-empty, without ``"."`` or ``"/"``.
    like
        The grid: a source name (its CRS, resolution and pixel alignment, over ``extent``), an
        odc-geo GeoBox or an xarray object with a CRS (exactly that grid). Default: the source with
        the finest pixels (smallest pixel area, the first of equals).
    crs, resolution
        A new grid instead (resolution in units of ``crs``; default: those of the ``like`` /
        finest source), over ``extent``, with pixel edges on multiples of the resolution. The grid
        encloses the extent: where the footprints are not axis-aligned in ``crs`` (a lon/lat patch
        in UTM), its edge pixels may lack data from a source (NaN).
    extent
        ``"intersection"`` (default: whole pixels inside every source, so every pixel can have
        data from every source) or ``"union"`` (NaN where a source has no data); not with
        ``like=`` a grid.
    resampling
        Method for continuous variables (``"bilinear"``, ``"average"`` for a coarser grid,
        ``"nearest"``...), or a mapping ``{source: method}`` / ``{"source.var": method}``
        (others: ``"bilinear"``). Class and mask variables always take ``"nearest"``.
    static
        Sources without a time axis (a DEM): their variables are ``(y, x)`` and become one
        feature each (``"dem.elevation"``).
    fine
        Sources kept at their own, finer resolution (a very-high-resolution or panchromatic image
        for a patch branch, :func:`eoai.ml.extract` ``patch=``): one date (no ``time`` axis), on a
        grid whose pixels divide the base grid's by an integer ratio and whose edges fall on its
        pixel edges (:func:`fine_geobox`; reproject it onto that grid first otherwise). Its
        variables get dims ``y_fine`` / ``x_fine`` (the window over the base grid, NaN where the
        image does not reach) and the child the attribute ``eoai:fine_ratio``. Fine sources do
        not take part in choosing the base grid.

    Returns
    -------
    xarray.DataTree
        Root: the grid coordinates (inherited by the children) and ``attrs`` ``eoai:method``,
        ``eoai:parameters``, ``eoai:sources``. One child per source, in the order given: its
        variables on the grid (lazy for dask input), its own ``time`` axis, its attrs (units of
        SAR bands kept) with provenance (``eoai:lineage``; ``eoai:stack`` says per variable how
        it was resampled).

    Raises
    ------
    eoai.errors.InputError
        No sources, a bad name, ``static=`` naming an unknown source or one with a time axis, an
        unknown ``resampling`` / ``extent``, a SAR band of unknown units, an integer class
        variable without declared nodata.
    eoai.errors.MissingDimensionError
        A source has no time axis and is not in ``static=``.
    eoai.errors.TimeAxisError
        A time coordinate is not datetime.
    eoai.errors.CRSError
        A source has no CRS or is in radar geometry; ``crs=`` is not a CRS.
    eoai.errors.NoOverlapError
        Two sources (or a source and the ``like=`` grid) do not overlap; the message names them.
    eoai.errors.CRSError
        A ``fine=`` source whose pixels are not an integer division of the base grid's, or whose
        grid is shifted or in another CRS (the message gives the ratio or offset found).

    Notes
    -----
    Backscatter in dB or amplitude is resampled in linear power and converted back (see
    :mod:`eoai.sar.units`): a bilinear or average weight applied to dB values would average
    logarithms. A tree is used rather than one Dataset because each source keeps its own ``time``
    coordinate under its own name (ARCHITECTURE.md explains the choice).

    Examples
    --------
    >>> import eoai
    >>> s2, _ = eoai.datasets.synthetic_cube(shape=(8, 8), start="2021-05-01", end="2021-06-30",
    ...                                      freq="10D", bands=["red"], seed=1)
    >>> s1, _ = eoai.datasets.synthetic_cube(shape=(4, 4), start="2021-05-03", end="2021-06-30",
    ...                                      freq="12D", bands=["red"], resolution=20.0, seed=2)
    >>> s1 = s1[["red"]].rename(red="vv").assign(vv=lambda d: -10 + d.vv)
    >>> s1["vv"].attrs["units"] = "dB"
    >>> tree = stack_sources({"s2": s2, "s1": s1})
    >>> tree["s1"].vv.attrs["units"], tree["s1"].time.size, tree["s2"].time.size
    ('dB', 5, 7)
    >>> tree["s1"].to_dataset().odc.geobox == tree["s2"].to_dataset().odc.geobox
    True
    """
    import odc.geo.xr  # noqa: F401
    from odc.geo.xr import xr_coords

    if not isinstance(sources, Mapping):
        raise InputError(
            "stack_sources: sources must be a mapping {name: cube}, e.g. {'s2': s2, 's1': s1}, "
            f"got {type(sources).__name__}"
        )
    if not sources:
        raise InputError("stack_sources: no sources given; pass {'s2': s2_cube, 's1': s1_cube}")
    if isinstance(static, str):
        static = [static]
    fine = [fine] if isinstance(fine, str) else list(fine)
    for what, names in (("static", static), ("fine", fine)):
        unknown = [s for s in names if s not in sources]
        if unknown:
            raise InputError(
                f"stack_sources: {what}={list(names)} names {unknown}, not sources ({list(sources)})"
            )
    if fine and len(fine) == len(sources):
        raise InputError(
            f"stack_sources: fine={fine} names every source; the base grid comes from the others "
            "(e.g. fine='vhr' with {'s2': s2, 'vhr': vhr})"
        )
    timed = [k for k in fine if "time" in getattr(sources[k], "dims", ())]
    if timed:
        raise InputError(
            f"stack_sources: fine source(s) {timed} have a time axis; a fine source is one image: "
            "select one date (ds.isel(time=0, drop=True))"
        )
    cubes = {
        _check_name(k): _as_source(v, k, k in static or k in fine) for k, v in sources.items()
    }  # fmt: skip
    fine_cubes = {k: cubes.pop(k) for k in fine}
    if isinstance(resampling, Mapping):
        bad = [k for k in resampling if k.split(".")[0] not in cubes]
        if bad:
            raise InputError(
                f"stack_sources: resampling= names {bad}, not sources ({list(cubes)}); key it by "
                "source ('s2') or source and variable ('s2.red')"
            )
    else:
        _resampling_of(resampling, "", "")
    dst = target_geobox(cubes, like=like, crs=crs, resolution=resolution, extent=extent)
    ydim, xdim = dst.dimensions
    grid = xr_coords(dst, crs_coord_name="spatial_ref")
    children: dict[str, xr.Dataset] = {}
    for name, ds in cubes.items():
        src_gbox = _geobox(ds, name)
        sdims = ds.odc.spatial_dims
        out_vars, how = {}, {}
        for vname, var in ds.data_vars.items():
            if sdims is None or not set(sdims) <= set(var.dims):
                out_vars[vname] = var  # not spatial (e.g. a per-date value): kept as it is
                continue
            method = _resampling_of(resampling, name, str(vname))
            out, info = _reproject_var(var, str(vname), name, src_gbox, dst, method)
            out = out.rename(
                {d: n for d, n in zip(out.odc.spatial_dims, (ydim, xdim), strict=True) if d != n}
            )
            out_vars[vname] = out.drop_vars([ydim, xdim, "spatial_ref"], errors="ignore")
            how[str(vname)] = info
        child = xr.Dataset(out_vars).assign_coords(grid)
        child = child.drop_vars(
            [c for c in child.coords if c not in grid and {ydim, xdim} & set(child[c].dims)]
        )
        params = {"source": name, "grid": _grid_json(dst), "static": name in static}
        child.attrs = provenance([ds.attrs], "stack_sources", params)
        child.attrs["eoai:stack"] = json.dumps(how)
        children[name] = child
    for name, ds in fine_cubes.items():
        children[name] = _fine_child(ds, name, dst)
    children = {k: children[k] for k in sources}  # the order given
    root = xr.Dataset(coords=grid)
    root.attrs = {
        **step(
            "stack_sources",
            {
                "like": like if isinstance(like, str) or like is None else "grid",
                "crs": None if crs is None else str(crs),
                "resolution": None if resolution is None else str(resolution),
                "extent": extent
                or ("intersection" if like is None or isinstance(like, str) else None),
                "resampling": dict(resampling) if isinstance(resampling, Mapping) else resampling,
                "static": list(static),
                **({"fine": fine} if fine else {}),
                "grid": _grid_json(dst),
            },
        ),
        "eoai:sources": list(children),
    }
    return xr.DataTree.from_dict({"/": root, **children})


def fine_geobox(gbox: Any, ratio: int) -> Any:
    """The grid of ``ratio`` x ``ratio`` fine pixels in every pixel of ``gbox`` (same extent).

    Reproject a very-high-resolution image onto it (``odc.geo.xr.xr_reproject(vhr,
    fine_geobox(base, 4))``) to stack it as a ``fine=`` source of :func:`stack_sources`.

    Examples
    --------
    >>> from odc.geo.geobox import GeoBox
    >>> base = GeoBox.from_bbox((0, 0, 100, 50), "EPSG:32633", resolution=10)
    >>> g = fine_geobox(base, 4)
    >>> g.shape, g.resolution.x
    (Shape2d(x=40, y=20), 2.5)
    """
    from affine import Affine
    from odc.geo.geobox import GeoBox

    if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 1:
        raise InputError(f"fine_geobox: ratio must be an integer >= 1, got {ratio!r}")
    a = gbox.affine
    aff = Affine(a.a / ratio, a.b, a.c, a.d, a.e / ratio, a.f)
    return GeoBox((gbox.shape[0] * ratio, gbox.shape[1] * ratio), aff, gbox.crs)


def _fine_ratio(src: Any, dst: Any, name: str) -> tuple[int, int, int]:
    """(ratio, row, col): the fine grid ``src`` divides ``dst``'s pixels by ``ratio``; ``dst``'s
    first pixel starts at fine pixel (row, col). Raises when the grids do not nest."""
    fix = (
        f"reproject it onto a grid nested in the base grid first: odc.geo.xr.xr_reproject("
        f"{name}, eoai.io.stack.fine_geobox(base_geobox, ratio)) (base_geobox: "
        "tree.to_dataset().odc.geobox)"
    )
    if src.crs != dst.crs:
        raise CRSError(
            f"stack_sources: fine source {name!r} is in {src.crs}, the base grid in {dst.crs}; "
            + fix
        )
    a, b = src.affine, dst.affine
    if a.b or a.d or b.b or b.d:
        raise CRSError(f"stack_sources: fine source {name!r} or the base grid is rotated; {fix}")
    rx, ry = b.a / a.a, b.e / a.e
    ratio = round(rx)
    if ratio < 1 or abs(rx - ratio) > 1e-6 or abs(ry - ratio) > 1e-6:
        raise CRSError(
            f"stack_sources: the pixels of fine source {name!r} ({abs(a.a):g} x {abs(a.e):g}) do "
            f"not divide the base grid's ({abs(b.a):g} x {abs(b.e):g}) by an integer ratio (x "
            f"{rx:.4g}, y {ry:.4g}); {fix}"
        )
    col, row = _apply(~a, b.c, b.f)
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        raise CRSError(
            f"stack_sources: the pixel edges of fine source {name!r} are shifted by ({col % 1:.3f}, "
            f"{row % 1:.3f}) of its pixels from the base grid's; {fix}"
        )
    return ratio, int(round(row)), int(round(col))


def _fine_child(ds: xr.Dataset, name: str, dst: Any) -> xr.Dataset:
    """A fine source cut to the window of ``dst`` at its own resolution (dims ``y_fine``...)."""
    src = _geobox(ds, name)
    ratio, r0, c0 = _fine_ratio(src, dst, name)
    ydim, xdim = dst.dimensions
    fy, fx = ydim + FINE_SUFFIX, xdim + FINE_SUFFIX
    sy, sx = ds.odc.spatial_dims
    ny, nx = int(dst.shape[0]) * ratio, int(dst.shape[1]) * ratio
    fgb = fine_geobox(dst, ratio)
    a = fgb.affine
    coords = {fy: a.e * (np.arange(ny) + 0.5) + a.f, fx: a.a * (np.arange(nx) + 0.5) + a.c}
    out: dict[str, xr.DataArray] = {}
    for vname, var in ds.data_vars.items():
        if not {sy, sx} <= set(var.dims):
            continue
        var = var.transpose(..., sy, sx)
        if not np.issubdtype(var.dtype, np.floating):
            nodata = _declared_nodata(var)
            var = var.astype("float32")
            if nodata is not None:
                var = var.where(var != nodata)
        h, w = var.sizes[sy], var.sizes[sx]
        top, left = max(0, -r0), max(0, -c0)  # NaN rows / cols before the image
        win = var.isel({sy: slice(max(0, r0), max(0, min(h, r0 + ny))),
                        sx: slice(max(0, c0), max(0, min(w, c0 + nx)))})  # fmt: skip
        win = win.drop_vars([c for c in win.coords if set(win[c].dims) & {sy, sx}])
        pad = {sy: (top, ny - top - win.sizes[sy]), sx: (left, nx - left - win.sizes[sx])}
        if win.sizes[sy] == 0 or win.sizes[sx] == 0:
            raise NoOverlapError(
                f"stack_sources: fine source {name!r} does not overlap the base grid; load it "
                "over the same area"
            )
        if any(p != (0, 0) for p in pad.values()):
            win = win.pad(pad, constant_values=np.nan)
        v = win.rename({sy: fy, sx: fx}).assign_coords(coords)
        v.attrs = {k: val for k, val in var.attrs.items() if k != "_FillValue"}
        out[str(vname)] = v
    if not out:
        raise InputError(f"stack_sources: fine source {name!r} has no variable on its pixel grid")
    child = xr.Dataset(out)
    params = {"source": name, "grid": _grid_json(fgb), "fine_ratio": ratio}
    child.attrs = provenance([ds.attrs], "stack_sources", params)
    child.attrs["eoai:fine_ratio"] = int(ratio)
    child.attrs["eoai:stack"] = json.dumps(
        {str(k): {"resampling": f"none (window of the source grid, 1/{ratio} of a pixel)"}
         for k in out}
    )  # fmt: skip
    return child


def fine_sources(tree: Any) -> dict[str, tuple[xr.Dataset, int]]:
    """``{name: (Dataset, ratio)}`` of the ``fine=`` sources of a sources tree (may be empty).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"pan": (("y_fine", "x_fine"), np.zeros((4, 4)))}, attrs={"eoai:fine_ratio": 2})
    >>> {k: (list(d.data_vars), r) for k, (d, r) in fine_sources(xr.DataTree.from_dict({"vhr": ds})).items()}
    {'vhr': (['pan'], 2)}
    """
    if not isinstance(tree, xr.DataTree):
        return {}
    out = {}
    for k, c in tree.children.items():
        ds = c.to_dataset(inherit=False)
        if "eoai:fine_ratio" in ds.attrs or any(str(d).endswith(FINE_SUFFIX) for d in ds.dims):
            ratio = int(ds.attrs.get("eoai:fine_ratio", 0))
            if ratio < 1:
                raise InputError(
                    f"source {k!r} has {FINE_SUFFIX} dims but no eoai:fine_ratio attribute; "
                    "stack it with eoai.stack_sources(..., fine=[...])"
                )
            out[str(k)] = (ds, ratio)
    return out


def _grid_json(gbox: Any) -> dict[str, Any]:
    return {
        "crs": f"EPSG:{gbox.crs.epsg}" if gbox.crs.epsg else gbox.crs.to_wkt(),
        "shape": [int(gbox.shape[0]), int(gbox.shape[1])],
        "transform": [float(v) for v in tuple(gbox.affine)[:6]],
    }


def sources_of(tree: Any, func: str = "eoai") -> dict[str, xr.Dataset]:
    """``{name: Dataset}`` of the children of a sources tree (grid coordinates included).

    Raises
    ------
    eoai.errors.InputError
        Not a DataTree, no children, nested groups, or data variables at the root.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = xr.DataTree.from_dict({"a": xr.Dataset({"v": ("x", np.zeros(2))})})
    >>> list(sources_of(t))
    ['a']
    """
    if not isinstance(tree, xr.DataTree):
        raise InputError(f"{func}: expected a DataTree of sources (stack_sources), got "
                         f"{type(tree).__name__}")  # fmt: skip
    if tree.data_vars:
        raise InputError(
            f"{func}: the root of the tree has data variables {list(tree.data_vars)}; sources "
            "must be children (tree['s2'], tree['s1']), as eoai.stack_sources makes them"
        )
    if not tree.children:
        raise InputError(f"{func}: the tree has no sources (children); make it with "
                         "eoai.stack_sources({'s2': s2, 's1': s1})")  # fmt: skip
    nested = [k for k, c in tree.children.items() if c.children]
    if nested:
        raise InputError(f"{func}: sources {nested} have children of their own; a sources tree "
                         "has one level (tree['s2'], tree['s1'])")  # fmt: skip
    return {str(k): c.to_dataset() for k, c in tree.children.items()}


def map_sources(
    tree: xr.DataTree, func: Any, /, *args: Any, static: bool = False, **kwargs: Any
) -> xr.DataTree:
    """Apply ``func(ds, *args, **kwargs)`` to every source of a tree; a new tree on the same grid.

    Keyword values given as a mapping with the source names as keys are given per source
    (``freq={"s2": "10D", "s1": "12D"}``). Sources without a ``time`` axis are kept unchanged
    unless ``static=True``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> ds = xr.Dataset({"v": (("time", "x"), np.ones((2, 3)))}, coords={"time": pd.to_datetime(["2021-01-01", "2021-01-05"])})
    >>> t = xr.DataTree.from_dict({"a": ds, "b": ds * 2})
    >>> out = map_sources(t, lambda d, k: d * k, k={"a": 10, "b": 100})
    >>> float(out["a"].v[0, 0]), float(out["b"].v[0, 0])
    (10.0, 200.0)
    """
    cubes = sources_of(tree, "map_sources")
    out: dict[str, xr.Dataset] = {}
    for name, ds in cubes.items():
        if "time" not in ds.dims and not static:
            out[name] = tree.children[name].to_dataset(inherit=False)
            continue
        kw = {}
        for k, v in kwargs.items():
            if isinstance(v, Mapping) and v and set(v) <= set(cubes):  # one value per source
                if name in v:
                    kw[k] = v[name]
            else:
                kw[k] = v
        res = func(ds, *args, **kw)
        if not isinstance(res, xr.Dataset):
            raise InputError(
                f"map_sources: {getattr(func, '__name__', func)!r} returned "
                f"{type(res).__name__} for source {name!r}; it must return a Dataset"
            )
        out[name] = res
    root = tree.to_dataset(inherit=False)
    try:
        return xr.DataTree.from_dict({"/": root, **out})
    except ValueError as err:  # the children no longer align with the grid of the root
        raise InputError(
            f"map_sources: the results no longer share the grid of the tree ({err}); functions "
            "mapped over sources must keep the y / x coordinates"
        ) from None


def gapfill_sources(
    tree: xr.DataTree,
    method: str = "linear",
    *,
    freq: str | Mapping[str, str] | None = None,
    dates: Any = None,
    **kwargs: Any,
) -> xr.DataTree:
    """Gap-fill every source of a tree onto its own date grid (:func:`eoai.timeseries.gapfill.gapfill`).

    Parameters
    ----------
    tree
        A sources tree (:func:`stack_sources`).
    method
        Gap-filling method (``"linear"``, ``"whittaker"``, ``"savgol"``, ``"harmonic"``), or a
        mapping ``{source: method}``.
    freq, dates
        The output dates, one for all sources or a mapping ``{source: value}`` (e.g.
        ``freq={"s2": "10D", "s1": "12D"}``); see :func:`~eoai.timeseries.gapfill.gapfill`.
    **kwargs
        Other :func:`~eoai.timeseries.gapfill.gapfill` parameters (each may be a mapping by
        source too).

    Returns
    -------
    xarray.DataTree
        The same grid; each source with a time axis on its new dates (lazy for dask input);
        static sources unchanged.

    Examples
    --------
    >>> import eoai
    >>> s2, _ = eoai.datasets.synthetic_cube(shape=(4, 4), start="2021-05-01", end="2021-06-30",
    ...                                      freq="5D", bands=["red"], seed=1)
    >>> s1, _ = eoai.datasets.synthetic_cube(shape=(4, 4), start="2021-05-03", end="2021-06-30",
    ...                                      freq="12D", bands=["red"], seed=2, cloud_fraction=0)
    >>> tree = stack_sources({"s2": s2[["red"]], "s1": s1[["red"]].rename(red="nir")})
    >>> out = gapfill_sources(tree, freq={"s2": "10D", "s1": "24D"})
    >>> out["s2"].time.size, out["s1"].time.size
    (7, 3)
    """
    from ..timeseries.gapfill import gapfill

    return map_sources(tree, gapfill, method=method, freq=freq, dates=dates, **kwargs)
