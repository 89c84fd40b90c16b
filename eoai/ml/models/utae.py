"""U-TAE: a U-Net whose encoder features are collapsed over time by lightweight temporal attention.

Garnot, V. S. F., Landrieu, L. (2021). *Panoptic Segmentation of Satellite Image Time Series with
Convolutional Temporal Attention Networks.* ICCV 2021, pp. 4872-4881.
https://arxiv.org/abs/2107.07933 (reference code: github.com/VSainteuf/utae-paps, MIT).

Every date of a series ``(batch, time, channel, y, x)`` goes through the same convolutional encoder
(strided convolutions, one feature map per level and date). At the lowest resolution an L-TAE
(Garnot & Landrieu 2020, :mod:`eoai.ml.models.ltae`) is applied to each cell: one master query per
head attends over the dates, whose positions are the sinusoid of the **acquisition day**. Its
attention masks ``(head, batch, time, y, x)`` are upsampled bilinearly to every skip level, where
each channel group (one per head) is the attention-weighted mean of its dates; a U-Net decoder
then goes back up to the input resolution.

Differences from the reference, all for eoai's tiled inference and masked data:

- the encoder normalises with batch norm (the paper: group norm), whose inference statistics are
  fixed: group norm takes its statistics over the whole image, so a map tiled with a halo would
  depend on the tiling;
- missing observations (NaN, e.g. clouds) are masked **per pixel** rather than per date: they are
  left out of the attention at the lowest resolution (a cell attends to the dates where one of its
  pixels is valid) and the upsampled masks are multiplied by each level's validity and
  renormalised over time, so a cloudy pixel takes nothing from its cloudy dates; a date that is
  NaN over the whole patch is the reference's padding;
- the L-TAE's input is normalised per date (group norm over channels) instead of over channels and
  time together, so that a masked date does not change the others.

The default widths are small, for CPUs; the paper's are ``encoder=(64, 64, 64, 128)``,
``decoder=(32, 32, 64, 128)``, ``n_head=16, d_model=256, d_k=4``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .ltae import sinusoid_encoding


def _conv(cin: int, cout: int, k: int = 3, s: int = 1, p: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=False, padding_mode="reflect"),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Down(nn.Module):
    """Strided 4x4 convolution (/2) then a residual pair of 3x3 convolutions."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.down = _conv(cin, cin, k=4, s=2, p=1)
        self.conv1 = _conv(cin, cout)
        self.conv2 = _conv(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.down(x))
        return out + self.conv2(out)


