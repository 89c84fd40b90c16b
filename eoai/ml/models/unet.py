"""U-Net for patch segmentation.

Ronneberger, O., Fischer, P., Brox, T. (2015). *U-Net: Convolutional Networks for Biomedical Image
Segmentation.* MICCAI 2015, LNCS 9351. https://arxiv.org/abs/1505.04597

A configurable-depth encoder-decoder with skip connections, 'same' padding (output = input size) and
batch norm. Inputs whose sides are not multiples of ``2**depth`` are reflect-padded and cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015) with configurable depth and width.

    Parameters
    ----------
    in_channels : int
        Input channels (bands x dates, stacked).
    n_classes : int
        Output classes.
    depth : int
        Number of down-sampling steps (4 in the paper).
    base : int
        Channels of the first level, doubled at each level (64 in the paper).

    Attributes
    ----------
    receptive_field : int
        Receptive field in pixels: the halo needed for seamless tiled inference.

    Examples
    --------
    >>> import torch
    >>> net = UNet(in_channels=3, n_classes=2, depth=2, base=8)
    >>> net(torch.zeros(1, 3, 30, 20)).shape
    torch.Size([1, 2, 30, 20])
    """

    def __init__(self, in_channels: int, n_classes: int, depth: int = 3, base: int = 32) -> None:
        super().__init__()
        self.config = dict(in_channels=in_channels, n_classes=n_classes, depth=depth, base=base)
        self.depth = depth
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(in_channels, widths[0])])
        self.down.extend(_block(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(depth))
        )
        self.up_blocks = nn.ModuleList(
            _block(2 * widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    @property
    def receptive_field(self) -> int:
        """Receptive field in input pixels (two 3x3 convs per level, doubled per down-step)."""
        rf, jump = 1, 1
        for _ in range(self.depth):
            rf += 4 * jump  # two 3x3 convs
            rf += jump  # 2x2 pool
            jump *= 2
        rf += 4 * jump  # bottleneck
        for _ in range(self.depth):
            jump //= 2
            rf += jump + 4 * jump  # transposed conv + two convs
        return rf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, classes, H, W) for ``x`` of shape (batch, channels, H, W)."""
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, block in zip(self.up, self.up_blocks, strict=True):
            x = block(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)[..., :h, :w]


def feature_contract(encoder: nn.Module) -> tuple[list[int], list[int]]:
    """Channels and reductions of an encoder honouring timm's ``features_only`` contract.

    The contract: ``encoder(x)`` with ``x`` of shape ``(batch, in_channels, H, W)`` returns a list
    of feature maps, finest first; ``encoder.feature_info.channels()`` gives their channels and
    ``encoder.feature_info.reduction()`` their down-sampling factors (``H / h``, increasing, each
    a whole multiple of the previous one), as ``timm.create_model(name, features_only=True)``
    models do.

    Raises
    ------
    TypeError
        The module lacks ``feature_info`` or its ``channels()`` / ``reduction()`` are not two
        lists of the same length of positive, increasing whole numbers.

    Examples
    --------
    >>> feature_contract(TinyEncoder(3))
    ([8, 16], [2, 4])
    """
    info = getattr(encoder, "feature_info", None)
    try:
        channels = [int(c) for c in info.channels()]  # type: ignore[union-attr]
        reductions = [int(r) for r in info.reduction()]  # type: ignore[union-attr]
    except (AttributeError, TypeError, ValueError) as err:
        raise TypeError(
            f"{type(encoder).__name__} does not honour the features_only contract: it needs "
            f"feature_info.channels() and feature_info.reduction() (lists of ints); {err}"
        ) from None
    ok = len(channels) == len(reductions) >= 1 and min(channels) > 0 and reductions[0] >= 1
    ok = ok and all(
        b > a and b % a == 0 for a, b in zip(reductions[:-1], reductions[1:], strict=True)
    )
    if not ok:
        raise TypeError(
            f"{type(encoder).__name__}.feature_info gives channels {channels} and reductions "
            f"{reductions}: expected as many of each, reductions increasing, each a multiple of "
            "the previous one (e.g. [2, 4, 8, 16, 32])"
        )
    return channels, reductions


class EncoderUNet(nn.Module):
    """A U-Net decoder on any encoder honouring timm's ``features_only`` contract.

    The decoder is built from the encoder's ``feature_info``: from the coarsest feature map up,
    each level is up-sampled (nearest) to the next finer one, concatenated with it (the skip) and
    passed through two 3x3 conv + batch norm + ReLU layers of ``decoder[i]`` channels (default the
    encoder's channels at that level); when the finest map is coarser than the input, a last
    up-sampling and block return to full resolution, and a 1x1 conv gives the outputs. Inputs
    whose sides are not multiples of the coarsest reduction (:attr:`tile_multiple`) are padded
    and cropped back, as for :class:`UNet`.

    Parameters
    ----------
    encoder : torch.nn.Module
        The encoder (see :func:`feature_contract`), e.g.
        ``timm.create_model("resnet18", features_only=True, in_chans=C)``.
    n_classes : int
        Outputs per pixel (1 for a regression).
    decoder : sequence of int, optional
        Decoder channels per level, finest first (one per feature map).

    Attributes
    ----------
    receptive_field : int
        Only when the encoder declares its own ``receptive_field`` (pixels): that plus the
        decoder's convolutions. Otherwise the halo of tiled inference must be given
        (``fit_segmentation(..., halo=)``).
    tile_multiple : int
        The coarsest reduction.

    Examples
    --------
    >>> net = EncoderUNet(TinyEncoder(3), n_classes=2)
    >>> net(torch.zeros(1, 3, 10, 7)).shape, net.tile_multiple, net.receptive_field
    (torch.Size([1, 2, 10, 7]), 4, 28)
    """

    def __init__(
        self, encoder: nn.Module, n_classes: int, decoder: list[int] | tuple[int, ...] | None = None
    ) -> None:
        super().__init__()
        channels, reductions = feature_contract(encoder)
        widths = [int(w) for w in (decoder if decoder is not None else channels)]
        if len(widths) != len(channels) or min(widths) < 1:
            raise ValueError(
                f"decoder needs {len(channels)} positive widths (one per feature map), got {decoder}"
            )
        self.encoder = encoder
        self.channels, self.reductions = channels, reductions
        self.config = dict(n_classes=n_classes, decoder=widths)
        n = len(channels)
        self.up_blocks = nn.ModuleList(
            _block((widths[i + 1] if i + 1 < n - 1 else channels[-1]) + channels[i], widths[i])
            for i in reversed(range(n - 1))
        )
        self.final = _block(widths[0], widths[0]) if reductions[0] > 1 else None
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    @property
    def tile_multiple(self) -> int:
        """Down-sampling factor of the coarsest feature map."""
        return int(self.reductions[-1])

    @property
    def receptive_field(self) -> int:
        """The encoder's ``receptive_field`` plus the decoder's 3x3 convolutions (pixels)."""
        rf = getattr(self.encoder, "receptive_field", None)
        if rf is None:
            raise AttributeError(
                f"{type(self.encoder).__name__} declares no receptive_field: pass halo="
            )
        extra = sum(4 * r for r in self.reductions[:-1]) + (4 if self.final is not None else 0)
        return int(rf) + extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (batch, n_classes, H, W) for ``x`` of shape (batch, channels, H, W)."""
        h, w = x.shape[-2:]
        m = self.tile_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        feats = list(self.encoder(x))
        if len(feats) != len(self.channels):
            raise RuntimeError(
                f"the encoder returned {len(feats)} feature maps, its feature_info declares "
                f"{len(self.channels)}"
            )
        y = feats[-1]
        for i, block in zip(reversed(range(len(feats) - 1)), self.up_blocks, strict=True):
            skip = feats[i]
            y = block(torch.cat([skip, F.interpolate(y, size=skip.shape[-2:], mode="nearest")], 1))
        if self.final is not None:
            y = self.final(F.interpolate(y, size=x.shape[-2:], mode="nearest"))
        return self.head(y)[..., :h, :w]


class _FeatureInfo:
    """``feature_info`` of :class:`TinyEncoder` (timm's ``FeatureInfo`` interface, two methods)."""

    def __init__(self, channels: list[int], reductions: list[int]) -> None:
        self._channels, self._reductions = channels, reductions

    def channels(self) -> list[int]:
        return list(self._channels)

    def reduction(self) -> list[int]:
        return list(self._reductions)


class TinyEncoder(nn.Module):
    """A small encoder honouring timm's ``features_only`` contract (for tests and examples).

    Two stages of conv + batch norm + ReLU + 2x2 max pooling: feature maps of ``width`` and
    ``2 * width`` channels at reductions 2 and 4; ``receptive_field`` declared (pixels).

    Examples
    --------
    >>> [tuple(f.shape) for f in TinyEncoder(3)(torch.zeros(1, 3, 8, 8))]
    [(1, 8, 4, 4), (1, 16, 2, 2)]
    """

    receptive_field = 16

    def __init__(self, in_chans: int, width: int = 8) -> None:
        super().__init__()
        self.stages = nn.ModuleList([_block(in_chans, width), _block(width, 2 * width)])
        self.feature_info = _FeatureInfo([width, 2 * width], [2, 4])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for stage in self.stages:
            x = F.max_pool2d(stage(x), 2)
            out.append(x)
        return out
