"""Numba kernels for gap-filling, batched over pixels (rows of a 2-D array, time along axis 1).

Every kernel takes ``y`` of shape ``(n_pixels, n_in)`` with NaN for missing observations, the input
positions ``x_in`` (days, float64, strictly increasing or non-decreasing) and writes an output of shape
``(n_pixels, n_out)``. Each pixel is processed with O(n) work and a few small scratch arrays; there is
no Python loop over pixels. Kernels release the GIL so dask threads run chunks in parallel.

Whittaker smoothing solves ``(W + lam * D'D) z = W y`` where ``D`` is the difference matrix of order
``d`` (plain differences, or divided differences on unequal positions as in Eilers 2003 ``ddmat``).
``A = W + lam D'D`` is symmetric, positive definite and banded with half-bandwidth ``d``; it is
factorised as ``L diag(D) L'`` (banded LDL', O(n d^2)) per pixel.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_NAN = np.nan


# ----------------------------------------------------------------------------------------------
# difference matrices and penalties (computed once per call, shared by every pixel)
# ----------------------------------------------------------------------------------------------
def difference_coefficients(
    x: np.ndarray | None, n: int, d: int, scale: bool = False
) -> np.ndarray:
    """Rows of the order-``d`` difference matrix in band form, shape ``(n - d, d + 1)``.

    ``coef[r, j]`` multiplies ``z[r + j]``. With ``x`` None these are plain differences
    (``np.diff(np.eye(n), d)``); with ``x`` they are Eilers' divided differences
    ``ddmat(x, d)``. ``scale=True`` multiplies divided differences by ``d!`` and each row by the square
    root of the mean spacing it spans, so that on a unit grid they equal plain differences and
    ``sum((D z)**2)`` approximates the integral of the squared d-th derivative on any grid.
    """
    if d < 0:
        raise ValueError("difference order must be >= 0")
    coef = np.ones((n, 1))
    for k in range(1, d + 1):
        rows = n - k
        new = np.zeros((rows, k + 1))
        new[:, 1:] += coef[1 : rows + 1, :]
        new[:, :-1] -= coef[:rows, :]
        if x is not None:
            dx = x[k:] - x[: n - k]
            new /= dx[:, None]
            if scale:
                new *= k
        coef = new
    if x is not None and scale and d > 0:
        # weight each row by the mean spacing it spans, so that sum(row^2) approximates the
        # integral of the squared derivative whatever the grid (the output grid does not change
        # the amount of smoothing)
        coef = coef * np.sqrt((x[d:] - x[: n - d]) / d)[:, None]
    return np.ascontiguousarray(coef)


def penalty_band(coef: np.ndarray, n: int) -> np.ndarray:
    """``D'D`` in lower band form ``P[k, j] = (D'D)[j + k, j]``, shape ``(d + 1, n)``."""
    rows, width = coef.shape
    d = width - 1
    band = np.zeros((d + 1, n))
    for j in range(width):
        for k in range(j, width):
            band[k - j, j : j + rows] += coef[:, j] * coef[:, k]
    return band


# ----------------------------------------------------------------------------------------------
# linear interpolation (OTB / iota2 rule)
# ----------------------------------------------------------------------------------------------
@njit(inline="always")
def _valid_points(y, p, x_in, xv, yv):
    """Copy the valid (non-NaN) observations of row ``p`` to ``xv`` (dates), ``yv``; their count."""
    k = 0
    for i in range(y.shape[1]):
        v = y[p, i]
        if v == v:
            xv[k] = x_in[i]
            yv[k] = v
            k += 1
    return k


@njit(cache=True, nogil=True)
def linear_fill(y, x_in, x_out, max_gap, out):
    """Linear interpolation in date; constant extension before the first / after the last valid.

    Returns the number of pixels without any valid observation (left NaN).
    """
    n_pix, n_in = y.shape
    n_out = x_out.shape[0]
    xv = np.empty(n_in)
    yv = np.empty(n_in)
    empty = 0
    for p in range(n_pix):
        k = _valid_points(y, p, x_in, xv, yv)
        if k == 0:
            for o in range(n_out):
                out[p, o] = _NAN
            empty += 1
            continue
        j = 0
        for o in range(n_out):
            t = x_out[o]
            while j < k and xv[j] < t:
                j += 1
            if j < k and xv[j] == t:
                val = yv[j]
                gap = 0.0
            elif j == 0:
                val = yv[0]
                gap = xv[0] - t
            elif j == k:
                val = yv[k - 1]
                gap = t - xv[k - 1]
            else:
                x0 = xv[j - 1]
                x1 = xv[j]
                val = yv[j - 1] + (yv[j] - yv[j - 1]) * (t - x0) / (x1 - x0)
                gap = x1 - x0
            out[p, o] = val if gap <= max_gap else _NAN
    return empty


@njit(cache=True, nogil=True)
def gap_mask(y, x_in, x_out, max_gap, out):
    """Set ``out`` to NaN where the output date lies in a gap longer than ``max_gap`` days.

    Interior: the distance between the valid observations around the date; before the first or
    after the last valid observation: the distance to it.
    """
    n_pix, n_in = y.shape
    n_out = x_out.shape[0]
    xv = np.empty(n_in)
    for p in range(n_pix):
        k = 0
        for i in range(n_in):
            if y[p, i] == y[p, i]:
                xv[k] = x_in[i]
                k += 1
        j = 0
        for o in range(n_out):
            if k == 0:
                out[p, o] = _NAN
                continue
            t = x_out[o]
            while j < k and xv[j] < t:
                j += 1
            if j < k and xv[j] == t:
                gap = 0.0
            elif j == 0:
                gap = xv[0] - t
            elif j == k:
                gap = t - xv[k - 1]
            else:
                gap = xv[j] - xv[j - 1]
            if gap > max_gap:
                out[p, o] = _NAN


# ----------------------------------------------------------------------------------------------
# Whittaker: banded LDL' solve
# ----------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _ldl_factor(w, pen, lam, d, L, Dg):
    """Factorise ``diag(w) + lam * P`` (P in lower band form) as ``L diag(Dg) L'``; False if singular."""
    m = w.shape[0]
    for j in range(m):
        s = w[j] + lam * pen[0, j]
        ref = s
        lo = j - d if j - d > 0 else 0
        for k in range(lo, j):
            lk = L[j, j - k]
            s -= lk * lk * Dg[k]
        if not (s > 1e-13 * ref) or not (s > 0.0):
            return False
        Dg[j] = s
        hi = j + d + 1 if j + d + 1 < m else m
        for i in range(j + 1, hi):
            a = lam * pen[i - j, j]
            lo2 = i - d if i - d > 0 else 0
            for k in range(lo2, j):
                a -= L[i, i - k] * L[j, j - k] * Dg[k]
            L[i, i - j] = a / s
    return True


