"""Accuracy assessment: confusion matrix, overall accuracy, kappa, per-class scores, area estimates.

Conventions: confusion matrices have the **map** (predicted) classes as rows and the **reference**
classes as columns, as in Olofsson et al. (2014). User's accuracy = precision (row), producer's
accuracy = recall (column).

Area-adjusted accuracy and area estimates follow the stratified estimators of

    Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014).
    Good practices for estimating area and assessing accuracy of land change.
    Remote Sensing of Environment 148, 42-57. https://doi.org/10.1016/j.rse.2014.02.015

(equations 2-11: proportions p_ij = W_i n_ij / n_i., their standard errors, and 95 % confidence
intervals), where the strata are the map classes and W_i their mapped area proportions.

Examples
--------
>>> import numpy as np
>>> cm = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
>>> areas = [200_000, 150_000, 3_200_000, 6_450_000]  # mapped pixels, Olofsson et al. (2014) sect. 5
>>> est = area_estimates(cm, areas, pixel_area=0.09)  # 30 m pixels = 0.09 ha
>>> round(est.table.loc[0, "area"]), round(est.table.loc[0, "area_ci"])
(21158, 6158)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._skipped import user_stacklevel
from ..errors import DataSkippedWarning, InputError


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


@dataclass
class AreaEstimate:
    """Olofsson et al. (2014) stratified estimates; ``table`` has one row per class.

    Columns: ``map_area`` (mapped area), ``weight`` (W_i), ``n`` (sample size of the stratum),
    ``users_accuracy``/``users_ci``, ``producers_accuracy``/``producers_ci``,
    ``area_proportion``/``area_proportion_se``, ``area``/``area_se``/``area_ci`` (half-width of the
    confidence interval), ``area_low``/``area_high``. ``overall_accuracy`` and ``overall_ci`` are the
    area-weighted overall accuracy and its half-width; ``proportions`` is the p_ij matrix.
    """

    table: pd.DataFrame
    overall_accuracy: float
    overall_ci: float
    proportions: pd.DataFrame
    confidence: float = 0.95
    area_unit: str = ""


def area_estimates(
    confusion: Any,
    map_areas: Sequence[float] | Mapping[Any, float],
    *,
    classes: Sequence[Any] | None = None,
    pixel_area: float = 1.0,
    area_unit: str = "",
    confidence: float = 0.95,
) -> AreaEstimate:
    """Area-adjusted accuracy and area of each class from a stratified sample (Olofsson et al. 2014).

    Parameters
    ----------
    confusion
        Sample counts n_ij, map classes as rows and reference classes as columns (array or
        DataFrame; a DataFrame's index gives the classes).
    map_areas
        Mapped area (or pixel count) of each map class, in the order of the rows or as a mapping.
    classes
        Class labels (default: the DataFrame index, else ``0..q-1``).
    pixel_area
        Multiplies ``map_areas`` to give the area unit (e.g. 0.09 ha for 30 m pixels).
    area_unit
        Name of that unit, recorded in the result.
    confidence
        Confidence level of the intervals (0.95 -> z = 1.96).

    Returns
    -------
    AreaEstimate

    Examples
    --------
    >>> cm = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
    >>> est = area_estimates(cm, [200_000, 150_000, 3_200_000, 6_450_000], pixel_area=0.09)
    >>> round(est.overall_accuracy, 3), est.table["users_accuracy"].round(2).tolist()
    (0.947, [0.88, 0.73, 0.93, 0.96])
    """
    if isinstance(confusion, pd.DataFrame):
        classes = list(confusion.index) if classes is None else list(classes)
        n = confusion.to_numpy(dtype="float64")
    else:
        n = np.asarray(confusion, dtype="float64")
    if n.ndim != 2 or n.shape[0] != n.shape[1]:
        raise InputError(f"the confusion matrix must be square, got shape {n.shape}")
    q = n.shape[0]
    classes = list(range(q)) if classes is None else list(classes)
    if isinstance(map_areas, Mapping):
        missing = [c for c in classes if c not in map_areas]
        if missing:
            raise InputError(f"map_areas lacks the classes {missing}")
        areas = np.array([map_areas[c] for c in classes], dtype="float64")
    else:
        areas = np.asarray(map_areas, dtype="float64")
    if areas.shape != (q,):
        raise InputError(f"{areas.size} map areas for {q} classes")
    if (areas < 0).any() or areas.sum() <= 0:
        raise InputError("map areas must be non-negative with a positive total")
    areas = areas * pixel_area
    z = _z(confidence)
    total = areas.sum()
    w = areas / total
    n_i = n.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(n_i[:, None] > 0, n / n_i[:, None], 0.0)  # n_ij / n_i.
        dof = np.where(n_i > 1, n_i - 1, np.nan)
        p = w[:, None] * frac  # eq. 4
        p_col = p.sum(axis=0)  # estimated area proportion of each reference class (eq. 9)
        diag = np.diag(p)
        users = np.diag(frac)  # eq. 2
        producers = np.where(p_col > 0, diag / p_col, np.nan)  # eq. 3
        oa = diag.sum()  # eq. 1
        v_users = users * (1 - users) / dof  # eq. 6
        v_oa = np.nansum(w**2 * users * (1 - users) / dof)  # eq. 5
        # eq. 7: variance of producer's accuracy
        n_hat_col = (areas[:, None] * frac).sum(axis=0)  # estimated reference-class area N_.j
        term = (areas[:, None] ** 2) * frac * (1 - frac) / dof[:, None]
        v_prod = np.empty(q)
        for j in range(q):  # q classes, not pixels
            others = np.nansum(np.delete(term[:, j], j))
            v_prod[j] = (
                areas[j] ** 2 * (1 - producers[j]) ** 2 * users[j] * (1 - users[j]) / dof[j]
                + producers[j] ** 2 * others
            ) / n_hat_col[j] ** 2
        se_p_col = np.sqrt(
            np.nansum((w[:, None] ** 2) * frac * (1 - frac) / dof[:, None], axis=0)
        )  # eq. 10
    area = total * p_col  # eq. 11
    area_se = total * se_p_col
    table = pd.DataFrame(
        {
            "map_area": areas,
            "weight": w,
            "n": n_i.astype(int),
            "users_accuracy": users,
            "users_ci": z * np.sqrt(v_users),
            "producers_accuracy": producers,
            "producers_ci": z * np.sqrt(v_prod),
            "area_proportion": p_col,
            "area_proportion_se": se_p_col,
            "area": area,
            "area_se": area_se,
            "area_ci": z * area_se,
            "area_low": area - z * area_se,
            "area_high": area + z * area_se,
        },
        index=pd.Index(classes, name="class"),
    )
    empty = n_i == 0
    if empty.any():
        warnings.warn(
            f"{int(empty.sum())} map classes have no sample ({[classes[i] for i in np.flatnonzero(empty)]}); "
            "their accuracy is unknown and their area counts as if their samples were all correct "
            "-- sample every map class",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
    return AreaEstimate(
        table=table,
        overall_accuracy=float(oa),
        overall_ci=float(z * np.sqrt(v_oa)),
        proportions=pd.DataFrame(
            p, index=pd.Index(classes, name="map"), columns=pd.Index(classes, name="reference")
        ),
        confidence=confidence,
        area_unit=area_unit,
    )


def scores_from_confusion(confusion: pd.DataFrame) -> tuple[float, float, pd.DataFrame]:
    """Overall accuracy, Cohen's kappa and per-class precision/recall/F1 of a count matrix.

    Rows are the map (predicted) classes, columns the reference classes.

    Examples
    --------
    >>> import pandas as pd
    >>> cm = pd.DataFrame([[8, 2], [0, 10]], index=["a", "b"], columns=["a", "b"])
    >>> oa, kappa, per_class = scores_from_confusion(cm)
    >>> oa, round(kappa, 3), per_class["recall"].tolist()
    (0.9, 0.8, [1.0, 0.8333333333333334])
    """
    n = confusion.to_numpy(dtype="float64")
    total = n.sum()
    if total == 0:
        raise InputError(
            "the confusion matrix is empty: no sample has both a map and a reference class"
        )
    diag = np.diag(n)
    rows, cols = n.sum(axis=1), n.sum(axis=0)
    oa = diag.sum() / total
    pe = (rows * cols).sum() / total**2
    kappa = (oa - pe) / (1 - pe) if pe < 1 else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(rows > 0, diag / rows, np.nan)
        recall = np.where(cols > 0, diag / cols, np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        f1 = np.where(np.isnan(precision) | np.isnan(recall), np.nan, f1)
    per_class = pd.DataFrame(
        {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": cols.astype(int),
            "predicted": rows.astype(int),
        },
        index=pd.Index(confusion.index, name="class"),
    )
    return float(oa), float(kappa), per_class


@dataclass
class Assessment:
    """Result of :func:`assess` and :func:`eoai.ml.cross_validate`.

    ``confusion``: counts (rows map, columns reference); ``overall_accuracy``; ``kappa``;
    ``per_class`` (precision = user's accuracy, recall = producer's accuracy, F1, support);
    ``area``: :class:`AreaEstimate` when mapped areas are known; ``class_names``; ``extra``: more
    (e.g. per-fold scores of a cross-validation).
    """

    confusion: pd.DataFrame
    overall_accuracy: float
    kappa: float
    per_class: pd.DataFrame
    area: AreaEstimate | None = None
    class_names: dict[Any, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def f1(self) -> pd.Series:
        """Per-class F1 scores."""
        return self.per_class["f1"]

    def summary(self) -> pd.DataFrame:
        """One table: per-class scores, with names, and area estimates when available."""
        out = self.per_class.copy()
        if self.class_names:
            out.insert(0, "name", [self.class_names.get(c, str(c)) for c in out.index])
        if self.area is not None:
            cols = [
                "users_accuracy",
                "users_ci",
                "producers_accuracy",
                "producers_ci",
                "map_area",
                "area",
                "area_ci",
            ]
            out = out.join(self.area.table[cols], how="left")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable scores (for model metadata and reports)."""
        out: dict[str, Any] = {
            "overall_accuracy": self.overall_accuracy,
            "kappa": self.kappa,
            "f1": {str(k): (None if np.isnan(v) else float(v)) for k, v in self.f1.items()},
            "n": int(self.confusion.to_numpy().sum()),
        }
        if self.area is not None:
            out["area_adjusted_overall_accuracy"] = self.area.overall_accuracy
            out["area_adjusted_overall_ci"] = self.area.overall_ci
        return out

    def __repr__(self) -> str:
        text = (
            f"Assessment: n={int(self.confusion.to_numpy().sum())}, overall accuracy "
            f"{self.overall_accuracy:.3f}, kappa {self.kappa:.3f}"
        )
        if self.area is not None:
            text += (
                f", area-adjusted overall accuracy {self.area.overall_accuracy:.3f} "
                f"± {self.area.overall_ci:.3f}"
            )
        return text + "\n" + self.summary().round(3).to_string()

    def _repr_html_(self) -> str:
        head = repr(self).splitlines()[0]
        return f"<p>{head}</p>" + self.summary().round(3).to_html()


def confusion_from_labels(
    map_labels: Any, reference: Any, classes: Sequence[Any] | None = None
) -> pd.DataFrame:
    """Count matrix (rows map, columns reference) of two 1-D label arrays.

    Examples
    --------
    >>> confusion_from_labels([1, 1, 2], [1, 2, 2]).to_numpy().tolist()
    [[1, 1], [0, 1]]
    """
    m = pd.Series(np.asarray(map_labels).ravel())
    r = pd.Series(np.asarray(reference).ravel())
    if len(m) != len(r):
        raise InputError(f"{len(m)} map labels but {len(r)} reference labels")
    if classes is None:
        classes = sorted(set(m.dropna()) | set(r.dropna()), key=lambda v: (str(type(v)), v))
    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}
    mi = m.map(index)
    ri = r.map(index)
    ok = mi.notna() & ri.notna()
    q = len(classes)
    counts = np.bincount(
        (mi[ok].astype(int) * q + ri[ok].astype(int)).to_numpy(), minlength=q * q
    ).reshape(q, q)
    return pd.DataFrame(
        counts, index=pd.Index(classes, name="map"), columns=pd.Index(classes, name="reference")
    )


