"""A plain per-pixel numpy translation of R's ``bfastmonitor`` (one series at a time).

It is the yardstick of the vectorised kernel in :mod:`._bfast`: written independently and as
close to the R code as possible (``lm`` = :func:`numpy.linalg.lstsq`, ``recresid`` by refitting
on the first ``r - 1`` observations for every ``r``), slow on purpose of clarity. Tests compare
the kernel against it and ``benchmarks/bench_change.py`` uses it as the baseline.
"""

from __future__ import annotations

import math

import numpy as np

from ._bfast import DEGENERATE, NO_DATA, NO_MONITORING, OK, SHORT_HISTORY


def _recresid(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    n, k = X.shape
    out = []
    for r in range(k, n):
        Xr, yr = X[:r], y[:r]
        if np.linalg.matrix_rank(Xr) < k:
            continue
        beta = np.linalg.lstsq(Xr, yr, rcond=None)[0]
        # x'(Xr'Xr)^-1 x through the QR factor (inverting Xr'Xr squares its condition number)
        u = np.linalg.solve(np.linalg.qr(Xr, mode="r").T, X[r])
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