@njit(cache=True, nogil=True)
def _ldl_solve(L, Dg, d, rhs, z):
    m = rhs.shape[0]
    for i in range(m):
        s = rhs[i]
        lo = i - d if i - d > 0 else 0
        for k in range(lo, i):
            s -= L[i, i - k] * z[k]
        z[i] = s
    for i in range(m):
        z[i] /= Dg[i]
    for i in range(m - 1, -1, -1):
        s = z[i]
        hi = i + d + 1 if i + d + 1 < m else m
        for k in range(i + 1, hi):
            s -= L[k, k - i] * z[k]
        z[i] = s


@njit(cache=True, nogil=True)
def _inverse_diagonal(L, Dg, d, Z, diag):
    """Diagonal of ``(L D L')^-1`` by the Takahashi recursion restricted to the band."""
    m = Dg.shape[0]
    # Z[i, k] = inv[i + k, i] for k = 0..d
    for i in range(m - 1, -1, -1):
        hi = i + d + 1 if i + d + 1 < m else m
        for j in range(hi - 1, i, -1):
            s = 0.0
            for k in range(i + 1, hi):
                # inv[k, j] with |k - j| <= d
                if k >= j:
                    s += L[k, k - i] * Z[j, k - j]
                else:
                    s += L[k, k - i] * Z[k, j - k]
            Z[i, j - i] = -s
        s = 1.0 / Dg[i]
        for k in range(i + 1, hi):
            s -= L[k, k - i] * Z[i, k - i]
        Z[i, 0] = s
        diag[i] = s


