"""Numerical core of :func:`eoai.timeseries.breaks.detect_breaks` (BFAST Monitor).

The statistics follow R's ``bfast::bfastmonitor`` with ``type = "OLS-MOSUM"`` and
``strucchange`` (Zeileis, Leisch, Hornik & Kleiber 2002; Verbesselt, Zeileis & Herold 2012):

- design: intercept, optional linear trend and ``order`` harmonic pairs ``cos/sin(2 pi j t)`` of the
  fractional year ``t`` (``bfastpp``'s ``response ~ trend + harmon``);
- stable history (``history="roc"``): the reverse-ordered recursive CUSUM of ``history_roc``:
  recursive residuals of the history read backwards in time, their CUSUM process scaled by
  ``sd(w) * sqrt(n - k)``, the boundary ``lambda * (1 + 2 i / m)`` of strucchange's
  ``boundary.efp`` where ``lambda`` solves the Brownian-motion crossing probability of
  ``pvalue.efp`` (``lambda = 0.948`` at level 0.05); the history starts one observation after the
  first (backwards) crossing;
- monitoring: residuals of the history OLS fit, OLS-MOSUM process over windows of
  ``floor(h * n)`` valid observations divided by ``sigma * sqrt(n)`` (``mefp``/``monitor``), boundary
  ``critval * sqrt(2 * logPlus(k / n))`` with ``critval`` from :mod:`._mosum_critvals`;
- magnitude: median residual over the monitoring period.

Every pixel uses its own valid (finite) observations only. The kernels are numba loops that release
the GIL so dask threads run chunks in parallel. The ROC pass (:func:`roc_starts`) runs blocks of
``NL`` pixels as SIMD lanes (the dates, hence design rows, are shared; an invalid observation is a
no-op lane; a date invalid in every lane is skipped) over stack-allocated scratch arrays (which
LLVM knows alias nothing, so the lane loops vectorise): Givens-rotation QR updates while the short
first windows are ill-conditioned, then covariance-form recursive least squares (one division and
one square root per step). :func:`bfm_kernel` then fits the history by Cholesky of the normal
equations (``X'X`` from prefix sums over time of the design products, shared by all pixels, less
the rows of the invalid dates) and runs the MOSUM per pixel, its residuals and exact-variance
window sums as vectorised loops. The first versions of both kernels (``roc_starts_general`` here, still used for large designs;
``bfm_kernel_v1`` in :mod:`eoai.testing.bfast_reference`) are the yardsticks of the tests and benchmark.

On top of bfastmonitor, each detected break is also *dated*: bfastmonitor reports the observation
where the MOSUM crosses its boundary (``detection``), which lags the change by a few observations.
The break date is the least-squares change point of a shift in the mean of the residuals between
the monitoring start and ``detection + floor(h * n)`` (the history model gives mean 0 before it).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir as llvm_ir
from numba import njit, types
from numba.extending import intrinsic

# status codes of the kernel (flag_values of the output ``status``)
OK = 0
NO_DATA = 1
SHORT_HISTORY = 2
NO_MONITORING = 3
DEGENERATE = 4
STATUS_MEANINGS = (
    "monitored no_valid_observations history_too_short no_observation_in_monitoring_period "
    "degenerate_history_fit"
)


def decimal_year(times: np.ndarray) -> np.ndarray:
    """Fractional years (``2020.5`` = 2 July 2020) of datetime64 values, like lubridate's."""
    import pandas as pd

    idx = pd.DatetimeIndex(times)
    start = pd.to_datetime(idx.year.astype(str) + "-01-01")
    end = pd.to_datetime((idx.year + 1).astype(str) + "-01-01")
    frac = (idx - start) / (end - start)
    return np.asarray(idx.year, dtype=np.float64) + np.asarray(frac, dtype=np.float64)


def design_matrix(t_years: np.ndarray, order: int, trend: bool) -> np.ndarray:
    """Season-trend design ``[1, (trend), cos(2 pi j t), sin(2 pi j t) for j=1..order]``.

    The trend column is centred years (OLS residuals do not depend on that affine choice; it
    keeps the normal equations well conditioned).
    """
    t = np.asarray(t_years, dtype=np.float64)
    cols = [np.ones_like(t)]
    if trend:
        cols.append(t - np.floor(t.mean()))
    for j in range(1, order + 1):
        cols.append(np.cos(2 * np.pi * j * t))
    for j in range(1, order + 1):
        cols.append(np.sin(2 * np.pi * j * t))
    return np.stack(cols, axis=1)


