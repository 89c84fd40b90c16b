"""Sample quality: a self-organising map (SOM) of the training samples, to find mislabelled ones.

As sits' ``sits_som_map`` / ``sits_som_clean_samples``: the samples (standardised features) are
mapped onto a grid of neurons; each neuron gathers samples of similar feature vectors, so a neuron
that holds mostly one class while a few of its samples carry another label points at those
samples as likely mislabelled (or at classes that the features cannot tell apart).

:func:`sample_quality` trains the map and returns, per sample, its neuron, the neuron's majority
class and purity, the share of the sample's own label in its neuron (``prior``) and in its
neighbourhood of neurons (``posterior``: class counts of the samples of the *other* polygons,
smoothed over the grid with a Gaussian of one neuron: a polygon does not vouch for itself, so a
whole field with a wrong label is caught too), and ``flagged`` (``posterior`` below 0.3). :func:`neuron_summary` gives the per-neuron table and
:func:`plot_som` the grid coloured by majority class, with purity as opacity.

The SOM is MiniSom's rectangular grid (weights initialised by :meth:`minisom.MiniSom.pca_weights_init`
on the filled-in features, or :meth:`~minisom.MiniSom.random_weights_init` with the seed), trained
here with Kohonen's batch algorithm, vectorised over samples and neurons; MiniSom's own training
loops over samples in Python (measured 0.6 ms per sample update on 250 features, 12 s for 20,000
updates), which is too slow for sample tables of thousands of pixels. Missing feature values
(clouds: NaN) are handled as in the SOM for incomplete data of Cottrell & Letrémy (2005): the
distance to a neuron uses the observed features only and a sample updates only the features it
has, so a NaN is never a value.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = np.r_[rng.normal(0, 0.1, (60, 3)), rng.normal(3, 0.1, (60, 3))]
>>> samples = pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=[1] * 60 + [2] * 60)
>>> samples.loc[5, "label"] = 2  # a class-1 sample labelled 2
>>> q = sample_quality(samples, grid=(3, 3))
>>> q.index[q["flagged"]].tolist()
[5]
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._skipped import user_stacklevel
from ..errors import DataSkippedWarning, InputError
from .samples import sample_features

#: a sample is flagged when the share of its label in its neighbourhood of neurons is below this
#: (measured on synthetic samples with 10 % of the labels swapped, see benchmarks/README.md)
POSTERIOR_THRESHOLD = 0.3
#: neighbourhood radius (Gaussian sigma, in neurons) of the last training epoch
SIGMA_END = 0.5


def _standardise(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean = np.nanmean(x, axis=0)
        std = np.nanstd(x, axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    return (x - np.where(np.isfinite(mean), mean, 0.0)) / std


def _assign(
    x0: np.ndarray, mask: np.ndarray | None, w: np.ndarray, block: int = 16384
) -> tuple[np.ndarray, np.ndarray]:
    """Best-matching neuron of each sample and its mean squared distance over the observed features.

    ``x0`` has its missing values set to 0 and ``mask`` is 1 where observed (``None``: all are).
    Samples are taken in blocks so that the ``(sample, neuron)`` distances stay small in memory.
    """
    w2 = (w**2).T
    bmu = np.empty(len(x0), dtype=np.int64)
    dist = np.empty(len(x0), dtype="float64")
    for i in range(0, len(x0), block):
        xb = x0[i : i + block]
        d = -2 * xb @ w.T + (w2.sum(0)[None] if mask is None else mask[i : i + block] @ w2)
        best = np.argmin(d, axis=1)
        n_obs = xb.shape[1] if mask is None else np.maximum(mask[i : i + block].sum(1), 1)
        bmu[i : i + block] = best
        dist[i : i + block] = np.maximum(d[np.arange(len(xb)), best] + (xb**2).sum(1), 0) / n_obs
    return bmu, dist


def _neuron_sums(bmu: np.ndarray, values: np.ndarray, n_neurons: int) -> np.ndarray:
    """Sum of ``values`` rows per neuron, ``(neuron, feature)``, in O(samples x features)."""
    from scipy.sparse import csr_matrix

    onehot = csr_matrix(
        (np.ones(len(bmu), dtype=values.dtype), (bmu, np.arange(len(bmu)))),
        shape=(n_neurons, len(bmu)),
    )
    return np.asarray(onehot @ values)


def _filled(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` (float32) with NaN set to 0, and the mask of observed values (None if complete)."""
    observed = np.isfinite(x)
    x0 = np.where(observed, x, 0).astype("float32")
    return x0, None if observed.all() else observed.astype("float32")


