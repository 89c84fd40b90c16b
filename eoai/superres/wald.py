"""Wald's protocol: sensor-like degradation and self-supervised training on the image itself.

Wald et al. (1997) "Fusion of satellite images of different spatial resolutions: assessing the
quality of resulting images": a fusion method is trained (or checked) one scale down, where the
truth is known, and applied at the native scale, assuming the relation between scales is scale
invariant. Here, for the 20 m bands (Lanaras et al. 2018, DSen2):

- the 10 m guide bands are degraded to 20 m and the 20 m bands to 40 m: Gaussian blur matching
  each band's MTF at the coarse Nyquist frequency (:func:`eoai.superres.bands.gaussian_sigma`),
  then 2 x 2 block mean;
- the network learns 40 m -> 20 m guided by the 20 m version of the 10 m bands;
- it is then applied to the real 20 m bands guided by the real 10 m bands.

For the single-image x2 mode of the 10 m bands, 10 m -> 20 m is degraded the same way and the
network learns 20 m -> 10 m, then is applied 10 m -> 5 m: this relies on the scene's statistics
being the same at 5-10 m as at 10-20 m (scale invariance), which holds only roughly. There is no
guide to measure the blur against, so the training degrades with each std of :data:`BLIND_BLURS`
(one pair each): the network sharpens by as much as its input looks blurred.

Training needs the training image in memory: it is the one step of :func:`eoai.superres.superres`
that computes (a window of at most ``train_size`` pixels per side and date); inference is lazy.

Examples
--------
>>> import numpy as np
>>> from eoai.superres.wald import block_mean, block_phase
>>> a = np.repeat(np.repeat(np.arange(12.0).reshape(3, 4), 2, 0), 2, 1)[1:, :]
>>> block_phase(a)
((1, 0), 1.0)
>>> block_mean(np.arange(16.0).reshape(4, 4), 2).tolist()
[[2.5, 4.5], [10.5, 12.5]]
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .._renamed import renamed_parameters
from .._skipped import user_stacklevel
from ..errors import EoaiWarning, InputError
from ._common import default_bands, resolve_device, superres_dims
from .bands import gaussian_sigma

#: Smallest side, in pixels of the training target grid, that can be trained on.
MIN_TRAIN_SIDE = 16


def block_mean(arr: np.ndarray, factor: int = 2) -> np.ndarray:
    """Mean over ``factor x factor`` blocks of the last two axes (trailing rows/cols dropped).

    Examples
    --------
    >>> block_mean(np.ones((3, 5)), 2).shape
    (1, 2)
    """
    h = arr.shape[-2] // factor * factor
    w = arr.shape[-1] // factor * factor
    a = arr[..., :h, :w]
    shape = (*a.shape[:-2], h // factor, factor, w // factor, factor)
    return a.reshape(shape).mean(axis=(-3, -1))


def gaussian_blur(arr: np.ndarray, sigmas: Sequence[float]) -> np.ndarray:
    """Blur each channel (axis -3) of ``(..., C, H, W)`` with its own Gaussian std (pixels).

    Edges are mirrored (``mode="reflect"``); NaN spreads over the kernel's extent.

    Examples
    --------
    >>> float(gaussian_blur(np.ones((2, 5, 5)), [1.0, 0.5]).max())
    1.0
    """
    from scipy.ndimage import gaussian_filter

    out = np.empty_like(arr, dtype=np.float32)
    for c, s in enumerate(sigmas):
        out[..., c, :, :] = gaussian_filter(
            np.asarray(arr[..., c, :, :], dtype=np.float32),
            sigma=[0] * (arr.ndim - 3) + [s, s],
            mode="reflect",
            truncate=4.0,
        )
    return out


def degrade(
    arr: np.ndarray,
    names: Sequence[str | None],
    factor: int = 2,
    sigma: float | Sequence[float] | None = None,
) -> np.ndarray:
    """Sensor-like degradation of ``(..., C, H, W)``: Gaussian blur then block mean.

    Parameters
    ----------
    arr : numpy.ndarray
        Channels on axis -3, named by ``names`` (Sentinel-2 band names or ``None``).
    names : sequence of str or None
        Band of each channel (its MTF sets the blur).
    factor : int
        Reduction factor.
    sigma : float or sequence of float, optional
        Gaussian std in pixels of ``arr`` (one for all channels or one per channel); default
        each band's MTF-matched std (:func:`eoai.superres.bands.gaussian_sigma`).

    Returns
    -------
    numpy.ndarray
        ``(..., C, H // factor, W // factor)`` float32.

    Examples
    --------
    >>> degrade(np.full((1, 8, 8), 0.5), ["B05"]).tolist()[0][0]
    [0.5, 0.5, 0.5, 0.5]
    >>> degrade(np.eye(4)[None], [None], sigma=0).tolist()
    [[[0.5, 0.0], [0.0, 0.5]]]
    """
    sig = _sigmas(sigma, names, factor)
    return block_mean(gaussian_blur(arr, sig), factor).astype(np.float32)


def _sigmas(sigma, names, factor: int = 2) -> list[float]:
    """Per-channel Gaussian std: ``sigma`` (scalar or sequence) or the bands' MTF-matched std."""
    if sigma is None:
        return [gaussian_sigma(n, factor) for n in names]
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (len(names),))
    if not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise InputError(f"blur sigma must be finite and >= 0 (pixels), got {np.asarray(sigma)}")
    return [float(v) for v in sig]


