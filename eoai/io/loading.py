"""Lazy loading of STAC items into an xarray cube with odc-stac: bands, scaling, masks.

Examples
--------
>>> import eoai
>>> cube = eoai.load("../shared/data/earthsearch_l2a/catalog.json", ["red", "nir"],
...                  bbox=(16, 46, 16.1, 46.1), resolution=120)  # doctest: +SKIP
>>> dict(cube.sizes)  # doctest: +SKIP
{'time': 5, 'y': 94, 'x': 67}
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import (
    DataSkippedWarning,
    EmptySearchError,
    InputError,
    NoOverlapError,
    UnknownBandError,
)
from . import catalog as _catalog
from .bands import available_bands, resolve_bands
from .masks import KINDS, MaskSpec, as_spec, valid_fraction
from .masks import mask as apply_mask
from .presets import MASK_BANDS, PRESETS, Preset, band_scaling, get_preset

_GROUPBY = ("time", "solar_day", "id")
DEFAULT_CHUNKS = {"time": 1, "x": 2048, "y": 2048}


def _is_static_path(source: Any) -> bool:
    """A local path (not a URL, not a preset name)."""
    if not isinstance(source, str | Path):
        return False
    text = str(source)
    if "://" in text:
        return text.startswith("file://")
    return Path(text).exists() or text.endswith(".json") or text.lower() not in PRESETS


def _is_local(href: str) -> bool:
    return "://" not in href or href.startswith("file://")


def _configure_local_reads(items: Sequence[Any], keys: Sequence[str]) -> str:
    """Let GDAL read sidecar files (``.aux.xml``) of local rasters.

    Returns ``"all"``, ``"some"`` or ``"none"``: which of the rasters are local files.
    """
    hrefs = [
        it.assets[k].get_absolute_href() or it.assets[k].href
        for it in items
        for k in keys
        if k in it.assets
    ]
    local = [_is_local(h) for h in hrefs]
    if not any(local):
        return "none"
    import odc.stac

    client = None
    if "distributed" in sys.modules:  # no client can run unless distributed was imported
        try:  # also configure dask.distributed workers when a client is running
            from distributed import default_client

            client = default_client()
        except Exception:
            client = None
    odc.stac.configure_rio(
        cloud_defaults=False, GDAL_DISABLE_READDIR_ON_OPEN="FALSE", client=client
    )
    return "all" if all(local) else "some"


def _sign_if_needed(items: list[Any], preset: Preset | None) -> list[Any]:
    needs = (preset is not None and preset.sign) or any(
        "blob.core.windows.net" in a.href and "?" not in a.href
        for it in items[:1]
        for a in it.assets.values()
    )
    if not needs:
        return items
    try:
        import planetary_computer
    except ImportError:
        warnings.warn(
            "these Planetary Computer items need signed URLs: pip install planetary-computer "
            "(reads will fail with HTTP 403 otherwise)",
            stacklevel=3,
        )
        return items
    return [planetary_computer.sign(it) for it in items]


def _find_mask(items: Sequence[Any], mask: Any) -> tuple[MaskSpec | None, str | None]:
    """Mask spec and asset key, from mask='auto' / kind / MaskSpec / None."""
    if mask is None or mask is False:
        return None, None
    names = available_bands(items)
    lower = {k.lower(): v for k, v in names.items()}
    if isinstance(mask, str) and mask == "auto":
        for kind in KINDS:
            key = names.get(kind) or lower.get(kind)
            if key is not None:
                return MaskSpec.default(kind), key
        return None, None
    spec = as_spec(mask)
    key = names.get(spec.band_name) or lower.get(spec.band_name.lower())
    if key is None:
        raise UnknownBandError(
            f"mask band {spec.band_name!r} ({spec.kind}) is not in these items; available bands: "
            f"{', '.join(sorted(names, key=str.lower))}. Use mask=None to load without a mask."
        )
    return spec, key


def _check_args(bands, resolution, groupby, min_valid_fraction, chunks, keep_mask):
    if bands is not None and not isinstance(bands, str | Sequence):
        raise InputError(f"bands must be a list of names, got {bands!r}")
    if resolution is not None:
        res = resolution if isinstance(resolution, Sequence) else [resolution]
        if not all(isinstance(r, int | float) and r > 0 for r in res):
            raise InputError(f"resolution must be a positive number (CRS units), got {resolution}")
    if groupby not in _GROUPBY and not callable(groupby) and groupby is not None:
        raise InputError(f"groupby must be one of {_GROUPBY}, None or a callable, got {groupby!r}")
    if min_valid_fraction is not None and not 0 <= float(min_valid_fraction) <= 1:
        raise InputError(f"min_valid_fraction must be in [0, 1], got {min_valid_fraction}")
    if chunks is not None and not isinstance(chunks, dict):
        raise InputError(f"chunks must be a dict such as {{'x': 2048, 'y': 2048}}, got {chunks!r}")
    if not isinstance(keep_mask, bool):
        raise InputError(f"keep_mask must be True or False, got {keep_mask!r}")


def default_chunks(
    shape: Sequence[int],
    n_dates: int | None = None,
    n_bands: int = 1,
    threads: int | None = None,
) -> dict[str, int]:
    """Default dask chunks of :func:`load` (local files) for a grid of ``(ny, nx)`` pixels.

    2048 x 2048 pixels in space. In time, as many dates as fit in the pixels of one
    2048 x 2048 date (never more memory per chunk than one such date), so that small areas get
    few chunks (fewer tasks, less rechunking for time-series work); when ``n_dates`` is known,
    no more than needed to keep one chunk per thread (``threads``, default dask's thread count)
    over the ``n_bands`` bands, so reads still run in parallel. :func:`load` uses one date per
    chunk for remote files (latency-bound reads) and with ``min_valid_fraction``.

    Examples
    --------
    >>> default_chunks((10980, 10980))
    {'time': 1, 'y': 2048, 'x': 2048}
    >>> default_chunks((512, 512))
    {'time': 16, 'y': 2048, 'x': 2048}
    >>> default_chunks((512, 512), n_dates=60, n_bands=4, threads=8)
    {'time': 16, 'y': 2048, 'x': 2048}
    >>> default_chunks((512, 512), n_dates=60, n_bands=1, threads=16)
    {'time': 4, 'y': 2048, 'x': 2048}
    """
    side = DEFAULT_CHUNKS["y"]
    ny, nx = (int(n) for n in shape)
    per_date = max(1, min(side, ny) * min(side, nx))
    dates = max(1, side * side // per_date)
    if n_dates is not None:
        if threads is None:
            import os

            import dask

            threads = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
        dates = min(dates, max(1, -(-int(n_dates) * int(n_bands) // max(1, int(threads)))))
    return {"time": dates, "y": side, "x": side}


def _output_geobox(items: list[Any], bands: list[str], odc_kw: dict) -> Any:
    """The pixel grid ``odc.stac.load(items, bands, **odc_kw)`` loads onto (None if unknown)."""
    import odc.stac

    try:
        parsed = list(odc.stac.parse_items(items))
        return odc.stac.output_geobox(
            parsed,
            bands=bands,
            crs=odc_kw.get("crs"),
            resolution=odc_kw.get("resolution"),
            geopolygon=odc_kw.get("geopolygon"),
            bbox=odc_kw.get("bbox"),
        )
    except Exception:  # odc.stac.load then raises its own, explicit error
        return None


def _scale_block(dn: np.ndarray, scale: float, offset: float, nodata: Any) -> np.ndarray:
    """One chunk: ``DN * scale + offset`` as float32, nodata -> NaN (in place, one pass each)."""
    out = dn.astype(np.float32)
    if scale != 1.0:
        out *= np.float32(scale)
    if offset != 0.0:
        out += np.float32(offset)
    if nodata is not None:
        out[dn == nodata] = np.nan
    return out


def _to_float(raw: xr.DataArray, scale: float, offset: float) -> xr.Variable:
    """DN -> float32 ``DN * scale + offset``, nodata -> NaN (never 0); one task per chunk."""
    nodata = raw.attrs.get("nodata")
    if nodata is not None and isinstance(nodata, float) and np.isnan(nodata):
        nodata = None  # float data already NaN there
    kw = dict(scale=float(scale), offset=float(offset), nodata=nodata)
    dn = raw.data
    if isinstance(dn, np.ndarray):
        data = _scale_block(dn, **kw)
    else:
        import dask.array as dsa
        from dask.base import tokenize

        # explicit name and meta: dask need not hash the function nor call it on a dummy
        data = dsa.map_blocks(
            _scale_block,
            dn,
            dtype=np.float32,
            meta=np.empty((0,) * dn.ndim, np.float32),
            name=f"eoai-scale-{tokenize(dn.name, *kw.values())}",
            **kw,
        )
    attrs = {k: v for k, v in raw.attrs.items() if k != "nodata"}
    attrs.update({"nodata": np.nan, "scale_factor_applied": scale, "add_offset_applied": offset})
    return xr.Variable(raw.dims, data, attrs)


def load(
    source: Any,
    bands: str | Sequence[str] | None = None,
    *,
    collections: str | Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
    geometry: Any = None,
    datetime: Any = None,
    resolution: float | None = None,
    crs: Any = None,
    chunks: dict | None = None,
    groupby: str | None = "solar_day",
    mask: MaskSpec | str | None = "auto",
    keep_mask: bool = False,
    min_valid_fraction: float | None = None,
    preset: str | Preset | None = None,
    geobox: Any = None,
    **search_kw: Any,
) -> xr.Dataset:
    """Load STAC items lazily into a float32 reflectance cube ``Dataset(time, y, x)``.

    Parameters
    ----------
    source : items, ItemCollection, path/URL of a static catalog, STAC API URL or preset name
        Catalogs and APIs are first searched with :func:`eoai.search` (``collections``, ``bbox``,
        ``geometry``, ``datetime`` and ``**search_kw``); items in memory are filtered the same way.
    bands : str or list of str, optional
        Common names (``red``, ``nir``, ``swir16``, ``scl``...), band ids (``B04``) or asset keys;
        default every data asset. Each variable is named as asked.
    collections, bbox, geometry, datetime
        Search filters; ``bbox`` (degrees) / ``geometry`` (GeoJSON, EPSG:4326) also crop the cube.
    resolution : float, optional
        Pixel size in units of ``crs`` (default: the finest native resolution).
    crs : str or int, optional
        Output CRS (default the items' CRS, e.g. UTM).
    chunks : dict, optional
        Dask chunks; default :func:`default_chunks`: 2048 x 2048 pixels and as many dates per
        chunk as fit in the pixels of one 2048 x 2048 date (one date per chunk on large
        grids, and always with ``min_valid_fraction``). The result is always lazy.
    groupby : {"solar_day", "time", "id"}
        How items become time steps; ``"solar_day"`` mosaics the tiles of one overpass.
    mask : "auto", "scl", "clm", "qa_pixel", MaskSpec or None
        Cloud/shadow/no-data mask (see :mod:`eoai.io.masks`). ``"auto"`` uses the mask asset the
        items have (``scl``, then ``clm``, then ``qa_pixel``) and loads unmasked if none; masked
        pixels become NaN.
    keep_mask : bool
        Keep the mask band (integer classes/bits, ``attrs["eoai:mask_kind"]``) as a variable.
    min_valid_fraction : float, optional
        Drop dates whose fraction of valid pixels (from the mask band) is below this. **This is
        the one computation done at load time**: only the mask band's graph is computed to choose
        the dates; the other bands stay lazy and dropped dates are never read. A
        :class:`~eoai.errors.DataSkippedWarning` gives the count of dates dropped.
    preset : str, optional
        ``"earth-search"``, ``"planetary-computer"``, ``"cdse"``, ``"theia"``
        (:mod:`eoai.io.presets`).
    geobox : odc.geo.GeoBox or xarray object, optional
        Load onto exactly this pixel grid (or the grid of a cube: ``geobox=other_cube``), e.g.
        to align two collections; overrides ``resolution``/``crs`` and the crop of ``bbox``.
    **search_kw
        More :func:`eoai.search` arguments (``max_cloud_cover``, ``ids``, ``limit``,
        ``max_items``, ``timeout``, ``retries``...).

    Returns
    -------
    xarray.Dataset
        Dims ``(time, y, x)``, dask-backed float32 bands (``DN * scale + offset``, see
        :func:`eoai.io.presets.band_scaling`; nodata -> NaN), CRS on ``spatial_ref`` (odc-geo
        ``.odc.crs``), ``attrs["eoai:method"] = "load"`` with the parameters.

    Raises
    ------
    eoai.errors.UnknownBandError
        A band is not in the items (the message lists the available ones).
    eoai.errors.NoOverlapError
        ``bbox``/``geometry`` intersects none of the items.
    eoai.errors.EmptySearchError, eoai.errors.CatalogUnreachableError
        From the search.

    Notes
    -----
    Local rasters (plain paths or ``file://``) are read with
    ``odc.stac.configure_rio(cloud_defaults=False, GDAL_DISABLE_READDIR_ON_OPEN="FALSE")`` so
    GDAL sees sidecar ``.aux.xml`` georeferencing (set process-wide, and on the workers of a
    running ``dask.distributed`` client).

    Examples
    --------
    >>> import eoai
    >>> cube = eoai.load(eoai.datasets.sample_catalog(), bands=["ndvi"],
    ...                  collections="slovenia-ndvi")  # doctest: +SKIP
    >>> cube.ndvi.dtype  # doctest: +SKIP
    dtype('float32')
    """
    import odc.stac
    from odc.geo.geom import Geometry

    _check_args(bands, resolution, groupby, min_valid_fraction, chunks, keep_mask)
    preset_obj = get_preset(preset)
    items = _catalog._items_source(source) if not isinstance(source, str | Path) else None
    if items is None and _is_static_path(source):
        t = {k: search_kw.pop(k) for k in ("timeout", "retries") if k in search_kw}
        items = _catalog._read_static(source, t.get("timeout", 30.0), t.get("retries", 3))
    filters = dict(collections=collections, bbox=bbox, geometry=geometry, datetime=datetime)
    if items is None:
        items = list(_catalog.search(source, preset=preset_obj, **filters, **search_kw))
    else:
        allowed = {"max_cloud_cover", "ids", "max_items"}
        unknown = set(search_kw) - allowed - {"limit", "timeout", "retries"}
        if unknown:
            raise InputError(f"unknown argument(s) for load: {', '.join(sorted(unknown))}")
        kept = _catalog.filter_items(
            items,
            collections=collections,
            datetime=datetime,
            **{k: v for k, v in search_kw.items() if k in allowed},
        )
        if not kept:
            raise EmptySearchError(
                f"none of the {len(items)} given items matches collections={collections!r}, "
                f"datetime={datetime!r}, {search_kw}; widen the filters"
            )
        if bbox is not None or geometry is not None:
            inside = _catalog.filter_items(kept, bbox=bbox, geometry=geometry)
            if not inside:
                raise NoOverlapError(_no_overlap_message(kept, bbox, geometry))
            kept = inside
        items = kept
    items = _sign_if_needed(items, preset_obj)

    # bands -> asset keys
    spec, mask_key = _find_mask(items, mask)
    if bands is None:
        names = available_bands(items)
        keys = sorted({v for v in names.values()})
        band_map = {k: k for k in keys if k != mask_key and k.lower() not in MASK_BANDS}
    else:
        band_map = resolve_bands(items, [bands] if isinstance(bands, str) else list(bands))
    if not band_map and mask_key is None:
        raise UnknownBandError("no band to load; pass bands=[...]")
    mask_var = spec.kind if spec is not None else None
    if mask_var is not None and mask_var in band_map and band_map[mask_var] != mask_key:
        mask_var = f"{mask_var}_mask"
    user_mask_var = next((n for n, k in band_map.items() if k == mask_key), None)
    to_load = dict(band_map)
    if mask_key is not None and user_mask_var is None:
        to_load[mask_var] = mask_key
    elif user_mask_var is not None:
        mask_var = user_mask_var

    # per-item scaling; items with different scaling are loaded separately
    scalings: dict[tuple, list[Any]] = {}
    for it in items:
        sig = tuple(
            (name, band_scaling(it, key, name) if key in it.assets else None)
            for name, key in to_load.items()
        )
        scalings.setdefault(sig, []).append(it)

    local = _configure_local_reads(items, list(to_load.values()))
    geopolygon = None
    if geometry is not None:
        geopolygon = Geometry(_catalog._as_shape(geometry), crs="EPSG:4326")
    odc_kw: dict[str, Any] = dict(
        groupby=groupby,
        chunks=dict(chunks) if chunks else dict(DEFAULT_CHUNKS),
        resolution=resolution,
        bbox=None if geopolygon is not None else (tuple(bbox) if bbox is not None else None),
        geopolygon=geopolygon,
    )
    if crs is not None:
        odc_kw["crs"] = crs
    if geobox is not None:
        if hasattr(geobox, "odc"):
            geobox = geobox.odc.geobox
        odc_kw = dict(groupby=groupby, chunks=odc_kw["chunks"], geobox=geobox)
    inverse = {}
    for name, key in to_load.items():
        inverse.setdefault(key, []).append(name)
    if not chunks and min_valid_fraction is None and local == "all":
        # local files: several dates per chunk on small grids (not for remote files, whose
        # latency-bound reads want one task per date; nor with min_valid_fraction, so that
        # dropped dates are never read)
        first = next(iter(scalings.values()))
        if geobox is None:  # the grid odc-stac would choose, from the same arguments
            geobox = _output_geobox(first, sorted(inverse), odc_kw)
        if geobox is not None:
            odc_kw = dict(
                groupby=groupby,
                # the number of items bounds the number of dates (solar_day merges some)
                chunks=default_chunks(geobox.shape, n_dates=len(first), n_bands=len(inverse)),
                geobox=geobox,
            )
    parts = []
    geobox = None
    for sig, group in scalings.items():
        kw = dict(odc_kw)
        if geobox is not None:
            kw = dict(groupby=groupby, chunks=odc_kw["chunks"], geobox=geobox)
        raw = odc.stac.load(group, bands=sorted(inverse), **kw)
        if len(scalings) > 1:  # the next groups load onto the same grid
            geobox = raw.odc.geobox
        # one Dataset built from Variables: no per-band alignment of coordinates
        data_vars = {}
        for name, sc in sig:
            da = raw[to_load[name]]
            if name == mask_var or sc is None:
                out = da.variable.copy(deep=False)
                if name == mask_var and spec is not None:
                    out.attrs.update(spec.to_attrs())
            else:
                out = _to_float(da, *sc)
            out.attrs["eoai:asset"] = to_load[name]
            data_vars[name] = out
        parts.append(xr.Dataset(data_vars, coords=raw.coords))
    ds = parts[0] if len(parts) == 1 else _combine(parts)

    if spec is not None:
        ds = apply_mask(ds, spec, keep_mask=True)
    attrs = {
        "eoai:method": "load",
        "eoai:bands": ",".join(f"{n}={k}" for n, k in band_map.items()),
        "eoai:mask": spec.describe() if spec is not None else "none",
        "eoai:groupby": str(groupby),
        "eoai:n_items": len(items),
    }
    if resolution is not None:
        attrs["eoai:resolution"] = resolution
    if min_valid_fraction is not None:
        if spec is None:
            raise InputError(
                "min_valid_fraction needs a mask band (scl, clm or qa_pixel) in the items; "
                "none was found or mask=None was given"
            )
        frac = valid_fraction(ds[[mask_var]], spec).compute()  # the one compute: mask band only
        keep = frac.values >= float(min_valid_fraction)
        dropped = int((~keep).sum())
        if dropped:
            dates = ", ".join(str(t)[:10] for t in ds.time.values[~keep])
            warnings.warn(
                f"{dropped} of {keep.size} date(s) dropped: valid fraction below "
                f"min_valid_fraction={min_valid_fraction} ({dates})",
                DataSkippedWarning,
                stacklevel=2,
            )
        ds = ds.isel(time=np.flatnonzero(keep))
        ds = ds.assign_coords(valid_fraction=("time", frac.values[keep]))
        attrs["eoai:min_valid_fraction"] = float(min_valid_fraction)
    if spec is not None and not keep_mask and user_mask_var is None:
        ds = ds.drop_vars(mask_var)
    ds.attrs = attrs
    return ds


def _combine(parts: list[xr.Dataset]) -> xr.Dataset:
    ds = xr.concat(parts, dim="time", join="outer", combine_attrs="drop_conflicts")
    ds = ds.sortby("time")
    if ds.indexes["time"].has_duplicates:
        ds = ds.groupby("time").first(skipna=True)
    return ds


def _no_overlap_message(items: Sequence[Any], bbox: Any, geometry: Any) -> str:
    boxes = np.array([it.bbox for it in items if it.bbox])
    extent = (
        f"({boxes[:, 0].min():.4f}, {boxes[:, 1].min():.4f}, {boxes[:, 2].max():.4f}, "
        f"{boxes[:, 3].max():.4f})"
        if len(boxes)
        else "unknown"
    )
    what = f"bbox {tuple(bbox)}" if bbox is not None else "the geometry"
    return (
        f"{what} does not intersect any of the {len(items)} items (their extent in degrees: "
        f"{extent}); move the area of interest inside that extent or search another catalog"
    )