@njit(cache=True, nogil=True)
def _factor_solve2(w, pen, lam, rhs, L, Dg, z):
    """Pentadiagonal (order 2) LDL' factorisation and solve in one sweep; False if singular.

    Same band layout as :func:`_ldl_factor` (``L[i, 1] = L[i, i-1]``, ``L[i, 2] = L[i, i-2]``).
    """
    m = w.shape[0]
    l1m1 = 0.0  # L[i, i-1]
    l2m2 = 0.0  # L[i, i-2]
    l2m1 = 0.0  # L[i+1, i-1] (carried)
    dm1 = 0.0
    dm2 = 0.0
    um1 = 0.0
    um2 = 0.0
    for i in range(m):
        a = w[i] + lam * pen[0, i]
        di = a - l1m1 * l1m1 * dm1 - l2m2 * l2m2 * dm2
        if not (di > 1e-13 * a) or not (di > 0.0):
            return False
        Dg[i] = di
        L[i, 1] = l1m1
        L[i, 2] = l2m2
        ui = rhs[i] - l1m1 * um1 - l2m2 * um2
        z[i] = ui
        # next row's multipliers
        nl1 = (lam * pen[1, i] - l2m1 * l1m1 * dm1) / di if i + 1 < m else 0.0
        nl2 = lam * pen[2, i] / di if i + 2 < m else 0.0
        l2m2 = l2m1
        l2m1 = nl2
        l1m1 = nl1
        dm2 = dm1
        dm1 = di
        um2 = um1
        um1 = ui
    zp1 = 0.0
    zp2 = 0.0
    for i in range(m - 1, -1, -1):
        l1 = L[i + 1, 1] if i + 1 < m else 0.0
        l2 = L[i + 2, 2] if i + 2 < m else 0.0
        zi = z[i] / Dg[i] - l1 * zp1 - l2 * zp2
        z[i] = zi
        zp2 = zp1
        zp1 = zi
    return True


@njit(cache=True, nogil=True)
def _factor_solve(w, pen, lam, d, rhs, L, Dg, z):
    if d == 2:
        return _factor_solve2(w, pen, lam, rhs, L, Dg, z)
    if not _ldl_factor(w, pen, lam, d, L, Dg):
        return False
    _ldl_solve(L, Dg, d, rhs, z)
    return True


@njit(cache=True, nogil=True)
def _asym_solve(yw, w, wa, pen, lam, d, p, max_iter, L, Dg, rhs, z, zold):
    """Solve with weights ``w`` (or asymmetric weights ``wa`` when p > 0). Returns False if singular."""
    m = w.shape[0]
    for i in range(m):
        wa[i] = w[i]
        rhs[i] = w[i] * yw[i]
    if not _factor_solve(wa, pen, lam, d, rhs, L, Dg, z):
        return False
    if p <= 0.0:
        return True
    for _ in range(max_iter):
        changed = False
        for i in range(m):
            if w[i] > 0.0:
                new = w[i] * (p if yw[i] > z[i] else 1.0 - p)
                if new != wa[i]:
                    changed = True
                wa[i] = new
            rhs[i] = wa[i] * yw[i]
        if not changed:
            break
        if not _factor_solve(wa, pen, lam, d, rhs, L, Dg, z):
            return False
    return True


@njit(cache=True, nogil=True, inline="always")
def _write_out(z, out_idx, first, last, hold, out, px):
    """``out[px] = z[out_idx]``; with ``hold``, grid positions before ``first`` / after ``last`` (the
    first / last valid observation) read ``z`` there (constant extrapolation, as the linear rule)."""
    for o in range(out_idx.shape[0]):
        j = out_idx[o]
        if hold:
            if j < first:
                j = first
            elif j > last:
                j = last
        out[px, o] = z[j]


