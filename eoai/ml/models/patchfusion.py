"""PatchFusionNet: temporal branches per source plus CNNs on image patches (M3Fusion, MultiResoLCC).

Benedetti, P., Ienco, D., Gaetano, R., Ose, K., Pensa, R. G., Dupuy, S. (2018). *M3Fusion: A Deep
Learning Architecture for Multiscale Multimodal Multitemporal Satellite Data Fusion.* IEEE JSTARS
11(12), 4939-4949. https://doi.org/10.1109/JSTARS.2018.2876357

M3Fusion classifies a pixel from its Sentinel-2 series (a recurrent branch) and the patch of a
SPOT image around it (a CNN branch); the two embeddings are concatenated and classified, and each
branch has an **auxiliary classifier** trained with the fused one, so that each branch learns
features that are discriminative on their own. Here the temporal branches are those of
:class:`~eoai.ml.models.fusion.FusionNet` (one L-TAE or TempCNN per source, TWINNS) and the patch
branch is a small CNN (3 x 3 convolutions, batch norm, one 2 x 2 max-pooling for patches of 4 px
or more, global average pooling), so the texture it finds does not depend on where in the patch
it lies.

Gaetano, R., Ienco, D., Ose, K., Cresson, R. (2018). *A Two-Branch CNN Architecture for Land Cover
Classification of PAN and MS Imagery* (MultiResoLCC). Remote Sensing 10(11), 1746.
https://doi.org/10.3390/rs10111746 — a panchromatic patch and a multispectral patch of the same
footprint, each at its own resolution, one CNN branch each: here ``patches`` with two entries and
no temporal branch.

The input is one flat tensor per pixel: the series ``(time, channel)`` row-major, then each patch
``(channel, row, column)`` (:meth:`PatchFusionNet.pack`); the number of dates follows from its
length, so an L-TAE model applies to other dates. NaN in a patch (outside the image) count as 0
(the training mean after standardisation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .fusion import FusionNet


class PatchCNN(nn.Module):
    """The patch branch: ``(batch, channel, p, p)`` -> an embedding ``(batch, width)``.

    Examples
    --------
    >>> import torch
    >>> PatchCNN(1, 8, width=16)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 16])
    """

    def __init__(self, in_channels: int, patch: int, width: int = 32) -> None:
        super().__init__()
        half = max(width // 2, 1)

        def block(a: int, b: int) -> list[nn.Module]:
            return [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]

        layers = block(in_channels, half) + block(half, width)
        if patch >= 4:
            layers.append(nn.MaxPool2d(2))
        layers += block(width, width) + [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class PatchFusionNet(FusionNet):
    """M3Fusion / MultiResoLCC-style network: :class:`FusionNet` temporal branches and patch CNNs.

    Parameters
    ----------
    in_channels, n_classes, branches, fused, dropout
        As for :class:`~eoai.ml.models.fusion.FusionNet` (the series part of the input);
        ``branches`` may be empty (patches only: MultiResoLCC, ``in_channels=0``).
    patches : list of dict
        One patch branch each: ``{"name": str, "channels": int, "size": int}`` (bands and side
        in pixels of that image's patch: a fine panchromatic patch, a multispectral one...).
    patch_width : int
        Width of each patch embedding (channels of its last convolution).

    Examples
    --------
    >>> import torch
    >>> br = [{"name": "s2", "channels": [0], "encoder": "ltae",
    ...        "config": {"d_model": 8, "n_head": 2, "d_k": 2, "mlp": [8], "encoder": []}}]
    >>> net = PatchFusionNet(in_channels=1, n_classes=4, branches=br,
    ...                      patches=[{"name": "vhr", "channels": 1, "size": 6}], patch_width=8)
    >>> x = net.pack(torch.randn(3, 5, 1), [torch.randn(3, 1, 6, 6)])
    >>> out, aux = net(x, torch.arange(5.0), aux=True)
    >>> out.shape, len(aux), net.branch_names
    (torch.Size([3, 4]), 2, ['s2', 'vhr'])
    """

    _min_branches = 0

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        branches: Sequence[Mapping[str, Any]],
        patches: Sequence[Mapping[str, Any]],
        patch_width: int = 32,
        fused: Sequence[int] = (64,),
        dropout: float = 0.2,
    ) -> None:
        super().__init__(in_channels, n_classes, branches, fused=fused, dropout=dropout)
        specs: list[dict[str, Any]] = [
            {"name": str(p.get("name", i)), "channels": int(p["channels"]), "size": int(p["size"])}
            for i, p in enumerate(patches)
        ]
        if not specs and not self.specs:
            raise ValueError("a patch fusion network needs at least one branch")
        bad = [p for p in specs if p["channels"] < 1 or p["size"] < 1]
        if bad or int(patch_width) < 1:
            raise ValueError(f"patch channels, sizes and patch_width must be >= 1: {specs}")
        self.config.update(patches=specs, patch_width=int(patch_width))
        self.patch_specs = specs
        self.patch_lens = [p["channels"] * p["size"] ** 2 for p in specs]
        self.patch_len = sum(self.patch_lens)
        self.patch_cnns = nn.ModuleList(
            PatchCNN(p["channels"], p["size"], int(patch_width)) for p in specs
        )
        self.patch_aux = nn.ModuleList(nn.Linear(int(patch_width), int(n_classes)) for _ in specs)
        self.head = self._fused_head(self.width + int(patch_width) * len(specs))

    @property
    def branch_names(self) -> list[str]:
        """The temporal branches (sources), then the patch branches: the auxiliary outputs' order."""
        return [*self.sources, *(p["name"] for p in self.patch_specs)]

    @staticmethod
    def pack(series: torch.Tensor, patches: Sequence[torch.Tensor]) -> torch.Tensor:
        """One input row per pixel: ``series`` ``(b, time, channel)``, then each ``(b, c, p, p)``."""
        b = len(series)
        return torch.cat([series.reshape(b, -1), *(p.reshape(b, -1) for p in patches)], 1)

    def unpack(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(series (b, time, channel), [patch (b, c, p, p), ...])`` of a packed input."""
        b, c = len(x), self.config["in_channels"]
        n_series = x.shape[1] - self.patch_len
        series = x[:, :n_series].reshape(b, -1, c) if c else x[:, :0].reshape(b, 0, 0)
        out, start = [], n_series
        for spec, n in zip(self.patch_specs, self.patch_lens, strict=True):
            out.append(x[:, start : start + n].reshape(b, spec["channels"], spec["size"], -1))
            start += n
        return series, out

    def forward(self, x: torch.Tensor, days: torch.Tensor, aux: bool = False) -> Any:
        """Output ``(batch, n_classes)`` of a packed input (:meth:`pack`) on ``days``.

        With ``aux=True``: ``(output, [output of each branch alone])`` (:attr:`branch_names`).
        """
        series, patches = self.unpack(x)
        embs, auxs = [], []
        for i in range(len(self.specs)):
            e, a = self._embed(i, series, days)
            embs.append(e)
            auxs.append(a)
        for cnn, head, patch in zip(self.patch_cnns, self.patch_aux, patches, strict=True):
            pe = cnn(torch.nan_to_num(patch, nan=0.0))
            embs.append(pe)
            auxs.append(head(pe))
        out = self.head(torch.cat(embs, dim=1))
        return (out, auxs) if aux else out