def block_phase(arr: np.ndarray) -> tuple[tuple[int, int], float]:
    """Offset of the 2 x 2 blocks of a nearest-replicated image and the fraction that is constant.

    Parameters
    ----------
    arr : numpy.ndarray
        ``(..., H, W)`` image(s); NaN pairs are ignored.

    Returns
    -------
    ((int, int), float)
        ``(phase_y, phase_x)`` in {0, 1} and the fraction of equal pixel pairs at that phase (1.0
        for a cleanly replicated image, about 0 for a native-resolution one).

    Examples
    --------
    >>> block_phase(np.repeat(np.arange(6.0), 2)[None, 1:])[0]
    (0, 1)
    """
    fr = []
    for ax in (-2, -1):
        a = np.moveaxis(arr, ax, -1)
        scores = []
        for p in (0, 1):
            n = (a.shape[-1] - p) // 2 * 2
            if n <= 0:
                scores.append(0.0)
                continue
            lo = a[..., p : p + n : 2]
            hi = a[..., p + 1 : p + n : 2]
            ok = np.isfinite(lo) & np.isfinite(hi)
            scores.append(float(np.mean(lo[ok] == hi[ok])) if ok.any() else 0.0)
        fr.append(scores)
    py = int(np.argmax(fr[0]))
    px = int(np.argmax(fr[1]))
    return (py, px), min(fr[0][py], fr[1][px])


#: Training settings on a GPU (and with ``device="cuda"``): 1500 steps, width 48, 4 blocks.
FULL_TRAINING = {"steps": 1500, "width": 48, "blocks": 4}
#: Faster training settings on a CPU (measured in benchmarks/README.md, "Super-resolution").
CPU_TRAINING = {"steps": 400, "width": 32, "blocks": 3}


def training_defaults(device: str | None = "auto") -> dict:
    """Default ``steps``, ``width`` and ``blocks`` of the self-supervised training on a device.

    Examples
    --------
    >>> training_defaults("cpu")
    {'steps': 400, 'width': 32, 'blocks': 3}
    >>> training_defaults("cuda:0")["steps"]
    1500
    """
    if isinstance(device, str) and device.startswith("cuda"):  # named: no need to see the GPU
        return dict(FULL_TRAINING)
    dev = resolve_device(device)
    return dict(CPU_TRAINING if dev.type == "cpu" else FULL_TRAINING)


def _valid_positions(valid: np.ndarray, patch: int) -> np.ndarray:
    """``(K, 3)`` (t, y, x) top-left corners of fully valid ``patch x patch`` windows."""
    t, h, w = valid.shape
    inv = np.pad((~valid).astype(np.int64), ((0, 0), (1, 0), (1, 0)))
    s = inv.cumsum(1).cumsum(2)
    win = (
        s[:, patch:, patch:]
        - s[:, :-patch, patch:]
        - s[:, patch:, :-patch]
        + s[:, :-patch, :-patch]
    )
    return np.argwhere(win == 0)


