"""A DSen2-style residual network for Sentinel-2 super-resolution (plain ``torch.nn.Module``).

Reference: C. Lanaras, J. Bioucas-Dias, S. Galliani, E. Baltsavias, K. Schindler (2018),
"Super-resolution of Sentinel-2 images: Learning a globally applicable deep neural network",
ISPRS Journal of Photogrammetry and Remote Sensing 146, 305-319, doi:10.1016/j.isprsjprs.2018.09.018.

As in DSen2, the inputs are the fine (10 m) bands and the coarse (20 m) bands upsampled to the
fine grid; a 3x3 convolution + ReLU is followed by residual blocks (conv-ReLU-conv, scaled by
0.1) and a last convolution whose output is *added to the upsampled coarse bands*: the network
only learns the missing high frequencies. Here the upsampled input is the bicubic interpolation
of the nearest-replicated coarse bands (:func:`eoai.superres.baselines.replicated_kernel`), and
per-band normalisation (mean / std of the training image) is part of the module (buffers), so
the module maps reflectances to reflectances. With ``n_guide=0`` it is a single-image x2 network
(used for the 10 m -> 5 m mode). DSen2 itself uses 128 features and 6 blocks; the defaults here
are smaller because the network is trained on the user's own image, often on a CPU.

Examples
--------
>>> import torch
>>> from eoai.superres.net import DSen2Net
>>> net = DSen2Net(n_low=6, n_guide=4, width=16, blocks=2)
>>> low = torch.rand(1, 6, 32, 32); guide = torch.rand(1, 4, 32, 32)
>>> net(guide, net.upsample_base(low)).shape
torch.Size([1, 6, 32, 32])
>>> net.receptive_radius
9
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._renamed import renamed_parameters
from .baselines import replicated_kernel


class _ResBlock(nn.Module):
    def __init__(self, width: int, scale: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.conv2(F.relu(self.conv1(x)))


class DSen2Net(nn.Module):
    """Residual super-resolution network in the manner of DSen2 (Lanaras et al. 2018).

    Parameters
    ----------
    n_low : int
        Number of coarse bands to sharpen (also the number of outputs).
    n_guide : int
        Number of fine guide bands (0 for single-image x2).
    width : int
        Convolution width, features per layer (DSen2: 128; ``features=`` before eoai issue #14).
    blocks : int
        Number of residual blocks (DSen2: 6).
    res_scale : float
        Scaling of each residual block's output (DSen2: 0.1).

    Examples
    --------
    >>> net = DSen2Net(2, 0, width=8, blocks=1)
    >>> sum(p.numel() for p in net.parameters())
    1466
    """

    @renamed_parameters(features="width")
    def __init__(
        self,
        n_low: int,
        n_guide: int,
        width: int = 64,
        blocks: int = 6,
        res_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_low, self.n_guide = int(n_low), int(n_guide)
        self.width, self.blocks, self.res_scale = int(width), int(blocks), float(res_scale)
        self.head = nn.Conv2d(self.n_low + self.n_guide, self.width, 3, padding=1)
        self.body = nn.Sequential(*[_ResBlock(self.width, res_scale) for _ in range(blocks)])
        self.tail = nn.Conv2d(self.width, self.n_low, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as the bicubic upsampling
        nn.init.zeros_(self.tail.bias)
        self.register_buffer("low_mean", torch.zeros(self.n_low))
        self.register_buffer("low_std", torch.ones(self.n_low))
        self.register_buffer("guide_mean", torch.zeros(self.n_guide))
        self.register_buffer("guide_std", torch.ones(self.n_guide))
        k = torch.as_tensor(replicated_kernel("bicubic"), dtype=torch.float32)
        self.register_buffer("base_kernel", k)

    @property
    def receptive_radius(self) -> int:
        """Pixels of context each output pixel depends on (bicubic base + convolutions)."""
        return len(self.base_kernel) // 2 + 2 + 2 * self.blocks

    def config(self) -> dict:
        """Constructor arguments (stored with saved weights)."""
        return {
            "n_low": self.n_low,
            "n_guide": self.n_guide,
            "width": self.width,
            "blocks": self.blocks,
            "res_scale": self.res_scale,
        }

    def set_normalisation(self, low_mean, low_std, guide_mean=None, guide_std=None) -> None:
        """Store the per-band mean and std used to normalise the inputs."""
        self.low_mean.copy_(torch.as_tensor(low_mean, dtype=torch.float32))
        self.low_std.copy_(torch.as_tensor(low_std, dtype=torch.float32).clamp_min(1e-6))
        if self.n_guide:
            self.guide_mean.copy_(torch.as_tensor(guide_mean, dtype=torch.float32))
            self.guide_std.copy_(torch.as_tensor(guide_std, dtype=torch.float32).clamp_min(1e-6))

    def upsample_base(self, low_rep: torch.Tensor) -> torch.Tensor:
        """Bicubic interpolation of nearest-replicated coarse bands ``(N, n_low, H, W)``.

        Edges use zero padding: in tiled inference they fall inside the cropped halo.
        """
        k = self.base_kernel.to(low_rep.dtype)
        r = int(self.base_kernel.shape[0]) // 2
        c = self.n_low  # a Python int, so the kernels have a static shape (ONNX export)
        ky = k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
        kx = k.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
        out = F.conv2d(low_rep, ky, padding=(r, 0), groups=c)
        return F.conv2d(out, kx, padding=(0, r), groups=c)

    def forward(self, guide: torch.Tensor | None, base: torch.Tensor) -> torch.Tensor:
        """Sharpened coarse bands ``base + residual`` from guide ``(N, n_guide, H, W)`` and base."""
        lm = self.low_mean.view(1, -1, 1, 1)
        ls = self.low_std.view(1, -1, 1, 1)
        x = (base - lm) / ls
        if self.n_guide:
            g = (guide - self.guide_mean.view(1, -1, 1, 1)) / self.guide_std.view(1, -1, 1, 1)
            x = torch.cat([g, x], dim=1)
        res = self.tail(self.body(F.relu(self.head(x))))
        return base + res * ls
