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
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._attrs import netcdf_attrs
from .._crs import check_crs
from .._provenance import flat_parameters, step
from .._renamed import renamed_parameters
from .._skipped import user_stacklevel
from ..errors import (
    CatalogUnreachableError,
    CRSError,
    DataSkippedWarning,
    EmptySearchError,
    InputError,
    NoOverlapError,
    UnknownBandError,
)
from . import catalog as _catalog
from . import sentinel1 as _sentinel1
from .bands import available_bands, resolve_bands
from .masks import KINDS, MaskSpec, as_spec, valid_fraction
from .masks import mask as apply_mask
from .presets import MASK_BANDS, Preset, band_scaling, get_preset, preset_names

_GROUPBY = ("time", "solar_day", "id")
DEFAULT_CHUNKS = {"time": 1, "x": 2048, "y": 2048}


def _is_static_path(source: Any) -> bool:
    """A local path (not a URL, not a preset name)."""
    if not isinstance(source, str | Path):
        return False
    text = str(source)
    if "://" in text:
        return text.startswith("file://")
    return Path(text).exists() or text.endswith(".json") or text.lower() not in preset_names()


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
            stacklevel=user_stacklevel(),
        )
        return items
    try:
        return [planetary_computer.sign(it) for it in items]
    except OSError as err:  # requests' ConnectionError / Timeout are OSErrors
        raise CatalogUnreachableError(
            f"could not sign the Planetary Computer asset URLs ({type(err).__name__}: {err}): the "
            "token service https://planetarycomputer.microsoft.com/api/sas is unreachable; check "
            "the network or proxy, or set PC_SDK_SUBSCRIPTION_KEY, then retry"
        ) from err


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
        if not (
            len(res) in (1, 2)
            and all(isinstance(r, int | float) and not isinstance(r, bool) and r > 0 for r in res)
        ):
            raise InputError(
                "resolution must be a positive number or an (x, y) pair of them (CRS units), "
                f"got {resolution!r}"
            )
    if groupby not in _GROUPBY and not callable(groupby) and groupby is not None:
        raise InputError(f"groupby must be one of {_GROUPBY}, None or a callable, got {groupby!r}")
    if min_valid_fraction is not None and not 0 <= float(min_valid_fraction) <= 1:
        raise InputError(f"min_valid_fraction must be in [0, 1], got {min_valid_fraction}")
    if chunks is not None and not isinstance(chunks, dict):
        raise InputError(f"chunks must be a dict such as {{'x': 2048, 'y': 2048}}, got {chunks!r}")
    if not isinstance(keep_mask, bool):
        raise InputError(f"keep_mask must be True or False, got {keep_mask!r}")


def _odc_resolution(resolution: Any) -> Any:
    """A number, or an ``(x, y)`` pair of positive pixel sizes as odc-geo's Resolution."""
    if resolution is None or not isinstance(resolution, Sequence):
        return resolution
    from odc.geo import resxy_

    x, y = (float(r) for r in (resolution if len(resolution) == 2 else [resolution[0]] * 2))
    return resxy_(x, -y)


