"""U-T&T for :mod:`eoai.ml.deep` (private): a fine image and a coarse series, fused (FLAIR #2).

The network (:class:`eoai.ml.models.UTT`) reads both sources on the fine grid: the image as it
is, the series repeated over ``factor`` x ``factor`` fine pixels (it averages them back). So the
two sources are one DataTree on the fine grid, the form :func:`eoai.stack_sources` gives and
:func:`eoai.ml.classify` reads: :func:`stack_multires` makes it from the two cubes on their own
grids (the fine grid an integer multiple of the series', the series repeated exactly), or checks
a tree that :func:`eoai.stack_sources` made. Training: :func:`eoai.ml.deep.fit_segmentation`
(``model="utt"``); application: ``eoai.ml.classify(tree, model)``, tiled with a halo like the
U-Net (:class:`MultiResSegmentationModel`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import CRSError, InputError, ModelError
from ._deep_layout import parse_layout
from ._deep_model import DeepModel, SegmentationModel, _jsonable, _labels_index

_ATTR = "eoai:multires"
#: how eoai.stack_sources(..., fine=...) marks a source kept at its own, finer pixels
_FINE_RATIO, _FINE_SUFFIX = "eoai:fine_ratio", "_fine"


def is_multires(model: Any) -> bool:
    """Whether ``model`` names the fine-image + series network (``"utt"``)."""
    return isinstance(model, str) and model.lower() == "utt"


# --------------------------------------------------------------------------------------------
# The two sources on the fine grid
# --------------------------------------------------------------------------------------------


def _pick(
    cubes: Mapping[str, xr.Dataset], image: str | None, series: str | None
) -> tuple[str, str]:
    names = list(cubes)
    for arg, value in (("image", image), ("series", series)):
        if value is not None and value not in cubes:
            raise InputError(f"U-T&T: {arg}={value!r} is not a source; the sources are {names}")
    if len(names) != 2:
        raise InputError(
            f"U-T&T reads two sources, a fine image and a series; got {len(names)} ({names}): "
            "pass {'aerial': image, 's2': series}"
        )
    if image is None and series is None:
        timed = [k for k in names if cubes[k].sizes.get("time", 0) >= 2]
        if len(timed) != 1:
            raise InputError(
                f"U-T&T: cannot tell the series from the image (sources with >= 2 dates: "
                f"{timed or 'none'}); pass image= and series= (source names)"
            )
        series = timed[0]
    if series is None:
        series = next(k for k in names if k != image)
    if image is None:
        image = next(k for k in names if k != series)
    if image == series:
        raise InputError(f"U-T&T: image and series are both {image!r}; name two sources")
    if cubes[series].sizes.get("time", 0) < 2:
        raise InputError(
            f"U-T&T: the series {series!r} has {cubes[series].sizes.get('time', 0)} date(s); the "
            "U-TAE branch attends over a time series of at least 2 dates"
        )
    if cubes[image].sizes.get("time", 1) != 1:
        raise InputError(
            f"U-T&T: the image {image!r} has {cubes[image].sizes['time']} dates; give one image "
            "(e.g. image.isel(time=0, drop=True)) or a composite"
        )
    return image, series


def _geobox(ds: xr.Dataset, name: str) -> Any:
    import odc.geo.xr  # noqa: F401

    if "y" not in ds.dims or "x" not in ds.dims:
        raise InputError(
            f"U-T&T: source {name!r} has dims {tuple(ds.dims)}; U-T&T reads projected grids with "
            "dims y / x (rename them, e.g. ds.rename(lat='y', lon='x') after reprojecting)"
        )
    try:
        gbox = ds.odc.geobox
    except Exception:  # noqa: BLE001 - odc-geo raises several types for odd coordinates
        gbox = None
    if gbox is None or getattr(gbox, "crs", None) is None or not hasattr(gbox, "affine"):
        raise CRSError(
            f"U-T&T: source {name!r} has no CRS / geotransform; set one with "
            "ds.odc.assign_crs('EPSG:....') (odc-geo) or load it with eoai.load"
        )
    return gbox


def _crs_name(crs: Any) -> str:
    return f"EPSG:{crs.epsg}" if crs.epsg else str(crs.to_wkt())


def _whole(v: float) -> int | None:
    r = round(v)
    return int(r) if abs(v - r) < 1e-6 * max(1.0, abs(v)) else None


def stack_multires(
    sources: Any, *, factor: int | None = None, image: str | None = None,
    series: str | None = None,
) -> xr.DataTree:  # fmt: skip
    """A fine image and a coarse series as one DataTree on the fine grid, for U-T&T.

    Parameters
    ----------
    sources
        ``{"aerial": image, "s2": series}`` (Datasets) on their own grids: the same CRS, the
        series' pixels a whole number ``factor`` of the image's, the image's corner on a series
        pixel edge, its sides whole series pixels, inside the series. Or a DataTree: of those two
        (no grid at the root), one :func:`eoai.stack_sources` made with the image as a
        ``fine=`` source (kept at its own pixels, ``eoai:fine_ratio``), or one it made with both
        on the fine grid (then ``factor`` is needed and the series is read as the ``factor`` x
        ``factor`` block means of its resampled values).
    factor
        Series pixel size / image pixel size; default from the grids (required for a
        :func:`eoai.stack_sources` tree; checked against the grids otherwise).
    image, series
        Source names; default: the series is the source with at least 2 dates.

    Returns
    -------
    xarray.DataTree
        The root holds the fine grid; the image and the series (each series pixel repeated
        ``factor`` x ``factor`` times, exactly, lazily) are its children;
        ``attrs["eoai:multires"]`` (JSON) names them and the factor.

    Raises
    ------
    eoai.errors.InputError
        Not two sources, a series of < 2 dates, grids that are not integer multiples, misaligned,
        or an image outside the series; the message says how to fix the grid.
    eoai.errors.CRSError
        A source without a CRS, or two CRSs.

    Examples
    --------
    >>> from eoai.datasets.multires import multires_scene
    >>> aerial, s2, _ = multires_scene((16, 16), factor=4)
    >>> tree = stack_multires({"aerial": aerial, "s2": s2})
    >>> tree["s2"]["red"].shape, tree.attrs["eoai:multires"]
    ((19, 16, 16), '{"image": "aerial", "series": "s2", "factor": 4}')
    """
    if isinstance(sources, xr.DataTree):
        from ..io.stack import sources_of

        nested = {
            str(k): c.to_dataset(inherit=False)
            for k, c in sources.children.items()
            if _FINE_RATIO in c.attrs or any(str(d).endswith(_FINE_SUFFIX) for d in c.dims)
        }
        if nested:
            return _from_fine_source(sources, nested, factor, image, series)
        cubes = sources_of(sources, "U-T&T")
        one_grid = "y" in sources.coords or "x" in sources.coords
    elif isinstance(sources, Mapping):
        cubes = {}
        for k, v in sources.items():
            if isinstance(v, xr.DataArray):
                v = v.to_dataset(name=str(v.name) if v.name is not None else "value")
            if not isinstance(v, xr.Dataset):
                raise InputError(
                    f"U-T&T: source {k!r} must be an xarray Dataset, got {type(v).__name__}"
                )
            cubes[str(k)] = v
        one_grid = False
    else:
        raise InputError(
            "U-T&T reads a mapping {'aerial': image, 's2': series} or a DataTree of the two "
            f"sources (eoai.stack_sources), got {type(sources).__name__}"
        )
    image, series = _pick(cubes, image, series)
    img = cubes[image]
    if "time" in img.dims:
        img = img.isel(time=0, drop=True)
    if one_grid:
        if factor is None:
            raise InputError(
                "U-T&T: the sources of this tree share one grid (eoai.stack_sources put the "
                "series on the fine grid): pass factor= (series pixel size / image pixel size, "
                "e.g. 4 for a 10 m series and a 2.5 m image), or pass the two cubes on their own "
                "grids as a mapping {'aerial': image, 's2': series}"
            )
        f = _check_factor(factor)
        h, w = img.sizes["y"], img.sizes["x"]
        if h % f or w % f:
            raise InputError(
                f"U-T&T: the grid is {h} x {w} px, not whole blocks of factor={f}: crop the tree "
                f"to tree.isel(y=slice(0, {h // f * f}), x=slice(0, {w // f * f}))"
            )
        fine_series = cubes[series]
        root = sources.to_dataset(inherit=False)
    else:
        f, fine_series, root = _repeat_series(img, cubes[series], image, series, factor)
    info = {"image": image, "series": series, "factor": f}
    root = root.assign_attrs({**root.attrs, _ATTR: json.dumps(info)})
    return xr.DataTree.from_dict({"/": root, image: img, series: fine_series})


def _from_fine_source(
    tree: xr.DataTree, nested: Mapping[str, xr.Dataset], factor: Any, image: str | None,
    series: str | None,
) -> xr.DataTree:  # fmt: skip
    """A tree whose image is a ``fine=`` source of :func:`eoai.stack_sources` (dims ``y_fine`` /
    ``x_fine`` nested in the series' grid, ``eoai:fine_ratio``) as the fine-grid tree."""
    if len(nested) != 1:
        raise InputError(
            f"U-T&T reads one fine image; the tree has {len(nested)} fine sources {list(nested)}"
        )
    ((name, ds),) = nested.items()
    if image is not None and image != name:
        raise InputError(f"U-T&T: image={image!r} but the tree's fine source is {name!r}")
    ratio = int(ds.attrs.get(_FINE_RATIO, 0))
    if ratio < 1:
        raise InputError(
            f"U-T&T: source {name!r} has {_FINE_SUFFIX} dims but no {_FINE_RATIO} attribute; "
            "stack it with eoai.stack_sources(..., fine=[...])"
        )
    f = ratio if factor is None else _check_factor(factor)
    if f != ratio:
        raise InputError(f"U-T&T: factor={factor} but the tree's fine ratio is {ratio}")
    fy, fx = "y" + _FINE_SUFFIX, "x" + _FINE_SUFFIX
    img = ds.rename({fy: "y", fx: "x"})
    others = {str(k): c.to_dataset() for k, c in tree.children.items() if str(k) != name}
    image, series = _pick({name: img, **others}, name, series)
    ser = others[series]
    if img.sizes["y"] != ser.sizes["y"] * f or img.sizes["x"] != ser.sizes["x"] * f:
        raise InputError(
            f"U-T&T: the fine source {name!r} is {img.sizes['y']} x {img.sizes['x']} px and the "
            f"series {ser.sizes['y']} x {ser.sizes['x']} px: not {f} x finer"
        )
    grid: dict[str, Any] = {"y": img["y"].variable, "x": img["x"].variable}
    if "spatial_ref" in tree.coords:
        grid["spatial_ref"] = tree.coords["spatial_ref"].variable
    img = img.assign_coords(grid)
    ny, nx = ser.sizes["y"], ser.sizes["x"]
    fine = ser.isel(y=np.repeat(np.arange(ny), f), x=np.repeat(np.arange(nx), f))
    fine = fine.drop_vars([k for k in ("y", "x", "spatial_ref") if k in fine.coords])
    info = {"image": name, "series": series, "factor": f}
    root = xr.Dataset(coords=grid, attrs={**tree.attrs, _ATTR: json.dumps(info)})
    return xr.DataTree.from_dict({"/": root, name: img, series: fine.assign_coords(grid)})


def _check_factor(factor: Any) -> int:
    f = _whole(float(factor)) if isinstance(factor, (int, float)) else None
    if f is None or f < 1:
        raise InputError(f"U-T&T: factor must be a whole number >= 1, got {factor!r}")
    return f


def _repeat_series(
    img: xr.Dataset, ser: xr.Dataset, image: str, series: str, factor: Any
) -> tuple[int, xr.Dataset, xr.Dataset]:
    """The series window under the image, each pixel repeated ``f`` x ``f``; and the fine grid."""
    gi, gs = _geobox(img, image), _geobox(ser, series)
    if gi.crs != gs.crs:
        raise CRSError(
            f"U-T&T: {image!r} is in {_crs_name(gi.crs)} and {series!r} in {_crs_name(gs.crs)}; "
            "put the series in the "
            f"image's CRS first (e.g. eoai.stack_sources({{...}}, like={image!r}), then factor=)"
        )
    ai, as_ = gi.affine, gs.affine
    if ai.b or ai.d or as_.b or as_.d:
        raise InputError("U-T&T: rotated grids are not supported; reproject the sources")
    rx, ry = as_.a / ai.a, as_.e / ai.e
    f = _whole(rx)
    if f is None or f < 1 or _whole(ry) != f:
        raise InputError(
            f"U-T&T: the series' pixels ({abs(as_.a):g} x {abs(as_.e):g}) are {rx:.4g} x {ry:.4g} "
            f"times the image's ({abs(ai.a):g} x {abs(ai.e):g}); the fine grid must be an integer "
            "multiple of the series grid: resample the image to a pixel size that divides the "
            f"series' (e.g. {abs(as_.a) / max(1, math.ceil(abs(rx) - 1e-6)):g})"
        )
    if factor is not None and _check_factor(factor) != f:
        raise InputError(f"U-T&T: factor={factor} but the grids give {f}")
    col, row = (ai.c - as_.c) / as_.a, (ai.f - as_.f) / as_.e
    c0, r0 = _whole(col), _whole(row)
    if c0 is None or r0 is None:
        raise InputError(
            f"U-T&T: the image's corner lies {col % 1:.3g} x {row % 1:.3g} series pixels off the "
            "series' pixel edges; crop (or resample) the image so that its corner is a series "
            "pixel corner"
        )
    h, w = img.sizes["y"], img.sizes["x"]
    if h % f or w % f:
        raise InputError(
            f"U-T&T: the image is {h} x {w} px, not whole series pixels ({f} x {f} px each): "
            f"crop it to image.isel(y=slice(0, {h // f * f}), x=slice(0, {w // f * f}))"
        )
    hc, wc = h // f, w // f
    if r0 < 0 or c0 < 0 or r0 + hc > ser.sizes["y"] or c0 + wc > ser.sizes["x"]:
        raise InputError(
            f"U-T&T: the image reaches beyond the series (series pixels rows {r0}..{r0 + hc}, "
            f"columns {c0}..{c0 + wc} of {ser.sizes['y']} x {ser.sizes['x']}); crop the image "
            "to the series' footprint"
        )
    grid = {k: img.coords[k] for k in ("y", "x", "spatial_ref") if k in img.coords}
    win = ser.isel(y=np.repeat(np.arange(r0, r0 + hc), f), x=np.repeat(np.arange(c0, c0 + wc), f))
    win = win.drop_vars([k for k in ("y", "x", "spatial_ref") if k in win.coords]).assign_coords(
        grid
    )
    return f, win, xr.Dataset(coords=grid)


def multires_info(tree: xr.DataTree) -> tuple[str, str, int]:
    """(image, series, factor) of a tree made by :func:`stack_multires`."""
    info = json.loads(tree.attrs[_ATTR])
    return str(info["image"]), str(info["series"]), int(info["factor"])


# --------------------------------------------------------------------------------------------
# The fitted model
# --------------------------------------------------------------------------------------------


class MultiResSegmentationModel(SegmentationModel):
    """A trained U-T&T: a fine image and a series on the fine grid, a class map at the fine grid.

    Its features are the image's (``"aerial.red"``...) then the series' (``"s2.red_<date>"``...,
    band-major). :func:`eoai.ml.classify` applies it to the tree of :func:`stack_multires` (or of
    :func:`eoai.stack_sources`) tile by tile with :attr:`halo` pixels of overlap; chunks whose
    sides are multiples of :attr:`tile_multiple` give the whole-image map exactly. The image is
    standardised per band (NaN -> 0), the series per band with NaN kept (masked by the U-TAE).

    Examples
    --------
    >>> import numpy as np
    >>> from eoai.ml.models import UTT
    >>> net = UTT(1, 1, n_classes=2, factor=2, depth=1, base=4, encoder=(4, 4), n_head=2, d_model=4)
    >>> feats = ["a.red", "s2.ndvi_2021-05-01", "s2.ndvi_2021-06-01"]
    >>> m = MultiResSegmentationModel(net, feats, [0, 1], mean=[0.1, 0.5], std=[0.05, 0.2])
    >>> m.predict_proba_image(np.full((8, 8, 3), 0.4, "float32")).shape, m.factor, m.tile_multiple
    ((8, 8, 2), 2, 4)
    """

    def _init_layout(self) -> None:
        ci = int(self.net.config["image_channels"])
        self.image_features = list(self.features[:ci])
        self.layout = parse_layout(self.features[ci:])
        if len(self.layout.bands) != int(self.net.config["series_channels"]):
            raise ModelError(
                f"the network reads {self.net.config['series_channels']} series band(s) and the "
                f"features give {len(self.layout.bands)} ({self.layout.bands})"
            )

    def _n_channels(self) -> int:
        return len(self.image_features) + len(self.layout.bands)

    @property
    def uses_days(self) -> bool:
        return True

    @property
    def factor(self) -> int:
        """Series pixel size / image pixel size."""
        return int(self.net.factor)

    @property
    def sources(self) -> tuple[str, str]:
        """Names of the image and the series sources."""
        return self.image_features[0].split(".")[0], self.layout.bands[0].split(".")[0]

    def prepare(self, sources: Any) -> xr.DataTree:
        """The two sources as the tree this model classifies (:func:`stack_multires`).

        Examples
        --------
        >>> out = eoai.ml.classify(model.prepare({"aerial": aerial, "s2": s2}), model)  # doctest: +SKIP
        """
        image, series = self.sources
        return stack_multires(sources, factor=self.factor, image=image, series=series)

    def for_cube(self, cube: Any, *, reference_date: Any = None) -> DeepModel:
        """Returned unchanged: U-T&T reads its training features (checked by classify)."""
        if isinstance(cube, Mapping) and not isinstance(cube, (xr.Dataset, xr.DataTree)):
            raise InputError(
                "classify reads one tree: pass model.prepare({'aerial': image, 's2': series}) "
                "(the two sources on the fine grid)"
            )
        return self

    def predict_proba_image(self, block: np.ndarray) -> np.ndarray:
        """Class probabilities ``(y, x, class)`` of an image ``(y, x, feature)`` of :attr:`features`.

        Examples
        --------
        >>> proba = model.predict_proba_image(block)  # doctest: +SKIP
        """
        import torch

        block = self._image(block)
        dev = self._device()
        ny, nx = block.shape[:2]
        ci = len(self.image_features)
        t, c = len(self.layout.dates), len(self.layout.bands)
        img = np.nan_to_num((block[..., :ci] - self.mean[:ci]) / self.std[:ci], nan=0.0)
        ser = block[..., ci:][..., self.layout.perm].reshape(ny, nx, t, c)
        ser = ((ser - self.mean[ci:]) / self.std[ci:]).reshape(ny, nx, t * c)
        x = np.concatenate([img, ser], axis=-1).transpose(2, 0, 1)
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype="float32"))[None].to(dev)
        days = torch.from_numpy(self.days).to(dev)
        with torch.no_grad():
            logits = self._logits(xt, days).float()
            proba = torch.softmax(logits, dim=1)[0].permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(proba, dtype="float32")


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def fit_utt(
    sources: Any,
    labels: Any,
    *,
    label: str = "class",
    nodata: Any = None,
    features: Sequence[str] | None = None,
    patch: int = 64,
    patches_per_epoch: int = 64,
    epochs: int = 30,
    batch_size: int = 8,
    lr: float = 2e-3,
    weight_decay: float = 1e-2,
    class_weight: Any = None,
    val_fraction: float = 0.2,
    patience: int | None = 10,
    seed: int | None = 0,
    device: Any = "auto",
    amp: bool | None = None,
    progress: bool | None = None,
    class_names: Any = None,
    colours: Any = None,
    halo: int | None = None,
    reference_date: Any = None,
    factor: int | None = None,
    image: str | None = None,
    series: str | None = None,
    aux_weight: float = 0.5,
    label_raster: Any,
    **arch_kw: Any,
) -> MultiResSegmentationModel:
    """Train a U-T&T (:func:`eoai.ml.deep.fit_segmentation` with ``model="utt"``; see there).

    Windows of ``patch`` fine pixels start on series pixel edges; ``aux_weight`` weighs the loss
    of the U-TAE branch's own map (the auxiliary loss of FLAIR #2) against the fused map's.
    ``label_raster`` is fit_segmentation's reader of labels (``(cube, labels, label, nodata) ->
    (array, nodata)``), passed in so that this module does not import ``_deep_segment``.
    """
    import torch

    from . import _deep_train as T
    from ._deep_model import _check_training_args
    from ._deep_utae import prepare_series
    from .features import as_dataset, feature_array, feature_names
    from .models import build_model
    from .samples import describe_cube

    _check_training_args(epochs, batch_size, lr, val_fraction)
    if not aux_weight >= 0:
        raise InputError(f"aux_weight must be >= 0, got {aux_weight}")
    tree = stack_multires(sources, factor=factor, image=image, series=series)
    image, series, f = multires_info(tree)
    ds = as_dataset(tree)
    feats = list(features) if features is not None else feature_names(ds)
    img_feats = [n for n in feats if n.startswith(f"{image}.")]
    ser_feats = [n for n in feats if n.startswith(f"{series}.")]
    if not img_feats or not ser_feats:
        raise InputError(
            f"U-T&T needs features of both sources; features= gives {len(img_feats)} of "
            f"{image!r} and {len(ser_feats)} of {series!r}"
        )
    parse_layout(ser_feats)  # a static series variable: ModelError before reading anything
    lab, nodata = label_raster(ds, labels, label, nodata)
    valid = ~np.asarray(pd.isna(lab), dtype=bool)
    if nodata is not None:
        valid &= lab != nodata
    if not valid.any():
        raise InputError("the labels hold no labelled pixel on the image")
    classes, yidx = _labels_index(pd.Series(lab[valid]))
    if len(classes) < 2:
        raise InputError(f"training needs at least 2 classes, the labels have {classes}")
    y_img: np.ndarray = np.full(lab.shape, T.IGNORE, dtype=np.int64)
    y_img[valid] = yidx
    rows, cols = np.nonzero(valid)  # labelled bounding box, widened to whole series pixels
    r0, c0 = rows.min() // f * f, cols.min() // f * f
    r1, c1 = -(-(rows.max() + 1) // f) * f, -(-(cols.max() + 1) // f) * f
    window = feature_array(ds, img_feats + ser_feats).isel(y=slice(r0, r1), x=slice(c0, c1))
    arr = np.asarray(window.transpose("feature", "y", "x").values, dtype="float32")  # in memory
    y_img = y_img[r0:r1, c0:c1]
    h, w = y_img.shape
    ci = len(img_feats)
    with np.errstate(all="ignore"):
        mean_i, std_i = np.nanmean(arr[:ci], axis=(1, 2)), np.nanstd(arr[:ci], axis=(1, 2))
    if not np.all(np.isfinite(mean_i)):
        raise InputError("some image bands are NaN over the whole labelled area; drop them")
    std_i = np.where(std_i > 1e-6, std_i, 1.0).astype("float32")
    norm_i = np.nan_to_num((arr[:ci] - mean_i[:, None, None]) / std_i[:, None, None], nan=0.0)
    norm_s, layout, mean_s, std_s, days, reference_date = prepare_series(
        arr[ci:], ser_feats, reference_date
    )
    packed = np.concatenate([norm_i, norm_s.reshape(-1, h, w)]).astype("float32")
    n_classes = len(classes)
    arch = dict(image_channels=ci, series_channels=len(layout.bands), n_classes=n_classes,
                factor=f, **arch_kw)  # fmt: skip
    dev = T.resolve_device(device)
    amp = T.warn_amp_on_cpu(amp, dev)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(0 if seed is None else int(seed))
        try:
            net = build_model("utt", **arch)
        except (TypeError, ValueError) as err:
            raise InputError(f"bad architecture parameters for utt: {err}") from None
        m = net.tile_multiple
        if int(patch) % m:
            raise InputError(
                f"patch={patch} must be a multiple of {m}, the U-T&T tile multiple (factor x the "
                "U-TAE's down-sampling, and the U-Net's 2 ** depth): e.g. "
                f"patch={max(m, int(patch) // m * m)}"
            )
        p = int(min(patch, h, w)) // m * m
        if p < m:
            raise InputError(
                f"the labelled area ({h} x {w} px) is smaller than one U-T&T tile ({m} px)"
            )
        rng = np.random.default_rng(seed)
        pos, val_pos, val_y, y_train = T.patch_windows(
            y_img, p, val_fraction=val_fraction, per_epoch=patches_per_epoch, epochs=epochs,
            rng=rng, labelled=lambda a: a != T.IGNORE, unlabelled=T.IGNORE, snap=f,
        )  # fmt: skip
        n_tr, n_win = len(pos), int(patches_per_epoch)
        x_t, ytr_t = torch.from_numpy(packed), torch.from_numpy(y_train)
        val_y_t = torch.from_numpy(np.stack(val_y)) if val_y else torch.empty(0)

        def take(idx: Any) -> tuple[Any, Any]:
            xs, ys = [], []
            for r in np.asarray(idx).tolist():
                a, b = pos[r] if r < n_tr else val_pos[r - n_tr]
                xs.append(x_t[:, a : a + p, b : b + p])
                ys.append(ytr_t[a : a + p, b : b + p] if r < n_tr else val_y_t[r - n_tr])
            return torch.stack(xs), torch.stack(ys)

        counts_y = y_img[y_img != T.IGNORE]
        history = T.train(
            net, None, None, train_idx=np.arange(n_tr), val_idx=np.arange(n_tr, n_tr + len(val_pos)),
            epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
            weight_decay=float(weight_decay), weights=T.class_weights(counts_y, n_classes, class_weight, classes),
            patience=patience, device=dev, amp=amp, progress=progress, augment=T.flip_rotate, take=take,
            epoch_indices=lambda e: np.arange(e * n_win, (e + 1) * n_win),
            eval_batch_size=int(batch_size), desc="training utt", days=days,
            aux_weight=float(aux_weight),
        )  # fmt: skip
    meta = {
        "method": "eoai.ml.deep.fit_segmentation(utt)",
        "training_cube": describe_cube(ds),
        "sources": {"image": image, "series": series, "factor": f},
        "n_labelled_pixels": int(valid.sum()),
        "pixels_per_class": {str(c): int((counts_y == i).sum()) for i, c in enumerate(classes)},
        "parameters": {
            "patch": p, "patches_per_epoch": n_win, "epochs": epochs, "batch_size": batch_size,
            "lr": lr, "weight_decay": weight_decay, "val_fraction": val_fraction,
            "val_tiles": len(val_pos), "patience": patience, "seed": seed, "amp": amp,
            "aux_weight": aux_weight, "device": str(dev),
            **{k: v for k, v in arch_kw.items() if _jsonable(v)},
        },
        "history": history,
    }  # fmt: skip
    class_names, colours = T.legend_from_labels(labels, classes, class_names, colours)
    return MultiResSegmentationModel(
        net, img_feats + layout.features, classes,
        mean=np.concatenate([mean_i, mean_s]), std=np.concatenate([std_i, std_s]),
        reference_date=reference_date, allow_nan=True, device=device, amp=amp,
        class_names=class_names, colours=colours, metadata=meta, halo=halo,
    )  # fmt: skip
