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
being the same at 5-10 m as at 10-20 m (scale invariance), which holds only roughly.

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
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np

from ..errors import InputError
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


def degrade(arr: np.ndarray, names: Sequence[str | None], factor: int = 2) -> np.ndarray:
    """Sensor-like degradation of ``(..., C, H, W)``: MTF-matched Gaussian blur then block mean.

    Parameters
    ----------
    arr : numpy.ndarray
        Channels on axis -3, named by ``names`` (Sentinel-2 band names or ``None``).
    names : sequence of str or None
        Band of each channel (its MTF sets the blur).
    factor : int
        Reduction factor.

    Returns
    -------
    numpy.ndarray
        ``(..., C, H // factor, W // factor)`` float32.

    Examples
    --------
    >>> degrade(np.full((1, 8, 8), 0.5), ["B05"]).tolist()[0][0]
    [0.5, 0.5, 0.5, 0.5]
    """
    sig = [gaussian_sigma(n, factor) for n in names]
    return block_mean(gaussian_blur(arr, sig), factor).astype(np.float32)


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


def resolve_device(device: str | None = "auto") -> str:
    """``"cuda"`` when available for ``"auto"``/``None``, else the given device.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


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
            g = degrade(np.asarray(guide, dtype=np.float32)[..., py:, px:], guide_names, 2)
    else:
        (py, px), frac = (0, 0), 0.0
        target = low
        g = None
    h = target.shape[-2] // 2 * 2
    w = target.shape[-1] // 2 * 2
    target = target[..., :h, :w]
    coarse = degrade(target, low_names, 2)
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


def train(
    low: np.ndarray,
    guide: np.ndarray | None,
    low_names: Sequence[str | None],
    guide_names: Sequence[str | None] = (),
    *,
    replicated: bool = True,
    features: int = 48,
    blocks: int = 4,
    steps: int = 1500,
    batch_size: int = 16,
    patch_size: int = 32,
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
    features, blocks : int
        Network width and number of residual blocks.
    steps : int
        Optimisation steps (Adam, cosine learning-rate decay, L1 loss as in DSen2).
    batch_size, patch_size : int
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
    >>> net, info = train(low, rng.random((1, 1, 48, 48)), ["B05"], ["B02"], features=8,
    ...                   blocks=1, steps=5, batch_size=2, progress=False)
    >>> info["steps"], info["patch_size"]
    (5, 24)
    """
    import torch
    from torch.nn import functional as F

    from .baselines import upsample_replicated
    from .net import DSen2Net

    with _torch_threads(threads):
        t0 = time.perf_counter()
        pair = prepare_training(low, guide, low_names, guide_names, replicated=replicated)
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
        patch = int(min(patch_size, th, tw))
        base = upsample_replicated(low_rep, "bicubic").astype(np.float32)
        stack = [target, base] + ([g] if g is not None else [])
        valid = np.all(np.isfinite(np.concatenate(stack, axis=1)), axis=1)
        pos = _valid_positions(valid, patch)
        if len(pos) == 0:
            raise InputError(
                f"no fully valid {patch} x {patch} patch to train on (NaN / clouds everywhere); "
                "pass dates or an area with clear pixels (train_time=...) or pretrained weights=..."
            )
        low_mean = np.nanmean(target, axis=(0, 2, 3))
        low_std = np.nanstd(target, axis=(0, 2, 3))
        dev = resolve_device(device)
        rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = DSen2Net(target.shape[1], 0 if g is None else g.shape[1], features, blocks)
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
        bar = range(steps)
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
            yt = torch.stack([tt[t, :, a, b] for t, a, b in sl]).to(dev)
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
            "patch_size": patch,
            "batch_size": batch_size,
            "features": features,
            "blocks": blocks,
            "lr": lr,
            "seed": seed,
            "device": dev,
            "phase": list(pair["phase"]),
            "replicated_fraction": pair["replicated_fraction"],
            "train_pixels": int(valid.sum()),
            "loss_first": float(np.mean(losses[:n])) if losses else float("nan"),
            "loss_last": float(np.mean(losses[-n:])) if losses else float("nan"),
        }
        return net, info


def simulate(cube, bands=None, guide=None, mode: str = "20m"):
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

    from .api import _default_bands, _spatial_dims

    y, x = _spatial_dims(cube)
    tdim = "time" if "time" in cube.dims else None
    bands, guide = _default_bands(cube, "guided", mode, bands, guide, None)
    order = ([tdim] if tdim else []) + [y, x]

    def arr(names):
        a = np.stack([np.asarray(cube[n].transpose(*order).values, np.float32) for n in names], -3)
        return a if tdim else a[None]

    if mode == "20m":
        pair = prepare_training(arr(bands), arr(guide), bands, guide, replicated=True)
        py, px = pair["phase"]
    else:
        pair = prepare_training(arr(bands), None, bands, (), replicated=False)
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
