"""Multi-source fusion networks for :mod:`eoai.ml.deep` (private; use ``eoai.ml.fit(..., "fusion")``).

A multi-source feature is named ``<source>.<band>_<date>`` (``s2.red_2020-06-07``,
``s1.vv_2020-06-05``): a Dataset whose variables are ``s2.red``, ``s1.vv`` ... gives such names
through :func:`eoai.ml.features.feature_names`. :func:`split_sources` finds the sources by splitting
the band at its first ``"."``; each source keeps its own dates (the layout is the union of all dates,
a source's missing dates are NaN). :class:`FusionModel` is the :class:`~eoai.ml.deep.DeepModel` of a
:class:`~eoai.ml.models.FusionNet` (one encoder per source, auxiliary per-source heads in the loss).

Examples
--------
>>> split_sources(["s1.vv_2021-01-01", "s2.red_2021-01-03", "s2.nir_2021-01-03"])
{'s1': ['s1.vv'], 's2': ['s2.red', 's2.nir']}
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InputError, ModelError
from ._deep_layout import _NAME, Layout, cube_layout, parse_layout
from ._deep_model import DeepModel

#: Weight of the mean auxiliary (per-source) loss added to the loss of the fused output.
AUX_WEIGHT = 0.5


def split_sources(features: Sequence[str]) -> dict[str, list[str]]:
    """Sources -> their bands (``"<source>.<band>"``, in feature order) of ``features``.

    Raises
    ------
    eoai.errors.InputError
        A feature has no ``"<source>."`` prefix; the message says how to name the variables.
    """
    bands: dict[str, list[str]] = {}
    bare = []
    for f in features:
        m = _NAME.match(str(f))
        var = m["var"] if m else str(f)
        src, dot, band = var.partition(".")
        if not dot or not src or not band:
            bare.append(str(f))
            continue
        if var not in bands.setdefault(src, []):
            bands[src].append(var)
    if bare:
        raise InputError(
            f"a fusion network reads one branch per source, from source-prefixed variables "
            f"(features '<source>.<band>_<date>', e.g. 's2.red_2020-06-07', 's1.vv_2020-06-07'); "
            f"{len(bare)} features have no source prefix (e.g. {', '.join(bare[:3])}). Name the "
            "variables of each source '<source>.<band>' before extracting the samples (e.g. "
            "ds.rename({'red': 's2.red', 'vv': 's1.vv'})), or pass features= with prefixed ones"
        )
    return bands


def fusion_branches(
    layout: Layout,
    X: np.ndarray,
    *,
    encoder: str | Mapping[str, str] = "ltae",
    encoder_kw: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The branch specifications of a :class:`~eoai.ml.models.FusionNet` for training series ``X``.

    ``X`` ``(n, time, band)`` on ``layout`` (union of the dates). A TempCNN branch reads the dates
    on which its source has data in the training samples (those must hold no NaN); an L-TAE branch
    reads every date and leaves the NaN ones out of its attention.
    """
    from .models.fusion import ENCODERS

    sources = split_sources(layout.bands)
    if isinstance(encoder, str):
        enc_of = dict.fromkeys(sources, encoder.lower())
    elif isinstance(encoder, Mapping):
        unknown = [s for s in encoder if s not in sources]
        if unknown:
            raise InputError(f"encoder names unknown source(s) {unknown}; sources: {list(sources)}")
        enc_of = {s: str(encoder.get(s, "ltae")).lower() for s in sources}
    else:
        raise InputError(f"encoder must be 'ltae', 'tempcnn' or {{source: name}}, got {encoder!r}")
    bad = sorted({e for e in enc_of.values() if e not in ENCODERS})
    if bad:
        raise InputError(f"unknown encoder(s) {bad}: choose from {list(ENCODERS)}")
    branches = []
    for src, bands in sources.items():
        ch = [layout.bands.index(b) for b in bands]
        spec: dict[str, Any] = {"name": src, "channels": ch, "encoder": enc_of[src], "times": None,
                                "config": dict(encoder_kw or {})}  # fmt: skip
        if enc_of[src] == "tempcnn":
            xs = X[:, :, ch]
            have = ~np.isnan(xs).all(axis=(0, 2))  # dates of this source
            times = np.flatnonzero(have)
            holes = int(np.isnan(xs[:, times]).any(axis=(1, 2)).sum())
            if holes:
                raise InputError(
                    f"{holes} of {len(X)} samples have NaN {src} features on the {src} dates, and "
                    "a TempCNN branch does not take NaN: gap-fill that source first "
                    "(cube.eoai.gapfill('linear')) and extract again, or use encoder='ltae'"
                )
            spec["times"] = times.tolist()
        branches.append(spec)
    return branches


