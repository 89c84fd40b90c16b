"""A Presto encoder with its model card; loading and saving (weights + ``<file>.json`` sidecar).

Files follow :mod:`eoai.ml.persist`: the weights are a plain tensor ``state_dict`` read with
``torch.load(..., weights_only=True)`` (no code runs from the file) and the JSON sidecar
``<file>.json`` holds the model card (the input contract, :mod:`eoai.ml.presto.card`), the format and
the loader (``eoai.ml.presto.model:load_saved``, so :func:`eoai.ml.load_model` opens it too).
A weights file without that sidecar, such as the authors' ``default_model.pt``, is refused unless
the card is given explicitly (``card=PRESTO_CARD``): eoai cannot know what inputs an arbitrary file
expects.

Examples
--------
>>> from eoai.ml.presto import PRESTO_CARD, load_encoder
>>> model = load_encoder("default_model.pt", card=PRESTO_CARD)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError, ModelError
from .card import ModelCard, check_card

FORMAT = "torch-state-dict"
LOADER = "eoai.ml.presto.model:load_saved"


class PrestoModel:
    """A Presto encoder (torch, eval mode, CPU) and its :class:`~eoai.ml.presto.card.ModelCard`.

    Parameters
    ----------
    encoder
        A :class:`eoai.ml.presto.encoder.PrestoEncoder`.
    card
        Its input contract.
    source
        Where the weights came from (a path), for provenance.
    decoder
        Its masked-auto-encoding decoder (:class:`eoai.ml.presto.encoder.PrestoDecoder`), when
        known (the published weights, :func:`eoai.ml.presto.pretrain_presto`); None otherwise.
        Embedding does not use it; :func:`eoai.ml.presto.pretrain_presto` continues from it.
    metadata
        How the model was made (pre-training history), JSON-ready.

    Examples
    --------
    >>> from eoai.ml.presto.encoder import PrestoEncoder
    >>> from eoai.ml.presto.card import PRESTO_CARD
    >>> m = PrestoModel(PrestoEncoder(), PRESTO_CARD)
    >>> m.card.embedding_size
    128
    """

    def __init__(
        self,
        encoder: Any,
        card: ModelCard,
        source: str = "",
        decoder: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.encoder = encoder.eval()
        self.card = check_card(card)
        self.source = str(source)
        self.decoder = decoder.eval() if decoder is not None else None
        self.metadata = dict(metadata or {})

    def weights_hash(self) -> str:
        """sha256 of the weights (tensor bytes in key order): names the model in dask graphs."""
        h = hashlib.sha256()
        for k, v in self.encoder.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def __dask_tokenize__(self) -> tuple:
        if not hasattr(self, "_token"):
            self._token = ("presto", self.weights_hash(), self.card.to_json())
        return self._token

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_token", None)
        return state

    def embed_arrays(
        self,
        x: np.ndarray,
        mask: np.ndarray | None = None,
        dynamic_world: np.ndarray | None = None,
        latlon: np.ndarray | None = None,
        month: np.ndarray | None = None,
        *,
        batch_size: int = 2048,
    ) -> np.ndarray:
        """Embeddings ``(n, 128)`` float32 of ``n`` normalised series.

        Parameters
        ----------
        x
            ``(n, T, 17)`` normalised channels (:func:`eoai.ml.presto.card.normalise` of the
            authors' 18 raw channels). NaN values are masked.
        mask
            ``(n, T, 17)`` bool, True = missing (ORed with ``isnan(x)``); default none.
        dynamic_world
            ``(n, T)`` classes 0-8, 9 = missing (default all missing).
        latlon
            ``(n, 2)`` latitude, longitude in degrees (required).
        month
            ``(n, T)`` calendar month 0-11 of each step (required).
        batch_size
            Series per forward pass.

        Raises
        ------
        eoai.errors.InputError
            Shapes do not agree, months are outside 0-11, classes outside 0-9, too many steps.

        Examples
        --------
        >>> from eoai.ml.presto.encoder import PrestoEncoder
        >>> from eoai.ml.presto.card import PRESTO_CARD
        >>> m = PrestoModel(PrestoEncoder(), PRESTO_CARD)
        >>> m.embed_arrays(np.zeros((4, 2, 17)), latlon=np.zeros((4, 2)),
        ...                month=np.array([[0, 1]] * 4)).shape
        (4, 128)
        """
        import torch

        x = np.asarray(x, dtype="float32")
        if x.ndim != 3 or x.shape[-1] != len(self.card.bands):
            raise InputError(
                f"x must be (series, steps, {len(self.card.bands)}) normalised channels, got "
                f"shape {x.shape}; normalise the authors' 18 raw channels with "
                "eoai.ml.presto.normalise"
            )
        n, t, _ = x.shape
        if t > self.card.max_steps:
            raise InputError(f"{t} steps; {self.card.name} takes at most {self.card.max_steps}")
        m = np.isnan(x) if mask is None else (np.asarray(mask, bool) | np.isnan(x))
        if m.shape != x.shape:
            raise InputError(f"mask has shape {m.shape}, expected {x.shape}")
        dw = np.full((n, t), 9) if dynamic_world is None else np.asarray(dynamic_world)
        if latlon is None or month is None:
            raise InputError("embed_arrays needs latlon (n, 2) and month (n, steps)")
        latlon = np.asarray(latlon, dtype="float32")
        month = np.broadcast_to(np.asarray(month), (n, t))
        if dw.shape != (n, t) or latlon.shape != (n, 2):
            raise InputError(
                f"dynamic_world must be ({n}, {t}) and latlon ({n}, 2); got {dw.shape}, "
                f"{latlon.shape}"
            )
        if month.size and (month.min() < 0 or month.max() > 11):
            raise InputError("month holds calendar months 0 (January) to 11 (December)")
        if dw.size and (dw.min() < 0 or dw.max() > 9):
            raise InputError("dynamic_world holds classes 0-8, or 9 for missing")
        out = np.empty((n, self.card.embedding_size), dtype="float32")
        xt = torch.from_numpy(np.where(m, 0, x).astype("float32"))
        with torch.inference_mode():
            for s in range(0, n, batch_size):
                e = slice(s, s + batch_size)
                out[e] = self.encoder(
                    xt[e], torch.from_numpy(m[e]), torch.from_numpy(dw[e].astype("int64")),
                    torch.from_numpy(latlon[e]), torch.from_numpy(month[e].astype("int64")),
                ).numpy()  # fmt: skip
        return out

    def __repr__(self) -> str:
        return f"<PrestoModel {self.card.name}: {self.card.embedding_size}-d, from {self.source or 'memory'}>"


def _encoder_state(state: Any, src: str) -> dict[str, Any]:
    """The encoder's tensors: ``encoder.*`` keys of a full Presto state dict, or an encoder's."""
    if not isinstance(state, dict) or not state:
        raise ModelError(f"{src} holds no state dict (got {type(state).__name__})")
    if any(k.startswith("encoder.") for k in state):
        return {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    return dict(state)


def _build(weights: bytes, card: ModelCard, src: str) -> PrestoModel:
    import torch

    from .encoder import PrestoEncoder

    try:
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds; all mean "not weights"
        raise InputError(
            f"{src} is not a torch weights file readable with weights_only=True "
            f"({type(err).__name__}: {err}); it is corrupt, or holds objects other than tensors"
        ) from err
    dec_state = (
        {k[len("decoder.") :]: v for k, v in state.items() if k.startswith("decoder.")}
        if isinstance(state, dict)
        else {}
    )
    state = _encoder_state(state, src)
    enc = PrestoEncoder(**card.architecture)
    dec = None
    try:
        enc.load_state_dict(state, strict=True)
        if dec_state:
            dec = _new_decoder(enc, card)
            dec.load_state_dict(dec_state, strict=True)
            dec.channel_embeddings = enc.channel_embed  # shared, as in the reference model
    except RuntimeError as err:
        raise ModelError(
            f"the weights in {src} do not fit the architecture of the model card "
            f"({card.architecture}): {str(err).splitlines()[0]}"
        ) from err
    return PrestoModel(enc, card, src, decoder=dec)


def load_encoder(path: str | Path, *, card: ModelCard | dict | None = None) -> PrestoModel:
    """Load a Presto encoder with its model card.

    Parameters
    ----------
    path
        A weights file: one written by :func:`save_encoder` (card in ``<path>.json``), or a plain
        Presto state dict (the authors' ``default_model.pt``: encoder and decoder, the decoder
        kept as ``model.decoder`` for :func:`eoai.ml.presto.pretrain_presto`), which needs
        ``card``.
    card
        The input contract, for a file without a sidecar (``eoai.ml.presto.PRESTO_CARD`` for the
        published weights). Given with a sidecar, it must agree with it.

    Returns
    -------
    PrestoModel

    Raises
    ------
    eoai.errors.InputError
        The file does not exist or is not a weights-only torch file.
    eoai.errors.ModelError
        No card (no sidecar and none given), the given card disagrees with the sidecar, or the
        weights do not fit the card's architecture.

    Examples
    --------
    >>> load_encoder("default_model.pt")  # doctest: +SKIP
    Traceback (most recent call last):
    eoai.errors.ModelError: default_model.pt has no model card ...
    """
    from .._sidecar import read_sidecar, sidecar_path

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Presto weights file {path} does not exist")
    stored = None
    if sidecar_path(path).exists():
        desc = read_sidecar(path, required=("loader", "model_card"))
        stored = ModelCard.from_dict(desc["model_card"])
    if card is not None:
        card = check_card(card)
        if stored is not None and card != stored:
            raise ModelError(
                f"the card given for {path.name} differs from the one stored in "
                f"{sidecar_path(path).name}; omit card= to use the stored one"
            )
    elif stored is not None:
        card = stored
    else:
        raise ModelError(
            f"{path.name} has no model card (no {sidecar_path(path).name} beside it), so eoai "
            "cannot check what inputs it expects. If it is the published Presto encoder "
            "(nasaharvest/presto data/default_model.pt), pass card=eoai.ml.presto.PRESTO_CARD; "
            "then eoai.ml.presto.save_encoder(model, 'presto.pt') stores the card with the weights"
        )
    return _build(path.read_bytes(), card, str(path))


def save_encoder(model: PrestoModel, path: str | Path) -> Path:
    """Save the encoder's ``state_dict`` to ``path`` and its card to ``<path>.json``.

    A model with a decoder (pre-trained) is saved as the published file is (``encoder.*`` and
    ``decoder.*`` keys), so that :func:`load_encoder` gives both back and pre-training can go on.

    Examples
    --------
    >>> import tempfile, os
    >>> from eoai.ml.presto.encoder import PrestoEncoder
    >>> from eoai.ml.presto.card import PRESTO_CARD
    >>> p = save_encoder(PrestoModel(PrestoEncoder(), PRESTO_CARD),
    ...                  os.path.join(tempfile.mkdtemp(), "presto.pt"))
    >>> load_encoder(p).card == PRESTO_CARD
    True
    """
    import torch

    import eoai

    from .._sidecar import sidecar_path

    if not isinstance(model, PrestoModel):
        raise ModelError(
            f"save_encoder needs a PrestoModel (load_encoder), got {type(model).__name__}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.encoder.state_dict().items()}
    if model.decoder is not None:
        state = {f"encoder.{k}": v for k, v in state.items()}
        state.update(
            {f"decoder.{k}": v.detach().cpu() for k, v in model.decoder.state_dict().items()}
        )
    torch.save(state, path)
    desc = {
        "kind": "encoder",
        "format": FORMAT,
        "loader": LOADER,
        "model_card": model.card.to_dict(),
        "weights_sha256": model.weights_hash(),
        "source": model.source,
        "decoder": model.decoder is not None,
        "metadata": model.metadata,
        "versions": {"eoai": eoai.__version__, "torch": torch.__version__},
    }
    sidecar_path(path).write_text(json.dumps(desc, indent=2))
    return path


def load_saved(path: Path, description: dict[str, Any], *, trusted: bool = False) -> PrestoModel:
    """Loader named in the sidecar, called by :func:`eoai.ml.load_model` (weights only: no pickle).

    Examples
    --------
    >>> eoai.ml.load_model("presto.pt")  # doctest: +SKIP
    <PrestoModel ...>
    """
    if description.get("format") != FORMAT:
        raise ModelError(f"{path}: unknown stored format {description.get('format')!r}")
    return _build(
        Path(path).read_bytes(), ModelCard.from_dict(description["model_card"]), str(path)
    )


def _new_decoder(encoder: Any, card: ModelCard) -> Any:
    from .encoder import PrestoDecoder

    arch = card.architecture
    return PrestoDecoder(
        encoder.channel_embed,
        encoder_dim=encoder.embedding_size,
        decoder_dim=encoder.embedding_size,
        depth=int(arch.get("depth", 2)),
        num_heads=int(arch.get("num_heads", 8)),
        mlp_ratio=float(arch.get("mlp_ratio", 4)),
        max_sequence_length=encoder.max_sequence_length,
    )
