"""Active learning: where to label next, from the class probabilities of a classified cube.

:func:`suggest_samples` scores every pixel by how unsure the model is (normalised entropy, or the
margin between the two most probable classes, as :func:`eoai.ml.classify`'s ``uncertainty``),
keeps the most uncertain pixels of each chunk as candidates, and picks among all candidates, from
the most uncertain down, points at least ``min_distance`` apart (greedy; each pick removes the
candidates around it with a KD-tree query). Labelling these points and training again is the
uncertainty sampling of active learning (Settles 2009); the minimum distance keeps one confused
field from taking every suggestion.

The probabilities are read once (one dask compute, one small table of candidates per chunk);
nodata pixels are never proposed.

Examples
--------
>>> import numpy as np, xarray as xr
>>> p = np.zeros((2, 3, 3), "float32"); p[0] = 0.9; p[0, 1, 2] = 0.55; p[1] = 1 - p[0]
>>> proba = xr.DataArray(p, dims=("class_name", "y", "x"),
...                      coords={"class_name": ["crop", "forest"], "y": [20.0, 10.0, 0.0], "x": [0.0, 10.0, 20.0]})
>>> pts = suggest_samples(proba, 1)
>>> pts[["x", "y", "class_name"]].values.tolist()
[[20.0, 10.0, 'crop']]
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._skipped import user_stacklevel
from ..errors import DataSkippedWarning, InputError
from .classify import CLASS_DIM, UNCERTAINTY, _uncertainty
from .smoothing import as_probability, check_block

# candidates of a block or a cube: score, row, column, most probable class, number of valid pixels
_Candidates = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]


def _block_candidates(block: np.ndarray, row0: int, col0: int, k: int, method: str) -> _Candidates:
    """The ``k`` most uncertain valid pixels of a ``(class, y, x)`` block: score, row, col, class."""
    p = np.asarray(block, dtype="float32")
    valid = check_block(p, " of a chunk")
    score = _uncertainty(np.moveaxis(p, 0, -1), method)
    flat = np.where(valid, score, -np.inf).ravel()
    n_valid = int(valid.sum())
    take = min(k, n_valid)
    if take == 0:
        empty = np.empty(0, "int64")
        return np.empty(0, "float32"), empty, empty, empty, n_valid
    idx = np.argpartition(-flat, take - 1)[:take] if take < flat.size else np.arange(flat.size)
    idx = idx[np.isfinite(flat[idx])]
    rows, cols = np.unravel_index(idx, score.shape)
    best = np.argmax(np.where(np.isnan(p[:, rows, cols]), -1, p[:, rows, cols]), axis=0)
    return flat[idx], rows + row0, cols + col0, best.astype("int64"), n_valid


def _candidates(data: Any, k: int, method: str) -> _Candidates:
    """Candidates of every chunk of a ``(class, y, x)`` numpy or dask array, in one compute."""
    if not hasattr(data, "dask"):
        parts = [_block_candidates(np.asarray(data), 0, 0, k, method)]
    else:
        import dask

        data = data.rechunk({0: -1})
        rows0 = np.concatenate([[0], np.cumsum(data.chunks[1])[:-1]])
        cols0 = np.concatenate([[0], np.cumsum(data.chunks[2])[:-1]])
        blocks = data.to_delayed()
        tasks = [
            dask.delayed(_block_candidates)(
                blocks[0, i, j], int(rows0[i]), int(cols0[j]), k, method
            )
            for i in range(blocks.shape[1])
            for j in range(blocks.shape[2])
        ]
        parts = dask.compute(*tasks)
    score, rows, cols, cls = (np.concatenate([p[i] for p in parts]) for i in range(4))
    return score, rows, cols, cls, sum(int(p[4]) for p in parts)


def _greedy(xy: np.ndarray, order: np.ndarray, n: int, min_distance: float) -> np.ndarray:
    """Positions (in ``order``) picked greedily, each at least ``min_distance`` from the others."""
    if min_distance <= 0:
        return order[:n]
    from scipy.spatial import cKDTree

    tree = cKDTree(xy)
    alive = np.ones(len(xy), dtype=bool)
    picked: list[int] = []
    rank = 0
    while len(picked) < n:
        while rank < len(order) and not alive[order[rank]]:
            rank += 1
        if rank == len(order):
            break
        i = int(order[rank])
        picked.append(i)
        near = tree.query_ball_point(xy[i], r=min_distance * (1 - 1e-9))
        alive[near] = False
    return np.asarray(picked, dtype=np.int64)


def _crs(da: xr.DataArray) -> Any:
    try:
        import odc.geo.xr  # noqa: F401

        crs = da.odc.crs
    except Exception:  # noqa: BLE001 - a map without a CRS gives points without one
        return None
    return None if crs is None else crs.to_wkt()


def suggest_samples(
    probabilities: xr.Dataset | xr.DataArray,
    n: int,
    *,
    method: str = "entropy",
    min_distance: float | None = None,
    candidates: int | None = None,
    seed: int = 0,
) -> Any:
    """The ``n`` most uncertain pixels, at least ``min_distance`` apart: where to label next.

    Parameters
    ----------
    probabilities
        ``(class_name, y, x)`` class probabilities summing to 1 (NaN = nodata): the Dataset of
        :func:`eoai.ml.classify` with ``probabilities=True`` or its ``probability`` variable
        (also the output of :func:`eoai.ml.bayes_smooth`).
    n
        Number of points wanted (>= 1).
    method
        ``"entropy"``: normalised Shannon entropy of the probabilities (0 = certain, 1 = uniform);
        ``"margin"``: ``1 - (p1 - p2)`` of the two most probable classes.
    min_distance
        Minimum distance between two suggested points, in the units of the ``x`` / ``y``
        coordinates (metres in a projected CRS); default 10 pixels; 0: no spacing.
    candidates
        Most uncertain pixels kept per chunk before spacing them (default ``max(50 n, 1000)``).
        With a large ``min_distance`` fewer than ``n`` points may fit among them: that is warned.
    seed
        Seed of the random order of pixels whose scores tie (e.g. uniform probabilities).

    Returns
    -------
    geopandas.GeoDataFrame
        One point per suggestion, most uncertain first: ``x``, ``y`` (pixel centre, CRS of the
        map), ``score`` (the uncertainty), ``class`` (code of the most probable class, as in
        ``classify``'s ``class`` map), ``class_name``, ``geometry``; ``crs`` that of the map (none
        when it has none). ``attrs["eoai:method"]`` records the call.

    Raises
    ------
    eoai.errors.InputError
        ``n``, ``method``, ``min_distance`` or ``candidates`` is invalid, or the probabilities do not
        sum to 1 or lie outside [0, 1].

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> p = np.random.default_rng(0).dirichlet([1, 1, 1], size=(20, 20)).transpose(2, 0, 1)
    >>> proba = xr.DataArray(p.astype("float32"), dims=("class_name", "y", "x"),
    ...                      coords={"y": np.arange(20.0)[::-1] * 10, "x": np.arange(20.0) * 10})
    >>> pts = suggest_samples(proba, 5, min_distance=50)
    >>> len(pts), bool(pts["score"].is_monotonic_decreasing)
    (5, True)
    >>> float(pts.geometry.distance(pts.geometry.iloc[0]).iloc[1:].min()) >= 50
    True
    """
    import geopandas as gpd

    da, class_attrs = as_probability(probabilities)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a number of points >= 1, got {n!r}")
    if method not in UNCERTAINTY:
        raise InputError(f"method must be one of {UNCERTAINTY}, got {method!r}")
    if candidates is None:
        candidates = max(50 * int(n), 1000)
    if (
        isinstance(candidates, bool)
        or not isinstance(candidates, (int, np.integer))
        or candidates < n
    ):
        raise InputError(f"candidates must be an int >= n ({n}), got {candidates!r}")
    xs, ys = np.asarray(da["x"].values, "float64"), np.asarray(da["y"].values, "float64")
    if min_distance is None:
        step = [abs(np.diff(v[:2])[0]) for v in (xs, ys) if v.size > 1]
        min_distance = 10 * float(max(step)) if step else 0.0
    if isinstance(min_distance, bool) or not isinstance(min_distance, (int, float, np.number)):
        raise InputError(f"min_distance must be a distance (a number >= 0), got {min_distance!r}")
    if not np.isfinite(min_distance) or min_distance < 0:
        raise InputError(f"min_distance must be >= 0, got {min_distance}")

    score, rows, cols, cls, n_valid = _candidates(da.data, int(candidates), method)
    if score.size == 0:
        raise InputError(
            "the probabilities are nodata (NaN) everywhere: there is nothing to suggest"
        )
    ties = np.random.default_rng(seed).random(score.size)
    order = np.lexsort((ties, -score.astype("float64")))
    xy = np.column_stack([xs[cols], ys[rows]])
    picked = _greedy(xy, order, int(n), float(min_distance))
    if len(picked) < n:
        warnings.warn(
            f"only {len(picked)} of the {n} points asked for are {min_distance:g} apart among the "
            f"{score.size} candidates: lower min_distance or raise candidates=",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
    codes = np.asarray(class_attrs["flag_values"])
    names = np.asarray(class_attrs.get("class_names") or [str(c) for c in da[CLASS_DIM].values])
    table = pd.DataFrame(
        {
            "x": xy[picked, 0],
            "y": xy[picked, 1],
            "score": score[picked].astype("float32"),
            "class": codes[cls[picked]].astype("uint8"),
            "class_name": names[cls[picked]].astype(object),
        }
    )
    out = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table["x"], table["y"]), crs=_crs(da))
    out.attrs["eoai:method"] = "suggest_samples"
    out.attrs["eoai:parameters"] = {
        "n": int(n), "method": method, "min_distance": float(min_distance),
        "candidates": int(candidates), "seed": seed, "valid_pixels": n_valid,
    }  # fmt: skip
    return out