def prepare_training(
    low: np.ndarray,
    guide: np.ndarray | None,
    low_names: Sequence[str | None],
    guide_names: Sequence[str | None] = (),
    replicated: bool = True,
    sigma: float | Sequence[float] | None = None,
    guide_sigma: float | Sequence[float] | None = None,
) -> dict:
    """Build the Wald training pair one scale down from the input image.

    Parameters
    ----------
    low : numpy.ndarray
        ``(T, nl, H, W)`` bands to sharpen on the fine grid: coarse bands nearest-replicated
        (``replicated=True``, 20 m mode) or native fine bands (``replicated=False``, x2 mode).
    guide : numpy.ndarray or None
        ``(T, ng, H, W)`` fine guide bands (None in x2 mode).
    low_names, guide_names : sequence of str
        Band names (set the MTF blur).
    replicated : bool
        Whether ``low`` is replicated 2 x 2 (then its native image is recovered at its phase).
    sigma, guide_sigma : float or sequence of float, optional
        Gaussian std (pixels of the grid degraded) of the training degradation of ``low`` and
        of ``guide`` (one value or one per band); default each band's MTF-matched std.

    Returns
    -------
    dict
        ``target`` (T, nl, h, w) native coarse image, ``low_rep`` its degraded version replicated
        back onto the target grid, ``guide`` the degraded guide on the same grid (or None),
        ``phase`` and ``replicated_fraction``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> low = np.repeat(np.repeat(rng.random((1, 1, 20, 20)), 2, 2), 2, 3)
    >>> pair = prepare_training(low, rng.random((1, 2, 40, 40)), ["B05"], ["B02", "B03"])
    >>> pair["target"].shape, pair["low_rep"].shape, pair["guide"].shape
    ((1, 1, 20, 20), (1, 1, 20, 20), (1, 2, 20, 20))
    """
    low = np.asarray(low, dtype=np.float32)
    if replicated:
        (py, px), frac = block_phase(low)
        low = low[..., py:, px:]
        target = block_mean(low, 2)
        g = None
        if guide is not None:
            g = np.asarray(guide, dtype=np.float32)[..., py:, px:]
            g = degrade(g, guide_names, 2, guide_sigma)
    else:
        (py, px), frac = (0, 0), 0.0
        target = low
        g = None
    h = target.shape[-2] // 2 * 2
    w = target.shape[-1] // 2 * 2
    target = target[..., :h, :w]
    coarse = degrade(target, low_names, 2, sigma)
    low_rep = np.repeat(np.repeat(coarse, 2, axis=-2), 2, axis=-1)
    if g is not None:
        g = g[..., :h, :w]
    return {
        "target": np.ascontiguousarray(target, dtype=np.float32),
        "low_rep": np.ascontiguousarray(low_rep, dtype=np.float32),
        "guide": None if g is None else np.ascontiguousarray(g, dtype=np.float32),
        "phase": (py, px),
        "replicated_fraction": frac,
    }


#: Gaussian stds (fine pixels) tried by :func:`estimate_blur`, refined between grid points.
BLUR_GRID = tuple(round(0.1 * i, 1) for i in range(26))