def _legend_of(class_map: xr.DataArray) -> tuple[list[int], dict[int, str]]:
    codes = class_map.attrs.get("flag_values")
    names = class_map.attrs.get("class_names")
    if codes is None:
        return [], {}
    codes = [int(c) for c in np.atleast_1d(codes)]
    if names is None:
        meanings = class_map.attrs.get("flag_meanings", "")
        names = meanings.split() if isinstance(meanings, str) else list(meanings)
    return codes, dict(zip(codes, [str(n) for n in names], strict=False))


def _reference_as_codes(r_vals: np.ndarray, names: Mapping[int, str]) -> np.ndarray:
    """Reference labels given as class *names* -> the map's class codes (others stay as they are)."""
    ref = pd.Series(np.asarray(r_vals).ravel())
    given = ref.dropna()
    if not names or given.empty or not given.map(lambda v: isinstance(v, str)).all():
        return np.asarray(r_vals)
    by_name = {str(n): c for c, n in names.items()}
    unknown = sorted(set(given) - set(by_name))
    if len(unknown) == given.nunique():
        raise InputError(
            f"the reference labels ({', '.join(unknown[:5])}) match none of the class map's "
            f"class names ({', '.join(by_name)}); pass the label column the model was trained on"
        )
    return ref.map(by_name).to_numpy()  # unknown names -> NaN, counted and warned about below


