"""M3Fusion and MultiResoLCC: patch branches (private; ``fit(..., "m3fusion" | "multireso")``).

The samples hold series features ``<source>.<band>_<date>`` and the ``p x p`` patch of a fine
source around each pixel, ``<source>.<band>[i,j]`` (:func:`eoai.ml.extract` with ``patch=p`` on
``eoai.stack_sources(..., fine="vhr")``; layout in :mod:`eoai.ml.features`).
:func:`fit_patch_fusion` trains a :class:`~eoai.ml.models.PatchFusionNet` (one L-TAE or TempCNN per
series source, a CNN on the patch, each branch with an auxiliary head) and returns a
:class:`PatchFusionModel`, which :func:`eoai.ml.classify` applies to a sources tree with the same
fine source lazily: every chunk reads its fine pixels plus a halo of the patch's reach, so a
chunked map equals the whole-image map.

``"multireso"`` (MultiResoLCC, Gaetano et al. 2018) reads patches only: ``extract(tree, labels,
patch={"vhr": 32, "ms": 8})`` with a panchromatic ``fine=`` source and a one-date multispectral
``static=`` source on the base grid gives a patch of each at its own resolution, one CNN branch
each (``features=`` the patch columns).

Examples
--------
>>> import eoai
>>> from eoai.datasets.fusion_patches import fusion_patches
>>> sources, truth, labels = fusion_patches(shape=(8, 8), parcel=4, seed=0)
>>> tree = eoai.stack_sources(sources, fine="vhr")
>>> samples = eoai.ml.extract(tree, labels, label="class", patch=4, min_samples=1)
>>> model = eoai.ml.fit(samples, "m3fusion", epochs=2, patch_width=4, fused=(8,),
...                     encoder_kw={"d_model": 8, "n_head": 2, "d_k": 2, "mlp": [8]}, progress=False)
>>> model.patches, model.patch_ratios, model.sources
({'vhr': 4}, {'vhr': 4}, ['s2'])
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

#: The models :func:`fit_patch_fusion` trains: series + patches (M3Fusion), patches only
#: (MultiResoLCC: a panchromatic and a multispectral patch of one footprint)
MODELS = ("m3fusion", "multireso")
#: Training defaults of ``fit(..., "m3fusion")``: those of ``"fusion"`` (L-TAE's recipe)
M3FUSION_DEFAULTS: dict[str, Any] = dict(
    epochs=40, val_fraction=0.0, date_dropout=0.2, noise=0.05, shift=1, label_smoothing=0.1,
    average_last=10, batch_size=256,
)  # fmt: skip


class PatchFusionModel(FusionModel):
    """A trained :class:`~eoai.ml.models.PatchFusionNet`: series branches and patch branches.

    Its features are the series ``<source>.<band>_<date>`` (none for ``"multireso"``) followed by
    each source's patches ``<source>.<band>[i,j]`` (:func:`eoai.ml.features.patch_names`);
    ``mean`` / ``std`` hold the series bands' scaling, then each patch band's.
    :func:`eoai.ml.classify` needs a sources tree with those sources, at the training ratios.

    Attributes
    ----------
    groups : list of dict
        One per patch branch: ``source``, ``bands``, ``size`` (pixels), ``features``.
    """

    def _init_layout(self) -> None:
        from ._deep_layout import Layout
        from .features import patch_groups, patch_names

        series, groups = patch_groups(self.features)
        if not groups:
            raise ModelError(
                "a patch fusion model needs patch features '<source>.<band>[i,j]' (from "
                "eoai.ml.extract(..., patch=p)); these features have none"
            )
        self.groups: list[dict[str, Any]] = [
            {"source": b[0].partition(".")[0], "bands": list(b), "size": int(p),
             "features": patch_names(b, p)}
            for b, p in groups
        ]  # fmt: skip
        self.patch_features = [f for g in self.groups for f in g["features"]]
        if series:
            self.layout = parse_layout(series, complete=False)
        else:
            self.layout = Layout(bands=[], dates=[], perm=np.arange(0))

    def _n_channels(self) -> int:
        return len(self.layout.bands) + sum(len(g["bands"]) for g in self.groups)

    @property
    def patches(self) -> dict[str, int]:
        """``{source: patch size}`` (pixels of that source's image)."""
        return {g["source"]: g["size"] for g in self.groups}

    @property
    def patch_ratios(self) -> dict[str, int]:
        """``{source: pixels of its image per pixel side}`` of the training images (when known)."""
        return {str(k): int(v) for k, v in (self.metadata.get("patch_ratios") or {}).items()}

    def patch_halo(self, source: str, ratio: int) -> int:
        """Pixels of ``source``'s image a chunk reads beyond its edges: its patches' reach."""
        from .features import patch_offset

        size = self.patches[source]
        off = patch_offset(ratio, size)
        return max(0, -off, off + size - ratio)

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
        if c:
            series = (self.layout.grid(self._series_part(X)) - self.mean[:c]) / self.std[:c]
        else:
            series = np.zeros((len(X), 0, 0), "float32")
        patches, col, ch = [], X.shape[1] - len(self.patch_features), c
        for g in self.groups:
            nb, n = len(g["bands"]), len(g["features"])
            patch = X[:, col : col + n].reshape(len(X), nb, g["size"] ** 2)
            patch = (patch - self.mean[ch : ch + nb, None]) / self.std[ch : ch + nb, None]
            patches.append(torch.from_numpy(np.ascontiguousarray(patch)))
            col, ch = col + n, ch + nb
        return self.net.pack(torch.from_numpy(np.ascontiguousarray(series)), patches)

    def for_cube(self, cube: Any, *, reference_date: Any = None) -> DeepModel:
        """This model set up for the series dates of ``cube`` (a sources tree with the images).

        Raises
        ------
        eoai.errors.ModelError
            The cube lacks a patch source or one of its bands (a Dataset has none), an image's
            ratio differs from the training one, or the series sources / dates do not fit (as for
            :meth:`FusionModel.for_cube`).
        """
        from .features import patch_array

        for g in self.groups:
            _, ratio = patch_array(cube, g["source"], g["bands"])
            want = self.patch_ratios.get(g["source"])
            if want is not None and ratio != want:
                raise ModelError(
                    f"the model was trained on {g['size']} x {g['size']} patches of "
                    f"{g['source']!r} at {want} of its pixels per pixel side; the cube's has "
                    f"{ratio}: reproject it onto eoai.io.stack.fine_geobox(base_geobox, {want}) "
                    "before stacking"
                )
        if not self.layout.bands:
            return self
        new = super().for_cube(cube, reference_date=reference_date)
        if new is not self:
            new.features = [*new.features, *self.patch_features]
        return new

    def network_config(self) -> dict[str, Any]:
        """As :meth:`DeepModel.network_config`, of kind ``"patchfusion"``."""
        return {**super().network_config(), "kind": "patchfusion"}

    def __repr__(self) -> str:
        parts = [f"{s['name']}: {s['encoder']}" for s in self._specs]
        parts += [f"{g['source']}: {g['size']} x {g['size']} patch" for g in self.groups]
        return (
            f"<PatchFusionModel ({', '.join(parts)}): {len(self.classes)} classes "
            f"{self.class_names}>"
        )


def _patch_augmentation(net: Any, series_aug: Any, noise: float, rotate: bool) -> Any:
    """Batch augmentation of packed inputs: the series one on the series part; on the patches one
    random rotation by quarter turns and flip (per batch, the same for every image) and noise."""
    import torch

    def augment(xb: Any, yb: Any, gen: Any) -> tuple[Any, Any]:
        series, patches = net.unpack(xb)
        if series_aug is not None and series.shape[-1]:
            series, yb = series_aug(series, yb, gen)
        if rotate:
            k = int(torch.randint(0, 4, (1,), generator=gen))
            flip = bool(torch.randint(0, 2, (1,), generator=gen))
            patches = [torch.rot90(p, k, (2, 3)) for p in patches]
            if flip:
                patches = [p.flip(3) for p in patches]
        if noise:
            patches = [p + noise * torch.randn(p.shape, generator=gen) for p in patches]
        return net.pack(series, patches), yb

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
    """Train an M3Fusion or MultiResoLCC network (series + patch CNNs, auxiliary heads) on samples.

    Reached as ``eoai.ml.fit(samples, "m3fusion" | "multireso", ...)`` (and
    :func:`eoai.ml.cross_validate`).
    The parameters are those of :func:`eoai.ml.deep.fit_network` with ``model="fusion"``
    (defaults: :data:`M3FUSION_DEFAULTS`), plus:

    Parameters
    ----------
    samples
        From ``eoai.ml.extract(tree, labels, patch=p)``: series features of one or more sources
        and the patch features ``<source>.<band>[i,j]`` of the fine source (``"m3fusion"``), or
        patches only, e.g. of a panchromatic and a multispectral image (``"multireso"``).
    model
        ``"m3fusion"`` (series and patches) or ``"multireso"`` (patches only).
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
        No patch features (extract with ``patch=``), no series features for ``"m3fusion"`` or
        some for ``"multireso"``, a regression target,
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
    from .features import patch_groups, patch_names
    from .models import build_model
    from .samples import sample_features

    name = str(model).lower()
    if name not in MODELS:
        raise InputError(f"fit_patch_fusion trains {MODELS}, not {model!r}")
    if task != "classification":
        raise InputError(
            f"model={name!r} classifies; for a continuous target use 'fusion', 'ltae' or 'rf'"
        )
    if int(ensemble) != 1:
        raise InputError(f"ensemble > 1 is not available for model={name!r}; use ensemble=1")
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
    series, pgroups = patch_groups(feats)
    if not pgroups:
        raise InputError(
            f"model={name!r} reads patches of images around each pixel, and the samples have no "
            "patch features ('<source>.<band>[i,j]'): stack the images with "
            "eoai.stack_sources({..., 'vhr': vhr}, fine='vhr') and extract with patch=, e.g. "
            "eoai.ml.extract(tree, labels, patch=8)"
        )
    if name == "m3fusion" and not series:
        raise InputError(
            "model='m3fusion' combines series and patches; the samples have only patch features. "
            "Add a series source to the tree (eoai.stack_sources({'s2': s2, 'vhr': vhr}, "
            "fine='vhr')), or use model='multireso' for patches alone"
        )
    if name == "multireso" and series:
        raise InputError(
            f"model='multireso' reads patches only (MultiResoLCC), and {len(series)} features are "
            f"not patches (e.g. {series[0]}): pass features= the patch columns, or use "
            "model='m3fusion' to combine them with series"
        )
    from ._deep_layout import Layout

    if series:
        split_sources(series)
        layout = parse_layout(series, complete=False)
    else:
        layout = Layout(bands=[], dates=[], perm=np.arange(0))
    labels = samples[target]
    if labels.isna().any():
        raise InputError(f"{int(labels.isna().sum())} samples have no {target!r}; drop them first")
    classes, y = _labels_index(labels)
    if len(classes) < 2:
        raise InputError(f"training needs at least 2 classes, the samples have {classes}")
    n = len(samples)
    if series:
        Xs = layout.grid(samples[series].to_numpy(dtype="float32"))
        empty = np.isnan(Xs).all(axis=(1, 2))
        if empty.any():
            raise InputError(f"{int(empty.sum())} samples have no valid series value; drop them")
    else:
        Xs = np.zeros((n, 0, 0), "float32")
    pcols = [patch_names(b, p) for b, p in pgroups]
    Xp = [
        samples[cols].to_numpy(dtype="float32").reshape(n, len(b), p * p)
        for cols, (b, p) in zip(pcols, pgroups, strict=True)
    ]
    dev = T.resolve_device(device)
    amp = T.warn_amp_on_cpu(amp, dev)
    groups = samples["group"].to_numpy() if "group" in samples.columns else np.arange(n)
    tr, va = T.grouped_split(y, groups, c["val_fraction"], seed)
    branches = (
        fusion_branches(layout, Xs[tr], encoder=encoder, encoder_kw=encoder_kw) if series else []
    )
    date_dropout, shift = c["date_dropout"], int(c["shift"])
    if any(b["encoder"] == "tempcnn" for b in branches):  # no NaN on a TempCNN branch
        date_dropout, shift = 0.0, 0
    scales = [_band_scaling(Xs[tr], scaling)] if series else []
    scales += [_band_scaling(xp[tr].transpose(0, 2, 1), scaling) for xp in Xp]
    mean = np.concatenate([m for m, _ in scales])
    if not np.all(np.isfinite(mean)):
        names = [*layout.bands, *(band for b, _ in pgroups for band in b)]
        bad = [b for b, m in zip(names, mean, strict=True) if not np.isfinite(m)]
        raise InputError(f"band(s) {bad} are NaN in every training sample")
    std = np.concatenate([sd for _, sd in scales])
    std = np.where(std > 1e-6, std, 1.0).astype("float32")
    mean = mean.astype("float32")
    k = len(layout.bands)
    first = layout.dates[0] if layout.dates else "1970-01-01"
    reference = pd.Timestamp(reference_date if reference_date is not None else first)
    days = torch.from_numpy(layout.days(reference)) if series else torch.zeros(0)
    xs = torch.from_numpy((Xs - mean[:k]) / std[:k]) if series else torch.from_numpy(Xs)
    xps, ch = [], k
    for xp in Xp:
        nb = xp.shape[1]
        xps.append(torch.from_numpy((xp - mean[ch : ch + nb, None]) / std[ch : ch + nb, None]))
        ch += nb
    patch_info = dict(samples.attrs.get("eoai:patch") or {})
    patches = [{"name": b[0].partition(".")[0], "channels": len(b), "size": p} for b, p in pgroups]
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(0 if seed is None else int(seed))
        try:
            net = build_model(
                "m3fusion", in_channels=k, n_classes=len(classes), branches=branches,
                patches=patches, **arch_kw,
            )  # fmt: skip
        except (TypeError, ValueError) as err:
            raise InputError(f"bad architecture parameters for {name}: {err}") from None
        x = net.pack(xs, xps)
        series_aug = _augmentation(date_dropout=date_dropout, noise=float(c["noise"]), shift=shift)
        augment = _patch_augmentation(net, series_aug, float(c["noise"]), bool(rotate))
        history = T.train(
            net, x, torch.from_numpy(y), train_idx=tr, val_idx=va, days=days,
            epochs=int(c["epochs"]), batch_size=int(c["batch_size"]), lr=float(lr),
            weight_decay=float(weight_decay),
            weights=T.class_weights(y, len(classes), class_weight, classes), patience=patience,
            device=dev, amp=amp, progress=progress, augment=augment, desc=f"training {name}",
            label_smoothing=float(c["label_smoothing"]), average_last=int(c["average_last"]),
            aux_weight=float(aux_weight),
        )  # fmt: skip
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
        "method": f"eoai.ml.deep.fit_network({name})",
        "parameters": params,
        "n_train": int(len(tr)),
        "n_validation": int(len(va)),
        "history": history,
        "patch_ratios": {
            g["name"]: int(patch_info[g["name"]]["ratio"])
            for g in patches
            if isinstance(patch_info.get(g["name"]), Mapping) and "ratio" in patch_info[g["name"]]
        },
    }
    return PatchFusionModel(
        net, [*layout.features, *(f for cols in pcols for f in cols)], classes, mean=mean.tolist(), std=std.tolist(),
        reference_date=reference,
        allow_nan=True, device=device, amp=amp, class_names=class_names, colours=colours,
        metadata=meta,
    )  # fmt: skip