def estimate_blur(
    coarse: np.ndarray,
    guide: np.ndarray,
    grid: Sequence[float] | np.ndarray = BLUR_GRID,
) -> dict:
    """Estimate each coarse band's blur from the fine guide bands (the scene's MTF, measured).

    For each candidate std ``s`` the fine guide bands are blurred by a Gaussian of std ``s``
    (fine pixels) and averaged over 2 x 2 blocks; each coarse band is regressed (least squares,
    per date, with an intercept) on those degraded guide bands. The ``s`` with the smallest
    residual, refined by a parabola through its neighbours, is the blur that relates the coarse
    band to the fine grid: where the coarse bands are sharper than the sensor model assumes,
    the estimate is smaller than the MTF-matched std, and training with it keeps the network
    from over-sharpening. The spectral relation between the bands need not be linear for this:
    a mismatch of bands adds a residual that changes little with ``s``, a mismatch of blur adds
    the high frequencies that the degraded guide has and the coarse band has not (or the
    reverse).

    Parameters
    ----------
    coarse : numpy.ndarray
        ``(T, nl, h, w)`` native coarse bands.
    guide : numpy.ndarray
        ``(T, ng, 2h, 2w)`` fine guide bands aligned with the coarse blocks (NaN allowed).
    grid : sequence of float
        Candidate stds in fine pixels (increasing).

    Returns
    -------
    dict
        ``sigma`` (nl,) estimated std per coarse band, ``grid`` and ``residual`` (len(grid), nl)
        RMS residual of the regression.

    Raises
    ------
    eoai.errors.InputError
        If the shapes do not match or fewer than 100 pixels are valid in every band (pixels
        with NaN in any band are left out).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> from scipy.ndimage import gaussian_filter
    >>> fine = gaussian_filter(rng.random((1, 1, 128, 128)), (0, 0, 1.2, 1.2))
    >>> coarse = degrade(fine, [None], sigma=0.8)
    >>> round(float(estimate_blur(coarse, fine)["sigma"][0]), 1)
    0.8
    """
    coarse = np.asarray(coarse, dtype=np.float32)
    guide = np.asarray(guide, dtype=np.float32)
    if coarse.ndim != 4 or guide.ndim != 4 or coarse.shape[0] != guide.shape[0]:
        raise InputError(
            f"estimate_blur needs (T, bands, h, w) coarse and (T, bands, 2h, 2w) guide arrays, "
            f"got {coarse.shape} and {guide.shape}"
        )
    h = min(coarse.shape[-2], guide.shape[-2] // 2)
    w = min(coarse.shape[-1], guide.shape[-1] // 2)
    if min(h, w) < 8:
        raise InputError(f"estimate_blur needs at least 8 x 8 coarse pixels, got {h} x {w}")
    coarse = coarse[..., :h, :w]
    guide = guide[..., : 2 * h, : 2 * w]
    grid = np.asarray(grid, dtype=np.float64)
    nl = coarse.shape[1]
    res = np.zeros((len(grid), nl))
    # one mask for every candidate: pixels valid in all bands once blurred by the widest kernel
    # (NaN spreads over the kernel), so that the residuals of all stds cover the same pixels
    widest = degrade(guide, [None] * guide.shape[1], 2, float(np.max(grid)))
    ok = np.all(np.isfinite(widest), axis=1) & np.all(np.isfinite(coarse), axis=1)
    ok = ok.reshape(ok.shape[0], -1)
    n_valid = int(ok.sum())
    if n_valid < 100:
        raise InputError(
            f"estimate_blur: only {n_valid} pixels are valid in every band (NaN / clouds); at "
            "least 100 are needed: pass a clearer area or dates, or blur='mtf'"
        )
    for i, s in enumerate(grid):
        d = degrade(guide, [None] * guide.shape[1], 2, float(s))
        for t in range(coarse.shape[0]):
            if ok[t].sum() < 10:
                continue
            x = d[t].reshape(d.shape[1], -1)
            y = coarse[t].reshape(nl, -1)
            xc = x[:, ok[t]].astype(np.float64)
            xc -= xc.mean(1, keepdims=True)
            yc = y[:, ok[t]].astype(np.float64)
            yc -= yc.mean(1, keepdims=True)
            xy = xc @ yc.T
            coef = np.linalg.lstsq(xc @ xc.T, xy, rcond=None)[0]
            res[i] += np.maximum((yc * yc).sum(1) - (coef * xy).sum(0), 0.0)
    counts = n_valid
    res = np.sqrt(res / counts)
    sigma = np.empty(nl)
    for b in range(nl):
        k = int(np.argmin(res[:, b]))
        sigma[b] = grid[k]
        if 0 < k < len(grid) - 1:
            y0, y1, y2 = res[k - 1, b], res[k, b], res[k + 1, b]
            den = y0 - 2 * y1 + y2
            if den > 0:
                step = 0.5 * (grid[k + 1] - grid[k - 1])
                sigma[b] = grid[k] + float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5)) * step
    return {"sigma": sigma, "grid": grid, "residual": res}


