"""L-TAE: Lightweight Temporal Attention Encoder for pixel time series.

Garnot, V. S. F., Landrieu, L. (2020). *Lightweight Temporal Self-Attention for Classifying Satellite
Images Time Series.* AALTD 2020, LNCS 12588. https://arxiv.org/abs/2007.00586

Each head has one learnt *master query*; keys come from a linear map of the input, values are the
input channels split between the heads. The positional encoding is a sinusoid of the **acquisition
day** (not of the index), so a trained model can be applied to a cube with other dates, and missing
observations (NaN, e.g. clouds) are simply left out of the attention instead of being gap-filled.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoid_encoding(days: torch.Tensor, d: int, period: float = 1000.0) -> torch.Tensor:
    """Sinusoidal encoding of ``days`` (any shape) into ``d`` channels, as in Vaswani et al. (2017).

    Examples
    --------
    >>> import torch
    >>> sinusoid_encoding(torch.tensor([0.0, 10.0]), 4).shape
    torch.Size([2, 4])
    """
    i = torch.arange(d, device=days.device, dtype=torch.float32)
    angle = days.float()[..., None] / period ** (2 * torch.div(i, 2, rounding_mode="floor") / d)
    return torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle))


class LTAE(nn.Module):
    """Lightweight Temporal Attention Encoder + MLP classifier (Garnot & Landrieu, 2020).

    Parameters
    ----------
    in_channels : int
        Spectral features per observation.
    n_classes : int
        Number of output classes.
    d_model : int
        Width of the projected input (256 in the paper).
    n_head : int
        Attention heads (16 in the paper); ``d_model`` must be divisible by it.
    d_k : int
        Key/query size per head (8 in the paper).
    mlp : tuple of int
        Widths of the MLP after the attention (256, 128 in the paper).
    dropout : float
        Dropout rate.
    period : float
        Period T of the positional encoding, in days (1000 in the paper).
    encoder : tuple of int
        Widths of a per-observation MLP (Linear + ReLU) applied to the channels before the
        projection, the single-pixel case of the paper's pixel-set encoder (its MLP1 is
        (32, 64)); ``()`` projects the raw channels linearly.
    input_norm : bool
        Layer-normalise each observation over its channels first, as the paper does on its learnt
        pixel-set embeddings. Off by default: on raw spectra it removes the brightness, and on a
        single channel (NDVI) it zeroes the signal; :mod:`eoai.ml.deep` standardises each band with
        the training statistics instead.

    Examples
    --------
    >>> import torch
    >>> net = LTAE(in_channels=4, n_classes=3, d_model=32, n_head=4, d_k=4, mlp=(32, 16))
    >>> x = torch.randn(8, 10, 4); x[0, 3] = float("nan")        # a cloudy date
    >>> days = torch.arange(10.0) * 5
    >>> net(x, days).shape
    torch.Size([8, 3])
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        d_model: int = 128,
        n_head: int = 16,
        d_k: int = 8,
        mlp: tuple[int, ...] = (128, 64),
        dropout: float = 0.2,
        period: float = 1000.0,
        input_norm: bool = False,
        encoder: tuple[int, ...] = (32, 64),
    ) -> None:
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} must be divisible by n_head={n_head}")
        self.config = dict(
            in_channels=in_channels,
            n_classes=n_classes,
            d_model=d_model,
            n_head=n_head,
            d_k=d_k,
            mlp=list(mlp),
            dropout=dropout,
            period=period,
            input_norm=input_norm,
            encoder=list(encoder),
        )
        self.n_head, self.d_k, self.d_model, self.period = n_head, d_k, d_model, period
        self.in_norm = nn.LayerNorm(in_channels) if input_norm else nn.Identity()
        enc: list[nn.Module] = []
        width = in_channels
        for wd in encoder:
            enc += [nn.Linear(width, wd), nn.ReLU()]
            width = wd
        self.encoder = nn.Sequential(*enc)
        self.in_proj = nn.Linear(width, d_model)
        self.proj_norm = nn.LayerNorm(d_model)
        self.query = nn.Parameter(torch.randn(n_head, d_k) * math.sqrt(2.0 / d_k))
        self.key = nn.Linear(d_model, n_head * d_k)
        widths = [d_model, *mlp]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=False):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        self.mlp = nn.Sequential(*layers, nn.Dropout(dropout))
        self.out_norm = nn.LayerNorm(widths[-1])
        self.classifier = nn.Linear(widths[-1], n_classes)

    def encode(self, x: torch.Tensor, days: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedding (batch, mlp[-1]) and attention (batch, head, time) of series ``x``."""
        b, t, _ = x.shape
        valid = ~torch.isnan(x).any(dim=-1)  # (b, t)
        x = torch.nan_to_num(x, nan=0.0)
        h = self.proj_norm(self.in_proj(self.encoder(self.in_norm(x))))
        if days.dim() == 1:
            days = days.expand(b, t)
        pos = sinusoid_encoding(days, self.d_model // self.n_head, self.period)
        h = h + pos.repeat(1, 1, self.n_head)
        keys = self.key(h).view(b, t, self.n_head, self.d_k).permute(0, 2, 1, 3)  # b,h,t,dk
        scores = torch.einsum("hd,bhtd->bht", self.query, keys) / math.sqrt(self.d_k)
        # a pixel with no valid date attends uniformly; its prediction is discarded upstream
        mask = valid[:, None, :] | ~valid.any(dim=1)[:, None, None]
        attn = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        values = h.view(b, t, self.n_head, self.d_model // self.n_head).permute(0, 2, 1, 3)
        out = torch.einsum("bht,bhtc->bhc", attn, values).reshape(b, self.d_model)
        return self.out_norm(self.mlp(out)), attn

    def forward(self, x: torch.Tensor, days: torch.Tensor) -> torch.Tensor:
        """Logits for ``x`` (batch, time, channels) observed on ``days`` ((time,) or (batch, time))."""
        return self.classifier(self.encode(x, days)[0])
