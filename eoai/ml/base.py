"""The model contract shared by every classifier that :func:`eoai.ml.classify.classify` applies.

Any object with these members is a *pixel classifier* (:class:`PixelClassifier`):

- ``features``: list of feature names in the layout of :mod:`eoai.ml.features` (``red_2021-03-04``);
- ``classes``: the class labels as given in the training samples (ints or strings);
- ``codes``: the uint8 value of each class in the class map (the label itself when labels are small
  non-negative integers, else ``0..n-1``);
- ``class_names``: readable names; ``colours``: ``#rrggbb`` per class;
- ``metadata``: JSON-serialisable dict (training cube, label column, method, parameters, scores);
- ``allow_nan``: whether ``predict_proba`` accepts NaN features (else pixels with any NaN become nodata);
- ``predict_proba(X)``: ``X`` float32 ``(n_pixels, n_features)`` -> ``(n_pixels, n_classes)``.

:class:`ClassifierModel` implements the bookkeeping (codes, names, colours, ``predict``); the
scikit-learn wrapper (:class:`eoai.ml.forest.SklearnModel`) and the torch models of
:mod:`eoai.ml.deep` subclass it and implement ``predict_proba``. Models must pickle, because dask
sends them to the workers (once per worker: the model is one graph key, see :mod:`eoai._graph`).

Examples
--------
>>> import numpy as np
>>> class Threshold(ClassifierModel):
...     def predict_proba(self, X):
...         p = (X[:, 0] > 0.5).astype("float32")
...         return np.stack([1 - p, p], axis=1)
>>> m = Threshold(features=["ndvi"], classes=["bare", "green"])
>>> m.codes, m.predict(np.array([[0.2], [0.8]], dtype="float32")).tolist()
([0, 1], ['bare', 'green'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..errors import InputError, ModelError

# the one palette of the package (eoai.viz.colours: numpy only, no plotting import)
from ..viz.colours import NAMED_COLOURS, PALETTE, default_colours  # noqa: F401  (re-exported)


@runtime_checkable
class PixelClassifier(Protocol):
    """What :func:`eoai.ml.classify.classify` needs from a model (see the module docstring)."""

    features: list[str]
    classes: list[Any]
    codes: list[int]
    class_names: list[str]
    colours: list[str]
    metadata: dict[str, Any]
    allow_nan: bool

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - protocol
        """Class probabilities ``(n_pixels, n_classes)`` of float32 features ``(n_pixels, n_features)``."""
        ...


def _to_python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def class_codes(classes: Sequence[Any]) -> list[int]:
    """uint8 map values of ``classes``: the labels themselves when they are ints in 0..254, else 0..n-1.

    Examples
    --------
    >>> class_codes([1, 2, 8]), class_codes(["forest", "water"])
    ([1, 2, 8], [0, 1])
    """
    values = [_to_python(c) for c in classes]
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in values) and all(
        0 <= c <= 254 for c in values
    ):
        return [int(c) for c in values]
    if len(values) > 255:
        raise InputError(f"{len(values)} classes do not fit a uint8 class map (at most 255)")
    return list(range(len(values)))


class ClassifierModel:
    """Base class of eoai models: features, classes, codes, names, colours and metadata.

    Parameters
    ----------
    features
        Feature names in the order ``predict_proba`` expects them.
    classes
        Class labels (ints or strings) in the order of the probability columns.
    class_names
        Readable names (default: ``str(label)``, or a mapping label -> name).
    colours
        ``#rrggbb`` per class, or a mapping label/name -> colour (default: :func:`default_colours`).
    metadata
        JSON-serialisable information (training cube, parameters, scores).

    Examples
    --------
    >>> m = ClassifierModel(features=["a"], classes=[2, 3], class_names={2: "forest", 3: "grass"})
    >>> m.class_names, m.codes
    (['forest', 'grass'], [2, 3])
    """

    allow_nan: bool = False

    def __init__(
        self,
        features: Sequence[str],
        classes: Sequence[Any],
        *,
        class_names: Sequence[str] | Mapping[Any, str] | None = None,
        colours: Sequence[str] | Mapping[Any, str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.features = [str(f) for f in features]
        if len(set(self.features)) != len(self.features):
            raise InputError("feature names must be unique")
        self.classes = [_to_python(c) for c in classes]
        if len(self.classes) < 2:
            raise ModelError(f"a classifier needs at least 2 classes, got {self.classes}")
        self.codes = class_codes(self.classes)
        if isinstance(class_names, Mapping):
            self.class_names = [str(class_names.get(c, c)) for c in self.classes]
        elif class_names is not None:
            if len(class_names) != len(self.classes):
                raise InputError(
                    f"{len(class_names)} class names for {len(self.classes)} classes {self.classes}"
                )
            self.class_names = [str(n) for n in class_names]
        else:
            self.class_names = [str(c) for c in self.classes]
        defaults = default_colours(self.class_names)
        if isinstance(colours, Mapping):
            self.colours = [
                str(colours.get(c, colours.get(n, d)))
                for c, n, d in zip(self.classes, self.class_names, defaults, strict=True)
            ]
        elif colours is not None:
            if len(colours) != len(self.classes):
                raise InputError(f"{len(colours)} colours for {len(self.classes)} classes")
            self.colours = [str(c) for c in colours]
        else:
            self.colours = defaults
        self.metadata: dict[str, Any] = dict(metadata or {})

    # -- prediction -------------------------------------------------------------------------
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` of features ``X`` ``(n, n_features)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement predict_proba")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable class label per row of ``X`` (labels as in ``classes``)."""
        proba = self.predict_proba(np.asarray(X, dtype="float32"))
        return np.asarray(self.classes, dtype=object if self._str_labels else None)[
            np.argmax(proba, axis=1)
        ]

    @property
    def _str_labels(self) -> bool:
        return any(isinstance(c, str) for c in self.classes)

    def legend(self) -> dict[int, tuple[str, str]]:
        """``{code: (name, colour)}`` of the class map.

        Examples
        --------
        >>> ClassifierModel(["a"], ["forest", "water"]).legend()
        {0: ('forest', '#1a7f37'), 1: ('water', '#2b83ba')}
        """
        return {
            c: (n, col)
            for c, n, col in zip(self.codes, self.class_names, self.colours, strict=True)
        }

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description (features, classes, names, colours, metadata)."""
        return {
            "model_class": f"{type(self).__module__}.{type(self).__qualname__}",
            "features": self.features,
            "classes": self.classes,
            "codes": self.codes,
            "class_names": self.class_names,
            "colours": self.colours,
            "allow_nan": bool(self.allow_nan),
            "metadata": self.metadata,
        }

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}: {len(self.classes)} classes {self.class_names}, "
            f"{len(self.features)} features>"
        )


#: Float targets with at most this many distinct whole numbers are class codes (see infer_task).
MAX_FLOAT_CLASSES = 50


def infer_task(values: Any) -> str:
    """``"regression"`` or ``"classification"`` for the values of a target column.

    Floats are continuous unless they are at most 50 distinct whole numbers (class codes read as
    floats, e.g. from a file with missing values); integers, booleans, strings and categories are
    class labels.

    Examples
    --------
    >>> infer_task([12.5, 80.0, 101.25]), infer_task([1.0, 2.0, 2.0]), infer_task(["a", "b"])
    ('regression', 'classification', 'classification')
    """
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        return "classification"
    if pd.api.types.is_float_dtype(s):
        v = s.dropna().to_numpy(dtype="float64")
        if v.size and (not np.isfinite(v).all() or not np.array_equal(v, np.round(v))):
            return "regression"
        return "classification" if pd.unique(v).size <= MAX_FLOAT_CLASSES else "regression"
    return "classification"
