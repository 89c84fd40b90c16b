"""Spatial folds for cross-validation: square blocks of the grid, or clusters of polygons.

Neighbouring pixels (and neighbouring fields) look alike, so folds that split pixels at random, or
even polygon by polygon, test a model on places next to those it was trained on and overstate its
accuracy where no label was drawn (Roberts et al. 2017, "Cross-validation strategies for data with
temporal, spatial, hierarchical, or phylogenetic structure", Ecography 40, 913-929). These
functions give every sample a group id for :func:`eoai.ml.cross_validate` (``group=``), which keeps
a group in a single fold:

- :func:`spatial_blocks`: the square block of side ``size`` (CRS units or pixels) the sample falls in;
- :func:`spatial_clusters`: k-means clusters of the polygon centroids (a cluster = nearby polygons).

Examples
--------
>>> import numpy as np, pandas as pd
>>> df = pd.DataFrame({"x": [5.0, 15.0, 105.0, 115.0], "y": [5.0, 5.0, 5.0, 205.0]})
>>> spatial_blocks(df, 100).tolist()
[0, 0, 1, 2]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._renamed import renamed_parameters
from ..errors import InputError

UNITS = ("crs", "pixels")


def _coordinates(samples: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(samples, pd.DataFrame):
        raise InputError(
            f"samples must be a pandas DataFrame (from eoai.ml.extract), got {type(samples).__name__}"
        )
    missing = [c for c in ("x", "y") if c not in samples.columns]
    if missing:
        raise InputError(
            f"the samples have no {' and '.join(missing)} column(s): spatial folds need the pixel "
            "centres, which eoai.ml.extract adds (x, y in the cube's CRS)"
        )
    x = samples["x"].to_numpy(dtype="float64")
    y = samples["y"].to_numpy(dtype="float64")
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        raise InputError(f"{int(bad.sum())} samples have no finite x / y; drop them first")
    return x, y


def _pixel_size(samples: pd.DataFrame) -> float:
    res = samples.attrs.get("eoai:cube", {}).get("resolution")
    if not res:
        raise InputError(
            "units='pixels' needs the pixel size, which the samples do not record (tables from "
            "eoai.ml.extract do, in attrs['eoai:cube']['resolution']); give size in CRS units "
            "with units='crs'"
        )
    return float(abs(res[0]))


def spatial_blocks(
    samples: pd.DataFrame,
    size: float,
    *,
    units: str = "crs",
    origin: tuple[float, float] | None = None,
    group: str | None = "group",
) -> pd.Series:
    """The square spatial block of each sample, as a group id for cross-validation.

    A polygon is never cut: all its samples go to the block of its centroid (the mean of their
    ``x`` / ``y``), so that no polygon is in both a training and a test fold (blocks that cut
    polygons leak, and score above folds grouped by polygon: see benchmarks/README.md).

    Parameters
    ----------
    samples
        Sample table with ``x`` and ``y`` columns (pixel centres in the cube's CRS), as made by
        :func:`eoai.ml.extract`.
    size
        Side of a block, in CRS units (metres for a UTM cube) or in pixels (``units="pixels"``).
        Choose it larger than the range of spatial autocorrelation of the features and the
        target (a few fields across); a block should hold several polygons.
    units
        ``"crs"`` or ``"pixels"`` (then the pixel size comes from ``attrs["eoai:cube"]``).
    origin
        ``(x0, y0)`` corner of the block grid (default: the smallest x and y of the samples).
    group
        Column of polygon ids, kept whole (used when the samples have it); ``None``: each
        sample by its own position (for point samples, or to cut polygons on purpose).

    Returns
    -------
    pandas.Series
        Integer block ids ``0..n_blocks-1`` (numbered by column, then row), named ``block``, on
        the index of ``samples``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [0.0, 10.0, 20.0, 30.0], "y": [0.0, 0.0, 0.0, 0.0]})
    >>> df.attrs["eoai:cube"] = {"resolution": [10.0, -10.0]}
    >>> spatial_blocks(df, 2, units="pixels").tolist()
    [0, 0, 1, 1]
    """
    x, y = _coordinates(samples)
    if units not in UNITS:
        raise InputError(f"units must be one of {UNITS}, got {units!r}")
    if isinstance(size, bool) or not isinstance(size, (int, float, np.number)) or not size > 0:
        raise InputError(f"size must be a positive number (block side), got {size!r}")
    side = float(size) * (_pixel_size(samples) if units == "pixels" else 1.0)
    if len(x) == 0:
        return pd.Series(np.zeros(0, dtype="int64"), index=samples.index, name="block")
    if group is not None and group in samples.columns:
        codes, _ = pd.factorize(samples[group])
        if (codes < 0).any():
            raise InputError(f"{int((codes < 0).sum())} samples have no {group!r}; drop them first")
        count = np.bincount(codes)
        x = (np.bincount(codes, x) / count)[codes]
        y = (np.bincount(codes, y) / count)[codes]
    if origin is None:
        x0, y0 = float(x.min()), float(y.min())
    else:
        if len(origin) != 2:
            raise InputError(f"origin must be (x0, y0), got {origin!r}")
        x0, y0 = (float(v) for v in origin)
    col = np.floor((x - x0) / side).astype("int64")
    row = np.floor((y - y0) / side).astype("int64")
    key = (col - col.min()) * (int(row.max() - row.min()) + 1) + (row - row.min())
    _, ids = np.unique(key, return_inverse=True)
    return pd.Series(ids.astype("int64"), index=samples.index, name="block")


@renamed_parameters(random_state="seed")
def spatial_clusters(
    samples: pd.DataFrame,
    n_clusters: int,
    *,
    group: str = "group",
    seed: int | None = 0,
) -> pd.Series:
    """K-means clusters of the polygons' centroids, as a group id for cross-validation.

    Each polygon (``group``) is placed at the mean of its samples' ``x`` / ``y``; the centroids
    are clustered into ``n_clusters`` groups of nearby polygons, and every sample gets its
    polygon's cluster, so a polygon is never split and nearby polygons share a fold.

    Parameters
    ----------
    samples
        Sample table with ``x``, ``y`` and the ``group`` column (from :func:`eoai.ml.extract`).
    n_clusters
        Number of clusters (at least the number of folds; several per fold is better).
    group
        Column of polygon ids.
    seed
        Seed of k-means.

    Returns
    -------
    pandas.Series
        Integer cluster ids, named ``cluster``, on the index of ``samples``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [0.0, 1, 100, 101, 0, 1], "y": [0.0, 0, 0, 0, 1, 1],
    ...                    "group": [0, 0, 1, 1, 2, 2]})
    >>> c = spatial_clusters(df, 2)
    >>> bool(c.iloc[0] == c.iloc[4] != c.iloc[2])
    True
    """
    x, y = _coordinates(samples)
    if group not in samples.columns:
        raise InputError(
            f"the samples have no group column {group!r} (polygon ids); pass group= the column "
            "of polygon ids, or use spatial_blocks"
        )
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)):
        raise InputError(f"n_clusters must be an int, got {n_clusters!r}")
    codes, uniques = pd.factorize(samples[group], use_na_sentinel=True)
    if (codes < 0).any():
        raise InputError(f"{int((codes < 0).sum())} samples have no {group!r}; drop them first")
    n_groups = len(uniques)
    if not 2 <= n_clusters <= n_groups:
        raise InputError(
            f"n_clusters must be between 2 and the number of polygons ({n_groups}), got {n_clusters}"
        )
    from sklearn.cluster import KMeans

    count = np.bincount(codes, minlength=n_groups)
    centres = np.stack(
        [np.bincount(codes, x, n_groups) / count, np.bincount(codes, y, n_groups) / count], axis=1
    )
    km = KMeans(n_clusters=int(n_clusters), n_init=4, random_state=seed).fit(centres)
    return pd.Series(km.labels_[codes].astype("int64"), index=samples.index, name="cluster")