def _grid_h(shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian neighbourhood ``(neuron, neuron)`` on the grid."""
    r, c = np.divmod(np.arange(shape[0] * shape[1]), shape[1])
    d2 = (r[:, None] - r[None]) ** 2 + (c[:, None] - c[None]) ** 2
    return np.exp(-d2 / (2 * sigma**2))


def _train(x: np.ndarray, shape: tuple[int, int], epochs: int, seed: int, init: str) -> np.ndarray:
    """Batch SOM on ``x`` (NaN = missing) -> weights ``(neuron, feature)``."""
    from minisom import MiniSom

    x0, mask = _filled(x)
    som = MiniSom(shape[0], shape[1], x.shape[1], random_seed=seed)
    if init == "pca" and x.shape[1] >= 2 and len(x) >= 2:
        som.pca_weights_init(x0)
    else:
        som.random_weights_init(x0)
    w = som.get_weights().reshape(-1, x.shape[1]).astype("float32")
    sigma0 = max(max(shape) / 2.0, SIGMA_END)
    for epoch in range(epochs):
        # the radius shrinks geometrically from half the grid to SIGMA_END neurons
        sigma = sigma0 * (SIGMA_END / sigma0) ** (epoch / max(epochs - 1, 1))
        bmu, _ = _assign(x0, mask, w)
        h = _grid_h(shape, sigma).astype("float32")
        # batch rule: w_j = sum_i h(j, bmu_i) x_i / sum_i h(j, bmu_i), per observed feature
        num = h @ _neuron_sums(bmu, x0, len(w))
        if mask is None:
            den = h @ np.bincount(bmu, minlength=len(w)).astype("float32")[:, None]
        else:
            den = h @ _neuron_sums(bmu, mask, len(w))
        w = np.where(den > 1e-12, num / np.maximum(den, 1e-12), w)
    return w


def _smoothed_own(
    bmu: np.ndarray, keys: np.ndarray, h: np.ndarray, block: int = 1024
) -> np.ndarray:
    """Per sample: the Gaussian-smoothed count, at its neuron, of the samples sharing its key."""
    n_keys, n_neurons = int(keys.max()) + 1, h.shape[0]
    out = np.empty(len(bmu))
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(0, n_keys + block, block))
    for b, k0 in enumerate(range(0, n_keys, block)):  # blocks of keys bound the memory
        idx = order[bounds[b] : bounds[b + 1]]
        if idx.size == 0:
            continue
        hist = np.zeros((min(block, n_keys - k0), n_neurons))
        np.add.at(hist, (keys[idx] - k0, bmu[idx]), 1)
        out[idx] = (hist @ h)[keys[idx] - k0, bmu[idx]]
    return out


def sample_quality(
    samples: pd.DataFrame,
    label: str = "label",
    *,
    features: Sequence[str] | None = None,
    group: str | None = "group",
    grid: tuple[int, int] | None = None,
    iterations: int = 20,
    threshold: float = POSTERIOR_THRESHOLD,
    init: str = "pca",
    seed: int = 0,
) -> pd.DataFrame:
    """Map the samples on a self-organising map and flag the likely mislabelled ones.

    Parameters
    ----------
    samples
        Sample table of :func:`eoai.ml.extract` (or any DataFrame of feature columns and a label).
    label
        Column with the class labels (``extract`` names it ``"label"``).
    features
        Feature columns (default ``attrs["eoai:features"]``, else every column but ``label``,
        ``group``, ``x``, ``y``). They are standardised (zero mean, unit variance) first.
    group
        Column of the polygon (field) each sample comes from, as ``extract`` gives it: the samples
        of one polygon do not vouch for each other in ``posterior``, so a whole polygon with a
        wrong label is still caught. ``None`` or an absent ``"group"`` column: each sample is its
        own group.
    grid
        ``(rows, columns)`` of neurons; default a square grid of about one neuron per 10 samples
        (at least 3 x 3, at most 30 x 30).
    iterations
        Epochs of batch training (each one sees every sample); the neighbourhood radius shrinks
        from half the grid to half a neuron.
    threshold
        A sample is flagged when the share of its own label in its neuron's neighbourhood
        (``posterior``) is below this (0 to 1).
    init
        ``"pca"`` (weights spread on the first two principal components, deterministic) or
        ``"random"`` (weights drawn among the samples with ``seed``).
    seed
        Seed of the random initialisation.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``samples``: ``label``; ``neuron`` (id ``row * columns + column``, -1 for a
        sample without any feature value), ``neuron_row``, ``neuron_col``, ``neuron_size``;
        ``neuron_class`` (majority label of the neuron), ``neuron_purity`` (share of that label);
        ``prior`` (share of the sample's own label in its neuron), ``posterior`` (the share of its
        label among the samples of the other groups in the Gaussian neighbourhood of one neuron
        around its neuron; NaN when no other group maps there), ``distance`` (RMS distance to the
        neuron's weights in standard deviations), ``flagged``. ``attrs["eoai:som"]`` holds the grid, threshold and
        parameters; :func:`neuron_summary` and :func:`plot_som` read it.

    Raises
    ------
    eoai.errors.InputError
        The label column or a feature is missing, fewer than 2 classes or 10 samples, a parameter
        is invalid.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> x = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(6, 1, (50, 2))]
    >>> df = pd.DataFrame(x, columns=["f1", "f2"]).assign(label=["crop"] * 50 + ["forest"] * 50)
    >>> q = sample_quality(df, grid=(4, 4))
    >>> int(q["flagged"].sum()), round(float(q["neuron_purity"].mean()), 2)
    (0, 1.0)
    """
    if not isinstance(samples, pd.DataFrame):
        raise InputError(
            f"samples must be a pandas DataFrame (from eoai.ml.extract), got {type(samples).__name__}"
        )
    if not isinstance(label, str) or label not in samples.columns:
        raise InputError(
            f"the samples have no label column {label!r}; pass label= one of "
            f"{[str(c) for c in samples.columns if c not in ('group', 'x', 'y')][:20]}"
        )
    if group is not None and not (isinstance(group, str) and group in samples.columns):
        if group != "group":
            raise InputError(
                f"the samples have no group column {group!r}; pass group= a column of polygon ids "
                "or None"
            )
        group = None
    feats = sample_features(samples, features, target=label)
    if features is None and group is not None:
        feats = [f for f in feats if f != group]
    if not feats:
        raise InputError("the samples have no feature column")
    not_numeric = [f for f in feats if not pd.api.types.is_numeric_dtype(samples[f])]
    if not_numeric:
        raise InputError(
            f"feature columns must be numeric; these are not: {not_numeric[:10]} (pass features=)"
        )
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, (int, np.integer))
        or iterations < 1
    ):
        raise InputError(f"iterations must be an int >= 1, got {iterations!r}")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0 <= threshold <= 1
    ):
        raise InputError(f"threshold must be in [0, 1], got {threshold!r}")
    if init not in ("pca", "random"):
        raise InputError(f"init must be 'pca' or 'random', got {init!r}")
    labels = samples[label]
    no_label = labels.isna().to_numpy()
    x = samples[feats].to_numpy(dtype="float64", na_value=np.nan)
    empty = ~np.isfinite(x).any(axis=1)
    use = ~no_label & ~empty
    if no_label.any() or empty.any():
        warnings.warn(
            f"{int(no_label.sum())} samples without a {label!r} value and {int((empty & ~no_label).sum())} "
            "without any feature value (NaN) were left out of the map (neuron -1, not flagged)",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
    n_use = int(use.sum())
    classes = pd.unique(labels[use])
    if n_use < 10 or len(classes) < 2:
        raise InputError(
            f"a map of the samples needs at least 10 labelled samples of 2 classes, got {n_use} "
            f"of {len(classes)}"
        )
    if grid is None:
        side = int(np.clip(round(np.sqrt(n_use / 10)), 3, 30))
        grid = (side, side)
    try:
        shape = (int(grid[0]), int(grid[1]))
    except (TypeError, ValueError, IndexError):
        raise InputError(f"grid must be (rows, columns), got {grid!r}") from None
    if len(grid) != 2 or min(shape) < 1 or shape[0] * shape[1] < 2:
        raise InputError(f"grid must be (rows, columns) with at least 2 neurons, got {grid!r}")

    missing_values = int((~np.isfinite(x[use])).sum())
    if missing_values:
        warnings.warn(
            f"{missing_values} of {x[use].size} feature values are NaN (e.g. clouds): distances "
            "and weight updates of the map use the observed features only",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
    z = _standardise(x[use])
    w = _train(z, shape, int(iterations), int(seed), init)
    z0, mask = _filled(z)
    bmu, dist = _assign(z0, mask, w)
    n_neurons = shape[0] * shape[1]
    codes, uniq = pd.factorize(labels[use], sort=True)
    counts = np.zeros((n_neurons, len(uniq)))
    np.add.at(counts, (bmu, codes), 1)
    size = counts.sum(1)
    h1 = _grid_h(shape, 1.0)
    smoothed = h1 @ counts
    if group is None:
        gcodes = np.arange(n_use)
    else:
        gcodes = pd.factorize(samples[group][use], use_na_sentinel=False)[0]
    # the sample's own group leaves the neighbourhood counts (of its label, and in total)
    own_label = _smoothed_own(bmu, gcodes * len(uniq) + codes, h1)
    own_all = _smoothed_own(bmu, gcodes, h1)
    support = smoothed[bmu, codes] - own_label
    total = smoothed.sum(1)[bmu] - own_all
    with np.errstate(invalid="ignore", divide="ignore"):
        posterior = np.where(total > 1e-9, np.clip(support, 0, None) / total, np.nan)
    major = np.argmax(counts, axis=1)
    purity = counts.max(1) / np.maximum(size, 1)

    out = pd.DataFrame(index=samples.index)
    out["label"] = labels
    out["neuron"] = -1
    out["neuron_row"] = -1
    out["neuron_col"] = -1
    out["neuron_size"] = 0
    out["neuron_class"] = pd.Series([None] * len(out), index=out.index, dtype=object)
    for col in ("neuron_purity", "prior", "posterior", "distance"):
        out[col] = np.nan
    out["flagged"] = False
    pos = np.flatnonzero(use)
    rows, cols = np.divmod(bmu, shape[1])
    out.iloc[pos, out.columns.get_loc("neuron")] = bmu
    out.iloc[pos, out.columns.get_loc("neuron_row")] = rows
    out.iloc[pos, out.columns.get_loc("neuron_col")] = cols
    out.iloc[pos, out.columns.get_loc("neuron_size")] = size[bmu].astype(int)
    out.iloc[pos, out.columns.get_loc("neuron_class")] = np.asarray(uniq, dtype=object)[major[bmu]]
    out.iloc[pos, out.columns.get_loc("neuron_purity")] = purity[bmu]
    out.iloc[pos, out.columns.get_loc("prior")] = counts[bmu, codes] / size[bmu]
    out.iloc[pos, out.columns.get_loc("posterior")] = posterior
    out.iloc[pos, out.columns.get_loc("distance")] = np.sqrt(dist)
    out.iloc[pos, out.columns.get_loc("flagged")] = posterior < threshold
    out["flagged"] = out["flagged"].astype(bool)
    out.attrs["eoai:method"] = "sample_quality"
    out.attrs["eoai:som"] = {
        "grid": list(shape), "threshold": float(threshold), "iterations": int(iterations),
        "init": init, "seed": int(seed), "features": len(feats), "label_column": label,
        "group_column": group,
        "classes": [str(c) for c in uniq],
    }  # fmt: skip
    return out


def _check_quality(quality: Any) -> tuple[int, int]:
    som = (
        getattr(quality, "attrs", {}).get("eoai:som") if isinstance(quality, pd.DataFrame) else None
    )
    if som is None:
        raise InputError(
            "expected the table of eoai.ml.sample_quality(samples) (its attrs['eoai:som'] is missing)"
        )
    return int(som["grid"][0]), int(som["grid"][1])


def neuron_summary(quality: pd.DataFrame) -> pd.DataFrame:
    """Per-neuron table of a :func:`sample_quality` result: size, majority class, purity, flags.

    Parameters
    ----------
    quality
        The result of :func:`sample_quality`.

    Returns
    -------
    pandas.DataFrame
        One row per neuron (index ``neuron``): ``row``, ``col``, ``size``, ``majority`` (label, None
        for an empty neuron), ``purity``, ``flagged`` (samples flagged) and one ``n_<label>``
        column of counts per class.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> x = np.r_[np.zeros((20, 1)), np.ones((20, 1))] + np.random.default_rng(0).normal(0, .01, (40, 1))
    >>> q = sample_quality(pd.DataFrame({"f": x[:, 0], "label": [1] * 20 + [2] * 20}), grid=(1, 2))
    >>> neuron_summary(q)[["size", "purity"]].values.tolist()
    [[20.0, 1.0], [20.0, 1.0]]
    """
    rows, cols = _check_quality(quality)
    mapped = quality[quality["neuron"] >= 0]
    counts = pd.crosstab(mapped["neuron"], mapped["label"]).reindex(
        range(rows * cols), fill_value=0
    )
    size = counts.sum(axis=1)
    out = pd.DataFrame(index=pd.RangeIndex(rows * cols, name="neuron"))
    out["row"], out["col"] = np.divmod(np.arange(rows * cols), cols)
    out["size"] = size.to_numpy(dtype=float)
    majority = counts.idxmax(axis=1).astype(object)
    out["majority"] = majority.where(size > 0, None).to_numpy()
    out["purity"] = np.where(size > 0, counts.max(axis=1) / size.clip(lower=1), np.nan)
    out["flagged"] = mapped.groupby("neuron")["flagged"].sum().reindex(out.index, fill_value=0)
    for c in counts.columns:
        out[f"n_{c}"] = counts[c].to_numpy()
    return out


def plot_som(quality: pd.DataFrame, *, width: int = 450) -> Any:
    """The SOM grid: each neuron coloured by its majority class, opacity = purity, hover counts.

    Parameters
    ----------
    quality
        The result of :func:`sample_quality`.
    width
        Plot width in pixels.

    Returns
    -------
    holoviews.Rectangles
        One square per non-empty neuron (rows downwards), a legend of the classes.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> x = np.r_[np.zeros((20, 1)), np.ones((20, 1))] + np.random.default_rng(0).normal(0, .01, (40, 1))
    >>> q = sample_quality(pd.DataFrame({"f": x[:, 0], "label": [1] * 20 + [2] * 20}), grid=(1, 2))
    >>> len(plot_som(q).data)
    2
    """
    from ..viz.colours import default_colours
    from ..viz.plots import _hv

    rows, cols = _check_quality(quality)
    hv = _hv()
    table = neuron_summary(quality)
    table = table[table["size"] > 0].copy()
    classes = quality.attrs["eoai:som"]["classes"]
    colours = dict(zip(map(str, classes), default_colours(classes), strict=True))
    table["majority"] = table["majority"].astype(str)
    table["colour"] = table["majority"].map(colours)
    table["x0"], table["x1"] = table["col"] - 0.45, table["col"] + 0.45
    table["y0"], table["y1"] = -table["row"] - 0.45, -table["row"] + 0.45
    vdims = ["majority", "purity", "size", "flagged", "colour"]
    rect = hv.Rectangles(table, ["x0", "y0", "x1", "y1"], vdims)
    return rect.opts(
        color="colour", alpha=hv.dim("purity"), line_color="black", tools=["hover"],
        width=width, height=max(150, int(width * rows / max(cols, 1))), xaxis=None, yaxis=None,
        title=f"SOM {rows} x {cols}: majority class, opacity = purity",
    )  # fmt: skip
