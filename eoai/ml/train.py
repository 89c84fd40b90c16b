"""Training and grouped cross-validation, the same entry points for every model family.

``fit(samples, model="rf")`` trains a scikit-learn random forest (or any scikit-learn classifier);
deep-learning model names and ``torch.nn.Module`` objects are handed to ``eoai.ml.deep.fit`` (the
deep-learning module), which must return a :class:`eoai.ml.base.ClassifierModel`.
``cross_validate`` splits with a stratified k-fold *grouped* by polygon, so the pixels of one polygon
are never in both the training and the test set, and pools the confusion matrices of the folds.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"ndvi": np.r_[rng.normal(0.2, 0.05, 50), rng.normal(0.8, 0.05, 50)]})
>>> df["label"], df["group"] = np.repeat([1, 2], 50), np.arange(100) // 10
>>> model = fit(df, "rf", n_estimators=20, n_jobs=1)
>>> model.classes, model.features
([1, 2], ['ndvi'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, ModelError
from .base import ClassifierModel
from .samples import sample_features

DEEP_MODELS = {"tempcnn", "ltae", "unet", "fusion"}


def _is_deep(model: Any) -> bool:
    if isinstance(model, str):
        return model.lower() in DEEP_MODELS
    return any(c.__module__.startswith("torch") for c in type(model).__mro__)


def fit(
    samples: pd.DataFrame,
    model: str | Any = "rf",
    *,
    features: Sequence[str] | None = None,
    class_weight: str | dict | None = None,
    n_jobs: int | None = None,
    random_state: int | None = 0,
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    colours: Sequence[str] | Mapping[Any, str] | None = None,
    **params: Any,
) -> ClassifierModel:
    """Train a classifier on a sample table from :func:`eoai.ml.samples.extract`.

    Parameters
    ----------
    samples
        Table with feature columns, ``label`` (and ``group``); ``attrs["eoai:features"]`` names
        the features when present.
    model
        ``"rf"`` (random forest, 200 trees), ``"et"`` (extra trees), any scikit-learn classifier
        (cloned), or a deep-learning model (``"tempcnn"``, ``"ltae"``, a ``torch.nn.Module``:
        handled by ``eoai.ml.deep``).
    features
        Feature columns to use (default: all features of the table).
    class_weight
        ``None``, ``"balanced"``, ``"balanced_subsample"`` or ``{label: weight}``.
    n_jobs
        Threads of the forest (fit and, unless changed, prediction). ``None``: the estimator's.
    random_state
        Seed: a fixed seed gives the same model.
    class_names, colours
        Readable names and ``#rrggbb`` colours per class (lists in class order, or mappings).
    **params
        Estimator parameters (e.g. ``n_estimators=500``, ``max_features="sqrt"``).

    Returns
    -------
    ClassifierModel
        With ``features``, ``classes``, ``codes``, ``class_names``, ``colours`` and ``metadata``
        (training cube, label column, sample counts, parameters).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"b": [0.1, 0.2, 0.8, 0.9], "label": ["bare", "bare", "crop", "crop"]})
    >>> fit(df, n_estimators=10, n_jobs=1).class_names
    ['bare', 'crop']
    """
    feats = sample_features(samples, features)
    labels = samples["label"]
    if labels.isna().any():
        raise InputError(f"{int(labels.isna().sum())} samples have no label; drop them first")
    if labels.nunique() < 2:
        raise InputError(
            f"training needs at least 2 classes, the samples have {sorted(labels.unique())}"
        )
    metadata = {
        "label_column": samples.attrs.get("eoai:label", "label"),
        "training_cube": samples.attrs.get("eoai:cube", {}),
        "n_samples": int(len(samples)),
        "samples_per_class": {
            str(k): int(v) for k, v in labels.value_counts().sort_index().items()
        },
    }
    if "group" in samples.columns:
        metadata["n_groups"] = int(samples["group"].nunique())
    if _is_deep(model):
        try:
            from . import deep
        except ImportError as err:  # pragma: no cover - depends on the deep-learning module
            raise ModelError(
                f"{model!r} is a deep-learning model: it needs eoai.ml.deep (and torch), "
                f"which could not be imported: {err}"
            ) from err
        return deep.fit(
            samples, model, features=feats, class_weight=class_weight, random_state=random_state,
            class_names=class_names, colours=colours, metadata=metadata, **params,
        )  # fmt: skip
    from .forest import SklearnModel, make_estimator

    est = make_estimator(
        model, class_weight=class_weight, n_jobs=n_jobs, random_state=random_state, **params
    )
    X = samples[feats].to_numpy(dtype="float32")
    allow_nan = _allows_nan(est)
    if not allow_nan and np.isnan(X).any():
        raise InputError(
            f"{int(np.isnan(X).any(axis=1).sum())} samples have NaN features and "
            f"{type(est).__name__} does not accept NaN: gap-fill the cube "
            "(cube.eoai.gapfill(...)) or use model='rf', which handles NaN"
        )
    y = labels.to_numpy()
    if y.dtype == object and all(isinstance(v, (int, np.integer)) for v in y):
        y = y.astype("int64")
    est.fit(X, y)
    metadata["method"] = f"eoai.ml.fit({type(est).__name__})"
    return SklearnModel(est, feats, class_names=class_names, colours=colours, metadata=metadata)


def _allows_nan(est: Any) -> bool:
    from .forest import estimator_allows_nan

    return estimator_allows_nan(est)


def cross_validate(
    samples: pd.DataFrame,
    model: str | Any = "rf",
    *,
    k: int = 5,
    group: str | None = "group",
    features: Sequence[str] | None = None,
    random_state: int | None = 0,
    **fit_kw: Any,
) -> Any:
    """Stratified k-fold cross-validation grouped by polygon, with the pooled confusion matrix.

    Parameters
    ----------
    samples
        Sample table (see :func:`fit`).
    model
        As for :func:`fit` (also deep-learning models).
    k
        Number of folds.
    group
        Column of group ids (polygons): a group is never in both the training and the test folds.
        ``None`` splits pixels independently (optimistic: neighbouring pixels are correlated).
    features
        Feature columns (default all).
    random_state
        Seed of the fold assignment and of the models.
    **fit_kw
        Passed to :func:`fit` (``n_jobs``, ``class_weight``, ``n_estimators``...).

    Returns
    -------
    eoai.ml.metrics.Assessment
        Pooled over the folds; ``extra["folds"]`` holds per-fold overall accuracy and kappa,
        ``extra["predictions"]`` the out-of-fold prediction and fold of every sample.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"b": np.r_[rng.normal(0, 1, 60), rng.normal(5, 1, 60)]})
    >>> df["label"], df["group"] = np.repeat([1, 2], 60), np.arange(120) // 6
    >>> cross_validate(df, k=4, n_estimators=20, n_jobs=1).overall_accuracy
    1.0
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    from .metrics import Assessment, confusion_from_labels, scores_from_confusion

    feats = sample_features(samples, features)
    samples = samples.reset_index(drop=True)
    y = samples["label"].to_numpy()
    if k < 2:
        raise InputError(f"k must be >= 2, got {k}")
    if group is not None:
        if group not in samples.columns:
            raise InputError(
                f"the samples have no group column {group!r}; pass group=None to split pixels "
                "independently (optimistic) or add a column of polygon ids"
            )
        groups = samples[group].to_numpy()
        n_groups = pd.Series(groups).nunique()
        if n_groups < k:
            raise InputError(f"{n_groups} groups cannot make {k} folds; lower k")
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=random_state)
        splits = splitter.split(np.zeros(len(y)), y, groups)
    else:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state)
        splits = splitter.split(np.zeros(len(y)), y)
    classes = sorted(pd.unique(y), key=lambda v: (str(type(v)), v))
    pred = np.empty(len(y), dtype=object)
    fold_of = np.full(len(y), -1, dtype=int)
    folds = []
    names: dict[Any, str] = {}
    for i, (train, test) in enumerate(splits):
        m = fit(samples.iloc[train], model, features=feats, random_state=random_state, **fit_kw)
        names.update(dict(zip(m.classes, m.class_names, strict=True)))
        p = m.predict(samples.iloc[test][feats].to_numpy(dtype="float32"))
        pred[test] = p
        fold_of[test] = i
        cm = confusion_from_labels(p, y[test], classes)
        oa, kappa, _ = scores_from_confusion(cm)
        folds.append(
            {
                "fold": i, "n_train": len(train), "n_test": len(test), "overall_accuracy": oa,
                "kappa": kappa, "test_groups": int(pd.Series(samples[group].to_numpy()[test]).nunique()) if group else None,
            }
        )  # fmt: skip
    confusion = confusion_from_labels(pred, y, classes)
    oa, kappa, per_class = scores_from_confusion(confusion)
    predictions = pd.DataFrame({"label": y, "predicted": pred, "fold": fold_of})
    if group is not None:
        predictions["group"] = samples[group].to_numpy()
    return Assessment(
        confusion=confusion,
        overall_accuracy=oa,
        kappa=kappa,
        per_class=per_class,
        class_names=names,
        extra={"folds": pd.DataFrame(folds), "predictions": predictions, "k": k, "group": group},
    )