def _bm_pvalue(x: float) -> float:
    """strucchange ``pvalue.efp`` for a Brownian motion, max functional, standard boundary."""
    from scipy.special import ndtr

    if x < 0.3:
        return 1 - 0.1465 * x
    return 2 * (
        1
        - ndtr(3 * x)
        + math.exp(-4 * x * x) * (ndtr(x) + ndtr(5 * x) - 1)
        - math.exp(-16 * x * x) * (1 - ndtr(x))
    )


def roc_critval(level: float) -> float:
    """Critical value ``lambda`` of the recursive-CUSUM boundary ``lambda (1 + 2t)`` at ``level``."""
    from scipy.optimize import brentq

    return float(brentq(lambda y: _bm_pvalue(y) - level, 0.3, 20.0, xtol=1e-12))


# --------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------


@njit(
    cache=True,
    nogil=True,
    error_model="numpy",
    fastmath={"nsz", "arcp", "contract", "afn", "reassoc"},
)
def bfm_kernel(
    Y,
    XT,
    XTr,
    XXr,
    CXX,
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
    """BFAST Monitor over pixels: ``Y`` (P, T); results written into the outputs.

    The design, shared by all pixels, comes as ``XTr`` (T, k), its transpose ``XT`` (k, T), the
    products ``XXr`` (T, k (k + 1) / 2) of its columns (``x_i x_j``, j <= i) and their prefix
    sums over time ``CXX`` (T + 1, k (k + 1) / 2): ``X'X`` of a history is a difference of two
    prefix sums less the rows of its invalid dates, and the residuals and the transformed window
    sums of the exact variance are loops over time that vectorise.
    """
    P, T = Y.shape
    k = XT.shape[0]
    kk = XXr.shape[1]
    idx = np.empty(T + 1, np.int64)
    inv = np.empty(T + 1, np.int64)
    Ap = np.empty(kk, np.float64)
    b2 = np.empty(k, np.float64)
    ez = np.empty(T, np.float64)
    e = np.empty(T, np.float64)
    cs = np.empty(T + 1, np.float64)
    tmp = np.empty(T, np.float64)
    Zc = np.empty((k, T), np.float64)
    Cz = np.empty((k, T + 1), np.float64)
    aga = np.empty(T, np.float64)
    agh = np.empty(T, np.float64)
    A = np.empty((k, k), np.float64)
    dinv = np.empty(k, np.float64)
    b = np.empty(k, np.float64)
    beta = np.empty(k, np.float64)
    for p in range(P):
        brk[p] = False
        detect_idx[p] = -1
        break_idx[p] = -1
        magnitude[p] = np.nan
        start_idx[p] = -1
        n_history[p] = 0
        # compact the valid observations from the fixed history start on (branch-free)
        ntot = 0
        for t in range(min(hist_idx, T)):
            v = Y[p, t]
            ntot += 1 if v == v else 0
        nv = 0
        ni = 0
        for t in range(hist_idx, mon_idx):
            v = Y[p, t]
            good = v == v
            idx[nv] = t
            nv += 1 if good else 0
            inv[ni] = t  # invalid dates of the history
            ni += 0 if good else 1
        nh_c = nv
        for t in range(mon_idx, T):
            v = Y[p, t]
            idx[nv] = t
            nv += 1 if v == v else 0
        ntot += nv
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
        # ---- OLS fit on the history: normal equations (X'X from the prefix sums of the rows'
        # products less the rows of the invalid dates, X'y from the valid ones), Cholesky
        t0 = idx[start]
        for q in range(kk):
            Ap[q] = CXX[mon_idx, q] - CXX[t0, q]
        i0 = 0
        while i0 < ni and inv[i0] < t0:
            i0 += 1
        for r in range(i0, ni):
            t = inv[r]
            for q in range(kk):
                Ap[q] -= XXr[t, q]
        for i in range(k):
            b[i] = 0.0
            b2[i] = 0.0
        r = start
        while r + 1 < nh_c:  # two accumulators
            t = idx[r]
            t2 = idx[r + 1]
            v = Y[p, t]
            v2 = Y[p, t2]
            for i in range(k):
                b[i] += v * XTr[t, i]
                b2[i] += v2 * XTr[t2, i]
            r += 2
        if r < nh_c:
            t = idx[r]
            v = Y[p, t]
            for i in range(k):
                b[i] += v * XTr[t, i]
        q = 0
        for i in range(k):
            b[i] += b2[i]
            for j in range(i + 1):
                A[i, j] = Ap[q]
                q += 1
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
            dinv[j] = 1.0 / d
            for i in range(j + 1, k):
                s2 = A[i, j]
                for q in range(j):
                    s2 -= A[i, q] * A[j, q]
                A[i, j] = s2 * dinv[j]
        if not ok:
            status[p] = DEGENERATE
            continue
        for i in range(k):  # L c = b
            s = b[i]
            for q in range(i):
                s -= A[i, q] * beta[q]
            beta[i] = s * dinv[i]
        for i in range(k - 1, -1, -1):  # L' beta = c
            s = beta[i]
            for q in range(i + 1, k):
                s -= A[q, i] * beta[q]
            beta[i] = s * dinv[i]
        # residuals on the time axis from the history start on, then of the valid obs
        b0 = beta[0]
        for t in range(t0, T):
            ez[t] = Y[p, t] - b0 * XT[0, t]
        for i in range(1, k):
            bi = beta[i]
            for t in range(t0, T):
                ez[t] -= bi * XT[i, t]
        n = nv - start
        rss = 0.0
        run = 0.0
        cs[0] = 0.0
        for j in range(n):
            ej = ez[idx[start + j]]
            e[j] = ej
            run += ej
            cs[j + 1] = run
        for j in range(nh):
            rss += e[j] * e[j]
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
        magnitude[p] = _median_inplace(tmp, nm)
        # ---- OLS-MOSUM monitoring
        denom = sigma * math.sqrt(nh)
        jlo = nh + 1 - K  # first window start in the monitoring period
        if exact_var:
            # window sums of L^-1 x_r: Cz[r + 1 - jlo] - Cz[j0 - jlo] for r in [jlo, n)
            m = n - jlo
            for i in range(k):
                for r in range(m):
                    Zc[i, r] = XT[i, idx[start + jlo + r]]
            for i in range(k):
                for q in range(i):
                    lq = A[i, q]
                    for r in range(m):
                        Zc[i, r] -= lq * Zc[q, r]
                di = dinv[i]
                for r in range(m):
                    Zc[i, r] *= di
            for i in range(k):
                Cz[i, 0] = 0.0
            for r in range(m):
                for i in range(k):
                    Cz[i, r + 1] = Cz[i, r] + Zc[i, r]
            # per monitoring step j: a = window sum, a_h = its history part (in L^-1 units)
            nm1 = n - nh
            for j in range(nm1):
                aga[j] = 0.0
                agh[j] = 0.0
            ch = nh - jlo
            for i in range(k):
                ci = Cz[i, ch]
                for j in range(nm1):  # window (j + nh - K, j + nh]: Cz columns j, j + K
                    c0 = Cz[i, j]
                    va = Cz[i, j + K] - c0
                    aga[j] += va * va
                    agh[j] += va * (ci - c0)
        jd = -1
        for j in range(nh, n):
            proc = (cs[j + 1] - cs[j + 1 - K]) / denom
            if exact_var:
                # window (j-K, j]: exact variance of its residual sum under no change, relative
                # to the intercept-only limit the boundary was derived for
                j0 = j + 1 - K
                kh = nh - j0 if j0 < nh else 0
                aga_j = aga[j - nh]
                agh_j = agh[j - nh] if kh > 0 else 0.0
                var_exact = K - 2.0 * agh_j + aga_j
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


@njit(cache=True, nogil=True)
def _median_inplace(a, n):  # pragma: no cover - compiled
    """Median of ``a[:n]`` (reordered in place), as ``np.median``: mean of the middle two."""
    half = n >> 1
    if n & 1:
        return _select(a, half, n)
    lo = _select(a, half - 1, n)
    # the smallest of the upper part is the other middle value
    hi = a[half]
    for i in range(half + 1, n):
        hi = a[i] if a[i] < hi else hi
    return (lo + hi) / 2


@njit(cache=True, nogil=True)
def _select(a, kth, n):  # pragma: no cover - compiled
    """``kth`` smallest of ``a[:n]`` by quickselect; ``a[:kth] <= a[kth] <= a[kth + 1:n]``."""
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) >> 1
        # median of three as pivot, moved to a[hi]
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[mid] < a[hi]:
            a[mid], a[hi] = a[hi], a[mid]
        pivot = a[hi]
        store = lo
        for i in range(lo, hi):  # branch-free Lomuto: always swap, advance when smaller
            x = a[i]
            a[i] = a[store]
            a[store] = x
            store += 1 if x < pivot else 0
        a[store], a[hi] = a[hi], a[store]
        if store == kth:
            return a[store]
        if store < kth:
            lo = store + 1
        else:
            hi = store - 1
    return a[kth]


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
) -> tuple[np.ndarray, ...]:
    """Apply :func:`bfm_kernel` to ``Y`` of shape (..., T); returns 8 arrays of shape (...)."""
    shape = Y.shape[:-1]
    Y2 = np.ascontiguousarray(Y.reshape(-1, Y.shape[-1]))
    if Y2.dtype not in (np.float32, np.float64):
        Y2 = Y2.astype(np.float64)
    P = Y2.shape[0]
    X = np.ascontiguousarray(X, dtype=np.float64)
    k = X.shape[1]
    XT = np.ascontiguousarray(X.T)
    il, jl = np.tril_indices(k)
    XX = np.ascontiguousarray(X[:, il] * X[:, jl])  # x_i x_j, j <= i, row-major (i, j)
    CXX = np.zeros((X.shape[0] + 1, XX.shape[1]))
    np.cumsum(XX, axis=0, out=CXX[1:])
    s0 = np.zeros(P, np.int64)
    if use_roc:
        roc_starts(Y2, X, int(mon_idx), int(hist_idx), float(roc_lambda), s0)
    brk = np.zeros(P, np.bool_)
    detect_idx = np.empty(P, np.int64)
    break_idx = np.empty(P, np.int64)
    magnitude = np.empty(P, np.float64)
    start_idx = np.empty(P, np.int64)
    n_valid = np.empty(P, np.int32)
    n_history = np.empty(P, np.int32)
    status = np.empty(P, np.int8)
    bfm_kernel(
        Y2,
        XT,
        X,
        XX,
        CXX,
        int(mon_idx),
        int(hist_idx),
        s0,
        float(h),
        float(critval),
        int(min_history),
        bool(exact_var),
        brk,
        detect_idx,
        break_idx,
        magnitude,
        start_idx,
        n_valid,
        n_history,
        status,
    )
    outs = (brk, detect_idx, break_idx, magnitude, start_idx, n_valid, n_history, status)
    return tuple(o.reshape(shape) for o in outs)


