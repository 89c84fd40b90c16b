"""U-T&T: a U-Net on a very-high-resolution image fused with a U-TAE on a coarser image series.

Garioud, A., Gonthier, N., Landrieu, L., De Wit, A., Valette, M., Poupée, M., Giordano, S.,
Wattrelos, B. (2023). *FLAIR: a Country-Scale Land Cover Semantic Segmentation Dataset From
Multi-Source Optical Imagery.* NeurIPS 2023 Datasets and Benchmarks (FLAIR #2).
https://arxiv.org/abs/2310.13336 (baseline code: github.com/IGNF/FLAIR-2, Apache-2.0).

The FLAIR #2 baseline, "U-T&T", pairs a U-Net on aerial images (20 cm) with a U-TAE
(:class:`eoai.ml.models.UTAE`) on Sentinel-2 series (10 m); the U-TAE's last feature map is
brought to the aerial resolution and injected into the U-Net's decoder, and an auxiliary loss on
the U-TAE's own classification keeps the time branch a classifier in its own right.

Here both inputs come on the **fine grid**, as one tensor ``(batch, image + time x band, Y, X)``
(the sources of :func:`eoai.stack_sources` on the image's grid, or :meth:`UTT.pack`): the first
``image_channels`` channels are the image, the others the series repeated on the fine grid, which
the network averages over ``factor`` x ``factor`` blocks (NaN left out) to read it at its own
resolution. Then:

- the U-TAE runs on the coarse series ``(batch, time, band, Y / factor, X / factor)``;
- its last feature map is upsampled bilinearly ``factor`` times to the fine grid, and at the
  U-Net's bottleneck and after each decoder level it is average-pooled to that level's resolution,
  projected by a 1x1 convolution (batch norm, ReLU) and added to the U-Net features;
- with ``aux=True`` the forward pass also returns the U-TAE's own logits, upsampled (nearest) to
  the fine grid, for the auxiliary loss (``fit_segmentation(model="utt", aux_weight=...)``).

Differences from the FLAIR #2 code: the U-Net is eoai's (:class:`eoai.ml.models.UNet`, no
pretrained ResNet encoder), the fusion is added at every decoder level (FLAIR #2: a fusion module
choosing among the U-TAE output, its bottleneck or both), and the series covers exactly the
image's footprint (FLAIR #2 reads a larger Sentinel-2 "super-patch" and crops the U-TAE output),
so that a map tiled with a halo equals the whole-image map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .unet import UNet
from .utae import UTAE


def _project(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def block_mean(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean over ``factor`` x ``factor`` blocks of ``x`` (batch, channel, Y, X), NaN left out
    (a block without any valid value is NaN).

    Examples
    --------
    >>> x = torch.tensor([[[[1.0, 3.0], [float("nan"), 5.0]]]])
    >>> block_mean(x, 2).flatten().tolist()
    [3.0]
    """
    if factor == 1:
        return x
    valid = (~torch.isnan(x)).to(x.dtype)
    total = F.avg_pool2d(torch.nan_to_num(x, nan=0.0), factor)
    count = F.avg_pool2d(valid, factor)
    return torch.where(count > 0, total / count.clamp_min(1e-12), torch.full_like(total, math.nan))