class FusionModel(DeepModel):
    """A trained :class:`~eoai.ml.models.FusionNet`: one encoder per source, features fused.

    Made by :func:`eoai.ml.fit` with ``model="fusion"``. Its features are
    ``<source>.<band>_<date>``; each source keeps its own dates. :func:`eoai.ml.classify` (and
    :func:`eoai.ml.predict` for a regression) apply it lazily to a Dataset whose variables are
    ``<source>.<band>``; with L-TAE encoders (the default) the cube may have other dates
    (:meth:`for_cube`).

    Examples
    --------
    >>> import numpy as np
    >>> from eoai.ml.models import FusionNet
    >>> br = [{"name": "s1", "channels": [0], "config": {"d_model": 8, "n_head": 2, "d_k": 2,
    ...        "mlp": [8], "encoder": []}},
    ...       {"name": "s2", "channels": [1], "config": {"d_model": 8, "n_head": 2, "d_k": 2,
    ...        "mlp": [8], "encoder": []}}]
    >>> net = FusionNet(in_channels=2, n_classes=2, branches=br)
    >>> m = FusionModel(net, ["s1.vv_2021-01-01", "s2.red_2021-01-02"], [0, 1], mean=[0, 0],
    ...                 std=[1, 1])
    >>> m.sources, m.predict_proba(np.array([[1.0, 0.5]], "float32")).shape
    (['s1', 's2'], (1, 2))
    """

    def _init_layout(self) -> None:
        self.layout = parse_layout(self.features, complete=False)

    @property
    def sources(self) -> list[str]:
        """The sources (branches) of the network, in order."""
        return list(split_sources(self.bands))

    @property
    def _specs(self) -> list[dict[str, Any]]:
        return list(self.net.config["branches"])

    @property
    def uses_days(self) -> bool:
        """The network takes the acquisition days (its L-TAE branches encode them)."""
        return True

    @property
    def dates_free(self) -> bool:
        """Whether every branch encodes acquisition days (L-TAE), so other dates are fine."""
        return all(s["encoder"] == "ltae" for s in self._specs)

    def for_cube(self, cube: Any, *, reference_date: Any = None) -> DeepModel:
        """This model set up for the variables and dates of ``cube``.

        Raises
        ------
        eoai.errors.ModelError
            The cube lacks a source or a band of the model (the message names them), or a
            TempCNN branch's training dates are missing.
        """
        from .features import feature_names

        names = feature_names(cube)
        have: set[str] = set()
        for f in names:
            m = _NAME.match(f)
            have.add(m["var"] if m else f)
        missing = [b for b in self.bands if b not in have]
        if missing:
            lacking = sorted({b.partition(".")[0] for b in missing} - {
                v.partition(".")[0] for v in have if "." in v
            })  # fmt: skip
            raise ModelError(
                f"the fusion model was trained on the sources {self.sources} with the bands "
                f"{self.bands}; the cube lacks {missing}"
                + (f" (the source(s) {lacking} entirely)" if lacking else "")
                + f" (cube variables: {sorted(have)}). Apply it to a cube of the same sources "
                "and bands, named '<source>.<band>'"
            )
        if not self.dates_free:
            want = set(names)
            gone = [f for f in self._series_part(np.asarray(self.features)) if f not in want]
            if not gone:
                return self
            raise ModelError(
                f"the TempCNN branch(es) read their {len(self.layout.dates)} training dates and "
                f"the cube lacks {len(gone)} of the model's features (e.g. {', '.join(gone[:3])}): "
                "gap-fill the cube onto the training dates (cube.eoai.gapfill('linear', "
                "dates=model.dates)), or train with encoder='ltae'"
            )
        lay = cube_layout(names, self.bands, complete=False)
        new = copy.copy(self)
        new.features = lay.features
        new.layout = lay
        if reference_date is not None:
            import pandas as pd

            new.reference_date = pd.Timestamp(reference_date)
        new.metadata = {**self.metadata, "applied_dates": list(lay.dates)}
        return new

    def _outputs(self, X: np.ndarray, n_out: int, softmax: bool = False) -> np.ndarray:
        """As :meth:`DeepModel._outputs`; NaN rows for pixels with NaN on a TempCNN branch."""
        grid = [s for s in self._specs if s["encoder"] == "tempcnn"]
        if not grid:
            return super()._outputs(X, n_out, softmax)
        cube = self.layout.grid(self._series_part(np.asarray(X, dtype="float32")))
        ok = np.ones(len(cube), dtype=bool)
        for s in grid:
            ok &= ~np.isnan(cube[:, s["times"]][:, :, s["channels"]]).any(axis=(1, 2))
        out = np.full((len(cube), n_out), np.nan, dtype="float32")
        if ok.any():
            out[ok] = super()._outputs(np.asarray(X, dtype="float32")[ok], n_out, softmax)
        return out

    def _series_part(self, X: np.ndarray) -> np.ndarray:
        """The columns of ``X`` that are series features (all of them here)."""
        return X

    def network_config(self) -> dict[str, Any]:
        """As :meth:`DeepModel.network_config`, of kind ``"fusion"``."""
        return {**super().network_config(), "kind": "fusion"}

    def __repr__(self) -> str:
        encs = ", ".join(f"{s['name']}: {s['encoder']}" for s in self._specs)
        return (
            f"<FusionModel ({encs}): {len(self.classes)} classes {self.class_names}, "
            f"{len(self.bands)} bands x {len(self.layout.dates)} dates>"
        )
