"""The fitted deep-learning models of eoai.ml (private): pixel-series and patch models.

:class:`DeepModel` (TempCNN, L-TAE and any pixel-series network) and :class:`SegmentationModel`
(U-Net patches) hold a trained torch network with its input layout (bands, dates, scaling) and
follow the :class:`eoai.ml.base.ClassifierModel` contract; the helpers below build networks and
check training arguments for :mod:`eoai.ml.deep` (the public entry points) and its private parts
(``_deep_segment``, ``_deep_io``, ``_deep_fusion``, ``_deep_utae``), which import from here, never
from :mod:`eoai.ml.deep`: the import graph has no cycle.
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

from ..errors import InputError, ModelError
from ._deep_layout import Layout, cube_layout, parse_layout
from .base import ClassifierModel

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
            **(
                {"encoder": {"card": card.to_dict()}}
                if (card := getattr(self.net, "card", None))
                else {}
            ),
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
        tile_multiple = getattr(self, "_tile_multiple", None)
        if tile_multiple:
            return int(tile_multiple)
        if hasattr(self.net, "tile_multiple"):
            return int(self.net.tile_multiple)
        return int(2 ** getattr(self.net, "depth", 0))

    @property
    def halo(self) -> int:
        """Overlap between tiles: half the receptive field plus one down-sampling cell, rounded up
        to a multiple of :attr:`tile_multiple` (an output pixel depends on inputs within half the
        receptive field, offset by at most one pooling cell), unless given as ``halo=``."""
        halo = getattr(self, "_halo", None)
        if halo:
            return int(halo)
        rf = int(getattr(self.net, "receptive_field", 0))
        m = self.tile_multiple
        need = rf // 2 + m
        return int(-(-need // m) * m)

    @property
    def card(self) -> Any:
        """The encoder's :class:`eoai.ml.presto.card.ModelCard` (a U-Net on a pluggable encoder:
        ``fit_segmentation(..., encoder=)``), else ``None``."""
        return getattr(self.net, "card", None)

    def for_cube(self, cube: Any, *, reference_date: Any = None) -> DeepModel:
        """Patch models read their training features; returned unchanged (checked by classify)."""
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Not available: a patch model needs images (see :meth:`predict_proba_image`)."""
        raise ModelError(
            "a U-Net segments images, not pixel rows: classify a cube with "
            "eoai.ml.classify(cube, model) (or call model.predict_proba_image(block))"
        )

    def _image(self, block: np.ndarray) -> np.ndarray:
        """``block`` as a float32 image ``(y, x, feature)`` of this model's features, checked."""
        block = np.asarray(block, dtype="float32")
        if block.ndim != 3 or block.shape[-1] != len(self.features):
            raise ModelError(
                f"expected an image (y, x, {len(self.features)}), got shape {block.shape}"
            )
        return block

    def predict_proba_image(self, block: np.ndarray) -> np.ndarray:
        """Class probabilities ``(y, x, class)`` of an image ``(y, x, feature)``.

        Examples
        --------
        >>> proba = model.predict_proba_image(block)  # doctest: +SKIP
        """
        return self._image_outputs(block, softmax=True)

    def _image_outputs(self, block: np.ndarray, softmax: bool = False) -> np.ndarray:
        """Network outputs ``(y, x, output)`` (softmax-ed or raw) of an image ``(y, x, feature)``."""
        import torch

        block = self._image(block)
        dev = self._device()
        x = (block - self.mean) / self.std
        x = np.nan_to_num(x, nan=0.0)
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(dev)
        with torch.no_grad():
            out = self._logits(xt, None).float()
            if softmax:
                out = torch.softmax(out, dim=1)
            out = out[0].permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(out, dtype="float32")


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


def _make_net(model: Any, *, kind: str, n_classes: int, **shape: Any) -> tuple[Any, str]:
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
    if name in ("unet", "utae", "utt") and kind == "pixel":
        pretty = {"unet": "U-Net", "utae": "U-TAE", "utt": "U-T&T"}[name]
        raise ModelError(
            f"the {pretty} is a patch model: train it on a cube "
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


def _check_training_args(epochs: int, batch_size: int, lr: float, val_fraction: float) -> None:
    if int(epochs) < 1:
        raise InputError(f"epochs must be >= 1, got {epochs}")
    if int(batch_size) < 2:
        raise InputError(f"batch_size must be >= 2, got {batch_size}")
    if not lr > 0:
        raise InputError(f"lr must be > 0, got {lr}")
    if not 0 <= val_fraction < 1:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")


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
