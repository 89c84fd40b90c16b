"""Saving and loading models with their metadata, without unpickling untrusted files.

A model is stored as two files: the weights (``model.skops`` for scikit-learn through skops, which
does not execute code; or ``model.joblib`` / ``.pkl``, a pickle) and a JSON sidecar
``<file>.json`` with features, classes, names, colours, the training cube and scores. Loading a
pickle runs code from the file, so it needs ``trusted=True``; a skops file is loaded when it holds
only scikit-learn / numpy types (else ``trusted=True`` is needed too).

Other model families (``eoai.ml.deep``) plug in by defining ``_eoai_save(path) -> dict``: it writes
the weights and returns the JSON fields to add, among them ``"loader": "eoai.ml.<module>:<func>"``,
which :func:`load_model` calls as ``func(path, description, trusted=...)``.

Examples
--------
>>> import numpy as np, pandas as pd, tempfile, os
>>> import eoai.ml
>>> df = pd.DataFrame({"b": [0.1, 0.2, 0.8, 0.9], "label": [1, 1, 2, 2]})
>>> model = eoai.ml.fit(df, n_estimators=5, threads=1)
>>> path = os.path.join(tempfile.mkdtemp(), "rf.skops")
>>> _ = save_model(model, path)
>>> load_model(path).classes
[1, 2]
"""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelError, UntrustedFileError
from ._sidecar import read_sidecar, sidecar_path  # noqa: F401  (public here since 0.1)

SAFE_PREFIXES = ("sklearn.", "numpy.", "builtins.", "collections.")
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


def _corrupt(path: Path, kind: str, err: BaseException) -> InputError:
    """The error for a model file that cannot be read (truncated, corrupt or of another kind)."""
    return InputError(
        f"the model file {path} is not a readable {kind} file ({type(err).__name__}: {err}): it "
        "is corrupt, truncated or not the file its metadata describes; restore it from where "
        f"the model came from, or train and save it again (eoai.ml.save_model)"
    )


def _versions() -> dict[str, str]:
    import sklearn

    import eoai

    return {"eoai": eoai.__version__, "sklearn": sklearn.__version__}


