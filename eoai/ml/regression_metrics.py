"""Accuracy of a continuous map: RMSE, MAE, bias and R², overall and by group, and their plot.

Conventions: residual = prediction - reference, so a positive ``bias`` (the mean residual) is an
over-estimate; ``r2`` is the coefficient of determination ``1 - SS_res / SS_tot`` of the reference
(it is negative when the map is worse than the reference mean); ``r`` is Pearson's correlation.

Examples
--------
>>> a = assess_regression([1.0, 2.0, 4.0], [1.0, 3.0, 3.0])
>>> round(a.rmse, 3), a.mae, a.bias
(0.816, 0.6666666666666666, 0.0)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import xarray as xr

from .._renamed import renamed_parameters
from .._skipped import user_stacklevel
from ..errors import DataSkippedWarning, InputError

SCORES = ("n", "rmse", "mae", "bias", "r2", "r")


class RegressionScores(TypedDict):
    """The scores of :func:`regression_scores` (the fields ``SCORES`` of a RegressionAssessment)."""

    n: int
    rmse: float
    mae: float
    bias: float
    r2: float
    r: float


def regression_scores(predicted: Any, reference: Any) -> RegressionScores:
    """``n``, ``rmse``, ``mae``, ``bias`` (mean of prediction - reference), ``r2``, ``r``.

    Pairs where either value is NaN are left out (count them before if it matters).

    Examples
    --------
    >>> regression_scores([2.0, 4.0], [1.0, 5.0])["rmse"]
    1.0
    """
    p = np.asarray(predicted, dtype="float64").ravel()
    r = np.asarray(reference, dtype="float64").ravel()
    if p.shape != r.shape:
        raise InputError(f"{p.size} predicted values but {r.size} reference values")
    ok = np.isfinite(p) & np.isfinite(r)
    p, r = p[ok], r[ok]
    n = int(p.size)
    if n == 0:
        raise InputError("no pair of finite predicted and reference values to assess")
    res = p - r
    ss_tot = float(((r - r.mean()) ** 2).sum())
    r2 = 1.0 - float((res**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    if n > 1 and p.std() > 0 and r.std() > 0:
        corr = float(np.corrcoef(p, r)[0, 1])
    else:
        corr = float("nan")
    return {
        "n": n,
        "rmse": float(np.sqrt((res**2).mean())),
        "mae": float(np.abs(res).mean()),
        "bias": float(res.mean()),
        "r2": r2,
        "r": corr,
    }


@dataclass
class RegressionAssessment:
    """Result of :func:`assess_regression` and of :func:`eoai.ml.cross_validate` on a regressor.

    ``n``, ``rmse``, ``mae``, ``bias`` (prediction - reference), ``r2``, ``r``; ``units``;
    ``by_group``: the same scores per group (a DataFrame indexed by group) when groups were given;
    ``predicted`` / ``reference``: the paired values; ``extra``: more (per-fold scores,
    out-of-fold predictions of a cross-validation).
    """

    n: int
    rmse: float
    mae: float
    bias: float
    r2: float
    r: float
    units: str = ""
    by_group: pd.DataFrame | None = None
    predicted: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    reference: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable scores (for model metadata and reports)."""
        out: dict[str, Any] = {
            k: (None if isinstance(v, float) and np.isnan(v) else v)
            for k, v in ((k, getattr(self, k)) for k in SCORES)
        }
        out["units"] = self.units
        return out

    def summary(self) -> pd.DataFrame:
        """One table: the overall scores (row ``all``) and, when given, those of each group."""
        overall = pd.DataFrame([{k: getattr(self, k) for k in SCORES}], index=["all"])
        if self.by_group is None:
            return overall
        return pd.concat([overall, self.by_group])

    def __repr__(self) -> str:
        u = f" {self.units}" if self.units else ""
        head = (
            f"RegressionAssessment: n={self.n}, RMSE {self.rmse:.4g}{u}, MAE {self.mae:.4g}{u}, "
            f"bias {self.bias:+.4g}{u}, R² {self.r2:.3f}"
        )
        if self.by_group is None:
            return head
        return head + "\n" + self.by_group.round(4).to_string()

    def _repr_html_(self) -> str:
        return f"<p>{repr(self).splitlines()[0]}</p>" + self.summary().round(4).to_html()


