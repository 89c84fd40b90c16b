"""Band x date layout of feature names, for the temporal networks of :mod:`eoai.ml.deep`.

Feature names follow :mod:`eoai.ml.features`: ``<band>_<YYYY-MM-DD>`` (or ``...THH:MM:SS`` when a
day holds several acquisitions). A pixel time-series network reads a tensor ``(time, channel)``;
this module finds the bands and dates of a list of feature names and the column permutation that
turns a feature table into that tensor.

Examples
--------
>>> lay = parse_layout(["red_2021-01-01", "red_2021-01-11", "nir_2021-01-01", "nir_2021-01-11"])
>>> lay.bands, lay.dates
(['red', 'nir'], ['2021-01-01', '2021-01-11'])
>>> lay.perm.tolist()  # time-major: (t0 red, t0 nir, t1 red, t1 nir)
[0, 2, 1, 3]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ModelError

_NAME = re.compile(r"^(?P<var>.+)_(?P<date>\d{4}-\d{2}-\d{2}(T[\d:]+)?)$")


@dataclass(frozen=True)
class Layout:
    """Bands, dates and the permutation ``perm`` of feature columns into time-major order."""

    bands: list[str]
    dates: list[str]
    perm: np.ndarray

    @property
    def features(self) -> list[str]:
        """Feature names in band-major order (the order of :func:`eoai.ml.features.feature_names`).

        For a grid with missing cells (``parse_layout(..., complete=False)``) only the present ones.
        """
        c = len(self.bands)
        return [
            f"{b}_{d}"
            for i, b in enumerate(self.bands)
            for j, d in enumerate(self.dates)
            if self.perm[j * c + i] >= 0
        ]

    def grid(self, X: np.ndarray) -> np.ndarray:
        """Feature rows ``(n, F)`` -> float32 ``(n, time, band)``; NaN in missing cells.

        Examples
        --------
        >>> lay = parse_layout(["s1.vv_2021-01-01", "s2.red_2021-01-11"], complete=False)
        >>> lay.grid(np.array([[1.0, 2.0]]))[0].tolist()
        [[1.0, nan], [nan, 2.0]]
        """
        X = np.asarray(X, dtype="float32")
        n, t, c = X.shape[0], len(self.dates), len(self.bands)
        if (self.perm >= 0).all():
            return np.ascontiguousarray(X[:, self.perm]).reshape(n, t, c)
        out = np.full((n, t * c), np.nan, dtype="float32")
        ok = self.perm >= 0
        out[:, ok] = X[:, self.perm[ok]]
        return out.reshape(n, t, c)

    def timestamps(self) -> pd.DatetimeIndex:
        """The dates as a :class:`pandas.DatetimeIndex`."""
        return pd.DatetimeIndex(pd.to_datetime(self.dates))

    def days(self, reference: pd.Timestamp) -> np.ndarray:
        """Days (float) of each date since ``reference``."""
        return ((self.timestamps() - reference) / pd.Timedelta(days=1)).to_numpy("float32")

    def median_step_days(self) -> float:
        """Median step (days) between the dates (sorted); NaN with a single date.

        Examples
        --------
        >>> parse_layout(["ndvi_2021-01-01", "ndvi_2021-01-11", "ndvi_2021-01-27"]).median_step_days()
        13.0
        """
        days = self.days(self.timestamps()[0]) if self.dates else np.zeros(0)
        return float(np.median(np.diff(days))) if len(days) > 1 else float("nan")


def parse_layout(features: Sequence[str], complete: bool = True) -> Layout:
    """The band x date grid of ``features``; every band must have every date if ``complete``.

    With ``complete=False`` (multi-source fusion: each source has its own dates) the dates are
    the union of all bands' dates and a missing cell has ``perm == -1`` (NaN in :meth:`Layout.grid`).

    Raises
    ------
    eoai.errors.ModelError
        A feature has no date (a static variable) or the grid is incomplete.

    Examples
    --------
    >>> parse_layout(["ndvi_2021-05-01", "dem"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    eoai.errors.ModelError: temporal networks read band x date features; these have no date: dem...
    """
    static = [f for f in features if not _NAME.match(f)]
    if static:
        raise ModelError(
            "temporal networks read band x date features; these have no date: "
            f"{', '.join(static[:10])}{' ...' if len(static) > 10 else ''}. Pass features= "
            "without them (or use the random forest, which takes any feature)"
        )
    bands: list[str] = []
    dates: list[str] = []
    where: dict[tuple[str, str], int] = {}
    for i, f in enumerate(features):
        m = _NAME.match(f)
        assert m is not None
        b, d = m["var"], m["date"]
        if b not in bands:
            bands.append(b)
        if d not in dates:
            dates.append(d)
        where[(b, d)] = i
    order = sorted(range(len(dates)), key=lambda k: pd.Timestamp(dates[k]))
    dates = [dates[k] for k in order]
    missing = [f"{b}_{d}" for b in bands for d in dates if (b, d) not in where]
    if missing and not complete:
        perm = np.array([where.get((b, d), -1) for d in dates for b in bands], dtype=np.int64)
        return Layout(bands=bands, dates=dates, perm=perm)
    if missing:
        raise ModelError(
            f"the features do not form a complete band x date grid ({len(bands)} bands x "
            f"{len(dates)} dates): {len(missing)} missing, e.g. {', '.join(missing[:5])}. "
            "Use the same dates for every band (extract from one cube)"
        )
    perm = np.array([where[(b, d)] for d in dates for b in bands], dtype=np.int64)
    return Layout(bands=bands, dates=dates, perm=perm)


def cube_layout(names: Sequence[str], bands: Sequence[str], complete: bool = True) -> Layout:
    """Layout of the cube features ``names`` restricted to ``bands`` (the model's).

    ``complete=False``: each band keeps its own dates (see :func:`parse_layout`).

    Raises
    ------
    eoai.errors.ModelError
        The cube lacks one of the bands.

    Examples
    --------
    >>> cube_layout(["red_2021-02-01", "nir_2021-02-01", "blue_2021-02-01"], ["nir", "red"]).features
    ['nir_2021-02-01', 'red_2021-02-01']
    """
    have: dict[str, list[str]] = {}
    for f in names:
        m = _NAME.match(f)
        if m:
            have.setdefault(m["var"], []).append(f)
    missing = [b for b in bands if b not in have]
    if missing:
        raise ModelError(
            f"the cube lacks the band(s) {missing} of the model (model bands {list(bands)}, cube "
            f"bands {sorted(have)}); load the cube with those bands"
        )
    lay = parse_layout([f for b in bands for f in have[b]], complete=complete)
    if not complete:
        return lay
    # keep the model's band order
    return parse_layout([f"{b}_{d}" for b in bands for d in lay.dates])