@njit(cache=True, nogil=True)
def whittaker_fixed2(y, in_idx, out_idx, m, pen, lam, out, hold=False):
    """Fast path of :func:`whittaker_fill` for order 2, a fixed ``lam`` and unit weights.

    One fused forward sweep (pentadiagonal LDL' factorisation + forward substitution) and one
    backward sweep per pixel, with the penalty pre-multiplied by ``lam``. ``hold``: outputs before
    the first / after the last valid observation take the curve's value there (see
    :func:`whittaker_fill`). Returns the number of pixels with fewer than 2 valid observations (left
    NaN).
    """
    n_pix, n_in = y.shape
    n_out = out_idx.shape[0]
    a0 = np.empty(m)
    b1 = np.empty(m)
    c2 = np.empty(m)
    for i in range(m):
        a0[i] = lam * pen[0, i]
        b1[i] = lam * pen[1, i]
        c2[i] = lam * pen[2, i]
    w = np.zeros(m)
    r = np.zeros(m)
    inv = np.empty(m)
    l1 = np.zeros(m + 2)  # l1[i] = L[i+1, i]
    l2 = np.zeros(m + 2)  # l2[i] = L[i+2, i]
    z = np.empty(m)
    bad = 0
    for px in range(n_pix):
        nv = 0
        first = 0
        last = m - 1
        for i in range(n_in):
            v = y[px, i]
            j = in_idx[i]
            if v == v:
                w[j] = 1.0
                r[j] = v
                if nv == 0:
                    first = j
                last = j
                nv += 1
            else:
                w[j] = 0.0
                r[j] = 0.0
        ok = nv >= 2
        if ok:
            l1m1 = 0.0
            l2m2 = 0.0
            l2m1 = 0.0
            dm1 = 0.0
            dm2 = 0.0
            um1 = 0.0
            um2 = 0.0
            for i in range(m):
                a = w[i] + a0[i]
                di = a - l1m1 * l1m1 * dm1 - l2m2 * l2m2 * dm2
                if not (di > 1e-13 * a):
                    ok = False
                    break
                id_ = 1.0 / di
                inv[i] = id_
                ui = r[i] - l1m1 * um1 - l2m2 * um2
                z[i] = ui
                nl1 = (b1[i] - l2m1 * l1m1 * dm1) * id_
                nl2 = c2[i] * id_
                l1[i] = nl1
                l2[i] = nl2
                l2m2 = l2m1
                l2m1 = nl2
                l1m1 = nl1
                dm2 = dm1
                dm1 = di
                um2 = um1
                um1 = ui
        if not ok:
            bad += 1
            for o in range(n_out):
                out[px, o] = _NAN
            continue
        zp1 = 0.0
        zp2 = 0.0
        for i in range(m - 1, -1, -1):
            zi = z[i] * inv[i] - l1[i] * zp1 - l2[i] * zp2
            z[i] = zi
            zp2 = zp1
            zp1 = zi
        _write_out(z, out_idx, first, last, hold, out, px)
    return bad


