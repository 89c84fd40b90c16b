"""Presto, a pretrained encoder of pixel time series, in eoai: embeddings as features.

Presto (Tseng et al. 2023, "Lightweight, Pre-trained Transformers for Remote Sensing Timeseries",
arXiv:2304.14065; weights and reference code nasaharvest/presto, MIT licence, Copyright (c) 2024
Presto Authors, see NOTICE) turns a monthly series of Sentinel-1, Sentinel-2, ERA5, SRTM and Dynamic
World values of one pixel, with its lat/lon, into a 128-d embedding. This package is eoai's own
torch implementation of the encoder (it loads the published weights and reproduces the authors'
outputs) with:

- :data:`PRESTO_CARD` / :class:`ModelCard`: the input contract (bands, units, normalisation,
  months, masks), stored with the weights (``<file>.json``) and checked on use;
- :func:`load_encoder` / :func:`save_encoder`: weights-only loading (``torch.load(weights_only=True)``);
  a file without a card needs ``card=`` explicitly;
- :func:`embed` (``cube.eoai.embed(model)``): lazy ``(embedding, y, x)`` from a ``(time, y, x)``
  cube, monthly composites made by eoai, the model one key of the dask graph;
- :func:`fit_presto_head` / :func:`save_head`: a linear or MLP head on frozen embeddings
  (classification heads are eoai classifiers: ``cube.eoai.classify`` maps them);
- :func:`finetune_presto`: the encoder and a linear head trained together (a new PrestoModel);
- :func:`fit_finetuned` (``eoai.ml.fit(samples, "presto", finetune=True, encoder=...)``): the same
  from a cube's sample table, with embed's rules; an eoai model for ``classify`` / ``predict`` /
  ``cross_validate`` / ``save_model``;
- :func:`pretrain_presto`: self-supervised pre-training (masked auto-encoding, as Presto) on the
  user's unlabelled cube or series, from the published weights (with their decoder) or scratch;
- :func:`normalise`: the authors' 18 raw channels -> the 17 normalised inputs (for their arrays).

Examples
--------
>>> from eoai.ml.presto import PRESTO_CARD
>>> PRESTO_CARD.required
['blue', 'green', 'red', 'rededge1', 'rededge2', 'rededge3', 'nir', 'nir08', 'swir16', 'swir22']
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .card import PRESTO_CARD, RAW_BANDS, InputBand, ModelCard, normalise  # noqa: F401

_LAZY = {
    "embed": "eoai.ml.presto.embedding",
    "load_encoder": "eoai.ml.presto.model",
    "save_encoder": "eoai.ml.presto.model",
    "PrestoModel": "eoai.ml.presto.model",
    "PrestoEncoder": "eoai.ml.presto.encoder",
    "fit_presto_head": "eoai.ml.presto.head",
    "save_head": "eoai.ml.presto.head",
    "finetune_presto": "eoai.ml.presto.finetune",
    "fit_finetuned": "eoai.ml.presto.finetuned",
    "PrestoFinetunedClassifier": "eoai.ml.presto.finetuned",
    "PrestoFinetunedRegressor": "eoai.ml.presto.finetuned",
    "pretrain_presto": "eoai.ml.presto.pretrain",
}

__all__ = sorted(["PRESTO_CARD", "RAW_BANDS", "InputBand", "ModelCard", "normalise", *_LAZY])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'eoai.ml.presto' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
