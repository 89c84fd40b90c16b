"""Classification of satellite image time series: samples, training, prediction, accuracy.

The same functions serve random forests (scikit-learn) and the deep-learning models of
``eoai.ml.deep``:

- :func:`extract` (``cube.eoai.extract``): pixels under labelled points/polygons -> tidy table;
- :func:`fit`, :func:`cross_validate` (stratified k-fold grouped by polygon);
- :func:`classify` (``cube.eoai.classify``): lazy class map, probabilities, confidence, uncertainty;
- regression (:mod:`eoai.ml.regress`): :func:`fit` with a continuous ``target``, :func:`predict`
  (``cube.eoai.predict``: lazy map with tree-quantile intervals), :func:`assess_regression`
  (RMSE, MAE, bias, R²), :func:`plot_regression`;
- spatial folds: :func:`spatial_blocks`, :func:`spatial_clusters` (``cross_validate(group=...)``);
- :func:`select_samples`: per-class / per-polygon sample selection (OTB / iota2 strategies);
- :func:`assess`, :func:`area_estimates` (Olofsson et al. 2014), :func:`plot_confusion_matrix`;
- :func:`save_model`, :func:`load_model` (skops, or pickle with ``trusted=True``);
- :func:`majority_filter`, :func:`sieve`, :func:`bayes_smooth` (sits' Bayesian smoothing of the
  probabilities);
- :func:`sample_quality` (a self-organising map of the samples, likely mislabelled ones flagged),
  :func:`neuron_summary`, :func:`plot_som`;
- :func:`suggest_samples`: the most uncertain pixels, spread apart, as points to label next;
- objects (:mod:`eoai.ml.objects`): :func:`segment` (``cube.eoai.segment``), :func:`object_features`,
  :func:`object_samples`, :func:`classify_objects`, :func:`segment_polygons`;
- :func:`fit_network`, :func:`fit_segmentation`, :func:`save_network`, :func:`load_network`:
  TempCNN, L-TAE and U-Net on torch (:mod:`eoai.ml.deep`).

Nothing heavy (scikit-learn, geopandas, rasterio) is imported until a function is used.

Examples
--------
>>> import eoai.ml
>>> samples = cube.eoai.extract("labels.gpkg", label="class")  # doctest: +SKIP
>>> model = eoai.ml.fit(samples, "rf", threads=2)  # doctest: +SKIP
>>> classes = cube.eoai.classify(model, probabilities=True)  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# eoai.ml.classify is both a module and its function: bind the function (the module is light).
from .classify import classify  # noqa: E402, F401

_FUNCTIONS = {
    "extract": "eoai.ml.samples",
    "fit": "eoai.ml.train",
    "cross_validate": "eoai.ml.train",
    "infer_task": "eoai.ml.base",
    "select_samples": "eoai.ml.selection",
    "spatial_blocks": "eoai.ml.folds",
    "spatial_clusters": "eoai.ml.folds",
    "predict": "eoai.ml.classify",
    "assess_regression": "eoai.ml.regression_metrics",
    "plot_regression": "eoai.ml.regression_metrics",
    "RegressorModel": "eoai.ml.regress",
    "SklearnRegressor": "eoai.ml.regress",
    "assess": "eoai.ml.metrics",
    "area_estimates": "eoai.ml.metrics",
    "plot_confusion_matrix": "eoai.ml.metrics",
    "save_model": "eoai.ml.persist",
    "load_model": "eoai.ml.persist",
    "majority_filter": "eoai.ml.postprocess",
    "sieve": "eoai.ml.postprocess",
    "bayes_smooth": "eoai.ml.smoothing",
    "suggest_samples": "eoai.ml.active",
    "sample_quality": "eoai.ml.quality",
    "neuron_summary": "eoai.ml.quality",
    "plot_som": "eoai.ml.quality",
    "feature_names": "eoai.ml.features",
    "fit_network": "eoai.ml.deep",
    "embed": "eoai.ml.presto",
    "fit_presto_head": "eoai.ml.presto",
    "fit_segmentation": "eoai.ml.deep",
    "save_network": "eoai.ml.deep",
    "load_network": "eoai.ml.deep",
    "segment": "eoai.ml.objects",
    "object_features": "eoai.ml.objects",
    "object_samples": "eoai.ml.objects",
    "classify_objects": "eoai.ml.objects",
    "segment_polygons": "eoai.ml.objects",
    "ClassifierModel": "eoai.ml.base",
    "PixelClassifier": "eoai.ml.base",
}

__all__ = sorted([*_FUNCTIONS, "classify"])


def __getattr__(name: str) -> Any:
    if name in _FUNCTIONS:
        return getattr(import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'eoai.ml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