def _by_group(p: np.ndarray, r: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
    rows = {}
    for g in pd.unique(groups):
        sel = groups == g
        if np.isfinite(p[sel] + r[sel]).any():
            rows[g] = regression_scores(p[sel], r[sel])
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(SCORES))
    table.index.name = "group"
    try:
        table = table.sort_index()
    except TypeError:  # mixed types: keep the order of appearance
        pass
    return table


def assess_regression(
    prediction: Any,
    reference: Any,
    *,
    label: str = "label",
    by: Any = None,
    units: str | None = None,
) -> RegressionAssessment:
    """Accuracy of a continuous map (or predictions) against reference values.

    Parameters
    ----------
    prediction
        The ``prediction`` DataArray of :func:`eoai.ml.predict` (lazy is fine: the pixels needed
        are computed here), a Dataset with a ``prediction`` variable, or a 1-D array.
    reference
        A DataArray on the same grid (NaN = no reference), a GeoDataFrame / path of points or
        polygons with a numeric ``label`` column (every pixel under a polygon is a pair), or a
        1-D array as long as ``prediction``.
    label
        Value column of a vector ``reference``.
    by
        Groups for per-group scores: a 1-D array (same length as the pairs: array inputs, or a
        raster reference), or, for a vector reference, one of its columns (e.g. a land-cover
        class or a site).
    units
        Units of the values (default: the map's ``units`` attribute).

    Returns
    -------
    RegressionAssessment

    Raises
    ------
    eoai.errors.InputError
        Inputs of different lengths or grids, a non-numeric reference, nothing to compare.

    Examples
    --------
    >>> a = assess_regression([1.0, 2.0, 5.0, 6.0], [1.5, 2.0, 4.0, 7.0], by=["a", "a", "b", "b"])
    >>> a.by_group["rmse"].round(3).tolist(), round(a.r2, 3)
    ([0.354, 1.0], 0.88)
    """
    if isinstance(prediction, xr.Dataset):
        if "prediction" not in prediction:
            raise InputError(
                "the Dataset has no 'prediction' variable; pass the output of eoai.ml.predict "
                "or the DataArray to assess"
            )
        prediction = prediction["prediction"]
    if units is None:
        units = (
            str(prediction.attrs.get("units", "")) if isinstance(prediction, xr.DataArray) else ""
        )
    groups = None
    if isinstance(prediction, xr.DataArray):
        if isinstance(reference, xr.DataArray):
            p, r, groups = _paired_rasters(prediction, reference, by)
        else:
            p, r, groups = _at_labels(prediction, reference, label, by)
    else:
        if isinstance(reference, xr.DataArray):
            raise InputError("a raster reference needs the prediction as a DataArray on its grid")
        p = np.asarray(prediction).ravel()
        r = np.asarray(reference).ravel()
        if by is not None:
            groups = np.asarray(by).ravel()
            if groups.shape != p.shape:
                raise InputError(f"by has {groups.size} values for {p.size} predictions")
    for name, v in (("prediction", p), ("reference", r)):
        if not np.issubdtype(np.asarray(v).dtype, np.number) or np.asarray(v).dtype == bool:
            raise InputError(
                f"the {name} values are not numeric ({np.asarray(v).dtype}); assess_regression "
                "is for continuous values (use eoai.ml.assess for classes)"
            )
    if p.shape != r.shape:
        raise InputError(f"{p.size} predicted values but {r.size} reference values")
    p = p.astype("float64")
    r = r.astype("float64")
    ok = np.isfinite(p) & np.isfinite(r)
    if (~ok).any() and ok.any():
        warnings.warn(
            f"{int((~ok).sum())} of {ok.size} pairs have no predicted or no reference value "
            "(NaN) and were not counted",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
    scores = regression_scores(p, r)
    table = _by_group(p[ok], r[ok], groups[ok]) if groups is not None else None
    return RegressionAssessment(
        **scores, units=units, by_group=table, predicted=p[ok], reference=r[ok]
    )


def _paired_rasters(pred: xr.DataArray, ref: xr.DataArray, by: Any):
    import dask

    if set(pred.dims) != {"y", "x"} or set(ref.dims) != {"y", "x"}:
        raise InputError(
            f"a raster reference needs dims (y, x) like the prediction; got {ref.dims} and {pred.dims}"
        )
    if ref.sizes != pred.sizes or not (
        np.allclose(ref.x.values, pred.x.values) and np.allclose(ref.y.values, pred.y.values)
    ):
        raise InputError(
            "the reference raster is not on the grid of the prediction; reproject it first "
            "(e.g. reference.odc.reproject(prediction.odc.geobox))"
        )
    p, r = dask.compute(pred.data, ref.transpose(*pred.dims).data)
    groups = None
    if by is not None:
        g = by.transpose(*pred.dims).values if isinstance(by, xr.DataArray) else np.asarray(by)
        if g.size != np.size(p):
            raise InputError(f"by has {g.size} values for {np.size(p)} pixels")
        groups = g.ravel()
    return np.asarray(p).ravel(), np.asarray(r).ravel(), groups


def _at_labels(pred: xr.DataArray, reference: Any, label: str, by: Any):
    from .samples import extract

    if by is not None and not isinstance(by, str):
        raise InputError("with a vector reference, by must be one of its column names")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)
        table = extract(
            pred.rename("map").astype("float32"), reference, label=label, group=by,
            min_samples=0, drop_empty=False,
        )  # fmt: skip
    groups = table["group"].to_numpy() if by is not None else None
    ref = pd.to_numeric(table["label"], errors="coerce")
    if ref.isna().all() and table["label"].notna().any():
        raise InputError(
            f"the reference column {label!r} is not numeric (e.g. {table['label'].iloc[0]!r}); "
            "assess_regression compares values (use eoai.ml.assess for classes)"
        )
    return table["map"].to_numpy(), ref.to_numpy(dtype="float64"), groups


