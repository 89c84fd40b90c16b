"""Self-supervised pre-training of Presto on the user's own unlabelled series (masked auto-encoding).

:func:`pretrain_presto` continues the pre-training of the published Presto weights (or starts from
random weights) on pixel series of the user's region, as in the Presto paper (Tseng et al. 2023,
section 3 and the reference ``train.py``): each series gets a mask of ``mask_ratio`` of its tokens
(one token per channel group and month, one Dynamic World token per month, one SRTM token), drawn
with one of four strategies per series, the encoder sees only the unmasked tokens, the decoder
reconstructs every channel, and the loss is the MSE on the masked, *observed* normalised channels
plus the cross-entropy on the masked, observed Dynamic World classes (weight
``min(1, 2 * n_dw / n_eo)``, the reference's). Values missing in the data (clouds, absent
sensors) are masked in the input and never enter the loss: nodata is never a target.

The published ``default_model.pt`` holds the decoder (``decoder.*`` keys); it is loaded with the
encoder, so pre-training continues from the authors' state instead of a new decoder. Models that
have no decoder (an encoder saved alone, or ``"scratch"``) get a new one (reported in
``model.metadata["decoder"]``).

Masking strategies (``masks=``; each series draws one uniformly, then random tokens fill up to
exactly ``int(ratio * n_tokens)`` masked tokens, the SRTM token being masked with probability
``ratio``, as in the reference ``make_mask``):

- ``"random"``: random tokens;
- ``"channel_groups"``: whole channel groups (all months of S1, of S2 RGB, ..., of Dynamic World);
- ``"contiguous_time"``: one contiguous run of months, every group;
- ``"random_time"``: random months, every group.

The result is a :class:`~eoai.ml.presto.model.PrestoModel` (same model card) with its decoder
attached: :func:`~eoai.ml.presto.embed`, :func:`~eoai.ml.presto.finetune_presto`,
:func:`~eoai.ml.presto.fit_presto_head` and :func:`~eoai.ml.presto.save_encoder` take it like the
published one.

Examples
--------
>>> import numpy as np
>>> from eoai.ml.presto.pretrain import make_masks
>>> eo, dw = make_masks(4, 12, ("channel_groups",), 0.75, np.random.default_rng(0))
>>> eo.shape, dw.shape
((4, 12, 17), (4, 12))
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ... import _progress, _skipped
from ...errors import DataSkippedWarning, InputError, ModelError
from .card import PRESTO_CARD, ModelCard
from .encoder import GROUPS, N_DW_CLASSES, STATIC_GROUPS
from .model import PrestoModel, _new_decoder

MASKS = ("random", "channel_groups", "contiguous_time", "random_time")
#: Columns of the token grid of one month: the temporal channel groups, then Dynamic World.
_TIME_GROUPS = [g for g in GROUPS if g not in STATIC_GROUPS]
_DW_WEIGHT = 2.0  # the reference's dynamic_world_loss_weight


def n_masked_tokens(n_steps: int, ratio: float) -> tuple[int, int]:
    """(tokens of a series, tokens masked): ``T * 9 + 1`` tokens (8 temporal groups and Dynamic
    World per month, one SRTM token), ``int(ratio * n)`` of them masked (the reference's rule).

    Examples
    --------
    >>> n_masked_tokens(12, 0.75)
    (109, 81)
    """
    n = n_steps * (len(_TIME_GROUPS) + 1) + 1
    return n, int(n * ratio)


def make_masks(
    n: int,
    n_steps: int,
    strategies: tuple[str, ...],
    ratio: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Masked-auto-encoding masks of ``n`` series: ``(n, T, 17)`` channels and ``(n, T)`` DW.

    Each series draws one of ``strategies`` (see the module docstring); exactly
    ``n_masked_tokens(T, ratio)[1]`` of its tokens are masked (a token masks all channels of its
    group; the SRTM token masks SRTM at every step).

    Examples
    --------
    >>> eo, dw = make_masks(2, 3, ("random",), 0.5, np.random.default_rng(0))
    >>> eo.dtype, dw.dtype
    (dtype('bool'), dtype('bool'))
    """
    cols = len(_TIME_GROUPS) + 1
    _, k = n_masked_tokens(n_steps, ratio)
    srtm = rng.random(n) < ratio
    k_i = k - srtm.astype(int)  # tokens left to mask on the (T, 9) grid
    which = rng.integers(len(strategies), size=n)
    score = 1 + rng.random((n, n_steps, cols))  # >= 1: the random remainder
    first = rng.random((n, n_steps, cols)) * 1e-3  # < 1: structured tokens, masked first
    for s, name in enumerate(strategies):
        rows = np.flatnonzero(which == s)
        if rows.size == 0 or name == "random":
            continue
        kk = k_i[rows]
        if name == "channel_groups":
            rank = np.argsort(np.argsort(rng.random((rows.size, cols)), axis=1), axis=1)
            chosen = (rank < (kk // n_steps)[:, None])[:, None, :]  # (r, 1, cols)
        else:
            n_t = kk // cols
            if name == "random_time":
                rank = np.argsort(np.argsort(rng.random((rows.size, n_steps)), axis=1), axis=1)
                chosen_t = rank < n_t[:, None]
            else:  # contiguous_time
                start = (rng.random(rows.size) * (n_steps - n_t + 1)).astype(int)
                t = np.arange(n_steps)[None]
                chosen_t = (t >= start[:, None]) & (t < (start + n_t)[:, None])
            chosen = chosen_t[:, :, None]  # (r, T, 1)
        sub = score[rows]
        score[rows] = np.where(chosen, first[rows], sub)
    flat = score.reshape(n, -1)
    ranks = np.argsort(np.argsort(flat, axis=1), axis=1)
    grid = (ranks < k_i[:, None]).reshape(n, n_steps, cols)
    eo = np.zeros((n, n_steps, sum(len(v) for v in GROUPS.values())), dtype=bool)
    for j, g in enumerate(_TIME_GROUPS):
        eo[:, :, list(GROUPS[g])] = grid[:, :, j : j + 1]
    for g in STATIC_GROUPS:
        eo[:, :, list(GROUPS[g])] = srtm[:, None, None]
    return eo, grid[:, :, -1]


def _start_model(model: Any) -> tuple[Any, Any, str, ModelCard, str]:
    """Copies to train: (encoder, decoder, where the decoder came from, card, source)."""
    from .encoder import PrestoEncoder
    from .model import load_encoder

    if isinstance(model, str) and model == "scratch":
        import torch

        enc = PrestoEncoder(**PRESTO_CARD.architecture)
        for m in enc.modules():  # the reference initialisation of the linear layers
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.xavier_uniform_(m.weight)
                torch.nn.init.zeros_(m.bias)
        return enc, _new_decoder(enc, PRESTO_CARD), "new (from scratch)", PRESTO_CARD, "scratch"
    if model is None:
        raise InputError(
            "pretrain_presto needs a starting model: a PrestoModel (eoai.ml.presto.load_encoder"
            "('default_model.pt', card=PRESTO_CARD) for the published weights), the path of a "
            "weights file with its card, or model='scratch' for random weights"
        )
    if isinstance(model, str | Path):
        model = load_encoder(model)
    if not isinstance(model, PrestoModel):
        raise ModelError(
            f"pretrain_presto needs a PrestoModel, a weights path or 'scratch', got "
            f"{type(model).__name__}"
        )
    if model.decoder is not None:
        enc, dec = copy.deepcopy((model.encoder, model.decoder))  # keeps the shared embedding
        return enc, dec, f"from {model.source or 'memory'}", model.card, model.source
    enc = copy.deepcopy(model.encoder)
    return enc, _new_decoder(enc, model.card), "new (the model had none)", model.card, model.source


def _cube_series(
    cube: xr.Dataset, card: ModelCard, n_pixels: int, seed: int | None, scaling: str, s1_units: str
) -> tuple[np.ndarray, ...]:
    """Random pixels of a cube as the encoder's inputs; one compute of just those pixels."""
    import dask

    from .embedding import _latlon, _prepare, _series

    cube, arrays, layout, steps, months, _, crs_wkt = _prepare(
        cube, card, scaling, s1_units, what="pretrain_presto"
    )
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(ny * nx, size=min(int(n_pixels), ny * nx), replace=False))
    iy, ix = xr.DataArray(pick // nx, dims="sample"), xr.DataArray(pick % nx, dims="sample")
    points = []
    for var in arrays.values():
        p = var.isel(y=iy, x=ix)
        points.append(p.transpose(*(("time",) if "time" in p.dims else ()), "sample").data)
    data = dask.compute(*points)  # one compute, only the sampled pixels
    x, mask, dw, valid = _series(list(data), layout, card, steps, months, len(pick))
    if not valid.all():
        _skipped.warn_at_user(
            f"pretrain_presto: {int((~valid).sum())} of {len(pick)} sampled pixels have no valid "
            "Sentinel-1 / Sentinel-2 observation in any month and were left out",
            DataSkippedWarning,
        )
    xs, ys = cube["x"].values[pick % nx][valid], cube["y"].values[pick // nx][valid]
    month = np.broadcast_to(months, (int(valid.sum()), len(months))).copy()
    return x[valid], mask[valid], dw[valid], _latlon(xs, ys, crs_wkt), month


def _loss(enc, dec, batch, eo_mask, dw_mask, torch):
    """The reference's masked-auto-encoding loss of one batch (sum of terms, and its counts)."""
    from .encoder import encode_tokens

    x, missing, dw, latlon, month = batch
    x_in = torch.where(eo_mask, torch.zeros_like(x), x)
    m_in = missing | eo_mask
    dw_in = torch.where(dw_mask, torch.full_like(dw, N_DW_CLASSES), dw)
    tokens, keep = encode_tokens(enc, x_in, m_in, dw_in, latlon, month)
    pred, dw_logits = dec(tokens, keep, month)
    target = eo_mask & ~missing
    srtm = [i for g in STATIC_GROUPS for i in GROUPS[g]]
    target[:, 1:, srtm] = False  # one SRTM token: count it once
    dw_target = dw_mask & (dw != N_DW_CLASSES)
    n_eo, n_dw = int(target.sum()), int(dw_target.sum())
    eo_loss = ((pred - x) ** 2)[target].mean() if n_eo else pred.sum() * 0
    if n_dw:
        dw_loss = torch.nn.functional.cross_entropy(dw_logits[dw_target], dw[dw_target])
        weight = min(1.0, _DW_WEIGHT * n_dw / max(n_eo, 1))
    else:
        dw_loss, weight = eo_loss * 0, 0.0
    return eo_loss + weight * dw_loss, eo_loss, n_eo


def pretrain_presto(
    data: xr.Dataset | np.ndarray,
    *,
    model: PrestoModel | str | Path | None = None,
    latlon: np.ndarray | None = None,
    month: np.ndarray | None = None,
    dynamic_world: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    masks: tuple[str, ...] = MASKS,
    mask_ratio: float = 0.75,
    n_pixels: int = 20000,
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 1e-4,
    weight_decay: float = 0.05,
    val_fraction: float = 0.1,
    patience: int = 3,
    seed: int | None = 0,
    device: str = "auto",
    progress: bool | None = None,
    scaling: str = "auto",
    s1_units: str = "auto",
) -> PrestoModel:
    """Continue (or start) Presto's masked auto-encoding pre-training on unlabelled series.

    Parameters
    ----------
    data
        A ``(time, y, x)`` cube, as for :func:`eoai.ml.presto.embed` (``n_pixels`` random pixels
        are composited and used; only they are computed, in one compute), or ``(n, T, 17)``
        normalised series as for :meth:`PrestoModel.embed_arrays` (NaN = missing).
    model
        Where to start: a :class:`PrestoModel` (the published weights from
        ``load_encoder(path, card=PRESTO_CARD)`` come with their decoder), a weights path with
        its card, or ``"scratch"`` (random weights, :data:`PRESTO_CARD`). Left unchanged.
    latlon, month, dynamic_world, mask
        For array input: ``(n, 2)`` degrees, ``(n, T)`` months 0-11 (required), ``(n, T)``
        classes (9 = missing; default all missing), ``(n, T, 17)`` True = missing.
    masks
        Masking strategies drawn per series: ``"random"``, ``"channel_groups"``,
        ``"contiguous_time"``, ``"random_time"`` (default all four, as Presto).
    mask_ratio
        Fraction of the tokens masked (0.75 as Presto).
    n_pixels
        Pixels sampled from a cube (ignored for arrays).
    epochs, batch_size, lr, weight_decay
        AdamW (betas 0.9, 0.95 as Presto; no decay on biases and norms). ``lr`` 1e-4 suits
        continuing from the published weights; from scratch use ~1e-3 and more epochs.
    val_fraction, patience
        Series held out (fixed masks) for early stopping; epochs without improvement before
        stopping. The best epoch is kept.
    seed
        Seed of the pixel sample, the split, the masks, the initialisation and the batches.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``; the result is on the CPU.
    progress
        A progress bar over the epochs (default: on in interactive sessions).
    scaling, s1_units
        As in :func:`eoai.ml.presto.embed` (cube input).

    Returns
    -------
    PrestoModel
        The pre-trained encoder, its decoder (``model.decoder``) and ``model.metadata`` (loss per
        epoch, held-out reconstruction MSE before and after, the decoder's origin, times).

    Raises
    ------
    eoai.errors.InputError
        Unknown mask strategy, ratio outside (0, 1), shapes that disagree, fewer than 20 series,
        no starting model.
    eoai.errors.ModelError
        ``model`` is not a PrestoModel, path or ``"scratch"``; a cube does not fit the card.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(0.3, 0.05, (40, 3, 17)).astype("float32")
    >>> m = pretrain_presto(x, model="scratch", latlon=np.zeros((40, 2)), month=np.tile([4, 5, 6], (40, 1)),
    ...                     epochs=1, device="cpu", progress=False)
    >>> m.metadata["epochs"], m.embed_arrays(x[:2], latlon=np.zeros((2, 2)), month=[[4, 5, 6]] * 2).shape
    (1, (2, 128))
    """
    import torch

    from .._deep_train import resolve_device
    from .head import _AdamW

    masks = (masks,) if isinstance(masks, str) else tuple(masks)
    unknown = [m for m in masks if m not in MASKS]
    if unknown or not masks:
        raise InputError(f"masks must be a non-empty subset of {MASKS}, got {masks!r}")
    if not 0 < float(mask_ratio) < 1:
        raise InputError(f"mask_ratio must be between 0 and 1 (Presto: 0.75), got {mask_ratio}")
    if not 0 < float(val_fraction) < 1:
        raise InputError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if int(epochs) < 1 or int(batch_size) < 1 or int(patience) < 1:
        raise InputError("epochs, batch_size and patience must be >= 1")
    dev = resolve_device(device)
    t_start = time.perf_counter()
    enc, dec, decoder_from, card, source = _start_model(model)
    if isinstance(data, xr.Dataset | xr.DataArray):
        x, missing, dw, latlon, month = _cube_series(data, card, n_pixels, seed, scaling, s1_units)
    else:
        x = np.asarray(data, dtype="float32")
        if latlon is None or month is None:
            raise InputError("pretrain_presto on arrays needs latlon (n, 2) and month (n, T)")
        missing = np.isnan(x) if mask is None else (np.asarray(mask, bool) | np.isnan(x))
        dw = (
            np.full(x.shape[:2], N_DW_CLASSES)
            if dynamic_world is None
            else np.asarray(dynamic_world)
        )
        # the checks of embedding (shapes, months, classes), on a throw-away model
        PrestoModel(enc, card).embed_arrays(
            x[:1], missing[:1], dw[:1], np.asarray(latlon)[:1], np.asarray(month)[:1]
        )
        if len(x) != len(latlon) or np.asarray(month).shape[0] not in (1, len(x)):
            raise InputError(f"latlon / month have {len(latlon)} rows for {len(x)} series")
        month = np.broadcast_to(np.asarray(month), x.shape[:2])
    n, n_steps = x.shape[0], x.shape[1]
    if n < 20:
        raise InputError(f"{n} series; pre-training needs at least 20 (and benefits from 1e4+)")
    seconds_data = time.perf_counter() - t_start
    rng = np.random.default_rng(seed)
    torch.manual_seed(0 if seed is None else int(seed))
    tensors = [
        torch.from_numpy(np.where(missing, 0, x).astype("float32")),
        torch.from_numpy(np.ascontiguousarray(missing)),
        torch.from_numpy(np.asarray(dw, "int64")),
        torch.from_numpy(np.asarray(latlon, "float32")),
        torch.from_numpy(np.array(month, "int64")),
    ]
    is_val = np.zeros(n, bool)
    is_val[rng.choice(n, size=max(1, int(round(val_fraction * n))), replace=False)] = True
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    val_masks = [torch.from_numpy(m) for m in make_masks(len(va), n_steps, masks, mask_ratio, rng)]
    net = torch.nn.ModuleDict({"encoder": enc, "decoder": dec}).to(dev)
    for p in net.parameters():  # a model from pretrain / finetune has its weights frozen
        p.requires_grad_(True)
    for part in (enc, dec):  # the fixed sinusoid encodings stay fixed
        part.pos_embed.requires_grad_(False)
        part.month_embed.weight.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opts = [
        _AdamW(decay, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.95)),
        _AdamW(no_decay, lr=lr, weight_decay=0.0, betas=(0.9, 0.95)),
    ]

    def validate() -> tuple[float, float]:
        net.eval()
        total = eo_total = 0.0
        count = 0
        with torch.no_grad():
            for s in range(0, len(va), 1024):
                i = torch.from_numpy(va[s : s + 1024])
                batch = [a[i].to(dev) for a in tensors]
                em, dm = (v[s : s + 1024].to(dev) for v in val_masks)
                loss, eo_loss, n_eo = _loss(net["encoder"], net["decoder"], batch, em, dm, torch)
                total += float(loss) * len(i)
                eo_total += float(eo_loss) * n_eo
                count += n_eo
        return total / len(va), eo_total / max(count, 1)

    start_val, start_mse = validate()
    history: list[dict[str, float]] = []
    best, best_state, stale = start_val, copy.deepcopy(net.state_dict()), 0
    show = _progress.enabled(progress)
    with _progress.bar(int(epochs), "pretrain_presto", enabled=show, unit="epoch") as pbar:
        for epoch in range(1, int(epochs) + 1):
            net.train()
            order = rng.permutation(tr)
            total = 0.0
            for s in range(0, len(order), int(batch_size)):
                idx = order[s : s + int(batch_size)]
                em, dm = (torch.from_numpy(m).to(dev) for m in make_masks(
                    len(idx), n_steps, masks, mask_ratio, rng))  # fmt: skip
                i = torch.from_numpy(idx)
                batch = [a[i].to(dev) for a in tensors]
                for o in opts:
                    o.zero_grad()
                loss, _, _ = _loss(net["encoder"], net["decoder"], batch, em, dm, torch)
                loss.backward()
                for o in opts:
                    o.step()
                total += float(loss.detach()) * len(idx)
            val, val_mse = validate()
            history.append({"epoch": epoch, "train_loss": total / len(tr),
                            "validation_loss": val, "validation_mse": val_mse})  # fmt: skip
            pbar.update(1)
            pbar.set_postfix_str(f"validation {val:.4f}")
            if val < best - 1e-6:
                best, best_state, stale = val, copy.deepcopy(net.state_dict()), 0
            else:
                stale += 1
                if stale >= int(patience):
                    break
    net.load_state_dict(best_state)
    net = net.cpu().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    best_row = min(history, key=lambda h: h["validation_loss"])
    metadata = {
        "method": "eoai.ml.presto.pretrain_presto (masked auto-encoding)",
        "decoder": decoder_from,
        "n_series": int(n), "n_validation": int(len(va)), "n_steps": int(n_steps),
        "epochs": len(history), "history": history,
        "validation_loss_before": float(start_val), "validation_mse_before": float(start_mse),
        "validation_loss_after": float(min(best, start_val)),
        "validation_mse_after": float(best_row["validation_mse"] if best < start_val else start_mse),
        "seconds": {"data": seconds_data, "total": time.perf_counter() - t_start},
        "parameters": {"masks": list(masks), "mask_ratio": float(mask_ratio), "lr": lr,
                       "weight_decay": weight_decay, "batch_size": int(batch_size),
                       "val_fraction": val_fraction, "patience": int(patience), "seed": seed,
                       "device": str(dev)},
    }  # fmt: skip
    return PrestoModel(
        net["encoder"], card, source=f"pretrained from {source or 'memory'}",
        decoder=net["decoder"], metadata=metadata,
    )  # fmt: skip
