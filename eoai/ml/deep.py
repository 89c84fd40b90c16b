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
- **U-Net** (Ronneberger et al. 2015) segments patches of the cube (every band x date is a channel):
  train with :func:`fit_segmentation` on a label raster or polygons; :func:`eoai.ml.classify` runs it
  tiled with a halo (``dask.array.map_overlap``) so tiles join without seams.

A trained network is a :class:`DeepModel` (an :class:`eoai.ml.base.ClassifierModel`): it carries the
per-channel normalisation of its training set, the classes, names, colours, bands, dates and the
reference date of the day encoding, and it is saved as a ``state_dict`` (``.pt``) plus a JSON
sidecar with :func:`save_network` (or :func:`eoai.ml.save_model`) and loaded without unpickling by
:func:`load_network` (a path or an ``http(s)://`` URL; ``torch.load(weights_only=True)``).

Inference runs batched on the model's device (``"auto"``: CUDA when present) inside each dask block,
under ``torch.no_grad`` in eval mode, with torch's own thread setting (``torch.set_num_threads``).

Examples
--------
>>> import eoai, eoai.ml  # doctest: +SKIP
>>> samples = cube.eoai.extract(labels, label="class")  # doctest: +SKIP
>>> model = eoai.ml.deep.fit_network(samples, "ltae", epochs=30)  # doctest: +SKIP
>>> out = cube.eoai.classify(model.for_cube(cube), probabilities=True)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError, ModelError
from ._deep_layout import Layout, cube_layout, parse_layout
from .base import ClassifierModel

__all__ = [
    "DeepModel",
    "SegmentationModel",
    "fit",
    "fit_network",
    "fit_segmentation",
    "load_network",
    "load_saved",
    "save_network",
]

_LOCK = threading.Lock()
#: Architectures whose input is a fixed grid of dates (no day encoding).
_GRID_BOUND = {"tempcnn"}
_NAN_OK = {"ltae"}


def _architecture_of(net: Any) -> str:
    from .models import ARCHITECTURES

    for name, cls in ARCHITECTURES.items():
        if type(net) is cls:
            return name
    return "custom"


class DeepModel(ClassifierModel):
    """A trained pixel time-series network with its normalisation, layout and classes.

    Made by :func:`fit_network` or :func:`load_network`; apply it with :func:`eoai.ml.classify`.

    Parameters
    ----------
    net
        The ``torch.nn.Module`` (input ``(batch, time, channel)``; a second argument ``days`` when
        its ``forward`` takes one).
    features
        Band x date feature names (see :mod:`eoai.ml.features`).
    classes
        Class labels in the order of the network outputs.
    mean, std
        Per-channel (band) normalisation of the training set.
    reference_date
        Day 0 of the acquisition-day encoding (default: the first date).
    allow_nan
        Whether the network takes NaN observations (L-TAE: yes).
    batch_size
        Pixels per forward pass at inference.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...
    class_names, colours, metadata
        As for :class:`eoai.ml.base.ClassifierModel`.

    Attributes
    ----------
    architecture : str
        ``"tempcnn"``, ``"ltae"``, ``"unet"`` or ``"custom"``.
    bands, dates
        The channels and the dates (:class:`pandas.DatetimeIndex`) the network was trained on.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from eoai.ml.models import TempCNN
    >>> net = TempCNN(in_channels=1, n_times=2, n_classes=2, hidden=4, dense=4).eval()
    >>> m = DeepModel(net, ["ndvi_2021-05-01", "ndvi_2021-06-01"], [1, 2], mean=[0.5], std=[0.2])
    >>> m.predict_proba(np.array([[0.2, 0.3]], dtype="float32")).shape
    (1, 2)
    """

    def __init__(
        self,
        net: Any,
        features: Sequence[str],
        classes: Sequence[Any],
        *,
        mean: Sequence[float],
        std: Sequence[float],
        reference_date: Any = None,
        allow_nan: bool | None = None,
        batch_size: int = 8192,
        device: Any = "auto",
        amp: bool = False,
        class_names: Sequence[str] | Mapping[Any, str] | None = None,
        colours: Sequence[str] | Mapping[Any, str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            features, classes, class_names=class_names, colours=colours, metadata=metadata
        )
        self.net = net
        self.architecture = _architecture_of(net)
        self._init_layout()
        self.mean = np.asarray(mean, dtype="float32").reshape(-1)
        self.std = np.asarray(std, dtype="float32").reshape(-1)
        if self.mean.shape != self.std.shape or self.mean.size != self._n_channels():
            raise ModelError(
                f"normalisation has {self.mean.size} means / {self.std.size} stds for "
                f"{self._n_channels()} channels"
            )
        if allow_nan is None:
            allow_nan = self.architecture in _NAN_OK or bool(getattr(net, "accepts_nan", False))
        self.allow_nan = bool(allow_nan)
        self.reference_date = pd.Timestamp(
            reference_date if reference_date is not None else self._first_date()
        )
        self.batch_size = int(batch_size)
        self.device = device
        self.amp = bool(amp)
        net.eval()

    # -- layout ---------------------------------------------------------------------------
    def _init_layout(self) -> None:
        self.layout: Layout = parse_layout(self.features)

    def _n_channels(self) -> int:
        return len(self.layout.bands)

    def _first_date(self) -> Any:
        return self.layout.dates[0] if self.layout.dates else "1970-01-01"

    @property
    def bands(self) -> list[str]:
        """Channel (band) names, in network order."""
        return list(self.layout.bands)

    @property
    def dates(self) -> pd.DatetimeIndex:
        """Dates of the series the model reads (for ``gapfill(dates=model.dates)``)."""
        return self.layout.timestamps()

    @property
    def days(self) -> np.ndarray:
        """Acquisition days since ``reference_date`` of :attr:`dates` (float32)."""
        return self.layout.days(self.reference_date)

    @property
    def uses_days(self) -> bool:
        """Whether the network encodes acquisition days (and so works on other dates)."""
        from ._deep_train import takes_days

        return self.architecture not in _GRID_BOUND and takes_days(self.net)

    def for_cube(self, cube: Any, *, reference_date: Any = None) -> DeepModel:
        """This model set up for the dates of ``cube``.

        A day-encoding network (L-TAE) gets the cube's own dates, mapped to days since
        ``reference_date`` (default: the training reference, e.g. for a later year pass the
        matching date of that year). A grid-bound network (TempCNN) is returned unchanged when the
        cube holds its training dates, and otherwise raises.

        Parameters
        ----------
        cube
            The cube to classify (Dataset or DataArray ``(time, y, x)``).
        reference_date
            Day 0 of the encoding for this cube.

        Raises
        ------
        eoai.errors.ModelError
            A band is missing, or the network reads a fixed date grid that the cube lacks; the
            message says how to gap-fill the cube onto it.

        Examples
        --------
        >>> out = eoai.ml.classify(cube_2022, model.for_cube(cube_2022))  # doctest: +SKIP
        """
        from .features import feature_names

        names = feature_names(cube)
        lay = cube_layout(names, self.bands)
        if not self.uses_days:
            have = set(names)
            missing = [f for f in self.features if f not in have]
            if not missing:
                return self
            lacking = sorted({d for d in self.layout.dates if f"{self.bands[0]}_{d}" not in have})
            raise ModelError(
                f"{self.architecture} reads the series on its {len(self.layout.dates)} training "
                f"dates ({self.layout.dates[0]} ... {self.layout.dates[-1]}) and the cube lacks "
                f"{len(lacking) or len(missing)} of them (e.g. {', '.join((lacking or missing)[:3])}): "
                "gap-fill the cube onto the training grid first, e.g. "
                "cube.eoai.gapfill('linear', dates=model.dates) "
                "(eoai.timeseries.gapfill.gapfill(cube, dates=model.dates)), or use L-TAE, which "
                "works from acquisition days"
            )
        new = copy.copy(self)
        new.features = lay.features
        new.layout = lay
        if reference_date is not None:
            new.reference_date = pd.Timestamp(reference_date)
        new.metadata = {**self.metadata, "applied_dates": list(lay.dates)}
        return new

    # -- inference ------------------------------------------------------------------------
    def _device(self) -> Any:
        from ._deep_train import resolve_device

        dev = resolve_device(self.device)
        with _LOCK:
            p = next(iter(self.net.parameters()), None)
            if p is not None and p.device != dev:
                self.net.to(dev)
            if self.net.training:
                self.net.eval()
        return dev

    def _tensor(self, X: np.ndarray) -> Any:
        """Features ``(n, F)`` -> normalised tensor ``(n, time, channel)`` on the CPU."""
        import torch

        X = np.asarray(X, dtype="float32")
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ModelError(
                f"expected features of shape (n, {len(self.features)}), got {X.shape}; pass the "
                "columns model.features"
            )
        n, t, c = X.shape[0], len(self.layout.dates), len(self.layout.bands)
        x = torch.from_numpy(np.ascontiguousarray(X[:, self.layout.perm])).view(n, t, c)
        return (x - torch.from_numpy(self.mean)) / torch.from_numpy(self.std)

    def _logits(self, xb: Any, days: Any) -> Any:
        import torch

        with torch.autocast(device_type=xb.device.type, dtype=torch.float16,
                            enabled=self.amp and xb.device.type == "cuda"):  # fmt: skip
            return self.net(xb, days) if days is not None else self.net(xb)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` of features ``X`` ``(n, n_features)``.

        Runs in batches of :attr:`batch_size` on the model's device, without gradients.

        Examples
        --------
        >>> proba = model.predict_proba(samples[model.features].to_numpy("float32"))  # doctest: +SKIP
        """
        import torch

        dev = self._device()
        x = self._tensor(X)
        if not self.allow_nan and bool(torch.isnan(x).any()):
            raise ModelError(
                f"{self.architecture} does not take NaN features: gap-fill the cube "
                "(cube.eoai.gapfill('linear', dates=model.dates)) before classifying"
            )
        days = torch.from_numpy(self.days).to(dev) if self.uses_days else None
        out = np.empty((x.shape[0], len(self.classes)), dtype="float32")
        with torch.no_grad():
            for k in range(0, x.shape[0], self.batch_size):
                xb = x[k : k + self.batch_size].to(dev, non_blocking=True)
                logits = self._logits(xb, days).float()
                if logits.shape != (xb.shape[0], len(self.classes)):
                    raise ModelError(
                        f"the network returned shape {tuple(logits.shape)}, expected "
                        f"({xb.shape[0]}, {len(self.classes)}) logits"
                    )
                out[k : k + xb.shape[0]] = torch.softmax(logits, dim=1).cpu().numpy()
        return out

    # -- persistence ----------------------------------------------------------------------
    def network_config(self) -> dict[str, Any]:
        """JSON description of the network: architecture, its config, normalisation, layout."""
        cfg = getattr(self.net, "config", None)
        return {
            "architecture": self.architecture,
            "config": dict(cfg) if isinstance(cfg, Mapping) else None,
            "module_class": f"{type(self.net).__module__}.{type(self.net).__qualname__}",
            "kind": "patch" if isinstance(self, SegmentationModel) else "pixel",
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "bands": self.bands,
            "dates": list(self.layout.dates),
            "reference_date": self.reference_date.isoformat(),
            "allow_nan": self.allow_nan,
            "batch_size": self.batch_size,
            "halo": int(getattr(self, "halo", 0)),
        }

    def _eoai_save(self, path: Path) -> dict[str, Any]:
        """Write the ``state_dict`` to ``path`` and return the JSON fields (used by save_model)."""
        import torch

        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        torch.save(state, path)
        return {
            "format": "torch-state-dict",
            "loader": "eoai.ml.deep:load_saved",
            "network": self.network_config(),
            "versions": {"torch": torch.__version__},
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["net"] = copy.deepcopy(self.net).cpu() if _on_gpu(self.net) else self.net
        return state

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.architecture}: {len(self.classes)} classes "
            f"{self.class_names}, {len(self.bands)} bands x {len(self.layout.dates)} dates>"
        )


def _on_gpu(net: Any) -> bool:
    p = next(iter(net.parameters()), None)
    return p is not None and p.device.type != "cpu"


class SegmentationModel(DeepModel):
    """A trained patch network (U-Net): every feature is an input channel of an image.

    :func:`eoai.ml.classify` applies it tile by tile with :attr:`halo` pixels of overlap and crops
    the halo, so the map has no seams. NaN inputs are replaced by the channel's training mean
    (0 after normalisation); pixels with all features NaN are nodata in the map. Chunks whose
    sizes are multiples of :attr:`tile_multiple` (the U-Net's down-sampling factor) keep tiled and
    whole-image predictions identical.

    Examples
    --------
    >>> import numpy as np
    >>> from eoai.ml.models import UNet
    >>> net = UNet(in_channels=2, n_classes=2, depth=1, base=4)
    >>> m = SegmentationModel(net, ["a", "b"], [0, 1], mean=[0, 0], std=[1, 1])
    >>> m.predict_proba_image(np.zeros((5, 6, 2), "float32")).shape, m.halo
    ((5, 6, 2), 12)
    """

    def _init_layout(self) -> None:
        try:
            self.layout = parse_layout(self.features)
        except ModelError:  # static features are fine for a patch model
            self.layout = Layout(bands=[], dates=[], perm=np.arange(0))

    def _n_channels(self) -> int:
        return len(self.features)

    @property
    def uses_days(self) -> bool:
        return False

    @property
    def tile_multiple(self) -> int:
        """Down-sampling factor of the network (``2**depth`` for the U-Net)."""
        return int(2 ** getattr(self.net, "depth", 0))

    @property
    def halo(self) -> int:
        """Overlap between tiles: half the receptive field plus one down-sampling cell, rounded up
        to a multiple of :attr:`tile_multiple` (an output pixel depends on inputs within half the
        receptive field, offset by at most one pooling cell)."""
        rf = int(getattr(self.net, "receptive_field", 0))
        m = self.tile_multiple
        need = rf // 2 + m
        return int(-(-need // m) * m)

    def for_cube(self, cube: Any, *, reference_date: Any = None) -> DeepModel:
        """Patch models read their training features; returned unchanged (checked by classify)."""
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Not available: a patch model needs images (see :meth:`predict_proba_image`)."""
        raise ModelError(
            "a U-Net segments images, not pixel rows: classify a cube with "
            "eoai.ml.classify(cube, model) (or call model.predict_proba_image(block))"
        )

    def predict_proba_image(self, block: np.ndarray) -> np.ndarray:
        """Class probabilities ``(y, x, class)`` of an image ``(y, x, feature)``.

        Examples
        --------
        >>> proba = model.predict_proba_image(block)  # doctest: +SKIP
        """
        import torch

        block = np.asarray(block, dtype="float32")
        if block.ndim != 3 or block.shape[-1] != len(self.features):
            raise ModelError(
                f"expected an image (y, x, {len(self.features)}), got shape {block.shape}"
            )
        dev = self._device()
        x = (block - self.mean) / self.std
        x = np.nan_to_num(x, nan=0.0)
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(dev)
        with torch.no_grad():
            logits = self._logits(xt, None).float()
            proba = torch.softmax(logits, dim=1)[0].permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(proba, dtype="float32")


# --------------------------------------------------------------------------------------------
# Training of pixel models
# --------------------------------------------------------------------------------------------


def _labels_index(labels: pd.Series) -> tuple[list[Any], np.ndarray]:
    values = labels.to_numpy()
    if values.dtype == object and all(isinstance(v, (int, np.integer)) for v in values):
        values = values.astype("int64")
    classes = sorted(pd.unique(values), key=lambda v: (str(type(v)), v))
    lut = {c: i for i, c in enumerate(classes)}
    return [c.item() if isinstance(c, np.generic) else c for c in classes], np.array(
        [lut[v] for v in values], dtype=np.int64
    )


def _make_net(model: Any, *, kind: str, n_classes: int, **shape: int) -> tuple[Any, str]:
    from torch import nn

    from .models import build_model

    if isinstance(model, nn.Module):
        return copy.deepcopy(model), _architecture_of(model)
    if not isinstance(model, str):
        raise InputError(
            f"model must be 'tempcnn', 'ltae', 'unet' or a torch.nn.Module, got {type(model).__name__}"
        )
    name = model.lower()
    if name == "unet" and kind == "pixel":
        raise ModelError(
            "the U-Net is a patch model: train it on a cube and a label raster with "
            "eoai.ml.deep.fit_segmentation(cube, labels) (pixel samples have no spatial context)"
        )
    if name in ("tempcnn", "ltae") and kind == "patch":
        raise ModelError(
            f"{name} classifies pixel series: train it with fit_network(samples, {name!r})"
        )
    arch: dict[str, Any] = {"n_classes": n_classes}
    if name == "tempcnn":
        arch.update(in_channels=shape["channels"], n_times=shape["times"])
    elif name == "ltae":
        arch.update(in_channels=shape["channels"])
    elif name == "unet":
        arch.update(in_channels=shape["channels"])
    arch.update(shape.get("arch_kw", {}))
    try:
        return build_model(name, **arch), name
    except TypeError as err:
        raise InputError(f"bad architecture parameters for {name}: {err}") from None


def _check_training_args(epochs: int, batch_size: int, lr: float, val_fraction: float) -> None:
    if int(epochs) < 1:
        raise InputError(f"epochs must be >= 1, got {epochs}")
    if int(batch_size) < 2:
        raise InputError(f"batch_size must be >= 2, got {batch_size}")
    if not lr > 0:
        raise InputError(f"lr must be > 0, got {lr}")
    if not 0 <= val_fraction < 1:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")


def fit_network(
    samples: pd.DataFrame,
    model: Any = "tempcnn",
    *,
    features: Sequence[str] | None = None,
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    class_weight: str | Mapping[Any, float] | None = None,
    val_fraction: float = 0.2,
    patience: int | None = 10,
    seed: int | None = 0,
    device: Any = "auto",
    amp: bool | None = None,
    progress: bool = True,
    date_dropout: float = 0.0,
    reference_date: Any = None,
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    colours: Sequence[str] | Mapping[Any, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    **arch_kw: Any,
) -> DeepModel:
    """Train a pixel time-series network (TempCNN, L-TAE or your own) on extracted samples.

    The features are read as a band x date grid (names ``<band>_<date>``). Each band is
    standardised with the mean and standard deviation of the training set (stored with the
    model). Training uses AdamW with a one-cycle schedule, cross-entropy (optionally class
    weighted) and early stopping on the loss of a validation split grouped by polygon; the best
    weights are kept.

    Parameters
    ----------
    samples
        Table from :func:`eoai.ml.extract`: feature columns, ``label`` and ``group``.
    model
        ``"tempcnn"``, ``"ltae"`` or a ``torch.nn.Module`` taking ``(batch, time, channel)``
        (and the acquisition ``days`` ``(time,)`` when its ``forward`` has a second argument); a
        module is copied (e.g. with pretrained weights, to fine-tune it).
    features
        Feature columns (default: all features of the table).
    epochs, batch_size, lr, weight_decay
        Training length, batch size, peak learning rate of the one-cycle schedule, AdamW decay.
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
        Show a tqdm bar with the loss and accuracy of each epoch.
    date_dropout
        Augmentation for NaN-aware networks (L-TAE): each observation of a training series is
        hidden (set NaN) with this probability, which makes the model robust to other clouds and
        other dates.
    reference_date
        Day 0 of the day encoding (default: the first date).
    class_names, colours, metadata
        As for :func:`eoai.ml.fit`.
    **arch_kw
        Architecture parameters, e.g. ``hidden=32`` (TempCNN), ``d_model=64, n_head=8`` (L-TAE).

    Returns
    -------
    DeepModel
        ``metadata["history"]`` holds the per-epoch loss and accuracy (and validation scores).

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

    _check_training_args(epochs, batch_size, lr, val_fraction)
    if not 0 <= date_dropout < 1:
        raise InputError(f"date_dropout must be in [0, 1), got {date_dropout}")
    feats = sample_features(samples, features)
    layout = parse_layout(feats)
    labels = samples["label"]
    if labels.isna().any():
        raise InputError(f"{int(labels.isna().sum())} samples have no label; drop them first")
    classes, y = _labels_index(labels)
    if len(classes) < 2:
        raise InputError(f"training needs at least 2 classes, the samples have {classes}")
    X = samples[feats].to_numpy(dtype="float32")[:, layout.perm]
    n, t, c = X.shape[0], len(layout.dates), len(layout.bands)
    X = X.reshape(n, t, c)
    dev = T.resolve_device(device)
    amp = T.warn_amp_on_cpu(amp, dev)
    groups = samples["group"].to_numpy() if "group" in samples.columns else np.arange(n)
    tr, va = T.grouped_split(y, groups, val_fraction, seed)
    mean = np.nanmean(X[tr], axis=(0, 1))
    std = np.nanstd(X[tr], axis=(0, 1))
    if not np.all(np.isfinite(mean)):
        bad = [b for b, m in zip(layout.bands, mean, strict=True) if not np.isfinite(m)]
        raise InputError(f"band(s) {bad} are NaN in every training sample")
    std = np.where(std > 1e-6, std, 1.0).astype("float32")
    reference = pd.Timestamp(reference_date if reference_date is not None else layout.dates[0])
    days = torch.from_numpy(layout.days(reference))

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(0 if seed is None else int(seed))
        net, arch = _make_net(
            model, kind="pixel", n_classes=len(classes), channels=c, times=t, arch_kw=arch_kw
        )
        nan_ok = arch in _NAN_OK or bool(getattr(net, "accepts_nan", False))
        nan_rows = int(np.isnan(X).any(axis=(1, 2)).sum())
        if nan_rows and not nan_ok:
            raise InputError(
                f"{nan_rows} of {n} samples have NaN features (clouds) and {arch} does not take "
                "NaN: gap-fill the cube first (cube.eoai.gapfill('linear')) and extract again, or "
                "use model='ltae', which leaves missing observations out"
            )
        empty = np.isnan(X).all(axis=(1, 2))
        if empty.any():
            raise InputError(f"{int(empty.sum())} samples have no valid observation; drop them")
        x = (torch.from_numpy(X) - torch.from_numpy(mean.astype("float32"))) / torch.from_numpy(std)
        yt = torch.from_numpy(y)
        augment = _date_dropout(date_dropout) if (date_dropout and nan_ok) else None
        history = T.train(
            net, x, yt, train_idx=tr, val_idx=va, days=days, epochs=int(epochs),
            batch_size=int(batch_size), lr=float(lr), weight_decay=float(weight_decay),
            weights=T.class_weights(y, len(classes), class_weight, classes),
            patience=patience, device=dev, amp=amp, progress=progress, augment=augment,
            desc=f"training {arch}",
        )  # fmt: skip
    params = {
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
        "class_weight": class_weight if not isinstance(class_weight, Mapping) else
        {str(k): v for k, v in class_weight.items()}, "val_fraction": val_fraction,
        "patience": patience, "seed": seed, "amp": amp, "date_dropout": date_dropout,
        "device": str(dev), **{k: v for k, v in arch_kw.items() if _jsonable(v)},
    }  # fmt: skip
    meta = {
        "label_column": samples.attrs.get("eoai:label", "label"),
        "training_cube": samples.attrs.get("eoai:cube", {}),
        "n_samples": int(n),
        "samples_per_class": {
            str(k): int(v) for k, v in labels.value_counts().sort_index().items()
        },
        **dict(metadata or {}),
        "method": f"eoai.ml.deep.fit_network({arch})",
        "parameters": params,
        "n_train": int(len(tr)),
        "n_validation": int(len(va)),
        "history": history,
    }
    return DeepModel(
        net, layout.features, classes, mean=mean, std=std, reference_date=reference,
        allow_nan=nan_ok, device=device, amp=amp, class_names=class_names, colours=colours,
        metadata=meta,
    )  # fmt: skip


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
    except TypeError:
        return False
    return True


def _date_dropout(p: float):
    import torch

    def augment(xb: Any, yb: Any, gen: Any) -> tuple[Any, Any]:
        hide = torch.rand(xb.shape[:2], generator=gen) < p
        keep_one = (~hide & ~torch.isnan(xb).any(-1)).any(1)
        hide &= keep_one[:, None]  # never hide every valid observation of a series
        return xb.masked_fill(hide[..., None], float("nan")), yb

    return augment


def fit(
    samples: pd.DataFrame,
    model: Any = "tempcnn",
    *,
    random_state: int | None = 0,
    **kwargs: Any,
) -> DeepModel:
    """Entry point used by :func:`eoai.ml.fit` for deep-learning models (``random_state`` = seed).

    Examples
    --------
    >>> model = eoai.ml.fit(samples, "ltae", epochs=20)  # doctest: +SKIP
    """
    kwargs.pop("n_jobs", None)
    if "seed" not in kwargs:
        kwargs["seed"] = random_state
    return fit_network(samples, model, **kwargs)


# --------------------------------------------------------------------------------------------
# Patch segmentation
# --------------------------------------------------------------------------------------------


def _label_raster(cube: Any, labels: Any, label: str, nodata: Any) -> tuple[np.ndarray, Any]:
    """Labels as an (y, x) array on the cube grid and the nodata value."""
    if isinstance(labels, xr.DataArray):
        if set(labels.dims) != {"y", "x"}:
            raise InputError(f"the label raster must have dims (y, x), got {labels.dims}")
        if labels.sizes["y"] != cube.sizes["y"] or labels.sizes["x"] != cube.sizes["x"]:
            raise InputError(
                f"the label raster is {dict(labels.sizes)} and the cube {cube.sizes['y']} x "
                f"{cube.sizes['x']}: put the labels on the cube grid (labels.interp_like(cube, "
                "method='nearest') or rasterise polygons by passing them)"
            )
        arr = np.asarray(labels.transpose("y", "x").values)
        if nodata is None:
            nodata = labels.attrs.get("nodata", labels.attrs.get("_FillValue"))
        return arr, nodata
    from .samples import read_labels

    gdf = read_labels(labels)
    if label not in gdf.columns:
        raise InputError(f"the labels have no column {label!r}; columns: {list(gdf.columns)}")
    import rasterio.features

    gbox = cube.odc.geobox
    gdf = gdf[gdf[label].notna()].to_crs(gbox.crs.to_wkt())
    classes = sorted(pd.unique(gdf[label]), key=lambda v: (str(type(v)), v))
    lut = {c: i for i, c in enumerate(classes)}
    burned = rasterio.features.rasterize(
        [(g, lut[v]) for g, v in zip(gdf.geometry, gdf[label], strict=True)],
        out_shape=gbox.shape, transform=gbox.affine, fill=-1, dtype="int32",
    )  # fmt: skip
    arr = np.where(burned >= 0, np.asarray(classes, dtype=object)[np.maximum(burned, 0)], None)
    return arr, None


def fit_segmentation(
    cube: Any,
    labels: Any,
    *,
    label: str = "class",
    nodata: Any = None,
    features: Sequence[str] | None = None,
    model: Any = "unet",
    patch: int = 64,
    patches_per_epoch: int = 64,
    epochs: int = 30,
    batch_size: int = 8,
    lr: float = 2e-3,
    weight_decay: float = 1e-2,
    class_weight: str | Mapping[Any, float] | None = None,
    val_fraction: float = 0.2,
    patience: int | None = 10,
    seed: int | None = 0,
    device: Any = "auto",
    amp: bool | None = None,
    progress: bool = True,
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    colours: Sequence[str] | Mapping[Any, str] | None = None,
    **arch_kw: Any,
) -> SegmentationModel:
    """Train a patch segmentation network (U-Net) on a cube and a label raster or polygons.

    Every feature of the cube (band x date, see :mod:`eoai.ml.features`) is an input channel,
    standardised with the training mean and standard deviation (NaN -> the mean). The labelled
    area of the cube is read into memory; the image is cut into a grid of ``patch`` x ``patch``
    tiles, a share ``val_fraction`` of the labelled tiles is held out for validation (its labels
    never train), and each epoch draws ``patches_per_epoch`` random windows from the rest, flipped
    and rotated at random.

    Parameters
    ----------
    cube
        Dataset / DataArray ``(time, y, x)`` with a CRS.
    labels
        A DataArray ``(y, x)`` of class labels on the cube grid (``nodata`` or NaN = unlabelled),
        or polygons (GeoDataFrame or file) with a ``label`` column, rasterised onto the cube.
    label, nodata
        Class column of polygons; label value meaning "no label" for a raster.
    features
        Feature names to use as channels (default all).
    model
        ``"unet"`` or a ``torch.nn.Module`` mapping ``(batch, channel, y, x)`` to logits
        ``(batch, class, y, x)``; its ``receptive_field`` attribute (pixels) sets the halo.
    patch, patches_per_epoch
        Window size (pixels) and windows drawn per epoch.
    epochs, batch_size, lr, weight_decay, class_weight, val_fraction, patience, seed, device, amp,
    progress, class_names, colours
        As for :func:`fit_network`.
    **arch_kw
        U-Net parameters: ``depth`` (default 3), ``base`` (default 32).

    Returns
    -------
    SegmentationModel

    Examples
    --------
    >>> import eoai.datasets
    >>> cube, truth = eoai.datasets.synthetic_cube((32, 32), freq="60D", cloud_fraction=0, seed=1,
    ...                                            bands=["red", "nir"], breaks=False)
    >>> m = fit_segmentation(cube.drop_vars("scl"), truth["class"], patch=16, epochs=2,
    ...                      depth=1, base=4, progress=False)
    >>> m.halo >= m.net.receptive_field // 2
    True
    """
    import torch

    from . import _deep_train as T
    from .features import as_dataset, feature_array, feature_names

    _check_training_args(epochs, batch_size, lr, val_fraction)
    if int(patch) < 8:
        raise InputError(f"patch must be >= 8 pixels, got {patch}")
    ds = as_dataset(cube)
    feats = list(features) if features is not None else feature_names(ds)
    lab, nodata = _label_raster(ds, labels, label, nodata)
    valid = ~np.asarray(pd.isna(lab), dtype=bool)
    if nodata is not None:
        valid &= lab != nodata
    if not valid.any():
        raise InputError("the labels hold no labelled pixel on the cube")
    classes, yidx = _labels_index(pd.Series(lab[valid]))
    if len(classes) < 2:
        raise InputError(f"training needs at least 2 classes, the labels have {classes}")
    y_img = np.full(lab.shape, T.IGNORE, dtype=np.int64)
    y_img[valid] = yidx
    # read the labelled bounding box only
    rows, cols = np.nonzero(valid)
    r0, r1 = rows.min(), rows.max() + 1
    c0, c1 = cols.min(), cols.max() + 1
    img = feature_array(ds, feats).isel(y=slice(r0, r1), x=slice(c0, c1))
    img = np.asarray(img.transpose("feature", "y", "x").values, dtype="float32")  # fit: in memory
    y_img = y_img[r0:r1, c0:c1]
    h, w = y_img.shape
    p = int(min(patch, h, w))
    if p < 8:
        raise InputError(f"the labelled area ({h} x {w} px) is smaller than 8 pixels")
    mean = np.nanmean(img, axis=(1, 2))
    std = np.nanstd(img, axis=(1, 2))
    if not np.all(np.isfinite(mean)):
        raise InputError("some features are NaN over the whole labelled area; drop them")
    std = np.where(std > 1e-6, std, 1.0).astype("float32")
    norm = np.nan_to_num((img - mean[:, None, None]) / std[:, None, None], nan=0.0)

    rng = np.random.default_rng(seed)
    # validation: a share of the labelled grid tiles
    ty, tx = -(-h // p), -(-w // p)
    tiles = [(i, j) for i in range(ty) for j in range(tx)
             if (y_img[i * p:(i + 1) * p, j * p:(j + 1) * p] != T.IGNORE).any()]  # fmt: skip
    n_val = int(round(val_fraction * len(tiles))) if len(tiles) > 1 else 0
    n_val = min(n_val, len(tiles) - 1)
    val_tiles = [tiles[k] for k in rng.permutation(len(tiles))[:n_val]]
    y_train = y_img.copy()
    for i, j in val_tiles:
        y_train[i * p : (i + 1) * p, j * p : (j + 1) * p] = T.IGNORE
    if not (y_train != T.IGNORE).any():
        raise InputError("no labelled pixel is left for training; lower val_fraction")

    # validation windows: each held-out tile (shifted inside the image), labels of that tile only
    val_pos, val_y = [], []
    for i, j in val_tiles:
        a, b = min(i * p, h - p), min(j * p, w - p)
        inside = np.zeros((h, w), bool)
        inside[i * p : (i + 1) * p, j * p : (j + 1) * p] = True
        val_pos.append((a, b))
        val_y.append(np.where(inside[a : a + p, b : b + p], y_img[a : a + p, b : b + p], T.IGNORE))
    # training windows: patches_per_epoch per epoch, centred on labelled pixels (clipped)
    lab_r, lab_c = np.nonzero(y_train != T.IGNORE)
    n_win = int(patches_per_epoch)
    if n_win < 2:
        raise InputError(f"patches_per_epoch must be >= 2, got {patches_per_epoch}")
    k = rng.integers(0, len(lab_r), size=epochs * n_win)
    pos = np.column_stack(
        [np.clip(lab_r[k] - p // 2, 0, h - p), np.clip(lab_c[k] - p // 2, 0, w - p)]
    )
    n_tr = len(pos)
    norm_t, ytr_t = torch.from_numpy(norm), torch.from_numpy(y_train)
    val_y_t = torch.from_numpy(np.stack(val_y)) if val_y else None

    def take(idx: Any) -> tuple[Any, Any]:
        xs, ys = [], []
        for r in np.asarray(idx).tolist():
            a, b = pos[r] if r < n_tr else val_pos[r - n_tr]
            xs.append(norm_t[:, a : a + p, b : b + p])
            ys.append(ytr_t[a : a + p, b : b + p] if r < n_tr else val_y_t[r - n_tr])
        return torch.stack(xs), torch.stack(ys)

    def augment(xb: Any, yb: Any, gen: Any) -> tuple[Any, Any]:
        rot = int(torch.randint(0, 4, (1,), generator=gen))
        xb, yb = torch.rot90(xb, rot, dims=(-2, -1)), torch.rot90(yb, rot, dims=(-2, -1))
        if bool(torch.randint(0, 2, (1,), generator=gen)):
            xb, yb = torch.flip(xb, dims=(-1,)), torch.flip(yb, dims=(-1,))
        return xb.contiguous(), yb.contiguous()

    dev = T.resolve_device(device)
    amp = T.warn_amp_on_cpu(amp, dev)
    n_classes = len(classes)
    counts_y = y_img[y_img != T.IGNORE]
    weights = T.class_weights(counts_y, n_classes, class_weight, classes)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(0 if seed is None else int(seed))
        net, arch = _make_net(
            model, kind="patch", n_classes=n_classes, channels=len(feats), arch_kw=arch_kw
        )
        history = T.train(
            net, None, None, train_idx=np.arange(n_tr), val_idx=np.arange(n_tr, n_tr + len(val_pos)),
            epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
            weight_decay=float(weight_decay), weights=weights, patience=patience, device=dev,
            amp=amp, progress=progress, augment=augment, take=take,
            epoch_indices=lambda e: np.arange(e * n_win, (e + 1) * n_win),
            eval_batch_size=int(batch_size), desc=f"training {arch}",
        )  # fmt: skip
    meta = {
        "method": f"eoai.ml.deep.fit_segmentation({arch})",
        "training_cube": _describe(ds),
        "n_labelled_pixels": int(valid.sum()),
        "pixels_per_class": {str(c): int((counts_y == i).sum()) for i, c in enumerate(classes)},
        "parameters": {
            "patch": p, "patches_per_epoch": n_win, "epochs": epochs, "batch_size": batch_size,
            "lr": lr, "weight_decay": weight_decay, "val_fraction": val_fraction,
            "val_tiles": len(val_tiles), "patience": patience, "seed": seed, "amp": amp,
            "device": str(dev), **{k: v for k, v in arch_kw.items() if _jsonable(v)},
        },
        "history": history,
    }  # fmt: skip
    if isinstance(labels, xr.DataArray) and all(isinstance(c, int) for c in classes):
        names = labels.attrs.get("class_names")
        cols = labels.attrs.get("class_colours") or labels.attrs.get("colours")
        if class_names is None and names is not None:
            class_names = {c: str(names[c]) for c in classes if 0 <= c < len(names)}
        if colours is None and cols is not None:
            colours = {c: str(cols[c]) for c in classes if 0 <= c < len(cols)}
    return SegmentationModel(
        net, feats, classes, mean=mean, std=std, allow_nan=True, device=device, amp=amp,
        class_names=class_names, colours=colours, metadata=meta,
    )  # fmt: skip


def _describe(ds: Any) -> dict[str, Any]:
    from .samples import describe_cube

    return describe_cube(ds)


# --------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------


def save_network(model: DeepModel, path: str | Path) -> Path:
    """Save a network as its ``state_dict`` (``path``, e.g. ``model.pt``) and ``<path>.json``.

    The JSON holds the architecture and its config, the normalisation, classes, names, colours,
    bands, dates and reference date, and the training metadata. Same files as
    :func:`eoai.ml.save_model`; load them with :func:`load_network` or :func:`eoai.ml.load_model`.

    Examples
    --------
    >>> save_network(model, "tempcnn.pt")  # doctest: +SKIP
    PosixPath('tempcnn.pt')
    """
    from .persist import save_model

    if not isinstance(model, DeepModel):
        raise ModelError(
            f"save_network needs a DeepModel (from fit_network), got {type(model).__name__}"
        )
    return save_model(model, path)


def load_network(
    path_or_url: str | Path,
    *,
    map_location: Any = "cpu",
    device: Any = "auto",
    net: Any = None,
    timeout: float = 60.0,
) -> DeepModel:
    """Load a network saved by :func:`save_network` from a path or an ``http(s)://`` URL.

    The weights are read with ``torch.load(weights_only=True)`` (no code runs from the file);
    ``<path>.json`` (``<url>.json``) describes the network. For a custom ``nn.Module`` pass an
    instance of it as ``net`` to receive the weights.

    Parameters
    ----------
    path_or_url
        The ``.pt`` file or its URL.
    map_location
        Where the tensors are loaded (``torch.load``'s argument).
    device
        Device the model predicts on (``"auto"``: CUDA when available).
    net
        A module of the saved architecture (needed for ``architecture == "custom"``).
    timeout
        Seconds to wait for a URL.

    Raises
    ------
    eoai.errors.InputError
        The file or its JSON is missing or unreadable.
    eoai.errors.ModelError
        The JSON does not describe an eoai network, or the weights do not fit it.

    Examples
    --------
    >>> model = load_network("https://example.org/models/ltae_slovenia.pt")  # doctest: +SKIP
    """
    src = str(path_or_url)
    if src.startswith(("http://", "https://")):
        weights, description = _fetch(src, timeout)
    else:
        path = Path(src)
        from .persist import sidecar_path

        meta = sidecar_path(path)
        if not path.exists():
            raise InputError(f"network file {path} does not exist")
        if not meta.exists():
            raise InputError(
                f"the metadata file {meta} is missing: eoai networks are saved as two files "
                "(weights + JSON); save with eoai.ml.deep.save_network"
            )
        weights, description = path.read_bytes(), json.loads(meta.read_text())
    return _build(weights, description, src, map_location=map_location, device=device, net=net)


def load_saved(path: Path, description: dict[str, Any], *, trusted: bool = False) -> DeepModel:
    """Loader named in the JSON of saved networks, called by :func:`eoai.ml.load_model`.

    Examples
    --------
    >>> model = eoai.ml.load_model("tempcnn.pt")  # doctest: +SKIP
    """
    return _build(Path(path).read_bytes(), description, str(path))


def _fetch(url: str, timeout: float) -> tuple[bytes, dict[str, Any]]:
    import urllib.error
    import urllib.request

    def get(u: str) -> bytes:
        try:
            with urllib.request.urlopen(u, timeout=timeout) as resp:  # noqa: S310 - http(s) only
                return resp.read()
        except (urllib.error.URLError, OSError) as err:
            raise InputError(f"could not download {u}: {err}") from err

    meta = get(url + ".json")
    try:
        description = json.loads(meta)
    except ValueError as err:
        raise InputError(f"{url}.json is not JSON: {err}") from err
    return get(url), description


def _build(
    weights: bytes,
    description: dict[str, Any],
    source: str,
    *,
    map_location: Any = "cpu",
    device: Any = "auto",
    net: Any = None,
) -> DeepModel:
    import io

    import torch

    from .models import build_model

    spec = description.get("network")
    if not isinstance(spec, dict) or "architecture" not in spec:
        raise ModelError(f"{source}: the JSON does not describe an eoai network (no 'network')")
    arch = spec["architecture"]
    if net is None:
        if arch == "custom" or spec.get("config") is None:
            raise ModelError(
                f"{source} holds a custom network ({spec.get('module_class')}); pass an instance "
                "of it as load_network(..., net=MyNet(...)) to receive the weights"
            )
        net = build_model(arch, **spec["config"])
    try:
        state = torch.load(io.BytesIO(weights), map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        raise InputError(f"{source} is not a readable torch state_dict: {err}") from err
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"the weights of {source} do not fit the network: {err}") from err
    cls = SegmentationModel if spec.get("kind") == "patch" else DeepModel
    model = cls(
        net, description["features"], description["classes"], mean=spec["mean"], std=spec["std"],
        reference_date=spec.get("reference_date"), allow_nan=spec.get("allow_nan"),
        batch_size=spec.get("batch_size", 8192), device=device,
        class_names=description.get("class_names"), colours=description.get("colours"),
        metadata=description.get("metadata", {}),
    )  # fmt: skip
    return model