@renamed_parameters(random_state="seed")
def plot_regression(
    result: RegressionAssessment,
    *,
    title: str | None = None,
    max_points: int = 20000,
    seed: int | None = 0,
) -> Any:
    """Scatter of predicted against reference values (with the 1:1 line) and residual plot.

    Parameters
    ----------
    result
        A :class:`RegressionAssessment` (from :func:`assess_regression` or
        :func:`eoai.ml.cross_validate`).
    title
        Figure title (default: the scores).
    max_points
        Plot at most this many pairs (a seeded random subset); the scores use all of them.
    seed
        Seed of that subset.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: predicted vs reference, and residual (predicted - reference) vs reference.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = plot_regression(assess_regression([1.0, 2.0, 4.0], [1.0, 3.0, 3.0]))
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['reference', 'reference']
    """
    if not isinstance(result, RegressionAssessment):
        raise InputError(
            f"expected a RegressionAssessment (from eoai.ml.assess_regression), got {type(result).__name__}"
        )
    if not isinstance(max_points, int) or max_points < 1:
        raise InputError(f"max_points must be a positive int, got {max_points!r}")
    import matplotlib.pyplot as plt

    p, r = result.predicted, result.reference
    if p.size > max_points:
        pick = np.random.default_rng(seed).choice(p.size, max_points, replace=False)
        p, r = p[pick], r[pick]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4), constrained_layout=True)
    alpha = float(np.clip(200 / max(p.size, 1), 0.05, 0.8))
    ax1.scatter(r, p, s=6, alpha=alpha, edgecolors="none")
    if p.size:
        lo = float(min(r.min(), p.min()))
        hi = float(max(r.max(), p.max()))
        ax1.plot([lo, hi], [lo, hi], color="black", lw=1, label="1:1")
        ax1.legend(loc="upper left")
    u = f" ({result.units})" if result.units else ""
    ax1.set_xlabel("reference")
    ax1.set_ylabel(f"predicted{u}")
    ax2.scatter(r, p - r, s=6, alpha=alpha, edgecolors="none")
    ax2.axhline(0, color="black", lw=1)
    ax2.axhline(result.bias, color="tab:red", lw=1, ls="--", label=f"bias {result.bias:+.3g}")
    ax2.legend(loc="upper left")
    ax2.set_xlabel("reference")
    ax2.set_ylabel(f"residual (predicted - reference){u}")
    fig.suptitle(
        title or f"n = {result.n}, RMSE {result.rmse:.3g}, MAE {result.mae:.3g}, R² {result.r2:.3f}"
    )
    return fig
