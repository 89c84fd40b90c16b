"""Lazy classification of a cube with a trained model: class map, probabilities, confidence, uncertainty.

Reached as ``cube.eoai.classify(model)``; :func:`predict` (``cube.eoai.predict(model)``) maps a
continuous quantity with a regression model through the same chunked kernels. The cube is stacked into ``(y, x, feature)`` (features in
one chunk, see :mod:`eoai.ml.features`) and the model is applied chunk by chunk with
``dask.array.blockwise`` (one task per spatial chunk); nothing is computed until the result is. The
model enters the graph once, as one key that every chunk task reads (:mod:`eoai._graph`): with a
``dask.distributed`` client it is scattered to the workers once, so a large forest does not travel
with each task and the graph sent to the scheduler stays small.

Models with spatial context (patch models of :mod:`eoai.ml.deep`) declare ``halo`` (pixels) and
``predict_proba_image(block)`` (``(y, x, feature)`` -> ``(y, x, class)``); they are applied with
``dask.array.map_overlap`` and the halo cropped, so tiles join without seams. Models that read the
patch of a fine source around each pixel (``patch_features``, M3Fusion) get each chunk's fine
pixels plus a halo of the patches' reach (NaN beyond the image, as :func:`eoai.ml.extract` reads
them), so chunked and whole-image maps are equal.

Examples
--------
>>> import eoai  # doctest: +SKIP
>>> out = cube.eoai.classify(model, probabilities=True)  # doctest: +SKIP
>>> out["class"].plot()  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from .._options import option_threads
from .._provenance import step
from .._renamed import renamed_parameters
from ..errors import InputError, ModelError
from .base import PixelClassifier
from .features import as_dataset, check_features, feature_array, feature_names, time_dim

UNCERTAINTY = ("entropy", "margin")
CLASS_DIM = "class_name"  # dimension of ``probability`` (``class`` is the class-map variable)


def _predict_pixels(x: np.ndarray, model: Any, allow_nan: bool, n_classes: int) -> np.ndarray:
    """(..., feature) -> (..., class) probabilities; NaN rows (all, or any if not allow_nan) -> NaN."""
    shape = x.shape[:-1]
    flat = np.asarray(x.reshape(-1, x.shape[-1]), dtype="float32")
    return _predict_rows(flat, model, allow_nan, n_classes).reshape(*shape, n_classes)


def _predict_rows(flat: np.ndarray, model: Any, allow_nan: bool, n_classes: int) -> np.ndarray:
    nan = np.isnan(flat)
    valid = ~nan.all(axis=1) if allow_nan else ~nan.any(axis=1)
    out = np.full((flat.shape[0], n_classes), np.nan, dtype="float32")
    if valid.all():
        out[:] = model.predict_proba(flat)
    elif valid.any():
        out[valid] = model.predict_proba(flat[valid])
    return out


def _predict_stacked(
    *blocks: np.ndarray,
    order: np.ndarray | None,
    model: Any,
    allow_nan: bool,
    n_classes: int,
) -> np.ndarray:
    """Blocks (y, x, time) / (y, x) of each variable -> (y, x, class).

    The blocks are views of (time, y, x) buffers: they are stacked feature-major into one
    contiguous (feature, y, x) array (a plain copy, no transposition) and handed to the model as
    the (pixel, feature) view of it, which scikit-learn trees read without another copy.
    """
    parts = [np.moveaxis(b, -1, 0) if b.ndim == 3 else b[None] for b in blocks]
    stacked = np.concatenate(parts, axis=0).astype("float32", copy=False)
    if order is not None:
        stacked = stacked[order]
    ny, nx = stacked.shape[1:]
    flat = stacked.reshape(stacked.shape[0], -1).T
    return _predict_rows(flat, model, allow_nan, n_classes).reshape(ny, nx, n_classes)


def _predict_image(x: np.ndarray, model: Any, halo: int, n_classes: int) -> np.ndarray:
    """Patch model on a haloed block (y+2h, x+2h, feature) -> cropped (y, x, class)."""
    proba = np.asarray(model.predict_proba_image(x), dtype="float32")
    if proba.shape != x.shape[:2] + (n_classes,):
        raise ModelError(
            f"predict_proba_image returned shape {proba.shape}, expected {x.shape[:2] + (n_classes,)}"
        )
    invalid = np.isnan(x).all(axis=-1)
    proba = np.where(invalid[..., None], np.nan, proba)
    return proba[halo : x.shape[0] - halo, halo : x.shape[1] - halo]


def _class_codes(proba: np.ndarray, codes: np.ndarray, nodata: int) -> np.ndarray:
    invalid = np.isnan(proba[..., 0])
    idx = np.argmax(np.where(np.isnan(proba), -1.0, proba), axis=-1)
    return np.where(invalid, np.uint8(nodata), codes[idx]).astype("uint8")


def _confidence(proba: np.ndarray) -> np.ndarray:
    invalid = np.isnan(proba[..., 0])
    return np.where(
        invalid, np.nan, np.nanmax(np.where(invalid[..., None], 0, proba), axis=-1)
    ).astype("float32")


def _uncertainty(proba: np.ndarray, method: str) -> np.ndarray:
    invalid = np.isnan(proba[..., 0])
    p = np.where(invalid[..., None], 0.0, proba).astype("float32")
    n = p.shape[-1]
    if method == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1) / np.log(n)
    else:
        top2 = np.sort(p, axis=-1)[..., -2:]
        h = 1.0 - (top2[..., 1] - top2[..., 0])
    return np.where(invalid, np.nan, np.clip(h, 0, 1)).astype("float32")


def _with_threads(model: Any, threads: int | None) -> Any:
    if threads is None or not hasattr(model, "estimator"):
        return model
    est = model.estimator
    if "n_jobs" not in est.get_params():
        if not hasattr(model, "n_jobs_predict"):  # OpenMP models (gradient boosting)
            return model
        new = copy.copy(model)
        new.n_jobs_predict = threads
        return new
    new = copy.copy(model)
    new.estimator = copy.copy(est)
    new.estimator.set_params(n_jobs=threads)
    return new


@renamed_parameters(n_jobs="threads")
def classify(
    cube: xr.Dataset | xr.DataArray | xr.DataTree,
    model: PixelClassifier,
    *,
    probabilities: bool = False,
    confidence: bool = True,
    uncertainty: str | None = "entropy",
    nodata: int = 255,
    majority: int | None = None,
    sieve: int | None = None,
    connectivity: int = 4,
    threads: int | None = None,
) -> xr.Dataset:
    """Classify every pixel of a cube with a trained model, lazily and chunk by chunk.

    Parameters
    ----------
    cube
        Dataset/DataArray ``(time, y, x)`` / ``(y, x)`` with (at least) the model's features
        (same bands and dates; extra ones are ignored). Dask-backed gives a lazy result. A
        DataTree of sources on one grid (:func:`eoai.stack_sources`), each with its own dates,
        for a model trained on its features (``s2.red_2020-06-04``, ``s1.vv_2020-06-07``).
    model
        A model from :func:`eoai.ml.fit` / :func:`eoai.ml.load_model`, or any object following
        :class:`eoai.ml.base.PixelClassifier`.
    probabilities
        Add ``probability`` ``(class_name, y, x)`` float32.
    confidence
        Add ``confidence``: the probability of the chosen class.
    uncertainty
        ``"entropy"`` (normalised Shannon entropy, 0 = certain, 1 = uniform), ``"margin"``
        (1 - (p1 - p2) of the two most probable classes) or ``None``: variable ``uncertainty``.
    nodata
        Class value of pixels without data (all features NaN; any NaN for models that do not accept
        NaN). Never a class code.
    majority
        Window size of a majority filter applied to the class map (e.g. 3), or ``None``.
    sieve
        Merge regions smaller than this many pixels into their neighbour, or ``None``.
    connectivity
        4 or 8, for ``sieve``.
    threads
        Threads of the model inside each chunk (random forest ``n_jobs``); default the ``threads``
        option of :func:`eoai.set_options`, else the model's.
        With many dask threads, ``threads=1`` avoids oversubscription.

    Returns
    -------
    xarray.Dataset
        ``class`` (uint8 codes; attrs ``flag_values``, ``flag_meanings``, ``class_names``,
        ``colours``, ``nodata``), and as requested ``probability``, ``confidence``,
        ``uncertainty``; CRS and coordinates of the cube; ``attrs["eoai:method"]``.

    Raises
    ------
    eoai.errors.ModelError
        The cube lacks features of the model (the message lists missing and extra features, and
        the sources missing for a multi-source model), or the object is not a model.

    Notes
    -----
    The model is one key of the graph, read by every chunk task (:func:`eoai._graph.graph_constant`).
    When a ``dask.distributed`` client is the active scheduler, ``classify`` scatters the model to
    its workers right away (once, however many chunks), and the result is computed on that client.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> import eoai.ml
    >>> t = pd.to_datetime(["2021-05-01"])
    >>> cube = xr.Dataset({"ndvi": (("time", "y", "x"), np.array([[[0.1, 0.9], [np.nan, 0.2]]]))},
    ...                   coords={"time": t, "y": [1.0, 0.0], "x": [0.0, 1.0]})
    >>> samples = pd.DataFrame({"ndvi_2021-05-01": [0.1, 0.2, 0.8, 0.9], "label": [1, 1, 2, 2]})
    >>> model = eoai.ml.fit(samples, n_estimators=10, threads=1)
    >>> classify(cube, model)["class"].values.tolist()
    [[1, 2], [255, 1]]
    """
    from .regress import PixelRegressor

    if isinstance(model, PixelRegressor) and not isinstance(model, PixelClassifier):
        raise ModelError(
            f"{model!r} is a regression model (it predicts {model.target!r}, not classes): map "
            "it with cube.eoai.predict(model) (eoai.ml.predict)"
        )
    if not isinstance(model, PixelClassifier):
        raise ModelError(
            f"{type(model).__name__} is not an eoai model: train one with eoai.ml.fit(samples) "
            "(a raw scikit-learn estimator lacks the feature names and classes)"
        )
    if uncertainty is not None and uncertainty not in UNCERTAINTY:
        raise InputError(f"uncertainty must be one of {UNCERTAINTY} or None, got {uncertainty!r}")
    if hasattr(model, "embed_cube"):  # fine-tuned Presto: its embeddings of the cube, its head
        cube, model = model.embed_cube(cube)
    if hasattr(model, "for_cube"):  # e.g. L-TAE: positional encoding from this cube's own dates
        model = model.for_cube(cube)
    codes = np.asarray(model.codes, dtype="uint8")
    if not 0 <= nodata <= 255 or nodata in set(model.codes):
        raise InputError(
            f"nodata={nodata} must be a uint8 value that is not a class code {list(model.codes)}"
        )
    n_classes = len(model.classes)
    run_model = _with_threads(model, option_threads(threads))
    halo = int(getattr(model, "halo", 0) or 0)
    if getattr(model, "patch_features", None):  # M3Fusion: a fine patch around each pixel
        proba = _patch_proba(cube, model, run_model, n_classes)
    elif halo and hasattr(model, "predict_proba_image"):
        proba = _spatial_proba(feature_array(cube, model.features), run_model, halo, n_classes)
    else:
        proba = _pixel_proba(cube, model, run_model, n_classes)
    proba = proba.rename({"class": CLASS_DIM}).assign_coords(
        {CLASS_DIM: np.asarray(model.class_names, dtype=object)}
    )

    def per_pixel(func, dtype, **kw):
        return xr.apply_ufunc(
            func, proba, input_core_dims=[[CLASS_DIM]], dask="parallelized", output_dtypes=[dtype],
            kwargs=kw,
        )  # fmt: skip

    cls = per_pixel(_class_codes, np.uint8, codes=codes, nodata=nodata)
    cls.attrs = {
        "long_name": "class",
        "flag_values": [int(c) for c in codes],
        "flag_meanings": " ".join(n.replace(" ", "_") for n in model.class_names),
        "class_names": list(model.class_names),
        "colours": list(model.colours),
        "nodata": int(nodata),
    }
    cls.encoding["_FillValue"] = np.uint8(nodata)
    if majority:
        from .postprocess import majority_filter

        cls = majority_filter(cls, majority, nodata=nodata)
    if sieve:
        from .postprocess import sieve as sieve_regions

        cls = sieve_regions(cls, sieve, connectivity=connectivity, nodata=nodata)
    out = xr.Dataset({"class": cls.transpose("y", "x")})
    if probabilities:
        out["probability"] = proba.transpose(CLASS_DIM, "y", "x")
        out["probability"].attrs = {"long_name": "class probability", "units": "1"}
    if confidence:
        out["confidence"] = per_pixel(_confidence, np.float32).transpose("y", "x")
        out["confidence"].attrs = {"long_name": "probability of the chosen class", "units": "1"}
    if uncertainty is not None:
        out["uncertainty"] = per_pixel(_uncertainty, np.float32, method=uncertainty).transpose(
            "y", "x"
        )
        out["uncertainty"].attrs = {
            "long_name": f"classification uncertainty ({uncertainty})",
            "units": "1",
            "method": uncertainty,
        }
    params = {
        "probabilities": probabilities, "uncertainty": uncertainty, "nodata": nodata,
        "majority": majority, "sieve": sieve, "connectivity": connectivity, "threads": threads,
    }  # fmt: skip
    out.attrs = {
        **step("classify", params),
        "eoai:model": json.dumps(
            {
                "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
                "n_features": len(model.features),
                "classes": [str(c) for c in model.classes],
                **{
                    k: v
                    for k, v in model.metadata.items()
                    if k in ("method", "estimator", "label_column")
                },
            }
        ),
    }
    return out


class _RegressionOutputs:
    """A regressor seen as ``predict_proba``: ``(n, 1)`` values or ``(n, 3)`` mean, lower, upper.

    Lets :func:`predict` reuse the chunked kernels of :func:`classify` (one fused task per spatial
    chunk, the model one graph key, the same NaN rules).
    """

    def __init__(self, model: Any, interval: float | None) -> None:
        self.model = model
        self.interval = interval
        self.features = model.features
        self.allow_nan = bool(model.allow_nan)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.interval is None:
            out = np.asarray(self.model.predict(X), dtype="float32").reshape(-1, 1)
        else:
            out = np.stack(self.model.predict_interval(X, self.interval), axis=1)
        if out.shape[0] != X.shape[0]:
            raise ModelError(
                f"{type(self.model).__name__}.predict returned {out.shape[0]} values for "
                f"{X.shape[0]} pixels"
            )
        return out.astype("float32", copy=False)

    def predict_proba_image(self, block: np.ndarray) -> np.ndarray:
        """A patch regressor (U-Net) on an image ``(y, x, feature)`` -> ``(y, x, 1)`` values."""
        return np.asarray(self.model.predict_image(block), dtype="float32")[..., None]


@renamed_parameters(n_jobs="threads")
def predict(
    cube: xr.Dataset | xr.DataArray | xr.DataTree,
    model: Any,
    *,
    interval: float | None = None,
    threads: int | None = None,
) -> xr.Dataset:
    """Map a continuous quantity with a trained regression model, lazily and chunk by chunk.

    Parameters
    ----------
    cube
        Dataset/DataArray ``(time, y, x)`` / ``(y, x)`` with (at least) the model's features (same
        bands and dates; extra ones are ignored), or a DataTree of sources
        (:func:`eoai.stack_sources`). Dask-backed gives a lazy result.
    model
        A regression model from :func:`eoai.ml.fit` (continuous target) or
        :func:`eoai.ml.load_model`, or any object following
        :class:`eoai.ml.regress.PixelRegressor`. A patch regressor (the U-Net of
        :func:`eoai.ml.deep.fit_segmentation` on a continuous raster: ``halo`` and
        ``predict_image``) is applied tile by tile with its halo, as :func:`classify` does.
    interval
        Central share of the trees' predictions to report as ``lower`` / ``upper`` (e.g. 0.9:
        their 5 % and 95 % quantiles), for forests (``"rf"``, ``"et"``); ``None``: no interval.
        It measures how much the trees disagree, and is narrower than a prediction interval of
        the target (see :mod:`eoai.ml.regress`).
    threads
        Threads of the model inside each chunk (forest ``n_jobs``, OpenMP threads of gradient
        boosting); default the ``threads`` option of :func:`eoai.set_options`, else the model's. With many dask threads, ``threads=1`` avoids
        oversubscription. The tree-by-tree loop of ``interval`` runs on one thread per chunk.

    Returns
    -------
    xarray.Dataset
        ``prediction`` (y, x) float32 (attrs ``long_name`` = the target, ``units``), with
        ``interval``: ``lower`` and ``upper``; NaN where the pixel has no data (all features NaN;
        any NaN for models that do not accept NaN); CRS and coordinates of the cube;
        ``attrs["eoai:method"]``, ``"eoai:parameters"``, ``"eoai:model"``.

    Raises
    ------
    eoai.errors.ModelError
        The model is a classifier or not a model, it gives no interval, or the cube lacks
        features of the model (the message lists missing and extra features).
    eoai.errors.InputError
        ``interval`` is not in (0, 1).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> import eoai.ml
    >>> t = pd.to_datetime(["2021-05-01"])
    >>> cube = xr.Dataset({"ndvi": (("time", "y", "x"), np.array([[[0.1, 0.9], [np.nan, 0.5]]]))},
    ...                   coords={"time": t, "y": [1.0, 0.0], "x": [0.0, 1.0]})
    >>> samples = pd.DataFrame({"ndvi_2021-05-01": np.linspace(0, 1, 21)})
    >>> samples["cover"] = samples["ndvi_2021-05-01"] * 100
    >>> model = eoai.ml.fit(samples, target="cover", units="%", n_estimators=20, threads=1)
    >>> out = predict(cube, model, interval=0.8)
    >>> np.round(out["prediction"].values, -1).tolist()
    [[10.0, 90.0], [nan, 50.0]]
    >>> out["prediction"].attrs["units"], sorted(out.data_vars)
    ('%', ['lower', 'prediction', 'upper'])
    """
    from .regress import PixelRegressor

    if isinstance(model, PixelClassifier):
        raise ModelError(
            f"{model!r} is a classifier: map its classes with cube.eoai.classify(model); "
            "predict is for regression models (eoai.ml.fit with a continuous target)"
        )
    if not isinstance(model, PixelRegressor):
        raise ModelError(
            f"{type(model).__name__} is not an eoai regression model: train one with "
            "eoai.ml.fit(samples, target=...) on a continuous target (a raw scikit-learn "
            "estimator lacks the feature names)"
        )
    if interval is not None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise InputError(f"interval must be a number in (0, 1) or None, got {interval!r}")
        if not 0 < interval < 1:
            raise InputError(f"interval must be in (0, 1) (e.g. 0.9), got {interval}")
        if not getattr(model, "has_interval", False) or not hasattr(model, "predict_interval"):
            raise ModelError(
                f"{model!r} gives no prediction interval (only forests do: model='rf' or 'et'); "
                "predict without interval="
            )
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise InputError(f"threads must be an int or None, got {threads!r}")
    if hasattr(model, "embed_cube"):  # fine-tuned Presto: its embeddings of the cube, its head
        cube, model = model.embed_cube(cube)
    if hasattr(model, "for_cube"):  # e.g. L-TAE: positional encoding from this cube's own dates
        model = model.for_cube(cube)
    run_model = _RegressionOutputs(_with_threads(model, option_threads(threads)), interval)
    n_out = 1 if interval is None else 3
    halo = int(getattr(model, "halo", 0) or 0)
    if halo and hasattr(model, "predict_image"):  # a patch regressor (U-Net): tiles with a halo
        values = _spatial_proba(feature_array(cube, model.features), run_model, halo, n_out)
    else:
        values = _pixel_proba(cube, model, run_model, n_out)
    target = str(model.target)
    units = str(getattr(model, "units", "") or "")
    out = xr.Dataset()
    names = ["prediction"] if interval is None else ["prediction", "lower", "upper"]
    for i, name in enumerate(names):
        var = values.isel({"class": i}, drop=True).transpose("y", "x")
        long = target if name == "prediction" else (
            f"{'lower' if name == 'lower' else 'upper'} bound of the central {interval:g} of "
            f"the trees' predictions of {target}"
        )  # fmt: skip
        var.attrs = {"long_name": long, "units": units}
        var.encoding["_FillValue"] = np.float32(np.nan)
        out[name] = var
    params = {"interval": interval, "threads": threads}
    out.attrs = {
        **step("predict", params),
        "eoai:model": json.dumps(
            {
                "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
                "n_features": len(model.features),
                "target": target,
                "units": units,
                **{
                    k: v
                    for k, v in model.metadata.items()
                    if k in ("method", "estimator", "label_column")
                },
            }
        ),
    }
    return out


def _pixel_proba(cube: Any, model: Any, run_model: Any, n_classes: int) -> xr.DataArray:
    """Per-pixel model over the variables of the cube, one fused task per spatial chunk."""
    ds = as_dataset(cube)
    names = feature_names(ds)
    check_features(names, model.features)
    position = {n: i for i, n in enumerate(names)}
    wanted = np.array([position[f] for f in model.features])
    # keep only the variables (and dates) the model uses; keep their order in the cube
    per_var: dict[Hashable, tuple[int, int]] = {}
    keep_vars: list[Hashable] = []
    keep_idx: list[int] = []
    offset = 0
    for name, var in ds.data_vars.items():
        tdim = time_dim(var)
        n = var.sizes[tdim] if tdim is not None else 1
        per_var[name] = (offset, n)
        offset += n
    used = set(wanted.tolist())
    for name, (start, n) in per_var.items():
        if any(start <= i < start + n for i in used):
            keep_vars.append(name)
            keep_idx.extend(range(start, start + n))
    remap = {old: new for new, old in enumerate(keep_idx)}
    perm = np.array([remap[i] for i in wanted])
    order = None if np.array_equal(perm, np.arange(len(keep_idx))) else perm
    tdims = {d for v in keep_vars if (d := time_dim(ds[v])) is not None}
    if tdims and any(hasattr(ds[v].data, "dask") for v in keep_vars):
        ds = ds.chunk(dict.fromkeys(tdims, -1))
    inputs = [ds[v].transpose(..., "y", "x") for v in keep_vars]
    return xr.apply_ufunc(
        _stacked_proba,
        *inputs,
        input_core_dims=[[d] if (d := time_dim(v)) is not None else [] for v in inputs],
        output_core_dims=[["class"]],
        dask="allowed",
        kwargs={
            "order": order, "model": run_model, "allow_nan": bool(model.allow_nan),
            "n_classes": n_classes,
        },
        keep_attrs="drop_conflicts",  # keeps the attrs of spatial_ref (the CRS)
    ).transpose("y", "x", "class").drop_attrs(deep=False)  # fmt: skip


def _stacked_proba(
    *arrays: Any, order: np.ndarray | None, model: Any, allow_nan: bool, n_classes: int
) -> Any:
    """(y, x, time) / (y, x) arrays -> (y, x, class): numpy at once, dask one task per chunk.

    On dask the model is one graph key (:func:`eoai._graph.graph_constant`) that every chunk task
    reads, instead of a copy inside each task.
    """
    import dask.array as da

    kw: dict[str, Any] = {"order": order, "allow_nan": allow_nan, "n_classes": n_classes}
    if not any(isinstance(a, da.Array) for a in arrays):
        return _predict_stacked(*arrays, model=model, **kw)
    from .._graph import graph_constant

    args: list[Any] = []
    for i, a in enumerate(arrays):
        args += [da.asarray(a), ("y", "x", f"t{i}") if np.ndim(a) == 3 else ("y", "x")]
    return da.blockwise(
        _predict_stacked, ("y", "x", "class"), *args, new_axes={"class": n_classes},
        concatenate=True, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32),
        model=graph_constant(model), **kw,
    )  # fmt: skip


def _spatial_proba(feats: xr.DataArray, model: Any, halo: int, n_classes: int) -> xr.DataArray:
    """Apply a patch model with a halo (map_overlap, reflected edges) and crop: no seams."""
    import dask.array as da

    data = feats.transpose("y", "x", "feature").data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(-1, -1, -1))
    if min(data.shape[0], data.shape[1]) <= halo:
        raise InputError(
            f"the cube ({data.shape[0]} x {data.shape[1]} px) is smaller than the halo {halo}"
        )
    from dask.array.overlap import ensure_minimum_chunksize

    data = data.rechunk(
        {
            0: ensure_minimum_chunksize(halo, data.chunks[0]),
            1: ensure_minimum_chunksize(halo, data.chunks[1]),
        }
    )
    padded = da.overlap.overlap(
        data, depth={0: halo, 1: halo, 2: 0}, boundary={0: "reflect", 1: "reflect", 2: "none"}
    )
    chunks = (data.chunks[0], data.chunks[1], (n_classes,))
    from .._graph import graph_constant

    proba = padded.map_blocks(
        _predict_image, model=graph_constant(model), halo=halo, n_classes=n_classes,
        chunks=chunks, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32),
    )  # fmt: skip
    coords = {k: v for k, v in feats.coords.items() if "feature" not in v.dims}
    out = xr.DataArray(proba, dims=("y", "x", "class"), coords=coords)
    if not hasattr(feats.data, "dask"):
        out = out.compute()
    return out


def _predict_patch_block(
    series: np.ndarray, *images: np.ndarray, model: Any, specs: list[tuple[int, int, int]],
    n_classes: int,
) -> np.ndarray:  # fmt: skip
    """(y, x, feature) series and each image's haloed (y*r + 2h, x*r + 2h, band) block, with
    ``specs`` ``[(ratio, patch, halo)]`` -> (y, x, class)."""
    from numpy.lib.stride_tricks import sliding_window_view

    from .features import patch_offset

    ny, nx = series.shape[:2]
    parts = [np.asarray(series, dtype="float32").reshape(ny * nx, -1)]
    for image, (ratio, patch, halo) in zip(images, specs, strict=True):
        start = patch_offset(ratio, patch) + halo
        win = sliding_window_view(np.asarray(image, dtype="float32"), (patch, patch), axis=(0, 1))
        win = win[start : start + ny * ratio : ratio, start : start + nx * ratio : ratio]
        parts.append(win.reshape(ny * nx, -1))
    flat = np.concatenate(parts, 1)
    return _predict_rows(flat, model, True, n_classes).reshape(ny, nx, n_classes)


def _patch_proba(cube: Any, model: Any, run_model: Any, n_classes: int) -> xr.DataArray:
    """A series + patches model: one task per chunk, each image's block read with a NaN halo."""
    import dask.array as da
    from dask.array.overlap import ensure_minimum_chunksize

    from .._graph import graph_constant
    from .features import patch_array

    if not isinstance(cube, xr.DataTree):
        raise ModelError(
            f"the model reads patches of {list(model.patches)} around each pixel: classify a "
            "sources tree holding them, eoai.stack_sources({..., 'vhr': vhr}, fine='vhr')"
        )
    n_series = len(model.features) - len(model.patch_features)
    grid = as_dataset(cube)
    images = [patch_array(cube, g["source"], g["bands"]) for g in model.groups]
    lazy = any(hasattr(a.data, "dask") for a, _ in images)
    if n_series:
        feats = feature_array(cube, model.features[:n_series])
        lazy = lazy or hasattr(feats.data, "dask")
        s = da.asarray(feats.transpose("y", "x", "feature").data)
        coords = {k: v for k, v in feats.coords.items() if "feature" not in v.dims}
    else:  # patches only: the chunks of the first image, in base pixels
        arr, ratio = images[0]
        data = arr.data
        ny, nx = grid.sizes["y"], grid.sizes["x"]
        cy = max(1, max(data.chunks[0]) // ratio) if hasattr(data, "dask") else ny
        cx = max(1, max(data.chunks[1]) // ratio) if hasattr(data, "dask") else nx
        s = da.zeros((ny, nx, 0), dtype="float32", chunks=(cy, cx, -1))
        coords = {k: v for k, v in grid.coords.items() if set(v.dims) <= {"y", "x"}}
    specs = []
    for g, (arr, ratio) in zip(model.groups, images, strict=True):
        if arr.shape[:2] != (s.shape[0] * ratio, s.shape[1] * ratio):
            raise ModelError(
                f"the image of {g['source']!r} is {arr.shape[0]} x {arr.shape[1]} px for a "
                f"{s.shape[0]} x {s.shape[1]} px grid at ratio {ratio}; stack it with "
                "eoai.stack_sources"
            )
        halo = model.patch_halo(g["source"], ratio)
        specs.append((ratio, g["size"], halo))
        need = max(1, -(-halo // ratio))  # base pixels whose image pixels hold the halo
        s = s.rechunk({0: ensure_minimum_chunksize(need, s.chunks[0]),
                       1: ensure_minimum_chunksize(need, s.chunks[1]), 2: -1})  # fmt: skip
    blocks = []
    for (arr, ratio), (_, _, halo) in zip(images, specs, strict=True):
        f = da.asarray(arr.data).rechunk(
            (tuple(c * ratio for c in s.chunks[0]), tuple(c * ratio for c in s.chunks[1]), -1)
        )
        if halo:
            f = da.overlap.overlap(
                f, depth={0: halo, 1: halo, 2: 0}, boundary={0: np.nan, 1: np.nan, 2: "none"}
            )
        blocks.append(f)
    args: list[Any] = [s, ("y", "x", "f")]
    for i, f in enumerate(blocks):
        args += [f, ("y", "x", f"b{i}")]
    proba = da.blockwise(
        _predict_patch_block, ("y", "x", "c"), *args, new_axes={"c": n_classes},
        adjust_chunks={"y": s.chunks[0], "x": s.chunks[1]}, align_arrays=False,
        concatenate=True, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32),
        model=graph_constant(run_model), specs=specs, n_classes=n_classes,
    )  # fmt: skip
    out = xr.DataArray(proba, dims=("y", "x", "class"), coords=coords)
    return out if lazy else out.compute()
