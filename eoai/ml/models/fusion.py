"""FusionNet: one temporal encoder per source, features concatenated, auxiliary heads (TWINNS).

Ienco, D., Interdonato, R., Gaetano, R., Ho Tong Minh, D. (2019). *Combining Sentinel-1 and
Sentinel-2 Satellite Image Time Series for land cover mapping via a multi-source deep learning
architecture* (TWINNS). ISPRS J. Photogramm. 158, 11-22. https://doi.org/10.1016/j.isprsjprs.2019.09.016
Benedetti, P., Ienco, D., et al. (2018). *M3Fusion: A Deep Learning Architecture for Multi-Scale
Multi-Modal Multi-Temporal Satellite Data Fusion.* IEEE JSTARS 11(12), 4939-4949.

Each source (e.g. Sentinel-1 and Sentinel-2) has its own encoder (an
:class:`~eoai.ml.models.ltae.LTAE` or a :class:`~eoai.ml.models.tempcnn.TempCNN`) reading its own
channels (and, for a TempCNN, its own dates) of the input ``(batch, time, channel)``; the encoders'
embeddings are concatenated and classified (or regressed) by a small MLP. Each encoder keeps its own
output layer as an **auxiliary head**: ``forward(x, days, aux=True)`` also returns the prediction of
every source alone, which the training loss adds (the DualNet trick of TWINNS and M3Fusion: each
branch must be informative on its own, so that the fused head does not rely on one source).

An L-TAE branch leaves NaN observations (the dates of the other source, clouds) out of its
attention; a pixel with no valid observation of a source gets a zero embedding of that source.
A TempCNN branch reads a fixed list of dates (``times``) that must hold no NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

ENCODERS = ("ltae", "tempcnn")


class FusionNet(nn.Module):
    """n-branch time-series network (TWINNS-style): one encoder per source.

    Parameters
    ----------
    in_channels : int
        Channels of the whole input (all sources' bands).
    n_classes : int
        Outputs (classes; 1 for a regression).
    branches : list of dict
        One per source: ``{"name": str, "channels": [int, ...], "encoder": "ltae" | "tempcnn",
        "times": [int, ...] | None, "config": {encoder parameters}}``; ``times`` (the source's
        dates, indices into the input's time axis) is required for a TempCNN and optional for an
        L-TAE (``None``: every date, NaN ones left out). A TempCNN branch's ``config`` defaults to
        the paper's widths, ``hidden=64, dense=256`` (not :class:`TempCNN`'s own defaults).
    fused : tuple of int
        Widths of the MLP on the concatenated embeddings.
    dropout : float
        Dropout of that MLP.

    Examples
    --------
    >>> import torch
    >>> br = [{"name": "s1", "channels": [0, 1], "encoder": "ltae",
    ...        "config": {"d_model": 16, "n_head": 4, "d_k": 4, "mlp": [16], "encoder": []}},
    ...       {"name": "s2", "channels": [2], "encoder": "tempcnn", "times": [0, 2],
    ...        "config": {"hidden": 4, "dense": 8}}]
    >>> net = FusionNet(in_channels=3, n_classes=2, branches=br)
    >>> out, aux = net(torch.randn(5, 3, 3), torch.arange(3.0), aux=True)
    >>> out.shape, [a.shape[1] for a in aux]
    (torch.Size([5, 2]), [2, 2])
    """

    accepts_nan = True
    has_aux = True
    _min_branches = 1  # temporal branches (0 in a subclass with other branches)

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        branches: Sequence[Mapping[str, Any]],
        fused: Sequence[int] = (64,),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        from .ltae import LTAE
        from .tempcnn import PAPER_WIDTHS, TempCNN

        if len(branches) < self._min_branches:
            raise ValueError("a fusion network needs at least one branch")
        specs: list[dict[str, Any]] = []
        for b in branches:
            enc = str(b.get("encoder", "ltae")).lower()
            if enc not in ENCODERS:
                raise ValueError(f"unknown encoder {enc!r} of branch {b.get('name')}: {ENCODERS}")
            ch = [int(c) for c in b["channels"]]
            if not ch or min(ch) < 0 or max(ch) >= in_channels:
                raise ValueError(
                    f"branch {b.get('name')}: channels {ch} not in 0..{in_channels - 1}"
                )
            times = None if b.get("times") is None else [int(t) for t in b["times"]]
            if enc == "tempcnn" and not times:
                raise ValueError(f"the TempCNN branch {b.get('name')} needs its dates (times)")
            config = dict(b.get("config") or {})
            if enc == "tempcnn":  # the paper's widths unless given: fusion was measured, and its
                config = {**PAPER_WIDTHS, **config}  # files saved, with them (issue #16)
            specs.append(
                {"name": str(b.get("name", len(specs))), "channels": ch, "encoder": enc,
                 "times": times, "config": config}
            )  # fmt: skip
        self.config: dict[str, Any] = dict(
            in_channels=int(in_channels), n_classes=int(n_classes), branches=specs,
            fused=[int(w) for w in fused], dropout=float(dropout),
        )  # fmt: skip
        self.specs = specs
        self.encoders = nn.ModuleList()
        width = 0
        for s in specs:
            kw = {k: v for k, v in s["config"].items() if k not in ("in_channels", "n_classes")}
            if s["encoder"] == "ltae":
                net = LTAE(in_channels=len(s["channels"]), n_classes=n_classes, **kw)
                width += net.classifier.in_features
            else:
                net = TempCNN(
                    in_channels=len(s["channels"]), n_times=len(s["times"]), n_classes=n_classes,
                    **{k: v for k, v in kw.items() if k != "n_times"},
                )  # fmt: skip
                width += net.head[-1].in_features
            self.encoders.append(net)
        for i, s in enumerate(specs):
            self.register_buffer(f"_ch{i}", torch.tensor(s["channels"]), persistent=False)
            if s["times"] is not None:
                self.register_buffer(f"_t{i}", torch.tensor(s["times"]), persistent=False)
        self.width = width  # of the concatenated embeddings
        # no temporal branch (a subclass with others): its own head replaces this one
        self.head: nn.Module = self._fused_head(width) if width else nn.Identity()

    def _fused_head(self, width: int) -> nn.Module:
        """The MLP on ``width`` concatenated embedding features."""
        layers: list[nn.Module] = []
        for w in self.config["fused"]:
            layers += [nn.Linear(width, w), nn.BatchNorm1d(w), nn.ReLU(),
                       nn.Dropout(self.config["dropout"])]  # fmt: skip
            width = w
        return nn.Sequential(*layers, nn.Linear(width, self.config["n_classes"]))

    @property
    def sources(self) -> list[str]:
        """Names of the branches (the sources), in order."""
        return [s["name"] for s in self.specs]

    def _embed(self, i: int, x: torch.Tensor, days: torch.Tensor) -> tuple[Any, Any]:
        """Embedding and auxiliary output of branch ``i``."""
        s, enc = self.specs[i], self.encoders[i]
        xs = x.index_select(2, getattr(self, f"_ch{i}"))
        if s["times"] is not None:
            t = getattr(self, f"_t{i}")
            xs = xs.index_select(1, t)
            days = days.index_select(-1, t)
        if s["encoder"] == "ltae":
            emb = enc.encode(xs, days)[0]
            seen = (~torch.isnan(xs).any(-1)).any(1)  # a source with no valid date: no evidence
            emb = emb * seen[:, None].to(emb.dtype)
            return emb, enc.classifier(emb)
        emb = enc.head[:-1](enc.convs(xs.transpose(1, 2)))
        return emb, enc.head[-1](emb)

    def forward(self, x: torch.Tensor, days: torch.Tensor, aux: bool = False) -> Any:
        """Output ``(batch, n_classes)`` for ``x`` ``(batch, time, channel)`` on ``days``.

        With ``aux=True``: ``(output, [output of each branch alone])``.
        """
        embs, auxs = zip(*(self._embed(i, x, days) for i in range(len(self.specs))), strict=True)
        out = self.head(torch.cat(embs, dim=1))
        return (out, list(auxs)) if aux else out
