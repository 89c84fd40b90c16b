"""Bayesian smoothing of class probabilities (as sits' ``sits_smooth``), lazily with a halo.

Each pixel's class probabilities are turned into logits, ``x = log(p / (1 - p))`` per class, and
each logit is updated with a normal prior estimated from its neighbourhood (Camara et al., the
"Bayesian smoothing" of the ``sits`` R package): in a ``window x window`` neighbourhood the
``neigh_fraction`` share of the highest logits of the class gives the prior mean ``m`` and
variance ``s²``; with ``σ²`` the ``smoothness`` (the variance of the pixel's own logit, a
parameter) the posterior mean is

``x' = w x + (1 - w) m``,  ``w = s² / (s² + σ²)``.

Where the neighbourhood agrees (small ``s²``) the pixel is pulled towards it, which removes
salt-and-pepper noise; across a boundary between classes the neighbourhood variance is large and
the pixel keeps its own value, so edges stay sharp. The logits go back to probabilities through
the logistic function and are normalised to sum 1 per pixel. The class map is the most probable
class, with the codes and ``nodata`` conventions of :func:`eoai.ml.classify`.

Differences from sits: nodata pixels (NaN probabilities) are not neighbours and stay nodata (sits
works on rasters without holes), and ``neigh_fraction`` is taken of the valid neighbours only.
Like sits, the image edges are mirrored (numpy's ``"symmetric"`` padding) and probabilities are
clipped to ``[1e-4, 1 - 1e-4]`` before the logit (sits stores them as integers of 1e-4).

The work is done chunk by chunk (``dask.array.overlap`` with a halo of ``window // 2`` pixels,
then one task per chunk), so tiles give exactly the whole-image result.

Examples
--------
>>> import numpy as np, xarray as xr
>>> p = np.full((2, 5, 5), 0.1, dtype="float32"); p[0] = 0.9
>>> p[:, 2, 2] = [0.4, 0.6]  # one noisy pixel
>>> proba = xr.DataArray(p, dims=("class_name", "y", "x"), coords={"class_name": ["crop", "forest"]})
>>> out = bayes_smooth(proba, window=3)
>>> int(out["class"][2, 2]), round(float(out["probability"][0, 2, 2]), 2)
(1, 0.8)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._provenance import provenance
from ..errors import InputError, MissingDimensionError
from .classify import CLASS_DIM, _class_codes

#: probabilities are clipped to [EPS, 1 - EPS] before the logit (sits stores them in 1e-4 steps)
EPS = 1e-4
#: how far the classes of a valid pixel may sum away from 1
SUM_TOLERANCE = 1e-3
_STRIP = 64  # rows of a block sorted at once (bounds the window x window copy in memory)


def _sum_error(bad: int, total: int, worst: float, where: str) -> InputError:
    hint = (
        " (they look like percentages: divide by 100)"
        if 90 < worst < 110
        else " (scaled integers, e.g. sits' 0-10000: divide by the scale)"
        if worst > 110
        else ""
    )
    return InputError(
        f"the class probabilities do not sum to 1 at {bad} of {total} valid pixels{where} (e.g. "
        f"{worst:.4g}){hint}; pass the 'probability' of eoai.ml.classify(..., probabilities=True) "
        "or normalise them (p / p.sum('class_name'))"
    )


def check_block(p: np.ndarray, where: str = "") -> np.ndarray:
    """Valid-pixel mask of a ``(class, ...)`` block; raises if its classes do not sum to 1.

    A pixel is valid when every class is finite; NaN in some classes only is nodata too.
    """
    valid = np.isfinite(p).all(axis=0)
    if valid.any():
        v = p[:, valid]
        sums = v.sum(axis=0, dtype="float64")
        bad = np.abs(sums - 1) > SUM_TOLERANCE
        if bad.any():
            raise _sum_error(int(bad.sum()), int(valid.sum()), float(sums[bad][0]), where)
        if (v < -SUM_TOLERANCE).any() or (v > 1 + SUM_TOLERANCE).any():
            raise InputError(
                "the class probabilities must lie in [0, 1]; found values from "
                f"{float(v.min()):.4g} to {float(v.max()):.4g}: pass probabilities, not logits"
            )
    return valid


def as_probability(
    probabilities: xr.Dataset | xr.DataArray, what: str = "probabilities"
) -> tuple[xr.DataArray, dict[str, Any]]:
    """The ``(class_name, y, x)`` probability DataArray and the class-map attrs to reuse.

    ``probabilities`` is the output Dataset of :func:`eoai.ml.classify` (with ``probability``)
    or its ``probability`` DataArray. The class-map attrs come from the Dataset's ``class``
    variable when there is one, else from the class names (codes 1, 2, ... or the names when
    they are integers).
    """
    class_attrs: dict[str, Any] = {}
    if isinstance(probabilities, xr.Dataset):
        if "probability" not in probabilities.data_vars:
            raise InputError(
                f"{what}: the Dataset has no 'probability' variable (variables: "
                f"{sorted(map(str, probabilities.data_vars))}); classify with "
                "eoai.ml.classify(cube, model, probabilities=True)"
            )
        if "class" in probabilities.data_vars:
            class_attrs = dict(probabilities["class"].attrs)
        da = probabilities["probability"]
    elif isinstance(probabilities, xr.DataArray):
        da = probabilities
    else:
        raise InputError(
            f"{what} must be an xarray DataArray (class_name, y, x) or the Dataset of "
            f"eoai.ml.classify(..., probabilities=True), got {type(probabilities).__name__}"
        )
    missing = [d for d in (CLASS_DIM, "y", "x") if d not in da.dims]
    if missing or da.ndim != 3:
        raise MissingDimensionError(
            f"{what} must have dims ({CLASS_DIM}, y, x), got {tuple(da.dims)}; the 'probability' "
            "of eoai.ml.classify(..., probabilities=True) has them"
        )
    if not np.issubdtype(da.dtype, np.floating):
        raise InputError(
            f"{what} must be floating-point probabilities in [0, 1], got dtype {da.dtype} "
            "(scaled integers: divide by the scale first)"
        )
    n = da.sizes[CLASS_DIM]
    if n < 2:
        raise InputError(f"{what} has {n} class; smoothing and uncertainty need at least 2")
    da = da.transpose(CLASS_DIM, "y", "x")
    if not hasattr(da.data, "dask"):
        check_block(np.asarray(da.values))
    names = [str(c) for c in da[CLASS_DIM].values] if CLASS_DIM in da.coords else None
    if not class_attrs.get("flag_values") or len(class_attrs["flag_values"]) != n:
        names = names or [str(i + 1) for i in range(n)]
        try:
            codes = [int(c) for c in names]
        except ValueError:
            codes = list(range(1, n + 1))
        if not all(0 <= c < 255 for c in codes) or len(set(codes)) != n:
            codes = list(range(1, n + 1))
        class_attrs = {
            "long_name": "class",
            "flag_values": codes,
            "flag_meanings": " ".join(s.replace(" ", "_") for s in names),
            "class_names": names,
            "nodata": int(class_attrs.get("nodata", 255)),
        }
    return da, class_attrs


def _logits(p: np.ndarray) -> np.ndarray:
    q = np.clip(p.astype("float32", copy=False), EPS, 1 - EPS)
    return np.log(q / (1 - q))


def _smooth_class(logit: np.ndarray, window: int, fraction: float, smoothness: float) -> np.ndarray:
    """Posterior logits of one class on a padded ``(y + 2h, x + 2h)`` block -> ``(y, x)``."""
    from numpy.lib.stride_tricks import sliding_window_view

    h = window // 2
    ny, nx = logit.shape[0] - 2 * h, logit.shape[1] - 2 * h
    out = np.full((ny, nx), np.nan, dtype="float32")
    ranks = np.arange(window * window, dtype="float32")
    k_full = math.ceil(fraction * window * window)
    for r0 in range(0, ny, _STRIP):
        r1 = min(ny, r0 + _STRIP)
        strip = logit[r0 : r1 + 2 * h]
        win = sliding_window_view(strip, (window, window)).reshape(r1 - r0, nx, window * window)
        x0 = logit[r0 + h : r1 + h, h : h + nx]
        if not np.isnan(strip).any():  # every window full: the k highest by partition (faster)
            top = np.partition(win, window * window - k_full, axis=-1)[
                ..., window * window - k_full :
            ]
            mean = top.mean(axis=-1)
            var = top.var(axis=-1, ddof=1) if k_full >= 2 else np.zeros_like(mean)
            k = np.full(mean.shape, k_full, dtype="float32")
        else:
            n_valid = np.isfinite(win).sum(axis=-1)
            desc = -np.sort(-win, axis=-1)  # highest first, NaN (no data) last
            k = np.ceil(fraction * n_valid).astype("float32")
            use = ranks < k[..., None]
            mean = np.where(use, desc, 0.0).sum(axis=-1) / np.maximum(k, 1)
            var = np.where(use, (desc - mean[..., None]) ** 2, 0.0).sum(axis=-1)
            var = var / np.maximum(k - 1, 1)
        w = var / (var + smoothness)
        post = w * x0 + (1 - w) * mean
        out[r0:r1] = np.where(k >= 2, post, x0)  # a prior needs two neighbours
    return out


def _smooth_block(
    block: np.ndarray,
    window: int,
    fraction: float,
    smoothness: np.ndarray,
    halo: int,
    where: str = "",
) -> np.ndarray:
    """Smoothed probabilities of a ``(class, y + 2h, x + 2h)`` block, cropped to ``(class, y, x)``."""
    valid = np.isfinite(block).all(axis=0)
    check_block(block[:, halo : block.shape[1] - halo, halo : block.shape[2] - halo], where)
    logit = np.where(valid[None], _logits(block), np.nan).astype("float32")
    post = np.stack(
        [_smooth_class(logit[c], window, fraction, float(smoothness[c])) for c in range(len(logit))]
    )
    q = 1.0 / (1.0 + np.exp(-post))
    q /= q.sum(axis=0, keepdims=True)
    inner = valid[halo : valid.shape[0] - halo, halo : valid.shape[1] - halo]
    return np.where(inner[None], q, np.nan).astype("float32")


def _smooth_array(data: Any, window: int, fraction: float, smoothness: np.ndarray) -> Any:
    """``(class, y, x)`` numpy or dask -> smoothed, same type (dask: map_overlap with a halo)."""
    h = window // 2
    kw: dict[str, Any] = {
        "window": window,
        "fraction": fraction,
        "smoothness": smoothness,
        "halo": h,
    }
    if not hasattr(data, "dask"):
        padded = np.pad(np.asarray(data), ((0, 0), (h, h), (h, h)), mode="symmetric")
        return _smooth_block(padded, **kw)
    kw["where"] = " of a chunk"
    import dask.array as da
    from dask.array.overlap import ensure_minimum_chunksize

    data = data.rechunk(
        {
            0: -1,
            1: ensure_minimum_chunksize(h, data.chunks[1]),
            2: ensure_minimum_chunksize(h, data.chunks[2]),
        }
    )
    padded = da.overlap.overlap(
        data, depth={0: 0, 1: h, 2: h}, boundary={0: "none", 1: "reflect", 2: "reflect"}
    )
    return padded.map_blocks(
        _smooth_block, **kw, chunks=data.chunks, dtype=np.float32,
        meta=np.empty((0, 0, 0), np.float32),
    )  # fmt: skip


def _class_map(proba: xr.DataArray, attrs: dict[str, Any]) -> xr.DataArray:
    codes = np.asarray(attrs["flag_values"], dtype="uint8")
    nodata = int(attrs.get("nodata", 255))
    cls = xr.apply_ufunc(
        _class_codes, proba, input_core_dims=[[CLASS_DIM]], dask="parallelized",
        output_dtypes=[np.uint8], kwargs={"codes": codes, "nodata": nodata},
    )  # fmt: skip
    cls.attrs = dict(attrs)
    cls.encoding["_FillValue"] = np.uint8(nodata)
    return cls.transpose("y", "x")


def bayes_smooth(
    probabilities: xr.Dataset | xr.DataArray,
    *,
    window: int = 5,
    smoothness: float | Sequence[float] = 5.0,
    neigh_fraction: float = 0.5,
) -> xr.Dataset:
    """Bayesian smoothing of class probabilities (sits' ``sits_smooth``), lazily; and the class map.

    Parameters
    ----------
    probabilities
        ``(class_name, y, x)`` probabilities summing to 1 per pixel (NaN = nodata): the Dataset of
        :func:`eoai.ml.classify` with ``probabilities=True`` (its ``class`` codes and names are
        kept) or its ``probability`` variable. Dask-backed gives a lazy result.
    window
        Odd side of the neighbourhood (3 to 21 pixels, as in sits).
    smoothness
        Variance ``σ²`` of a pixel's logit (one value, or one per class): larger values smooth
        more (sits allows 1 to 200).
    neigh_fraction
        Share of the neighbours with the highest logits of each class that gives the prior
        (0 < f <= 1; sits' default 0.5).

    Returns
    -------
    xarray.Dataset
        ``probability`` ``(class_name, y, x)`` float32, smoothed, summing to 1 (NaN where the input
        is nodata), and ``class`` ``(y, x)`` uint8, its most probable class (codes and attrs of
        :func:`eoai.ml.classify`: ``flag_values``, ``class_names``, ``nodata``), with the grid and
        CRS of the input and ``attrs["eoai:method"] = "bayes_smooth"``.

    Raises
    ------
    eoai.errors.InputError
        A parameter is out of range, or the probabilities do not sum to 1 / lie outside [0, 1]
        (on a dask input: when the chunk is computed).
    eoai.errors.MissingDimensionError
        The input lacks the ``class_name``, ``y`` or ``x`` dimension.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> p = np.zeros((2, 4, 4), dtype="float32"); p[0, :, :2] = 0.8; p[0, :, 2:] = 0.3
    >>> p[0, 1, 1] = 0.45  # a noisy pixel of class 1
    >>> p[1] = 1 - p[0]
    >>> proba = xr.DataArray(p, dims=("class_name", "y", "x"), coords={"class_name": ["1", "2"]})
    >>> bayes_smooth(proba, window=3)["class"].values.tolist()
    [[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 2, 2]]
    """
    da, class_attrs = as_probability(probabilities)
    n = da.sizes[CLASS_DIM]
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise InputError(f"window must be an odd int (3 to 21), got {window!r}")
    if window < 3 or window > 21 or window % 2 == 0:
        raise InputError(f"window must be an odd number of pixels from 3 to 21, got {window}")
    if not isinstance(neigh_fraction, (int, float)) or not 0 < neigh_fraction <= 1:
        raise InputError(f"neigh_fraction must be in (0, 1], got {neigh_fraction!r}")
    try:
        smooth = np.asarray(smoothness, dtype="float64")
    except (TypeError, ValueError):
        smooth = np.asarray([np.nan])
    if smooth.ndim not in (0, 1) or (smooth.ndim == 1 and len(smooth) != n):
        raise InputError(
            f"smoothness must be one number or one per class ({n}), got {smoothness!r}"
        )
    smooth = np.broadcast_to(smooth, (n,)).copy()
    if not np.isfinite(smooth).all() or (smooth <= 0).any():
        raise InputError(f"smoothness must be > 0 (a variance of logits), got {smoothness!r}")
    if min(da.sizes["y"], da.sizes["x"]) <= window // 2:
        raise InputError(
            f"the map ({da.sizes['y']} x {da.sizes['x']} px) is smaller than the halo "
            f"{window // 2} of window={window}"
        )
    data = _smooth_array(da.data, int(window), float(neigh_fraction), smooth)
    proba = da.copy(data=data)
    proba.attrs = {"long_name": "class probability (Bayesian smoothing)", "units": "1"}
    out = xr.Dataset({"probability": proba, "class": _class_map(proba, class_attrs)})
    sources = [probabilities.attrs] if isinstance(probabilities, xr.Dataset) else []
    params = {
        "window": int(window),
        "smoothness": [float(s) for s in smooth] if np.ndim(smoothness) else float(smooth[0]),
        "neigh_fraction": float(neigh_fraction),
    }
    out.attrs = provenance(sources + [{}], "bayes_smooth", params)
    return out
