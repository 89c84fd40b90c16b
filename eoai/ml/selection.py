"""Sample selection in the manner of OTB's SampleSelection and iota2: caps, ratios, balance.

:func:`select_samples` thins a sample table from :func:`eoai.ml.extract` before training: a cap of
pixels per polygon first (so that large polygons do not dominate), then a number of samples per
class chosen by a strategy (OTB's names):

- ``"smallest"``: every class at the size of the smallest class (balanced);
- ``"constant"``: ``n`` samples per class (balanced; classes with fewer keep all, warned);
- ``"byclass"``: ``n`` is ``{class: count}``;
- ``"percent"``: ``ratio`` of each class (proportional);
- ``"total"``: ``n`` samples in all, split in proportion to the class sizes;
- ``"all"``: every sample (after the per-polygon cap).

Within a class (and within a polygon for the cap) samples are drawn at random (seeded) or
periodically (evenly spaced in the order of the table, which for :func:`eoai.ml.extract` is the
raster order of each polygon's pixels: spatially spread). The counts are reported in
``attrs["eoai:selection"]`` of the result (available and selected samples and polygons per class).

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"b": range(10), "label": [1] * 8 + [2] * 2, "group": [0] * 4 + [1] * 4 + [2] * 2})
>>> sel = select_samples(df)  # "smallest": 2 per class
>>> sel["label"].value_counts().sort_index().tolist()
[2, 2]
>>> sel.attrs["eoai:selection"]["selected"]
{'1': 2, '2': 2}
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._renamed import renamed_parameters
from .._skipped import user_stacklevel
from ..errors import FewSamplesWarning, InputError

STRATEGIES = ("smallest", "constant", "byclass", "percent", "total", "all")
SAMPLERS = ("random", "periodic")


def _pick(positions: np.ndarray, k: int, sampler: str, rng: np.random.Generator) -> np.ndarray:
    """``k`` of ``positions`` (in table order): random (seeded) or evenly spaced."""
    m = positions.size
    if k >= m:
        return positions
    if k <= 0:
        return positions[:0]
    if sampler == "random":
        return np.sort(rng.choice(positions, size=k, replace=False))
    # periodic: the centres of k equal runs
    return positions[((np.arange(k) + 0.5) * m / k).astype(np.int64)]


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive int, got {value!r}")
    return int(value)


@renamed_parameters(random_state="seed")
def select_samples(
    samples: pd.DataFrame,
    strategy: str = "smallest",
    *,
    n: int | Mapping[Any, int] | None = None,
    ratio: float | None = None,
    per_polygon: int | None = None,
    sampler: str = "random",
    label: str = "label",
    group: str | None = "group",
    seed: int | None = 0,
) -> pd.DataFrame:
    """Select training samples per class and per polygon (OTB / iota2 sample selection).

    Parameters
    ----------
    samples
        Sample table (from :func:`eoai.ml.extract`), with a class column and, for
        ``per_polygon``, a polygon column.
    strategy
        ``"smallest"`` (default: balanced at the smallest class), ``"constant"`` (``n`` per
        class), ``"byclass"`` (``n={class: count}``), ``"percent"`` (``ratio`` of each class),
        ``"total"`` (``n`` in all, proportional to the classes), ``"all"``.
    n
        Count for ``"constant"`` / ``"total"``, or ``{class: count}`` for ``"byclass"``.
    ratio
        Share of each class kept, in (0, 1], for ``"percent"``.
    per_polygon
        Keep at most this many samples of each polygon (applied first).
    sampler
        ``"random"`` (seeded by ``seed``) or ``"periodic"`` (evenly spaced in table order).
    label
        Class column.
    group
        Polygon column (needed by ``per_polygon``; counted in the report when present).
    seed
        Seed of the random sampler.

    Returns
    -------
    pandas.DataFrame
        The selected rows (original order and index, attrs kept), with
        ``attrs["eoai:selection"]``: strategy, parameters, and per class (as strings) the
        ``available`` and ``selected`` sample counts and, with a polygon column,
        ``polygons_available`` / ``polygons_selected``.

    Raises
    ------
    eoai.errors.InputError
        Unknown strategy or sampler, a parameter missing or out of range, a class of ``n``
        absent from the samples, a missing column.

    Warns
    -----
    eoai.errors.FewSamplesWarning
        Classes with fewer samples than asked for (all of theirs are kept); the message gives
        the counts.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"b": range(12), "label": ["a"] * 9 + ["b"] * 3, "group": range(12)})
    >>> select_samples(df, "percent", ratio=0.34, sampler="periodic")["b"].tolist()
    [1, 4, 7, 10]
    """
    if not isinstance(samples, pd.DataFrame):
        raise InputError(
            f"samples must be a pandas DataFrame (from eoai.ml.extract), got {type(samples).__name__}"
        )
    if strategy not in STRATEGIES:
        raise InputError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if sampler not in SAMPLERS:
        raise InputError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if label not in samples.columns:
        raise InputError(
            f"the samples have no class column {label!r}; pass label= one of {list(samples.columns)[:20]}"
        )
    y = samples[label]
    if y.isna().any():
        raise InputError(f"{int(y.isna().sum())} samples have no {label!r}; drop them first")
    has_group = group is not None and group in samples.columns
    if per_polygon is not None:
        per_polygon = _check_count(per_polygon, "per_polygon")
        if not has_group:
            raise InputError(
                f"per_polygon needs the polygon column {group!r}, which the samples lack; pass "
                "group= the column of polygon ids"
            )
    needs_n = strategy in ("constant", "byclass", "total")
    if needs_n and n is None:
        raise InputError(f"strategy={strategy!r} needs n=")
    if not needs_n and n is not None:
        raise InputError(f"n= is not used by strategy={strategy!r}; drop it")
    if strategy == "percent":
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
            raise InputError(f"strategy='percent' needs ratio= in (0, 1], got {ratio!r}")
    elif ratio is not None:
        raise InputError(f"ratio= is only for strategy='percent', not {strategy!r}")
    rng = np.random.default_rng(seed)
    codes, classes = pd.factorize(y, sort=True)
    positions = np.arange(len(samples))

    keep = positions
    if per_polygon is not None:
        g_codes = pd.factorize(samples[group])[0]
        order = np.argsort(g_codes, kind="stable")
        bounds = np.flatnonzero(np.diff(g_codes[order])) + 1
        parts = [_pick(p, per_polygon, sampler, rng) for p in np.split(order, bounds)]
        keep = np.sort(np.concatenate(parts)) if parts else positions[:0]
    available = np.bincount(codes[keep], minlength=len(classes))

    if strategy == "all":
        wanted = available.copy()
    elif strategy == "smallest":
        wanted = np.full(len(classes), available[available > 0].min())
    elif strategy == "constant":
        wanted = np.full(len(classes), _check_count(n, "n"))
    elif strategy == "byclass":
        if not isinstance(n, Mapping):
            raise InputError("strategy='byclass' needs n={class: count}")
        unknown = [c for c in n if c not in set(classes)]
        if unknown:
            raise InputError(
                f"n names classes {unknown} that the samples do not have ({list(classes)})"
            )
        wanted = np.zeros(len(classes), dtype=np.int64)
        for i, c in enumerate(classes):
            v = n.get(c, 0)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise InputError(f"n[{c!r}] must be an int >= 0, got {v!r}")
            wanted[i] = int(v)
    elif strategy == "percent":
        assert ratio is not None  # checked with the arguments above
        wanted = np.maximum(1, np.round(available * float(ratio)).astype(np.int64))
    else:  # total
        total = _check_count(n, "n")
        share = available / available.sum() * total
        wanted = np.floor(share).astype(np.int64)
        rest = total - int(wanted.sum())  # largest remainders
        if rest > 0:
            wanted[np.argsort(-(share - wanted), kind="stable")[:rest]] += 1
    short = (wanted > available) & (wanted > 0)
    if short.any() and strategy in ("constant", "byclass", "total"):
        detail = ", ".join(
            f"{classes[i]}: {available[i]} < {wanted[i]}" for i in np.flatnonzero(short)
        )
        warnings.warn(
            f"classes with fewer samples than asked for kept all of theirs ({detail})",
            FewSamplesWarning,
            stacklevel=user_stacklevel(),
        )
    chosen = []
    for i in range(len(classes)):
        chosen.append(_pick(keep[codes[keep] == i], int(wanted[i]), sampler, rng))
    selected = np.sort(np.concatenate(chosen)) if chosen else positions[:0]
    out = samples.iloc[selected].copy()
    out.attrs = dict(samples.attrs)
    report: dict[str, Any] = {
        "strategy": strategy,
        "sampler": sampler,
        "per_polygon": per_polygon,
        "ratio": ratio,
        "n": {str(k): int(v) for k, v in n.items()} if isinstance(n, Mapping) else n,
        "random_state": seed,
        "available": {str(c): int(available[i]) for i, c in enumerate(classes)},
        "selected": {
            str(c): int(v)
            for c, v in zip(
                classes, np.bincount(codes[selected], minlength=len(classes)), strict=True
            )
        },
    }
    if has_group:
        report["polygons_available"] = {
            str(c): int(v) for c, v in samples.groupby(label)[group].nunique().items()
        }
        report["polygons_selected"] = {
            str(c): int(v) for c, v in out.groupby(label)[group].nunique().items()
        }
    out.attrs["eoai:selection"] = report
    return out
