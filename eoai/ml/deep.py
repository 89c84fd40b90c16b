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
  tiled with a halo (``dask.array.map_overlap``) so tiles join without seams.

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

import copy
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InputError, ModelError
from ._deep_layout import Layout, cube_layout, parse_layout
from .base import ClassifierModel

__all__ = [
    "DeepModel",
    "SegmentationModel",
    "SeriesSegmentationModel",
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
        batch_size: int = 2048,
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
        x = torch.from_numpy(self.layout.grid(X))
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
        return self._outputs(X, len(self.classes), softmax=True)

    def _outputs(self, X: np.ndarray, n_out: int, softmax: bool = False) -> np.ndarray:
        """Network outputs ``(n, n_out)`` (softmax-ed or raw) of features ``X``, in batches."""
        import torch

        dev = self._device()
        x = self._tensor(X)
        if not self.allow_nan and bool(torch.isnan(x).any()):
            raise ModelError(
                f"{self.architecture} does not take NaN features: gap-fill the cube "
                "(cube.eoai.gapfill('linear', dates=model.dates)) before classifying"
            )
        days = torch.from_numpy(self.days).to(dev) if self.uses_days else None
        out = np.empty((x.shape[0], n_out), dtype="float32")
        with torch.no_grad():
            for k in range(0, x.shape[0], self.batch_size):
                xb = x[k : k + self.batch_size].to(dev, non_blocking=True)
                logits = self._logits(xb, days).float()
                if logits.shape != (xb.shape[0], n_out):
                    raise ModelError(
                        f"the network returned shape {tuple(logits.shape)}, expected "
                        f"({xb.shape[0]}, {n_out}) outputs"
                    )
                out[k : k + xb.shape[0]] = (
                    (torch.softmax(logits, dim=1) if softmax else logits).cpu().numpy()
                )
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
            "tile_multiple": int(getattr(self, "tile_multiple", 1)),
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
            f"{self.class_names}, {_plural(len(self.bands), 'band')} x "
            f"{_plural(len(self.layout.dates), 'date')}>"
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


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

    def __init__(
        self, *args: Any, halo: int | None = None, tile_multiple: int | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self._halo = None if halo is None else int(halo)
        self._tile_multiple = None if tile_multiple is None else int(tile_multiple)
        if self._halo is None and not hasattr(self.net, "receptive_field"):
            raise ModelError(
                f"{type(self.net).__name__} has no receptive_field attribute: pass halo= (pixels "
                "of overlap between tiles, at least half the receptive field of the network)"
            )
        if self._halo is not None and self._halo < 1:
            raise InputError(f"halo must be >= 1 pixel, got {halo}")

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
        """Down-sampling factor of the network (``2**depth`` for the U-Net; ``tile_multiple=`` or
        the network's ``tile_multiple`` attribute for others, e.g. 32 for most encoders)."""
        if getattr(self, "_tile_multiple", None):
            return int(self._tile_multiple)
        if hasattr(self.net, "tile_multiple"):
            return int(self.net.tile_multiple)
        return int(2 ** getattr(self.net, "depth", 0))

    @property
    def halo(self) -> int:
        """Overlap between tiles: half the receptive field plus one down-sampling cell, rounded up
        to a multiple of :attr:`tile_multiple` (an output pixel depends on inputs within half the
        receptive field, offset by at most one pooling cell), unless given as ``halo=``."""
        if getattr(self, "_halo", None):
            return int(self._halo)
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
            f"model must be 'tempcnn', 'ltae', 'unet', 'utae' or a torch.nn.Module, got "
            f"{type(model).__name__}"
        )
    name = model.lower()
    if name in ("unet", "utae") and kind == "pixel":
        raise ModelError(
            f"the {'U-Net' if name == 'unet' else 'U-TAE'} is a patch model: train it on a cube "
            f"and a label raster with eoai.ml.deep.fit_segmentation(cube, labels, model={name!r}) "
            "(pixel samples have no spatial context)"
        )
    if name in ("tempcnn", "ltae", "fusion") and kind == "patch":
        raise ModelError(
            f"{name} classifies pixel series: train it with fit_network(samples, {name!r})"
        )
    arch: dict[str, Any] = {"n_classes": n_classes}
    if name == "tempcnn":
        arch.update(in_channels=shape["channels"], n_times=shape["times"])
    elif name == "ltae":
        arch.update(in_channels=shape["channels"])
    elif name in ("unet", "utae", "fusion"):  # utae: channels = bands (the dates stay a time axis)
        arch.update(in_channels=shape["channels"])
    arch.update(shape.get("arch_kw", {}))
    try:
        return build_model(name, **arch), name
    except (TypeError, ValueError) as err:  # unknown or inconsistent parameters
        raise InputError(f"bad architecture parameters for {name}: {err}") from None


#: Training defaults of :func:`fit_network` per architecture (a parameter left ``None`` takes
#: its value here), chosen by measurement against the random forest (benchmarks/README.md, "Deep
#: learning"): L-TAE trains on every sample (no validation split) with augmentation, label
#: smoothing and the mean of its last 10 epochs' weights (Slovenia 5-fold OA 0.752 -> 0.757,
#: forest 0.750). TempCNN keeps early stopping on a grouped validation split without
#: augmentation, in batches of 64 (issue #16: 4x the optimiser steps of batches of 256; Slovenia
#: 5-fold OA 0.733 -> 0.756, forest 0.750 raw / 0.775 gap-filled; Mato Grosso 0.849 -> 0.852,
#: forest 0.848). Training it on every sample measured lower on Slovenia (L-TAE's recipe 0.707;
#: 20 epochs, batches of 64, label smoothing 0.1, mean of the last 5 epochs 0.688) but is better
#: on Mato Grosso (0.861) and on small tables of few polygons (benchmarks/README.md): pass
#: ``val_fraction=0, epochs=20, label_smoothing=0.1, average_last=5`` there.
TRAINING_DEFAULTS: dict[str, dict[str, Any]] = {
    "ltae": dict(epochs=40, val_fraction=0.0, date_dropout=0.2, noise=0.05, shift=1,
                 label_smoothing=0.1, average_last=10, batch_size=256),
    "tempcnn": dict(epochs=40, val_fraction=0.2, date_dropout=0.0, noise=0.0, shift=0,
                    label_smoothing=0.0, average_last=0, batch_size=64),
    # fusion (issue #15): L-TAE branches by default, so L-TAE's recipe
    "fusion": dict(epochs=40, val_fraction=0.0, date_dropout=0.2, noise=0.05, shift=1,
                   label_smoothing=0.1, average_last=10, batch_size=256),
    "custom": dict(epochs=50, val_fraction=0.2, date_dropout=0.0, noise=0.0, shift=0,
                   label_smoothing=0.0, average_last=0, batch_size=256),
}  # fmt: skip


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
) -> DeepModel:
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

        ``epochs``, ``val_fraction``, ``date_dropout``, ``noise``, ``shift``, ``label_smoothing``
        and ``average_last`` left ``None`` take the architecture's value in
        :data:`TRAINING_DEFAULTS` (L-TAE: 40 epochs on every sample, date dropout 0.2, noise
        0.05, shift 1, label smoothing 0.1, mean of the last 10 epochs; TempCNN: 40 epochs,
        custom modules: 50, both with early stopping on a 0.2 validation split and no
        augmentation; batches of 64 for TempCNN, 256 for the others). For a small table of few
        polygons TempCNN does better on every sample: ``val_fraction=0, epochs=20,
        label_smoothing=0.1, average_last=5``.
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
    fusion_kw = {}
    if name == "fusion":
        fusion_kw = {k: arch_kw.pop(k) for k in ("encoder", "encoder_kw") if k in arch_kw}
        aux_weight = float(arch_kw.pop("aux_weight", 0.5))
        if not aux_weight >= 0:
            raise InputError(f"aux_weight must be >= 0, got {aux_weight}")
    else:
        aux_weight = 0.0
    given = dict(epochs=epochs, val_fraction=val_fraction, date_dropout=date_dropout, noise=noise,
                 shift=shift, label_smoothing=label_smoothing, average_last=average_last,
                 batch_size=batch_size)  # fmt: skip
    chosen = {k: TRAINING_DEFAULTS.get(name, TRAINING_DEFAULTS["custom"])[k] if v is None else v
              for k, v in given.items()}  # fmt: skip
    epochs, val_fraction, date_dropout = (
        chosen["epochs"],
        chosen["val_fraction"],
        chosen["date_dropout"],
    )
    noise, shift, label_smoothing = chosen["noise"], chosen["shift"], chosen["label_smoothing"]
    average_last, batch_size = chosen["average_last"], chosen["batch_size"]
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
    feats = sample_features(samples, features, target)
    if name == "fusion":
        from ._deep_fusion import split_sources

        split_sources(feats)
    layout = parse_layout(feats, complete=name != "fusion")
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
        "n_train": int(len(tr)),
        "n_validation": int(len(va)),
        "history": history,
    }
    cls: Any = DeepModel
    if arch == "fusion":
        from ._deep_fusion import FusionModel as cls
    if regression:
        from ._deep_regress import DeepRegressor

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


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
    except TypeError:
        return False
    return True


