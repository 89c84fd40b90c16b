"""Pluggable image encoders for the U-Net of :mod:`eoai.ml.deep` (private; use ``fit_segmentation``).

``fit_segmentation(cube, labels, encoder=...)`` puts the U-Net decoder
(:class:`eoai.ml.models.EncoderUNet`) on an encoder that honours timm's ``features_only``
contract (:func:`eoai.ml.models.unet.feature_contract`): a ``torch.nn.Module`` of the user's, or
``"timm:<name>"``, created here with ``timm.create_model(name, features_only=True,
pretrained=False, in_chans=<channels>)``. ``encoder_weights=`` is a local ``state_dict`` file of
the encoder, read with ``torch.load(weights_only=True)`` (no code runs from it).

The encoder's input contract is written down as an :class:`eoai.ml.presto.card.ModelCard` (the
same card as Presto's): one :class:`~eoai.ml.presto.card.InputBand` per input channel (the
feature, its units and the standardisation ``(x - mean) / std`` as ``add_by = -mean``,
``divide_by = std``), the pixel size, the dates, and in ``extra`` the patch size, tile multiple
and how NaN is filled; ``architecture`` holds the encoder's source, class, channels and
reductions. The card is the ``network.encoder`` entry of the model's JSON sidecar;
:func:`eoai.ml.load_model` rebuilds the encoder from it (``timm:`` encoders), or takes the module
of a custom one as ``load_model(path, encoder=MyEncoder(...))``.

Examples
--------
>>> from eoai.ml.models.unet import TinyEncoder
>>> enc, source = make_encoder(TinyEncoder(4), channels=4)
>>> source
'custom'
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ModelError

TIMM_PREFIX = "timm:"
INSTALL = "pip install timm (it needs torchvision)"


def make_encoder(encoder: Any, *, channels: int, weights: Any = None) -> tuple[Any, str]:
    """The encoder module (a deep copy of a given one) and its source (``"custom"`` / ``"timm:..."``).

    Raises
    ------
    eoai.errors.ModelError
        timm is not installed, the name is unknown to timm, the module breaks the contract, or
        the weights do not fit it.
    eoai.errors.InputError
        ``encoder`` is neither a module nor ``"timm:<name>"``, or the weights file is unreadable.
    """
    from torch import nn

    if isinstance(encoder, str):
        if not encoder.startswith(TIMM_PREFIX) or len(encoder) == len(TIMM_PREFIX):
            raise InputError(
                f"encoder={encoder!r}: pass 'timm:<name>' (e.g. 'timm:resnet18') or a "
                "torch.nn.Module honouring timm's features_only contract"
            )
        module, source = _timm_encoder(encoder[len(TIMM_PREFIX) :], channels), encoder
    elif isinstance(encoder, nn.Module):
        module, source = copy.deepcopy(encoder), "custom"
    else:
        raise InputError(
            f"encoder must be a torch.nn.Module or 'timm:<name>', got {type(encoder).__name__}"
        )
    check_contract(module, channels)
    if weights is not None:
        load_encoder_weights(module, weights)
    return module, source


def _timm_encoder(name: str, channels: int) -> Any:
    try:
        import timm
    except ImportError:
        raise ModelError(
            f"encoder='timm:{name}' needs the timm package, which is not installed: {INSTALL}; "
            "or pass a torch.nn.Module with the same features_only contract"
        ) from None
    try:
        return timm.create_model(name, features_only=True, pretrained=False, in_chans=channels)
    except (RuntimeError, ValueError, KeyError) as err:
        raise ModelError(f"timm cannot create {name!r} as a features_only encoder: {err}") from None


def check_contract(module: Any, channels: int) -> tuple[list[int], list[int]]:
    """Channels and reductions of ``module``, checked by one forward pass in eval mode.

    Raises
    ------
    eoai.errors.ModelError
        No ``feature_info``, or the forward pass does not take ``channels`` inputs or does not
        return the feature maps ``feature_info`` declares.
    """
    import torch

    from .models.unet import feature_contract

    try:
        chans, reds = feature_contract(module)
    except TypeError as err:
        raise ModelError(str(err)) from None
    side = 2 * reds[-1]
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            feats = module(torch.zeros(1, channels, side, side))
    except RuntimeError as err:
        raise ModelError(
            f"{type(module).__name__} does not take {channels} input channels (the features of "
            f"the cube, every band x date): {str(err).splitlines()[0]}; build it with "
            f"in_chans={channels} or select features="
        ) from None
    finally:
        module.train(was_training)
    got = [(int(f.shape[1]), side // int(f.shape[-1])) for f in feats]
    if got != list(zip(chans, reds, strict=True)):
        raise ModelError(
            f"{type(module).__name__} returned feature maps of (channels, reduction) {got} where "
            f"its feature_info declares {list(zip(chans, reds, strict=True))}"
        )
    return chans, reds


def load_encoder_weights(module: Any, weights: Any) -> None:
    """Load a local ``state_dict`` file into ``module`` (``weights_only=True``)."""
    import torch

    path = Path(weights)
    if not path.is_file():
        raise InputError(f"encoder_weights={str(weights)!r} is not a file (a saved state_dict)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        raise InputError(
            f"{path} is not a readable torch state_dict ({type(err).__name__}); it must hold "
            "tensors only (torch.save(encoder.state_dict(), path))"
        ) from None
    if not isinstance(state, dict):
        raise InputError(f"{path} holds a {type(state).__name__}, not a state_dict")
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(
            f"the weights of {path} do not fit the encoder: {str(err).splitlines()[0]}"
        ) from None


def encoder_card(
    module: Any,
    *,
    source: str,
    features: list[str],
    mean: np.ndarray,
    std: np.ndarray,
    cube: Any,
    patch: int,
    weights: Any = None,
) -> Any:
    """The :class:`~eoai.ml.presto.card.ModelCard` of a trained U-Net encoder (module docstring)."""
    from ._deep_layout import parse_layout
    from .models.unet import feature_contract
    from .presto.card import InputBand, ModelCard

    chans, reds = feature_contract(module)
    try:
        layout = parse_layout(features)
        dates: list[str] = list(layout.dates)
    except ModelError:  # static features
        dates = []
    bands = []
    for f, m, s in zip(
        features, np.asarray(mean, "float64"), np.asarray(std, "float64"), strict=True
    ):
        var = f.rsplit("_", 1)[0] if dates else f
        units = (
            str(getattr(cube.get(var), "attrs", {}).get("units", ""))
            if hasattr(cube, "get")
            else ""
        )
        bands.append(
            InputBand(
                name=f,
                source=var,
                group="image",
                units=units,
                add_by=-float(m),
                divide_by=float(s),
                temporal=bool(dates),
            )  # fmt: skip
        )
    try:
        res = float(abs(cube.odc.geobox.resolution.x))
    except Exception:  # noqa: BLE001 - no geobox
        res = float("nan")
    reference = source
    if weights is not None:
        reference += f", weights {Path(weights).name} (sha256 {load_sha(weights)})"
    return ModelCard(
        name=f"U-Net encoder {source if source != 'custom' else type(module).__name__}",
        reference=reference,
        licence="see the encoder's source",
        bands=tuple(bands),
        time_step="date stacked as channels" if dates else "none",
        max_steps=len(dates),
        pretrained_steps=len(dates),
        resolution_m=res,
        embedding_size=int(chans[-1]),
        architecture={
            "source": source,
            "module_class": f"{type(module).__module__}.{type(module).__qualname__}",
            "channels": chans,
            "reduction": reds,
        },
        extra={
            "patch_size": int(patch),
            "tile_multiple": int(reds[-1]),
            "dates": dates,
            "input": "every feature (band x date) one channel, (x + add_by) / divide_by, NaN -> 0",
        },
    )


def load_sha(path: Any) -> str:
    """The first 16 hex digits of a file's sha256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def rebuild_encoder(spec: dict[str, Any], encoder: Any, source_name: str) -> tuple[Any, Any]:
    """The encoder module of a saved model: ``encoder`` (a custom module) or re-created by timm."""
    from torch import nn

    from .presto.card import ModelCard

    card = ModelCard.from_dict(spec.get("card"))
    source = str(card.architecture.get("source", "custom"))
    n_in = len(card.bands)
    if encoder is not None:
        if not isinstance(encoder, nn.Module):
            raise InputError(f"encoder must be a torch.nn.Module, got {type(encoder).__name__}")
        module = copy.deepcopy(encoder)
    elif source.startswith(TIMM_PREFIX):
        module = _timm_encoder(source[len(TIMM_PREFIX) :], n_in)
    else:
        raise ModelError(
            f"{source_name} holds a U-Net on a custom encoder "
            f"({card.architecture.get('module_class')}): pass a module of that class built for "
            f"{n_in} input channels, load_model(path, encoder=MyEncoder(...)); its weights are "
            "in the file"
        )
    chans, reds = check_contract(module, n_in)
    want = (card.architecture.get("channels"), card.architecture.get("reduction"))
    if [chans, reds] != list(want):
        raise ModelError(
            f"the encoder gives channels {chans} and reductions {reds}, the saved one "
            f"{want[0]} and {want[1]}: pass a module built like the one trained"
        )
    return module, card
