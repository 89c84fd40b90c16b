"""Training loop shared by the networks of :mod:`eoai.ml.deep` (private).

AdamW with a one-cycle learning-rate schedule (Smith & Topin 2019), class-weighted cross-entropy,
early stopping on the loss of a validation split grouped by polygon (the best weights are kept),
mixed precision on CUDA, a seeded RNG so that a fixed seed gives the same weights, and a tqdm bar
showing loss and accuracy.

Examples
--------
>>> import numpy as np
>>> grouped_split(np.array([0, 0, 1, 1, 1, 1]), np.array([1, 1, 2, 2, 3, 3]), 0.5, seed=0)[1].size
2
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._skipped import user_stacklevel
from ..errors import EoaiWarning, InputError

IGNORE = -100


def resolve_device(device: Any = "auto") -> Any:
    """The ``torch.device`` for ``device`` (see :func:`eoai._device.resolve_device`).

    Examples
    --------
    >>> str(resolve_device("cpu"))
    'cpu'
    """
    import torch

    from .._device import resolve_device as _resolve

    return torch.device(_resolve(device))


def takes_days(net: Any) -> bool:
    """Whether ``net.forward`` takes a second positional argument (the acquisition days)."""
    try:
        params = list(inspect.signature(net.forward).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)


def grouped_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation row indices; whole groups go to one side, about ``fraction`` of each class.

    A group is assigned to the class of most of its rows; for each class the groups are shuffled
    and the first ones, as many as bring the validation share closest to ``fraction``, go to the
    validation set, always leaving at least one group of the class for training.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    if fraction <= 0:
        return np.arange(n), np.array([], dtype=np.int64)
    import pandas as pd

    df = pd.DataFrame({"label": labels, "group": groups})
    major = df.groupby("group")["label"].agg(lambda s: s.value_counts().index[0])
    size = df.groupby("group").size()
    val_groups: list[Any] = []
    for _cls, gs in major.groupby(major):
        g = np.asarray(gs.index)
        if len(g) < 2:
            continue
        g = g[rng.permutation(len(g))]
        # the prefix of the shuffled groups closest to the target share (never all of them)
        cum = np.concatenate([[0], np.cumsum(size[g].to_numpy())[:-1]])
        k = int(np.argmin(np.abs(cum - fraction * size[g].sum())))
        val_groups.extend(g[:k])
    is_val = np.isin(groups, np.asarray(val_groups, dtype=groups.dtype))
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def class_weights(
    y: np.ndarray, n_classes: int, class_weight: Any, classes: list[Any]
) -> np.ndarray | None:
    """Per-class loss weights: ``None``, ``"balanced"`` (n / (k n_c)) or ``{label: weight}``."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        if class_weight not in ("balanced", "balanced_subsample"):
            raise InputError(
                f"class_weight must be None, 'balanced' or a {{label: weight}} dict, got {class_weight!r}"
            )
        counts = np.bincount(y[y >= 0], minlength=n_classes).astype("float64")
        w = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
        return w.astype("float32")
    if isinstance(class_weight, Mapping):
        unknown = [k for k in class_weight if k not in classes]
        if unknown:
            raise InputError(f"class_weight names unknown classes {unknown}; classes: {classes}")
        return np.array([float(class_weight.get(c, 1.0)) for c in classes], dtype="float32")
    raise InputError(f"class_weight must be None, 'balanced' or a dict, got {type(class_weight)}")