def _ensemble_of(nets: list[Any], arch: str) -> Any:
    """One module averaging the probabilities of ``nets`` (built-in architectures only)."""
    from .models import Ensemble, GridEnsemble

    if arch not in ("tempcnn", "ltae"):
        raise InputError(
            f"ensemble > 1 needs a built-in architecture ('tempcnn', 'ltae'), not {arch}: train "
            "the members yourself and wrap them"
        )
    return (GridEnsemble if arch in _GRID_BOUND else Ensemble).of(nets)


def _band_scaling(X: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-band centre and scale of training series ``X`` (n, time, band), NaN ignored.

    ``"standard"``: mean and standard deviation; ``"robust"``: median and interquartile range /
    1.349 (the standard deviation of a normal distribution; heavy tails do not inflate it).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bands are reported by the caller
        if scaling == "robust":
            q1, centre, q3 = np.nanpercentile(X, [25, 50, 75], axis=(0, 1))
            scale = (q3 - q1) / 1.349
            sd = np.nanstd(X, axis=(0, 1))
            scale = np.where(scale > 1e-6, scale, sd)  # e.g. a band that is mostly constant
        else:
            centre, scale = np.nanmean(X, axis=(0, 1)), np.nanstd(X, axis=(0, 1))
    return np.asarray(centre, dtype="float64"), np.asarray(scale, dtype="float64")


def _augmentation(*, date_dropout: float, noise: float, shift: int):
    """Training-batch augmentation ``(xb, yb, generator) -> (xb, yb)``, or ``None`` if none.

    In this order: ``shift`` rolls each series by a random whole number of dates in
    ``[-shift, shift]`` with the edge dates repeated (temporal jitter); ``noise`` adds Gaussian
    noise of that standard deviation (in standardised units) to every value; ``date_dropout``
    hides each observation (NaN) with that probability, never every valid one of a series.
    """
    import torch

    if not (date_dropout or noise or shift):
        return None

    def augment(xb: Any, yb: Any, gen: Any) -> tuple[Any, Any]:
        if shift:
            b, t = xb.shape[:2]
            k = torch.randint(-shift, shift + 1, (b, 1), generator=gen)
            src = (torch.arange(t)[None, :] - k).clamp(0, t - 1)
            xb = torch.gather(xb, 1, src[..., None].expand(-1, -1, xb.shape[2]))
        if noise:
            xb = xb + noise * torch.randn(xb.shape, generator=gen)
        if date_dropout:
            hide = torch.rand(xb.shape[:2], generator=gen) < date_dropout
            keep_one = (~hide & ~torch.isnan(xb).any(-1)).any(1)
            hide &= keep_one[:, None]  # never hide every valid observation of a series
            xb = xb.masked_fill(hide[..., None], float("nan"))
        return xb, yb

    return augment


def fit(
    samples: pd.DataFrame,
    model: Any = "tempcnn",
    *,
    seed: int | None = 0,
    **kwargs: Any,
) -> DeepModel:
    """Entry point used by :func:`eoai.ml.fit` for deep-learning models.

    Examples
    --------
    >>> model = eoai.ml.fit(samples, "ltae", epochs=20)  # doctest: +SKIP
    """
    kwargs.pop("threads", None)  # torch's own threads (torch.set_num_threads) are used
    return fit_network(samples, model, seed=seed, **kwargs)


from ._deep_io import load_network, load_saved, save_network  # noqa: E402
from ._deep_segment import fit_segmentation  # noqa: E402

if TYPE_CHECKING:
    from ._deep_utae import SeriesSegmentationModel


def __getattr__(name: str) -> Any:
    # lazy, so that eoai.ml._deep_utae (which imports this module) may be imported first
    if name == "SeriesSegmentationModel":
        from ._deep_utae import SeriesSegmentationModel

        return SeriesSegmentationModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
