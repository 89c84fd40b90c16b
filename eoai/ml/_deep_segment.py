"""Patch segmentation training for :mod:`eoai.ml.deep` (private; use ``eoai.ml.deep.fit_segmentation``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError, ModelError
from ._deep_model import (
    SegmentationModel,
    _check_training_args,
    _jsonable,
    _labels_index,
    _make_net,
)
from ._deep_regress import SegmentationRegressor

# --------------------------------------------------------------------------------------------
# Patch segmentation
# --------------------------------------------------------------------------------------------


def _label_raster(cube: Any, labels: Any, label: str, nodata: Any) -> tuple[np.ndarray, Any]:
    """Labels as an (y, x) array on the cube grid and the nodata value."""
    if isinstance(labels, xr.DataArray):
        if set(labels.dims) != {"y", "x"}:
            raise InputError(f"the label raster must have dims (y, x), got {labels.dims}")
        if labels.sizes["y"] != cube.sizes["y"] or labels.sizes["x"] != cube.sizes["x"]:
            raise InputError(
                f"the label raster is {dict(labels.sizes)} and the cube {cube.sizes['y']} x "
                f"{cube.sizes['x']}: put the labels on the cube grid (labels.interp_like(cube, "
                "method='nearest') or rasterise polygons by passing them)"
            )
        _check_on_grid(cube, labels)
        arr = np.asarray(labels.transpose("y", "x").values)
        if nodata is None:
            nodata = labels.attrs.get("nodata", labels.attrs.get("_FillValue"))
        return arr, nodata
    from .samples import read_labels

    gdf = read_labels(labels)
    if label not in gdf.columns:
        raise InputError(f"the labels have no column {label!r}; columns: {list(gdf.columns)}")
    import rasterio.features

    gbox = cube.odc.geobox
    gdf = gdf[gdf[label].notna()].to_crs(gbox.crs.to_wkt())
    classes = sorted(pd.unique(gdf[label]), key=lambda v: (str(type(v)), v))
    lut = {c: i for i, c in enumerate(classes)}
    burned = rasterio.features.rasterize(
        [(g, lut[v]) for g, v in zip(gdf.geometry, gdf[label], strict=True)],
        out_shape=gbox.shape, transform=gbox.affine, fill=-1, dtype="int32",
    )  # fmt: skip
    # numpy's stubs take no None as the array of np.where (it is one: an object scalar)
    burned_classes = np.where(
        burned >= 0, np.asarray(classes, dtype=object)[np.maximum(burned, 0)], None
    )
    return cast(np.ndarray, burned_classes), None


def _check_on_grid(cube: Any, labels: xr.DataArray) -> None:
    """InputError unless the label / target raster has the cube's y / x coordinates and CRS."""
    fix = (
        "resample it onto the cube first, e.g. labels.odc.reproject(cube.odc.geobox, "
        "resampling='nearest') (or labels.interp_like(cube, method='nearest') on one CRS)"
    )
    for dim in ("y", "x"):
        if dim not in labels.coords or dim not in cube.coords:
            continue
        a = np.asarray(labels[dim].values, dtype="float64")
        b = np.asarray(cube[dim].values, dtype="float64")
        step = float(np.abs(np.diff(b)).min()) if b.size > 1 else 1.0
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-3 * step):
            off = float(np.abs(a - b).max()) if a.shape == b.shape else float("nan")
            raise InputError(
                f"the label raster is not on the cube's grid: its {dim} coordinates differ from "
                f"the cube's (by up to {off:g}, pixel {step:g}); {fix}"
            )
    crs_l, crs_c = _crs_of(labels), _crs_of(cube)
    if crs_l is not None and crs_c is not None and crs_l != crs_c:
        raise InputError(
            f"the label raster is in {crs_l} and the cube in {crs_c}: not on the cube's grid; {fix}"
        )


def _crs_of(obj: Any) -> Any:
    try:
        return obj.odc.crs
    except Exception:  # noqa: BLE001 - no CRS known
        return None


