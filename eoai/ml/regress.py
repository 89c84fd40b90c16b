"""Regression models: a continuous target (biomass, fuel moisture, fraction cover) per pixel.

:func:`eoai.ml.fit` trains one when the target column is continuous (or ``task="regression"``):
``"rf"`` is then a :class:`~sklearn.ensemble.RandomForestRegressor`, ``"gbt"`` a
:class:`~sklearn.ensemble.HistGradientBoostingRegressor`, ``"et"`` extra trees, or any scikit-learn
regressor. The fitted model is a :class:`SklearnRegressor`, which :func:`eoai.ml.classify.predict`
(``cube.eoai.predict``) applies lazily chunk by chunk and :func:`eoai.ml.save_model` stores.

The contract :func:`eoai.ml.classify.predict` needs (:class:`PixelRegressor`):

- ``features``: feature names in the layout of :mod:`eoai.ml.features`;
- ``target``: name of the predicted quantity; ``units``: its units (``""`` when unknown);
- ``allow_nan``: whether ``predict`` accepts NaN features;
- ``metadata``: JSON-serialisable dict;
- ``predict(X)``: float32 ``(n, n_features)`` -> ``(n,)``;
- optionally ``predict_interval(X, interval)`` -> ``(mean, lower, upper)``, each ``(n,)``.

Prediction intervals of a forest are the quantiles of the predictions of its trees
(``interval=0.9``: the 5 % and 95 % quantiles). They describe how much the trees disagree, not the
spread of the target around the prediction: on the Presto fuel-moisture test split the 90 % band
of a 300-tree forest holds fewer than 90 % of the reference values (see benchmarks/README.md,
"Regression"); treat them as a relative measure of confidence.

Examples
--------
>>> import numpy as np
>>> from sklearn.ensemble import RandomForestRegressor
>>> X = np.linspace(0, 1, 40, dtype="float32")[:, None]
>>> est = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, 10 * X[:, 0])
>>> m = SklearnRegressor(est, features=["ndvi"], target="biomass", units="t/ha")
>>> mean, low, high = m.predict_interval(np.array([[0.5]], dtype="float32"), 0.9)
>>> bool(low[0] <= mean[0] <= high[0]), round(float(m.predict(np.array([[0.5]], "float32"))[0]))
(True, 5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._renamed import renamed_parameters
from ..errors import InputError, ModelError

#: rows per slab when predicting tree by tree (bounds the (trees, rows) buffer to ~ trees x 64 KiB)
_SLAB = 16384
REGRESSOR_NAMES = {
    "rf": "rf", "randomforest": "rf", "random_forest": "rf",
    "et": "et", "extratrees": "et", "extra_trees": "et",
    "gbt": "gbt", "gb": "gbt", "hgb": "gbt", "gradientboosting": "gbt", "gradient_boosting": "gbt",
}  # fmt: skip


@runtime_checkable
class PixelRegressor(Protocol):
    """What :func:`eoai.ml.classify.predict` needs from a regression model (module docstring)."""

    features: list[str]
    target: str
    units: str
    metadata: dict[str, Any]
    allow_nan: bool

    def predict(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - protocol
        """Predicted values ``(n,)`` of float32 features ``(n, n_features)``."""
        ...


def is_regressor_estimator(est: Any) -> bool:
    """Whether a scikit-learn estimator is a regressor (its estimator type tag).

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    >>> is_regressor_estimator(RandomForestRegressor()), is_regressor_estimator(RandomForestClassifier())
    (True, False)
    """
    from sklearn.base import is_regressor

    try:
        return bool(is_regressor(est))
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator
        return False


@renamed_parameters(random_state="seed", n_jobs="threads")
def make_regressor(
    model: str | Any,
    *,
    threads: int | None = None,
    seed: int | None = 0,
    **params: Any,
) -> Any:
    """An unfitted scikit-learn regressor for ``model`` (a name or an estimator, cloned).

    Parameters
    ----------
    model
        ``"rf"`` (random forest, 200 trees, ``max_features="sqrt"``: chosen on real data, see
        benchmarks/README.md), ``"et"`` (extra trees, 200 trees), ``"gbt"`` (histogram gradient
        boosting), or a scikit-learn regressor.
    threads
        Threads of a forest (gradient boosting uses OpenMP threads; :class:`SklearnRegressor`
        limits them to ``threads`` while fitting and predicting).
    seed
        Seed (set when the estimator has one).
    **params
        Estimator parameters (``n_estimators``, ``max_features``, ``learning_rate``...).

    Returns
    -------
    sklearn.base.RegressorMixin

    Examples
    --------
    >>> make_regressor("gbt", max_iter=50).max_iter
    50
    >>> type(make_regressor("rf", threads=1)).__name__
    'RandomForestRegressor'
    """
    from sklearn.base import clone

    if isinstance(model, str):
        key = REGRESSOR_NAMES.get(model.lower())
        if key == "rf":
            from sklearn.ensemble import RandomForestRegressor

            # max_features="sqrt": measured on the two Presto regression sets (benchmarks/README.md,
            # "Regression"): test RMSE 24.46 vs 25.20 (fuel moisture) and 1.12 vs 1.32 (algae) for
            # scikit-learn's 1.0, and 8-10x faster to fit
            est = RandomForestRegressor(
                n_estimators=params.pop("n_estimators", 200),
                max_features=params.pop("max_features", "sqrt"),
            )
        elif key == "et":
            from sklearn.ensemble import ExtraTreesRegressor

            est = ExtraTreesRegressor(n_estimators=params.pop("n_estimators", 200))
        elif key == "gbt":
            from sklearn.ensemble import HistGradientBoostingRegressor

            est = HistGradientBoostingRegressor()
        else:
            raise InputError(
                f"unknown regression model {model!r}: use 'rf' (random forest), 'et' (extra "
                "trees), 'gbt' (histogram gradient boosting) or a scikit-learn regressor"
            )
    elif hasattr(model, "fit") and hasattr(model, "predict"):
        if not is_regressor_estimator(model):
            raise InputError(
                f"{type(model).__name__} is not a scikit-learn regressor, but the target is "
                "continuous: pass a regressor (e.g. 'rf', 'gbt', RandomForestRegressor()), or "
                "task='classification' if the target values are class labels"
            )
        est = clone(model)
    else:
        raise InputError(
            f"model must be 'rf', 'et', 'gbt' or a scikit-learn regressor, got {type(model).__name__}"
        )
    settable = est.get_params()
    if seed is not None and "random_state" in settable:
        params.setdefault("random_state", seed)
    if threads is not None and "n_jobs" in settable:
        params.setdefault("n_jobs", threads)
    from .forest import set_known_params

    return set_known_params(est, params)


def _threads(threads: int | None) -> Any:
    """Limit OpenMP threads (histogram gradient boosting) to ``threads``; no-op for ``None``."""
    if threads is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=max(1, int(threads)), user_api="openmp")


class RegressorModel:
    """Base class of eoai regression models: features, target, units and metadata.

    Parameters
    ----------
    features
        Feature names in the order ``predict`` expects them.
    target
        Name of the predicted quantity (the target column).
    units
        Units of the target (e.g. ``"%"``, ``"t/ha"``); ``""`` when unknown.
    metadata
        JSON-serialisable information (training cube, parameters, scores).

    Examples
    --------
    >>> RegressorModel(["ndvi"], target="lfmc", units="%")
    <RegressorModel: lfmc (%), 1 features>
    """

    allow_nan: bool = False

    def __init__(
        self,
        features: Sequence[str],
        target: str = "label",
        *,
        units: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.features = [str(f) for f in features]
        if not self.features:
            raise InputError("a regression model needs at least one feature")
        if len(set(self.features)) != len(self.features):
            raise InputError("feature names must be unique")
        if not isinstance(target, str) or not target:
            raise InputError(f"target must be a non-empty column name, got {target!r}")
        if not isinstance(units, str):
            raise InputError(f"units must be a string (e.g. '%'), got {type(units).__name__}")
        self.target = target
        self.units = units
        self.metadata: dict[str, Any] = dict(metadata or {})

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted values ``(n,)`` of features ``X`` ``(n, n_features)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement predict")

    @property
    def has_interval(self) -> bool:
        """Whether :meth:`predict_interval` is available (forests)."""
        return False

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description (task, features, target, units, metadata)."""
        return {
            "model_class": f"{type(self).__module__}.{type(self).__qualname__}",
            "task": "regression",
            "features": self.features,
            "target": self.target,
            "units": self.units,
            "allow_nan": bool(self.allow_nan),
            "metadata": self.metadata,
        }

    def __repr__(self) -> str:
        units = f" ({self.units})" if self.units else ""
        return f"<{type(self).__name__}: {self.target}{units}, {len(self.features)} features>"


