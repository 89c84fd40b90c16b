"""Object-based analysis: segment a cube into objects, describe them, label them, classify them.

- :func:`segment` (``cube.eoai.segment``): lazy integer segment ids with SLIC, Felzenszwalb or a
  compact watershed (scikit-image), on a cloud-robust composite of chosen bands and dates, or
  *time-first* on the whole series (every band-date a feature, standardised, as the
  spatio-temporal SLIC of sits);
- :func:`object_features` (``cube.eoai.object_features``): per-object zonal statistics of every
  band-date (mean, std, percentiles) and shape descriptors, a table indexed by segment id;
- :func:`object_samples`: labelled points / polygons -> one label per object (majority overlap),
  a table that :func:`eoai.ml.fit` and :func:`eoai.ml.cross_validate` accept;
- :func:`classify_objects` (``cube.eoai.classify_objects``): any eoai classifier applied to the
  objects, as polygons (GeoDataFrame) and as a lazy class map;
- :func:`segment_polygons`: the segments as polygons.

Tiling (segments do not break at tile edges)
--------------------------------------------
The segmentation runs on tiles of ``tile x tile`` pixels aligned with the cube's first pixel,
each read with a halo of ``halo`` pixels on every side (its *window*); the result does not depend
on the dask chunks of the cube. A tile keeps the segment ids of its own pixels (owner rule: a pixel
belongs to the tile that holds it). Two neighbouring tiles (diagonals included) both segmented the
band of ``2 x halo`` pixels around their common border; a segment of one and a segment of the other
are the same object, and get one id, when their intersection over union inside that band is at least
0.5 (a unique match: each segment has at most one such partner per neighbour). The matches of all
borders are merged with a union-find (connected components), then ids are renumbered 1, 2, ...
in the order of the tiles. Only the labels of the bands enter the merge task, which is small.
SLIC seeds and watershed markers sit on a grid of step ``round(sqrt(size))`` aligned with the
cube's first pixel (tile and halo are rounded to multiples of it), so neighbouring windows start
from the same seeds and agree in their common band. Id 0 is the declared nodata id: pixels with no
valid value in any feature used (a ``DataSkippedWarning`` gives their count at compute time).

Examples
--------
>>> import eoai
>>> cube, truth = eoai.datasets.synthetic_cube(shape=(32, 32), freq="30D", seed=0)
>>> seg = cube.eoai.segment(method="felzenszwalb", bands=["red", "nir"])
>>> int(seg.max()) > 1, seg.attrs["nodata"]
(True, 0)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import _skipped
from .._provenance import provenance
from .._skipped import user_stacklevel
from ..errors import (
    CRSError,
    DataSkippedWarning,
    InputError,
    MissingDimensionError,
    ModelError,
    NoOverlapError,
    UnknownBandError,
)
from .features import as_dataset, feature_array, feature_names

__all__ = [
    "METHODS",
    "NODATA",
    "classify_objects",
    "object_features",
    "object_samples",
    "segment",
    "segment_polygons",
]

#: segmentation methods of :func:`segment`
METHODS = ("slic", "felzenszwalb", "watershed")
#: segment id of pixels without valid data (never a segment)
NODATA = 0
#: intersection over union, in the band shared by two tiles, above which two segments are merged
MATCH_IOU = 0.5
#: default compactness per method (features are z-scores divided by sqrt(number of channels))
_COMPACTNESS = {"slic": 0.3, "watershed": 0.01}
_SHAPE = ("area_m2", "perimeter_m", "compactness")
#: features summed at once in float64 by object_features (bounds its temporary memory)
_SLAB = 32


# --------------------------------------------------------------------------------------- segment
def _select(ds: xr.Dataset, bands: Sequence[str] | None, dates: Any) -> xr.Dataset:
    if bands is not None:
        if isinstance(bands, str):
            bands = [bands]
        unknown = [b for b in bands if b not in ds.data_vars]
        if unknown:
            raise UnknownBandError(
                f"the cube has no band {', '.join(map(repr, unknown))}; its bands are "
                f"{', '.join(map(str, ds.data_vars))}"
            )
        if not bands:
            raise InputError("bands= is empty; pass band names or None (all bands)")
        ds = ds[list(bands)]
    if dates is not None:
        if "time" not in ds.dims:
            raise MissingDimensionError("dates= was given but the cube has no time dimension")
        try:
            wanted = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(dates)))
        except (ValueError, TypeError) as err:
            raise InputError(
                f"dates= must be dates (e.g. '2021-05-01'), got {dates!r}: {err}"
            ) from None
        have = pd.DatetimeIndex(ds["time"].values)
        # a date without a time of day selects every acquisition of that day
        keep = np.isin(have.normalize(), wanted.normalize()) | np.isin(have, wanted)
        found = set(have[keep].normalize())
        missing = [str(d.date()) for d in wanted if d.normalize() not in found]
        if missing:
            raise InputError(
                f"the cube has no acquisition on {', '.join(missing)}; its dates run from "
                f"{have.min().date()} to {have.max().date()} ({len(have)} dates): pass dates it holds"
            )
        ds = ds.isel(time=np.flatnonzero(keep))
    return ds


def _grid_step(size: float) -> int:
    return max(1, int(round(math.sqrt(size))))


def _segment_window(
    win: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    *,
    groups: np.ndarray,
    time_first: bool,
    method: str,
    params: dict[str, Any],
    origin: tuple[int, int],
    offset: int,
) -> np.ndarray:
    """Segment one window ``(wy, wx, feature)`` -> int64 ids (``offset`` + local id, 0 = nodata)."""
    n_bands = int(groups.max()) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: median of nothing
        if time_first:
            img = np.array(win, dtype="float32")
            for c in range(n_bands):
                idx = np.flatnonzero(groups == c)
                if idx.size < 2:
                    continue
                part = img[..., idx]
                med = np.nanmedian(part, axis=-1, keepdims=True)
                img[..., idx] = np.where(np.isnan(part), med, part)
        else:
            img = np.stack(
                [np.nanmedian(win[..., groups == c], axis=-1) for c in range(n_bands)], axis=-1
            ).astype("float32")
    valid = ~np.isnan(img).all(axis=-1)
    img = (img - mean) / std
    img = np.where(np.isnan(img), 0.0, img) / np.sqrt(img.shape[-1])
    ny, nx = valid.shape
    labels = np.zeros((ny, nx), dtype=np.int64)
    if not valid.any():
        return labels
    with warnings.catch_warnings():
        # a window with 3 or 4 channels is meant as channels, as any other
        warnings.filterwarnings("ignore", "Got image with third dimension", RuntimeWarning)
        lab = _run_method(img, valid, method, params, origin)
    labels = np.where(valid & (lab > 0), lab.astype(np.int64) + offset, 0)
    return labels


def _run_method(
    img: np.ndarray, valid: np.ndarray, method: str, params: dict[str, Any], origin: tuple[int, int]
) -> np.ndarray:
    """Labels (>= 1 inside ``valid``) of one standardised window ``(wy, wx, channel)``."""
    import skimage.segmentation as skseg

    ny, nx = valid.shape
    step = params["step"]
    if method == "slic":
        # n_segments chosen so that scikit-image's seed grid has step ``step`` from step // 2 of
        # the window, whose origin is a multiple of step: the same seeds in every window
        n = max(1, (ny * nx) // (step * step))
        lab = skseg.slic(
            img, n_segments=n, compactness=params["compactness"], sigma=params["sigma"],
            channel_axis=-1, convert2lab=False, start_label=1, enforce_connectivity=True,
        )  # fmt: skip
    elif method == "felzenszwalb":
        lab = (
            skseg.felzenszwalb(
                img,
                scale=params["scale"],
                sigma=params["sigma"],
                min_size=params["min_size"],
                channel_axis=-1,
            )  # fmt: skip
            + 1
        )
    else:  # compact watershed of the gradient from markers on the global grid
        from scipy import ndimage
        from skimage.filters import sobel

        smooth = img
        if params["sigma"]:
            smooth = ndimage.gaussian_filter(img, sigma=(params["sigma"], params["sigma"], 0))
        grad = np.sqrt(sum(sobel(smooth[..., c]) ** 2 for c in range(img.shape[-1])))
        rows = np.flatnonzero((np.arange(ny) + origin[0]) % step == step // 2)
        cols = np.flatnonzero((np.arange(nx) + origin[1]) % step == step // 2)
        markers = np.zeros((ny, nx), dtype=np.int64)
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        markers[rr, cc] = np.arange(1, rr.size + 1).reshape(rr.shape)
        markers[~valid] = 0
        lab = skseg.watershed(grad, markers, mask=valid, compactness=params["compactness"])
    return lab


def _match(
    lab_a: np.ndarray, org_a: tuple[int, int], lab_b: np.ndarray, org_b: tuple[int, int]
) -> np.ndarray:
    """Pairs ``(id_a, id_b)`` of segments of two windows with IoU >= MATCH_IOU where they overlap."""
    r0, c0 = max(org_a[0], org_b[0]), max(org_a[1], org_b[1])
    r1 = min(org_a[0] + lab_a.shape[0], org_b[0] + lab_b.shape[0])
    c1 = min(org_a[1] + lab_a.shape[1], org_b[1] + lab_b.shape[1])
    if r1 <= r0 or c1 <= c0:
        return np.empty((0, 2), np.int64)
    a = lab_a[r0 - org_a[0] : r1 - org_a[0], c0 - org_a[1] : c1 - org_a[1]].ravel()
    b = lab_b[r0 - org_b[0] : r1 - org_b[0], c0 - org_b[1] : c1 - org_b[1]].ravel()
    both = (a > 0) & (b > 0)
    if not both.any():
        return np.empty((0, 2), np.int64)
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    size_a = np.bincount(ia, minlength=ua.size)
    size_b = np.bincount(ib, minlength=ub.size)
    pair = ia[both].astype(np.int64) * ub.size + ib[both]
    up, inter = np.unique(pair, return_counts=True)
    pa, pb = up // ub.size, up % ub.size
    iou = inter / (size_a[pa] + size_b[pb] - inter)
    keep = iou >= MATCH_IOU
    return np.column_stack([ua[pa[keep]], ub[pb[keep]]]).astype(np.int64)


def _crop(lab: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    return lab[rows, cols]


def _core_ids(core: np.ndarray) -> tuple[np.ndarray, int]:
    ids = np.unique(core)
    return ids[ids > 0], int((core == 0).sum())


def _merge_table(
    pairs: list[np.ndarray], cores: list[tuple[np.ndarray, int]], n_pixels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Union-find of the matched pairs: (sorted tile ids, new consecutive ids 1..N)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    core_ids = np.concatenate([c[0] for c in cores]) if cores else np.empty(0, np.int64)
    nodata = sum(c[1] for c in cores)
    _skipped.count(nodata=nodata, total=n_pixels)
    core_ids = np.unique(core_ids)
    edges = np.concatenate(pairs) if pairs else np.empty((0, 2), np.int64)
    nodes = np.unique(np.concatenate([core_ids, edges.ravel()]))
    n = nodes.size
    e = np.searchsorted(nodes, edges)
    graph = coo_matrix((np.ones(len(e), np.int8), (e[:, 0], e[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    comp_core = comp[np.searchsorted(nodes, core_ids)]
    # renumber components in the order of their smallest tile id (core_ids are sorted)
    _, first = np.unique(comp_core, return_index=True)
    rank = np.empty(comp.max() + 1 if comp.size else 0, np.int64)
    order = np.argsort(first)
    rank[np.unique(comp_core)[order]] = np.arange(1, order.size + 1)
    return core_ids, rank[comp_core]


def _relabel(core: np.ndarray, table: tuple[np.ndarray, np.ndarray], dtype: Any) -> np.ndarray:
    ids, new = table
    out = np.zeros(core.shape, dtype=dtype)
    m = core > 0
    out[m] = new[np.searchsorted(ids, core[m])]
    return out


def _nodata_message(totals: dict[str, dict[str, int]]) -> str | None:
    c = totals.get("", {})
    n = c.get("nodata", 0)
    if not n:
        return None
    return (
        f"{n} of {c.get('total', 0)} pixels have no valid value in any feature used for the "
        f"segmentation (outside the data, or cloudy on every date used) and got the nodata id "
        f"{NODATA}"
    )


def _check_number(name: str, value: Any, low: float, *, integer: bool = False) -> None:
    ok = isinstance(value, (int, np.integer) if integer else (int, float, np.number))
    if isinstance(value, bool) or not ok or not value >= low:
        kind = "an integer" if integer else "a number"
        raise InputError(f"{name} must be {kind} >= {low}, got {value!r}")


def segment(
    cube: xr.Dataset | xr.DataArray,
    *,
    method: str = "felzenszwalb",
    bands: Sequence[str] | None = None,
    dates: Any = None,
    time_first: bool = True,
    size: float = 64,
    compactness: float | None = None,
    scale: float = 1.0,
    sigma: float = 0.5,
    min_size: int | None = None,
    tile: int = 256,
    halo: int | None = None,
) -> xr.DataArray:
    """Segment a cube into objects: lazy integer segment ids, tiled so segments cross tile edges.

    Parameters
    ----------
    cube
        Dataset / DataArray with dims ``(time, y, x)`` and/or ``(y, x)``; dask-backed gives a
        lazy result (nothing is computed until the result is).
    method
        ``"felzenszwalb"`` (default: graph-based regions, their size set by ``scale``: objects such
        as fields), ``"slic"`` (superpixels of about ``size`` pixels) or ``"watershed"`` (compact
        watershed of the gradient from markers every ``sqrt(size)`` pixels). The default was the
        best of the three on synthetic parcels and on the embedded sample
        (``benchmarks/bench_objects.py``).
    bands
        Variables to segment on (default all).
    dates
        Dates to segment on (default all): a date, or a list of dates; a date without a time of
        day takes every acquisition of that day.
    time_first
        ``True`` (default): every band-date is a channel (the whole series, as the
        spatio-temporal SLIC of sits); a gap (NaN) is filled, for the segmentation only, with the
        pixel's median of that band. ``False``: one channel per band, the per-pixel median over
        the dates (a cloud-robust composite; cheaper, and less accurate on the benchmark).
    size
        Mean segment area in pixels for ``"slic"`` and ``"watershed"`` (seed step
        ``round(sqrt(size))``); for ``"felzenszwalb"`` the default ``min_size`` is ``size // 4``.
    compactness
        Weight of the spatial distance (``"slic"``, default 0.3; ``"watershed"``, default 0.01).
        Channels are standardised (z-scores over the cube) and divided by the square root of their
        number, so it does not depend on units or band count.
    scale
        Felzenszwalb's scale (larger: larger segments), in those standardised units.
    sigma
        Gaussian smoothing (pixels) before segmenting; 0 for none.
    min_size
        Smallest Felzenszwalb segment (pixels); default ``size // 4``.
    tile
        Tile side (pixels), rounded to a multiple of the seed step; a tile and its halo are
        segmented in one task (memory: about ``(tile + 2 halo)^2 x channels x 8`` bytes).
    halo
        Pixels read around each tile (default 3 seed steps and at least 24), rounded to a
        multiple of the seed step, at most ``tile`` (a last tile narrower than the halo joins the
        one before it); the segments of two neighbouring tiles are matched in the band
        of ``2 x halo`` pixels around their border (see the module docstring).

    Returns
    -------
    xarray.DataArray
        ``(y, x)`` int32 (int64 beyond 2**31 pixels) segment ids 1, 2, ..., ``0`` where no
        feature is valid (``attrs["nodata"]``); coordinates and CRS of the cube; chunks of
        ``tile`` pixels; ``eoai:method`` / ``eoai:parameters``.

    Raises
    ------
    eoai.errors.InputError
        Unknown ``method``, bad parameters, dates not in the cube.
    eoai.errors.UnknownBandError
        A band is not in the cube.
    eoai.errors.MissingDimensionError
        The cube has no ``y`` / ``x`` dimension.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> img = np.zeros((20, 20), "float32"); img[:, 10:] = 1.0
    >>> da = xr.DataArray(img, dims=("y", "x"), coords={"y": np.arange(20.0), "x": np.arange(20.0)})
    >>> seg = segment(da, method="felzenszwalb", tile=8, halo=4, sigma=0)
    >>> np.unique(seg.values).tolist()  # one segment per half, across the tiles
    [1, 2]
    """
    import dask
    import dask.array as dsa

    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(time_first, (bool, np.bool_)):
        raise InputError(f"time_first must be True or False, got {time_first!r}")
    _check_number("size", size, 1)
    _check_number("scale", scale, 0)
    _check_number("sigma", sigma, 0)
    _check_number("tile", tile, 1, integer=True)
    if compactness is None:
        compactness = _COMPACTNESS.get(method, 0.0)
    _check_number("compactness", compactness, 0)
    if min_size is None:
        min_size = max(1, int(size) // 4)
    _check_number("min_size", min_size, 1, integer=True)
    step = _grid_step(size)
    if halo is None:
        halo = max(3 * step, 24)
    _check_number("halo", halo, 0, integer=True)
    tile = max(step, int(round(tile / step)) * step)
    halo = int(math.ceil(halo / step)) * step
    ds = as_dataset(cube)
    src = ds
    ds = _select(ds, bands, dates)
    if not ds.data_vars:
        raise InputError("the cube has no variables to segment")
    names = feature_names(ds)
    groups = []
    for c, (_, var) in enumerate(ds.data_vars.items()):
        groups += [c] * (var.sizes["time"] if "time" in var.dims else 1)
    groups_arr = np.asarray(groups, dtype=np.int64)  # the band of each feature
    # channels of the segmentation: one per band (composite) or one per band-date (time first)
    channels = np.arange(len(names), dtype=np.int64) if time_first else groups_arr
    feats = feature_array(ds).transpose("y", "x", "feature").data
    lazy = isinstance(feats, dsa.Array)
    ny, nx = feats.shape[:2]
    if ny == 0 or nx == 0:
        raise InputError(f"the cube is empty ({ny} x {nx} pixels)")
    halo = min(halo, tile)
    cy, cx = _tile_chunks(ny, tile, halo), _tile_chunks(nx, tile, halo)
    feats = dsa.asarray(feats).rechunk((cy, cx, -1))

    # channel statistics over the cube (lazy): z-scores make parameters independent of units
    finite = dsa.isfinite(feats)
    zero = dsa.where(finite, feats, 0).astype("float64")
    sums = dsa.stack([finite.sum(axis=(0, 1)), zero.sum(axis=(0, 1)), (zero**2).sum(axis=(0, 1))])
    (sums_d,) = sums.rechunk(-1).to_delayed().ravel()
    stats = dask.delayed(_channel_stats, pure=True)(sums_d, channels)
    mean, std = stats[0], stats[1]

    params = {"step": step, "compactness": float(compactness), "sigma": float(sigma),
              "scale": float(scale), "min_size": int(min_size)}  # fmt: skip
    rows = np.cumsum((0,) + feats.chunks[0])
    cols = np.cumsum((0,) + feats.chunks[1])
    nbi, nbj = len(rows) - 1, len(cols) - 1
    stride = (max(cy) + 2 * halo) * (max(cx) + 2 * halo) + 1
    # the windows: every tile with its halo (clipped at the cube's edges), one block each
    depth = {0: halo if nbi > 1 else 0, 1: halo if nbj > 1 else 0, 2: 0}
    haloed = dsa.overlap.overlap(feats, depth=depth, boundary="none")
    win_blocks = haloed.to_delayed()
    windows: dict[tuple[int, int], Any] = {}
    origins: dict[tuple[int, int], tuple[int, int]] = {}
    seg_fn = dask.delayed(_segment_window, pure=True)
    for i in range(nbi):
        for j in range(nbj):
            r0, c0 = max(0, rows[i] - depth[0]), max(0, cols[j] - depth[1])
            origins[i, j] = (int(r0), int(c0))
            windows[i, j] = seg_fn(
                win_blocks[i, j, 0], mean, std, groups=groups_arr, time_first=bool(time_first),
                method=method, params=params, origin=(int(r0), int(c0)),
                offset=int((i * nbj + j) * stride),
            )  # fmt: skip
    match_fn = dask.delayed(_match, pure=True)
    pairs = []
    for i in range(nbi):
        for j in range(nbj):
            for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
                k = (i + di, j + dj)
                if k in windows:
                    pairs.append(match_fn(windows[i, j], origins[i, j], windows[k], origins[k]))
    cores: dict[tuple[int, int], Any] = {}
    crop_fn = dask.delayed(_crop, pure=True)
    for (i, j), win in windows.items():
        r0, c0 = origins[i, j]
        cores[i, j] = crop_fn(
            win, slice(int(rows[i] - r0), int(rows[i + 1] - r0)),
            slice(int(cols[j] - c0), int(cols[j + 1] - c0)),
        )  # fmt: skip
    call = _skipped.SkippedCall(_nodata_message)
    call.expected += 1
    ids_fn = dask.delayed(_core_ids, pure=True)
    table = dask.delayed(call.reporter(_merge_table), pure=False)(
        pairs, [ids_fn(c) for c in cores.values()], int(ny * nx), np.array([0])
    )
    call.seal()
    dtype = np.int32 if ny * nx < 2**31 - 1 else np.int64
    relabel_fn = dask.delayed(_relabel, pure=True)
    blocks = [
        [
            dsa.from_delayed(
                relabel_fn(cores[i, j], table, dtype),
                shape=(int(rows[i + 1] - rows[i]), int(cols[j + 1] - cols[j])),
                dtype=dtype,
                meta=np.empty((0, 0), dtype),
            )
            for j in range(nbj)
        ]
        for i in range(nbi)
    ]
    data = dsa.block(blocks)
    coords = {k: v for k, v in src.coords.items() if set(v.dims) <= {"y", "x"}}
    out = xr.DataArray(data, dims=("y", "x"), coords=coords, name="segment")
    run = {
        "method": method, "bands": list(ds.data_vars), "dates": None if dates is None else
        [str(pd.Timestamp(t).date()) for t in np.atleast_1d(ds["time"].values)],
        "time_first": bool(time_first), "size": size, "compactness": compactness, "scale": scale,
        "sigma": sigma, "min_size": min_size, "tile": tile, "halo": halo,
    }  # fmt: skip
    attrs = provenance([src.attrs], "segment", run)
    attrs = {k: v for k, v in attrs.items() if k not in ("units", "nodata", "_FillValue")}
    attrs.update({"long_name": "segment id", "nodata": NODATA})
    out.attrs = attrs
    out.encoding["_FillValue"] = dtype(NODATA)
    if not lazy:
        out = out.compute()
    return out


def _tile_chunks(n: int, tile: int, halo: int) -> tuple[int, ...]:
    """Tiles of ``tile`` pixels from the first one; a last tile smaller than ``halo`` joins the
    one before (so that every tile is at least as wide as the halo)."""
    sizes = [tile] * (n // tile) + ([n % tile] if n % tile else [])
    if len(sizes) > 1 and sizes[-1] < halo:
        last = sizes.pop()
        sizes[-1] += last
    return tuple(sizes)


def _channel_stats(sums: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, s, ss = sums
    k = int(groups.max()) + 1
    n = np.bincount(groups, weights=n, minlength=k)
    s = np.bincount(groups, weights=s, minlength=k)
    ss = np.bincount(groups, weights=ss, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / n, 0.0)
        std = np.sqrt(np.maximum(np.where(n > 0, ss / n, 0.0) - mean**2, 0.0))
    std = np.where(std > 0, std, 1.0)
    return mean.astype("float32"), std.astype("float32")


# ------------------------------------------------------------------------------- object features
def _geobox(obj: Any) -> Any:
    import odc.geo.xr  # noqa: F401  (registers the .odc accessor)

    try:
        return obj.odc.geobox
    except Exception:  # noqa: BLE001 - no geobox: handled by the caller
        return None


def _same_axis(a: xr.DataArray, b: xr.DataArray) -> bool:
    """Equal pixel coordinates, to 1 % of a pixel."""
    va, vb = np.asarray(a.values, dtype="float64"), np.asarray(b.values, dtype="float64")
    step = float(np.abs(np.diff(va)).min()) if va.size > 1 else 1.0
    return bool(np.allclose(va, vb, rtol=0.0, atol=0.01 * step))


def _check_segments(segments: Any, ds: xr.Dataset | None = None) -> xr.DataArray:
    """``segments`` as a (y, x) integer DataArray, on the grid of ``ds`` when given."""
    if not isinstance(segments, xr.DataArray):
        raise InputError(
            f"segments must be an xarray DataArray of segment ids (from eoai.ml.segment), got "
            f"{type(segments).__name__}"
        )
    missing = [d for d in ("y", "x") if d not in segments.dims]
    if missing or segments.ndim != 2:
        raise MissingDimensionError(
            f"segments must have dims (y, x), they have {tuple(segments.dims)}; make them with "
            "cube.eoai.segment(...)"
        )
    if not np.issubdtype(segments.dtype, np.integer):
        raise InputError(
            f"segments must hold integer ids, they are {segments.dtype}; make them with "
            "cube.eoai.segment(...)"
        )
    segments = segments.transpose("y", "x")
    if ds is not None:
        same = all(
            ds.sizes[d] == segments.sizes[d]
            and (d not in ds.coords or d not in segments.coords or _same_axis(ds[d], segments[d]))
            for d in ("y", "x")
        )
        if not same:
            raise InputError(
                f"the segments are not on the cube's grid (segments {segments.sizes['y']} x "
                f"{segments.sizes['x']} px, cube {ds.sizes['y']} x {ds.sizes['x']} px, or other "
                "x / y coordinates): segment this cube (cube.eoai.segment(...)) or select the "
                "same window of both"
            )
        ga, gb = _geobox(ds), _geobox(segments)
        if ga is not None and gb is not None and ga.crs is not None and gb.crs is not None:
            if ga.crs != gb.crs:
                raise CRSError(
                    f"the segments are in {gb.crs} and the cube in {ga.crs}: segment this cube"
                )
    return segments


def _nodata_id(segments: xr.DataArray) -> int:
    value = segments.attrs.get("nodata", NODATA)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InputError(f"segments.attrs['nodata'] must be an integer id, got {value!r}") from None


def _parse_stats(stats: Sequence[str]) -> list[tuple[str, float | None]]:
    if isinstance(stats, str):
        stats = [stats]
    out: list[tuple[str, float | None]] = []
    for s in stats:
        if not isinstance(s, str):
            raise InputError(f"stats must be names such as 'mean', 'std', 'p10', got {s!r}")
        if s in ("mean", "std"):
            out.append((s, None))
        elif s in ("min", "max", "median"):
            out.append((s, {"min": 0.0, "max": 1.0, "median": 0.5}[s]))
        elif s.startswith("p") and s[1:].replace(".", "", 1).isdigit() and 0 <= float(s[1:]) <= 100:
            out.append((s, float(s[1:]) / 100.0))
        else:
            raise InputError(
                f"unknown statistic {s!r}: use 'mean', 'std', 'min', 'max', 'median' or a "
                "percentile 'p0' ... 'p100' (e.g. 'p10')"
            )
    if not out:
        raise InputError("stats= is empty; ask for at least one statistic (e.g. 'mean')")
    if len({s for s, _ in out}) != len(out):
        raise InputError(f"stats= has duplicates: {list(stats)}")
    return out


def _group_quantiles(inv: np.ndarray, k: int, x: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles (as ``np.nanquantile``) of ``x`` (n, F) per group -> (k, F, Q)."""
    n, n_f = x.shape
    out = np.full((k, n_f, qs.size), np.nan, dtype="float64")
    if n == 0 or qs.size == 0:
        return out
    sizes = np.bincount(inv, minlength=k)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for f in range(n_f):  # one sort per feature, vectorised over the groups
        v = x[:, f].astype("float64")
        nv = np.bincount(inv, weights=np.isfinite(v), minlength=k).astype(np.int64)
        vs = v[np.lexsort((v, inv))]  # by group, then value (NaN last in each group)
        ok = nv > 0
        for qi, q in enumerate(qs):
            pos = start + q * np.maximum(nv - 1, 0)
            lo = np.floor(pos).astype(np.int64)
            hi = np.minimum(lo + 1, start + np.maximum(nv - 1, 0))
            lo, hi = np.minimum(lo, n - 1), np.minimum(hi, n - 1)
            val = vs[lo] + (pos - lo) * (vs[hi] - vs[lo])
            out[:, f, qi] = np.where(ok, val, np.nan)
    return out


