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
>>> model = fit(df, "rf", n_estimators=20, threads=1)
>>> model.classes, model.features
([1, 2], ['ndvi'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._options import option_threads
from .._renamed import renamed_parameters
from ..errors import InputError, ModelError
from .base import MAX_FLOAT_CLASSES, ClassifierModel, infer_task  # noqa: F401  (eoai.ml.train.infer_task since 0.1)
from .samples import sample_features

if TYPE_CHECKING:
    from .regress import RegressorModel

DEEP_MODELS = {"tempcnn", "ltae", "unet", "utae", "fusion", "m3fusion", "multireso"}


def _is_deep(model: Any) -> bool:
    if isinstance(model, str):
        return model.lower() in DEEP_MODELS
    return any(c.__module__.startswith("torch") for c in type(model).__mro__)


@renamed_parameters(random_state="seed", n_jobs="threads")
def fit(
    samples: pd.DataFrame,
    model: str | Any = "rf",
    *,
    features: Sequence[str] | None = None,
    class_weight: str | dict | None = None,
    threads: int | None = None,
    seed: int | None = 0,
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    colours: Sequence[str] | Mapping[Any, str] | None = None,
    target: str = "label",
    task: str | None = None,
    units: str = "",
    **params: Any,
) -> ClassifierModel | RegressorModel:
    """Train a classifier or a regressor on a sample table from :func:`eoai.ml.samples.extract`.

    Parameters
    ----------
    samples
        Table with feature columns, ``label`` (and ``group``); ``attrs["eoai:features"]`` names
        the features when present.
    model
        ``"rf"`` (random forest, 200 trees), ``"et"`` (extra trees), ``"gbt"`` (histogram
        gradient boosting), any scikit-learn classifier or regressor (cloned), or a deep-learning
        network (``"tempcnn"``, ``"ltae"``, ``"fusion"`` (one encoder per source of
        ``<source>.<band>`` variables, TWINNS-style), ``"m3fusion"`` (those and a CNN on the
        very-high-resolution patch around each pixel, from ``extract(..., patch=p)``),
        ``"multireso"`` (MultiResoLCC: CNNs on patches of images at their own resolutions,
        e.g. panchromatic and multispectral), a ``torch.nn.Module``: handled by
        ``eoai.ml.deep``; a continuous target gives the pixel networks a regression head;
        patch segmentation networks (U-Net, U-TAE, U-T&T) train on a cube with
        :func:`eoai.ml.deep.fit_segmentation`),
        or ``"presto"``: a linear head (``hidden=`` > 0: one hidden layer) on frozen Presto
        embeddings (the samples extracted from ``cube.eoai.embed(...)``; see
        :func:`eoai.ml.presto.fit_presto_head` for its parameters), for either task; with
        ``finetune=True, encoder=<PrestoModel>``, the encoder and a linear head fine-tuned on
        the samples of the cube's bands (:func:`eoai.ml.presto.finetuned.fit_finetuned`).
        A name gives a classifier or a regressor according to ``task``.
    features
        Feature columns to use (default: all features of the table).
    class_weight
        ``None``, ``"balanced"``, ``"balanced_subsample"`` or ``{label: weight}``.
    threads
        Threads of the forest (fit and, unless changed, prediction). ``None``: the ``threads``
        option of :func:`eoai.set_options`, else the estimator's default.
    seed
        Seed: a fixed seed gives the same model.
    class_names, colours
        Readable names and ``#rrggbb`` colours per class (lists in class order, or mappings).
    target
        Column to predict (default ``label``, the class column of :func:`eoai.ml.extract`); it is
        never a feature.
    task
        ``"classification"``, ``"regression"`` or ``None``: inferred from the target, see
        :func:`infer_task` (float values -> regression, unless they are a few whole numbers;
        integers, strings, booleans -> classification). Pass ``task="regression"`` for a
        continuous target stored as integers.
    units
        Units of a regression target (e.g. ``"%"``), carried to the predicted map.
    **params
        Estimator parameters (e.g. ``n_estimators=500``, ``max_features="sqrt"``).

    Returns
    -------
    ClassifierModel or eoai.ml.regress.SklearnRegressor
        A classifier with ``features``, ``classes``, ``codes``, ``class_names``, ``colours`` and
        ``metadata`` (training cube, label column, sample counts, parameters); or, for a
        continuous target, a regressor with ``features``, ``target``, ``units`` and ``metadata``.

    Raises
    ------
    eoai.errors.InputError
        The target column is absent or has missing values, a classifier is given a continuous
        target or a regressor class labels, or the features have NaN the model cannot take.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"b": [0.1, 0.2, 0.8, 0.9], "label": ["bare", "bare", "crop", "crop"]})
    >>> fit(df, n_estimators=10, threads=1).class_names
    ['bare', 'crop']
    >>> df["cover"] = [0.05, 0.1, 0.7, 0.85]
    >>> fit(df, "gbt", target="cover", units="1", min_samples_leaf=1).target
    'cover'
    """
    threads = option_threads(threads)  # eoai.set_options(threads=...) when not given
    feats = sample_features(samples, features, target)
    labels = samples[target]
    if labels.isna().any():
        raise InputError(
            f"{int(labels.isna().sum())} samples have no {target!r} value; drop them first"
        )
    if isinstance(model, str) and model.lower() == "presto":  # a head on Presto embeddings
        from .presto.head import PrestoRegressorHead, fit_presto_head

        task = task or infer_task(labels)
        if task not in TASKS:
            raise InputError(f"task must be one of {TASKS} or None, got {task!r}")
        if task == "regression" and (class_names is not None or colours is not None):
            raise InputError("class_names= / colours= are for class labels, not a regression")
        if class_weight is not None:
            raise InputError("class_weight= is not supported by the Presto head: leave it out")
        if params.pop("finetune", False):  # the encoder too, on the cube's band columns
            from .presto.finetuned import fit_finetuned

            return fit_finetuned(
                samples, target, task=task, features=feats, seed=seed, units=units,
                class_names=class_names, colours=colours, **params,
            )  # fmt: skip
        head_kw: dict[str, Any] = (
            {"class_names": class_names, "colours": colours} if task == "classification" else {}
        )
        head = fit_presto_head(
            samples, target, task=task, features=feats, seed=seed, **head_kw, **params
        )
        if isinstance(head, PrestoRegressorHead):  # task == "regression"
            head.units = units
            if units:
                head.metadata["units"] = units
        return head
    task = _resolve_task(labels, model, task)
    if task == "regression":
        return _fit_regression(
            samples, model, feats=feats, target=target, units=units, class_weight=class_weight,
            class_names=class_names, colours=colours, threads=threads, seed=seed,
            **params,
        )  # fmt: skip
    if units:
        raise InputError("units= is for a regression target; class labels have no units")
    if target != "label":
        samples = samples.drop(columns=["label"], errors="ignore").rename(columns={target: "label"})
        labels = samples["label"]
    if labels.nunique() < 2:
        raise InputError(
            f"training needs at least 2 classes, the samples have {sorted(labels.unique())}"
        )
    metadata = {
        "task": "classification",
        "label_column": samples.attrs.get("eoai:label", "label") if target == "label" else target,
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
            samples, model, features=feats, class_weight=class_weight, seed=seed,
            class_names=class_names, colours=colours, metadata=metadata, **params,
        )  # fmt: skip
    from .forest import SklearnModel, make_estimator

    est = make_estimator(model, class_weight=class_weight, threads=threads, seed=seed, **params)
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
    from .regress import _threads

    with _threads(threads if "n_jobs" not in est.get_params() else None):
        est.fit(X, y)
    metadata["method"] = f"eoai.ml.fit({type(est).__name__})"
    return SklearnModel(est, feats, class_names=class_names, colours=colours, metadata=metadata)


TASKS = ("classification", "regression")


def _example(labels: pd.Series) -> Any:
    value = labels.iloc[0]
    return value.item() if isinstance(value, np.generic) else value


def _resolve_task(labels: pd.Series, model: Any, task: str | None) -> str:
    """The task of ``fit``: given, or inferred from the target; checked against the model."""
    if task is not None and task not in TASKS:
        raise InputError(f"task must be one of {TASKS} or None, got {task!r}")
    numeric = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    explicit = not isinstance(model, str) and not _is_deep(model)
    if explicit and hasattr(model, "fit"):
        from .regress import is_regressor_estimator

        est_task = "regression" if is_regressor_estimator(model) else "classification"
        if task is not None and task != est_task:
            raise InputError(
                f"task={task!r} but {type(model).__name__} is a scikit-learn "
                f"{'regressor' if est_task == 'regression' else 'classifier'}; pass a "
                f"{'classifier' if task == 'classification' else 'regressor'} or drop task="
            )
        if task is None and est_task == "classification" and infer_task(labels) == "regression":
            raise InputError(
                f"{type(model).__name__} is a classifier but the target {labels.name!r} is "
                f"continuous ({labels.nunique()} distinct float values, e.g. "
                f"{_example(labels)!r}); pass a regressor (model='rf', 'gbt' or e.g. "
                "RandomForestRegressor()), or class labels"
            )
        task = est_task
    if task is None:
        task = infer_task(labels)
    if task == "regression":
        if not numeric:
            raise InputError(
                f"a regression needs a numeric target, but {labels.name!r} holds "
                f"{labels.dtype} values (e.g. {_example(labels)!r}); these are class labels: "
                "use a classifier (task='classification' or drop task=)"
            )
        if _is_deep(model) and isinstance(model, str) and model.lower() == "unet":
            raise InputError(
                f"the target {labels.name!r} is continuous, but a U-Net learns from patches of "
                "a cube, not from a sample table: train it on the cube and a target raster with "
                "eoai.ml.deep.fit_segmentation(cube, raster) (a U-Net regressor), or use "
                "model='tempcnn', 'ltae', 'fusion', 'rf' or 'gbt' on these samples"
            )
        v = labels.to_numpy(dtype="float64")
        if not np.isfinite(v).all():
            raise InputError(
                f"{int((~np.isfinite(v)).sum())} values of the target {labels.name!r} are "
                "infinite; drop those samples"
            )
        if np.unique(v).size < 2:
            raise InputError(f"the target {labels.name!r} is constant ({v[0]}): nothing to learn")
    elif pd.api.types.is_float_dtype(labels) and infer_task(labels) == "regression":
        raise InputError(
            f"the target {labels.name!r} is continuous ({labels.nunique()} distinct float values, "
            f"e.g. {_example(labels)!r}) but a classifier was asked for (task='classification'); "
            "drop task= (or pass task='regression') to train a regressor, or bin the values "
            "into classes first"
        )
    return task


def _fit_regression(
    samples: pd.DataFrame,
    model: Any,
    *,
    feats: list[str],
    target: str,
    units: str,
    class_weight: Any,
    class_names: Any,
    colours: Any,
    threads: int | None,
    seed: int | None,
    **params: Any,
) -> Any:
    for name, value in (("class_weight", class_weight), ("class_names", class_names),
                        ("colours", colours)):  # fmt: skip
        if value is not None:
            raise InputError(
                f"{name}= is for classes, but the target {target!r} is continuous (a regression); "
                f"drop {name}="
            )
    from .regress import fit_regressor

    y = samples[target].to_numpy(dtype="float64")
    metadata = {
        "task": "regression",
        "label_column": samples.attrs.get("eoai:label", target) if target == "label" else target,
        "target": target,
        "units": units,
        "training_cube": samples.attrs.get("eoai:cube", {}),
        "n_samples": int(len(samples)),
        "target_range": [float(y.min()), float(y.max())],
        "target_mean": float(y.mean()),
    }
    if "group" in samples.columns:
        metadata["n_groups"] = int(samples["group"].nunique())
    if _is_deep(model):  # TempCNN, L-TAE, fusion with a regression head (eoai.ml.deep)
        from . import deep

        return deep.fit(
            samples, model, features=feats, seed=seed, metadata=metadata,
            task="regression", target=target, units=units, **params,
        )  # fmt: skip
    return fit_regressor(
        samples, model, features=feats, target=target, units=units, threads=threads,
        seed=seed, metadata=metadata, **params,
    )  # fmt: skip


def _allows_nan(est: Any) -> bool:
    from .forest import estimator_allows_nan

    return estimator_allows_nan(est)


def _fold_groups(samples: pd.DataFrame, group: Any) -> tuple[np.ndarray | None, str | None]:
    """Group ids of the folds: a column, an array / Series of ids (spatial blocks...), or None."""
    if group is None:
        return None, None
    if isinstance(group, str):
        if group not in samples.columns:
            raise InputError(
                f"the samples have no group column {group!r}; pass group=None to split pixels "
                "independently (optimistic), group=eoai.ml.spatial_blocks(samples, size) for "
                "spatial blocks, or add a column of polygon ids"
            )
        values, name = samples[group].to_numpy(), group
    else:
        if isinstance(group, pd.Series):
            if len(group) == len(samples) and not group.index.equals(samples.index):
                raise InputError(
                    "the group Series is not on the index of the samples; build it from the "
                    "same table (e.g. eoai.ml.spatial_blocks(samples, size))"
                )
            name = str(group.name) if group.name is not None else "group"
        else:
            name = "group"
        values = np.asarray(group)
        if values.ndim != 1 or len(values) != len(samples):
            raise InputError(
                f"group must be a column name, None, or one id per sample ({len(samples)}), got "
                f"an array of shape {values.shape}"
            )
    if pd.isna(values).any():
        raise InputError(f"{int(pd.isna(values).sum())} samples have no group id; drop them first")
    return values, name


@renamed_parameters(random_state="seed")
def cross_validate(
    samples: pd.DataFrame,
    model: str | Any = "rf",
    *,
    k: int = 5,
    group: str | Any | None = "group",
    features: Sequence[str] | None = None,
    seed: int | None = 0,
    target: str = "label",
    task: str | None = None,
    by: str | None = None,
    **fit_kw: Any,
) -> Any:
    """K-fold cross-validation grouped by polygon (or spatial block): pooled confusion or errors.

    Classes: stratified k-fold grouped by ``group``, the confusion matrices of the folds pooled.
    Continuous targets (regression, see :func:`fit`): k-fold grouped by ``group``, RMSE, MAE,
    bias and R² of the pooled out-of-fold predictions.

    Parameters
    ----------
    samples
        Sample table (see :func:`fit`).
    model
        As for :func:`fit` (also deep-learning classifiers).
    k
        Number of folds.
    group
        Column of group ids (default ``group``: the polygons of :func:`eoai.ml.extract`), or one
        id per sample (e.g. :func:`eoai.ml.spatial_blocks`, :func:`eoai.ml.spatial_clusters`):
        a group is never in both the training and the test folds. ``None`` splits pixels
        independently (optimistic: neighbouring pixels are correlated).
    features
        Feature columns (default all).
    seed
        Seed of the fold assignment and of the models.
    target, task
        The column to predict and the task, as for :func:`fit`.
    by
        Regression: a column of the samples (e.g. a land-cover class, a site) to break the
        scores down by (``by_group`` of the result).
    **fit_kw
        Passed to :func:`fit` (``threads``, ``class_weight``, ``n_estimators``, ``units``...).

    Returns
    -------
    eoai.ml.metrics.Assessment or eoai.ml.regression_metrics.RegressionAssessment
        Pooled over the folds; ``extra["folds"]`` holds per-fold scores (overall accuracy and
        kappa; or RMSE, MAE, bias, R²), ``extra["predictions"]`` the out-of-fold prediction and
        fold of every sample.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"b": np.r_[rng.normal(0, 1, 60), rng.normal(5, 1, 60)]})
    >>> df["label"], df["group"] = np.repeat([1, 2], 60), np.arange(120) // 6
    >>> cross_validate(df, k=4, n_estimators=20, threads=1).overall_accuracy
    1.0
    >>> df["height"] = 2.0 * df["b"] + rng.normal(0, 0.1, 120)
    >>> cv = cross_validate(df, k=4, target="height", n_estimators=20, threads=1)
    >>> bool(cv.rmse < 0.5), cv.extra["folds"].shape[0]
    (True, 4)
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputError(f"k must be an int, got {k!r}")
    feats = sample_features(samples, features, target)
    if k < 2:
        raise InputError(f"k must be >= 2, got {k}")
    groups, group_name = _fold_groups(samples, group)  # checks a Series' index against samples'
    samples = samples.reset_index(drop=True)
    labels = samples[target]
    if labels.isna().any():
        raise InputError(
            f"{int(labels.isna().sum())} samples have no {target!r} value; drop them first"
        )
    task = _resolve_task(labels, model, task)
    if by is not None and task != "regression":
        raise InputError("by= breaks regression scores down; for classes see Assessment.per_class")
    if by is not None and by not in samples.columns:
        raise InputError(f"the samples have no column {by!r} to break the scores down by")
    if groups is not None:
        n_groups = pd.Series(groups).nunique()
        if n_groups < k:
            raise InputError(
                f"{n_groups} groups cannot make {k} folds; lower k or use smaller blocks"
            )
    if task == "regression":
        return _cross_validate_regression(
            samples, model, k=k, groups=groups, group_name=group_name, feats=feats,
            seed=seed, target=target, by=by, **fit_kw,
        )  # fmt: skip
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    from .metrics import Assessment, confusion_from_labels, scores_from_confusion

    y = labels.to_numpy()
    if groups is not None:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(y)), y, groups)
    else:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(y)), y)
    classes = sorted(pd.unique(y), key=lambda v: (str(type(v)), v))
    pred = np.empty(len(y), dtype=object)
    fold_of = np.full(len(y), -1, dtype=int)
    folds = []
    names: dict[Any, str] = {}
    for i, (train, test) in enumerate(splits):
        m = fit(
            samples.iloc[train], model, features=feats, seed=seed,
            target=target, task="classification", **fit_kw,
        )  # fmt: skip
        if not isinstance(m, ClassifierModel):  # pragma: no cover - task="classification" is one
            raise ModelError(f"fit(task='classification') gave {type(m).__name__}, no classifier")
        names.update(dict(zip(m.classes, m.class_names, strict=True)))
        # in the model's own feature order: a network fitted on several bands holds them
        # band-major (eoai.ml.features), whatever the order of the table's columns
        p = m.predict(samples.iloc[test][list(m.features)].to_numpy(dtype="float32"))
        pred[test] = p
        fold_of[test] = i
        cm = confusion_from_labels(p, y[test], classes)
        oa, kappa, _ = scores_from_confusion(cm)
        folds.append(
            {
                "fold": i, "n_train": len(train), "n_test": len(test), "overall_accuracy": oa,
                "kappa": kappa,
                "test_groups": int(pd.Series(groups[test]).nunique()) if groups is not None else None,
            }
        )  # fmt: skip
    confusion = confusion_from_labels(pred, y, classes)
    oa, kappa, per_class = scores_from_confusion(confusion)
    predictions = pd.DataFrame({"label": y, "predicted": pred, "fold": fold_of})
    if groups is not None:
        predictions["group"] = groups
    return Assessment(
        confusion=confusion,
        overall_accuracy=oa,
        kappa=kappa,
        per_class=per_class,
        class_names=names,
        extra={
            "folds": pd.DataFrame(folds),
            "predictions": predictions,
            "k": k,
            "group": group_name,
        },
    )


def _cross_validate_regression(
    samples: pd.DataFrame,
    model: Any,
    *,
    k: int,
    groups: np.ndarray | None,
    group_name: str | None,
    feats: list[str],
    seed: int | None,
    target: str,
    by: str | None,
    **fit_kw: Any,
) -> Any:
    from sklearn.model_selection import GroupKFold, KFold

    from .regression_metrics import RegressionAssessment, _by_group, regression_scores

    y = samples[target].to_numpy(dtype="float64")
    if groups is not None:
        splits = GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(
            np.zeros(len(y)), y, groups
        )
    else:
        splits = KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)))
    pred = np.full(len(y), np.nan)
    fold_of = np.full(len(y), -1, dtype=int)
    folds = []
    units = str(fit_kw.get("units", ""))
    for i, (train, test) in enumerate(splits):
        m = fit(
            samples.iloc[train], model, features=feats, seed=seed,
            target=target, task="regression", **fit_kw,
        )  # fmt: skip
        # in the model's own feature order: a network fitted on several bands holds them
        # band-major (eoai.ml.features), whatever the order of the table's columns
        p = m.predict(samples.iloc[test][list(m.features)].to_numpy(dtype="float32"))
        pred[test] = p
        fold_of[test] = i
        folds.append(
            {
                "fold": i, "n_train": len(train), "n_test": len(test),
                **{key: v for key, v in regression_scores(p, y[test]).items() if key != "n"},
                "test_groups": int(pd.Series(groups[test]).nunique()) if groups is not None else None,
            }
        )  # fmt: skip
    scores = regression_scores(pred, y)
    predictions = pd.DataFrame({"label": y, "predicted": pred, "fold": fold_of})
    if groups is not None:
        predictions["group"] = groups
    table = None
    if by is not None:
        predictions[by] = samples[by].to_numpy()
        table = _by_group(pred, y, samples[by].to_numpy())
        table.index.name = by
    return RegressionAssessment(
        **scores, units=units, by_group=table, predicted=pred, reference=y,
        extra={"folds": pd.DataFrame(folds), "predictions": predictions, "k": k, "group": group_name},
    )  # fmt: skip
