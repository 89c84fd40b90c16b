"""Fine-tuning the Presto encoder with a linear head on labelled series (torch, CPU or CUDA).

:func:`finetune_presto` trains the encoder and a linear head together, as in the Presto paper's
fine-tuning (the fixed month and position encodings stay frozen), on normalised series in the
layout of :meth:`PrestoModel.embed_arrays`. It returns a new :class:`PrestoModel` (same model card:
the input contract does not change) and a head from :mod:`eoai.ml.presto.head` that maps the new
model's embeddings, so the pair embeds cubes with :func:`eoai.ml.presto.embed` and saves with
:func:`save_encoder` / :func:`save_head` like the frozen ones.

Examples
--------
>>> model2, head = finetune_presto(model, x, y, latlon=ll, month=m, task="regression")  # doctest: +SKIP
>>> head.predict(model2.embed_arrays(x_test, latlon=ll_test, month=m_test))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from ..._renamed import renamed_parameters
from ...errors import InputError, ModelError
from .head import (
    TASKS,
    PrestoClassifierHead,
    PrestoRegressorHead,
    _AdamW,
    _diverged,
    _net,
    _validation_split,
)
from .model import PrestoModel


@renamed_parameters(random_state="seed")
def finetune_presto(
    model: PrestoModel,
    x: np.ndarray,
    target: Any,
    *,
    latlon: np.ndarray,
    month: np.ndarray,
    dynamic_world: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    task: str = "regression",
    epochs: int = 20,
    lr: float = 1e-4,
    head_lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    validation: float = 0.15,
    patience: int = 5,
    seed: int | None = 0,
    device: str = "auto",
    groups: np.ndarray | None = None,
) -> tuple[PrestoModel, PrestoClassifierHead | PrestoRegressorHead]:
    """Fine-tune a copy of the encoder and a linear head; early stopping on held-out series.

    Parameters
    ----------
    model
        The pretrained :class:`PrestoModel` (left unchanged).
    x, mask, dynamic_world, latlon, month
        Series as for :meth:`PrestoModel.embed_arrays` (``x`` normalised, ``(n, T, 17)``).
    target
        ``(n,)`` values (regression) or labels (classification).
    task
        ``"regression"`` (MSE on the standardised target) or ``"classification"`` (cross-entropy).
    epochs, lr, head_lr, weight_decay, batch_size
        AdamW on the encoder (``lr``) and on the head (``head_lr``).
    validation, patience
        Fraction of the series held out for early stopping and epochs without improvement
        before stopping; the best epoch is kept.
    seed
        Seed of the split, the head's initialisation and the batches (``random_state=``, its
        old name, still works for one release).
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``: where training runs (the
        returned model is on the CPU).
    groups
        ``(n,)`` polygon ids: the held-out series are whole polygons, as in
        :func:`~eoai.ml.presto.fit_presto_head` (about ``validation`` of each class's polygons,
        never a class's last one); default ``None``: a random ``validation`` share of the series.

    Returns
    -------
    (PrestoModel, head)
        The fine-tuned encoder and its head; ``head.metadata`` holds the loss per epoch.

    Raises
    ------
    eoai.errors.InputError
        Shapes disagree, unknown task, fewer than 10 series, missing targets.
    eoai.errors.ModelError
        ``model`` is not a PrestoModel; training diverged (no finite validation loss).
    """
    import torch

    if not isinstance(model, PrestoModel):
        raise ModelError(f"finetune_presto needs a PrestoModel, got {type(model).__name__}")
    if task not in TASKS:
        raise InputError(f"task must be one of {TASKS}, got {task!r}")
    x = np.asarray(x, dtype="float32")
    n = x.shape[0]
    y = np.asarray(target)
    if y.shape[0] != n:
        raise InputError(f"{y.shape[0]} targets for {n} series")
    if n < 10:
        raise InputError(f"{n} series; fine-tuning needs at least 10")
    if pd.isna(y).any():
        raise InputError(
            f"{int(pd.isna(y).sum())} of {n} targets are missing (NaN); drop those series (their "
            "rows of x, latlon, month and the other inputs) before fine-tuning"
        )
    # the same checks and conversions as embedding (shapes, months, classes)
    m = np.isnan(x) if mask is None else (np.asarray(mask, bool) | np.isnan(x))
    dw = np.full(x.shape[:2], 9) if dynamic_world is None else np.asarray(dynamic_world)
    model.embed_arrays(x[:1], m[:1], dw[:1], np.asarray(latlon)[:1], np.asarray(month)[:1])
    from .._deep_train import resolve_device

    device = resolve_device(device)
    rng = np.random.default_rng(seed)
    torch.manual_seed(0 if seed is None else int(seed))
    enc = copy.deepcopy(model.encoder).to(device).train()
    for p in enc.parameters():
        p.requires_grad_(True)
    enc.pos_embed.requires_grad_(False)
    enc.month_embed.weight.requires_grad_(False)
    if task == "classification":
        classes = sorted(pd.unique(y), key=lambda v: (str(type(v)), v))
        lookup = {c: i for i, c in enumerate(classes)}
        t = torch.tensor([lookup[v] for v in y], dtype=torch.long)
        n_out, loss_fn = len(classes), torch.nn.functional.cross_entropy
    else:
        yf = y.astype("float64")
        y_mean, y_std = float(yf.mean()), float(yf.std() or 1.0)
        t = torch.tensor(((yf - y_mean) / y_std)[:, None], dtype=torch.float32)
        n_out, loss_fn = 1, torch.nn.functional.mse_loss
    head = _net(enc.embedding_size, n_out, 0).to(device)
    tensors = [
        torch.from_numpy(np.where(m, 0, x).astype("float32")),
        torch.from_numpy(m),
        torch.from_numpy(dw.astype("int64")),
        torch.from_numpy(np.asarray(latlon, dtype="float32")),
        torch.from_numpy(np.broadcast_to(np.asarray(month), x.shape[:2]).astype("int64")),
    ]
    if groups is None:
        is_val = np.zeros(n, bool)
        is_val[rng.choice(n, size=max(1, int(round(validation * n))), replace=False)] = True
        tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
        split = "random series"
    else:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise InputError(f"groups must be one id per series ({n}), got shape {groups.shape}")
        classes_of = t.numpy() if task == "classification" else None
        tr, va, split = _validation_split(classes_of, groups, n, validation, seed, rng)
    enc_params = [p for p in enc.parameters() if p.requires_grad]
    opt_enc = _AdamW(enc_params, lr=lr, weight_decay=weight_decay)
    opt_head = _AdamW(list(head.parameters()), lr=head_lr, weight_decay=weight_decay)

    def run(idx: np.ndarray) -> Any:
        i = torch.from_numpy(idx)
        return head(enc(*(a[i].to(device) for a in tensors)))

    history, best, best_state, stale = [], np.inf, None, 0
    for epoch in range(1, int(epochs) + 1):
        enc.train()
        order = rng.permutation(tr)
        total = 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            opt_enc.zero_grad()
            opt_head.zero_grad()
            loss = loss_fn(run(idx), t[torch.from_numpy(idx)].to(device))
            loss.backward()
            opt_enc.step()
            opt_head.step()
            total += float(loss.detach()) * len(idx)
        enc.eval()
        with torch.no_grad():
            val = float(loss_fn(run(va), t[torch.from_numpy(va)].to(device)))
        history.append({"epoch": epoch, "train_loss": total / len(tr), "validation_loss": val})
        if val < best - 1e-6:
            best, stale = val, 0
            best_state = (copy.deepcopy(enc.state_dict()), copy.deepcopy(head.state_dict()))
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is None:
        raise _diverged("finetune_presto", len(history), "lr and head_lr")
    enc.load_state_dict(best_state[0])
    head.load_state_dict(best_state[1])
    enc, head = enc.cpu().eval(), head.cpu().eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    new = PrestoModel(enc, model.card, source=f"finetuned from {model.source or 'memory'}")
    metadata = {
        "method": f"eoai.ml.presto.finetune_presto({task})",
        "epochs": len(history), "best_validation_loss": float(best), "history": history,
        "n_samples": int(n), "n_validation": int(len(va)), "validation_split": split,
        "parameters": {"lr": lr, "head_lr": head_lr, "weight_decay": weight_decay,
                       "batch_size": batch_size, "patience": patience, "seed": seed,
                       "device": str(device)},
    }  # fmt: skip
    dim = enc.embedding_size
    zeros, ones = np.zeros(dim, "float32"), np.ones(dim, "float32")
    feats = [f"presto_{i:03d}" for i in range(dim)]
    out: PrestoClassifierHead | PrestoRegressorHead
    if task == "classification":
        out = PrestoClassifierHead(head, zeros, ones, 0, feats, classes, metadata=metadata)
    else:
        out = PrestoRegressorHead(head, zeros, ones, 0, feats, y_mean, y_std, metadata)
    return new, out
