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