def save_model(model: Any, path: str | Path) -> Path:
    """Save a model and its metadata (features, classes, colours, training cube, scores).

    Parameters
    ----------
    model
        A model from :func:`eoai.ml.fit`, or a Presto encoder (:class:`eoai.ml.presto.PrestoModel`:
        published, fine-tuned or pre-trained; saved by :func:`eoai.ml.presto.save_encoder`, with
        its decoder when it has one) or a Presto head (:func:`eoai.ml.presto.save_head`).
    path
        ``*.skops`` (recommended: loads without trusting the file) or ``*.joblib`` / ``*.pkl``
        (a pickle: loading it needs ``trusted=True``); torch models (``*.pt``) are a weights-only
        state dict. The metadata goes to ``<path>.json``.

    Returns
    -------
    pathlib.Path
        The model file.

    Examples
    --------
    >>> save_model(model, "rf.skops")  # doctest: +SKIP
    PosixPath('rf.skops')
    """
    from .base import ClassifierModel
    from .regress import RegressorModel

    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    if kind == "eoai.ml.presto.model.PrestoModel":
        from .presto.model import save_encoder

        return save_encoder(model, path)
    if kind == "eoai.ml.presto.head.PrestoRegressorHead":
        from .presto.head import save_head

        return save_head(model, path)
    if not isinstance(model, (ClassifierModel, RegressorModel)):
        raise ModelError(
            f"save_model needs an eoai model (from eoai.ml.fit), got {type(model).__name__}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    description = model.describe()
    if hasattr(model, "_eoai_save"):
        description.update(model._eoai_save(path))
        if not str(description.get("loader", "")).startswith("eoai."):
            raise ModelError("a model's _eoai_save must return a 'loader' inside the eoai package")
    elif hasattr(model, "estimator"):
        suffix = path.suffix.lower()
        if suffix == ".skops":
            import skops.io as sio

            sio.dump(model.estimator, path)
            description["format"] = "skops"
        elif suffix in PICKLE_SUFFIXES:
            import joblib

            joblib.dump(model.estimator, path)
            description["format"] = "pickle"
        else:
            raise InputError(
                f"unknown model file type {path.suffix!r}: use .skops (safe) or .joblib/.pkl (pickle)"
            )
        description["loader"] = "eoai.ml.persist:load_sklearn"
        description["versions"] = _versions()
    else:
        raise ModelError(
            f"{type(model).__name__} cannot be saved: it has no estimator and no _eoai_save"
        )
    sidecar_path(path).write_text(json.dumps(description, indent=2, default=str))
    return path


def load_model(path: str | Path, trusted: bool = False, *, encoder: Any = None) -> Any:
    """Load a model saved with :func:`save_model`.

    Parameters
    ----------
    path
        The model file (its ``<path>.json`` sidecar must be beside it).
    trusted
        Allow loading formats that can run code from the file (pickle / joblib, skops files with
        types other than scikit-learn and numpy). Only for files you made or trust.
    encoder
        A U-Net trained on a custom encoder (``fit_segmentation(..., encoder=module)``): a
        module of the same class, built like the one trained, to receive the saved weights
        (``"timm:<name>"`` encoders are rebuilt from the saved card).

    Returns
    -------
    eoai.ml.base.ClassifierModel or eoai.ml.regress.SklearnRegressor

    Raises
    ------
    eoai.errors.UntrustedFileError
        The file would be unpickled and ``trusted`` is False.
    eoai.errors.InputError
        The model file or its ``<path>.json`` is missing, corrupt or truncated (the message names
        the file and says to restore it or save the model again).
    eoai.errors.ModelError
        The metadata names no eoai loader, or the file and its metadata disagree.

    Examples
    --------
    >>> model = load_model("rf.skops")  # doctest: +SKIP
    """
    path = Path(path)
    meta = sidecar_path(path)
    if not path.exists():
        raise InputError(f"model file {path} does not exist")
    description = read_sidecar(path, required=("loader",))
    loader = str(description.get("loader", ""))
    module, _, func = loader.partition(":")
    if not module.startswith("eoai.") or not func:
        raise ModelError(
            f"{meta} names no valid eoai loader ({loader!r}); it was not written by eoai"
        )
    load = getattr(import_module(module), func)
    if encoder is None:
        return load(path, description, trusted=trusted)
    import inspect

    if "encoder" not in inspect.signature(load).parameters:
        raise InputError(
            f"encoder= is for a U-Net on a pluggable encoder; {path} holds another model "
            f"(loader {loader}): drop encoder="
        )
    return load(path, description, trusted=trusted, encoder=encoder)


def load_sklearn(path: Path, description: dict[str, Any], *, trusted: bool = False) -> Any:
    """Loader of scikit-learn models (used by :func:`load_model` through the JSON sidecar).

    Examples
    --------
    >>> model = load_model("rf.skops")  # doctest: +SKIP
    """
    from .forest import SklearnModel

    regression = description.get("task") == "regression"
    fmt = description.get("format")
    needed = ("features", "target") if regression else ("features", "classes")
    missing = [k for k in needed if k not in description]
    if missing:
        raise InputError(
            f"the metadata file {sidecar_path(path)} lacks {', '.join(map(repr, missing))}: it "
            "was not written by eoai.ml.save_model or was edited; restore it, or save the model "
            "again with eoai.ml.save_model"
        )
    if fmt == "skops":
        import skops.io as sio

        try:
            untrusted = sio.get_untrusted_types(file=path)
        except Exception as err:  # noqa: BLE001 - zipfile / json errors of a damaged file
            raise _corrupt(path, "skops", err) from None
        unsafe = [t for t in untrusted if not t.startswith(SAFE_PREFIXES)]
        if unsafe and not trusted:
            raise UntrustedFileError(
                f"{path} holds types that are not scikit-learn or numpy: {unsafe}; "
                "load it with trusted=True only if you trust where it comes from"
            )
        try:
            estimator = sio.load(path, trusted=untrusted)
        except Exception as err:  # noqa: BLE001 - zipfile / json / numpy errors
            raise _corrupt(path, "skops", err) from None
    elif fmt == "pickle":
        if not trusted:
            raise UntrustedFileError(
                f"{path} is a pickle, and loading a pickle runs code from the file; pass "
                "trusted=True if you made it or trust its source, or save models as .skops"
            )
        import joblib

        try:
            estimator = joblib.load(path)
        except Exception as err:  # noqa: BLE001 - EOFError, UnpicklingError... of a bad file
            raise _corrupt(path, "joblib/pickle", err) from None
    else:
        raise ModelError(
            f"unknown stored format {fmt!r} in {sidecar_path(path)} (eoai writes 'skops' or "
            "'pickle'); restore the file or save the model again with eoai.ml.save_model"
        )
    if regression:
        return _regressor_from(estimator, path, description)
    if not hasattr(estimator, "predict_proba"):
        raise ModelError(
            f"{path} holds a {type(estimator).__name__}, not a scikit-learn classifier; restore "
            "the file or save the model again with eoai.ml.save_model"
        )
    model = SklearnModel(
        estimator,
        description["features"],
        class_names=description.get("class_names"),
        colours=description.get("colours"),
        metadata=description.get("metadata", {}),
    )
    if [str(c) for c in model.classes] != [str(c) for c in description.get("classes", [])]:
        raise ModelError(
            f"{path} and its metadata disagree on the classes: {model.classes} vs {description.get('classes')}"
        )
    return model


def _regressor_from(estimator: Any, path: Path, description: dict[str, Any]) -> Any:
    """The :class:`eoai.ml.regress.SklearnRegressor` of a loaded estimator, checked."""
    from .regress import SklearnRegressor, is_regressor_estimator

    if not is_regressor_estimator(estimator):
        raise ModelError(
            f"{path} holds a {type(estimator).__name__}, not the scikit-learn regressor its "
            "metadata describes; restore the file or save the model again with eoai.ml.save_model"
        )
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in != len(description["features"]):
        raise ModelError(
            f"{path} and its metadata disagree on the features: the estimator takes {n_in}, the "
            f"metadata names {len(description['features'])}; restore both files or save again"
        )
    return SklearnRegressor(
        estimator,
        description["features"],
        str(description["target"]),
        units=str(description.get("units", "")),
        metadata=description.get("metadata", {}),
    )