# --------------------------------------------------------------------------------------------
# ROC pass: lanes of pixels as the innermost (SIMD) axis
# --------------------------------------------------------------------------------------------

NL = 32  # pixels per lane block (the vectorised axis)
KMAX = 10  # largest design (order 4 + trend) of the fast path; larger ones use roc_starts_general
_SZ_M = KMAX * KMAX * NL
_SZ_V = KMAX * NL


@intrinsic
def _stack_f8(typingctx, n):  # pragma: no cover - compiled
    """Pointer to ``n`` (a literal int) float64 in the stack frame of the calling kernel.

    Scratch arrays on the stack (``numba.carray`` over this pointer) are distinct ``alloca`` s:
    LLVM knows they alias nothing else, so the lane loops over them vectorise without runtime
    overlap checks (heap scratch arrays defeat that and the loops stay scalar).
    """
    if not isinstance(n, types.IntegerLiteral):
        return None
    count = n.literal_value

    def codegen(context, builder, sig, args):
        with builder.goto_entry_block():
            ptr = builder.alloca(llvm_ir.ArrayType(llvm_ir.DoubleType(), count))
        ptr.align = 64
        return builder.bitcast(ptr, llvm_ir.PointerType(llvm_ir.DoubleType()))

    return types.CPointer(types.float64)(n), codegen


