"""Saving and loading networks for :mod:`eoai.ml.deep` (private; use ``eoai.ml.deep``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelError
from ._deep_model import DeepModel, SegmentationModel

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
    encoder: Any = None,
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
    encoder
        For a U-Net on a custom encoder (``fit_segmentation(..., encoder=module)``): a module of
        the encoder's class, built like the one trained; it receives the saved weights.
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
        from .persist import read_sidecar

        if not path.exists():
            raise InputError(f"network file {path} does not exist")
        weights, description = path.read_bytes(), read_sidecar(path, required=())
    return _build(
        weights, description, src, map_location=map_location, device=device, net=net,
        encoder=encoder,
    )  # fmt: skip


def load_saved(
    path: Path, description: dict[str, Any], *, trusted: bool = False, encoder: Any = None
) -> DeepModel:
    """Loader named in the JSON of saved networks, called by :func:`eoai.ml.load_model`.

    ``encoder``: the module of a custom U-Net encoder (see :func:`load_network`).

    Examples
    --------
    >>> model = eoai.ml.load_model("tempcnn.pt")  # doctest: +SKIP
    """
    return _build(Path(path).read_bytes(), description, str(path), encoder=encoder)


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
        raise InputError(
            f"{url}.json is not JSON ({err}): it is corrupt or truncated, or the URL does not "
            "serve eoai metadata; check the URL (the .pt file and its .pt.json sit side by side)"
        ) from None
    if not isinstance(description, dict):
        raise InputError(f"{url}.json holds a JSON {type(description).__name__}, not an object")
    return get(url), description


def _build(
    weights: bytes,
    description: dict[str, Any],
    source: str,
    *,
    map_location: Any = "cpu",
    device: Any = "auto",
    net: Any = None,
    encoder: Any = None,
) -> DeepModel:
    import io

    import torch

    from .models import build_model

    spec = description.get("network")
    fix = (
        f"restore {source}.json from where the model came from, or save the network again with "
        "eoai.ml.deep.save_network"
    )
    if not isinstance(spec, dict) or "architecture" not in spec:
        raise ModelError(
            f"{source}: the JSON does not describe an eoai network (no 'network'); {fix}"
        )
    missing = [k for k in ("features", "classes") if k not in description]
    missing += [f"network.{k}" for k in ("mean", "std") if k not in spec]
    if missing:
        raise InputError(f"{source}.json lacks {', '.join(map(repr, missing))}; {fix}")
    arch = spec["architecture"]
    if net is None and arch == "encoder_unet":  # the decoder on a pluggable encoder
        from ._deep_encoder import rebuild_encoder
        from .models import EncoderUNet

        enc, card = rebuild_encoder(spec.get("encoder") or {}, encoder, source)
        try:
            net = EncoderUNet(enc, **(spec.get("config") or {}))
        except (TypeError, ValueError) as err:
            raise ModelError(
                f"{source}.json describes a U-Net decoder that cannot be built ({err}); {fix}"
            ) from None
        net.card = card
    elif encoder is not None:
        raise InputError(
            f"encoder= is for a U-Net on a pluggable encoder; {source} holds a {arch!r} network"
        )
    if net is None:
        if arch == "custom" or spec.get("config") is None:
            raise ModelError(
                f"{source} holds a custom network ({spec.get('module_class')}); pass an instance "
                "of it as load_network(..., net=MyNet(...)) to receive the weights"
            )
        try:
            net = build_model(arch, **spec["config"])
        except (TypeError, ValueError) as err:
            raise ModelError(
                f"{source}.json describes a {arch!r} network that cannot be built ({err}); {fix}"
            ) from None
    try:
        state = torch.load(io.BytesIO(weights), map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        raise InputError(
            f"{source} is not a readable torch state_dict ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}): it is corrupt or truncated, or "
            "holds objects other than tensors (weights_only=True refuses to unpickle code); "
            "restore the file, or save the network again with eoai.ml.deep.save_network"
        ) from None
    if not isinstance(state, dict):
        raise InputError(
            f"{source} holds a {type(state).__name__}, not a state_dict; save the network with "
            "eoai.ml.deep.save_network"
        )
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"the weights of {source} do not fit the network: {err}") from err
    extra: dict[str, Any] = {}
    cls: type[DeepModel]
    if spec.get("kind") == "patch":
        cls = SegmentationModel
        if getattr(net, "takes_series", False):  # U-TAE: (time, band, y, x) series
            from ._deep_utae import SeriesSegmentationModel as cls
        elif getattr(net, "takes_fine_and_series", False):  # U-T&T: fine image + series
            from ._deep_utt import MultiResSegmentationModel as cls
        extra = {"halo": spec.get("halo"), "tile_multiple": spec.get("tile_multiple")}
    elif spec.get("kind") == "patchfusion":
        from ._deep_patchfusion import PatchFusionModel as cls
    elif spec.get("kind") == "fusion":
        from ._deep_fusion import FusionModel

        cls = FusionModel
    else:
        cls = DeepModel
    model = cls(
        net, description["features"], description["classes"], mean=spec["mean"], std=spec["std"],
        reference_date=spec.get("reference_date"), allow_nan=spec.get("allow_nan"),
        batch_size=spec.get("batch_size", 2048), device=device,
        class_names=description.get("class_names"), colours=description.get("colours"),
        metadata=description.get("metadata", {}), **extra,
    )  # fmt: skip
    return model