class UTT(nn.Module):
    """U-T&T (FLAIR #2): a U-Net on a fine image, a U-TAE on a coarse series, fused in the decoder.

    Parameters
    ----------
    image_channels : int
        Bands of the fine image (e.g. 4 or 5 aerial bands and an elevation).
    series_channels : int
        Bands per date of the series.
    n_classes : int
        Output classes.
    factor : int
        How many fine pixels one series pixel spans along each axis (e.g. 5 for a 2 m image and a
        10 m series).
    depth, base
        Down-sampling steps and first width of the U-Net (:class:`eoai.ml.models.UNet`).
    encoder, decoder, n_head, d_model, d_k, dropout, period, day_jitter
        The U-TAE branch (:class:`eoai.ml.models.UTAE`).

    Attributes
    ----------
    receptive_field : int
        Receptive field in fine pixels (an upper bound): sets the halo of tiled inference.
    tile_multiple : int
        Tiles (chunks) whose sides are multiples of it keep the fine grid, the series blocks and
        both networks' down-sampling aligned: the least common multiple of
        ``factor * 2 ** (len(encoder) - 1)`` and ``2 ** depth``.

    Examples
    --------
    >>> image = torch.randn(2, 3, 16, 16)  # 3 fine bands, 16 x 16 px
    >>> series = torch.randn(2, 5, 2, 4, 4)  # 5 dates x 2 bands at 4 x 4 px
    >>> net = UTT(3, 2, n_classes=4, factor=4, depth=2, base=8, encoder=(8, 8), n_head=4, d_model=8)
    >>> x = UTT.pack(image, series, factor=4)
    >>> x.shape
    torch.Size([2, 13, 16, 16])
    >>> net(x, torch.arange(5.0) * 20).shape
    torch.Size([2, 4, 16, 16])
    >>> net.tile_multiple
    8
    """

    #: Reads a fine image and a series packed on the fine grid (:meth:`pack`).
    takes_fine_and_series = True
    accepts_nan = True
    has_aux = True

    def __init__(
        self,
        image_channels: int,
        series_channels: int,
        n_classes: int,
        factor: int = 4,
        depth: int = 3,
        base: int = 16,
        encoder: Sequence[int] = (16, 32, 32),
        decoder: Sequence[int] | None = None,
        n_head: int = 4,
        d_model: int = 32,
        d_k: int = 4,
        dropout: float = 0.2,
        period: float = 1000.0,
        day_jitter: float = 0.0,
    ) -> None:
        super().__init__()
        if int(factor) != factor or factor < 1:
            raise ValueError(f"factor must be a whole number >= 1, got {factor}")
        if int(image_channels) < 1 or int(series_channels) < 1:
            raise ValueError(
                f"the image and the series need at least one band each, got image_channels="
                f"{image_channels}, series_channels={series_channels}"
            )
        self.utae = UTAE(
            series_channels, n_classes, encoder=encoder, decoder=decoder, n_head=n_head,
            d_model=d_model, d_k=d_k, dropout=dropout, period=period, day_jitter=day_jitter,
        )  # fmt: skip
        self.unet = UNet(image_channels, n_classes, depth=depth, base=base)
        self.config = dict(
            image_channels=int(image_channels), series_channels=int(series_channels),
            n_classes=int(n_classes), factor=int(factor), depth=int(depth), base=int(base),
            **{k: v for k, v in self.utae.config.items() if k not in ("in_channels", "n_classes")},
        )  # fmt: skip
        self.factor = int(factor)
        self.image_channels = int(image_channels)
        self.series_channels = int(series_channels)
        width = int(self.utae.head.in_channels)
        widths = [base * 2**i for i in range(depth + 1)]
        # bottleneck first, then each decoder level up to the input resolution
        self.fuse = nn.ModuleList(_project(width, widths[i]) for i in reversed(range(depth + 1)))

    @staticmethod
    def pack(image: torch.Tensor, series: torch.Tensor, factor: int) -> torch.Tensor:
        """The network's input: ``image`` (b, c, Y, X) and ``series`` (b, t, c', Y/f, X/f) as one
        tensor (b, c + t c', Y, X), the series repeated ``factor`` times along y and x."""
        b, t, c, h, w = series.shape
        if image.shape[-2:] != (h * factor, w * factor):
            raise ValueError(
                f"the image is {tuple(image.shape[-2:])} px and the series {h} x {w} px: with "
                f"factor={factor} the image must be {h * factor} x {w * factor} px"
            )
        fine = series.reshape(b, t * c, h, w).repeat_interleave(factor, -2)
        return torch.cat([image, fine.repeat_interleave(factor, -1)], dim=1)

    @property
    def tile_multiple(self) -> int:
        """Least common multiple of the series block x U-TAE down-sampling and the U-Net's."""
        return math.lcm(self.factor * self.utae.tile_multiple, 2**self.unet.depth)

    @property
    def receptive_field(self) -> int:
        """Fine pixels: the U-Net's, plus the U-TAE's (series pixels) and the bilinear upsampling
        and block means (3 series pixels) times ``factor`` (an upper bound)."""
        return self.unet.receptive_field + (self.utae.receptive_field + 3) * self.factor

    def forward(
        self, x: torch.Tensor, days: torch.Tensor, *, aux: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (batch, class, Y, X) of the packed input ``x`` (batch, image + time x band, Y, X)
        on the acquisition ``days`` (time,) of the series; with ``aux``, also ``[U-TAE logits]``
        on the fine grid."""
        b, c, h, w = x.shape
        ci, cs = self.image_channels, self.series_channels
        if c <= ci or (c - ci) % cs:
            raise ValueError(
                f"U-T&T input must have {ci} image channels and a multiple of {cs} series channels "
                f"(time x band), got {c} channels"
            )
        t = (c - ci) // cs
        m = self.tile_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        f = self.factor
        series = block_mean(x[:, ci:], f)
        series = series.view(b, t, cs, *series.shape[-2:])
        temporal, _ = self.utae.features(series, days)  # b, width, Y/f, X/f
        fused = F.interpolate(temporal, scale_factor=f, mode="bilinear", align_corners=False)
        image = torch.nan_to_num(x[:, :ci], nan=0.0)
        net = self.unet
        skips = []
        for i, block in enumerate(net.down):
            image = block(image if i == 0 else F.max_pool2d(image, 2))
            skips.append(image)
        out = skips.pop()
        out = out + self.fuse[0](F.avg_pool2d(fused, 2**net.depth))
        for k, (up, block) in enumerate(zip(net.up, net.up_blocks, strict=True)):
            out = block(torch.cat([skips.pop(), up(out)], dim=1))
            scale = 2 ** (net.depth - 1 - k)
            out = out + self.fuse[k + 1](F.avg_pool2d(fused, scale) if scale > 1 else fused)
        logits = net.head(out)[..., :h, :w]
        if not aux:
            return logits
        coarse = self.utae.head(temporal)
        aux_logits = coarse.repeat_interleave(f, -2).repeat_interleave(f, -1)[..., :h, :w]
        return logits, [aux_logits]