def _block_ids(lab: np.ndarray, nodata: int) -> np.ndarray:
    ids = np.unique(lab)
    return ids[ids != nodata]


def _multi_ids(per_block: list[np.ndarray]) -> np.ndarray:
    if not per_block:
        return np.empty(0, np.int64)
    ids, counts = np.unique(np.concatenate(per_block), return_counts=True)
    return ids[counts > 1]


def _block_stats(
    x: np.ndarray,
    pad: np.ndarray,
    multi: np.ndarray,
    *,
    qs: np.ndarray,
    origin: tuple[int, int],
    nodata: int,
) -> dict[str, Any]:
    """Partial sums of one chunk (and exact quantiles of the segments wholly inside it)."""
    from scipy.sparse import csr_matrix

    lab = pad[1:-1, 1:-1]
    m = lab != nodata
    ids_px = lab[m]
    u, inv = np.unique(ids_px, return_inverse=True)
    k, n = u.size, ids_px.size
    xv = np.asarray(x)[m]  # (pixel, feature) as read (float32): no float64 copy of the block
    onehot = csr_matrix((np.ones(n), (inv, np.arange(n))), shape=(k, n))
    n_f = xv.shape[1]
    count, total, sumsq = (np.zeros((k, n_f)) for _ in range(3))
    for f0 in range(0, n_f, _SLAB):  # float64 sums over slabs of features: bounded memory
        part = xv[:, f0 : f0 + _SLAB].astype("float64")
        fin = np.isfinite(part)
        part[~fin] = 0.0
        count[:, f0 : f0 + _SLAB] = onehot @ fin.astype("float64")
        total[:, f0 : f0 + _SLAB] = onehot @ part
        sumsq[:, f0 : f0 + _SLAB] = onehot @ (part * part)
    # pixel edges to another id (or nodata, or outside the cube): vertical edges (left/right
    # neighbours) and horizontal edges (up/down)
    ev = (pad[1:-1, :-2] != lab).astype(np.int64) + (pad[1:-1, 2:] != lab)
    eh = (pad[:-2, 1:-1] != lab).astype(np.int64) + (pad[2:, 1:-1] != lab)
    rr, cc = np.nonzero(m)
    out = {
        "ids": u,
        "n": np.bincount(inv, minlength=k),
        "count": count,
        "sum": total,
        "sumsq": sumsq,
        "ev": np.bincount(inv, weights=ev[m], minlength=k),
        "eh": np.bincount(inv, weights=eh[m], minlength=k),
        "row": np.bincount(inv, weights=rr + origin[0] + 0.5, minlength=k),
        "col": np.bincount(inv, weights=cc + origin[1] + 0.5, minlength=k),
    }
    if qs.size:
        split = np.isin(u, multi)
        single = ~split
        remap = np.cumsum(single) - 1
        sel = single[inv]
        out["single"] = u[single]
        out["q"] = _group_quantiles(remap[inv[sel]], int(single.sum()), xv[sel], qs)
        out["raw_ids"] = ids_px[~sel]
        out["raw_x"] = xv[~sel]
    return out