class SklearnRegressor(RegressorModel):
    """A fitted scikit-learn regressor with the eoai metadata.

    Parameters
    ----------
    estimator
        Fitted scikit-learn regressor.
    features
        Feature names, in the column order the estimator was fitted on.
    target, units, metadata
        As for :class:`RegressorModel`.
    threads
        OpenMP threads while predicting with gradient boosting (``None``: all).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingRegressor
    >>> X = np.linspace(0, 1, 60, dtype="float32")[:, None]
    >>> est = HistGradientBoostingRegressor(max_iter=30).fit(X, 2 * X[:, 0])
    >>> m = SklearnRegressor(est, ["ndvi"], target="cover")
    >>> m.has_interval, m.predict(np.array([[np.nan]], "float32")).shape
    (False, (1,))
    """

    def __init__(
        self,
        estimator: Any,
        features: Sequence[str],
        target: str = "label",
        *,
        units: str = "",
        metadata: Mapping[str, Any] | None = None,
        threads: int | None = None,
    ) -> None:
        if not is_regressor_estimator(estimator):
            raise ModelError(
                f"{type(estimator).__name__} is not a scikit-learn regressor; classifiers are "
                "wrapped by eoai.ml.forest.SklearnModel (eoai.ml.fit chooses for you)"
            )
        if not hasattr(estimator, "n_features_in_"):
            raise ModelError(f"{type(estimator).__name__} is not fitted (no n_features_in_)")
        super().__init__(features, target, units=units, metadata=metadata)
        if estimator.n_features_in_ != len(self.features):
            raise ModelError(
                f"the estimator was fitted on {estimator.n_features_in_} features, "
                f"{len(self.features)} named"
            )
        from .forest import _jsonable, estimator_allows_nan

        self.estimator = estimator
        self.allow_nan = estimator_allows_nan(estimator)
        self.n_jobs_predict = threads
        self.metadata.setdefault("estimator", type(estimator).__name__)
        self.metadata.setdefault(
            "params", {k: v for k, v in estimator.get_params().items() if _jsonable(v)}
        )

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype="float32")
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ModelError(f"expected features of shape (n, {len(self.features)}), got {X.shape}")
        return X

    @property
    def threads(self) -> int | None:
        """Threads of one prediction call (the forest's ``threads``, or the OpenMP limit)."""
        return getattr(self.estimator, "n_jobs", self.n_jobs_predict)

    @property
    def has_interval(self) -> bool:
        """Whether the model is a random / extra-trees forest (per-tree predictions give intervals).

        Boosted trees are not: each fits the residuals of the previous ones.
        """
        from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

        return isinstance(self.estimator, (RandomForestRegressor, ExtraTreesRegressor))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted values ``(n,)`` (float32) of ``X`` ``(n, n_features)``."""
        X = self._check(X)
        if X.shape[0] == 0:
            return np.zeros(0, dtype="float32")
        with _threads(None if hasattr(self.estimator, "n_jobs") else self.n_jobs_predict):
            return np.asarray(self.estimator.predict(X), dtype="float32").reshape(-1)

    def predict_interval(
        self, X: np.ndarray, interval: float = 0.9
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean and the ``(1 - interval) / 2`` and ``(1 + interval) / 2`` quantiles of the trees.

        Parameters
        ----------
        X
            Features ``(n, n_features)``.
        interval
            Central share of the per-tree predictions between ``lower`` and ``upper``, in (0, 1).

        Returns
        -------
        mean, lower, upper : numpy.ndarray
            float32 ``(n,)`` each; ``mean`` equals :meth:`predict` for a random forest.

        Raises
        ------
        eoai.errors.ModelError
            The model is not a forest (e.g. gradient boosting gives no per-tree spread).
        """
        if not isinstance(interval, (int, float)) or not 0 < interval < 1:
            raise InputError(f"interval must be in (0, 1) (e.g. 0.9), got {interval!r}")
        if not self.has_interval:
            raise ModelError(
                f"{type(self.estimator).__name__} gives no prediction interval (it is not a "
                "forest of trees); train with model='rf' or 'et', or predict without interval="
            )
        X = self._check(X)
        n = X.shape[0]
        mean = np.empty(n, dtype="float32")
        lower = np.empty(n, dtype="float32")
        upper = np.empty(n, dtype="float32")
        trees = list(self.estimator.estimators_)
        q = [(1 - interval) / 2, (1 + interval) / 2]
        X = np.ascontiguousarray(X)
        for start in range(0, n, _SLAB):
            part = X[start : start + _SLAB]
            per_tree = np.empty((len(trees), part.shape[0]), dtype="float32")
            for i, tree in enumerate(trees):
                per_tree[i] = tree.predict(part, check_input=False)
            mean[start : start + _SLAB] = per_tree.mean(axis=0)
            lo, hi = np.quantile(per_tree, q, axis=0)
            lower[start : start + _SLAB] = lo
            upper[start : start + _SLAB] = hi
        return mean, lower, upper