def rls_switch(k: int) -> float:
    """Valid observations of the Givens phase of :func:`roc_starts` before the switch to RLS.

    After ``3 k`` observations (8 months of 8-day data) the history's design is well enough
    conditioned (``cond(X) ~ 4e3`` for order 3 + trend) that covariance-form recursive least
    squares from there gives the recursive residuals of the Givens QR to ~1e-9 relative
    (measured on 20 000 cloudy series; 1e-12 after ``4 k``, 2e-7 after ``2 k``).
    """
    return 3.0 * k


def roc_starts(Y, X, mon_idx, hist_idx, roc_lambda, out):
    """Reverse-ordered recursive CUSUM start (index into each pixel's valid history) per pixel."""
    k = X.shape[1]
    if k > KMAX:
        roc_starts_general(Y, X, mon_idx, hist_idx, roc_lambda, out)
    else:
        _roc_starts_lanes(Y, X, mon_idx, hist_idx, roc_lambda, rls_switch(k), out)


@njit(
    cache=True,
    nogil=True,
    error_model="numpy",
    fastmath={"nsz", "arcp", "contract", "afn", "reassoc"},
)
def _roc_starts_lanes(Y, X, mon_idx, hist_idx, roc_lambda, g_switch, out):  # pragma: no cover
    """:func:`roc_starts` over blocks of ``NL`` pixels, the pixels as the innermost SIMD axis.

    The history is read backwards; the dates (hence design rows) are shared, only validity
    differs, so an invalid observation is a no-op lane. Two phases per block:

    1. Givens QR updates (the short first windows are ill-conditioned, ``cond(X) ~ 1e8`` for 8
       observations) until every lane has ``g_switch`` valid observations (or all of its own);
    2. covariance-form recursive least squares (``P = (X'X)^-1``, ``beta``) from ``R^-1``: one
       division and one square root per step instead of ``2 k``.

    The recursive residuals go to ``W`` (NaN where not defined), then the CUSUM, its standard
    deviation and first boundary crossing run lane-parallel too.
    """
    P, T = Y.shape
    k = X.shape[1]
    if k > KMAX:  # the stack scratch holds KMAX x KMAX per lane
        raise ValueError("_roc_starts_lanes: more design columns than KMAX; use roc_starts")
    kf = float(k)
    R = numba.carray(_stack_f8(_SZ_M), (k, k, NL))  # Givens R, later P = (X'X)^-1
    Ri = numba.carray(_stack_f8(_SZ_M), (k, k, NL))  # R^-1 at the switch
    dinv = numba.carray(_stack_f8(_SZ_V), (k, NL))
    z = numba.carray(_stack_f8(_SZ_V), (k, NL))  # Q'y, later beta
    u = numba.carray(_stack_f8(_SZ_V), (k, NL))
    row = numba.carray(_stack_f8(_SZ_V), (k, NL))
    yy = numba.carray(_stack_f8(NL), (NL,))
    ok = numba.carray(_stack_f8(NL), (NL,))
    cnt = numba.carray(_stack_f8(NL), (NL,))
    tot = numba.carray(_stack_f8(NL), (NL,))
    pred = numba.carray(_stack_f8(NL), (NL,))
    uu = numba.carray(_stack_f8(NL), (NL,))
    sing = numba.carray(_stack_f8(NL), (NL,))
    rmax = numba.carray(_stack_f8(NL), (NL,))
    sacc = numba.carray(_stack_f8(NL), (NL,))
    sc = numba.carray(_stack_f8(NL), (NL,))
    gf = numba.carray(_stack_f8(NL), (NL,))
    mcount = numba.carray(_stack_f8(NL), (NL,))
    mean = numba.carray(_stack_f8(NL), (NL,))
    var = numba.carray(_stack_f8(NL), (NL,))
    acc = numba.carray(_stack_f8(NL), (NL,))
    ii = numba.carray(_stack_f8(NL), (NL,))
    scale = numba.carray(_stack_f8(NL), (NL,))
    s0 = numba.carray(_stack_f8(NL), (NL,))
    nt = mon_idx - hist_idx
    Yb = np.empty((max(nt, 1), NL), np.float64)  # the block, reversed in time
    W = np.empty((max(nt, 1), NL), np.float64)  # recursive residuals (NaN: none)
    for p0 in range(0, P, NL):
        nb = min(NL, P - p0)
        for ln in range(nb):
            c = 0.0
            for r in range(nt):
                v = Y[p0 + ln, mon_idx - 1 - r]
                Yb[r, ln] = v
                c += 1.0 if v == v else 0.0
            tot[ln] = c
        for i in range(k):
            for j in range(k):
                for ln in range(nb):
                    R[i, j, ln] = 0.0
            for ln in range(nb):
                z[i, ln] = 0.0
                dinv[i, ln] = math.inf
        for ln in range(nb):
            cnt[ln] = 0.0
        rls = False
        for r in range(nt):
            t = mon_idx - 1 - r
            nok = 0.0
            for ln in range(nb):
                v = Yb[r, ln]
                good = v == v
                ok[ln] = 1.0 if good else 0.0
                yy[ln] = v if good else 0.0
                nok += ok[ln]
            if nok == 0.0:  # a date without any valid lane (a cloud over the block): no-op
                for ln in range(nb):
                    W[r, ln] = math.nan
                continue
            if not rls:
                # ---- Givens phase. rmax and the singularity test of the current R
                for ln in range(nb):
                    rmax[ln] = 0.0
                    pred[ln] = 0.0
                    uu[ln] = 0.0
                    sing[ln] = 0.0
                for i in range(k):
                    for ln in range(nb):
                        a = abs(R[i, i, ln])
                        rmax[ln] = a if a > rmax[ln] else rmax[ln]
                for i in range(k):
                    for ln in range(nb):
                        sing[ln] = 1.0 if abs(R[i, i, ln]) <= 1e-9 * rmax[ln] else sing[ln]
                ready = True
                for ln in range(nb):
                    need = g_switch if g_switch < tot[ln] else tot[ln]
                    # a lane still to be fed needs a regular R for the switch
                    if cnt[ln] < need or (sing[ln] > 0.0 and cnt[ln] < tot[ln]):
                        ready = False
                if ready:
                    # ---- switch: Ri = R^-1 (upper triangular), beta = Ri z, P = Ri Ri'
                    for j in range(k):
                        for i in range(j + 1, k):
                            for ln in range(nb):
                                Ri[i, j, ln] = 0.0
                        for ln in range(nb):
                            Ri[j, j, ln] = dinv[j, ln]
                        for i in range(j - 1, -1, -1):
                            for ln in range(nb):
                                sacc[ln] = 0.0
                            for q in range(i + 1, j + 1):
                                for ln in range(nb):
                                    sacc[ln] += R[i, q, ln] * Ri[q, j, ln]
                            for ln in range(nb):
                                Ri[i, j, ln] = -sacc[ln] * dinv[i, ln]
                    for i in range(k):
                        for ln in range(nb):
                            sacc[ln] = 0.0
                        for q in range(i, k):
                            for ln in range(nb):
                                sacc[ln] += Ri[i, q, ln] * z[q, ln]
                        for ln in range(nb):
                            u[i, ln] = sacc[ln]
                    for i in range(k):
                        for ln in range(nb):
                            z[i, ln] = u[i, ln]  # beta
                    for i in range(k):
                        for j in range(i, k):
                            for ln in range(nb):
                                sacc[ln] = 0.0
                            for q in range(j, k):
                                for ln in range(nb):
                                    sacc[ln] += Ri[i, q, ln] * Ri[j, q, ln]
                            for ln in range(nb):
                                R[i, j, ln] = sacc[ln]
                    rls = True
            if rls:
                # ---- RLS step: u = P x, f = 1 + x'u, e = y - x'beta, w = e / sqrt(f)
                # (P symmetric, its upper triangle kept: P_ij = R[min(i,j), max(i,j)])
                for i in range(k):
                    for ln in range(nb):
                        sacc[ln] = 0.0
                    j = 0
                    while j + 4 <= i:
                        x0 = X[t, j]
                        x1 = X[t, j + 1]
                        x2 = X[t, j + 2]
                        x3 = X[t, j + 3]
                        for ln in range(nb):
                            sacc[ln] += (R[j, i, ln] * x0 + R[j + 1, i, ln] * x1) + (
                                R[j + 2, i, ln] * x2 + R[j + 3, i, ln] * x3
                            )
                        j += 4
                    while j < i:
                        xj = X[t, j]
                        for ln in range(nb):
                            sacc[ln] += R[j, i, ln] * xj
                        j += 1
                    while j + 4 <= k:
                        x0 = X[t, j]
                        x1 = X[t, j + 1]
                        x2 = X[t, j + 2]
                        x3 = X[t, j + 3]
                        for ln in range(nb):
                            sacc[ln] += (R[i, j, ln] * x0 + R[i, j + 1, ln] * x1) + (
                                R[i, j + 2, ln] * x2 + R[i, j + 3, ln] * x3
                            )
                        j += 4
                    while j < k:
                        xj = X[t, j]
                        for ln in range(nb):
                            sacc[ln] += R[i, j, ln] * xj
                        j += 1
                    for ln in range(nb):
                        u[i, ln] = sacc[ln]
                for ln in range(nb):
                    pred[ln] = 0.0
                    uu[ln] = 0.0
                for i in range(k):
                    xi = X[t, i]
                    for ln in range(nb):
                        uu[ln] += xi * u[i, ln]
                        pred[ln] += xi * z[i, ln]
                for ln in range(nb):
                    f = 1.0 + uu[ln]
                    e = yy[ln] - pred[ln]
                    rec = ok[ln] > 0.0
                    W[r, ln] = e / math.sqrt(f) if rec else math.nan
                    g = 1.0 / f if rec else 0.0
                    gf[ln] = g
                    sc[ln] = g * e
                # beta += u g e, P -= (g u) u'
                for i in range(k):
                    for ln in range(nb):
                        z[i, ln] += u[i, ln] * sc[ln]
                        row[i, ln] = u[i, ln] * gf[ln]
                    for j in range(i, k):
                        for ln in range(nb):
                            R[i, j, ln] -= row[i, ln] * u[j, ln]
            else:
                # ---- Givens step: u = R^-T x, prediction u'z, residual, then the QR update
                for i in range(k):
                    xi = X[t, i]
                    for ln in range(nb):
                        sacc[ln] = xi
                    for j in range(i):
                        for ln in range(nb):
                            sacc[ln] -= R[j, i, ln] * u[j, ln]
                    for ln in range(nb):
                        ui = sacc[ln] * dinv[i, ln]
                        u[i, ln] = ui
                        pred[ln] += ui * z[i, ln]
                        uu[ln] += ui * ui
                for ln in range(nb):
                    rec = ok[ln] > 0.0 and cnt[ln] >= kf and sing[ln] == 0.0
                    W[r, ln] = (yy[ln] - pred[ln]) / math.sqrt(1.0 + uu[ln]) if rec else math.nan
                for i in range(k):
                    xi = X[t, i]
                    for ln in range(nb):
                        row[i, ln] = xi * ok[ln]
                for i in range(k):
                    for ln in range(nb):
                        a = R[i, i, ln]
                        b = row[i, ln]
                        rr = math.sqrt(a * a + b * b)
                        use = ok[ln] > 0.0 and rr > 0.0  # invalid lanes: identity
                        inv = 1.0 / rr
                        c = a * inv if use else 1.0
                        s = b * inv if use else 0.0
                        R[i, i, ln] = rr if use else a
                        dinv[i, ln] = inv if use else dinv[i, ln]
                        zi = z[i, ln]
                        z[i, ln] = c * zi + s * yy[ln]
                        yy[ln] = c * yy[ln] - s * zi
                        sacc[ln] = c
                        sc[ln] = s
                    for j in range(i + 1, k):
                        for ln in range(nb):
                            rij = R[i, j, ln]
                            rj = row[j, ln]
                            R[i, j, ln] = sacc[ln] * rij + sc[ln] * rj
                            row[j, ln] = sacc[ln] * rj - sc[ln] * rij
            for ln in range(nb):
                cnt[ln] += ok[ln]
        # ---- CUSUM of the recursive residuals, scaled by sd * sqrt(m), first crossing
        for ln in range(nb):
            mcount[ln] = 0.0
            mean[ln] = 0.0
            var[ln] = 0.0
        for r in range(nt):
            for ln in range(nb):
                v = W[r, ln]
                rec = v == v
                mcount[ln] += 1.0 if rec else 0.0
                mean[ln] += v if rec else 0.0
        for ln in range(nb):
            mean[ln] = mean[ln] / mcount[ln] if mcount[ln] > 0.0 else 0.0
        for r in range(nt):
            for ln in range(nb):
                v = W[r, ln]
                d = v - mean[ln]
                var[ln] += d * d if v == v else 0.0
        for ln in range(nb):
            mm = mcount[ln]
            sd = math.sqrt(var[ln] / (mm - 1.0)) if mm > 1.0 else 0.0
            good = cnt[ln] > kf + 2.0 and mm >= 3.0 and sd > 0.0
            scale[ln] = 1.0 / (sd * math.sqrt(mm)) if good else 0.0
            acc[ln] = 0.0
            ii[ln] = 0.0
            s0[ln] = 0.0 if good else -1.0  # -1: no test; > 0: crossed (the start)
        for r in range(nt):
            for ln in range(nb):
                v = W[r, ln]
                rec = v == v and s0[ln] == 0.0
                acc[ln] += v if rec else 0.0
                ii[ln] += 1.0 if rec else 0.0
                bound = roc_lambda * (1.0 + 2.0 * ii[ln] / mcount[ln])
                cross = rec and abs(acc[ln] * scale[ln]) > bound
                s0[ln] = mcount[ln] - ii[ln] + 1.0 if cross else s0[ln]
        for ln in range(nb):
            out[p0 + ln] = int(s0[ln]) if s0[ln] > 0.0 else 0


