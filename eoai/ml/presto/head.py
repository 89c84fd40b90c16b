"""Heads on frozen embeddings: a linear or MLP layer trained on Presto embeddings (torch).

:func:`fit_presto_head` trains on a sample table from :func:`eoai.ml.extract` of an embedding cube
(``emb.to_dataset("embedding")``: columns ``presto_000`` ...) or on an ``(n, 128)`` array. The
classification head is an :class:`eoai.ml.base.ClassifierModel`, so :func:`eoai.ml.classify` maps
it like a random forest; the regression head predicts a value per row. Inputs are standardised
with the training mean and standard deviation, training stops early on a held-out part of the
training rows (by ``group`` when the table has one, so that pixels of one polygon are not on both
sides) and keeps the best epoch. Both heads save as a ``state_dict`` plus the ``<file>.json``
sidecar of :mod:`eoai.ml.persist` (:func:`save_head`; :func:`eoai.ml.load_model` reads them back,
weights only).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(100, 4)).astype("float32")
>>> head = fit_presto_head(X, 3 * X[:, 0] + 1, task="regression", epochs=60, lr=0.05, batch_size=100)
>>> float(np.abs(head.predict(X[:5]) - (3 * X[:5, 0] + 1)).max()) < 0.3
True
"""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ... import _skipped
from ..._renamed import renamed_parameters
from ...errors import DataSkippedWarning, InputError, ModelError
from ..base import ClassifierModel
from ..regress import RegressorModel

TASKS = ("classification", "regression")
LOADER = "eoai.ml.presto.head:load_saved"