def _training_blur(blur, low, guide, low_names, replicated):
    """``(sigma, guide_sigma, info)`` of the training degradation for :func:`train`'s ``blur``."""
    if isinstance(blur, str):
        if blur not in ("auto", "mtf"):
            raise InputError(f"unknown blur {blur!r}; use 'auto', 'mtf' or a std in pixels")
        if blur == "mtf":
            sig = [gaussian_sigma(n, 2) for n in low_names]
            return None, None, {"blur": "mtf", "blur_sigma": [round(v, 4) for v in sig]}
        if guide is None:
            # nothing to measure the blur against: train over a range of blurs (blind)
            levels = [float(v) for v in BLIND_BLURS]
            return levels, None, {"blur": "range", "blur_sigma": levels}
        low = np.asarray(low, dtype=np.float32)
        guide = np.asarray(guide, dtype=np.float32)
        (py, px), _ = block_phase(low) if replicated else ((0, 0), 0.0)
        coarse = block_mean(low[..., py:, px:], 2) if replicated else low
        try:
            est = estimate_blur(coarse, guide[..., py:, px:])
        except InputError as err:
            warnings.warn(
                f"could not measure the scene's blur ({err}); training with the MTF-assumed blur",
                EoaiWarning,
                stacklevel=user_stacklevel(),
            )
            sig = [gaussian_sigma(n, 2) for n in low_names]
            return None, None, {"blur": "mtf", "blur_sigma": [round(v, 4) for v in sig]}
        sig = est["sigma"]
        gsig = float(np.median(sig))
        info = {
            "blur": "estimated",
            "blur_sigma": [round(float(v), 4) for v in sig],
            "guide_blur_sigma": round(gsig, 4),
        }
        return sig, gsig, info
    sig = _sigmas(blur, low_names)
    return sig, float(np.median(sig)), {"blur": "given", "blur_sigma": sig}


#: Gaussian stds (fine pixels) of the training degradations when the blur cannot be measured
#: (``mode="x2"``, no guide): one training pair per std, patches drawn from all of them, so that
#: the network learns to sharpen by as much as its input looks blurred.
BLIND_BLURS = (0.4, 0.7, 1.0, 1.3, 1.6)


def _blind_pairs(low, low_names, replicated, levels) -> dict:
    """Training pairs for every blur in ``levels``: ``low_rep`` stacked along the date axis
    (level-major, ``len(levels) * T`` images), ``target`` once (``T``; image ``i`` of ``low_rep``
    has target ``i % T``)."""
    pairs = [
        prepare_training(low, None, low_names, (), replicated=replicated, sigma=s) for s in levels
    ]
    out = dict(pairs[0])
    out["low_rep"] = np.concatenate([p["low_rep"] for p in pairs], axis=0)
    return out