LANES = 8  # lanes of roc_starts_general


@njit(
    cache=True,
    nogil=True,
    error_model="numpy",
    fastmath={"nsz", "arcp", "contract", "afn", "reassoc"},
)
def roc_starts_general(Y, X, mon_idx, hist_idx, roc_lambda, out):  # pragma: no cover - compiled
    """Reverse-ordered recursive CUSUM start (index into each pixel's valid history) per pixel.

    First version (Givens updates for every observation), kept as the yardstick of
    :func:`roc_starts` in the tests and for designs of more than ``KMAX`` columns.

    Pixels are processed ``LANES`` at a time with the lanes as the innermost, contiguous axis:
    the acquisition dates (hence design rows) are shared, only validity differs, so invalid
    observations enter the Givens QR update as zero rows (a no-op) and the loops vectorise.
    """
    P, T = Y.shape
    k = X.shape[1]
    B = LANES
    R = np.empty((k, k, B), np.float64)
    z = np.empty((k, B), np.float64)
    u = np.empty((k, B), np.float64)
    row = np.empty((k, B), np.float64)
    yy = np.empty(B, np.float64)
    ok = np.empty(B, np.float64)
    cnt = np.empty(B, np.int64)
    m = np.empty(B, np.int64)
    pred = np.empty(B, np.float64)
    uu = np.empty(B, np.float64)
    sing = np.empty(B, np.float64)
    rmax = np.empty(B, np.float64)
    w = np.empty((B, T), np.float64)
    sacc = np.empty(B, np.float64)
    cc = np.empty(B, np.float64)
    ss = np.empty(B, np.float64)
    nt = mon_idx - hist_idx
    for p0 in range(0, P, B):
        nb = min(B, P - p0)
        R[:] = 0.0
        z[:] = 0.0
        cnt[:] = 0
        m[:] = 0
        for r in range(nt):
            t = mon_idx - 1 - r
            for ln in range(B):
                v = Y[p0 + ln, t] if ln < nb else np.nan
                good = v == v
                ok[ln] = 1.0 if good else 0.0
                yy[ln] = v if good else 0.0
            # recursive residuals (computed for every lane, kept where defined)
            for ln in range(B):
                rmax[ln] = 0.0
                pred[ln] = 0.0
                uu[ln] = 0.0
                sing[ln] = 0.0
            for i in range(k):
                for ln in range(B):
                    a = abs(R[i, i, ln])
                    rmax[ln] = a if a > rmax[ln] else rmax[ln]
            for i in range(k):
                xi = X[t, i]
                for ln in range(B):
                    sacc[ln] = xi
                for j in range(i):
                    for ln in range(B):
                        sacc[ln] -= R[j, i, ln] * u[j, ln]
                for ln in range(B):
                    d = R[i, i, ln]
                    sing[ln] = 1.0 if abs(d) <= 1e-9 * rmax[ln] else sing[ln]
                    ui = sacc[ln] / d
                    u[i, ln] = ui
                    pred[ln] += ui * z[i, ln]
                    uu[ln] += ui * ui
            for ln in range(nb):
                if ok[ln] > 0.0 and cnt[ln] >= k and sing[ln] == 0.0:
                    w[ln, m[ln]] = (yy[ln] - pred[ln]) / math.sqrt(1.0 + uu[ln])
                    m[ln] += 1
            # Givens update with the row (zero where the observation is invalid)
            for i in range(k):
                xi = X[t, i]
                for ln in range(B):
                    row[i, ln] = xi * ok[ln]
            for i in range(k):
                for ln in range(B):
                    a = R[i, i, ln]
                    b = row[i, ln]
                    rr = math.sqrt(a * a + b * b)
                    nz = rr > 0.0
                    cc[ln] = a / rr if nz else 1.0
                    ss[ln] = b / rr if nz else 0.0
                    R[i, i, ln] = rr if nz else a
                    zi = z[i, ln]
                    z[i, ln] = cc[ln] * zi + ss[ln] * yy[ln]
                    yy[ln] = cc[ln] * yy[ln] - ss[ln] * zi
                for j in range(i + 1, k):
                    for ln in range(B):
                        rij = R[i, j, ln]
                        rj = row[j, ln]
                        R[i, j, ln] = cc[ln] * rij + ss[ln] * rj
                        row[j, ln] = cc[ln] * rj - ss[ln] * rij
            for ln in range(B):
                cnt[ln] += 1 if ok[ln] > 0.0 else 0
        # CUSUM of the recursive residuals and its first crossing, per lane
        for ln in range(nb):
            s0 = 0
            mm = m[ln]
            if cnt[ln] > k + 2 and mm >= 3:
                mean = 0.0
                for i in range(mm):
                    mean += w[ln, i]
                mean /= mm
                var = 0.0
                for i in range(mm):
                    var += (w[ln, i] - mean) ** 2
                sd = math.sqrt(var / (mm - 1))
                if sd > 0.0:
                    scale = 1.0 / (sd * math.sqrt(mm))
                    acc = 0.0
                    for i in range(1, mm + 1):
                        acc += w[ln, i - 1]
                        if abs(acc * scale) > roc_lambda * (1.0 + 2.0 * i / mm):
                            s0 = mm - i + 1
                            break
            out[p0 + ln] = s0