def train(
    net: Any,
    x: Any,
    y: Any,
    *,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    days: Any = None,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    weights: np.ndarray | None,
    patience: int | None,
    device: Any,
    amp: bool,
    progress: bool | None,
    augment: Callable[[Any, Any, Any], tuple[Any, Any]] | None = None,
    take: Callable[[Any], tuple[Any, Any]] | None = None,
    epoch_indices: Callable[[int], np.ndarray] | None = None,
    eval_batch_size: int | None = None,
    desc: str = "training",
    label_smoothing: float = 0.0,
    average_last: int = 0,
    regression: bool = False,
    aux_weight: float = 0.0,
) -> list[dict[str, float]]:
    """Train ``net`` in place on tensors ``x``/``y`` (rows ``train_idx``); keep the best weights.

    ``y`` holds class indices (``IGNORE`` = no label), or with ``regression=True`` float targets
    (standardised by the caller; the loss is the mean squared error of the first output over the
    targets that are not NaN: a patch's unlabelled pixels).
    ``aux_weight`` > 0 with a network whose ``forward`` takes ``aux=True`` and then returns
    ``(output, [auxiliary outputs])`` (:class:`eoai.ml.models.FusionNet`) adds ``aux_weight`` x
    the mean loss of the auxiliary outputs to the training loss (the validation loss and the
    reported scores are those of the main output). The caller seeds torch; ``augment(xb, yb,
    generator)`` may transform a training batch; ``take(idx)`` returns the batch ``(x, y)`` of
    rows ``idx`` (default ``x[idx], y[idx]``); ``epoch_indices(epoch)`` the training rows of an
    epoch (default ``train_idx``). Returns the history (one dict per epoch).
    """
    import torch
    from torch import nn

    if take is None:

        def take(idx: Any) -> tuple[Any, Any]:
            return x[idx], y[idx]

    n_train = len(train_idx) if epoch_indices is None else len(epoch_indices(0))
    if n_train < 2:
        raise InputError(f"only {n_train} training samples are left after the validation split")
    net.to(device)
    use_days = days is not None and takes_days(net)
    days_dev = days.to(device) if use_days else None
    if regression:
        mse = nn.MSELoss()

        def loss_fn(out: Any, yb: Any) -> Any:
            # NaN targets (unlabelled pixels of a patch) are left out of the mean
            ok = ~torch.isnan(yb)
            if bool(ok.all()):
                return mse(out[:, 0], yb)
            return mse(out[:, 0][ok], yb[ok]) if bool(ok.any()) else out.sum() * 0.0
    else:
        loss_fn = nn.CrossEntropyLoss(
            weight=None if weights is None else torch.as_tensor(weights, device=device),
            ignore_index=IGNORE,
            label_smoothing=float(label_smoothing),
        )
    with_aux = float(aux_weight) > 0 and bool(getattr(net, "has_aux", False))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps = max(1, n_train // batch_size + (n_train % batch_size > 1))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.3
    )
    amp = bool(amp) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    gen = torch.Generator().manual_seed(int(torch.initial_seed()) % (2**63))
    train_t = torch.as_tensor(train_idx)
    history: list[dict[str, float]] = []
    best, best_state, best_epoch, stale = math.inf, None, -1, 0
    # at most the last quarter of the epochs: early weights would spoil the mean of a short run
    average_last = min(int(average_last), max(1, epochs // 4))
    averaging = average_last > 0 and not len(val_idx)
    avg_state: dict[str, Any] | None = None
    n_avg = 0

    def forward(xb: Any, aux: bool = False) -> Any:
        kw = {"aux": True} if aux else {}
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            return net(xb, days_dev, **kw) if use_days else net(xb, **kw)

    from tqdm.auto import tqdm

    from eoai._progress import enabled

    bar = tqdm(range(epochs), desc=desc, disable=not enabled(progress), leave=False, unit="epoch")
    for epoch in bar:
        net.train()
        rows = train_t if epoch_indices is None else torch.as_tensor(epoch_indices(epoch))
        order = rows[torch.randperm(n_train, generator=gen)]
        tot_loss, correct, seen = 0.0, 0, 0
        for k in range(steps):
            idx = order[k * batch_size : (k + 1) * batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            xb, yb = take(idx)
            if augment is not None:
                xb, yb = augment(xb, yb, gen)
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            if with_aux:
                logits, aux_out = forward(xb, aux=True)
                loss = loss_fn(logits.float(), yb) + float(aux_weight) * sum(
                    loss_fn(a.float(), yb) for a in aux_out
                ) / max(len(aux_out), 1)
            else:
                logits = forward(xb)
                loss = loss_fn(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            lab = ~torch.isnan(yb) if regression else yb != IGNORE
            n_lab = int(lab.sum())
            tot_loss += float(loss.detach()) * n_lab
            if not regression:
                correct += int((logits.argmax(1) == yb)[lab].sum())
            seen += n_lab
        rec = {"epoch": epoch + 1, "loss": tot_loss / max(seen, 1)}
        if not regression:
            rec["accuracy"] = correct / max(seen, 1)
        if len(val_idx):
            eb = eval_batch_size or max(batch_size, 1024)
            rec.update(_evaluate(take, val_idx, eb, forward, loss_fn, device, net, regression))
        history.append(rec)
        if averaging and epoch >= epochs - average_last:
            avg_state, n_avg = _accumulate(avg_state, net.state_dict(), n_avg)
        bar.set_postfix({k: round(v, 4) for k, v in rec.items() if k != "epoch"})
        score = rec.get("val_loss", rec["loss"])
        if score < best - 1e-6:
            best, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy({k: v.detach().clone() for k, v in net.state_dict().items()})
        else:
            stale += 1
            if len(val_idx) and patience is not None and stale >= patience:
                break
    bar.close()
    if best_state is not None and len(val_idx):
        net.load_state_dict(best_state)
    if averaging and avg_state is not None:
        net.load_state_dict(avg_state)
    for rec in history:
        rec["best"] = rec["epoch"] == best_epoch + 1
        if averaging:
            rec["averaged"] = rec["epoch"] > epochs - average_last
    net.eval()
    return history


def _accumulate(
    mean: dict[str, Any] | None, state: Mapping[str, Any], n: int
) -> tuple[dict[str, Any], int]:
    """Running mean of floating-point tensors of ``state`` (others: the latest value)."""
    if mean is None:
        return {k: v.detach().clone() for k, v in state.items()}, 1
    for k, v in state.items():
        if v.is_floating_point():
            mean[k] += (v.detach() - mean[k]) / (n + 1)
        else:
            mean[k] = v.detach().clone()
    return mean, n + 1


def _evaluate(
    take, idx, batch_size, forward, loss_fn, device, net, regression=False
) -> dict[str, float]:
    import torch

    net.eval()
    tot, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for k in range(0, len(idx), batch_size):
            sel = torch.as_tensor(idx[k : k + batch_size])
            xb, yb = take(sel)
            xb, yb = xb.to(device), yb.to(device)
            logits = forward(xb).float()
            lab = ~torch.isnan(yb) if regression else yb != IGNORE
            n_lab = int(lab.sum())
            if n_lab == 0:
                continue
            tot += float(loss_fn(logits, yb)) * n_lab
            if not regression:
                correct += int((logits.argmax(1) == yb)[lab].sum())
            seen += n_lab
    if regression:
        return {"val_loss": tot / max(seen, 1)}
    return {"val_loss": tot / max(seen, 1), "val_accuracy": correct / max(seen, 1)}


def patch_windows(
    y_img: np.ndarray,
    p: int,
    *,
    val_fraction: float,
    per_epoch: int,
    epochs: int,
    rng: np.random.Generator,
    labelled: Callable[[np.ndarray], np.ndarray],
    unlabelled: Any,
    snap: int = 1,
) -> tuple[np.ndarray, list[tuple[int, int]], list[np.ndarray], np.ndarray]:
    """The patch networks' training windows, held-out tiles and training labels.

    A share ``val_fraction`` of the labelled grid tiles of ``p`` px is held out (their labels never
    train); each is one validation window (shifted inside the image) with the labels of that tile
    only. ``per_epoch`` training windows per epoch are centred on labelled training pixels
    (clipped), their corners rounded down to multiples of ``snap`` (U-T&T: series pixel edges).

    Returns ``(pos, val_pos, val_y, y_train)``: ``(epochs * per_epoch, 2)`` window corners, the
    validation corners and label windows, and the labels with the held-out tiles ``unlabelled``.

    Examples
    --------
    >>> y = np.zeros((16, 16), np.int64)
    >>> pos, val_pos, val_y, y_train = patch_windows(
    ...     y, 8, val_fraction=0.25, per_epoch=4, epochs=2, rng=np.random.default_rng(0),
    ...     labelled=lambda a: a != IGNORE, unlabelled=IGNORE)
    >>> pos.shape, len(val_pos), int((y_train == IGNORE).sum())
    ((8, 2), 1, 64)
    """
    h, w = y_img.shape
    ty, tx = -(-h // p), -(-w // p)
    tiles = [(i, j) for i in range(ty) for j in range(tx)
             if labelled(y_img[i * p:(i + 1) * p, j * p:(j + 1) * p]).any()]  # fmt: skip
    n_val = int(round(val_fraction * len(tiles))) if len(tiles) > 1 else 0
    n_val = min(n_val, len(tiles) - 1)
    val_tiles = [tiles[k] for k in rng.permutation(len(tiles))[:n_val]]
    y_train = y_img.copy()
    for i, j in val_tiles:
        y_train[i * p : (i + 1) * p, j * p : (j + 1) * p] = unlabelled
    if not labelled(y_train).any():
        raise InputError("no labelled pixel is left for training; lower val_fraction")
    val_pos, val_y = [], []
    for i, j in val_tiles:
        a, b = min(i * p, h - p), min(j * p, w - p)
        inside = np.zeros((h, w), bool)
        inside[i * p : (i + 1) * p, j * p : (j + 1) * p] = True
        val_pos.append((a, b))
        val_y.append(
            np.where(inside[a : a + p, b : b + p], y_img[a : a + p, b : b + p], unlabelled)
        )
    if int(per_epoch) < 2:
        raise InputError(f"patches_per_epoch must be >= 2, got {per_epoch}")
    lab_r, lab_c = np.nonzero(labelled(y_train))
    k = rng.integers(0, len(lab_r), size=int(epochs) * int(per_epoch))
    pos = np.column_stack(
        [
            np.clip(lab_r[k] - p // 2, 0, h - p) // snap * snap,
            np.clip(lab_c[k] - p // 2, 0, w - p) // snap * snap,
        ]
    )
    return pos, val_pos, val_y, y_train


def legend_from_labels(
    labels: Any, classes: list[Any], class_names: Any, colours: Any
) -> tuple[Any, Any]:
    """``class_names`` / ``colours`` left ``None`` filled from a label raster's attributes
    (``class_names``, ``class_colours`` or ``colours``, indexed by integer class code).

    Examples
    --------
    >>> import xarray as xr
    >>> lab = xr.DataArray([[0, 1]], attrs={"class_names": ["water", "crop"]})
    >>> legend_from_labels(lab, [0, 1], None, None)
    ({0: 'water', 1: 'crop'}, None)
    """
    import xarray as xr

    if isinstance(labels, xr.DataArray) and all(isinstance(c, int) for c in classes):
        names = labels.attrs.get("class_names")
        cols = labels.attrs.get("class_colours") or labels.attrs.get("colours")
        if class_names is None and names is not None:
            class_names = {c: str(names[c]) for c in classes if 0 <= c < len(names)}
        if colours is None and cols is not None:
            colours = {c: str(cols[c]) for c in classes if 0 <= c < len(cols)}
    return class_names, colours


def flip_rotate(xb: Any, yb: Any, gen: Any) -> tuple[Any, Any]:
    """The patch networks' augmentation: one random quarter turn and a random left-right flip,
    the same for a batch of inputs ``(..., H, W)`` and their label or target maps ``(..., H, W)``.

    Examples
    --------
    >>> import torch
    >>> x, y = torch.arange(4.0).reshape(1, 1, 2, 2), torch.arange(4).reshape(1, 2, 2)
    >>> xa, ya = flip_rotate(x, y, torch.Generator().manual_seed(0))
    >>> bool((xa[0, 0].long() == ya[0]).all())  # inputs and labels stay aligned
    True
    """
    import torch

    rot = int(torch.randint(0, 4, (1,), generator=gen))
    xb, yb = torch.rot90(xb, rot, dims=(-2, -1)), torch.rot90(yb, rot, dims=(-2, -1))
    if bool(torch.randint(0, 2, (1,), generator=gen)):
        xb, yb = torch.flip(xb, dims=(-1,)), torch.flip(yb, dims=(-1,))
    return xb.contiguous(), yb.contiguous()


def warn_amp_on_cpu(amp: bool | None, device: Any) -> bool:
    """Resolve ``amp``: ``None`` -> on CUDA only; ``True`` on CPU warns and trains in float32."""
    if amp is None:
        return device.type == "cuda"
    if amp and device.type != "cuda":
        warnings.warn(
            f"mixed precision (amp=True) runs on CUDA only; training in float32 on {device}",
            EoaiWarning,
            stacklevel=user_stacklevel(),
        )
        return False
    return bool(amp)
