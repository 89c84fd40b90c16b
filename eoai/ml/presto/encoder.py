"""The Presto encoder in torch, written for eoai from the paper and the layout of the published weights.

Tseng, Cartuyvels, Zvonkov, Purohit, Rolnick, Kerner (2023), "Lightweight, Pre-trained Transformers
for Remote Sensing Timeseries", arXiv:2304.14065. Weights and reference code: nasaharvest/presto
(MIT licence, Copyright (c) 2024 Presto Authors; see the NOTICE file of eoai). The module names and
tensor shapes follow the published ``default_model.pt`` (``encoder.*`` keys), so its weights load
without renaming.

One token per channel group and timestep (the SRTM group: one token for the whole series), one
Dynamic World token per timestep, one lat/lon token; each token gets a month encoding (sinusoid of
the calendar month), a learnt channel-group embedding and a sinusoid position encoding. Two
pre-norm transformer blocks, then the mean of the tokens and a LayerNorm: a 128-d embedding per
pixel.

Masking differs from the reference code in *how*, not *what*: the authors remove masked tokens,
which needs the same number of masked tokens in every sample of a batch. Here masked tokens are
excluded from attention (key mask) and from the final mean, which gives the same outputs for any
mix of masks in one batch (pixels with different cloud-free months side by side).

Examples
--------
>>> import torch
>>> from eoai.ml.presto.encoder import PrestoEncoder
>>> enc = PrestoEncoder()
>>> sum(p.numel() for p in enc.parameters())
404160
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

#: Channel groups of the 17 normalised channels (indices into that order), in token order.
GROUPS: dict[str, tuple[int, ...]] = {
    "S1": (0, 1),
    "S2_RGB": (2, 3, 4),
    "S2_Red_Edge": (5, 6, 7),
    "S2_NIR_10m": (8,),
    "S2_NIR_20m": (9,),
    "S2_SWIR": (10, 11),
    "ERA5": (12, 13),
    "SRTM": (14, 15),
    "NDVI": (16,),
}
#: Groups with one token for the whole series (static inputs).
STATIC_GROUPS = ("SRTM",)
#: Dynamic World classes (0-8); the token value ``N_DW_CLASSES`` (9) means "missing" and is masked.
N_DW_CLASSES = 9


def sinusoid_table(n_positions: int, dim: int, period: float = 1000.0) -> torch.Tensor:
    """Sinusoid position encoding ``(n_positions, dim)``: sin on even, cos on odd columns.

    Examples
    --------
    >>> sinusoid_table(3, 4)[1].tolist()[:2]  # doctest: +ELLIPSIS
    [0.84147..., 0.54030...]
    """
    pos = np.arange(n_positions, dtype="float64")[:, None]
    j = np.arange(dim)
    angle = pos / np.power(period, 2 * (j // 2) / dim)
    table = np.where(j % 2 == 0, np.sin(angle), np.cos(angle))
    return torch.tensor(table, dtype=torch.float32)


def month_table(dim: int) -> torch.Tensor:
    """Month encoding ``(12, dim)``: ``dim/2`` columns of sin, then ``dim/2`` of cos of 2 pi m / 12.

    Examples
    --------
    >>> month_table(4)[0].tolist()
    [0.0, 0.0, 1.0, 1.0]
    """
    angles = np.arange(12, dtype="float64") * (2 * np.pi / 12)
    half = dim // 2
    table = np.concatenate(
        [np.repeat(np.sin(angles)[:, None], half, 1), np.repeat(np.cos(angles)[:, None], half, 1)],
        axis=1,
    )
    return torch.tensor(table, dtype=torch.float32)


class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        mask = None if keep is None else keep[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), keep)
        return x + self.mlp(self.norm2(x))


class PrestoEncoder(nn.Module):
    """Presto's encoder: normalised inputs, masks, Dynamic World, lat/lon, months -> embedding.

    Parameters
    ----------
    embedding_size, channel_embed_ratio, month_embed_ratio, depth, mlp_ratio, num_heads
        Architecture (``config/default.json`` of the published model: 128, 0.25, 0.25, 2, 4, 8).
    max_sequence_length
        Number of position encodings: the most timesteps one series can have (24).

    Examples
    --------
    >>> import torch
    >>> enc = PrestoEncoder().eval()
    >>> x = torch.zeros(2, 3, 17)
    >>> enc(x, torch.zeros(2, 3, 17, dtype=torch.bool), torch.full((2, 3), 9),
    ...     torch.zeros(2, 2), torch.tensor([[0, 1, 2], [5, 6, 7]])).shape
    torch.Size([2, 128])
    """

    def __init__(
        self,
        embedding_size: int = 128,
        channel_embed_ratio: float = 0.25,
        month_embed_ratio: float = 0.25,
        depth: int = 2,
        mlp_ratio: float = 4,
        num_heads: int = 8,
        max_sequence_length: int = 24,
    ) -> None:
        super().__init__()
        self.embedding_size = embedding_size
        self.max_sequence_length = max_sequence_length
        self.eo_patch_embed = nn.ModuleDict(
            {g: nn.Linear(len(idx), embedding_size) for g, idx in GROUPS.items()}
        )
        self.dw_embed = nn.Embedding(N_DW_CLASSES + 1, embedding_size)
        self.latlon_embed = nn.Linear(3, embedding_size)
        self.blocks = nn.ModuleList(
            [_Block(embedding_size, num_heads, mlp_ratio) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(embedding_size)
        channel_dim = int(embedding_size * channel_embed_ratio)
        month_dim = int(embedding_size * month_embed_ratio)
        pos_dim = int(embedding_size * (1 - (channel_embed_ratio + month_embed_ratio)))
        # fixed encodings (not trained; stored in the state dict of the published model)
        self.pos_embed = nn.Parameter(
            sinusoid_table(max_sequence_length, pos_dim)[None], requires_grad=False
        )
        self.month_embed = nn.Embedding.from_pretrained(month_table(month_dim), freeze=True)
        self.channel_embed = nn.Embedding(len(GROUPS) + 1, channel_dim)
        self._group_index = {g: i for i, g in enumerate(GROUPS)}
        self._group_index["dynamic_world"] = len(GROUPS)

    @staticmethod
    def cartesian(latlon: torch.Tensor) -> torch.Tensor:
        """(..., 2) latitude, longitude in degrees -> (..., 3) point on the unit sphere."""
        rad = latlon * (math.pi / 180)
        lat, lon = rad[..., 0], rad[..., 1]
        return torch.stack(
            [torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat)],
            dim=-1,
        )

    def tokens(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        dynamic_world: torch.Tensor,
        latlon: torch.Tensor,
        month: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All tokens ``(batch, n_tokens, dim)`` and which take part ``(batch, n_tokens)`` bool.

        Token order: lat/lon, then each channel group (``T`` tokens each, SRTM one), then Dynamic
        World (``T`` tokens).
        """
        b, t, _ = x.shape
        if t > self.max_sequence_length:
            raise ValueError(
                f"{t} timesteps; this encoder takes at most {self.max_sequence_length}"
            )
        month_emb = self.month_embed(month)  # (b, t, m)
        pos = self.pos_embed[:, :t].expand(b, t, -1)  # (b, t, p)
        toks = [self.latlon_embed(self.cartesian(latlon))[:, None]]
        keeps = [torch.ones(b, 1, dtype=torch.bool, device=x.device)]
        for group, idx in GROUPS.items():
            ch = self.channel_embed.weight[self._group_index[group]]
            tok = self.eo_patch_embed[group](x[:, :, list(idx)])
            gmask = mask[:, :, list(idx)].any(dim=-1)
            if group in STATIC_GROUPS:
                enc = torch.cat(
                    [torch.zeros_like(month_emb[:, :1]), ch.expand(b, 1, -1), torch.zeros_like(pos[:, :1])],
                    dim=-1,
                )  # fmt: skip
                tok, gmask = tok[:, :1], gmask[:, :1]
            else:
                enc = torch.cat([month_emb, ch.expand(b, t, -1), pos], dim=-1)
            toks.append(tok + enc)
            keeps.append(~gmask)
        ch = self.channel_embed.weight[self._group_index["dynamic_world"]]
        toks.append(
            self.dw_embed(dynamic_world) + torch.cat([month_emb, ch.expand(b, t, -1), pos], -1)
        )
        keeps.append(dynamic_world != N_DW_CLASSES)
        return torch.cat(toks, dim=1), torch.cat(keeps, dim=1)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        dynamic_world: torch.Tensor,
        latlon: torch.Tensor,
        month: torch.Tensor,
    ) -> torch.Tensor:
        """Embeddings ``(batch, embedding_size)``.

        Parameters
        ----------
        x
            ``(batch, T, 17)`` normalised inputs (see :func:`eoai.ml.presto.card.normalise`).
        mask
            ``(batch, T, 17)`` bool, True where an input is missing (its group's token is masked
            when any of its channels is).
        dynamic_world
            ``(batch, T)`` int64 classes 0-8, 9 = missing.
        latlon
            ``(batch, 2)`` latitude, longitude in degrees.
        month
            ``(batch, T)`` int64 calendar month of each timestep, 0 = January.
        """
        tokens, keep = self.tokens(x, mask, dynamic_world, latlon, month)
        used = keep.any(dim=0)  # tokens masked in the whole batch cost nothing
        if not bool(used.all()):
            tokens, keep = tokens[:, used], keep[:, used]
        attn_keep = None if bool(keep.all()) else keep
        for blk in self.blocks:
            tokens = blk(tokens, attn_keep)
        w = keep.to(tokens.dtype)[..., None]
        mean = (tokens * w).sum(dim=1) / w.sum(dim=1)
        return self.norm(mean)


