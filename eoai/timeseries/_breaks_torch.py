"""torch backend of :func:`eoai.timeseries.breaks.detect_breaks` (BFAST Monitor on CPU or GPU).

Same statistics and outputs as the numba kernels of :mod:`._breaks_numba` (:func:`._breaks_numba.run_kernel`),
written as tensor operations over a batch of pixels (pixels x time) so that they run on a CUDA
GPU (or on the CPU with ``device="torch"``):

- validity as 0/1 weights (``NaN`` = invalid), the valid observations of each pixel compacted
  by a cumulative sum and a scatter of their time indices, values gathered from them;
- ROC history: the reverse-ordered recursive residuals by Givens QR updates of ``R`` (k x k per
  pixel, the pixels as the last, contiguous axis), a loop over the history's dates with tensor
  operations across pixels (an invalid observation is a zero row, a no-op), then the CUSUM and
  its first boundary crossing by cumulative sums;
- history fit: batched normal equations (``X'WX`` as one matrix product of the weights with the
  design's column products), Cholesky with the degeneracy test of the numba kernel;
- MOSUM windows, exact-variance window sums (``L^-1 x`` prefix sums), magnitude (median by sort)
  and the break dating by cumulative sums and gathers over the compacted observations.

Everything runs in float64 (on CUDA too, for agreement with the CPU kernels). ``torch`` is
imported inside the functions only: importing this module (or :mod:`eoai`) does not import it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._breaks_numba import DEGENERATE, NO_DATA, NO_MONITORING, OK, SHORT_HISTORY
from ._device import resolve_device  # noqa: F401  (re-exported for callers and tests)

_TORCH_DEVICES = ("torch", "cuda")
#: pixels per batch: bounds the (pixels, time, k) tensors of the exact-variance window sums
BATCH = 16384


def run_kernel(
    Y: np.ndarray,
    X: np.ndarray,
    mon_idx: int,
    hist_idx: int,
    use_roc: bool,
    roc_lambda: float,
    h: float,
    critval: float,
    min_history: int,
    exact_var: bool = False,
    device: str = "cpu",
    batch: int = BATCH,
) -> tuple[np.ndarray, ...]:
    """As :func:`._breaks_numba.run_kernel` with torch on ``device``: ``Y`` (..., T) -> 8 arrays (...).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from eoai.timeseries import _breaks_numba
    >>> t = pd.date_range("2018-01-01", periods=120, freq="10D")
    >>> X = _breaks_numba.design_matrix(_breaks_numba.decimal_year(t.values), 1, True)
    >>> y = 0.5 + np.random.default_rng(0).normal(0, 0.02, (3, 120))
    >>> y[0, 90:] -= 0.2
    >>> from eoai.timeseries._mosum_critvals import mosum_critval
    >>> args = (80, 0, True, _breaks_numba.roc_critval(0.05), 0.25, mosum_critval(0.25, 10, 0.05), 5)
    >>> out = run_kernel(y, X, *args, device="cpu")
    >>> out[0].tolist(), out[7].tolist()
    ([True, False, False], [0, 0, 0])
    >>> ref = _breaks_numba.run_kernel(y, X, *args)  # the numba kernels
    >>> all((out[i] == ref[i]).all() for i in (0, 1, 2, 4, 5, 6, 7)), np.allclose(out[3], ref[3])
    (True, True)
    """
    import torch

    shape = Y.shape[:-1]
    T = Y.shape[-1]
    Y2 = np.asarray(Y).reshape(-1, T)
    P = Y2.shape[0]
    dev = torch.device(device)
    Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float64), device=dev)
    outs: list[list[np.ndarray]] = [[np.empty(0)] for _ in range(8)]
    with torch.no_grad():
        for p0 in range(0, P, batch):
            Yb = torch.as_tensor(np.asarray(Y2[p0 : p0 + batch], dtype=np.float64), device=dev)
            res = _batch(
                Yb,
                Xt,
                int(mon_idx),
                int(hist_idx),
                bool(use_roc),
                float(roc_lambda),
                float(h),
                float(critval),
                int(min_history),
                bool(exact_var),
            )
            for o, r in zip(outs, res, strict=True):
                o.append(r.cpu().numpy())
    dtypes = (np.bool_, np.int64, np.int64, np.float64, np.int64, np.int32, np.int32, np.int8)
    return tuple(
        np.concatenate(o).astype(d, copy=False).reshape(shape)
        for o, d in zip(outs, dtypes, strict=True)
    )


def roc_starts(Y: Any, X: Any, mon_idx: int, hist_idx: int, roc_lambda: float) -> Any:
    """Reverse-ordered recursive CUSUM start per pixel (tensor version of ``roc_starts_general``).

    ``Y`` (P, T) and ``X`` (T, k) are float64 tensors; returns the start (an index into each
    pixel's valid history from ``hist_idx`` on, 0 = the whole history) as an int64 tensor.
    """
    import torch

    P = Y.shape[0]
    k = X.shape[1]
    dev = Y.device
    nt = mon_idx - hist_idx
    f64 = torch.float64
    R = torch.zeros((k, k, P), dtype=f64, device=dev)  # Givens R, pixels last (contiguous)
    z = torch.zeros((k, P), dtype=f64, device=dev)  # Q'y
    u = torch.zeros((k, P), dtype=f64, device=dev)
    cnt = torch.zeros(P, dtype=f64, device=dev)
    W = torch.full((max(nt, 1), P), math.nan, dtype=f64, device=dev)  # recursive residuals
    hist = Y[:, hist_idx:mon_idx]
    any_valid = (~torch.isnan(hist)).any(0).cpu().numpy()  # dates with no valid pixel: no-ops
    Xcpu = X.cpu().numpy()
    for r in range(nt):
        t = mon_idx - 1 - r
        if not any_valid[t - hist_idx]:
            continue
        v = Y[:, t]
        ok = ~torch.isnan(v)
        okf = ok.to(f64)
        yy = torch.where(ok, v, 0.0)
        x = Xcpu[t]
        diag = torch.diagonal(R).T  # (k, P)
        adiag = diag.abs()
        rmax = adiag.amax(0)
        sing = (adiag <= 1e-9 * rmax).any(0)
        # u = R^-T x (forward substitution), prediction u'z and the residual's variance factor
        for i in range(k):
            s = x[i] - (R[:i, i] * u[:i]).sum(0) if i else torch.full_like(cnt, x[i])
            u[i] = s / R[i, i]
        pred = (u * z).sum(0)
        uu = (u * u).sum(0)
        rec = ok & (cnt >= k) & ~sing
        W[r] = torch.where(rec, (yy - pred) / torch.sqrt(1.0 + uu), math.nan)
        # Givens QR update with the row x (a zero row where the observation is invalid)
        row = torch.as_tensor(x, device=dev)[:, None] * okf[None, :]
        for i in range(k):
            a = R[i, i]
            b = row[i]
            rr = torch.sqrt(a * a + b * b)
            nz = rr > 0.0
            rinv = torch.where(nz, 1.0 / torch.where(nz, rr, 1.0), 0.0)
            c = torch.where(nz, a * rinv, 1.0)
            sn = b * rinv
            R[i, i] = torch.where(nz, rr, a)
            zi = z[i].clone()
            z[i] = c * zi + sn * yy
            yy = c * yy - sn * zi
            if i + 1 < k:
                rij = R[i, i + 1 :].clone()
                rj = row[i + 1 :].clone()
                R[i, i + 1 :] = c * rij + sn * rj
                row[i + 1 :] = c * rj - sn * rij
        cnt += okf
    if nt <= 0:
        return torch.zeros(P, dtype=torch.int64, device=dev)
    W = W[:nt]
    recm = ~torch.isnan(W)
    mm = recm.sum(0).to(f64)
    W0 = torch.where(recm, W, 0.0)
    mean = torch.where(mm > 0, W0.sum(0) / mm.clamp(min=1.0), 0.0)
    var = torch.where(recm, (W - mean) ** 2, 0.0).sum(0)
    sd = torch.where(mm > 1, torch.sqrt(var / (mm - 1.0).clamp(min=1.0)), 0.0)
    good = (cnt > k + 2.0) & (mm >= 3.0) & (sd > 0.0)
    scale = torch.where(good, 1.0 / (torch.where(good, sd, 1.0) * torch.sqrt(mm)), 0.0)
    acc = torch.cumsum(W0, 0)
    ii = torch.cumsum(recm.to(f64), 0)
    bound = roc_lambda * (1.0 + 2.0 * ii / mm.clamp(min=1.0))
    cross = recm & ((acc * scale).abs() > bound)
    has = cross.any(0) & good
    first = torch.argmax(cross.to(torch.uint8), dim=0)
    ii_first = ii.gather(0, first[None, :])[0]
    return torch.where(has, (mm - ii_first + 1.0), 0.0).to(torch.int64)


def _batch(Y, X, mon_idx, hist_idx, use_roc, roc_lambda, h, critval, min_history, exact_var):
    """BFAST Monitor of a batch ``Y`` (P, T) of pixels; the 8 outputs as tensors (P,)."""
    import torch

    P, T = Y.shape
    k = X.shape[1]
    dev = Y.device
    f64, i64 = torch.float64, torch.int64
    valid = ~torch.isnan(Y)
    Y0 = torch.where(valid, Y, 0.0)
    n_valid = valid.sum(1)

    # compacted valid observations from hist_idx on: idx[p, a] = time of the a-th
    Tn = T - hist_idx
    vv = valid[:, hist_idx:]
    pos = torch.cumsum(vv.to(i64), 1) - 1
    tgrid = torch.arange(hist_idx, T, device=dev).expand(P, Tn)
    idx = torch.full((P, Tn + 1), T - 1, dtype=i64, device=dev)
    idx.scatter_(1, torch.where(vv, pos, Tn), tgrid)  # invalid ones go to the spare column
    idx = idx[:, :Tn]
    nh_c = vv[:, : mon_idx - hist_idx].sum(1)
    nv = vv.sum(1)

    # stable history start (index into the compacted history)
    if use_roc:
        s0 = roc_starts(Y, X, mon_idx, hist_idx, roc_lambda)
        s0 = torch.where(s0 < nh_c, s0, 0)
    else:
        s0 = torch.zeros(P, dtype=i64, device=dev)
    nh = nh_c - s0
    n = nv - s0
    start_t = idx.gather(1, s0.clamp(max=Tn - 1)[:, None])[:, 0]
    start_idx = torch.where((nh > 0) & (n_valid > 0), start_t, -1)
    n_history = torch.where(n_valid > 0, nh, 0).to(torch.int32)
    K = torch.floor(h * nh.to(f64)).to(i64)
    short = (nh <= k) | (K <= 1) | (nh < min_history)

    # history fit: normal equations X'WX, X'Wy over valid t in [t0, mon_idx)
    tt = torch.arange(T, device=dev)
    wh = valid & (tt[None, :] >= start_t[:, None]) & (tt[None, :] < mon_idx)
    whf = wh.to(f64)
    XX = (X[:, :, None] * X[:, None, :]).reshape(T, k * k)
    A = (whf @ XX).reshape(P, k, k)
    b = (whf * Y0) @ X  # (P, k)
    L = torch.zeros_like(A)
    dinv = torch.zeros((P, k), dtype=f64, device=dev)
    ok = torch.ones(P, dtype=torch.bool, device=dev)
    for j in range(k):
        s = A[:, j, j] - (L[:, j, :j] ** 2).sum(1)
        ok = ok & ~(s <= 1e-12 * (A[:, j, j].abs() + 1e-300))
        d = torch.sqrt(torch.where(s > 0, s, 1.0))
        L[:, j, j] = d
        dinv[:, j] = 1.0 / d
        if j + 1 < k:
            s2 = A[:, j + 1 :, j] - (L[:, j + 1 :, :j] * L[:, j : j + 1, :j]).sum(2)
            L[:, j + 1 :, j] = s2 * dinv[:, j : j + 1]
    c = torch.zeros((P, k), dtype=f64, device=dev)
    for i in range(k):  # L c = b
        c[:, i] = (b[:, i] - (L[:, i, :i] * c[:, :i]).sum(1)) * dinv[:, i]
    beta = torch.zeros((P, k), dtype=f64, device=dev)
    for i in range(k - 1, -1, -1):  # L' beta = c
        beta[:, i] = (c[:, i] - (L[:, i + 1 :, i] * beta[:, i + 1 :]).sum(1)) * dinv[:, i]

    # residuals of the compacted observations from the history start on
    ez = Y0 - beta @ X.T  # (P, T)
    ar = torch.arange(Tn, device=dev)[None, :]
    inn = (ar >= s0[:, None]) & (ar < nv[:, None])
    e = torch.where(inn, ez.gather(1, idx), 0.0)
    CS = torch.nn.functional.pad(torch.cumsum(e, 1), (1, 0))  # (P, Tn + 1)
    inhist = inn & (ar < nh_c[:, None])
    rss = torch.where(inhist, e * e, 0.0).sum(1)
    nhf = nh.to(f64)
    sigma = torch.sqrt(rss / torch.where(short, 1.0, nhf - k))
    nomon = n == nh
    zero_sigma = ~(sigma > 0.0)

    status = torch.full((P,), OK, dtype=torch.int8, device=dev)
    status = torch.where(zero_sigma, DEGENERATE, status)
    status = torch.where(nomon, NO_MONITORING, status)
    status = torch.where(~ok, DEGENERATE, status)
    status = torch.where(short, SHORT_HISTORY, status)
    status = torch.where(n_valid == 0, NO_DATA, status).to(torch.int8)
    run = status == OK

    # magnitude: median residual over the monitoring period (mean of the middle two if even)
    inmon = (ar >= nh_c[:, None]) & (ar < nv[:, None])
    srt = torch.sort(torch.where(inmon, e, math.inf), dim=1).values
    nm = (nv - nh_c).clamp(min=1)
    lo = srt.gather(1, ((nm - 1) // 2)[:, None])[:, 0]
    hi = srt.gather(1, (nm // 2)[:, None])[:, 0]
    magnitude = torch.where(run, (lo + hi) / 2, math.nan)

    # OLS-MOSUM: window (a - K, a] of compacted observations for a in [nh_c, nv)
    Kc = K.clamp(min=1)[:, None]
    a1 = (ar + 1).clamp(max=Tn).expand(P, Tn)
    a0 = (ar + 1 - Kc).clamp(min=0, max=Tn)
    proc = (CS.gather(1, a1) - CS.gather(1, a0)) / (
        torch.where(run, sigma, 1.0) * torch.sqrt(nhf.clamp(min=1.0))
    )[:, None]
    if exact_var:
        Lg = torch.where(ok[:, None, None], L, torch.eye(k, dtype=f64, device=dev))
        jlo = (nh_c + 1 - K)[:, None]
        inz = (ar >= jlo) & (ar < nv[:, None])
        Xc = X[idx]  # (P, Tn, k) design rows of the compacted observations
        Z = torch.linalg.solve_triangular(Lg, Xc.transpose(1, 2), upper=False)  # (P, k, Tn)
        Z = torch.where(inz[:, None, :], Z, 0.0)
        CZ = torch.nn.functional.pad(torch.cumsum(Z, 2), (1, 0))  # (P, k, Tn + 1)
        del Xc, Z
        c0 = CZ.gather(2, a0[:, None, :].expand(P, k, Tn))
        va = CZ.gather(2, a1[:, None, :].expand(P, k, Tn)) - c0
        ci = CZ.gather(2, nh_c.clamp(max=Tn)[:, None, None].expand(P, k, 1))
        aga = (va * va).sum(1)
        agh = (va * (ci - c0)).sum(1)
        del CZ, c0, va
        j0 = ar + 1 - K[:, None]
        kh = torch.where(j0 < nh_c[:, None], nh_c[:, None] - j0, 0).to(f64)
        agh = torch.where(kh > 0, agh, 0.0)
        Kf = K.to(f64)[:, None]
        nhs = nhf.clamp(min=1.0)[:, None]
        var_exact = Kf - 2.0 * agh + aga
        var_ref = Kf - 2.0 * Kf * kh / nhs + Kf * Kf / nhs
        proc = proc * torch.sqrt(var_ref / var_exact)
    ratio = (ar - s0[:, None] + 1.0) / nhf.clamp(min=1.0)[:, None]
    lp = torch.where(ratio <= math.e, 1.0, torch.log(ratio.clamp(min=1e-300)))
    cross = inmon & (proc.abs() > critval * torch.sqrt(2.0 * lp)) & run[:, None]
    brk = cross.any(1)
    ad = torch.argmax(cross.to(torch.uint8), dim=1)  # first crossing (absolute compact index)
    detect_idx = torch.where(brk, idx.gather(1, ad[:, None])[:, 0], -1)

    # break date: least-squares mean-shift point in [nh_c, ad], mean 0 before
    aend = torch.minimum(nv, ad + K + 1)
    cs_end = CS.gather(1, aend.clamp(max=Tn)[:, None])
    ssum = cs_end - CS[:, :Tn]
    crit = ssum * ssum / (aend[:, None] - ar).clamp(min=1).to(f64)
    cand = (ar >= nh_c[:, None]) & (ar <= ad[:, None])
    crit = torch.where(cand, crit, -1.0)
    ab = torch.argmax(crit, dim=1)
    break_idx = torch.where(brk, idx.gather(1, ab[:, None])[:, 0], -1)

    return (brk, detect_idx, break_idx, magnitude, start_idx, n_valid, n_history, status)
