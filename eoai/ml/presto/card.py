"""Model cards: the input contract of a pretrained encoder, stored with its weights and checked on use.

A pretrained encoder only gives meaningful embeddings on inputs like those it was trained on: the
same bands in the same order and units, the same normalisation, the same time step. A
:class:`ModelCard` writes that contract down as data (JSON in the sidecar ``<weights>.json``, see
:mod:`eoai.ml.persist`), so that :func:`eoai.ml.presto.embed` can check a cube against it and say
what to change, instead of silently embedding reflectance where DN were expected.

The structure is generic (any per-pixel time-series encoder): a list of :class:`InputBand` (the
model's channels in order, each with the eoai variable name it is read from, its units and
``(x + add_by) / divide_by`` normalisation, its token group, whether it may be absent), the time
step and the most steps, the pixel size, and extra per-model fields in ``extra``.
:data:`PRESTO_CARD` is the card of the published Presto weights (Tseng et al. 2023).

Examples
--------
>>> from eoai.ml.presto.card import PRESTO_CARD, ModelCard
>>> PRESTO_CARD.band_names[:4]
['vv', 'vh', 'blue', 'green']
>>> ModelCard.from_dict(PRESTO_CARD.to_dict()) == PRESTO_CARD
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ...errors import InputError, ModelError

CARD_VERSION = 1


@dataclass(frozen=True)
class InputBand:
    """One input channel of an encoder.

    Attributes
    ----------
    name
        Variable name in an eoai cube (Sentinel-2 common names ``blue``, ``nir08``...; ``vv``,
        ``vh``; ``temperature_2m``...), or the name of a channel eoai derives (``ndvi``).
    source
        The name in the model's own documentation (``B2``, ``VV``).
    group
        Token group; a group's token is masked when any of its channels is missing.
    units
        Units the normalisation expects (``"reflectance x 1e4"``, ``"dB"``, ``"K"``...).
    add_by, divide_by
        Normalisation ``(x + add_by) / divide_by`` applied to values in ``units``.
    temporal
        False for static inputs (one value per pixel, e.g. elevation).
    optional
        The input may be absent from the cube: its tokens are then masked.
    derived
        Computed by eoai from other channels (e.g. NDVI from normalised ``nir`` / ``red``).
    """

    name: str
    source: str
    group: str
    units: str
    add_by: float = 0.0
    divide_by: float = 1.0
    temporal: bool = True
    optional: bool = False
    derived: str | None = None


@dataclass(frozen=True)
class ModelCard:
    """The input contract of an encoder (see the module docstring).

    Attributes
    ----------
    name, reference, licence
        What the model is, where it comes from (paper, repository, commit) and its licence.
    bands
        The model's channels, in the order of its input tensor.
    time_step
        ``"month"``: one step per calendar month (eoai makes monthly composites of denser cubes).
    max_steps
        The most time steps the model takes (its number of position encodings).
    pretrained_steps
        The series length of pre-training (shorter and longer series work, less tested).
    resolution_m
        Pixel size of the training data, in metres.
    embedding_size
        Length of the output vector.
    architecture
        Constructor parameters of the network.
    extra
        Model-specific fields (Presto: the Dynamic World token, dropped raw bands...).
    """

    name: str
    reference: str
    licence: str
    bands: tuple[InputBand, ...]
    time_step: str
    max_steps: int
    pretrained_steps: int
    resolution_m: float
    embedding_size: int
    architecture: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def band_names(self) -> list[str]:
        """eoai names of the channels, in model order."""
        return [b.name for b in self.bands]

    @property
    def required(self) -> list[str]:
        """Variables a cube must have (not optional, not derived)."""
        return [b.name for b in self.bands if not b.optional and not b.derived]

    @property
    def add_by(self) -> np.ndarray:
        return np.array([b.add_by for b in self.bands], dtype="float32")

    @property
    def divide_by(self) -> np.ndarray:
        return np.array([b.divide_by for b in self.bands], dtype="float32")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``card_version`` added).

        Examples
        --------
        >>> PRESTO_CARD.to_dict()["max_steps"]
        24
        """
        d = asdict(self)
        d["bands"] = [asdict(b) for b in self.bands]
        d["card_version"] = CARD_VERSION
        return d

    @classmethod
    def from_dict(cls, d: Any) -> ModelCard:
        """Rebuild a card from :meth:`to_dict` output (e.g. read from JSON).

        Raises
        ------
        eoai.errors.ModelError
            ``d`` is not a card, or one of a newer version (the message names the fields).

        Examples
        --------
        >>> ModelCard.from_dict({"name": "x"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        eoai.errors.ModelError: not a model card: missing field(s) reference, licence, bands, ...
        """
        if isinstance(d, ModelCard):
            return d
        if not isinstance(d, dict):
            raise ModelError(
                f"a model card is a dict (ModelCard.to_dict()), got {type(d).__name__}"
            )
        version = d.get("card_version", CARD_VERSION)
        if version > CARD_VERSION:
            raise ModelError(
                f"model card version {version} is newer than this eoai reads ({CARD_VERSION}): "
                "update eoai"
            )
        names = [f for f in cls.__dataclass_fields__ if f not in ("architecture", "extra")]
        missing = [f for f in names if f not in d]
        if missing:
            raise ModelError(
                f"not a model card: missing field(s) {', '.join(missing)}; write one with "
                "ModelCard(...).to_dict() or pass eoai.ml.presto.PRESTO_CARD"
            )
        try:
            bands = tuple(InputBand(**b) for b in d["bands"])
        except TypeError as err:
            raise ModelError(f"the bands of the model card are malformed: {err}") from err
        kw = {k: d[k] for k in cls.__dataclass_fields__ if k in d and k != "bands"}
        return cls(bands=bands, **kw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def describe(self) -> str:
        """A readable summary: the inputs, their units and normalisation, the time step.

        Examples
        --------
        >>> print(PRESTO_CARD.describe().splitlines()[0])
        Presto (Tseng et al. 2023): 17 channels, one step per month (at most 24; pre-trained on 12), 10 m pixels -> 128-d embedding
        """
        lines = [
            f"{self.name}: {len(self.bands)} channels, one step per {self.time_step} (at most "
            f"{self.max_steps}; pre-trained on {self.pretrained_steps}), "
            f"{self.resolution_m:g} m pixels -> {self.embedding_size}-d embedding"
        ]
        for b in self.bands:
            how = (
                f"derived: {b.derived}"
                if b.derived
                else f"({b.units} + {b.add_by:g}) / {b.divide_by:g}"
            )
            flags = ", ".join(
                f for f, on in (("optional", b.optional), ("static", not b.temporal)) if on
            )
            lines.append(
                f"  {b.name:<20} {b.source:<20} {b.group:<12} {how}"
                + (f" [{flags}]" if flags else "")
            )
        for k, v in self.extra.items():
            lines.append(f"  {k}: {v}")
        return "\n".join(lines)


def _b(name, source, group, units, add_by=0.0, divide_by=1.0, **kw) -> InputBand:
    return InputBand(name, source, group, units, float(add_by), float(divide_by), **kw)


_S2 = "reflectance x 1e4"
#: The card of the published Presto encoder (nasaharvest/presto ``data/default_model.pt``).
PRESTO_CARD = ModelCard(
    name="Presto (Tseng et al. 2023)",
    reference=(
        "Tseng et al. 2023, Lightweight, Pre-trained Transformers for Remote Sensing Timeseries, "
        "arXiv:2304.14065; weights github.com/nasaharvest/presto @13173d0 data/default_model.pt"
    ),
    licence="MIT (Copyright (c) 2024 Presto Authors)",
    bands=(
        _b("vv", "VV", "S1", "dB (sigma0)", 25, 25, optional=True),
        _b("vh", "VH", "S1", "dB (sigma0)", 25, 25, optional=True),
        _b("blue", "B2", "S2_RGB", _S2, 0, 1e4),
        _b("green", "B3", "S2_RGB", _S2, 0, 1e4),
        _b("red", "B4", "S2_RGB", _S2, 0, 1e4),
        _b("rededge1", "B5", "S2_Red_Edge", _S2, 0, 1e4),
        _b("rededge2", "B6", "S2_Red_Edge", _S2, 0, 1e4),
        _b("rededge3", "B7", "S2_Red_Edge", _S2, 0, 1e4),
        _b("nir", "B8", "S2_NIR_10m", _S2, 0, 1e4),
        _b("nir08", "B8A", "S2_NIR_20m", _S2, 0, 1e4),
        _b("swir16", "B11", "S2_SWIR", _S2, 0, 1e4),
        _b("swir22", "B12", "S2_SWIR", _S2, 0, 1e4),
        _b("temperature_2m", "temperature_2m", "ERA5", "K", -272.15, 35, optional=True),
        _b("total_precipitation", "total_precipitation", "ERA5", "m", 0, 0.03, optional=True),
        _b("elevation", "elevation", "SRTM", "m", 0, 2000, temporal=False, optional=True),
        _b("slope", "slope", "SRTM", "degrees", 0, 50, temporal=False, optional=True),
        _b(
            "ndvi",
            "NDVI",
            "NDVI",
            "1",
            0,
            1,
            derived="(nir - red) / (nir + red) of the normalised bands, 0 where nir + red <= 0",
        ),
    ),
    time_step="month",
    max_steps=24,
    pretrained_steps=12,
    resolution_m=10.0,
    embedding_size=128,
    architecture={
        "embedding_size": 128,
        "channel_embed_ratio": 0.25,
        "month_embed_ratio": 0.25,
        "depth": 2,
        "mlp_ratio": 4,
        "num_heads": 8,
        "max_sequence_length": 24,
    },  # fmt: skip
    extra={
        "dynamic_world": "variable 'dynamic_world' (optional): Dynamic World class 0-8 per step; "
        "9 (or NaN) = missing, masked",
        "dynamic_world_missing": 9,
        "latlon": "WGS84 latitude, longitude of each pixel (degrees), from the cube's CRS",
        "month": "calendar month of each step, 0 = January",
        "raw_band_order": [
            "VV",
            "VH",
            "B2",
            "B3",
            "B4",
            "B5",
            "B6",
            "B7",
            "B8",
            "B8A",
            "B9",
            "B11",
            "B12",
            "temperature_2m",
            "total_precipitation",
            "elevation",
            "slope",
            "NDVI",
        ],  # fmt: skip
        "dropped_raw_bands": ["B9"],
        "sentinel2": "TOA or surface reflectance x 1e4 (GEE COPERNICUS/S2); eoai reflectance "
        "cubes (0-1, attrs scale_factor_applied) are converted",
        "sentinel1": "GEE sigma0 in dB (VV, VH)",
        "composite": "monthly median of the valid observations of each band; months without "
        "one are masked",
    },
)

#: Raw band order of the authors' arrays (18 channels, with B9 and their own NDVI).
RAW_BANDS: list[str] = PRESTO_CARD.extra["raw_band_order"]
_RAW_ADD = [25, 25] + [0] * 11 + [-272.15, 0, 0, 0, 0]
_RAW_DIV = [25, 25] + [1e4] * 11 + [35, 0.03, 2000, 50, 1]


def ndvi_of_normalised(nir: np.ndarray, red: np.ndarray) -> np.ndarray:
    """NDVI from normalised NIR and red, 0 where ``nir + red <= 0`` (Presto's convention).

    Examples
    --------
    >>> ndvi_of_normalised(np.array([0.3, 0.0]), np.array([0.1, 0.0])).tolist()
    [0.5, 0.0]
    """
    total = nir + red
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(total > 0, (nir - red) / np.where(total > 0, total, 1), 0)
    return np.where(np.isnan(total), np.nan, out).astype("float32")


def normalise(raw: np.ndarray) -> np.ndarray:
    """The authors' 18 raw channels ``(..., 18)`` -> Presto's 17 normalised channels ``(..., 17)``.

    ``(x + add_by) / divide_by``, B9 dropped, NDVI recomputed from the normalised B8 and B4. The
    raw order is :data:`RAW_BANDS` (the ``.npy`` files of the Presto repository).

    Raises
    ------
    eoai.errors.InputError
        The last axis does not have 18 channels.

    Examples
    --------
    >>> raw = np.zeros(18); raw[4], raw[8] = 1000.0, 3000.0
    >>> float(normalise(raw)[-1])
    0.5
    """
    raw = np.asarray(raw, dtype="float64")
    if raw.shape[-1] != len(RAW_BANDS):
        raise InputError(
            f"raw Presto inputs have {len(RAW_BANDS)} channels ({', '.join(RAW_BANDS)}) on the "
            f"last axis, got shape {raw.shape}"
        )
    x = (raw + np.array(_RAW_ADD)) / np.array(_RAW_DIV)
    x = np.delete(x, RAW_BANDS.index("B9"), axis=-1)
    x[..., -1] = ndvi_of_normalised(x[..., 8], x[..., 4])
    return x.astype("float32")


def check_card(card: Any) -> ModelCard:
    """``card`` as a :class:`ModelCard` whose channels fit Presto's 17 inputs, else ModelError.

    Examples
    --------
    >>> check_card(PRESTO_CARD.to_dict()).embedding_size
    128
    """
    card = ModelCard.from_dict(card)
    if [b.group for b in card.bands] != [b.group for b in PRESTO_CARD.bands]:
        raise ModelError(
            f"the model card {card.name!r} does not describe Presto's 17 channels in Presto's "
            f"order (groups {[b.group for b in card.bands]}); start from "
            "eoai.ml.presto.PRESTO_CARD (dataclasses.replace) to change names or units"
        )
    return card