@contextlib.contextmanager
def _one_thread():
    """One intra-op torch thread while training: a head is a few small matrices, for which
    OpenMP threads only add synchronisation (training is not run inside dask tasks)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _AdamW:
    """AdamW (Loshchilov & Hutter), the update of ``torch.optim.AdamW``; written out because
    importing ``torch.optim`` imports ``torch._dynamo`` (measured 3-35 s on the dev machine),
    far more than training a head takes."""

    def __init__(self, params: list, lr: float, weight_decay: float, betas=(0.9, 0.999), eps=1e-8):
        import torch

        self.params, self.lr, self.wd, self.betas, self.eps = params, lr, weight_decay, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch

        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v, strict=True):
                if p.grad is None:
                    continue
                p.mul_(1 - self.lr * self.wd)
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-self.lr / c1)


def _net(n_in: int, n_out: int, hidden: int) -> Any:
    from torch import nn

    if hidden:
        return nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Linear(hidden, n_out))
    return nn.Sequential(nn.Linear(n_in, n_out))


class _HeadMixin:
    """The torch layer, the standardisation and the forward pass shared by both heads."""

    net: Any
    mean: np.ndarray
    std: np.ndarray
    hidden: int
    task: str
    _n_out: int

    def _forward(self, X: np.ndarray) -> np.ndarray:
        import torch

        X = np.asarray(X, dtype="float32")
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise InputError(f"X must be (n, {self.mean.shape[0]}) embeddings, got {X.shape}")
        z = torch.from_numpy((X - self.mean) / self.std)
        with torch.inference_mode():
            return self.net.eval()(z).numpy()

    def _eoai_save(self, path: Path) -> dict[str, Any]:
        """Write the state dict to ``path``; the JSON fields of the sidecar (eoai.ml.persist)."""
        import torch

        torch.save({k: v.detach().cpu() for k, v in self.net.state_dict().items()}, path)
        return {
            "format": "torch-state-dict",
            "loader": LOADER,
            "head": {
                "task": self.task, "hidden": int(self.hidden), "mean": self.mean.tolist(),
                "std": self.std.tolist(), "n_out": int(self._n_out),
            },
            "versions": {"torch": torch.__version__},
        }  # fmt: skip


class PrestoClassifierHead(_HeadMixin, ClassifierModel):
    """Classification head (softmax) on embeddings; an eoai pixel classifier."""

    task = "classification"

    def __init__(self, net, mean, std, hidden, features, classes, **kw) -> None:
        super().__init__(features, classes, **kw)
        self.net, self.mean, self.std, self.hidden = net, mean, std, int(hidden)
        self._n_out = len(self.classes)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = self._forward(X)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype("float32")


class PrestoRegressorHead(_HeadMixin, RegressorModel):
    """Regression head on embeddings: ``predict(X)`` -> ``(n,)`` values in the target's units;
    an eoai regression model (``target``, ``units``), mapped by :func:`eoai.ml.predict`."""

    task = "regression"
    allow_nan = False

    def __init__(
        self, net, mean, std, hidden, features, y_mean, y_std, metadata=None, *,
        target: str = "label", units: str = "",
    ) -> None:  # fmt: skip
        super().__init__(features, target, units=units, metadata=metadata)
        self.net, self.mean, self.std, self.hidden = net, mean, std, int(hidden)
        self.y_mean, self.y_std = float(y_mean), float(y_std)
        self._n_out = 1

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._forward(X)[:, 0] * self.y_std + self.y_mean

    def describe(self) -> dict[str, Any]:
        return {
            "model_class": f"{type(self).__module__}.{type(self).__qualname__}",
            "features": self.features,
            "target": {"mean": self.y_mean, "std": self.y_std},
            "target_name": self.target,
            "units": self.units,
            "metadata": self.metadata,
        }

    def __repr__(self) -> str:
        return f"<PrestoRegressorHead: {len(self.features)} features, hidden {self.hidden}>"


def _inputs(
    embeddings: Any, target: Any, features: Any = None
) -> tuple[np.ndarray, np.ndarray, list[str], Any]:
    """(X, y, feature names, groups or None) from a sample table or arrays."""
    if isinstance(embeddings, pd.DataFrame):
        df = embeddings
        if features is not None:
            missing = [f for f in features if f not in df.columns]
            if missing:
                raise InputError(f"the table lacks the feature column(s) {missing[:5]}")
        feats = (
            list(features)
            if features is not None
            else list(
                df.attrs.get("eoai:features")
                or [c for c in df.columns if str(c).startswith("presto_")]
            )
        )
        if not feats:
            raise InputError(
                "the table has no embedding columns (presto_000 ...): extract the samples from "
                "emb.to_dataset('embedding'), or pass an (n, 128) array"
            )
        col = "label" if target is None else target
        if isinstance(col, str):
            if col not in df.columns:
                raise InputError(f"the table has no target column {col!r}; pass target=")
            y = df[col].to_numpy()
        else:
            y = np.asarray(col)
        groups = df["group"].to_numpy() if "group" in df.columns else None
        return df[feats].to_numpy("float32"), y, feats, groups
    X = np.asarray(embeddings, dtype="float32")
    if X.ndim != 2:
        raise InputError(f"embeddings must be (n, dim), got shape {X.shape}")
    if target is None:
        raise InputError("pass the target values (one per row of embeddings)")
    return X, np.asarray(target), [f"presto_{i:03d}" for i in range(X.shape[1])], None


@renamed_parameters(random_state="seed")
def fit_presto_head(
    embeddings: pd.DataFrame | np.ndarray,
    target: Any = None,
    *,
    task: str = "classification",
    features: Any = None,
    hidden: int = 0,
    epochs: int = 500,
    lr: float | None = None,
    weight_decay: float = 1e-4,
    batch_size: int = 128,
    validation: float = 0.15,
    patience: int = 30,
    seed: int | None = 0,
    class_names: Any = None,
    colours: Any = None,
) -> PrestoClassifierHead | PrestoRegressorHead:
    """Train a linear (``hidden=0``) or one-hidden-layer head on frozen embeddings.

    Parameters
    ----------
    embeddings
        Sample table (columns ``presto_###`` or ``attrs["eoai:features"]``, ``label``, optional
        ``group``) or an ``(n, dim)`` array.
    target
        Column name (default ``"label"``) or values, one per row.
    task
        ``"classification"`` (cross-entropy; returns a ClassifierModel) or ``"regression"`` (MSE
        on the standardised target).
    features
        Feature columns of a table (default ``attrs["eoai:features"]``, else ``presto_*``).
    hidden
        Width of the hidden layer (GELU); 0 for a linear head.
    epochs, lr, weight_decay, batch_size
        AdamW training; ``lr`` default 1e-2 for a linear head, 1e-3 with a hidden layer.
    validation, patience
        Fraction of the rows (of the groups, when the table has ``group``) held out for early
        stopping, and epochs without improvement before stopping; the best epoch is kept.
        Classification holds out about this share of each class and never a class's last group,
        so every class is trained on (with a single group per class, rows of the groups are held
        out); ``metadata["validation_split"]`` says which.
    seed
        Seed of the split, the initialisation and the batches.
    class_names, colours
        As in :func:`eoai.ml.fit` (classification).

    Returns
    -------
    PrestoClassifierHead or PrestoRegressorHead
        ``metadata`` holds the epochs trained, the best validation loss and the parameters.

    Raises
    ------
    eoai.errors.InputError
        Unknown task, no embedding columns, no target, too few rows, or a non-numeric regression
        target.
    eoai.errors.ModelError
        Training diverged (no finite validation loss): lower ``lr``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[np.zeros((30, 4)), np.ones((30, 4))].astype("float32")
    >>> head = fit_presto_head(X, ["bare"] * 30 + ["crop"] * 30, epochs=20, batch_size=60)
    >>> head.predict(X[[0, -1]]).tolist()
    ['bare', 'crop']
    """
    import torch

    if task not in TASKS:
        raise InputError(f"task must be one of {TASKS}, got {task!r}")
    X, y, feats, groups = _inputs(embeddings, target, features)
    if len(y) != len(X):
        raise InputError(f"{len(y)} target values for {len(X)} rows")
    bad = np.isnan(X).any(axis=1) | pd.isna(y)
    if bad.any():
        _skipped.warn_at_user(
            f"fit_presto_head: {int(bad.sum())} of {len(X)} rows have NaN embeddings or no "
            "target (pixels without valid data) and were left out",
            DataSkippedWarning,
        )
        X, y = X[~bad], y[~bad]
        groups = groups[~bad] if groups is not None else None
    if len(X) < 10:
        raise InputError(f"{len(X)} usable rows; a head needs at least 10")
    lr = float(lr if lr is not None else (1e-3 if hidden else 1e-2))
    rng = np.random.default_rng(seed)
    torch.manual_seed(0 if seed is None else int(seed))
    mean = X.mean(axis=0)
    std = X.std(axis=0) + 1e-6
    Z = ((X - mean) / std).astype("float32")
    if task == "classification":
        classes = sorted(pd.unique(y), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise InputError(f"classification needs at least 2 classes, got {classes}")
        lookup = {c: i for i, c in enumerate(classes)}
        t = torch.tensor([lookup[v] for v in y], dtype=torch.long)
        n_out, loss_fn = len(classes), torch.nn.functional.cross_entropy
    else:
        try:
            yf = y.astype("float64")
        except (TypeError, ValueError) as err:
            raise InputError(f"a regression target must be numeric: {err}") from err
        y_mean, y_std = float(yf.mean()), float(yf.std() or 1.0)
        t = torch.tensor(((yf - y_mean) / y_std)[:, None], dtype=torch.float32)
        n_out, loss_fn = 1, torch.nn.functional.mse_loss
    tr, va, split = _validation_split(
        t.numpy() if task == "classification" else None, groups, len(X), validation, seed, rng
    )
    zt = torch.from_numpy(Z)
    net = _net(Z.shape[1], n_out, int(hidden))
    opt = _AdamW(list(net.parameters()), lr=lr, weight_decay=weight_decay)
    with _one_thread():
        best, best_state, best_epoch, epoch = _train(
            net, opt, loss_fn, zt, t, tr, va, rng, int(epochs), int(batch_size), int(patience)
        )
    if best_state is None:
        raise _diverged("fit_presto_head", epoch, "lr")
    net.load_state_dict(best_state)
    metadata = {
        "method": f"eoai.ml.presto.fit_presto_head({task}, hidden={int(hidden)})",
        "epochs": int(epoch), "best_epoch": int(best_epoch), "best_validation_loss": float(best),
        "n_samples": int(len(X)), "n_validation": int(len(va)), "validation_split": split,
        "parameters": {"lr": lr, "weight_decay": weight_decay, "batch_size": batch_size,
                       "validation": validation, "patience": patience, "seed": seed},
    }  # fmt: skip
    if task == "classification":
        return PrestoClassifierHead(
            net, mean, std, hidden, feats, classes, class_names=class_names, colours=colours,
            metadata=metadata,
        )  # fmt: skip
    return PrestoRegressorHead(
        net, mean, std, hidden, feats, y_mean, y_std, metadata,
        target=target if isinstance(target, str) else "label",
    )  # fmt: skip


def _validation_split(
    classes: np.ndarray | None, groups: np.ndarray | None, n: int, validation: float, seed, rng
) -> tuple[np.ndarray, np.ndarray, str]:
    """Training and early-stopping rows, and how they were split.

    Classes (``classes`` = class index per row): about ``validation`` of each class's groups
    (polygons; rows without a group column) are held out, never the last group of a class (the
    rule of :func:`eoai.ml._deep_train.grouped_split`), so that every class stays in training.
    When every class has a single group (e.g. one polygon per class), rows of those groups are
    held out instead. Regression, or when that too leaves nothing to hold out: a random
    ``validation`` share of the groups (rows).
    """
    if classes is not None:
        from .._deep_train import grouped_split

        units = groups if groups is not None else np.arange(n)
        tr, va = grouped_split(classes, units, validation, seed)
        if len(va):
            return tr, va, "groups by class" if groups is not None else "rows by class"
        if groups is not None:
            tr, va = grouped_split(classes, np.arange(n), validation, seed)
            if len(va):
                return tr, va, "rows by class (a single group in every class)"
    units = np.unique(groups) if groups is not None else np.arange(n)
    held = rng.choice(units, size=max(1, int(round(validation * len(units)))), replace=False)
    is_val = np.isin(groups if groups is not None else np.arange(n), held)
    if is_val.all() or not is_val.any():
        raise InputError("validation leaves no training or no validation rows; change validation")
    return (
        np.flatnonzero(~is_val),
        np.flatnonzero(is_val),
        "random groups" if groups is not None else "random rows",
    )


def _diverged(function: str, epochs: int, rates: str) -> ModelError:
    """The error when no epoch had a finite validation loss: training diverged, no state to keep."""
    return ModelError(
        f"{function}: the validation loss was NaN or infinite in all {epochs} epochs (training "
        f"diverged), so there is no best state to keep; lower {rates}"
    )


def _train(net, opt, loss_fn, zt, t, tr, va, rng, epochs, batch_size, patience) -> tuple:
    """Minibatch epochs with early stopping on the held-out rows; the best state and epoch."""
    import torch

    best, best_state, best_epoch, stale, epoch = np.inf, None, 0, 0, 0
    for epoch in range(1, epochs + 1):
        net.train()
        order = rng.permutation(tr)
        for s in range(0, len(order), batch_size):
            idx = torch.from_numpy(order[s : s + batch_size])
            opt.zero_grad()
            loss_fn(net(zt[idx]), t[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val = float(loss_fn(net(zt[va]), t[va]))
        if val < best - 1e-6:
            best, best_state, best_epoch, stale = val, copy.deepcopy(net.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= patience:
                break
    return best, best_state, best_epoch, epoch


def save_head(head: PrestoClassifierHead | PrestoRegressorHead, path: str | Path) -> Path:
    """Save a head as ``path`` (state dict) and ``<path>.json``; read back by eoai.ml.load_model.

    Examples
    --------
    >>> import numpy as np, tempfile, os, eoai.ml
    >>> X = np.r_[np.zeros((30, 4)), np.ones((30, 4))].astype("float32")
    >>> head = fit_presto_head(X, [0] * 30 + [1] * 30, epochs=20, batch_size=60)
    >>> p = save_head(head, os.path.join(tempfile.mkdtemp(), "head.pt"))
    >>> eoai.ml.load_model(p).predict(X[[0, -1]]).tolist()
    [0, 1]
    """
    from .._sidecar import sidecar_path

    if not isinstance(head, (PrestoClassifierHead, PrestoRegressorHead)):
        raise ModelError(f"save_head needs a head from fit_presto_head, got {type(head).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    desc = head.describe()
    desc.update(head._eoai_save(path))
    sidecar_path(path).write_text(json.dumps(desc, indent=2, default=str))
    return path


def load_saved(path: Path, description: dict[str, Any], *, trusted: bool = False) -> Any:
    """Loader named in a head's sidecar (weights-only torch load), for :func:`eoai.ml.load_model`."""
    import torch

    h = description.get("head")
    if not isinstance(h, dict) or h.get("task") not in TASKS:
        raise ModelError(f"{path}.json does not describe a Presto head")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means an unreadable weights file
        raise InputError(f"{path} is not a readable weights-only torch file ({err})") from err
    mean, std = np.asarray(h["mean"], "float32"), np.asarray(h["std"], "float32")
    net = _net(mean.shape[0], int(h["n_out"]), int(h["hidden"]))
    net.load_state_dict(state)
    feats = description["features"]
    if h["task"] == "classification":
        return PrestoClassifierHead(
            net, mean, std, h["hidden"], feats, description["classes"],
            class_names=description.get("class_names"), colours=description.get("colours"),
            metadata=description.get("metadata"),
        )  # fmt: skip
    tgt = description["target"]
    return PrestoRegressorHead(
        net, mean, std, h["hidden"], feats, tgt["mean"], tgt["std"], description.get("metadata"),
        target=description.get("target_name", "label"), units=description.get("units", ""),
    )  # fmt: skip
