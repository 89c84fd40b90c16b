"""Deep-learning classification on torch: pixel time-series networks and patch segmentation.

The same protocol as the random forest: samples from :func:`eoai.ml.extract`, training with
:func:`fit_network` (or :func:`eoai.ml.fit` with ``model="tempcnn"`` / ``"ltae"`` / an
``nn.Module``), lazy maps with :func:`eoai.ml.classify` and accuracy with :func:`eoai.ml.assess`.

- **TempCNN** (Pelletier et al. 2019) reads the series on the training dates. A cube with other
  dates must be gap-filled onto that grid first (``cube.eoai.gapfill("linear", dates=model.dates)``);
  :meth:`DeepModel.for_cube` says so with a :class:`~eoai.errors.ModelError`. TempCNN does not take
  NaN: gap-fill the cube before extracting the samples.
- **L-TAE** (Garnot & Landrieu 2020) encodes the *acquisition day* of each observation and leaves
  NaN (cloudy) observations out of its attention, so it trains on raw masked series and applies to a
  cube with other dates: ``classify(cube, model.for_cube(cube))`` maps the cube's own dates to days.
- **Fusion** (TWINNS, Ienco et al. 2019): ``model="fusion"`` trains one temporal encoder per source
  of ``<source>.<band>_<date>`` features (a Dataset with variables ``s2.red``, ``s1.vv``...), their
  embeddings concatenated, with auxiliary per-source losses (:class:`eoai.ml.models.FusionNet`,
  :mod:`eoai.ml._deep_fusion`).
- **Regression heads**: with ``task="regression"`` (``eoai.ml.fit`` with a continuous target)
  TempCNN, L-TAE and fusion have one output trained on the standardised target and return a
  :class:`eoai.ml._deep_regress.DeepRegressor`, mapped with :func:`eoai.ml.predict`.
- **U-Net** (Ronneberger et al. 2015) segments patches of the cube (every band x date is a channel):
  train with :func:`fit_segmentation` on a label raster or polygons; :func:`eoai.ml.classify` runs it
  tiled with a halo (``dask.array.map_overlap``) so tiles join without seams. On a continuous
  target raster (canopy height, biomass) it is a regressor, :class:`SegmentationRegressor`, mapped
  by :func:`eoai.ml.predict` through the same tiles.

A trained network is a :class:`DeepModel` (an :class:`eoai.ml.base.ClassifierModel`): it carries the
per-channel normalisation of its training set, the classes, names, colours, bands, dates and the
reference date of the day encoding, and it is saved as a ``state_dict`` (``.pt``) plus a JSON
sidecar with :func:`save_network` (or :func:`eoai.ml.save_model`) and loaded without unpickling by
:func:`load_network` (a path or an ``http(s)://`` URL; ``torch.load(weights_only=True)``).

Inference runs batched on the model's device (``"auto"``: CUDA when present) inside each dask block,
under ``torch.no_grad`` in eval mode, with torch's own thread setting (``torch.set_num_threads``).
The model is one key of the dask graph that every block reads (:mod:`eoai._graph`), scattered once
to the workers of a ``dask.distributed`` client, never copied into each block's task.

Examples
--------
>>> import eoai, eoai.ml  # doctest: +SKIP
>>> samples = cube.eoai.extract(labels, label="class")  # doctest: +SKIP
>>> model = eoai.ml.deep.fit_network(samples, "ltae", epochs=30)  # doctest: +SKIP
>>> out = cube.eoai.classify(model.for_cube(cube), probabilities=True)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from ..errors import InputError
from ._deep_io import load_network, load_saved, save_network
from ._deep_layout import parse_layout
from ._deep_model import (
    _NAN_OK,
    DeepModel,
    SegmentationModel,
    _augmentation,
    _band_scaling,
    _check_training_args,
    _ensemble_of,
    _jsonable,
    _labels_index,
    _make_net,
)
from ._deep_regress import DeepRegressor, SegmentationRegressor
from ._deep_segment import fit_segmentation
from ._deep_utae import SeriesSegmentationModel
from ._deep_utt import MultiResSegmentationModel, stack_multires

__all__ = [
    "DeepModel",
    "MultiResSegmentationModel",
    "SegmentationModel",
    "SegmentationRegressor",
    "SeriesSegmentationModel",
    "fit",
    "fit_network",
    "fit_segmentation",
    "load_network",
    "load_saved",
    "save_network",
    "stack_multires",
]


class TrainingRecipe(TypedDict):
    """The training arguments of :func:`fit_network` that an architecture's recipe fills.

    Examples
    --------
    >>> TRAINING_DEFAULTS["tempcnn"]["batch_size"], TRAINING_DEFAULTS["ltae"]["shift"]
    (64, 1)
    """

    epochs: int
    val_fraction: float
    date_dropout: float
    noise: float
    shift: int
    label_smoothing: float
    average_last: int
    batch_size: int


#: The training recipe of each architecture, for the arguments of :func:`fit_network` left ``None``
#: (issue #16, ``benchmarks/README.md``). L-TAE has two, chosen from the training table:
#: ``"ltae"`` for series with NaN (clouds left in) or dense dates, and ``"ltae-composites"`` for
#: series without any NaN whose dates are more than :data:`DENSE_STEP_DAYS` apart (16-day
#: composites: no temporal shift, batches of 64; Mato Grosso MODIS NDVI OA 0.818 -> 0.850, the
#: forest 0.848); TempCNN likewise ``"tempcnn-composites"`` on sparse dates (no augmentation: noise
#: 0.2 cost 2 points there, 0.856 -> 0.836). Gaussian noise of 0.2 (standardised units) and a
#: shift of +-1 date for TempCNN and L-TAE on dense series: Slovenia, gap-filled onto 10-day dates, 3 fold draws, TempCNN
#: 0.75 -> 0.77 (0.79 with the widths of :func:`~eoai.ml.models.tempcnn.default_hidden`), L-TAE
#: 0.788 against the forest's 0.786-0.792. A recipe's shift is 0 on
#: series whose median step is longer than :data:`DENSE_STEP_DAYS`. The key used is
#: ``metadata["recipe"]``.
TRAINING_DEFAULTS: dict[str, TrainingRecipe] = {
    "ltae": dict(epochs=40, val_fraction=0.0, date_dropout=0.2, noise=0.2, shift=1,
                 label_smoothing=0.1, average_last=10, batch_size=256),
    "ltae-composites": dict(epochs=40, val_fraction=0.0, date_dropout=0.2, noise=0.05, shift=0,
                            label_smoothing=0.1, average_last=10, batch_size=64),
    "tempcnn": dict(epochs=40, val_fraction=0.2, date_dropout=0.0, noise=0.2, shift=1,
                    label_smoothing=0.0, average_last=0, batch_size=64),
    "tempcnn-composites": dict(epochs=40, val_fraction=0.2, date_dropout=0.0, noise=0.0, shift=0,
                               label_smoothing=0.0, average_last=0, batch_size=64),
    # fusion (issue #15): L-TAE branches by default, so L-TAE's recipe (as before issue #16's noise)
    "fusion": dict(epochs=40, val_fraction=0.0, date_dropout=0.2, noise=0.05, shift=1,
                   label_smoothing=0.1, average_last=10, batch_size=256),
    "custom": dict(epochs=50, val_fraction=0.2, date_dropout=0.0, noise=0.0, shift=0,
                   label_smoothing=0.0, average_last=0, batch_size=256),
}  # fmt: skip

#: Median step between dates (days) up to which a recipe's temporal shift applies: a shift of
#: +-1 date is +-5-10 days on Sentinel-2 series or a 10-day grid, but +-16 days on 16-day
#: composites, which blurs crop calendars that differ by one composite (Mato Grosso: -1.4 points).
DENSE_STEP_DAYS = 12.0


def fit_network(
    samples: pd.DataFrame,
    model: Any = "tempcnn",
    *,
    features: Sequence[str] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    class_weight: str | Mapping[Any, float] | None = None,
    val_fraction: float | None = None,
    patience: int | None = 10,
    seed: int | None = 0,
    device: Any = "auto",
    amp: bool | None = None,
    progress: bool | None = None,
    date_dropout: float | None = None,
    noise: float | None = None,
    shift: int | None = None,
    label_smoothing: float | None = None,
    average_last: int | None = None,
    scaling: str = "standard",
    ensemble: int = 1,
    reference_date: Any = None,
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    colours: Sequence[str] | Mapping[Any, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    task: str = "classification",
    target: str = "label",
    units: str = "",
    **arch_kw: Any,
) -> DeepModel | DeepRegressor:
    """Train a pixel time-series network (TempCNN, L-TAE, fusion or your own) on extracted samples.

    The features are read as a band x date grid (names ``<band>_<date>``). Each band is
    standardised with the mean and standard deviation of the training set (stored with the
    model). Training uses AdamW with a one-cycle schedule, cross-entropy (optionally class
    weighted) and either early stopping on the loss of a validation split grouped by polygon
    (the best weights are kept; TempCNN's default) or training on every sample for a fixed
    number of epochs with the mean of the last epochs' weights (L-TAE's default).

    Parameters
    ----------
    samples
        Table from :func:`eoai.ml.extract`: feature columns, ``label`` and ``group``.
    model
        ``"tempcnn"``, ``"ltae"``, ``"fusion"`` or a ``torch.nn.Module`` taking ``(batch, time, channel)``
        (and the acquisition ``days`` ``(time,)`` when its ``forward`` has a second argument); a
        module is copied (e.g. with pretrained weights, to fine-tune it).
    features
        Feature columns (default: all features of the table).

        ``epochs``, ``val_fraction``, ``date_dropout``, ``noise``, ``shift``, ``label_smoothing``,
        ``average_last`` and ``batch_size`` left ``None`` take the architecture's value in
        :data:`TRAINING_DEFAULTS` (L-TAE: 40 epochs on every sample, date dropout 0.2, label
        smoothing 0.1, mean of the last 10 epochs, and, chosen from the training table, noise 0.2,
        shift 1 and batches of 256 when some features are NaN (clouds) or the dates are at most
        :data:`DENSE_STEP_DAYS` apart, noise 0.05, no shift and batches of 64 on complete series
        of sparser dates (recipe ``"ltae-composites"``: 16-day composites); TempCNN: 40 epochs
        with early stopping on a 0.2 validation split, batches of 64, noise 0.2 and a shift of
        +-1 date, no augmentation on sparser dates (``"tempcnn-composites"``); custom modules:
        50 epochs, early stopping, no augmentation, batches of 256).
        Every recipe's shift is 0 on dates more than :data:`DENSE_STEP_DAYS` apart. For
        TempCNN gap-fill onto a regular grid (``cube.eoai.gapfill("linear", freq="10D")``): it
        reads dates by position. The recipe used is ``metadata["recipe"]``, the values
        ``metadata["parameters"]``;
        an argument given always wins. For a small table of few polygons TempCNN does better on
        every sample: ``val_fraction=0, epochs=20, label_smoothing=0.1, average_last=5``.
    epochs, batch_size, lr, weight_decay
        Training length, batch size (``None``: the architecture's default), peak learning rate
        of the one-cycle schedule, AdamW decay.
    class_weight
        ``None``, ``"balanced"`` (inverse class frequency) or ``{label: weight}``.
    val_fraction
        Share of each class's samples held out for validation, taken as whole groups
        (``samples["group"]``, one per polygon): a group is never in both sets. 0 disables
        validation and early stopping.
    patience
        Stop after this many epochs without a lower validation loss (``None``: never).
    seed
        Seeds the weights, the split, the batches and dropout: a fixed seed gives the same model
        (on the same device and torch version). The global torch RNG is left untouched.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    amp
        Mixed precision (float16 autocast): ``None`` = on CUDA only; ignored (with a warning) on CPU.
    progress
        Show a tqdm bar with the loss and accuracy of each epoch; ``None`` (default): on in an interactive Jupyter / IPython session, off in scripts and papermill runs (``EOAI_PROGRESS=0/1`` overrides).
    date_dropout
        Augmentation for NaN-aware networks (L-TAE): each observation of a training series is
        hidden (set NaN) with this probability, which makes the model robust to other clouds and
        other dates.
    noise
        Augmentation: Gaussian noise of this standard deviation, in units of the per-band
        scaling, added to every training value (each batch anew).
    shift
        Augmentation (temporal jitter): each training series is shifted by a random whole number
        of dates in ``[-shift, shift]`` (edge dates repeated).
    label_smoothing
        Label smoothing of the cross-entropy (0 = none).
    average_last
        Without a validation split (``val_fraction=0``), the final weights are the mean of the
        weights after each of the last ``average_last`` epochs, at most a quarter of ``epochs``
        (checkpoint averaging); 0 keeps the last epoch's weights.
    scaling
        Per-band input normalisation from the training set: ``"standard"`` (mean, standard
        deviation) or ``"robust"`` (median, interquartile range / 1.349), stored with the model.
    ensemble
        Number of networks trained from the seeds ``seed, seed + 1, ...`` whose class
        probabilities are averaged (one :class:`~eoai.ml.models.Ensemble` module); training and
        inference take ``ensemble`` times as long.
    reference_date
        Day 0 of the day encoding (default: the first date).
    class_names, colours, metadata
        As for :func:`eoai.ml.fit`.
    task, target, units
        ``task="regression"``: the network has one output trained with the mean squared error
        on the standardised column ``target`` (``units`` its units), and a
        :class:`eoai.ml._deep_regress.DeepRegressor` is returned (``predict`` gives values in the
        target's units; no class weights, label smoothing or ensemble).
    **arch_kw
        Architecture parameters, e.g. ``hidden=32`` (TempCNN), ``d_model=64, n_head=8`` (L-TAE).
        ``model="fusion"`` (:class:`eoai.ml.models.FusionNet`, one encoder per source of
        ``<source>.<band>_<date>`` features): ``encoder="ltae"`` / ``"tempcnn"`` /
        ``{source: name}``, ``encoder_kw={...}`` (each branch's parameters), ``fused=(64,)``,
        ``dropout=0.2`` and ``aux_weight=0.5`` (weight of the mean per-source auxiliary loss).

    Returns
    -------
    DeepModel or eoai.ml._deep_regress.DeepRegressor
        A :class:`~eoai.ml._deep_regress.DeepRegressor` for ``task="regression"``.
        ``metadata["history"]`` holds the per-epoch loss and accuracy (and validation scores),
        ``metadata["recipe"]`` the key of :data:`TRAINING_DEFAULTS` that filled the arguments left
        ``None``.

    Raises
    ------
    eoai.errors.InputError
        Bad parameters, no label, a single class, or NaN features for a network that does not take
        them (the message says to gap-fill).
    eoai.errors.ModelError
        The features are not a band x date grid, or ``model="unet"`` (use :func:`fit_segmentation`).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> t = [f"ndvi_2021-{m:02d}-01" for m in range(1, 9)]
    >>> X = np.r_[rng.normal(0.2, 0.05, (60, 8)), rng.normal(0.7, 0.05, (60, 8))]
    >>> df = pd.DataFrame(X, columns=t).assign(label=np.repeat([1, 2], 60), group=np.arange(120) // 6)
    >>> m = fit_network(df, "tempcnn", epochs=5, hidden=8, dense=16, progress=False)
    >>> m.classes, m.bands, len(m.dates)
    ([1, 2], ['ndvi'], 8)
    """
    import torch

    from . import _deep_train as T
    from .samples import sample_features

    name = model.lower() if isinstance(model, str) else "custom"
    if task not in ("classification", "regression"):
        raise InputError(f"task must be 'classification' or 'regression', got {task!r}")
    regression = task == "regression"
    if regression and label_smoothing:
        raise InputError("label_smoothing is for classes; drop it for a regression")
    if regression and (class_weight is not None or int(ensemble) > 1):
        raise InputError(
            "class_weight= and ensemble > 1 are for classes; drop them for a regression"
        )
    if regression:
        label_smoothing = 0.0
    fusion_kw: dict[str, Any] = {}
    if name == "fusion":
        fusion_kw = {k: arch_kw.pop(k) for k in ("encoder", "encoder_kw") if k in arch_kw}
        aux_weight = float(arch_kw.pop("aux_weight", 0.5))
        if not aux_weight >= 0:
            raise InputError(f"aux_weight must be >= 0, got {aux_weight}")
    else:
        aux_weight = 0.0
    feats = sample_features(samples, features, target)
    if name == "fusion":
        from ._deep_fusion import split_sources

        split_sources(feats)
    layout = parse_layout(feats, complete=name != "fusion")
    sparse = bool(layout.median_step_days() > DENSE_STEP_DAYS)  # NaN (a single date): dense
    recipe = _recipe(name, complete=not samples[feats].isna().to_numpy().any(), sparse=sparse)
    default = TRAINING_DEFAULTS[recipe].copy()  # for the arguments left None
    if sparse:  # a +-1-date jitter of 16-day composites blurs crop calendars
        default["shift"] = 0
    epochs = default["epochs"] if epochs is None else epochs
    val_fraction = default["val_fraction"] if val_fraction is None else val_fraction
    date_dropout = default["date_dropout"] if date_dropout is None else date_dropout
    noise = default["noise"] if noise is None else noise
    shift = default["shift"] if shift is None else shift
    label_smoothing = default["label_smoothing"] if label_smoothing is None else label_smoothing
    average_last = default["average_last"] if average_last is None else average_last
    batch_size = default["batch_size"] if batch_size is None else batch_size
    _check_training_args(epochs, batch_size, lr, val_fraction)
    if not 0 <= date_dropout < 1:
        raise InputError(f"date_dropout must be in [0, 1), got {date_dropout}")
    if not noise >= 0 or int(shift) < 0 or int(average_last) < 0:
        raise InputError(
            f"noise, shift and average_last must be >= 0, got {noise}, {shift}, {average_last}"
        )
    if not 0 <= label_smoothing < 1:
        raise InputError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if int(ensemble) < 1:
        raise InputError(f"ensemble must be >= 1, got {ensemble}")
    if scaling not in ("standard", "robust"):
        raise InputError(f"scaling must be 'standard' or 'robust', got {scaling!r}")
    labels = samples[target]
    if labels.isna().any():
        raise InputError(f"{int(labels.isna().sum())} samples have no {target!r}; drop them first")
    if regression:
        yv = labels.to_numpy(dtype="float64")
        y_mean, y_std = float(yv.mean()), float(yv.std())
        if not y_std > 0:
            raise InputError(f"the target {target!r} is constant: nothing to learn")
        y = ((yv - y_mean) / y_std).astype("float32")
        classes = [0, 1]  # placeholder classes of the inner model (one output)
        strata = np.searchsorted(np.quantile(y, [0.2, 0.4, 0.6, 0.8]), y)  # split by quintile
    else:
        classes, y = _labels_index(labels)
        strata = y
        if len(classes) < 2:
            raise InputError(f"training needs at least 2 classes, the samples have {classes}")
    X = layout.grid(samples[feats].to_numpy(dtype="float32"))
    n, t, c = X.shape
    dev = T.resolve_device(device)
    amp = T.warn_amp_on_cpu(amp, dev)
    groups = samples["group"].to_numpy() if "group" in samples.columns else np.arange(n)
    tr, va = T.grouped_split(strata, groups, val_fraction, seed)
    if name == "fusion":
        from ._deep_fusion import fusion_branches

        arch_kw = {**arch_kw, "branches": fusion_branches(layout, X[tr], **fusion_kw)}
        grid_branch = any(b["encoder"] == "tempcnn" for b in arch_kw["branches"])
        if grid_branch:  # dropped dates or shifted series would put NaN on a TempCNN branch
            date_dropout, shift = 0.0, 0
    mean, std = _band_scaling(X[tr], scaling)
    if not np.all(np.isfinite(mean)):
        bad = [b for b, m in zip(layout.bands, mean, strict=True) if not np.isfinite(m)]
        raise InputError(f"band(s) {bad} are NaN in every training sample")
    std = np.where(std > 1e-6, std, 1.0).astype("float32")
    reference = pd.Timestamp(reference_date if reference_date is not None else layout.dates[0])
    days = torch.from_numpy(layout.days(reference))

    empty = np.isnan(X).all(axis=(1, 2))
    if empty.any():
        raise InputError(f"{int(empty.sum())} samples have no valid observation; drop them")
    x = (torch.from_numpy(X) - torch.from_numpy(mean.astype("float32"))) / torch.from_numpy(std)
    yt = torch.from_numpy(y)
    nets, histories = [], []
    for member in range(int(ensemble)):
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed((0 if seed is None else int(seed)) + member)
            net, arch = _make_net(
                model, kind="pixel", n_classes=1 if regression else len(classes), channels=c,
                times=t, arch_kw=arch_kw,
            )  # fmt: skip
            nan_ok = arch in _NAN_OK or bool(getattr(net, "accepts_nan", False))
            nan_rows = int(np.isnan(X).any(axis=(1, 2)).sum())
            if nan_rows and not nan_ok:
                raise InputError(
                    f"{nan_rows} of {n} samples have NaN features (clouds) and {arch} does not "
                    "take NaN: gap-fill the cube first (cube.eoai.gapfill('linear')) and extract "
                    "again, or use model='ltae', which leaves missing observations out"
                )
            augment = _augmentation(
                date_dropout=date_dropout if nan_ok else 0.0, noise=float(noise), shift=int(shift)
            )
            histories.append(T.train(
                net, x, yt, train_idx=tr, val_idx=va, days=days, epochs=int(epochs),
                batch_size=int(batch_size), lr=float(lr), weight_decay=float(weight_decay),
                weights=None if regression else T.class_weights(y, len(classes), class_weight, classes),
                patience=patience, device=dev, amp=amp, progress=progress, augment=augment,
                desc=f"training {arch}" + (f" {member + 1}/{ensemble}" if ensemble > 1 else ""),
                label_smoothing=float(label_smoothing), average_last=int(average_last),
                regression=regression, aux_weight=aux_weight,
            ))  # fmt: skip
            nets.append(net)
    history = histories[0] if len(histories) == 1 else histories
    if len(nets) > 1:
        net = _ensemble_of(nets, arch)
    params = {
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
        "class_weight": class_weight if not isinstance(class_weight, Mapping) else
        {str(k): v for k, v in class_weight.items()}, "val_fraction": val_fraction,
        "patience": patience, "seed": seed, "amp": amp, "date_dropout": date_dropout,
        "noise": noise, "shift": shift, "label_smoothing": label_smoothing,
        "average_last": average_last, "scaling": scaling, "ensemble": ensemble,
        "device": str(dev), **{k: v for k, v in arch_kw.items() if _jsonable(v)},
        **({"aux_weight": aux_weight, **fusion_kw} if name == "fusion" else {}),
    }  # fmt: skip
    meta = {
        "label_column": samples.attrs.get("eoai:label", "label"),
        "training_cube": samples.attrs.get("eoai:cube", {}),
        "n_samples": int(n),
        **(
            {"target_range": [float(yv.min()), float(yv.max())]}
            if regression
            else {
                "samples_per_class": {
                    str(k): int(v) for k, v in labels.value_counts().sort_index().items()
                },
            }
        ),  # fmt: skip
        **dict(metadata or {}),
        "method": f"eoai.ml.deep.fit_network({arch})",
        "parameters": params,
        "recipe": recipe,
        "n_train": int(len(tr)),
        "n_validation": int(len(va)),
        "history": history,
    }
    cls: Any = DeepModel
    if arch == "fusion":
        from ._deep_fusion import FusionModel as cls
    if regression:
        inner = cls(
            net, layout.features, classes, mean=mean, std=std, reference_date=reference,
            allow_nan=nan_ok, device=device, amp=amp,
        )  # fmt: skip
        meta["task"] = "regression"
        return DeepRegressor(inner, target, y_mean=y_mean, y_std=y_std, units=units, metadata=meta)
    return cls(
        net, layout.features, classes, mean=mean, std=std, reference_date=reference,
        allow_nan=nan_ok, device=device, amp=amp, class_names=class_names, colours=colours,
        metadata=meta,
    )  # fmt: skip


def _recipe(name: str, complete: bool, sparse: bool = False) -> str:
    """The key of :data:`TRAINING_DEFAULTS` for architecture ``name`` on a training table that is
    ``complete`` (no NaN feature) or not, with dates ``sparse`` (median step longer than
    :data:`DENSE_STEP_DAYS`) or not.

    Examples
    --------
    >>> _recipe("ltae", complete=True, sparse=True), _recipe("ltae", complete=True)
    ('ltae-composites', 'ltae')
    >>> _recipe("ltae", complete=False, sparse=True), _recipe("mynet", True)
    ('ltae', 'custom')
    """
    if name == "ltae" and complete and sparse:
        return "ltae-composites"
    if name == "tempcnn" and sparse:
        return "tempcnn-composites"
    return name if name in TRAINING_DEFAULTS else "custom"


def fit(
    samples: pd.DataFrame,
    model: Any = "tempcnn",
    *,
    seed: int | None = 0,
    **kwargs: Any,
) -> DeepModel | DeepRegressor:
    """Entry point used by :func:`eoai.ml.fit` for deep-learning models.

    Examples
    --------
    >>> model = eoai.ml.fit(samples, "ltae", epochs=20)  # doctest: +SKIP
    """
    kwargs.pop("threads", None)  # torch's own threads (torch.set_num_threads) are used
    if isinstance(model, str) and model.lower() in ("m3fusion", "multireso"):  # patches, #15
        from ._deep_patchfusion import fit_patch_fusion

        return fit_patch_fusion(samples, model, seed=seed, **kwargs)
    return fit_network(samples, model, seed=seed, **kwargs)