@contextmanager
def _torch_threads(threads):
    """Run the block with ``threads`` torch CPU threads (if given), then restore the setting."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@renamed_parameters(features="width", patch_size="patch")
def train(
    low: np.ndarray,
    guide: np.ndarray | None,
    low_names: Sequence[str | None],
    guide_names: Sequence[str | None] = (),
    *,
    replicated: bool = True,
    blur: str | float | Sequence[float] = "auto",
    width: int | None = None,
    blocks: int | None = None,
    steps: int | None = None,
    batch_size: int = 16,
    patch: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | None = "auto",
    progress: bool | None = None,
    threads: int | None = None,
):
    """Train a :class:`~eoai.superres.net.DSen2Net` on the image itself by Wald's protocol.

    Parameters
    ----------
    low, guide, low_names, guide_names, replicated
        As for :func:`prepare_training`.
    blur : "auto", "mtf", float or sequence of float
        Gaussian std (fine pixels) of the degradation that makes the training pair one scale
        down. ``"auto"`` (default): measured on the image by :func:`estimate_blur` (each coarse
        band against the guide; the guide degraded with their median), so that a scene sharper
        or blurrier than the sensor model is trained for its own blur; without a guide (x2 mode)
        one training pair per std of :data:`BLIND_BLURS`, patches drawn from all of them. ``"mtf"``: each band's MTF-matched std
        (:func:`eoai.superres.bands.gaussian_sigma`). A number (or one per band): that std.
    width, blocks : int, optional
        Network width and number of residual blocks.
    steps : int, optional
        Optimisation steps (Adam, cosine learning-rate decay, L1 loss as in DSen2).
        Defaults of ``steps``, ``width`` and ``blocks`` depend on the device
        (:func:`training_defaults`): :data:`FULL_TRAINING` on a GPU, the faster
        :data:`CPU_TRAINING` on a CPU.
    batch_size, patch : int
        Random patches (with flips and 90 degree rotations) per step, side in pixels of the
        training grid; the patch is shrunk to fit small images.
    lr : float
        Initial learning rate.
    seed : int
        Seed of weights initialisation and patch sampling: same seed, same model (on one device).
    device : str
        ``"auto"`` (GPU when present), ``"cpu"``, ``"cuda"``...
    progress : bool, optional
        Show a tqdm progress bar; ``None`` (default): on in an interactive Jupyter / IPython session, off in scripts and papermill runs (``EOAI_PROGRESS=0/1`` overrides).
    threads : int, optional
        CPU threads for torch during training (default: torch's setting). On a machine shared
        with other work, 1 can be many times faster than several spinning threads.

    Returns
    -------
    (DSen2Net, dict)
        The trained network (on the CPU, eval mode) and a training report (``seconds``,
        ``steps``, ``loss_first``/``loss_last``: mean L1 error in units of each band's standard
        deviation over the first / last 20 steps, ``phase``, ...).

    Raises
    ------
    eoai.errors.InputError
        If the image is too small (training grid under 16 pixels a side) or has no fully valid
        patch.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> low = np.repeat(np.repeat(rng.random((1, 1, 24, 24)), 2, 2), 2, 3).astype("f4")
    >>> net, info = train(low, rng.random((1, 1, 48, 48)), ["B05"], ["B02"], width=8,
    ...                   blocks=1, steps=5, batch_size=2, progress=False)
    >>> info["steps"], info["patch"]
    (5, 24)
    """
    import torch
    from torch.nn import functional as F

    from .baselines import upsample_replicated
    from .net import DSen2Net

    with _torch_threads(threads):
        t0 = time.perf_counter()
        dev = resolve_device(device)
        defaults = training_defaults(dev)
        steps = defaults["steps"] if steps is None else int(steps)
        width = defaults["width"] if width is None else int(width)
        blocks = defaults["blocks"] if blocks is None else int(blocks)
        sig, gsig, blur_info = _training_blur(blur, low, guide, low_names, replicated)
        if blur_info["blur"] == "range":
            pair = _blind_pairs(low, low_names, replicated, sig)
        else:
            pair = prepare_training(
                low,
                guide,
                low_names,
                guide_names,
                replicated=replicated,
                sigma=sig,
                guide_sigma=gsig,
            )
        target, low_rep, g = pair["target"], pair["low_rep"], pair["guide"]
        th, tw = target.shape[-2:]
        if min(th, tw) < MIN_TRAIN_SIDE:
            fine = 2 if replicated else 1
            raise InputError(
                f"image too small to train on: the training grid one scale down is {th} x {tw} "
                f"pixels, at least {MIN_TRAIN_SIDE} x {MIN_TRAIN_SIDE} are needed (an input of at "
                f"least {MIN_TRAIN_SIDE * 2 * fine} x {MIN_TRAIN_SIDE * 2 * fine} pixels); "
                "load a larger area or pass pretrained weights=..."
            )
        patch = int(min(patch, th, tw))
        base = upsample_replicated(low_rep, "bicubic").astype(np.float32)
        del low_rep
        n_t = target.shape[0]  # blind x2: base holds len(BLIND_BLURS) images per target image
        stack = [base] + ([g] if g is not None else [])
        valid = np.all(np.isfinite(np.concatenate(stack, axis=1)), axis=1)
        valid &= np.tile(np.all(np.isfinite(target), axis=1), (base.shape[0] // n_t, 1, 1))
        pos = _valid_positions(valid, patch)
        if len(pos) == 0:
            raise InputError(
                f"no fully valid {patch} x {patch} patch to train on (NaN / clouds everywhere); "
                "pass dates or an area with clear pixels (train_time=...) or pretrained weights=..."
            )
        low_mean = np.nanmean(target, axis=(0, 2, 3))
        low_std = np.nanstd(target, axis=(0, 2, 3))
        rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = DSen2Net(target.shape[1], 0 if g is None else g.shape[1], width, blocks)
        if g is not None:
            net.set_normalisation(
                low_mean, low_std, np.nanmean(g, axis=(0, 2, 3)), np.nanstd(g, axis=(0, 2, 3))
            )
        else:
            net.set_normalisation(low_mean, low_std)
        net = net.to(dev).train()
        tt = torch.from_numpy(target)
        tb = torch.from_numpy(base)
        tg = None if g is None else torch.from_numpy(g)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / max(steps, 1)))
        )
        scale = net.low_std.view(1, -1, 1, 1)
        losses = []
        bar: Any = range(steps)  # a tqdm over it when progress is on
        from eoai._progress import enabled

        progress = enabled(progress)
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(bar, desc="superres: self-supervised training", unit="step")
        for _ in bar:
            idx = pos[rng.integers(0, len(pos), batch_size)]
            sl = [
                (int(t), slice(int(y), int(y) + patch), slice(int(x), int(x) + patch))
                for t, y, x in idx
            ]
            yt = torch.stack([tt[t % n_t, :, a, b] for t, a, b in sl]).to(dev)
            xb = torch.stack([tb[t, :, a, b] for t, a, b in sl]).to(dev)
            xg = None if tg is None else torch.stack([tg[t, :, a, b] for t, a, b in sl]).to(dev)
            k = int(rng.integers(0, 4))
            flip = bool(rng.integers(0, 2))
            tens = [yt, xb] + ([xg] if xg is not None else [])
            tens = [torch.rot90(v, k, dims=(2, 3)) for v in tens]
            if flip:
                tens = [torch.flip(v, dims=(3,)) for v in tens]
            yt, xb = tens[0], tens[1]
            xg = tens[2] if xg is not None else None
            pred = net(xg, xb)
            loss = F.l1_loss(pred / scale, yt / scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if progress and len(losses) % 20 == 0:
                bar.set_postfix(l1=f"{np.mean(losses[-20:]):.4f}")
        net = net.cpu().eval()
        n = max(1, min(20, len(losses) // 5))
        info = {
            "seconds": time.perf_counter() - t0,
            "steps": steps,
            "patch": patch,
            "batch_size": batch_size,
            "width": width,
            "blocks": blocks,
            "lr": lr,
            "seed": seed,
            "device": str(dev),
            "phase": list(pair["phase"]),
            "replicated_fraction": pair["replicated_fraction"],
            "train_pixels": int(valid.sum()),
            "loss_first": float(np.mean(losses[:n])) if losses else float("nan"),
            "loss_last": float(np.mean(losses[-n:])) if losses else float("nan"),
            **blur_info,
        }
        return net, info


def simulate(cube, bands=None, guide=None, mode: str = "20m", sigma: float | None = None):
    """Wald-protocol test pair from a real cube: the cube one scale down, and its truth.

    For ``mode="20m"``: the 10 m ``guide`` bands are degraded to 20 m and the 20 m ``bands``
    (nearest-replicated on the 10 m grid, their native 20 m image is recovered) to 40 m, then
    replicated onto the 20 m grid; the truth is the native 20 m ``bands``. Super-resolving the
    returned cube (20 m grid) and comparing with the truth measures the 20 -> 10 m task one scale
    down. For ``mode="x2"``: the 10 m bands degraded to 20 m (on a 20 m grid) and their 10 m truth.
    This computes (an evaluation tool, not a lazy operation).

    Parameters
    ----------
    cube : xarray.Dataset
        As for :func:`eoai.superres.superres` (dims ``(time, y, x)`` or ``(y, x)``).
    bands, guide : list of str, optional
        Defaults as in :func:`eoai.superres.superres`.
    mode : {"20m", "x2"}
        Which task to simulate.
    sigma : float, optional
        Gaussian std of the degradation in pixels of the grid being degraded (the same for
        every band), to simulate a scene sharper or blurrier than the MTF; default each band's
        MTF-matched std (:func:`eoai.superres.bands.gaussian_sigma`).

    Returns
    -------
    (xarray.Dataset, xarray.Dataset)
        ``(degraded, truth)`` on the same coarser grid (pixel centres and ``spatial_ref`` kept).

    Examples
    --------
    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> b5 = np.repeat(np.repeat(rng.random((20, 20)), 2, 0), 2, 1)
    >>> cube = xr.Dataset({"B05": (("y", "x"), b5), "B04": (("y", "x"), rng.random((40, 40)))},
    ...                   coords={"y": np.arange(40.0)[::-1] * 10, "x": np.arange(40.0) * 10})
    >>> low, truth = simulate(cube)
    >>> low.sizes["x"], float(truth.x[1] - truth.x[0])
    (20, 20.0)
    """
    import xarray as xr

    y, x = superres_dims(cube)
    tdim = "time" if "time" in cube.dims else None
    bands, guide = default_bands(cube, "guided", mode, bands, guide, None)
    order = ([tdim] if tdim else []) + [y, x]

    def arr(names):
        a = np.stack([np.asarray(cube[n].transpose(*order).values, np.float32) for n in names], -3)
        return a if tdim else a[None]

    if mode == "20m":
        pair = prepare_training(
            arr(bands), arr(guide), bands, guide, replicated=True, sigma=sigma, guide_sigma=sigma
        )
        py, px = pair["phase"]
    else:
        pair = prepare_training(arr(bands), None, bands, (), replicated=False, sigma=sigma)
        # one more scale down: low_rep is on the 10 m grid; keep its 20 m pixels
        py = px = 0
    h, w = pair["target"].shape[-2:]

    def coarse_coords(d, p, n):
        c = np.asarray(cube[d].values, np.float64)[p:]
        return c[: 2 * n].reshape(n, 2).mean(1)

    if mode == "20m":
        cy, cx = coarse_coords(y, py, h), coarse_coords(x, px, w)
        low_vars = {
            **dict(zip(guide, np.moveaxis(pair["guide"], -3, 0), strict=True)),
            **dict(zip(bands, np.moveaxis(pair["low_rep"], -3, 0), strict=True)),
        }
        truth_vars = dict(zip(bands, np.moveaxis(pair["target"], -3, 0), strict=True))
    else:
        coarse = block_mean(pair["low_rep"], 2)
        h2, w2 = coarse.shape[-2:]
        cy, cx = coarse_coords(y, 0, h2), coarse_coords(x, 0, w2)
        low_vars = dict(zip(bands, np.moveaxis(coarse, -3, 0), strict=True))
        truth_vars = dict(
            zip(bands, np.moveaxis(pair["target"][..., : 2 * h2, : 2 * w2], -3, 0), strict=True)
        )
    coords = {y: cy, x: cx}
    if tdim:
        coords[tdim] = cube[tdim].values
    extra = {k: v for k, v in cube.coords.items() if k == "spatial_ref"}

    def ds(vars_, fine=False):
        out = xr.Dataset(
            {n: (order, v if tdim else v[0], dict(cube[n].attrs)) for n, v in vars_.items()},
            coords=coords if not fine else None,
        )
        return out.assign_coords(extra)

    if mode == "20m":
        return ds(low_vars), ds(truth_vars)
    fy = np.asarray(cube[y].values)[: 2 * len(cy)]
    fx = np.asarray(cube[x].values)[: 2 * len(cx)]
    truth = ds(truth_vars, fine=True).assign_coords({y: fy, x: fx})
    if tdim:
        truth = truth.assign_coords({tdim: cube[tdim].values})
    return ds(low_vars), truth
