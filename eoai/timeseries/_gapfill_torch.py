"""Torch backend of gap-filling: batched over pixels, looping over time (CPU or CUDA).

Imported only by :mod:`eoai.timeseries.gapfill` when ``device`` is not ``"cpu"`` (so
``import eoai`` never imports torch). It reproduces the numba kernels of
:mod:`eoai.timeseries._gapfill_numba` in float64:

``whittaker_fill``
    ``(W + lam D'D) z = W y`` on the working grid, factorised as ``L diag(Dg) L'`` (banded LDL' of
    half-bandwidth ``d``, the same recursion and order of operations as ``_gapfill_numba._ldl_factor``),
    then forward and backward substitution. The Python loops run over time (``m`` grid positions)
    and the band (``d``); every operation is a tensor operation over all pixels at once. Only the
    diagonal of the system depends on the pixel (weights), the off-diagonal band is shared. A
    fixed ``lam`` and the asymmetric weights ``p`` (iterated while any pixel's weights change;
    a pixel whose weights no longer change solves the same system again, so it ends where the
    numba kernel stops it).
``linear_fill``
    The OTB / iota2 rule with previous / next valid observation found by cumulative max / min of
    valid indices, then ``gather`` at ``searchsorted`` positions of the output dates.

Both take NumPy arrays with pixels along the rows and return a NumPy float64 array
``(n_out, n_pixels)`` (time-major) and the number of pixels left NaN.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

__all__ = ["linear_fill", "whittaker_fill"]


def _tensor(a: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64), device=device)


def _time_major(y: np.ndarray, device: str) -> torch.Tensor:
    """``y`` (n_pix, n_t) -> float64 tensor (n_t, n_pix), contiguous (no copy when ``y.T`` is)."""
    yt = y.T
    if not yt.flags.c_contiguous:
        yt = np.ascontiguousarray(yt)
    with warnings.catch_warnings():
        # read-only inputs (dask chunks, broadcast weights): the tensor is only read, never written
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        t = torch.from_numpy(yt)
    return t.to(device=device, dtype=torch.float64).contiguous()


@torch.no_grad()
def linear_fill(
    y: np.ndarray, x_in: np.ndarray, x_out: np.ndarray, max_gap: float, device: str
) -> tuple[np.ndarray, int]:
    """Linear interpolation in date with constant extension (the ``_gapfill_numba.linear_fill`` rule).

    Returns the filled series ``(n_out, n_pix)`` and the number of pixels without any valid
    observation (left NaN).
    """
    yt = _time_major(y, device)  # (n_in, B)
    n_in = yt.shape[0]
    xi = _tensor(x_in, device)
    xo = _tensor(x_out, device)
    valid = ~torch.isnan(yt)
    idx = torch.arange(n_in, device=device).unsqueeze(1).expand_as(yt)
    # last valid index <= i (or -1), first valid index >= i (or n_in)
    prev_valid = torch.where(valid, idx, -1).cummax(0).values
    next_valid = torch.where(valid, idx, n_in).flip(0).cummin(0).values.flip(0)
    pos = torch.searchsorted(xi, xo)  # first input index with x_in >= t
    # previous valid observation strictly before t, next valid at or after t
    prv = prev_valid[(pos - 1).clamp(min=0)]
    prv = torch.where((pos > 0).unsqueeze(1), prv, -1)  # (n_out, B)
    nxt = next_valid[pos.clamp(max=n_in - 1)]
    nxt = torch.where((pos < n_in).unsqueeze(1), nxt, n_in)
    has_p = prv >= 0
    has_n = nxt < n_in
    pi = prv.clamp(0, n_in - 1)
    ni = nxt.clamp(0, n_in - 1)
    y0 = yt.gather(0, pi)
    y1 = yt.gather(0, ni)
    x0 = xi[pi]
    x1 = xi[ni]
    t = xo.unsqueeze(1)
    exact = has_n & (x1 == t)
    interp = y0 + (y1 - y0) * (t - x0) / (x1 - x0)
    val = torch.where(has_p & has_n, interp, torch.where(has_n, y1, y0))
    gap = torch.where(has_p & has_n, x1 - x0, torch.where(has_n, x1 - t, t - x0))
    val = torch.where(exact, y1, val)
    gap = torch.where(exact, torch.zeros_like(gap), gap)
    nan = torch.full_like(val, float("nan"))
    val = torch.where((has_p | has_n) & (gap <= max_gap), val, nan)
    empty = int((~valid.any(0)).sum())
    return val.cpu().numpy(), empty


def _factor_solve(
    w: list[torch.Tensor],
    off: np.ndarray,
    diag_pen: np.ndarray,
    lam: float,
    d: int,
    rhs: list[torch.Tensor],
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Banded LDL' of ``diag(w) + lam * P`` and solve, batched over pixels.

    ``w`` and ``rhs`` are lists of ``m`` tensors of shape ``(B,)`` (one per grid position),
    ``diag_pen[j] = P[j, j]``, ``off[k, j] = P[j + k, j]``. Returns the solution as a list of
    ``m`` tensors and a mask of the pixels whose factorisation succeeded (the numba criterion
    ``s > 1e-13 * ref`` and ``s > 0``).
    """
    m = len(w)
    # L[i][k] = L[i, i - k] for k = 1..d (index 0 unused). L, Dg and z start as None placeholders,
    # each written before it is read: typed as the tensors they hold (the ignores are for the None)
    L: list[list[torch.Tensor]] = [[None] * (d + 1) for _ in range(m)]  # type: ignore[list-item]
    Dg: list[torch.Tensor] = [None] * m  # type: ignore[list-item]
    ok = torch.ones_like(w[0], dtype=torch.bool)
    for j in range(m):
        s = w[j] + lam * diag_pen[j]
        ref = s
        for k in range(max(j - d, 0), j):
            lk = L[j][j - k]
            s = s - lk * lk * Dg[k]
        ok &= (s > 1e-13 * ref) & (s > 0.0)
        Dg[j] = s
        for i in range(j + 1, min(j + d + 1, m)):
            a = lam * off[i - j, j]
            for k in range(max(i - d, 0), j):
                a = a - L[i][i - k] * L[j][j - k] * Dg[k]
            L[i][i - j] = a / s
    z: list[torch.Tensor] = [None] * m  # type: ignore[list-item]
    for i in range(m):
        s = rhs[i]
        for k in range(max(i - d, 0), i):
            s = s - L[i][i - k] * z[k]
        z[i] = s
    for i in range(m):
        z[i] = z[i] / Dg[i]
    for i in range(m - 1, -1, -1):
        s = z[i]
        for k in range(i + 1, min(i + d + 1, m)):
            s = s - L[k][k - i] * z[k]
        z[i] = s
    return z, ok