class _Up(nn.Module):
    """Transposed 4x4 convolution (x2), 1x1 convolution of the skip, residual 3x3 pair."""

    def __init__(self, cin: int, cout: int, cskip: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )
        self.skip = nn.Sequential(
            nn.Conv2d(cskip, cskip, 1, bias=False), nn.BatchNorm2d(cskip), nn.ReLU(inplace=True)
        )
        self.conv1 = _conv(cout + cskip, cout)
        self.conv2 = _conv(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        out = self.conv1(torch.cat([self.up(x), self.skip(skip)], dim=1))
        return out + self.conv2(out)


class TemporalAttention2d(nn.Module):
    """L-TAE applied to every cell of a feature-map series: embedding and attention masks.

    Parameters
    ----------
    in_channels : int
        Channels of the feature maps (divisible by ``n_head``).
    d_model, n_head, d_k
        Width of the projection, heads, key size per head (``d_model`` divisible by ``n_head``).
    dropout : float
        Dropout after the MLP.
    period : float
        Period of the day encoding (days).

    Examples
    --------
    >>> import torch
    >>> att = TemporalAttention2d(8, d_model=16, n_head=4, d_k=4)
    >>> out, a = att(torch.randn(2, 5, 8, 3, 3), torch.arange(5.0) * 10, torch.ones(2, 5, 3, 3, dtype=torch.bool))
    >>> out.shape, a.shape
    (torch.Size([2, 8, 3, 3]), torch.Size([4, 2, 5, 3, 3]))
    """

    def __init__(
        self, in_channels: int, d_model: int, n_head: int, d_k: int, dropout: float = 0.2,
        period: float = 1000.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.n_head, self.d_k, self.d_model, self.period = n_head, d_k, d_model, period
        self.in_norm = nn.GroupNorm(n_head, in_channels)
        self.in_proj = nn.Linear(in_channels, d_model)
        self.query = nn.Parameter(torch.randn(n_head, d_k) * math.sqrt(2.0 / d_k))
        self.key = nn.Linear(d_model, n_head * d_k)
        nn.init.normal_(self.key.weight, mean=0.0, std=math.sqrt(2.0 / d_k))
        self.mlp = nn.Sequential(
            nn.Linear(d_model, in_channels), nn.BatchNorm1d(in_channels), nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )  # fmt: skip
        self.out_norm = nn.GroupNorm(n_head, in_channels)

    def forward(
        self, x: torch.Tensor, days: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (b, t, c, h, w), ``days`` (t,) or (b, t), ``valid`` (b, t, h, w) ->
        embedding (b, c, h, w) and attention (head, b, t, h, w)."""
        b, t, c, h, w = x.shape
        n = b * h * w
        seq = x.permute(0, 3, 4, 1, 2).reshape(n * t, c)
        seq = self.in_proj(self.in_norm(seq)).view(n, t, self.d_model)
        if days.dim() == 1:
            days = days.expand(b, t)
        pos = sinusoid_encoding(days, self.d_model // self.n_head, self.period)  # b, t, d/h
        pos = pos.repeat(1, 1, self.n_head)[:, None, None].expand(b, h, w, t, self.d_model)
        seq = seq + pos.reshape(n, t, self.d_model)
        keys = self.key(seq).view(n, t, self.n_head, self.d_k)
        scores = torch.einsum("hd,nthd->nht", self.query, keys) / math.sqrt(self.d_k)
        ok = valid.permute(0, 2, 3, 1).reshape(n, 1, t)
        ok = ok | ~ok.any(dim=-1, keepdim=True)  # a cell without any valid date: uniform
        attn = torch.softmax(scores.masked_fill(~ok, float("-inf")), dim=-1)  # n, head, t
        values = seq.view(n, t, self.n_head, self.d_model // self.n_head)
        out = torch.einsum("nht,nthc->nhc", attn, values).reshape(n, self.d_model)
        out = self.out_norm(self.mlp(out))
        out = out.view(b, h, w, c).permute(0, 3, 1, 2)
        attn = attn.view(b, h, w, self.n_head, t).permute(3, 0, 4, 1, 2)
        return out.contiguous(), attn


class UTAE(nn.Module):
    """U-TAE (Garnot & Landrieu, 2021): U-Net encoder shared over dates + temporal attention.

    Parameters
    ----------
    in_channels : int
        Bands per date.
    n_classes : int
        Output classes.
    encoder : sequence of int
        Channels of each encoder level, from the input resolution down; ``len(encoder) - 1``
        down-sampling steps. All but the last must be divisible by ``n_head``.
    decoder : sequence of int
        Channels of each decoder level (same length, same last width); default ``encoder``.
    n_head, d_model, d_k
        Attention heads, projection width and key size of the L-TAE.
    dropout : float
        Dropout of the L-TAE's MLP.
    period : float
        Period of the acquisition-day encoding (days; 1000 in the paper).
    day_jitter : float
        Training only: the days of each training patch are shifted by one random offset in
        ``[-day_jitter, day_jitter]`` days (0: off), so that the network does not tie the classes
        to the exact days of its training dates (see ``benchmarks/README.md``, "U-TAE").

    Attributes
    ----------
    receptive_field : int
        Receptive field in pixels (an upper bound): sets the halo of tiled inference.
    tile_multiple : int
        ``2 ** (len(encoder) - 1)``, the down-sampling factor.

    Examples
    --------
    >>> import torch
    >>> net = UTAE(in_channels=3, n_classes=4, encoder=(8, 16), n_head=4, d_model=16)
    >>> x = torch.randn(2, 6, 3, 20, 12); x[0, 2, :, :5] = float("nan")  # a cloud on date 2
    >>> net(x, torch.arange(6.0) * 16).shape
    torch.Size([2, 4, 20, 12])
    >>> net.tile_multiple, net.receptive_field
    (2, 30)
    """

    #: The network reads ``(batch, time, channel, y, x)`` series, not stacked dates.
    takes_series = True
    accepts_nan = True

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
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
        enc = [int(c) for c in encoder]
        dec = [int(c) for c in (decoder if decoder is not None else enc)]
        if len(enc) < 2:
            raise ValueError(f"encoder needs at least 2 levels (one down-sampling), got {enc}")
        if len(dec) != len(enc) or dec[-1] != enc[-1]:
            raise ValueError(
                f"decoder {dec} must have as many levels as encoder {enc} and the same last width"
            )
        bad = [c for c in enc if c % n_head]
        if bad or d_model % n_head:
            raise ValueError(
                f"the encoder widths {enc} and d_model={d_model} must be divisible by "
                f"n_head={n_head} (one channel group per head)"
            )
        self.config = dict(
            in_channels=in_channels, n_classes=n_classes, encoder=enc, decoder=dec,
            n_head=n_head, d_model=d_model, d_k=d_k, dropout=dropout, period=period,
            day_jitter=day_jitter,
        )  # fmt: skip
        self.day_jitter = float(day_jitter)
        self.depth = len(enc) - 1
        self.n_head = n_head
        self.in_conv = nn.Sequential(_conv(in_channels, enc[0]), _conv(enc[0], enc[0]))
        self.down = nn.ModuleList(_Down(enc[i], enc[i + 1]) for i in range(self.depth))
        self.temporal = TemporalAttention2d(enc[-1], d_model, n_head, d_k, dropout, period)
        self.up = nn.ModuleList(
            _Up(dec[i], dec[i - 1], enc[i - 1]) for i in range(self.depth, 0, -1)
        )
        self.out_conv = _conv(dec[0], dec[0])
        self.head = nn.Conv2d(dec[0], n_classes, 1)

    @property
    def tile_multiple(self) -> int:
        """Down-sampling factor: tiles whose sides are multiples of it keep the grid aligned."""
        return 2**self.depth

    @property
    def receptive_field(self) -> int:
        """Receptive field in input pixels along the longest path (an upper bound)."""
        rf, jump = 1 + 4, 1  # two 3x3 convolutions
        for _ in range(self.depth):
            rf += 3 * jump  # strided 4x4
            jump *= 2
            rf += 4 * jump  # two 3x3
        rf += 2 * jump  # bilinear upsampling of the attention: one cell either side
        for _ in range(self.depth):
            rf += 2 * jump  # transposed 4x4, stride 2: two coarse cells
            jump //= 2
            rf += 4 * jump  # two 3x3
        return rf + 2  # output 3x3

    def forward(
        self, x: torch.Tensor, days: torch.Tensor, *, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits (batch, class, y, x) of series ``x`` (batch, time, channel, y, x) on ``days``.

        ``days``: (time,) or (batch, time), e.g. days since a reference date. NaN values of ``x``
        are masked (a date is missing at a pixel where one of its channels is NaN). With
        ``return_attention``, also the attention masks (head, batch, time, y', x') at the lowest
        resolution.
        """
        out, attn = self.features(x, days)
        logits = self.head(out)
        return (logits, attn) if return_attention else logits

    def features(self, x: torch.Tensor, days: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last feature map (batch, ``decoder[0]``, y, x) before the classification head, and
        the attention masks (head, batch, time, y', x'); what :class:`eoai.ml.models.UTT` fuses."""
        if x.dim() != 5:
            raise ValueError(
                f"U-TAE input must be (batch, time, channel, y, x), got {tuple(x.shape)}"
            )
        b, t, c, h, w = x.shape
        m = self.tile_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x.reshape(b, t * c, h, w), (0, pw, 0, ph), mode=mode).view(
                b, t, c, h + ph, w + pw
            )
        valid = ~torch.isnan(x).any(dim=2)  # b, t, y, x
        feats = self.in_conv(torch.nan_to_num(x, nan=0.0).flatten(0, 1))  # b*t, c0, y, x
        maps, masks = [feats], [valid]
        for block in self.down:
            feats = block(feats)
            maps.append(feats)
            masks.append(F.max_pool2d(masks[-1].float(), 2) > 0)
        low = maps[-1]
        low = low.view(b, t, *low.shape[1:])
        days = days.to(low.dtype)
        if self.training and self.day_jitter:
            days = days.expand(b, t) + self.day_jitter * (
                2 * torch.rand(b, 1, device=days.device, dtype=days.dtype) - 1
            )
        out, attn = self.temporal(low, days, masks[-1])
        for i, block in enumerate(self.up):
            level = self.depth - 1 - i
            out = block(out, self._aggregate(maps[level], attn, masks[level], b, t))
        return self.out_conv(out)[..., :h, :w], attn

    def _aggregate(
        self, fmap: torch.Tensor, attn: torch.Tensor, valid: torch.Tensor, b: int, t: int
    ) -> torch.Tensor:
        """Attention-weighted mean over time of ``fmap`` (b*t, c, y, x), one group per head."""
        size = fmap.shape[-2:]
        a = F.interpolate(attn.flatten(0, 1), size=size, mode="bilinear", align_corners=False)
        a = a.view(self.n_head, b, t, *size)
        masked = a * valid[None].to(a.dtype)
        total = masked.sum(dim=2, keepdim=True)
        a = torch.where(total > 0, masked / total.clamp_min(1e-12), a)
        groups = fmap.view(b, t, self.n_head, -1, *size)  # b, t, head, c/head, y, x
        out = torch.einsum("hbtyx,bthcyx->bhcyx", a, groups)
        return out.reshape(b, -1, *size)