@njit(cache=True, nogil=True)
def whittaker_fill(
    y, wts, in_idx, out_idx, m, pen, coef, d, lams, mode, p, max_iter, out, lam_out, hold=False,
    n_refit=0, robust_c=10.0,
):  # fmt: skip
    """Whittaker smoothing of every row of ``y`` on a working grid of ``m`` positions.

    ``in_idx``/``out_idx`` place input and output dates on the working grid (union of both).
    ``wts`` (same shape as y, or shape (1, 1) for all ones) are observation weights; NaN in y means
    weight 0. ``mode``: 0 fixed ``lams[0]``; 1 V-curve over ``lams``; 2 GCV over ``lams``.
    ``p`` > 0 turns on asymmetric weights (p above the curve, 1 - p below). ``hold``: outputs before
    the first / after the last valid observation of a pixel take the curve's value at that
    observation instead of the curve's (polynomial) extrapolation. ``n_refit`` > 0: robust
    re-fits, each with the weights times Tukey's bisquare of the residuals of the previous fit over
    ``robust_c`` robust standard deviations (1.4826 x the median absolute residual), lambda chosen
    again; observations whose weight drops to 0 count as missing (also for ``hold``). Returns the
    number of pixels with fewer than ``d`` valid observations (left NaN).
    """
    n_pix, n_in = y.shape
    n_out = out_idx.shape[0]
    nl = lams.shape[0]
    use_w = wts.shape[1] == n_in
    yw = np.zeros(m)
    w = np.zeros(m)
    w0 = np.zeros(m)
    res = np.zeros(m)
    wa = np.zeros(m)
    L = np.zeros((m, d + 1))
    Dg = np.zeros(m)
    rhs = np.zeros(m)
    z = np.zeros(m)
    zold = np.zeros(m)
    Z = np.zeros((m, d + 1))
    diag = np.zeros(m)
    crit = np.zeros(nl)
    fits = np.zeros(nl)
    pens = np.zeros(nl)
    loglam = np.empty(nl)
    for i in range(nl):
        loglam[i] = math.log10(lams[i])
    nrows = coef.shape[0]
    bad = 0
    for px in range(n_pix):
        nv = 0
        first = 0
        last = m - 1
        for i in range(n_in):
            v = y[px, i]
            j = in_idx[i]
            yw[j] = 0.0
            w[j] = 0.0
            if v == v:
                wi = wts[px, i] if use_w else 1.0
                if wi > 0.0:
                    yw[j] = v
                    w[j] = wi
                    if nv == 0:
                        first = j
                    last = j
                    nv += 1
        if nv < (d if d > 1 else 1):
            bad += 1
            for o in range(n_out):
                out[px, o] = _NAN
            lam_out[px] = _NAN
            continue
        for i in range(m):
            w0[i] = w[i]
        for it in range(n_refit + 1):
            if it > 0:
                # robust re-weighting from the previous fit (bisquare of the scaled residuals)
                k = 0
                for i in range(m):
                    if w0[i] > 0.0:
                        res[k] = abs(yw[i] - z[i])
                        k += 1
                cut = robust_c * 1.4826 * np.median(res[:k])
                if not (cut > 0.0):
                    break
                nk = 0
                for i in range(m):
                    if w0[i] > 0.0 and abs(yw[i] - z[i]) < cut:
                        nk += 1
                if nk < (d if d > 1 else 1):
                    break
                nv = 0
                for i in range(m):
                    w[i] = 0.0
                    if w0[i] > 0.0:
                        u = (yw[i] - z[i]) / cut
                        if abs(u) < 1.0:
                            w[i] = w0[i] * (1.0 - u * u) ** 2
                    if w[i] > 0.0:
                        if nv == 0:
                            first = i
                        last = i
                        nv += 1
            ok = True
            if mode == 0:
                lam = lams[0]
            else:
                for li in range(nl):
                    ok = _asym_solve(yw, w, wa, pen, lams[li], d, p, max_iter, L, Dg, rhs, z, zold)
                    if not ok:
                        crit[li] = np.inf
                        fits[li] = _NAN
                        pens[li] = _NAN
                        continue
                    rss = 0.0
                    for i in range(m):
                        r = yw[i] - z[i]
                        rss += wa[i] * r * r
                    if mode == 1:
                        pen_s = 0.0
                        for r_ in range(nrows):
                            s = 0.0
                            for j in range(d + 1):
                                s += coef[r_, j] * z[r_ + j]
                            pen_s += s * s
                        fits[li] = math.log10(rss + 1e-300)
                        pens[li] = math.log10(pen_s + 1e-300)
                    else:
                        _inverse_diagonal(L, Dg, d, Z, diag)
                        tr = 0.0
                        sw = 0.0
                        for i in range(m):
                            tr += wa[i] * diag[i]
                            if wa[i] > 0.0:
                                sw += 1.0
                        den = 1.0 - tr / sw
                        crit[li] = (rss / sw) / (den * den) if den > 0.0 else np.inf
                if mode == 1:
                    best = -1
                    bestv = np.inf
                    for li in range(nl - 1):
                        a = fits[li + 1] - fits[li]
                        b = pens[li + 1] - pens[li]
                        v = math.sqrt(a * a + b * b) / (loglam[li + 1] - loglam[li])
                        if v == v and v < bestv:
                            bestv = v
                            best = li
                    if best < 0:
                        ok = False
                        lam = lams[0]
                    else:
                        lam = 10.0 ** (0.5 * (loglam[best] + loglam[best + 1]))
                else:
                    best = -1
                    bestv = np.inf
                    for li in range(nl):
                        if crit[li] < bestv:
                            bestv = crit[li]
                            best = li
                    if best < 0:
                        ok = False
                        lam = lams[0]
                    else:
                        lam = lams[best]
            if ok:
                ok = _asym_solve(yw, w, wa, pen, lam, d, p, max_iter, L, Dg, rhs, z, zold)
            if not ok:
                break
        if not ok:
            bad += 1
            for o in range(n_out):
                out[px, o] = _NAN
            lam_out[px] = _NAN
            continue
        _write_out(z, out_idx, first, last, hold, out, px)
        lam_out[px] = lam
    return bad


# ----------------------------------------------------------------------------------------------
# small dense solves for savgol / harmonic
# ----------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _chol_solve(G, b, k, sol):
    """Solve the k x k SPD system G sol = b in place (Cholesky); False when (near) singular."""
    for j in range(k):
        s = G[j, j]
        for q in range(j):
            s -= G[j, q] * G[j, q]
        if not (s > 1e-10 * (abs(G[j, j]) + 1e-300)):
            return False
        s = math.sqrt(s)
        G[j, j] = s
        for i in range(j + 1, k):
            a = G[i, j]
            for q in range(j):
                a -= G[i, q] * G[j, q]
            G[i, j] = a / s
    for i in range(k):
        s = b[i]
        for q in range(i):
            s -= G[i, q] * sol[q]
        sol[i] = s / G[i, i]
    for i in range(k - 1, -1, -1):
        s = sol[i]
        for q in range(i + 1, k):
            s -= G[q, i] * sol[q]
        sol[i] = s / G[i, i]
    return True