def _combine(parts: list[dict[str, Any]], qs: np.ndarray) -> dict[str, Any]:
    ids = np.unique(np.concatenate([p["ids"] for p in parts]))
    k = ids.size
    n_f = parts[0]["sum"].shape[1]
    total: dict[str, Any] = {
        "ids": ids,
        "n": np.zeros(k),
        "count": np.zeros((k, n_f)),
        "sum": np.zeros((k, n_f)),
        "sumsq": np.zeros((k, n_f)),
        **{key: np.zeros(k) for key in ("ev", "eh", "row", "col")},
    }
    for p in parts:
        pos = np.searchsorted(ids, p["ids"])
        for key in ("n", "count", "sum", "sumsq", "ev", "eh", "row", "col"):
            total[key][pos] += p[key]
    if qs.size:
        q = np.full((k, n_f, qs.size), np.nan)
        for p in parts:
            q[np.searchsorted(ids, p["single"])] = p["q"]
        raw_ids = np.concatenate([p["raw_ids"] for p in parts])
        if raw_ids.size:
            raw_x = np.concatenate([p["raw_x"] for p in parts])
            u, inv = np.unique(raw_ids, return_inverse=True)
            q[np.searchsorted(ids, u)] = _group_quantiles(inv, u.size, raw_x, qs)
        total["q"] = q
    return total


