"""Ensembles of pixel time-series networks: the mean of the members' class probabilities.

A small ensemble of the same architecture trained from different seeds (Lakshminarayanan et al.
2017, *Simple and Scalable Predictive Uncertainty Estimation using Deep Ensembles*, NeurIPS) is
usually more accurate and better calibrated than any member. The ensemble is one ``nn.Module``: its
output is the **log** of the mean member probability, so that a softmax of it (what
:class:`eoai.ml.deep.DeepModel` applies) gives the mean probability back.

:class:`Ensemble` passes the acquisition days to its members (L-TAE); :class:`GridEnsemble` does
not (TempCNN, which reads a fixed grid of dates). Both are rebuilt from their JSON config
(``members``: a list of ``{"architecture", "config"}``), like the other architectures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

#: Architectures whose members take NaN observations.
_NAN_OK = {"ltae"}


def _build_members(members: Sequence[Mapping[str, Any]]) -> nn.ModuleList:
    from . import build_model

    if not members:
        raise ValueError("an ensemble needs at least one member")
    return nn.ModuleList(build_model(m["architecture"], **dict(m["config"])) for m in members)


class Ensemble(nn.Module):
    """Mean class probability of networks taking ``(x, days)``; returns its logarithm.

    Parameters
    ----------
    members : list of dict
        ``{"architecture": name, "config": {...}}`` per member (as built by
        :func:`eoai.ml.models.build_model`).

    Attributes
    ----------
    accepts_nan : bool
        Whether every member takes NaN observations (L-TAE).

    Examples
    --------
    >>> import torch
    >>> spec = {"architecture": "ltae", "config": dict(in_channels=2, n_classes=3, d_model=16,
    ...         n_head=4, d_k=4, mlp=(16,), encoder=())}
    >>> net = Ensemble([spec, spec]).eval()
    >>> p = net(torch.randn(5, 7, 2), torch.arange(7.0)).exp()
    >>> p.shape, bool(torch.allclose(p.sum(1), torch.ones(5)))
    (torch.Size([5, 3]), True)
    """

    def __init__(self, members: Sequence[Mapping[str, Any]]) -> None:
        super().__init__()
        self.config = {
            "members": [
                {"architecture": str(m["architecture"]), "config": dict(m["config"])}
                for m in members
            ]
        }
        self.members = _build_members(self.config["members"])
        self.accepts_nan = all(m["architecture"] in _NAN_OK for m in self.config["members"])

    @classmethod
    def of(cls, nets: Sequence[nn.Module]) -> Ensemble:
        """The ensemble of trained networks ``nets`` (architectures of :mod:`eoai.ml.models`).

        Examples
        --------
        >>> from eoai.ml.models import TempCNN
        >>> nets = [TempCNN(1, 6, 2, hidden=4, dense=4) for _ in range(3)]
        >>> len(GridEnsemble.of(nets).members)
        3
        """
        from . import ARCHITECTURES

        names = {cls_: name for name, cls_ in ARCHITECTURES.items()}
        specs = []
        for net in nets:
            name = names.get(type(net))
            if name is None or not isinstance(getattr(net, "config", None), Mapping):
                raise TypeError(f"cannot ensemble a {type(net).__name__}: not a built-in network")
            specs.append({"architecture": name, "config": dict(net.config)})
        out = cls(specs)
        for member, net in zip(out.members, nets, strict=True):
            member.load_state_dict(net.state_dict())
        return out.eval()

    def _mean_log_proba(self, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        logp = torch.stack([torch.log_softmax(lg.float(), dim=1) for lg in logits])
        return torch.logsumexp(logp, dim=0) - torch.log(torch.tensor(float(len(logits))))

    def forward(self, x: torch.Tensor, days: torch.Tensor) -> torch.Tensor:
        """Log mean probability ``(batch, class)`` of ``x`` (batch, time, channel) on ``days``."""
        return self._mean_log_proba([m(x, days) for m in self.members])


class GridEnsemble(Ensemble):
    """:class:`Ensemble` of networks that read a fixed grid of dates (TempCNN): no ``days``.

    Examples
    --------
    >>> import torch
    >>> spec = {"architecture": "tempcnn", "config": dict(in_channels=1, n_times=6, n_classes=2,
    ...         hidden=4, dense=4)}
    >>> GridEnsemble([spec] * 3).eval()(torch.zeros(4, 6, 1)).shape
    torch.Size([4, 2])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Log mean probability ``(batch, class)`` of ``x`` (batch, time, channel)."""
        return self._mean_log_proba([m(x) for m in self.members])