@njit(cache=True, nogil=True)
def harmonic_fill(y, X_in, X_out, min_obs, out):
    """Weighted least squares of every row on the design ``X_in`` (n_in x k), evaluated on ``X_out``.

    Returns the number of pixels with fewer than ``min_obs`` valid observations or a singular fit.
    """
    n_pix, n_in = y.shape
    k = X_in.shape[1]
    n_out = X_out.shape[0]
    G = np.zeros((k, k))
    b = np.zeros(k)
    sol = np.zeros(k)
    bad = 0
    for p in range(n_pix):
        for a in range(k):
            b[a] = 0.0
            for c in range(k):
                G[a, c] = 0.0
        nv = 0
        for i in range(n_in):
            v = y[p, i]
            if v == v:
                nv += 1
                for a in range(k):
                    xa = X_in[i, a]
                    b[a] += xa * v
                    for c in range(a + 1):
                        G[a, c] += xa * X_in[i, c]
        ok = nv >= min_obs
        if ok:
            for a in range(k):
                for c in range(a + 1, k):
                    G[a, c] = G[c, a]
            ok = _chol_solve(G, b, k, sol)
        if not ok:
            bad += 1
            for o in range(n_out):
                out[p, o] = _NAN
            continue
        for o in range(n_out):
            s = 0.0
            for a in range(k):
                s += X_out[o, a] * sol[a]
            out[p, o] = s
    return bad


@njit(cache=True, nogil=True)
def savgol_fill(y, x_in, x_out, half_window, order, out):
    """Local polynomial least squares (Savitzky-Golay on unequal spacing and with gaps).

    At each output date a polynomial of degree ``order`` is fitted to the valid observations within
    ``half_window`` days and evaluated there. Where fewer than ``order + 1`` observations fall in the
    window the value is linearly interpolated instead (NaN only for pixels without observation).
    Returns the number of pixels without any valid observation.
    """
    n_pix, n_in = y.shape
    n_out = x_out.shape[0]
    k = order + 1
    G = np.zeros((k, k))
    b = np.zeros(k)
    sol = np.zeros(k)
    pw = np.zeros(2 * k)
    xv = np.empty(n_in)
    yv = np.empty(n_in)
    empty = 0
    for p in range(n_pix):
        nv = _valid_points(y, p, x_in, xv, yv)
        if nv == 0:
            empty += 1
            for o in range(n_out):
                out[p, o] = _NAN
            continue
        lo = 0
        for o in range(n_out):
            t = x_out[o]
            while lo < nv and xv[lo] < t - half_window:
                lo += 1
            for a in range(k):
                b[a] = 0.0
                for c in range(k):
                    G[a, c] = 0.0
            cnt = 0
            left = 0
            right = 0
            i = lo
            while i < nv and xv[i] <= t + half_window:
                dt = (xv[i] - t) / half_window
                if dt <= 0.0:
                    left += 1
                if dt >= 0.0:
                    right += 1
                pw[0] = 1.0
                for a in range(1, 2 * k - 1):
                    pw[a] = pw[a - 1] * dt
                for a in range(k):
                    b[a] += pw[a] * yv[i]
                    for c in range(k):
                        G[a, c] += pw[a + c]
                cnt += 1
                i += 1
            # a well-posed local fit: more points than coefficients, on both sides of t
            ok = cnt > k and left > 0 and right > 0 and _chol_solve(G, b, k, sol)
            if ok:
                out[p, o] = sol[0]
            else:
                j = 0
                while j < nv and xv[j] < t:
                    j += 1
                if j < nv and xv[j] == t:
                    out[p, o] = yv[j]
                elif j == 0:
                    out[p, o] = yv[0]
                elif j == nv:
                    out[p, o] = yv[nv - 1]
                else:
                    x0 = xv[j - 1]
                    x1 = xv[j]
                    out[p, o] = yv[j - 1] + (yv[j] - yv[j - 1]) * (t - x0) / (x1 - x0)
    return empty