@torch.no_grad()
def whittaker_fill(
    y: np.ndarray,
    wts: np.ndarray | None,
    in_idx: np.ndarray,
    out_idx: np.ndarray,
    m: int,
    pen: np.ndarray,
    d: int,
    lam: float,
    p: float,
    max_iter: int,
    device: str,
    hold: bool = False,
) -> tuple[np.ndarray, int]:
    """Whittaker smoothing of every row of ``y`` with a fixed ``lam`` (``_gapfill_numba.whittaker_fill``
    with ``mode=0``) on a working grid of ``m`` positions.

    ``wts`` (shape of ``y``) or None (all ones): NaN in ``y`` and weights that are not > 0 leave the
    observation out. ``pen`` is ``D'D`` in lower band form ``(d + 1, m)``. ``p > 0`` turns on
    asymmetric weights; ``hold`` holds the curve's value at the first / last valid observation
    before / after it (as ``_gapfill_numba.whittaker_fill``). Returns ``(n_out, n_pix)`` and the number of pixels left NaN (fewer than
    ``max(d, 1)`` valid observations, or a singular system).
    """
    yt = _time_major(y, device)  # (n_in, B)
    n_in, B = yt.shape
    valid = ~torch.isnan(yt)
    if wts is None:
        wi = torch.ones_like(yt)
    else:
        wi = _time_major(np.broadcast_to(wts, y.shape), device)
    take = valid & (wi > 0.0)
    zero = torch.zeros((), dtype=torch.float64, device=device)
    yv = torch.where(take, yt, zero)
    wv = torch.where(take, wi, zero)
    nv = take.sum(0)
    # scatter the observations onto the working grid (positions without input: weight 0)
    zeros = torch.zeros(B, dtype=torch.float64, device=device)
    yw: list[torch.Tensor] = [zeros] * m
    w: list[torch.Tensor] = [zeros] * m
    for i, j in enumerate(np.asarray(in_idx).tolist()):
        yw[j] = yv[i]
        w[j] = wv[i]
    pen = np.asarray(pen, dtype=np.float64)
    diag_pen = pen[0]
    rhs = [w[i] * yw[i] for i in range(m)]
    z, ok = _factor_solve(w, pen, diag_pen, lam, d, rhs)
    if p > 0.0:
        wa = w
        for _ in range(max_iter):
            new = [torch.where(w[i] > 0.0, w[i] * torch.where(yw[i] > z[i], p, 1.0 - p), w[i])
                   for i in range(m)]  # fmt: skip
            changed = torch.zeros(B, dtype=torch.bool, device=device)
            for i in range(m):
                changed |= new[i] != wa[i]
            changed &= ok
            if not bool(changed.any()):
                break
            wa = new
            rhs = [wa[i] * yw[i] for i in range(m)]
            z, ok_i = _factor_solve(wa, pen, diag_pen, lam, d, rhs)
            ok &= ok_i
    ok &= nv >= max(d, 1)
    out = torch.stack([z[j] for j in np.asarray(out_idx).tolist()])  # (n_out, B)
    if hold:
        # grid position of each pixel's first / last valid observation, and the curve there
        pos = torch.as_tensor(np.asarray(in_idx), dtype=torch.int64, device=device).unsqueeze(1)
        big = torch.full_like(pos, m).expand(n_in, B)
        first = torch.where(take, pos, big).amin(0)
        last = torch.where(take, pos, -1 - big).amax(0)
        zs = torch.stack(z)  # (m, B)
        cols = torch.arange(B, device=device)
        at_first = zs[first.clamp(0, m - 1), cols]
        at_last = zs[last.clamp(0, m - 1), cols]
        o_idx = torch.as_tensor(np.asarray(out_idx), dtype=torch.int64, device=device).unsqueeze(1)
        out = torch.where(o_idx < first.unsqueeze(0), at_first.unsqueeze(0), out)
        out = torch.where(o_idx > last.unsqueeze(0), at_last.unsqueeze(0), out)
    out = torch.where(ok.unsqueeze(0), out, torch.full_like(out, float("nan")))
    return out.cpu().numpy(), int((~ok).sum())
