"""M3Fusion: series branches plus a very-high-resolution patch branch (private; ``fit(..., "m3fusion")``).

The samples hold series features ``<source>.<band>_<date>`` and the ``p x p`` patch of a fine
source around each pixel, ``<source>.<band>[i,j]`` (:func:`eoai.ml.extract` with ``patch=p`` on
``eoai.stack_sources(..., fine="vhr")``; layout in :mod:`eoai.ml.features`).
:func:`fit_patch_fusion` trains a :class:`~eoai.ml.models.PatchFusionNet` (one L-TAE or TempCNN per
series source, a CNN on the patch, each branch with an auxiliary head) and returns a
:class:`PatchFusionModel`, which :func:`eoai.ml.classify` applies to a sources tree with the same
fine source lazily: every chunk reads its fine pixels plus a halo of the patch's reach, so a
chunked map equals the whole-image map.

Examples
--------
>>> import eoai
>>> from eoai.datasets.fusion_patches import fusion_patches
>>> sources, truth, labels = fusion_patches(shape=(8, 8), parcel=4, seed=0)
>>> tree = eoai.stack_sources(sources, fine="vhr")
>>> samples = eoai.ml.extract(tree, labels, label="class", patch=4, min_samples=1)
>>> model = eoai.ml.fit(samples, "m3fusion", epochs=2, patch_width=4, fused=(8,),
...                     encoder_kw={"d_model": 8, "n_head": 2, "d_k": 2, "mlp": [8]}, progress=False)
>>> model.patch, model.patch_bands, model.sources
(4, ['vhr.pan'], ['s2'])
>>> eoai.ml.classify(tree, model)["class"].shape
(8, 8)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, ModelError
from ._deep_fusion import AUX_WEIGHT, FusionModel, fusion_branches, split_sources
from ._deep_layout import parse_layout
from ._deep_model import DeepModel

#: Training defaults of ``fit(..., "m3fusion")``: those of ``"fusion"`` (L-TAE's recipe)
M3FUSION_DEFAULTS: dict[str, Any] = dict(
    epochs=40, val_fraction=0.0, date_dropout=0.2, noise=0.05, shift=1, label_smoothing=0.1,
    average_last=10, batch_size=256,
)  # fmt: skip


class PatchFusionModel(FusionModel):
    """A trained :class:`~eoai.ml.models.PatchFusionNet`: series branches and a fine-patch branch.

    Its features are the series ``<source>.<band>_<date>`` followed by the patch
    ``<source>.<band>[i,j]`` (:func:`eoai.ml.features.patch_names`); ``mean`` / ``std`` hold the
    series bands' scaling, then the patch bands'. :func:`eoai.ml.classify` needs a sources tree
    with the fine source (``eoai.stack_sources(..., fine=...)``) at the ratio of the training one.
    """

    def _init_layout(self) -> None:
        from .features import patch_names, split_patch_features

        series, bands, p = split_patch_features(self.features)
        if not p:
            raise ModelError(
                "a patch fusion model needs patch features '<source>.<band>[i,j]' (from "
                "eoai.ml.extract(..., patch=p)); these features have none"
            )
        self.patch, self.patch_bands = int(p), list(bands)
        self.patch_features = patch_names(bands, p)
        self.layout = parse_layout(series, complete=False)

    def _n_channels(self) -> int:
        return len(self.layout.bands) + len(self.patch_bands)

    @property
    def fine_ratio(self) -> int | None:
        """Fine pixels per pixel side of the training patches (``None`` when not recorded)."""
        r = self.metadata.get("fine_ratio")
        return None if r is None else int(r)

    @property
    def halo(self) -> int:
        """Fine pixels a chunk reads beyond its edges: the reach of the patches."""
        from .features import patch_offset

        r = self.fine_ratio or 1
        off = patch_offset(r, self.patch)
        return max(0, -off, off + self.patch - r)

    def _series_part(self, X: np.ndarray) -> np.ndarray:
        """The series columns of ``X`` (rows of features, or the feature names)."""
        return X[..., : X.shape[-1] - len(self.patch_features)]

    def _tensor(self, X: np.ndarray) -> Any:
        """Features ``(n, F)`` -> the packed, standardised input of the network."""
        import torch

        X = np.asarray(X, dtype="float32")
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ModelError(
                f"expected features of shape (n, {len(self.features)}), got {X.shape}; pass the "
                "columns model.features"
            )
        c = len(self.layout.bands)
        series = (self.layout.grid(self._series_part(X)) - self.mean[:c]) / self.std[:c]
        patch = X[:, X.shape[1] - len(self.patch_features) :].reshape(len(X), -1, self.patch**2)
        patch = (patch - self.mean[c:, None]) / self.std[c:, None]
        return self.net.pack(torch.from_numpy(series), torch.from_numpy(patch))

    def for_cube(self, cube: Any, *, reference_date: Any = None) -> DeepModel:
        """This model set up for the series dates of ``cube`` (a sources tree with the fine source).

        Raises
        ------
        eoai.errors.ModelError
            The cube lacks the fine source or one of its bands (a Dataset has none), its ratio
            differs from the training one, or the series sources / dates do not fit (as for
            :meth:`FusionModel.for_cube`).
        """
        from .features import fine_array

        _, ratio = fine_array(cube, self.patch_bands)
        if self.fine_ratio is not None and ratio != self.fine_ratio:
            raise ModelError(
                f"the model was trained on patches of {self.patch} x {self.patch} fine pixels at "
                f"{self.fine_ratio} fine pixels per pixel side; the fine source of the cube has "
                f"{ratio}: reproject it onto eoai.io.stack.fine_geobox(base_geobox, "
                f"{self.fine_ratio}) before stacking"
            )
        new = super().for_cube(cube, reference_date=reference_date)
        if new is not self:
            new.features = [*new.features, *self.patch_features]
        return new

    def network_config(self) -> dict[str, Any]:
        """As :meth:`DeepModel.network_config`, of kind ``"patchfusion"``."""
        return {**super().network_config(), "kind": "patchfusion"}

    def __repr__(self) -> str:
        encs = ", ".join(f"{s['name']}: {s['encoder']}" for s in self._specs)
        return (
            f"<PatchFusionModel ({encs}; patch {self.patch} x {self.patch} of "
            f"{', '.join(self.patch_bands)}): {len(self.classes)} classes {self.class_names}>"
        )


def _patch_augmentation(net: Any, series_aug: Any, noise: float, rotate: bool) -> Any:
    """Batch augmentation of packed inputs: the series one on the series part; on the patch a
    random rotation by quarter turns and flip (one per batch) and Gaussian noise."""
    import torch

    def augment(xb: Any, yb: Any, gen: Any) -> tuple[Any, Any]:
        series, patch = net.unpack(xb)
        if series_aug is not None:
            series, yb = series_aug(series, yb, gen)
        if rotate:
            k = int(torch.randint(0, 4, (1,), generator=gen))
            patch = torch.rot90(patch, k, (2, 3))
            if bool(torch.randint(0, 2, (1,), generator=gen)):
                patch = patch.flip(3)
        if noise:
            patch = patch + noise * torch.randn(patch.shape, generator=gen)
        return net.pack(series, patch), yb

    return augment


def fit_patch_fusion(
    samples: pd.DataFrame,
    model: str = "m3fusion",
    *,
    features: Sequence[str] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    class_weight: str | Mapping[Any, float] | None = None,
    val_fraction: float | None = None,
    patience: int | None = 10,
    seed: int | None = 0,
    device: Any = "auto",
    amp: bool | None = None,
    progress: bool | None = None,
    date_dropout: float | None = None,
    noise: float | None = None,
    shift: int | None = None,
    label_smoothing: float | None = None,
    average_last: int | None = None,
    scaling: str = "standard",
    reference_date: Any = None,
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    colours: Sequence[str] | Mapping[Any, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    task: str = "classification",
    target: str = "label",
    encoder: str | Mapping[str, str] = "ltae",
    encoder_kw: Mapping[str, Any] | None = None,
    aux_weight: float = AUX_WEIGHT,
    rotate: bool = True,
    ensemble: int = 1,
    **arch_kw: Any,
) -> PatchFusionModel:
    """Train an M3Fusion network (series branches + fine-patch CNN, auxiliary heads) on samples.

    Reached as ``eoai.ml.fit(samples, "m3fusion", ...)`` (and :func:`eoai.ml.cross_validate`).
    The parameters are those of :func:`eoai.ml.deep.fit_network` with ``model="fusion"``
    (defaults: :data:`M3FUSION_DEFAULTS`), plus:

    Parameters
    ----------
    samples
        From ``eoai.ml.extract(tree, labels, patch=p)``: series features of one or more sources
        and the patch features ``<source>.<band>[i,j]`` of the fine source.
    rotate
        Augment each training batch's patches by a random quarter-turn rotation and flip (the
        texture of a class is taken to have no preferred direction); ``noise`` applies to the
        standardised patch too.
    **arch_kw
        :class:`~eoai.ml.models.PatchFusionNet` parameters: ``patch_width=32`` (the patch
        embedding), ``fused=(64,)``, ``dropout=0.2``; ``encoder`` / ``encoder_kw`` for the series
        branches as for ``"fusion"``; ``aux_weight`` weighs the mean auxiliary loss (each series
        branch alone and the patch branch alone).

    Raises
    ------
    eoai.errors.InputError
        No patch features (extract with ``patch=``) or no series features, a regression target,
        ``ensemble`` > 1, bad parameters, a sample without any valid series value.
    """
    import torch

    from . import _deep_train as T
    from ._deep_model import (
        _augmentation,
        _band_scaling,
        _check_training_args,
        _jsonable,
        _labels_index,
    )
    from .features import patch_names, split_patch_features
    from .models import build_model
    from .samples import sample_features

    if task != "classification":
        raise InputError(
            "model='m3fusion' classifies; for a continuous target use 'fusion', 'ltae' or 'rf'"
        )
    if int(ensemble) != 1:
        raise InputError("ensemble > 1 is not available for model='m3fusion'; use ensemble=1")
    given = dict(epochs=epochs, val_fraction=val_fraction, date_dropout=date_dropout, noise=noise,
                 shift=shift, label_smoothing=label_smoothing, average_last=average_last,
                 batch_size=batch_size)  # fmt: skip
    c: dict[str, Any] = {k: M3FUSION_DEFAULTS[k] if v is None else v for k, v in given.items()}
    _check_training_args(c["epochs"], c["batch_size"], lr, c["val_fraction"])
    if not 0 <= c["date_dropout"] < 1 or not c["noise"] >= 0 or int(c["shift"]) < 0:
        raise InputError("date_dropout must be in [0, 1), noise and shift >= 0")
    if not 0 <= c["label_smoothing"] < 1 or int(c["average_last"]) < 0:
        raise InputError("label_smoothing must be in [0, 1) and average_last >= 0")
    if scaling not in ("standard", "robust"):
        raise InputError(f"scaling must be 'standard' or 'robust', got {scaling!r}")
    if not float(aux_weight) >= 0:
        raise InputError(f"aux_weight must be >= 0, got {aux_weight}")
    feats = sample_features(samples, features, target)
    series, pbands, p = split_patch_features(feats)
    if not p:
        raise InputError(
            "model='m3fusion' reads the patch of a fine image around each pixel, and the samples "
            "have no patch features ('<source>.<band>[i,j]'): stack the image with "
            "eoai.stack_sources({..., 'vhr': vhr}, fine='vhr') and extract with patch=, e.g. "
            "eoai.ml.extract(tree, labels, patch=8)"
        )
    if not series:
        raise InputError(
            "model='m3fusion' combines series and patches; the samples have only patch features. "
            "Add a series source to the tree (eoai.stack_sources({'s2': s2, 'vhr': vhr}, "
            "fine='vhr'))"
        )
    split_sources(series)
    layout = parse_layout(series, complete=False)
    labels = samples[target]
    if labels.isna().any():
        raise InputError(f"{int(labels.isna().sum())} samples have no {target!r}; drop them first")
    classes, y = _labels_index(labels)
    if len(classes) < 2:
        raise InputError(f"training needs at least 2 classes, the samples have {classes}")
    Xs = layout.grid(samples[series].to_numpy(dtype="float32"))
    pcols = patch_names(pbands, p)
    Xp = samples[pcols].to_numpy(dtype="float32").reshape(len(samples), len(pbands), p * p)
    n = len(Xs)
    empty = np.isnan(Xs).all(axis=(1, 2))
    if empty.any():
        raise InputError(f"{int(empty.sum())} samples have no valid series value; drop them")
    dev = T.resolve_device(device)
    amp = T.warn_amp_on_cpu(amp, dev)
    groups = samples["group"].to_numpy() if "group" in samples.columns else np.arange(n)
    tr, va = T.grouped_split(y, groups, c["val_fraction"], seed)
    branches = fusion_branches(layout, Xs[tr], encoder=encoder, encoder_kw=encoder_kw)
    date_dropout, shift = c["date_dropout"], int(c["shift"])
    if any(b["encoder"] == "tempcnn" for b in branches):  # no NaN on a TempCNN branch
        date_dropout, shift = 0.0, 0
    mean_s, std_s = _band_scaling(Xs[tr], scaling)
    mean_p, std_p = _band_scaling(Xp[tr].transpose(0, 2, 1), scaling)
    mean = np.r_[mean_s, mean_p]
    if not np.all(np.isfinite(mean)):
        names = [*layout.bands, *pbands]
        bad = [b for b, m in zip(names, mean, strict=True) if not np.isfinite(m)]
        raise InputError(f"band(s) {bad} are NaN in every training sample")
    std = np.r_[std_s, std_p]
    std = np.where(std > 1e-6, std, 1.0).astype("float32")
    mean = mean.astype("float32")
    k = len(layout.bands)
    reference = pd.Timestamp(reference_date if reference_date is not None else layout.dates[0])
    days = torch.from_numpy(layout.days(reference))
    xs = torch.from_numpy((Xs - mean[:k]) / std[:k])
    xp = torch.from_numpy((Xp - mean[k:, None]) / std[k:, None])
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(0 if seed is None else int(seed))
        try:
            net = build_model(
                "m3fusion", in_channels=k, n_classes=len(classes), branches=branches,
                patch_channels=len(pbands), patch_size=p, **arch_kw,
            )  # fmt: skip
        except (TypeError, ValueError) as err:
            raise InputError(f"bad architecture parameters for m3fusion: {err}") from None
        x = net.pack(xs, xp)
        series_aug = _augmentation(date_dropout=date_dropout, noise=float(c["noise"]), shift=shift)
        augment = _patch_augmentation(net, series_aug, float(c["noise"]), bool(rotate))
        history = T.train(
            net, x, torch.from_numpy(y), train_idx=tr, val_idx=va, days=days,
            epochs=int(c["epochs"]), batch_size=int(c["batch_size"]), lr=float(lr),
            weight_decay=float(weight_decay),
            weights=T.class_weights(y, len(classes), class_weight, classes), patience=patience,
            device=dev, amp=amp, progress=progress, augment=augment, desc="training m3fusion",
            label_smoothing=float(c["label_smoothing"]), average_last=int(c["average_last"]),
            aux_weight=float(aux_weight),
        )  # fmt: skip
    patch_info = dict(samples.attrs.get("eoai:patch") or {})
    params = {
        **c, "lr": lr, "weight_decay": weight_decay,
        "class_weight": class_weight if not isinstance(class_weight, Mapping)
        else {str(k2): v for k2, v in class_weight.items()},
        "patience": patience, "seed": seed, "amp": amp, "scaling": scaling,
        "device": str(dev), "aux_weight": float(aux_weight), "rotate": bool(rotate),
        "encoder": encoder if isinstance(encoder, str) else dict(encoder),
        **({"encoder_kw": dict(encoder_kw)} if encoder_kw else {}),
        **{k2: v for k2, v in arch_kw.items() if _jsonable(v)},
    }  # fmt: skip
    meta = {
        "label_column": samples.attrs.get("eoai:label", "label"),
        "training_cube": samples.attrs.get("eoai:cube", {}),
        "n_samples": int(n),
        "samples_per_class": {
            str(k2): int(v) for k2, v in labels.value_counts().sort_index().items()
        },
        **dict(metadata or {}),
        "method": "eoai.ml.deep.fit_network(m3fusion)",
        "parameters": params,
        "n_train": int(len(tr)),
        "n_validation": int(len(va)),
        "history": history,
        "fine_ratio": patch_info.get("ratio"),
    }
    return PatchFusionModel(
        net, [*layout.features, *pcols], classes, mean=mean.tolist(), std=std.tolist(),
        reference_date=reference,
        allow_nan=True, device=device, amp=amp, class_names=class_names, colours=colours,
        metadata=meta,
    )  # fmt: skip