def object_features(
    cube: xr.Dataset | xr.DataArray,
    segments: xr.DataArray,
    *,
    stats: Sequence[str] = ("mean", "std", "p10", "p50", "p90"),
    shape: bool = True,
) -> pd.DataFrame:
    """Per-object features: zonal statistics of every band-date and shape descriptors.

    Parameters
    ----------
    cube
        Dataset / DataArray ``(time, y, x)`` / ``(y, x)``; dask-backed is read chunk by chunk.
    segments
        Segment ids on the cube's grid (:func:`segment`); ``attrs["nodata"]`` (default 0) is no
        segment.
    stats
        Statistics per feature, over the valid (non-NaN) pixels of the object: ``"mean"``,
        ``"std"`` (population), ``"min"``, ``"max"``, ``"median"``, percentiles ``"p10"``...
        (linear interpolation, as :func:`numpy.nanpercentile`; exact, also for objects that span
        several chunks).
    shape
        Add the shape descriptors ``area_m2``, ``perimeter_m`` (pixel edges), ``compactness``
        (``4 pi area / perimeter**2``, 1 for a disc) as features.

    Returns
    -------
    pandas.DataFrame
        Indexed by segment id (``segment``), one column per statistic and feature, named
        ``<feature>_<stat>`` (e.g. ``red_2021-03-04_mean``; features as in
        :func:`eoai.ml.features.feature_names`), statistic-major (all means, then all stds...),
        then the shape descriptors, and always ``area_px`` (pixels) and ``x``, ``y`` (centroid in
        the cube's CRS; pixel indices if it has none). ``attrs["eoai:features"]`` lists the
        feature columns (statistics and shape descriptors), ``attrs["eoai:cube"]`` describes the
        cube.

    Raises
    ------
    eoai.errors.InputError
        The segments are not on the cube's grid, have no pixel (all nodata), or a statistic is
        unknown.
    eoai.errors.CRSError
        Segments and cube are in different CRSs.

    Warns
    -----
    eoai.errors.DataSkippedWarning
        Once, with the count of NaN pixel values skipped inside the objects and of statistics left
        NaN (an object with no valid pixel for a feature).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.arange(8.0).reshape(2, 4), dims=("y", "x"), name="b")
    >>> seg = xr.DataArray(np.array([[1, 1, 2, 2], [1, 1, 2, 2]], "int32"), dims=("y", "x"))
    >>> f = object_features(da, seg, stats=("mean", "max"), shape=False)
    >>> f["b_mean"].tolist(), f["b_max"].tolist(), f["area_px"].tolist()
    ([2.5, 4.5], [5.0, 7.0], [4, 4])
    """
    import dask
    import dask.array as dsa

    from .samples import describe_cube

    ds = as_dataset(cube)
    segments = _check_segments(segments, ds)
    nodata = _nodata_id(segments)
    parsed = _parse_stats(stats)
    if not isinstance(shape, (bool, np.bool_)):
        raise InputError(f"shape must be True or False, got {shape!r}")
    names = feature_names(ds)
    feats = feature_array(ds).transpose("y", "x", "feature").data
    feats = dsa.asarray(feats)
    if len(feats.chunks[2]) > 1:
        feats = feats.rechunk({2: -1})
    seg = dsa.asarray(segments.data).rechunk(feats.chunks[:2])
    pad = dsa.overlap.overlap(seg, depth={0: 1, 1: 1}, boundary={0: nodata - 1, 1: nodata - 1})
    # ids below nodata - 1 would not differ from the outside value: they are not segment ids
    qs = np.array([q for _, q in parsed if q is not None], dtype="float64")
    seg_blocks = seg.to_delayed()
    pad_blocks = pad.to_delayed()
    feat_blocks = feats.to_delayed()
    rows = np.cumsum((0,) + seg.chunks[0])
    cols = np.cumsum((0,) + seg.chunks[1])
    ids_fn = dask.delayed(_block_ids, pure=True)
    multi = dask.delayed(_multi_ids, pure=True)([ids_fn(b, nodata) for b in seg_blocks.ravel()])
    stat_fn = dask.delayed(_block_stats, pure=True)
    parts = [
        stat_fn(feat_blocks[i, j, 0], pad_blocks[i, j], multi, qs=qs,
                origin=(int(rows[i]), int(cols[j])), nodata=nodata)
        for i in range(seg_blocks.shape[0])
        for j in range(seg_blocks.shape[1])
    ]  # fmt: skip
    (total,) = dask.compute(dask.delayed(_combine, pure=True)(parts, qs))
    ids = total["ids"]
    if ids.size == 0:
        raise InputError(
            f"the segments have no pixel: every pixel is the nodata id {nodata} (no valid data "
            "where the segments were made?); segment a cube window with data"
        )
    n = total["n"]
    count = total["count"]
    columns: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total["sum"] / np.maximum(count, 1), np.nan)
        var = np.where(count > 0, total["sumsq"] / np.maximum(count, 1) - mean**2, np.nan)
    qi = 0
    for name, _ in parsed:
        if name == "mean":
            values = mean
        elif name == "std":
            values = np.sqrt(np.maximum(var, 0.0))
        else:
            values = total["q"][:, :, qi]
            qi += 1
        for f, fname in enumerate(names):
            columns[f"{fname}_{name}"] = values[:, f].astype("float32")
    feature_cols = list(columns)
    gbox = _geobox(ds)
    a = gbox.affine if gbox is not None and gbox.crs is not None else None
    if shape:
        rx, ry = (abs(a.a), abs(a.e)) if a is not None else (1.0, 1.0)
        area = n * rx * ry
        perimeter = total["ev"] * ry + total["eh"] * rx
        columns["area_m2"] = area
        columns["perimeter_m"] = perimeter
        columns["compactness"] = np.where(perimeter > 0, 4 * np.pi * area / perimeter**2, np.nan)
        feature_cols += list(_SHAPE)
    columns["area_px"] = n.astype("int64")
    r, c = total["row"] / n, total["col"] / n
    if a is not None:
        columns["x"], columns["y"] = a.a * c + a.b * r + a.c, a.d * c + a.e * r + a.f
    else:
        columns["x"], columns["y"] = c - 0.5, r - 0.5
    table = pd.DataFrame(columns, index=pd.Index(ids, name="segment"))
    n_nan = int((n[:, None] - count).sum())
    empty = int((count == 0).sum()) * len(parsed)
    if n_nan:
        detail = (
            f"; {empty} of {count.size * len(parsed)} statistics have no valid pixel and are NaN"
            if empty
            else ""
        )
        warnings.warn(
            f"{n_nan} of {int(n.sum()) * len(names)} pixel values (pixel x feature) inside the "
            f"{ids.size} objects are NaN (clouds, gaps) and were skipped{detail}",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
    table.attrs["eoai:features"] = feature_cols
    table.attrs["eoai:cube"] = describe_cube(ds)
    table.attrs["eoai:method"] = "object_features"
    table.attrs["eoai:stats"] = [s for s, _ in parsed]
    table.attrs["eoai:segments"] = {
        k: segments.attrs[k] for k in ("eoai:method", "eoai:parameters") if k in segments.attrs
    }
    return table


# ------------------------------------------------------------------------------- object samples
def _check_table(features: Any) -> pd.DataFrame:
    if not isinstance(features, pd.DataFrame) or "area_px" not in features.columns:
        raise InputError(
            "features must be the table of eoai.ml.object_features(cube, segments) (a DataFrame "
            f"indexed by segment id with an 'area_px' column), got {type(features).__name__}"
        )
    return features


def object_samples(
    features: pd.DataFrame,
    segments: xr.DataArray,
    labels: Any,
    label: str = "class",
    *,
    group: str | None = None,
    min_overlap: float = 0.5,
    all_touched: bool = False,
    crs: Any = None,
) -> pd.DataFrame:
    """Training samples of objects: one label per object, by majority overlap with the labels.

    Parameters
    ----------
    features
        Table of :func:`object_features` for these segments.
    segments
        The segment ids (:func:`segment`) the features were computed on, with a CRS.
    labels
        GeoDataFrame (or a path, see :func:`eoai.ml.samples.read_labels`) of labelled polygons
        and/or points, in any CRS.
    label
        Column of ``labels`` with the class.
    group
        Column of ``labels`` identifying groups for grouped cross-validation; default the row of
        the label geometry (one group per polygon). An object takes the group of the geometry
        that gave most of its majority class.
    min_overlap
        Share of an object's pixels that polygons of its majority class must cover for the object
        to be labelled (objects labelled by points are kept whatever their size).
    all_touched
        Burn every pixel a polygon touches, not only those whose centre is inside.
    crs
        CRS of a CSV with x/y columns.

    Returns
    -------
    pandas.DataFrame
        The rows of ``features`` of the labelled objects (index ``segment``), plus ``label``,
        ``group`` and ``coverage`` (the share of the object covered by its label's polygons);
        ``attrs`` ``eoai:features`` (as ``features``), ``eoai:label``, ``eoai:cube``: a table
        :func:`eoai.ml.fit` and :func:`eoai.ml.cross_validate` take as it is.

    Raises
    ------
    eoai.errors.InputError
        Not an object feature table, a missing label / group column, or features of other
        segments.
    eoai.errors.CRSError
        Labels or segments without a CRS.
    eoai.errors.NoOverlapError
        No object gets a label.

    Warns
    -----
    eoai.errors.DataSkippedWarning
        With the count of objects touched by labels but covered less than ``min_overlap``.

    Examples
    --------
    >>> import eoai
    >>> cube, truth = eoai.datasets.synthetic_cube(shape=(32, 32), freq="30D", seed=0)
    >>> seg = segment(cube, method="felzenszwalb", bands=["red", "nir"])
    >>> feats = object_features(cube[["red", "nir"]], seg, stats=("mean",))  # doctest: +SKIP
    >>> table = object_samples(feats, seg, eoai.datasets.parcels(truth))  # doctest: +SKIP
    >>> model = eoai.ml.fit(table, n_estimators=20)  # doctest: +SKIP
    """
    from .samples import _clean_geometries, _pixel_indices, read_labels

    features = _check_table(features)
    segments = _check_segments(segments)
    nodata = _nodata_id(segments)
    _check_number("min_overlap", min_overlap, 0)
    if min_overlap > 1:
        raise InputError(f"min_overlap must be in [0, 1], got {min_overlap}")
    geobox = _geobox(segments)
    if geobox is None or geobox.crs is None:
        raise CRSError(
            "the segments have no CRS / geotransform; set it with "
            "segments.odc.assign_crs('EPSG:....') so that labels can be placed on them"
        )
    gdf = read_labels(labels, crs=crs)
    if gdf.crs is None:
        raise CRSError("the labels have no CRS; set it with labels.set_crs('EPSG:....')")
    if label not in gdf.columns:
        raise InputError(
            f"the labels have no column {label!r}; pass label= one of "
            f"{[c for c in gdf.columns if c != gdf.geometry.name]}"
        )
    if group is not None and group not in gdf.columns:
        raise InputError(f"the labels have no group column {group!r}; columns: {list(gdf.columns)}")
    gdf = _clean_geometries(gdf[gdf[label].notna()])
    if len(gdf) == 0:
        raise InputError("no valid labelled geometry (all empty, or without a label)")
    gdf = gdf.to_crs(geobox.crs.to_wkt()).reset_index(drop=True)
    rows, cols, owner = _pixel_indices(gdf, geobox, all_touched)
    if rows.size == 0:
        raise NoOverlapError(
            f"none of the {len(gdf)} labels falls on the segments (bounds "
            f"{tuple(round(float(v), 2) for v in geobox.boundingbox)} in {geobox.crs})"
        )
    # point-wise read of the segment ids under the labels (dask reads what it needs)
    ids = np.asarray(
        segments.isel(y=xr.DataArray(rows, dims="p"), x=xr.DataArray(cols, dims="p")).values
    )
    keep = ids != nodata
    votes = pd.DataFrame(
        {
            "segment": ids[keep],
            "label": gdf[label].to_numpy()[owner[keep]],
            "owner": owner[keep],
            "point": np.asarray(gdf.geom_type == "Point")[owner[keep]],
        }
    )
    if votes.empty:
        raise NoOverlapError("the labels fall only on pixels without a segment (nodata)")
    unknown = np.setdiff1d(votes["segment"].unique(), features.index.to_numpy())
    if unknown.size:
        raise InputError(
            f"{unknown.size} segments under the labels are not in features (e.g. id "
            f"{int(unknown[0])}): compute features with object_features(cube, segments) of "
            "these segments"
        )
    per = votes.groupby(["segment", "label"], sort=True).agg(
        n=("owner", "size"), points=("point", "sum")
    )
    per = per.reset_index().sort_values(["segment", "n"], ascending=[True, False], kind="stable")
    best = per.drop_duplicates("segment").set_index("segment")
    area = features.loc[best.index, "area_px"].to_numpy()
    coverage = (best["n"] - best["points"]).to_numpy() / area
    ok = (best["points"].to_numpy() > 0) | (coverage >= min_overlap)
    dropped = int((~ok).sum())
    if dropped:
        warnings.warn(
            f"{dropped} of {len(best)} objects under the labels are covered less than "
            f"min_overlap={min_overlap} by polygons of their majority class and were left out",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
    best = best[ok]
    if best.empty:
        raise NoOverlapError(
            f"no object is covered at least min_overlap={min_overlap} by one class: lower "
            "min_overlap or segment into smaller objects"
        )
    # group: the geometry that gave most pixels of the object's majority class
    chosen = votes.merge(best[["label"]].reset_index(), on=["segment", "label"])
    top = chosen.groupby(["segment", "owner"]).size().rename("n").reset_index()
    top = top.sort_values(["segment", "n"], ascending=[True, False], kind="stable")
    top = top.drop_duplicates("segment").set_index("segment")["owner"]
    group_values = gdf[group].to_numpy() if group is not None else np.arange(len(gdf))
    table = features.loc[best.index].copy()
    table["label"] = best["label"].to_numpy()
    table["group"] = group_values[top.loc[best.index].to_numpy()]
    table["coverage"] = coverage[ok].astype("float32")
    table.attrs = dict(features.attrs)
    table.attrs["eoai:label"] = label
    return table


# ------------------------------------------------------------------------------------- polygons
def _block_shapes(lab: np.ndarray, transform: Any, nodata: int) -> list[tuple[dict, int]]:
    import rasterio.features

    lab = np.asarray(lab)
    if lab.dtype != np.int32:
        lab = lab.astype(np.int32)
    return [(g, int(v)) for g, v in rasterio.features.shapes(
        lab, mask=lab != nodata, transform=transform, connectivity=4
    )]  # fmt: skip


def segment_polygons(segments: xr.DataArray) -> Any:
    """The segments as polygons: one row per segment id, in the segments' CRS.

    Chunks are vectorised one by one; a segment that spans chunks is dissolved into one geometry.

    Parameters
    ----------
    segments
        Segment ids (:func:`segment`) with a CRS; ``attrs["nodata"]`` (default 0) is left out.

    Returns
    -------
    geopandas.GeoDataFrame
        Index ``segment``, column ``geometry`` (Polygon, or MultiPolygon for a segment in
        several pieces), pixel-edge boundaries.

    Examples
    --------
    >>> import numpy as np, xarray as xr, odc.geo.xr
    >>> seg = xr.DataArray(np.array([[1, 1, 2], [1, 2, 2]], "int32"), dims=("y", "x"),
    ...                    coords={"y": [15.0, 5.0], "x": [5.0, 15.0, 25.0]}).odc.assign_crs(32633)
    >>> segment_polygons(seg).area.tolist()
    [300.0, 300.0]
    """
    import dask
    import dask.array as dsa
    import geopandas as gpd
    from shapely.geometry import shape

    segments = _check_segments(segments)
    nodata = _nodata_id(segments)
    gbox = _geobox(segments)
    if gbox is None or gbox.crs is None:
        raise CRSError(
            "the segments have no CRS / geotransform; set it with segments.odc.assign_crs(...)"
        )
    if segments.dtype.itemsize > 4 and int(segments.max()) >= 2**31:
        raise InputError("segment ids beyond 2**31 cannot be vectorised (rasterio needs int32)")
    data = dsa.asarray(segments.data)
    rows = np.cumsum((0,) + data.chunks[0])
    cols = np.cumsum((0,) + data.chunks[1])
    blocks = data.to_delayed()
    fn = dask.delayed(_block_shapes, pure=True)
    tasks = [
        fn(blocks[i, j], gbox.affine * gbox.affine.translation(int(cols[j]), int(rows[i])), nodata)
        for i in range(blocks.shape[0])
        for j in range(blocks.shape[1])
    ]
    parts = [p for block in dask.compute(*tasks) for p in block]
    if not parts:
        raise InputError(
            f"the segments have no pixel: every pixel is the nodata id {nodata}; nothing to "
            "vectorise"
        )
    gdf = gpd.GeoDataFrame(
        {"segment": [v for _, v in parts]}, geometry=[shape(g) for g, _ in parts],
        crs=gbox.crs.to_wkt(),
    )  # fmt: skip
    if gdf["segment"].duplicated().any():
        gdf = gdf.dissolve(by="segment")
    else:
        gdf = gdf.set_index("segment")
    return gdf.sort_index()


# ------------------------------------------------------------------------------------- classify
_STAT_SUFFIX = ("mean", "std", "min", "max", "median")


def _model_stats(model: Any, pixel_names: list[str]) -> tuple[list[str], bool]:
    """(statistics the model's features need, whether it reads pixel features)."""
    pixel = set(pixel_names)
    if all(f in pixel for f in model.features):
        return ["mean"], True
    needed: list[str] = []
    for f in model.features:
        if f in _SHAPE:
            continue
        stat = f.rsplit("_", 1)[-1] if "_" in f else ""
        if stat in _STAT_SUFFIX or (
            stat.startswith("p") and stat[1:].replace(".", "", 1).isdigit()
        ):
            if stat not in needed:
                needed.append(stat)
    return needed or ["mean"], False


def _object_inputs(table: pd.DataFrame, model: Any) -> pd.DataFrame:
    """The model's input columns of an object table (object-trained, or pixel features as means)."""
    feats = list(model.features)
    if all(f in table.columns for f in feats):
        return table[feats]
    means = [f"{f}_mean" for f in feats]
    if all(m in table.columns for m in means):
        return table[means].set_axis(feats, axis=1)
    missing = [f for f in feats if f not in table.columns and f"{f}_mean" not in table.columns]
    from .features import _short

    raise ModelError(
        f"the object table lacks {len(missing)} of the model's {len(feats)} features: "
        f"{_short(missing)}. Train the model on object samples of the same statistics "
        "(eoai.ml.fit(object_samples(object_features(cube, segments), ...))), or pass a model of "
        "pixel features (applied to each object's mean) and a cube with those bands and dates"
    )


def _lookup(seg: np.ndarray, ids: np.ndarray, values: np.ndarray, fill: Any) -> np.ndarray:
    out = np.full(seg.shape, fill, dtype=values.dtype)
    pos = np.searchsorted(ids, seg)
    pos = np.minimum(pos, max(ids.size - 1, 0))
    hit = (ids.size > 0) & (ids[pos] == seg) if ids.size else np.zeros(seg.shape, bool)
    out[hit] = values[pos[hit]]
    return out


def _lookup_block(block: np.ndarray, table: tuple, which: int, fill: Any) -> np.ndarray:
    return _lookup(block, table[0], table[which], fill)


def classify_objects(
    cube: xr.Dataset | xr.DataArray | pd.DataFrame,
    segments: xr.DataArray,
    model: Any,
    *,
    nodata: int = 255,
    polygons: bool = True,
    threads: int | None = None,
) -> tuple[Any, xr.Dataset]:
    """Classify objects with any eoai classifier: polygons with class and probability, and a map.

    Parameters
    ----------
    cube
        The cube (its object features are computed with :func:`object_features`, with the
        statistics the model reads), or the table of :func:`object_features` itself.
    segments
        Segment ids (:func:`segment`) on the cube's grid.
    model
        A classifier of :func:`eoai.ml.fit` / :func:`eoai.ml.load_model`: trained on object
        samples (:func:`object_samples`; its features are object statistics), or on pixel
        samples (its features are band-dates, or band-date means of a pixel network such as
        TempCNN / L-TAE: each object is then classified by its mean series). Patch models
        (U-Net) read images, not objects, and are refused.
    nodata
        Class value of the map where there is no segment or no prediction (never a class code).
    polygons
        Return the objects as polygons (:func:`segment_polygons`); ``False`` gives a plain
        DataFrame without geometries (cheaper on large scenes).
    threads
        Threads of the model's prediction (forest ``threads``, OpenMP threads of gradient
        boosting); default the model's.

    Returns
    -------
    objects : geopandas.GeoDataFrame or pandas.DataFrame
        Index ``segment``; ``class`` (the class label), ``class_name``, ``code`` (the map value),
        ``probability`` (of the chosen class), ``area_px``, ``geometry``.
    classes : xarray.Dataset
        Lazy ``class`` map (uint8 codes, attrs as :func:`eoai.ml.classify`) and ``confidence``,
        on the segments' grid.

    Raises
    ------
    eoai.errors.ModelError
        Not an eoai classifier, a patch model, or features the objects do not have.
    eoai.errors.InputError
        Bad ``nodata``, segments not on the cube's grid.

    Examples
    --------
    >>> import eoai, eoai.ml
    >>> cube, truth = eoai.datasets.synthetic_cube(shape=(32, 32), freq="30D", seed=0)
    >>> seg = segment(cube, method="felzenszwalb", bands=["red", "nir"])
    >>> feats = object_features(cube[["red", "nir"]], seg, stats=("mean",))  # doctest: +SKIP
    >>> model = eoai.ml.fit(object_samples(feats, seg, eoai.datasets.parcels(truth)))  # doctest: +SKIP
    >>> objects, classes = classify_objects(feats, seg, model)  # doctest: +SKIP
    """
    import dask.array as dsa

    from .base import PixelClassifier
    from .classify import _predict_rows, _with_threads

    if not isinstance(model, PixelClassifier):
        raise ModelError(
            f"{type(model).__name__} is not an eoai classifier: train one with eoai.ml.fit "
            "(a raw scikit-learn estimator lacks the feature names and classes; a regression "
            "model predicts no classes)"
        )
    halo = getattr(model, "halo", 0)
    if halo and hasattr(model, "predict_proba_image"):
        raise ModelError(
            f"{model!r} is a patch model (it reads image windows, halo {halo} px), not "
            "object features: classify the pixels with cube.eoai.classify(model) and take the "
            "majority class per object, or train a model on object_samples"
        )
    if isinstance(nodata, bool) or not isinstance(nodata, (int, np.integer)):
        raise InputError(f"nodata must be an int in 0..255, got {nodata!r}")
    if not 0 <= nodata <= 255 or nodata in set(model.codes):
        raise InputError(
            f"nodata={nodata} must be a uint8 value that is not a class code {list(model.codes)}"
        )
    segments = _check_segments(segments)
    if isinstance(cube, pd.DataFrame):
        table = _check_table(cube)
        if hasattr(model, "for_cube"):
            raise ModelError(
                f"{type(model).__name__} is set up from the cube's dates (model.for_cube): pass "
                "the cube, not the object table"
            )
    else:
        ds = as_dataset(cube)
        if hasattr(model, "for_cube"):
            model = model.for_cube(ds)
        stats, _ = _model_stats(model, feature_names(ds))
        table = object_features(ds, segments, stats=stats, shape=True)
    x = _object_inputs(table, model).to_numpy(dtype="float32")
    n_classes = len(model.classes)
    if threads is not None:
        _check_number("threads", threads, 1, integer=True)
    proba = _predict_rows(x, _with_threads(model, threads), bool(model.allow_nan), n_classes)
    invalid = np.isnan(proba[:, 0])
    best = np.argmax(np.where(np.isnan(proba), -1.0, proba), axis=1)
    codes = np.asarray(model.codes, dtype="uint8")
    code = np.where(invalid, np.uint8(nodata), codes[best]).astype("uint8")
    conf = np.where(invalid, np.nan, proba[np.arange(len(best)), best]).astype("float32")
    classes = np.asarray(model.classes, dtype=object)
    names = np.asarray(model.class_names, dtype=object)
    objects = pd.DataFrame(
        {
            "class": np.where(invalid, None, classes[best]),
            "class_name": np.where(invalid, None, names[best]),
            "code": code,
            "probability": conf,
            "area_px": table["area_px"].to_numpy(),
        },
        index=table.index,
    )
    if invalid.any():
        warnings.warn(
            f"{int(invalid.sum())} of {len(invalid)} objects have no valid feature the model "
            f"can read and got the nodata class {nodata}",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
    if polygons:
        import geopandas as gpd

        shapes = segment_polygons(segments)
        objects = gpd.GeoDataFrame(
            objects.join(shapes, how="left"), geometry="geometry", crs=shapes.crs
        )
    # lazy maps: per-pixel look-up of the object's class and probability
    from .._graph import graph_constant

    ids = table.index.to_numpy()
    order = np.argsort(ids)
    ids, code_s, conf_s = ids[order], code[order], conf[order]
    seg = segments.data if isinstance(segments.data, dsa.Array) else dsa.asarray(segments.data)
    lut = graph_constant((ids, code_s, conf_s), prefix="objectclasses")

    cls_map = seg.map_blocks(
        _lookup_block, table=lut, which=1, fill=np.uint8(nodata), dtype=np.uint8,
        meta=np.empty((0, 0), np.uint8),
    )  # fmt: skip
    conf_map = seg.map_blocks(
        _lookup_block, table=lut, which=2, fill=np.float32(np.nan), dtype=np.float32,
        meta=np.empty((0, 0), np.float32),
    )  # fmt: skip
    coords = {k: v for k, v in segments.coords.items() if set(v.dims) <= {"y", "x"}}
    out = xr.Dataset(
        {
            "class": (
                ("y", "x"),
                cls_map,
                {
                    "long_name": "class",
                    "flag_values": [int(c) for c in codes],
                    "flag_meanings": " ".join(n.replace(" ", "_") for n in model.class_names),
                    "class_names": list(model.class_names),
                    "colours": list(model.colours),
                    "nodata": int(nodata),
                },
            ),
            "confidence": (
                ("y", "x"),
                conf_map,
                {
                    "long_name": "probability of the object's class",
                    "units": "1",
                },
            ),
        },  # fmt: skip
        coords=coords,
    )
    out["class"].encoding["_FillValue"] = np.uint8(nodata)
    out.attrs = provenance(
        [segments.attrs],
        "classify_objects",
        {"nodata": nodata, "threads": threads, "n_objects": int(len(ids)),
         "model_class": f"{type(model).__module__}.{type(model).__qualname__}"},
    )  # fmt: skip
    for k in ("long_name", "nodata", "_FillValue"):
        out.attrs.pop(k, None)
    if not isinstance(segments.data, dsa.Array):
        out = out.compute()
    return objects, out