@renamed_parameters(threads="workers")
def default_chunks(
    shape: Sequence[int],
    n_dates: int | None = None,
    n_bands: int = 1,
    workers: int | None = None,
) -> dict[str, int]:
    """Default dask chunks of :func:`load` (local files) for a grid of ``(ny, nx)`` pixels.

    2048 x 2048 pixels in space. In time, as many dates as fit in the pixels of one
    2048 x 2048 date (never more memory per chunk than one such date), so that small areas get
    few chunks (fewer tasks, less rechunking for time-series work); when ``n_dates`` is known,
    no more than needed to keep one chunk per dask worker thread (``workers``, default dask's
    thread count; eoai's ``threads=`` means threads inside one chunk)
    over the ``n_bands`` bands, so reads still run in parallel. :func:`load` uses one date per
    chunk for remote files (latency-bound reads) and with ``min_valid_fraction``.

    Examples
    --------
    >>> default_chunks((10980, 10980))
    {'time': 1, 'y': 2048, 'x': 2048}
    >>> default_chunks((512, 512))
    {'time': 16, 'y': 2048, 'x': 2048}
    >>> default_chunks((512, 512), n_dates=60, n_bands=4, workers=8)
    {'time': 16, 'y': 2048, 'x': 2048}
    >>> default_chunks((512, 512), n_dates=60, n_bands=1, workers=16)
    {'time': 4, 'y': 2048, 'x': 2048}
    """
    side = DEFAULT_CHUNKS["y"]
    ny, nx = (int(n) for n in shape)
    per_date = max(1, min(side, ny) * min(side, nx))
    dates = max(1, side * side // per_date)
    if n_dates is not None:
        if workers is None:
            import os

            import dask

            workers = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
        dates = min(dates, max(1, -(-int(n_dates) * int(n_bands) // max(1, int(workers)))))
    return {"time": dates, "y": side, "x": side}


_UTM_EPSG = (range(32601, 32661), range(32701, 32761))


def _area_centre(items: Sequence[Any], area: tuple[Any, Any]) -> tuple[float, float]:
    """(lon, lat) of the centre of the bbox / geometry, else of the items' footprints."""
    bbox, geometry = area
    if bbox is not None:
        w, s, e, n = (float(v) for v in bbox)
        return (w + e) / 2, (s + n) / 2
    if geometry is not None:
        c = _catalog._as_shape(geometry).centroid
        return float(c.x), float(c.y)
    boxes = np.array([it.bbox for it in items if it.bbox])
    if not len(boxes):
        return float("nan"), float("nan")
    return (
        (boxes[:, 0].min() + boxes[:, 2].max()) / 2,
        (boxes[:, 1].min() + boxes[:, 3].max()) / 2,
    )


def _default_crs(crss: Counter, items: Sequence[Any], area: tuple[Any, Any]) -> Any:
    """The output CRS when the items are in several CRSs and no ``crs=`` was given.

    All UTM zones (WGS 84, EPSG:326xx / 327xx): the UTM zone of the centre of the area (the
    bbox or geometry, else the items' footprints), whatever the order or number of the items.
    Anything else: a CRSError asking for ``crs=``.
    """
    from odc.geo.geom import CRS

    listed = ", ".join(f"{c} ({n} item{'s' * (n > 1)})" for c, n in crss.most_common())
    if all(c.epsg is not None and any(c.epsg in r for r in _UTM_EPSG) for c in crss):
        lon, lat = _area_centre(items, area)
        if np.isfinite(lon) and np.isfinite(lat):
            zone = int((lon + 180) // 6) % 60 + 1
            return CRS(f"EPSG:{(32600 if lat >= 0 else 32700) + zone}")
    first = crss.most_common(1)[0][0]
    raise CRSError(
        f"the items are in {len(crss)} different CRSs ({listed}) and no crs= was given; pass "
        f"crs= (e.g. crs='{first}') or geobox= to choose the grid to load onto"
    )


def _check_units(crs: Any, crss: Counter, parsed: list) -> None:
    """An InputError when ``crs`` is in other units than the items' pixels and no resolution."""

    def unit(c: Any) -> str:
        name = str(c.units[0])
        return "degrees" if name.startswith("degree") else name

    theirs = {unit(c) for c in crss}
    if not theirs or theirs == {unit(crs)}:
        return
    sizes = [
        min(abs(r) for r in g.resolution.xy)
        for ps, keys in parsed
        for p in ps
        for g in p.geoboxes(keys or None)[:1]
    ]
    native = min(sizes) if sizes else None
    src = sorted(theirs)[0]
    hint = ""
    if native is not None and unit(crs) == "degrees" and src == "metre":
        hint = f", e.g. resolution={float(f'{native / 111_320:.1g}')} (about {native:.3g} m)"
    elif native is not None and src == "degrees":
        hint = f", e.g. resolution={max(10, round(native * 111_320, -1)):g} (metres)"
    size = f" ({native:.3g} {src})" if native is not None else ""
    raise InputError(
        f"load: crs={str(crs)!r} is in {unit(crs)} but the items' pixels are in {src}{size}, so "
        f"their size cannot be the default: pass resolution= in {unit(crs)}{hint}"
    )


def _output_geobox(
    groups: list[tuple[list[Any], list[str]]], odc_kw: dict, area: tuple[Any, Any]
) -> Any:
    """One pixel grid for every ``(items, asset keys)`` group (None if the metadata has none).

    One group in one CRS: the grid ``odc.stac.load`` would choose. Items in several CRSs
    without ``crs=``: the CRS of :func:`_default_crs`. Several groups: that CRS, the finest
    native resolution of the groups (unless ``resolution=``) and the extent of all the items.
    """
    import odc.stac

    kw = dict(
        crs=odc_kw.get("crs"),
        resolution=odc_kw.get("resolution"),
        geopolygon=odc_kw.get("geopolygon"),
        bbox=odc_kw.get("bbox"),
    )
    try:
        parsed = [(list(odc.stac.parse_items(group)), keys) for group, keys in groups]
        crss = Counter(
            c for ps, keys in parsed for p in ps if (c := p.crs(keys or None)) is not None
        )
    except Exception:  # noqa: BLE001 - odc.stac.load then raises its own, explicit error
        return None
    if kw["crs"] is None and len(crss) > 1:
        kw["crs"] = _default_crs(crss, [it for g, _ in groups for it in g], area)
    if kw["crs"] is not None and kw["resolution"] is None:
        _check_units(kw["crs"], crss, parsed)
    try:
        if len(parsed) == 1:
            return odc.stac.output_geobox(parsed[0][0], bands=parsed[0][1], **kw)
        grids = [odc.stac.output_geobox(ps, bands=keys, **kw) for ps, keys in parsed]
        if any(g is None for g in grids):
            return None
        return _union_grid(grids)
    except Exception:  # noqa: BLE001 - odc.stac.load then raises its own, explicit error
        return None


def _union_grid(grids: list[Any]) -> Any:
    """The pixels of the finest of ``grids`` (same pixel edges) extended over all of them."""
    import math

    from affine import Affine
    from odc.geo.geobox import GeoBox

    if all(g == grids[0] for g in grids):
        return grids[0]
    finest = min(grids, key=lambda g: min(abs(r) for r in g.resolution.xy))
    inv = ~finest.affine
    cols, rows = [], []
    for g in grids:
        b = g.extent.to_crs(finest.crs).boundingbox
        for x, y in ((b.left, b.top), (b.right, b.bottom), (b.left, b.bottom), (b.right, b.top)):
            c, r = inv * (x, y)
            cols.append(c)
            rows.append(r)
    c0, r0 = math.floor(min(cols) + 1e-6), math.floor(min(rows) + 1e-6)
    c1, r1 = math.ceil(max(cols) - 1e-6), math.ceil(max(rows) - 1e-6)
    return GeoBox((r1 - r0, c1 - c0), finest.affine * Affine.translation(c0, r0), finest.crs)


def _collections_table(by_coll: dict[str, list[Any]]) -> str:
    """``'a' (68 items; assets ndvi, clm); 'b' (5 items; ...)`` for messages (masks last)."""
    rows = []
    for coll, coll_items in by_coll.items():
        keys = set(available_bands(coll_items).values())
        names = sorted(keys, key=lambda k: (k.lower() in MASK_BANDS, k.lower()))
        rows.append(f"{coll!r} ({len(coll_items)} items; assets {', '.join(names) or 'none'})")
    return "; ".join(rows)


def _plan_bands(
    items: list[Any], bands: Any, mask_key: str | None
) -> tuple[dict[str, tuple[list[Any], dict[str, str]]], dict[str, str]]:
    """Per collection: its items and ``{variable: asset key}``; and ``{variable: key}`` overall.

    ``bands=None`` loads every data asset, which is well defined only when every collection has
    the same ones. Asked bands are looked up in each collection: a collection loads the asked
    bands it has (collections with none of them are left out); a band in no collection is an
    UnknownBandError that lists each collection's bands.
    """
    by_coll: dict[str, list[Any]] = {}
    for it in items:
        by_coll.setdefault(str(it.collection_id or "(no collection)"), []).append(it)
    many = len(by_coll) > 1
    fix = (
        f"pass collections= one of {sorted(by_coll)} to load one of them, or bands=[...] with "
        "bands of these collections (each collection then loads the asked bands it has; dates "
        "of the others are NaN)"
    )
    if bands is None:
        keys = {}
        for coll, coll_items in by_coll.items():
            names = available_bands(coll_items)
            keys[coll] = {
                k for k in names.values() if k != mask_key and k.lower() not in MASK_BANDS
            }
        if many and len({frozenset(v) for v in keys.values()}) > 1:
            raise InputError(
                f"these items come from {len(by_coll)} collections with different bands: "
                f"{_collections_table(by_coll)}; bands=None (every band) is ambiguous: {fix}"
            )
        plans = {c: (by_coll[c], {k: k for k in sorted(v)}) for c, v in keys.items()}
        band_map = dict(next(iter(plans.values()))[1])
        if not band_map and mask_key is None:
            raise UnknownBandError(
                f"no band to load in these items ({_collections_table(by_coll)}); pass bands=[...]"
            )
        return plans, band_map
    asked = [bands] if isinstance(bands, str) else list(bands)
    if not asked:
        raise UnknownBandError("bands is empty; pass bands=[...] or bands=None for every band")
    if not many:
        band_map = resolve_bands(items, asked)
        return {next(iter(by_coll)): (items, band_map)}, band_map
    found: dict[str, dict[str, str]] = {}
    for coll, coll_items in by_coll.items():
        for band in asked:
            if not isinstance(band, str):
                raise UnknownBandError(f"band names must be strings, got {band!r}")
            try:
                found.setdefault(coll, {})[band] = resolve_bands(coll_items, [band])[band]
            except UnknownBandError:
                continue
    missing = [b for b in asked if not any(b in f for f in found.values())]
    if missing:
        raise UnknownBandError(
            f"band(s) {', '.join(map(repr, missing))} are in none of the {len(by_coll)} "
            f"collections of these items: {_collections_table(by_coll)}. Pass bands of these "
            "collections (asset keys, common names or band ids) in bands=[...]."
        )
    data = {b for b in asked if b != mask_key and b.lower() not in MASK_BANDS}
    plans = {
        c: (by_coll[c], {b: k for b, k in f.items()})
        for c, f in found.items()
        if f and (not data or set(f) & data)  # collections with only the mask are left out
    }
    band_map = {}
    for band in asked:
        asset_keys = sorted({f[band] for _, f in plans.values() if band in f})
        band_map[band] = "|".join(asset_keys)
    return plans, band_map


def _mask_key_of(items: list[Any], spec: MaskSpec, coll: str, n_collections: int) -> str:
    """The asset key of the mask band ``spec`` in ``items`` (one collection)."""
    names = available_bands(items)
    lower = {k.lower(): v for k, v in names.items()}
    key = names.get(spec.band_name) or lower.get(spec.band_name.lower())
    if key is None:
        where = f"collection {coll!r}" if n_collections > 1 else "these items"
        raise UnknownBandError(
            f"mask band {spec.band_name!r} ({spec.kind}) is not in {where} (its bands: "
            f"{', '.join(sorted(set(names.values()), key=str.lower))}); pass mask=None to load "
            "without a mask" + (", or collections= to load the others" if n_collections > 1 else "")
        )
    return key


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
    kw: dict[str, Any] = dict(scale=float(scale), offset=float(offset), nodata=nodata)
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
    resolution: float | Sequence[float] | None = None,
    crs: Any = None,
    chunks: dict | None = None,
    groupby: str | None = "solar_day",
    mask: MaskSpec | str | None = "auto",
    keep_mask: bool = False,
    min_valid_fraction: float | None = None,
    preset: str | Preset | None = None,
    geobox: Any = None,
    units: str | dict[str, str] | None = None,
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
        default every data asset. Each variable is named as asked. Items of several collections:
        each collection loads the asked bands it has (collections with none of them are left
        out), all onto one grid, NaN at the dates of the other collections; the default (every
        band) needs collections with the same bands, else an InputError lists each collection
        and its bands (pass ``collections=`` or ``bands=``).
    collections, bbox, geometry, datetime
        Search filters; ``bbox`` (degrees) / ``geometry`` (GeoJSON, EPSG:4326) also crop the cube.
    resolution : float or (float, float), optional
        Pixel size (or ``(x, y)`` sizes) in units of ``crs`` (default: the finest native
        resolution; needed when ``crs`` is in other units than the items', e.g. degrees for
        ``crs="EPSG:4326"``).
    crs : str or int, optional
        Output CRS (default the items' CRS, e.g. UTM). Items in several UTM zones (a mosaic
        across a zone boundary): default the UTM zone of the centre of ``bbox`` / ``geometry``
        (else of the items' footprints), whatever the order of the items; items in other
        mixed CRSs need ``crs=`` (a CRSError says so).
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
    units : {"linear", "dB", "amplitude"} or dict, optional
        Unit of the Sentinel-1 polarisation bands (``vv``, ``vh``, ``hh``, ``hv``), or one per
        band (``{"vv": "dB"}``), recorded in each band's ``attrs["units"]``. Default: the
        asset's ``raster:bands`` ``unit``, else the collection's (``sentinel-1-rtc``: linear
        gamma0; GRD: amplitude; :mod:`eoai.io.sentinel1`); a Sentinel-1 band whose unit cannot
        be determined is an InputError asking for ``units=``. Items lacking an asked
        polarisation are left out (a DataSkippedWarning gives their count); when none has it,
        an UnknownBandError lists the polarisations present.
    **search_kw
        More :func:`eoai.search` arguments (``max_cloud_cover``, ``ids``, ``limit``,
        ``max_items``, ``timeout``, ``retries``, the Sentinel-1 filters ``orbit_state``,
        ``relative_orbit``, ``instrument_mode``, ``polarizations``...).

    Returns
    -------
    xarray.Dataset
        Dims ``(time, y, x)``, dask-backed float32 bands (``DN * scale + offset``, see
        :func:`eoai.io.presets.band_scaling`; nodata -> NaN), CRS on ``spatial_ref`` (odc-geo
        ``.odc.crs``), ``attrs["eoai:method"] = "load"`` with the parameters.

    Raises
    ------
    eoai.errors.UnknownBandError
        A band is not in the items (the message lists the available ones, per collection).
    eoai.errors.InputError
        ``bands=None`` over collections with different bands (the message lists them).
    eoai.errors.CRSError
        ``crs`` is not a CRS that PROJ knows, or the items are in several CRSs that are not all
        UTM zones and no ``crs=`` was given.
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
        allowed = {
            "max_cloud_cover",
            "ids",
            "max_items",
            "orbit_state",
            "relative_orbit",
            "instrument_mode",
            "polarizations",
        }
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
    items, n_without = _sentinel1.check_polarisations(items, bands)
    if n_without:
        warnings.warn(
            f"{n_without} Sentinel-1 item(s) left out: they lack an asked polarisation "
            f"({', '.join(map(str, [bands] if isinstance(bands, str) else bands or ()))}); "
            "search with polarizations=[...] to select them beforehand",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )

    # Sentinel-1 units (and GRD geometry) checked before signing, which needs the network
    s1_attrs = _sentinel1.band_units(
        items, _plan_bands(items, bands, _find_mask(items, mask)[1])[1], units
    )
    if units is not None and not s1_attrs:
        raise InputError(
            f"units={units!r} is for Sentinel-1 polarisation bands (vv, vh, hh, hv), and none "
            "is loaded here; leave units out"
        )
    items = _sign_if_needed(items, preset_obj)

    # bands -> asset keys, per collection (collections can name the same band differently,
    # or hold different bands: each collection loads the asked bands it has)
    spec, mask_key = _find_mask(items, mask)
    plans, band_map = _plan_bands(items, bands, mask_key)
    mask_var = spec.kind if spec is not None else None
    if mask_var is not None and mask_var in band_map and band_map[mask_var] != mask_key:
        mask_var = f"{mask_var}_mask"
    user_mask_var = next((n for n, k in band_map.items() if k == mask_key), None)
    if user_mask_var is not None:
        mask_var = user_mask_var
    groups = []  # (items, {variable: asset key}, {variable: scaling or None})
    for coll, (coll_items, names) in plans.items():
        to_load = dict(names)
        if spec is not None and mask_var is not None and mask_var not in to_load:
            to_load[mask_var] = _mask_key_of(coll_items, spec, coll, len(plans))
        # per-item scaling; items with different scaling are loaded separately
        scalings: dict[tuple, list[Any]] = {}
        for it in coll_items:
            sig = tuple(
                (name, band_scaling(it, key, name) if key in it.assets else None)
                for name, key in to_load.items()
            )
            scalings.setdefault(sig, []).append(it)
        groups += [(group, to_load, dict(sig)) for sig, group in scalings.items()]
    items = [it for group, _, _ in groups for it in group]
    all_keys = sorted({k for _, to_load, _ in groups for k in to_load.values()})
    local = _configure_local_reads(items, all_keys)

    geopolygon = None
    if geometry is not None:
        geopolygon = Geometry(_catalog._as_shape(geometry), crs="EPSG:4326")
    odc_kw: dict[str, Any] = dict(
        resolution=_odc_resolution(resolution),
        bbox=None if geopolygon is not None else (tuple(bbox) if bbox is not None else None),
        geopolygon=geopolygon,
    )
    if crs is not None:
        odc_kw["crs"] = check_crs(crs, "load: crs")
    if geobox is not None:
        if hasattr(geobox, "odc"):
            geobox = geobox.odc.geobox
    else:  # one grid for every group: the one odc-stac would choose for all the items
        geobox = _output_geobox(
            [(group, sorted(set(to_load.values()))) for group, to_load, _ in groups],
            odc_kw,
            area=(bbox, geometry),
        )
    if chunks:
        chunking = dict(chunks)
    elif min_valid_fraction is None and local == "all" and geobox is not None:
        # local files: several dates per chunk on small grids (not for remote files, whose
        # latency-bound reads want one task per date; nor with min_valid_fraction, so that
        # dropped dates are never read); the number of items bounds the number of dates
        chunking = default_chunks(geobox.shape, n_dates=len(items), n_bands=len(all_keys))
    else:
        chunking = dict(DEFAULT_CHUNKS)
    parts = []
    for group, to_load, scaling in groups:
        if geobox is not None:
            kw = dict(geobox=geobox)
        else:  # no grid known from the metadata: odc-stac chooses, or raises its own error
            kw = {k: v for k, v in odc_kw.items() if v is not None}
        inverse: dict[str, list[str]] = {}
        for name, key in to_load.items():
            inverse.setdefault(key, []).append(name)
        raw = odc.stac.load(group, bands=sorted(inverse), groupby=groupby, chunks=chunking, **kw)
        if len(groups) > 1 and geobox is None:  # the next groups load onto the same grid
            geobox = raw.odc.geobox
        # one Dataset built from Variables: no per-band alignment of coordinates
        data_vars = {}
        for name, key in to_load.items():
            da, sc = raw[key], scaling[name]
            if name == mask_var or sc is None:
                out = da.variable.copy(deep=False)
                if name == mask_var and spec is not None:
                    out.attrs.update(spec.to_attrs())
            else:
                out = _to_float(da, *sc)
            out.attrs["eoai:asset"] = key
            data_vars[name] = out
        part = xr.Dataset(data_vars, coords=raw.coords)
        if spec is not None:  # each group masked by its own mask band
            part = apply_mask(part, spec, keep_mask=True)
        parts.append(part)
    ds = parts[0] if len(parts) == 1 else _combine(parts)
    if len(parts) > 1:  # the variables in the order asked, the mask band last
        order = [n for n in dict.fromkeys([*band_map, mask_var]) if n in ds.data_vars]
        ds = ds[order + [n for n in ds.data_vars if n not in order]]
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
                stacklevel=user_stacklevel(),
            )
        ds = ds.isel(time=np.flatnonzero(keep))
        ds = ds.assign_coords(valid_fraction=("time", frac.values[keep]))
        attrs["eoai:min_valid_fraction"] = float(min_valid_fraction)
    if spec is not None and mask_var is not None and not keep_mask and user_mask_var is None:
        ds = ds.drop_vars(mask_var)
    for name, extra in s1_attrs.items():  # units of the Sentinel-1 bands
        if name in ds.data_vars:
            ds[name].attrs.update(extra)
    # the settings twice: flat keys (read by users) and one JSON ``eoai:parameters`` (the lineage)
    attrs = netcdf_attrs(attrs)  # storable in netCDF and Zarr (resolution=(10, 10)...)
    ds.attrs = {
        **attrs,
        **step("load", flat_parameters(attrs)),
    }
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