def assess(
    class_map: Any,
    reference: Any,
    *,
    label: str = "class",
    classes: Sequence[Any] | None = None,
    map_areas: Sequence[float] | Mapping[Any, float] | None = None,
    area_estimate: bool | None = None,
    nodata: int | None = None,
    reference_nodata: Any = None,
    area_unit: str = "ha",
    confidence: float = 0.95,
) -> Assessment:
    """Accuracy of a class map against reference data, with Olofsson et al. (2014) area estimates.

    Parameters
    ----------
    class_map
        The ``class`` DataArray of :func:`eoai.ml.classify.classify` (lazy is fine: it is computed
        here, since you asked for numbers), a Dataset with a ``class`` variable, or a 1-D array of
        map labels (then ``reference`` is a 1-D array of the same length).
    reference
        A DataArray of reference classes on the same grid (e.g. a rasterised land-cover map), a
        GeoDataFrame / path of labelled points or polygons (column ``label``; e.g. a stratified
        random sample), or a 1-D array.
    label
        Class column of a vector ``reference``.
    classes
        Classes to assess, in order (default: those found in both).
    map_areas
        Mapped area (pixels) per map class for the area estimates; by default counted from a
        raster ``class_map``.
    area_estimate
        Compute Olofsson area estimates (default: whenever mapped areas are known). They assume the
        reference is a (stratified) random sample of the map.
    nodata
        Class-map value to ignore (default: ``class_map.attrs["nodata"]``, else 255).
    reference_nodata
        Reference value to ignore (default: ``reference.attrs["nodata"]``/``_FillValue``; 0 when
        the reference's ``flag_meanings`` starts with ``no_data``).
    area_unit
        ``"ha"``, ``"km2"``, ``"m2"`` or ``"pixels"`` for areas from a raster class map.
    confidence
        Level of the confidence intervals.

    Returns
    -------
    Assessment
        confusion matrix, overall accuracy, kappa, per-class precision/recall/F1 and area estimates.

    Examples
    --------
    >>> a = assess([1, 1, 2, 2], [1, 2, 2, 2])
    >>> a.overall_accuracy, a.per_class["precision"].tolist()
    (0.75, [0.5, 1.0])
    """
    if isinstance(class_map, xr.Dataset):
        if "class" not in class_map and "prediction" in class_map:
            raise InputError(
                "this is a map of a continuous quantity (eoai.ml.predict): assess it with "
                "eoai.ml.assess_regression(prediction, reference) (RMSE, MAE, bias, R²)"
            )
        if "class" not in class_map:
            raise InputError("the Dataset has no 'class' variable; pass the class map DataArray")
        class_map = class_map["class"]
    names: dict[Any, str] = {}
    pixel_area = 1.0
    counted_areas = None
    if isinstance(class_map, xr.DataArray):
        codes, names = _legend_of(class_map)
        if nodata is None:
            nodata = class_map.attrs.get("nodata", 255)
        if isinstance(reference, xr.DataArray):
            m_vals, r_vals = _paired_pixels(class_map, reference, nodata, reference_nodata)
        else:
            m_vals, r_vals = _values_at_labels(class_map, reference, label, nodata)
        r_vals = _reference_as_codes(r_vals, names)
        pixel_area = _pixel_area(class_map, area_unit)
        if map_areas is None:
            import dask.array as da

            flat = (
                class_map.data.ravel()
                if hasattr(class_map.data, "dask")
                else da.asarray(class_map.values).ravel()
            )
            hist = np.asarray(da.bincount(flat.astype("int64"), minlength=256).compute())
            counted_areas = {int(c): float(hist[c]) for c in np.flatnonzero(hist) if c != nodata}
    else:
        m_vals = np.asarray(class_map).ravel()
        r_vals = np.asarray(reference).ravel()
    if classes is None:
        present = set(pd.unique(pd.Series(m_vals).dropna())) | set(
            pd.unique(pd.Series(r_vals).dropna())
        )
        classes = sorted(present, key=lambda v: (str(type(v)), v))
    confusion = confusion_from_labels(m_vals, r_vals, classes)
    outside = int(len(m_vals) - confusion.to_numpy().sum())
    if outside:
        warnings.warn(
            f"{outside} samples have a class outside {list(classes)} and were not counted",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
    oa, kappa, per_class = scores_from_confusion(confusion)
    area = None
    areas = map_areas if map_areas is not None else counted_areas
    if area_estimate is None:
        area_estimate = areas is not None
    if area_estimate:
        if areas is None:
            raise InputError(
                "area estimates need map_areas (mapped pixels per class) or a raster class map"
            )
        if not isinstance(areas, Mapping):
            areas = dict(zip(classes, areas, strict=True))
        areas = {c: float(areas.get(c, 0.0)) for c in classes}
        area = area_estimates(
            confusion, areas, pixel_area=pixel_area if map_areas is None else 1.0,
            area_unit=area_unit if map_areas is None else "", confidence=confidence,
        )  # fmt: skip
    return Assessment(
        confusion=confusion,
        overall_accuracy=oa,
        kappa=kappa,
        per_class=per_class,
        area=area,
        class_names={c: names[c] for c in classes if c in names},
    )


def _pixel_area(class_map: xr.DataArray, unit: str) -> float:
    factors = {"m2": 1.0, "ha": 1e-4, "km2": 1e-6}
    if unit == "pixels":
        return 1.0
    if unit not in factors:
        raise InputError(f"area_unit must be one of {sorted(factors) + ['pixels']}, got {unit!r}")
    try:
        import odc.geo.xr  # noqa: F401

        gbox = class_map.odc.geobox
        res = gbox.resolution
        if gbox.crs is not None and gbox.crs.geographic:
            raise AttributeError
        return abs(float(res.x) * float(res.y)) * factors[unit]
    except Exception:  # noqa: BLE001 - no projected grid: fall back to pixels
        warnings.warn(
            "the class map has no projected CRS, so areas are given in pixels",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
        return 1.0


def _reference_nodata(reference: xr.DataArray, given: Any) -> Any:
    if given is not None:
        return given
    for key in ("nodata", "_FillValue"):
        if key in reference.attrs:
            return reference.attrs[key]
        if key in reference.encoding:
            return reference.encoding[key]
    meanings = reference.attrs.get("flag_meanings")
    values = reference.attrs.get("flag_values")
    if isinstance(meanings, str) and values is not None:
        first = meanings.split()[0].lower().replace("_", "")
        if first in {"nodata", "none", "unknown", "unclassified"}:
            return int(np.atleast_1d(values)[0])
    return None


def _paired_pixels(class_map: xr.DataArray, reference: xr.DataArray, nodata: Any, ref_nodata: Any):
    import dask

    if set(reference.dims) != {"y", "x"} or set(class_map.dims) != {"y", "x"}:
        raise InputError(
            f"a raster reference needs dims (y, x) like the class map; got {reference.dims} and {class_map.dims}"
        )
    if reference.sizes != class_map.sizes or not (
        np.allclose(reference.x.values, class_map.x.values)
        and np.allclose(reference.y.values, class_map.y.values)
    ):
        raise InputError(
            "the reference raster is not on the grid of the class map; reproject it first "
            "(e.g. reference.odc.reproject(class_map.odc.geobox, resampling='nearest'))"
        )
    ref_nodata = _reference_nodata(reference, ref_nodata)
    m, r = dask.compute(class_map.data, reference.transpose(*class_map.dims).data)
    m = np.asarray(m).ravel()
    r = np.asarray(r).ravel()
    ok = m != nodata
    if np.issubdtype(r.dtype, np.floating):
        ok &= ~np.isnan(r)
    if ref_nodata is not None:
        ok &= r != ref_nodata
    return m[ok], r[ok]


def _values_at_labels(class_map: xr.DataArray, reference: Any, label: str, nodata: Any):
    from .samples import extract

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)
        table = extract(
            class_map.rename("map").astype("float32"),
            reference,
            label=label,
            min_samples=0,
            drop_empty=False,
        )
    m = table["map"].to_numpy()
    ok = m != nodata
    if (~ok).any():
        warnings.warn(
            f"{int((~ok).sum())} reference samples fall on nodata pixels of the map and were not counted",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
    return m[ok].astype("int64"), table["label"].to_numpy()[ok]


def plot_confusion_matrix(
    result: Assessment | pd.DataFrame,
    *,
    normalize: str | None = None,
    ax: Any = None,
    cmap: str = "Blues",
    title: str | None = None,
) -> Any:
    """Plot a confusion matrix (rows map, columns reference) with counts or proportions.

    Parameters
    ----------
    result
        An :class:`Assessment` or a count DataFrame.
    normalize
        ``None`` (counts), ``"reference"`` (columns sum to 1: producer's view), ``"map"`` (rows sum
        to 1: user's view) or ``"all"``.
    ax
        Matplotlib axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_confusion_matrix(assess([1, 1, 2, 2], [1, 2, 2, 2]), normalize="reference")
    >>> ax.get_xlabel()
    'reference'
    """
    import matplotlib.pyplot as plt

    if isinstance(result, Assessment):
        cm = result.confusion
        names = result.class_names
    elif isinstance(result, pd.DataFrame):
        cm, names = result, {}
    else:
        raise InputError(f"expected an Assessment or a DataFrame, got {type(result).__name__}")
    values = cm.to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        if normalize == "reference":
            values = values / values.sum(axis=0, keepdims=True)
        elif normalize == "map":
            values = values / values.sum(axis=1, keepdims=True)
        elif normalize == "all":
            values = values / values.sum()
        elif normalize is not None:
            raise InputError(
                f"normalize must be None, 'reference', 'map' or 'all', got {normalize!r}"
            )
    if ax is None:
        q = len(cm)
        _, ax = plt.subplots(figsize=(1.2 + 0.7 * q, 1.0 + 0.6 * q))
    image = ax.imshow(values, cmap=cmap, vmin=0)
    labels = [names.get(c, str(c)) for c in cm.index]
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("reference")
    ax.set_ylabel("map")
    vmax = np.nanmax(values) if values.size else 0
    for (i, j), v in np.ndenumerate(values):
        text = f"{int(v)}" if normalize is None else f"{v:.2f}"
        ax.text(
            j,
            i,
            text,
            ha="center",
            va="center",
            color="white" if v > 0.6 * vmax else "black",
            fontsize=8,
        )
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(
        title or ("confusion matrix" + (f" (normalised by {normalize})" if normalize else ""))
    )
    return ax