def _segmentation_task(values: np.ndarray, task: str | None) -> str:
    """``"classification"`` or ``"regression"`` of the labelled pixels (:func:`infer_task` rules)."""
    from .base import infer_task

    if task is not None and task not in ("classification", "regression"):
        raise InputError(f"task must be 'classification', 'regression' or None, got {task!r}")
    series = pd.Series(values).infer_objects()
    inferred = infer_task(series)
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if task == "regression" and not numeric:
        raise InputError(
            f"a regression needs a numeric target raster, but it holds {series.dtype} values "
            f"(e.g. {series.iloc[0]!r}): these are class labels; drop task= to segment classes"
        )
    if (
        task == "classification"
        and pd.api.types.is_float_dtype(series)
        and inferred == "regression"
    ):
        raise InputError(
            f"the target raster is continuous ({series.nunique()} distinct float values, e.g. "
            f"{series.iloc[0]!r}) but a classifier was asked for (task='classification'); drop "
            "task= (or pass task='regression') to train a U-Net regressor, or bin the values into "
            "classes first"
        )
    return task or inferred


def fit_segmentation(
    cube: Any,
    labels: Any,
    *,
    label: str = "class",
    nodata: Any = None,
    features: Sequence[str] | None = None,
    model: Any = "unet",
    patch: int = 64,
    patches_per_epoch: int = 64,
    epochs: int = 30,
    batch_size: int = 8,
    lr: float = 2e-3,
    weight_decay: float = 1e-2,
    class_weight: str | Mapping[Any, float] | None = None,
    val_fraction: float = 0.2,
    patience: int | None = 10,
    seed: int | None = 0,
    device: Any = "auto",
    amp: bool | None = None,
    progress: bool | None = None,
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    colours: Sequence[str] | Mapping[Any, str] | None = None,
    halo: int | None = None,
    reference_date: Any = None,
    task: str | None = None,
    units: str | None = None,
    encoder: Any = None,
    encoder_weights: Any = None,
    **arch_kw: Any,
) -> SegmentationModel | SegmentationRegressor:
    """Train a patch network (U-Net, U-TAE) on a cube and a label (or continuous target) raster.

    U-Net: every feature of the cube (band x date, see :mod:`eoai.ml.features`) is an input channel,
    standardised with the training mean and standard deviation (NaN -> the mean). U-TAE
    (``model="utae"``): the features are read as a series ``(time, band, y, x)`` with the
    acquisition days, standardised per band, NaN kept (the network masks them). The labelled
    area of the cube is read into memory; the image is cut into a grid of ``patch`` x ``patch``
    tiles, a share ``val_fraction`` of the labelled tiles is held out for validation (its labels
    never train), and each epoch draws ``patches_per_epoch`` random windows from the rest, flipped
    and rotated at random.

    A continuous target raster (canopy height, biomass: floats that are not a few whole numbers,
    the :func:`eoai.ml.infer_task` rules; ``task=`` overrides) trains a U-Net regressor: one
    output, the target standardised with its mean and standard deviation, a mean squared error
    over the labelled pixels only (NaN / ``nodata`` pixels count for nothing), the same windows,
    validation tiles and early stopping on the validation loss. The result is a
    :class:`eoai.ml.deep.SegmentationRegressor`, mapped with :func:`eoai.ml.predict`
    (``cube.eoai.predict(model)``) in the target's units.

    Parameters
    ----------
    cube
        Dataset / DataArray ``(time, y, x)`` with a CRS.
    labels
        A DataArray ``(y, x)`` of class labels or of a continuous target on the cube grid (same
        ``y`` / ``x`` coordinates and CRS; ``nodata`` or NaN = unlabelled), or polygons
        (GeoDataFrame or file) with a ``label`` column, rasterised onto the cube.
    label, nodata
        Class column of polygons; label value meaning "no label" for a raster.
    features
        Feature names to use as channels (default all).
    model
        ``"unet"``, ``"utae"`` (:class:`eoai.ml.models.UTAE`: a series network, see
        :class:`eoai.ml.deep.SeriesSegmentationModel`), ``"utt"`` (:class:`eoai.ml.models.UTT`,
        U-T&T: ``cube`` is then a fine image and a series, ``{"aerial": image, "s2": series}`` or
        a DataTree, and the labels are on the image's grid; see
        :class:`eoai.ml.deep.MultiResSegmentationModel`) or a ``torch.nn.Module`` mapping
        ``(batch, channel, y, x)`` to logits
        ``(batch, class, y, x)`` (e.g. a ``segmentation_models_pytorch.Unet``); its
        ``receptive_field`` attribute (pixels) sets the halo, else pass ``halo``; a
        ``tile_multiple`` attribute (its down-sampling factor) tells which chunk sizes keep
        tiled and whole-image maps identical.
    patch, patches_per_epoch
        Window size (pixels) and windows drawn per epoch. For the U-TAE ``patch`` must be a
        multiple of its down-sampling factor ``2 ** (len(encoder) - 1)``.
    epochs, batch_size, lr, weight_decay, class_weight, val_fraction, patience, seed, device, amp,
    progress, class_names, colours
        As for :func:`fit_network`.
    halo
        Overlap (pixels) between tiles at inference; default from the network's receptive field.
    reference_date
        U-TAE: day 0 of the day encoding (default the first date).
    task
        ``"classification"``, ``"regression"`` or ``None``: inferred from the labelled values as
        by :func:`eoai.ml.infer_task`.
    units
        Units of a continuous target (default the raster's ``units`` attribute), carried to the
        predicted map.
    encoder
        A pluggable U-Net encoder (``model="unet"``): a ``torch.nn.Module`` honouring timm's
        ``features_only`` contract, or ``"timm:<name>"`` (created with
        ``timm.create_model(name, features_only=True, pretrained=False, in_chans=<features>)``;
        needs ``pip install timm``). The contract: ``encoder(x)``, ``x`` of shape
        ``(batch, n_features, H, W)`` standardised as above, returns a list of feature maps,
        finest first; ``encoder.feature_info.channels()`` and ``.reduction()`` list their
        channels and down-sampling factors (increasing, each a multiple of the previous one); an
        optional ``receptive_field`` attribute (pixels) sets the halo, else pass ``halo``. The
        decoder (:class:`eoai.ml.models.EncoderUNet`, widths ``decoder=``) is built from those
        lists and the tiles are multiples of the coarsest reduction. The encoder's input
        contract is kept as a model card (``model.card``,
        :class:`eoai.ml.presto.card.ModelCard`: channels, units, scaling, pixel size, patch
        size, dates) in the saved model's sidecar; :func:`eoai.ml.load_model` rebuilds a
        ``timm:`` encoder and takes a custom one as ``load_model(path, encoder=MyEncoder(...))``.
    encoder_weights
        A local ``state_dict`` file of the encoder (e.g. pretrained weights), loaded with
        ``torch.load(weights_only=True)`` before training.
    **arch_kw
        U-Net parameters: ``depth`` (default 3), ``base`` (default 32), or with ``encoder``
        only ``decoder`` (channels per level, finest first); U-TAE parameters (``encoder``
        is then its widths per level):
        ``encoder`` (default (16, 32, 32)), ``decoder``, ``n_head``, ``d_model``, ``d_k``,
        ``day_jitter`` (e.g. 15 for a model meant for other dates; see
        :class:`eoai.ml.models.UTAE`); U-T&T: those of the U-Net and the U-TAE, ``factor``
        (series pixel / image pixel; from the grids, needed for an :func:`eoai.stack_sources`
        tree), ``image`` / ``series`` (source names), ``aux_weight`` (of the U-TAE branch's loss,
        default 0.5; see :func:`eoai.ml.deep.stack_multires`).

    Raises
    ------
    eoai.errors.InputError
        Bad parameters (``encoder`` not a module or ``"timm:<name>"``, an unreadable
        ``encoder_weights`` file), no labelled pixel, a single class, a label raster not on the
        cube's grid,
        ``task="classification"`` on a continuous target (or ``"regression"`` on class labels), a
        constant target, a U-TAE on fewer than 2 dates or with a ``patch`` that is not a multiple
        of its down-sampling factor; U-T&T sources whose grids
        are not integer multiples (:func:`eoai.ml.deep.stack_multires`).
    eoai.errors.ModelError
        A pixel network (``"tempcnn"``, ``"ltae"``), a custom module without a receptive field
        and no ``halo``, a U-TAE on features without dates (a cube without time) or on a
        continuous target; an encoder breaking the contract (wrong input channels, feature maps
        unlike its ``feature_info``), weights that do not fit it, timm not installed.

    Returns
    -------
    SegmentationModel or SegmentationRegressor

    Examples
    --------
    >>> import eoai.datasets
    >>> cube, truth = eoai.datasets.synthetic_cube((32, 32), freq="60D", cloud_fraction=0, seed=1,
    ...                                            bands=["red", "nir"], breaks=False)
    >>> m = fit_segmentation(cube.drop_vars("scl"), truth["class"], patch=16, epochs=2,
    ...                      depth=1, base=4, progress=False)
    >>> m.halo >= m.net.receptive_field // 2
    True
    >>> height = (truth["class"] * 2.5).astype("float32").rename("height")  # a continuous target
    >>> r = fit_segmentation(cube.drop_vars("scl"), height, patch=16, epochs=2, depth=1, base=4,
    ...                      units="m", progress=False)
    >>> type(r).__name__, r.target, r.units
    ('SegmentationRegressor', 'height', 'm')
    >>> from eoai.ml.models.unet import TinyEncoder  # any module of the features_only contract
    >>> e = fit_segmentation(cube.drop_vars("scl"), truth["class"], encoder=TinyEncoder(14),
    ...                      patch=16, epochs=1, progress=False)
    >>> e.card.architecture["reduction"], e.tile_multiple
    ([2, 4], 4)
    """
    from . import _deep_utt

    if _deep_utt.is_multires(model):  # U-T&T: two sources, its own module
        if encoder_weights is not None or not (
            encoder is None or isinstance(encoder, (tuple, list))
        ):
            raise InputError(
                "U-T&T takes encoder= as the widths of its U-TAE branch (e.g. encoder=(16, 32)); "
                "a pluggable encoder (a module, 'timm:<name>', encoder_weights=) is for model='unet'"
            )
        if encoder is not None:
            arch_kw["encoder"] = encoder  # the U-TAE branch's widths
        return _deep_utt.fit_utt(
            cube, labels, label=label, nodata=nodata, features=features, patch=patch,
            patches_per_epoch=patches_per_epoch, epochs=epochs, batch_size=batch_size, lr=lr,
            weight_decay=weight_decay, class_weight=class_weight, val_fraction=val_fraction,
            patience=patience, seed=seed, device=device, amp=amp, progress=progress,
            class_names=class_names, colours=colours, halo=halo, reference_date=reference_date,
            label_raster=_label_raster, **arch_kw,
        )  # fmt: skip
    import torch

    from . import _deep_train as T
    from . import _deep_utae as U
    from ._deep_layout import parse_layout
    from .features import as_dataset, feature_array, feature_names

    _check_training_args(epochs, batch_size, lr, val_fraction)
    if int(patch) < 8:
        raise InputError(f"patch must be >= 8 pixels, got {patch}")
    ds = as_dataset(cube)
    feats = list(features) if features is not None else feature_names(ds)
    series = U.is_series(model)
    if series and encoder is not None and encoder_weights is None:
        arch_kw["encoder"], encoder = encoder, None  # the U-TAE's encoder widths
    if encoder_weights is not None and encoder is None:
        raise InputError("encoder_weights= are the weights of encoder=: pass the encoder too")
    if encoder is not None:
        if not (isinstance(model, str) and model.lower() == "unet"):
            raise InputError(
                f"encoder= replaces the encoder of the U-Net: leave model='unet', not {model!r}"
            )
        if set(arch_kw) - {"decoder"}:
            raise InputError(
                f"with encoder= the U-Net takes decoder= only (its widths per level), not "
                f"{sorted(set(arch_kw) - {'decoder'})}: the encoder sets depth and width"
            )
    multiple = U.tile_multiple_of(model, arch_kw) if series else 1
    if series:
        parse_layout(feats)  # a cube without time: ModelError before reading anything
        if int(patch) % multiple:
            raise InputError(
                f"patch={patch} must be a multiple of {multiple}, the down-sampling factor of the "
                f"U-TAE (2 ** (len(encoder) - 1)): e.g. patch={max(multiple, int(patch) // multiple * multiple)}"
            )
    lab, nodata = _label_raster(ds, labels, label, nodata)
    valid = ~np.asarray(pd.isna(lab), dtype=bool)
    if nodata is not None:
        valid &= lab != nodata
    if not valid.any():
        raise InputError(
            "the labels hold no labelled pixel on the cube (all NaN or nodata"
            f"{'' if nodata is None else f' = {nodata!r}'}): check the raster covers the cube"
        )
    task = _segmentation_task(lab[valid], task)
    regression = task == "regression"
    y_img: np.ndarray  # float targets (regression) or class indices
    if regression:
        for name, value in (("class_weight", class_weight), ("class_names", class_names),
                            ("colours", colours)):  # fmt: skip
            if value is not None:
                raise InputError(
                    f"{name}= is for classes, but the target raster is continuous (a "
                    f"regression); drop {name}="
                )
        if series:
            raise ModelError(
                "the U-TAE has no regression head yet: train model='unet' (or a custom module "
                "with one output) on a continuous target raster"
            )
        yv = np.asarray(lab[valid], dtype="float64")
        if not np.isfinite(yv).all():
            raise InputError(
                f"{int((~np.isfinite(yv)).sum())} pixels of the target raster are infinite; "
                "set them to NaN (unlabelled)"
            )
        y_mean, y_std = float(yv.mean()), float(yv.std())
        if not y_std > 0:
            raise InputError(f"the target raster is constant ({yv[0]}): nothing to learn")
        y_img = np.full(lab.shape, np.nan, dtype=np.float32)
        y_img[valid] = ((yv - y_mean) / y_std).astype("float32")
        classes: list[Any] = [0, 1]  # placeholder classes of the inner model (one output)
    else:
        if units:
            raise InputError("units= is for a continuous target raster; class labels have none")
        classes, yidx = _labels_index(pd.Series(lab[valid]))
        if len(classes) < 2:
            raise InputError(f"training needs at least 2 classes, the labels have {classes}")
        y_img = np.full(lab.shape, T.IGNORE, dtype=np.int64)
        y_img[valid] = yidx

    def labelled(a: np.ndarray) -> np.ndarray:
        return ~np.isnan(a) if regression else a != T.IGNORE

    unlabelled = np.nan if regression else T.IGNORE
    # read the labelled bounding box only
    rows, cols = np.nonzero(valid)
    r0, r1 = rows.min(), rows.max() + 1
    c0, c1 = cols.min(), cols.max() + 1
    box = feature_array(ds, feats).isel(y=slice(r0, r1), x=slice(c0, c1))
    img = np.asarray(box.transpose("feature", "y", "x").values, dtype="float32")  # fit: in memory
    y_img = y_img[r0:r1, c0:c1]
    h, w = y_img.shape
    p = int(min(patch, h, w)) // multiple * multiple
    if p < 8:
        raise InputError(f"the labelled area ({h} x {w} px) is smaller than 8 pixels")
    days = None
    if series:
        norm, layout, mean, std, days, reference_date = U.prepare_series(img, feats, reference_date)
        channels = len(layout.bands)
    else:
        mean = np.nanmean(img, axis=(1, 2))
        std = np.nanstd(img, axis=(1, 2))
        if not np.all(np.isfinite(mean)):
            raise InputError("some features are NaN over the whole labelled area; drop them")
        std = np.where(std > 1e-6, std, 1.0).astype("float32")
        norm = np.nan_to_num((img - mean[:, None, None]) / std[:, None, None], nan=0.0)
        channels = len(feats)

    rng = np.random.default_rng(seed)
    pos, val_pos, val_y, y_train = T.patch_windows(
        y_img, p, val_fraction=val_fraction, per_epoch=patches_per_epoch, epochs=epochs, rng=rng,
        labelled=labelled, unlabelled=unlabelled,
    )  # fmt: skip
    n_win = int(patches_per_epoch)
    n_tr = len(pos)
    norm_t, ytr_t = torch.from_numpy(norm), torch.from_numpy(y_train)
    val_y_t = torch.from_numpy(np.stack(val_y)) if val_y else None

    def take(idx: Any) -> tuple[Any, Any]:
        xs, ys = [], []
        for r in np.asarray(idx).tolist():
            if r < n_tr:
                a, b = pos[r]
                ys.append(ytr_t[a : a + p, b : b + p])
            else:
                assert val_y_t is not None  # indices past n_tr are validation windows
                a, b = val_pos[r - n_tr]
                ys.append(val_y_t[r - n_tr])
            xs.append(norm_t[..., a : a + p, b : b + p])
        return torch.stack(xs), torch.stack(ys)

    dev = T.resolve_device(device)
    amp = T.warn_amp_on_cpu(amp, dev)
    n_classes = 1 if regression else len(classes)
    counts_y = y_img[labelled(y_img)]
    weights = None if regression else T.class_weights(counts_y, n_classes, class_weight, classes)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(0 if seed is None else int(seed))
        if encoder is not None:
            from ._deep_encoder import make_encoder
            from .models import EncoderUNet

            enc, source = make_encoder(encoder, channels=channels, weights=encoder_weights)
            try:
                net, arch = EncoderUNet(enc, n_classes, **arch_kw), "encoder_unet"
            except (TypeError, ValueError) as err:
                raise InputError(f"bad decoder parameters: {err}") from None
        else:
            net, arch = _make_net(
                model, kind="patch", n_classes=n_classes, channels=channels, arch_kw=arch_kw
            )
        if halo is None and not hasattr(net, "receptive_field"):
            raise ModelError(
                f"{type(net).__name__} has no receptive_field attribute: pass halo= (pixels of "
                "overlap between tiles at inference, at least half its receptive field)"
            )
        history = T.train(
            net, None, None, train_idx=np.arange(n_tr), val_idx=np.arange(n_tr, n_tr + len(val_pos)),
            epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
            weight_decay=float(weight_decay), weights=weights, patience=patience, device=dev,
            amp=amp, progress=progress, augment=T.flip_rotate, take=take,
            epoch_indices=lambda e: np.arange(e * n_win, (e + 1) * n_win),
            eval_batch_size=int(batch_size), desc=f"training {arch}", days=days,
            regression=regression,
        )  # fmt: skip
    if encoder is not None:
        from ._deep_encoder import encoder_card

        net.card = encoder_card(
            net.encoder, source=source, features=feats, mean=mean, std=std, cube=ds, patch=p,
            weights=encoder_weights,
        )  # fmt: skip
    meta: dict[str, Any] = {
        "method": f"eoai.ml.deep.fit_segmentation({arch})",
        "training_cube": _describe(ds),
        "n_labelled_pixels": int(valid.sum()),
        "parameters": {
            "patch": p, "patches_per_epoch": n_win, "epochs": epochs, "batch_size": batch_size,
            "lr": lr, "weight_decay": weight_decay, "val_fraction": val_fraction,
            "val_tiles": len(val_pos), "patience": patience, "seed": seed, "amp": amp,
            "device": str(dev), **{k: v for k, v in arch_kw.items() if _jsonable(v)},
        },
        "history": history,
    }  # fmt: skip
    if regression:
        inner = SegmentationModel(
            net, feats, classes, mean=mean, std=std, allow_nan=True, device=device, amp=amp,
            halo=halo,
        )  # fmt: skip
        meta["task"] = "regression"
        meta["target_summary"] = {
            "mean": y_mean, "std": y_std, "min": float(yv.min()), "max": float(yv.max()),
        }  # fmt: skip
        if units is None and isinstance(labels, xr.DataArray):
            units = labels.attrs.get("units")
        target = labels.name if isinstance(labels, xr.DataArray) else label
        return SegmentationRegressor(
            inner, str(target or "label"), y_mean=y_mean, y_std=y_std, units=str(units or ""),
            metadata=meta,
        )  # fmt: skip
    meta["pixels_per_class"] = {str(c): int((counts_y == i).sum()) for i, c in enumerate(classes)}
    class_names, colours = T.legend_from_labels(labels, classes, class_names, colours)
    if series:
        return U.SeriesSegmentationModel(
            net, layout.features, classes, mean=mean, std=std, reference_date=reference_date,
            allow_nan=True, device=device, amp=amp, class_names=class_names, colours=colours,
            metadata=meta, halo=halo,
        )  # fmt: skip
    return SegmentationModel(
        net, feats, classes, mean=mean, std=std, allow_nan=True, device=device, amp=amp,
        class_names=class_names, colours=colours, metadata=meta, halo=halo,
    )  # fmt: skip


def _describe(ds: Any) -> dict[str, Any]:
    from .samples import describe_cube

    return describe_cube(ds)