@renamed_parameters(random_state="seed", n_jobs="threads")
def fit_regressor(
    samples: Any,
    model: str | Any,
    *,
    features: list[str],
    target: str,
    units: str = "",
    threads: int | None = None,
    seed: int | None = 0,
    metadata: dict[str, Any] | None = None,
    **params: Any,
) -> SklearnRegressor:
    """Fit a regressor on checked samples (called by :func:`eoai.ml.fit`; validate there).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"b": np.linspace(0, 1, 30), "y": np.linspace(0, 3, 30)})
    >>> fit_regressor(df, "gbt", features=["b"], target="y", max_iter=20).estimator.max_iter
    20
    """
    est = make_regressor(model, threads=threads, seed=seed, **params)
    X = samples[features].to_numpy(dtype="float32")
    from .forest import estimator_allows_nan

    if not estimator_allows_nan(est) and np.isnan(X).any():
        raise InputError(
            f"{int(np.isnan(X).any(axis=1).sum())} samples have NaN features and "
            f"{type(est).__name__} does not accept NaN: gap-fill the cube "
            "(cube.eoai.gapfill(...)) or use model='rf' or 'gbt', which handle NaN"
        )
    y = samples[target].to_numpy(dtype="float64")
    omp = threads if "n_jobs" not in est.get_params() else None
    with _threads(omp):
        est.fit(X, y)
    meta = dict(metadata or {})
    meta["method"] = f"eoai.ml.fit({type(est).__name__})"
    return SklearnRegressor(est, features, target, units=units, metadata=meta, threads=omp)
