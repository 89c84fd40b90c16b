"""scikit-learn classifiers (a random forest by default) wrapped in the eoai model contract.

:class:`SklearnModel` holds a fitted estimator with the features, classes, colours and the
description of the training cube (:class:`eoai.ml.base.ClassifierModel`); it is what
:func:`eoai.ml.fit` returns for ``model="rf"`` or any scikit-learn estimator, what
:func:`eoai.ml.classify.classify` applies chunk by chunk, and what :func:`eoai.ml.save_model` stores.

Examples
--------
>>> import numpy as np
>>> from sklearn.tree import DecisionTreeClassifier
>>> X = np.array([[0.1], [0.2], [0.8], [0.9]], dtype="float32")
>>> est = DecisionTreeClassifier().fit(X, ["bare", "bare", "green", "green"])
>>> m = SklearnModel(est, features=["ndvi"])
>>> m.predict(np.array([[0.15], [0.85]], dtype="float32")).tolist()
['bare', 'green']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._renamed import renamed_parameters
from ..errors import InputError, ModelError
from .base import ClassifierModel


def estimator_allows_nan(estimator: Any) -> bool:
    """Whether a scikit-learn estimator accepts NaN features (its ``allow_nan`` input tag).

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> estimator_allows_nan(RandomForestClassifier())
    True
    """
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(estimator).input_tags.allow_nan)
    except Exception:  # noqa: BLE001 - old scikit-learn or non-sklearn estimator
        return False


@renamed_parameters(random_state="seed", n_jobs="threads")
def make_estimator(
    model: str | Any,
    *,
    class_weight: str | dict | None = None,
    threads: int | None = None,
    seed: int | None = 0,
    **params: Any,
) -> Any:
    """An unfitted scikit-learn classifier for ``model`` (``"rf"``, ``"et"``, ``"gbt"`` or an estimator, cloned).

    ``class_weight``, ``threads`` and ``seed`` are set when the estimator has them.

    Examples
    --------
    >>> make_estimator("rf", n_estimators=50, threads=1).n_estimators
    50
    """
    from sklearn.base import clone

    if isinstance(model, str):
        key = model.lower()
        if key in {"rf", "randomforest", "random_forest"}:
            from sklearn.ensemble import RandomForestClassifier

            est = RandomForestClassifier(n_estimators=params.pop("n_estimators", 200))
        elif key in {"et", "extratrees", "extra_trees"}:
            from sklearn.ensemble import ExtraTreesClassifier

            est = ExtraTreesClassifier(n_estimators=params.pop("n_estimators", 200))
        elif key in {"gbt", "gb", "hgb", "gradientboosting", "gradient_boosting"}:
            from sklearn.ensemble import HistGradientBoostingClassifier

            est = HistGradientBoostingClassifier()
            threads = None  # OpenMP threads: eoai.ml.fit limits them while fitting
        else:
            raise InputError(
                f"unknown model {model!r}: use 'rf' (random forest), 'et' (extra trees), 'gbt' "
                "(gradient boosting), a scikit-learn estimator, or a deep-learning model name of "
                "eoai.ml.deep"
            )
    elif hasattr(model, "fit") and hasattr(model, "predict_proba"):
        est = clone(model)
    else:
        raise InputError(
            f"model must be 'rf' or a scikit-learn classifier with fit and predict_proba, "
            f"got {type(model).__name__}"
        )
    settable = est.get_params()
    extra = {"class_weight": class_weight, "n_jobs": threads, "random_state": seed}
    for key, value in extra.items():
        if key in settable and (value is not None or key == "random_state"):
            params.setdefault(key, value)
        elif value is not None and key not in settable and key != "random_state":
            raise InputError(f"{type(est).__name__} has no parameter {key!r}; leave it unset")
    return set_known_params(est, params)


def set_known_params(est: Any, params: dict[str, Any]) -> Any:
    """``est.set_params(**params)``, with an InputError listing ``est``'s parameters for an unknown one."""
    settable = est.get_params()
    unknown = set(params) - set(settable)
    if unknown:
        raise InputError(
            f"{type(est).__name__} has no parameter(s) {sorted(unknown)}; "
            f"its parameters are {sorted(settable)}"
        )
    return est.set_params(**params)


class SklearnModel(ClassifierModel):
    """A fitted scikit-learn classifier with the eoai metadata.

    Parameters
    ----------
    estimator
        Fitted classifier with ``predict_proba`` and ``classes_``.
    features
        Feature names, in the column order the estimator was fitted on.
    **kwargs
        ``class_names``, ``colours``, ``metadata`` as for :class:`eoai.ml.base.ClassifierModel`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X = np.array([[0.1], [0.2], [0.8], [0.9]], dtype="float32")
    >>> rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, [1, 1, 2, 2])
    >>> SklearnModel(rf, features=["ndvi"], class_names={1: "bare", 2: "green"}).class_names
    ['bare', 'green']
    """

    def __init__(self, estimator: Any, features: list[str], **kwargs: Any) -> None:
        if not hasattr(estimator, "classes_"):
            raise ModelError(f"{type(estimator).__name__} is not fitted (no classes_)")
        n_in = getattr(estimator, "n_features_in_", len(features))
        if n_in != len(features):
            raise ModelError(f"the estimator was fitted on {n_in} features, {len(features)} named")
        super().__init__(features, list(estimator.classes_), **kwargs)
        self.estimator = estimator
        self.allow_nan = estimator_allows_nan(estimator)
        self.metadata.setdefault("estimator", type(estimator).__name__)
        self.metadata.setdefault(
            "params",
            {k: v for k, v in estimator.get_params().items() if _jsonable(v)},
        )

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` (float32) of ``X`` ``(n, n_features)``."""
        X = np.asarray(X, dtype="float32")
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ModelError(f"expected features of shape (n, {len(self.features)}), got {X.shape}")
        if X.shape[0] == 0:
            return np.zeros((0, len(self.classes)), dtype="float32")
        return self.estimator.predict_proba(X).astype("float32", copy=False)

    @property
    def threads(self) -> int | None:
        """The estimator's ``threads`` (threads used by one prediction call)."""
        return getattr(self.estimator, "n_jobs", None)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))