def encode_tokens(
    encoder: PrestoEncoder,
    x: torch.Tensor,
    mask: torch.Tensor,
    dynamic_world: torch.Tensor,
    latlon: torch.Tensor,
    month: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's output tokens ``(batch, n_tokens, dim)`` (after its LayerNorm) and ``keep``.

    As in the reference code's ``eval_task=False`` path: the kept tokens of each series are moved
    to the front (stable order) and the batch is cut to the longest kept sequence, so masked
    tokens cost nothing; the outputs are put back at their token positions (zeros where masked,
    which the decoder replaces by its mask token).
    """
    tokens, keep = encoder.tokens(x, mask, dynamic_world, latlon, month)
    b, n, d = tokens.shape
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    n_kept = int(keep.sum(dim=1).max())
    order = order[:, :n_kept]
    packed = tokens.gather(1, order[..., None].expand(b, n_kept, d))
    pkeep = keep.gather(1, order)
    attn_keep = None if bool(pkeep.all()) else pkeep
    for blk in encoder.blocks:
        packed = blk(packed, attn_keep)
    packed = encoder.norm(packed) * pkeep[..., None].to(packed.dtype)
    out = packed.new_zeros(b, n, d).scatter(1, order[..., None].expand(b, n_kept, d), packed)
    return out, keep


class PrestoDecoder(nn.Module):
    """Presto's decoder (masked auto-encoding): encoder tokens -> every channel of every step.

    The layout of the published ``default_model.pt`` (``decoder.*`` keys): a linear map of the
    encoder tokens, a learnt mask token in place of every masked token, the month / channel /
    position encodings (the channel embedding is the encoder's, shared), two transformer blocks
    over all tokens, a LayerNorm, one linear output per channel group and a Dynamic World
    classifier.

    Parameters
    ----------
    channel_embed
        The encoder's ``channel_embed`` (shared, as in the reference model).
    encoder_dim, decoder_dim, depth, num_heads, mlp_ratio, max_sequence_length
        Sizes (published: 128, 128, 2, 8, 4, 24).

    Examples
    --------
    >>> enc = PrestoEncoder()
    >>> dec = PrestoDecoder(enc.channel_embed)
    >>> sum(p.numel() for p in dec.parameters() if p is not enc.channel_embed.weight) > 0
    True
    """

    def __init__(
        self,
        channel_embed: nn.Embedding,
        encoder_dim: int = 128,
        decoder_dim: int = 128,
        depth: int = 2,
        num_heads: int = 8,
        mlp_ratio: float = 4,
        max_sequence_length: int = 24,
    ) -> None:
        super().__init__()
        self.decoder_embed = nn.Linear(encoder_dim, decoder_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(decoder_dim))
        self.decoder_blocks = nn.ModuleList(
            [_Block(decoder_dim, num_heads, mlp_ratio) for _ in range(depth)]
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.eo_decoder_pred = nn.ModuleDict(
            {g: nn.Linear(decoder_dim, len(idx)) for g, idx in GROUPS.items()}
        )
        self.dw_decoder_pred = nn.Linear(decoder_dim, N_DW_CLASSES)
        self.channel_embeddings = channel_embed
        rest = decoder_dim - channel_embed.weight.shape[-1]
        self.pos_embed = nn.Parameter(
            sinusoid_table(max_sequence_length, rest // 2)[None], requires_grad=False
        )
        self.month_embed = nn.Embedding.from_pretrained(month_table(rest // 2), freeze=True)
        for m in self.modules():  # the reference initialisation (xavier, as the JAX ViT)
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(
        self, tokens: torch.Tensor, keep: torch.Tensor, month: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction ``(batch, T, 17)`` of the normalised channels and Dynamic World logits
        ``(batch, T, 9)``, from :func:`encode_tokens` output (token order of
        :meth:`PrestoEncoder.tokens`)."""
        b, n, _ = tokens.shape
        t = month.shape[1]
        x = self.decoder_embed(tokens)
        x = torch.where(keep[..., None], x, self.mask_token.to(x.dtype).expand_as(x))
        month_emb = self.month_embed(month)
        pos = self.pos_embed[:, :t].expand(b, t, -1)
        enc = [torch.zeros(b, 1, x.shape[-1], dtype=x.dtype, device=x.device)]  # lat/lon
        names = [*GROUPS, "dynamic_world"]
        for i, g in enumerate(names):
            ch = self.channel_embeddings.weight[i]
            if g in STATIC_GROUPS:
                enc.append(
                    torch.cat(
                        [
                            torch.zeros_like(month_emb[:, :1]),
                            ch.expand(b, 1, -1),
                            torch.zeros_like(pos[:, :1]),
                        ],
                        dim=-1,
                    )  # fmt: skip
                )
            else:
                enc.append(torch.cat([month_emb, ch.expand(b, t, -1), pos], dim=-1))
        x = x + torch.cat(enc, dim=1)
        for blk in self.decoder_blocks:
            x = blk(x, None)
        x = self.decoder_norm(x)
        out, start = [], 1
        for g in GROUPS:
            width = 1 if g in STATIC_GROUPS else t
            pred = self.eo_decoder_pred[g](x[:, start : start + width])
            out.append(pred.expand(b, t, -1) if width == 1 else pred)
            start += width
        dw = self.dw_decoder_pred(x[:, start : start + t])
        return torch.cat(out, dim=-1), dw
