"""A plain per-pixel numpy translation of R's ``bfastmonitor`` (one series at a time).

It is the yardstick of the vectorised kernel in :mod:`eoai.timeseries._breaks_numba`: written independently and as
close to the R code as possible (``lm`` = :func:`numpy.linalg.lstsq`, ``recresid`` by refitting
on the first ``r - 1`` observations for every ``r``), slow on purpose of clarity. Tests compare
the kernel against it and ``benchmarks/bench_change.py`` uses it as the baseline.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
from numba import njit

from ..timeseries._breaks_numba import DEGENERATE, NO_DATA, NO_MONITORING, OK, SHORT_HISTORY


def _recresid(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    n, k = X.shape
    out = []
    for r in range(k, n):
        Xr, yr = X[:r], y[:r]
        if np.linalg.matrix_rank(Xr) < k:
            continue
        beta = np.linalg.lstsq(Xr, yr, rcond=None)[0]
        # x'(Xr'Xr)^-1 x through the QR factor (inverting Xr'Xr squares its condition number)
        # (numpy's stubs give every mode the QRResult type; mode="r" returns the R array alone)
        R = cast(np.ndarray, np.linalg.qr(Xr, mode="r"))
        u = np.linalg.solve(R.T, X[r])
        f = 1.0 + u @ u
        out.append((y[r] - X[r] @ beta) / math.sqrt(f))
    return np.asarray(out)


def history_roc(X: np.ndarray, y: np.ndarray, lam: float) -> int:
    """0-based start of the stable history (bfast's ``history_roc``)."""
    n, k = X.shape
    w = _recresid(X[::-1], y[::-1])
    m = len(w)
    if m < 3:
        return 0
    sd = np.std(w, ddof=1)
    if not sd > 0:
        return 0
    proc = np.cumsum(w) / (sd * math.sqrt(m))
    bound = lam * (1 + 2 * np.arange(1, m + 1) / m)
    cross = np.nonzero(np.abs(proc) > bound)[0]
    if cross.size == 0:
        return 0
    i = cross[0] + 1
    return m - i + 1


def bfastmonitor_pixel(
    y: np.ndarray,
    X: np.ndarray,
    mon_idx: int,
    hist_idx: int,
    use_roc: bool,
    lam: float,
    h: float,
    critval: float,
    min_history: int,
    exact_var: bool = False,
) -> dict:
    """BFAST Monitor of one series ``y`` (T,) with design ``X`` (T, k); indices into the series."""
    T, k = X.shape
    res = {
        "break": False,
        "detect_idx": -1,
        "break_idx": -1,
        "magnitude": np.nan,
        "start_idx": -1,
        "n_valid": int(np.isfinite(y).sum()),
        "n_history": 0,
        "status": OK,
    }
    if res["n_valid"] == 0:
        res["status"] = NO_DATA
        return res
    tt = np.arange(T)
    valid = np.isfinite(y) & (tt >= hist_idx)
    hist = np.nonzero(valid & (tt < mon_idx))[0]
    if use_roc and len(hist) > k + 2:
        hist = hist[history_roc(X[hist], y[hist], lam) :]
    res["n_history"] = nh = len(hist)
    if nh:
        res["start_idx"] = int(hist[0])
    K = int(math.floor(h * nh))
    if nh <= k or K <= 1 or nh < min_history:
        res["status"] = SHORT_HISTORY
        return res
    if np.linalg.matrix_rank(X[hist]) < k:
        res["status"] = DEGENERATE
        return res
    beta = np.linalg.lstsq(X[hist], y[hist], rcond=None)[0]
    obs = np.nonzero(valid & (tt >= hist[0]))[0]
    e = y[obs] - X[obs] @ beta
    sigma = math.sqrt(np.sum(e[:nh] ** 2) / (nh - k))
    if len(obs) == nh:
        res["status"] = NO_MONITORING
        return res
    if not sigma > 0:
        res["status"] = DEGENERATE
        return res
    res["magnitude"] = float(np.median(e[nh:]))
    # strucchange: process over all windows, keep those ending in the monitoring period
    proc = np.array([e[i : i + K].sum() for i in range(len(e) - K + 1)]) / (sigma * math.sqrt(nh))
    proc = proc[nh - K + 1 :]
    if exact_var:  # exact variance of each window sum relative to the intercept-only limit
        G = np.linalg.inv(X[hist].T @ X[hist])
        Xo = X[obs]
        for m, j in enumerate(range(nh, len(e))):
            win = np.arange(j - K + 1, j + 1)
            a = Xo[win].sum(axis=0)
            a_h = Xo[win[win < nh]].sum(axis=0)
            kh = int((win < nh).sum())
            var_exact = K - 2 * a @ G @ a_h + a @ G @ a
            var_ref = K - 2 * K * kh / nh + K * K / nh
            proc[m] *= math.sqrt(var_ref / var_exact)
    kk = np.arange(nh + 1, len(e) + 1) / nh
    bound = critval * np.sqrt(2 * np.where(kk <= math.e, 1.0, np.log(np.maximum(kk, 1e-300))))
    cross = np.nonzero(np.abs(proc) > bound)[0]
    if cross.size == 0:
        return res
    jd = nh + cross[0]
    res["break"] = True
    res["detect_idx"] = int(obs[jd])
    jend = min(len(e), jd + K + 1)
    crit = [e[j:jend].sum() ** 2 / (jend - j) for j in range(nh, jd + 1)]
    res["break_idx"] = int(obs[nh + int(np.argmax(crit))])
    return res


@njit(cache=True, nogil=True)
def bfm_kernel_v1(
    Y,
    X,
    mon_idx,
    hist_idx,
    s0_in,
    h,
    critval,
    min_history,
    exact_var,
    brk,
    detect_idx,
    break_idx,
    magnitude,
    start_idx,
    n_valid,
    n_history,
    status,
):  # pragma: no cover - compiled
    """First numba BFAST Monitor kernel (``Y`` (P, T), ``X`` (T, k)), the yardstick of
    :func:`eoai.timeseries._breaks_numba.bfm_kernel` in the tests: per-observation normal equations,
    triangular solves per monitoring step, ``np.median``."""
    P, T = Y.shape
    k = X.shape[1]
    idx = np.empty(T, np.int64)
    e = np.empty(T, np.float64)
    cs = np.empty(T + 1, np.float64)
    A = np.empty((k, k), np.float64)
    b = np.empty(k, np.float64)
    beta = np.empty(k, np.float64)
    tmp = np.empty(T, np.float64)
    cx = np.empty((T + 1, k), np.float64)
    va = np.empty(k, np.float64)
    vh = np.empty(k, np.float64)
    for p in range(P):
        brk[p] = False
        detect_idx[p] = -1
        break_idx[p] = -1
        magnitude[p] = np.nan
        start_idx[p] = -1
        n_history[p] = 0
        # compact the valid observations from the fixed history start on
        nv = 0
        nh_c = 0
        ntot = 0
        for t in range(T):
            v = Y[p, t]
            if v == v:  # finite test that is NaN-safe and fast
                ntot += 1
                if t >= hist_idx:
                    idx[nv] = t
                    nv += 1
                    if t < mon_idx:
                        nh_c += 1
        n_valid[p] = ntot
        if ntot == 0:
            status[p] = NO_DATA
            continue
        # ---- stable history: start given by the ROC pass (roc_starts) or 0
        s0 = s0_in[p] if s0_in[p] < nh_c else 0
        nh = nh_c - s0
        start = s0
        n_history[p] = nh
        if nh > 0:
            start_idx[p] = idx[start]
        K = int(math.floor(h * nh))
        if nh <= k or K <= 1 or nh < min_history:
            status[p] = SHORT_HISTORY
            continue
        # ---- OLS fit on the history by Cholesky of the normal equations
        A[:, :] = 0.0
        b[:] = 0.0
        for r in range(start, nh_c):
            t = idx[r]
            yv = Y[p, t]
            for i in range(k):
                xi = X[t, i]
                b[i] += xi * yv
                for j in range(i + 1):
                    A[i, j] += xi * X[t, j]
        ok = True
        for j in range(k):
            s = A[j, j]
            for q in range(j):
                s -= A[j, q] * A[j, q]
            if s <= 1e-12 * (abs(A[j, j]) + 1e-300):
                ok = False
                break
            d = math.sqrt(s)
            A[j, j] = d
            for i in range(j + 1, k):
                s2 = A[i, j]
                for q in range(j):
                    s2 -= A[i, q] * A[j, q]
                A[i, j] = s2 / d
        if not ok:
            status[p] = DEGENERATE
            continue
        for i in range(k):  # L c = b
            s = b[i]
            for q in range(i):
                s -= A[i, q] * beta[q]
            beta[i] = s / A[i, i]
        for i in range(k - 1, -1, -1):  # L' beta = c
            s = beta[i]
            for q in range(i + 1, k):
                s -= A[q, i] * beta[q]
            beta[i] = s / A[i, i]
        # residuals of all valid obs from the history start on
        n = nv - start
        rss = 0.0
        cs[0] = 0.0
        for j in range(n):
            t = idx[start + j]
            pred = 0.0
            for i in range(k):
                pred += X[t, i] * beta[i]
            ej = Y[p, t] - pred
            e[j] = ej
            cs[j + 1] = cs[j] + ej
            if j < nh:
                rss += ej * ej
        sigma = math.sqrt(rss / (nh - k))
        if n == nh:
            status[p] = NO_MONITORING
            continue
        if not sigma > 0.0:
            status[p] = DEGENERATE
            continue
        status[p] = OK
        # magnitude: median residual over the monitoring period
        nm = n - nh
        for j in range(nm):
            tmp[j] = e[nh + j]
        magnitude[p] = np.median(tmp[:nm])
        # ---- OLS-MOSUM monitoring
        denom = sigma * math.sqrt(nh)
        if exact_var:
            # cumulative sums of the design rows over the compacted valid observations
            for i in range(k):
                cx[0, i] = 0.0
            for j in range(n):
                t = idx[start + j]
                for i in range(k):
                    cx[j + 1, i] = cx[j, i] + X[t, i]
        jd = -1
        for j in range(nh, n):
            proc = (cs[j + 1] - cs[j + 1 - K]) / denom
            if exact_var:
                # window (j-K, j]: exact variance of its residual sum under no change, relative
                # to the intercept-only limit the boundary was derived for
                j0 = j + 1 - K
                kh = nh - j0 if j0 < nh else 0
                for i in range(k):
                    va[i] = cx[j + 1, i] - cx[j0, i]
                    vh[i] = cx[nh, i] - cx[j0, i] if kh > 0 else 0.0
                for i in range(k):  # L^-1 a and L^-1 a_hist
                    s = va[i]
                    s2 = vh[i]
                    for q in range(i):
                        s -= A[i, q] * va[q]
                        s2 -= A[i, q] * vh[q]
                    va[i] = s / A[i, i]
                    vh[i] = s2 / A[i, i]
                aga = 0.0
                agh = 0.0
                for i in range(k):
                    aga += va[i] * va[i]
                    agh += va[i] * vh[i]
                var_exact = K - 2.0 * agh + aga
                var_ref = K - 2.0 * K * kh / nh + K * K / nh
                proc *= math.sqrt(var_ref / var_exact)
            ratio = (j + 1.0) / nh
            lp = 1.0 if ratio <= math.e else math.log(ratio)
            if abs(proc) > critval * math.sqrt(2.0 * lp):
                jd = j
                break
        if jd < 0:
            continue
        brk[p] = True
        detect_idx[p] = idx[start + jd]
        # ---- date it: least-squares mean-shift point in [nh, jd], known mean 0 before
        jend = min(n, jd + K + 1)
        best = -1.0
        jb = jd
        for j in range(nh, jd + 1):
            s = cs[jend] - cs[j]
            crit = s * s / (jend - j)
            if crit > best:
                best = crit
                jb = j
        break_idx[p] = idx[start + jb]


def run_kernel_v1(
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
) -> tuple[np.ndarray, ...]:
    """:func:`eoai.timeseries._breaks_numba.run_kernel` with the first kernels (``roc_starts_general``,
    :func:`bfm_kernel_v1`): the "before" of ``benchmarks/bench_change.py``."""
    from ..timeseries._breaks_numba import roc_starts_general

    Y2 = np.ascontiguousarray(Y.reshape(-1, Y.shape[-1]))
    P = Y2.shape[0]
    X = np.ascontiguousarray(X, dtype=np.float64)
    s0 = np.zeros(P, np.int64)
    if use_roc:
        roc_starts_general(Y2, X, int(mon_idx), int(hist_idx), float(roc_lambda), s0)
    outs = (
        np.zeros(P, np.bool_),
        np.empty(P, np.int64),
        np.empty(P, np.int64),
        np.empty(P, np.float64),
        np.empty(P, np.int64),
        np.empty(P, np.int32),
        np.empty(P, np.int32),
        np.empty(P, np.int8),
    )
    bfm_kernel_v1(
        Y2, X, int(mon_idx), int(hist_idx), s0, float(h), float(critval), int(min_history),
        bool(exact_var), *outs,
    )  # fmt: skip
    return tuple(o.reshape(Y.shape[:-1]) for o in outs)
