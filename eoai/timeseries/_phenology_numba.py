"""Numba kernel for phenology metrics, batched over pixels (private).

Per pixel and per year window: the valid samples in the window are taken as a piecewise-linear
curve; interior local maxima are ranked by topographic prominence; up to ``n_seasons`` peaks whose
prominence reaches ``min_prominence`` x (window max - window min) and ``min_amplitude`` are kept in
date order. Each season spans from the previous kept peak (or the window start) to the next one (or
the window end); its left / right minima are the minima of the curve over those spans. Start and end
are where the curve crosses ``b + threshold * (vpos - b)`` (or the absolute value), with ``b`` the
lower of the two side minima (``sides=False``) or each side's own minimum (``sides=True``, TIMESAT),
searched outwards from the peak and linearly interpolated between samples; the peak is refined by
a parabola through the three samples around the maximum.

With ``minima=True`` (TIMESAT-like seasons between the pixel's own minima) the peaks are found on the
whole series instead, a window only decides which peaks are its seasons (those inside it), and each
season's minima and crossings are searched up to the neighbouring kept peak, across the window
edges: a season may start before its window and end after it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# metric columns (days are days since the origin; rates per day; integrals value x days)
FIELDS = (
    "sos", "pos", "eos", "mos", "vsos", "vpos", "veos", "base", "amplitude", "los",
    "greenup_rate", "senescence_rate", "large_integral", "small_integral",
)  # fmt: skip
N_FIELDS = len(FIELDS)
DATE_FIELDS = ("sos", "pos", "eos", "mos")
# counters returned by the kernel
C_NODATA, C_FLAT, C_NOSEASON, C_FEWER = 0, 1, 2, 3

_NAN = np.nan


@njit(cache=True, nogil=True)
def _cross_up(xv, yv, lo, ip, level):
    """Last upward crossing of ``level`` in samples lo..ip (scanning back from the peak ip)."""
    k = ip - 1
    while k >= lo:
        if yv[k] < level:
            y0 = yv[k]
            y1 = yv[k + 1]
            f = (level - y0) / (y1 - y0) if y1 != y0 else 1.0
            if f > 1.0:
                f = 1.0
            return xv[k] + f * (xv[k + 1] - xv[k])
        k -= 1
    return _NAN


@njit(cache=True, nogil=True)
def _cross_down(xv, yv, ip, hi, level):
    """First downward crossing of ``level`` in samples ip..hi (scanning forward from the peak)."""
    k = ip + 1
    while k <= hi:
        if yv[k] < level:
            y0 = yv[k - 1]
            y1 = yv[k]
            f = (y0 - level) / (y0 - y1) if y1 != y0 else 0.0
            if f < 0.0:
                f = 0.0
            return xv[k - 1] + f * (xv[k] - xv[k - 1])
        k += 1
    return _NAN


@njit(cache=True, nogil=True)
def _value_at(xv, yv, n, t):
    j = 0
    while j < n and xv[j] < t:
        j += 1
    if j == 0:
        return yv[0]
    if j == n:
        return yv[n - 1]
    if xv[j] == t:
        return yv[j]
    return yv[j - 1] + (yv[j] - yv[j - 1]) * (t - xv[j - 1]) / (xv[j] - xv[j - 1])


@njit(cache=True, nogil=True)
def _integral(xv, yv, n, a, b, offset):
    """Integral of (piecewise-linear curve - offset) from a to b."""
    total = 0.0
    ta = a
    va = _value_at(xv, yv, n, a) - offset
    for j in range(n):
        if xv[j] > a and xv[j] < b:
            vj = yv[j] - offset
            total += 0.5 * (va + vj) * (xv[j] - ta)
            ta = xv[j]
            va = vj
    vb = _value_at(xv, yv, n, b) - offset
    total += 0.5 * (va + vb) * (b - ta)
    return total


@njit(cache=True, nogil=True)
def _find_peaks(xv, yv, n, min_prom, min_amplitude, peaks, prom):
    """Interior local maxima of samples 0..n-1 (plateaus: their middle) whose topographic
    prominence reaches ``min_prom`` and ``min_amplitude``; returns their number."""
    npk = 0
    i = 1
    while i < n - 1:
        if yv[i] > yv[i - 1]:
            j = i
            while j < n - 1 and yv[j + 1] == yv[i]:
                j += 1
            if j < n - 1 and yv[j + 1] < yv[i]:
                # left base: lowest point until a higher sample (or the first sample)
                lmin = yv[i]
                k = i - 1
                while k >= 0 and yv[k] <= yv[i]:
                    lmin = min(lmin, yv[k])
                    k -= 1
                rmin = yv[i]
                k = j + 1
                while k < n and yv[k] <= yv[i]:
                    rmin = min(rmin, yv[k])
                    k += 1
                pr = yv[i] - max(lmin, rmin)
                if pr >= min_prom and pr >= min_amplitude:
                    peaks[npk] = (i + j) // 2
                    prom[npk] = pr
                    npk += 1
            i = j + 1
        else:
            i += 1
    return npk


@njit(cache=True, nogil=True)
def _pick(peaks, prom, npk, n_seasons, chosen):
    """The ``n_seasons`` most prominent of ``peaks[:npk]`` into ``chosen``, in date order
    (``prom`` is overwritten); returns how many."""
    nch = 0
    for _ in range(min(n_seasons, npk)):
        best = -1
        bv = -1.0
        for q in range(npk):
            if prom[q] > bv:
                bv = prom[q]
                best = q
        chosen[nch] = peaks[best]
        nch += 1
        prom[best] = -2.0
    for a in range(1, nch):  # insertion sort by index
        v = chosen[a]
        b = a - 1
        while b >= 0 and chosen[b] > v:
            chosen[b + 1] = chosen[b]
            b -= 1
        chosen[b + 1] = v
    return nch


@njit(cache=True, nogil=True)
def _refine(xv, yv, ip):
    """Peak date and value from the parabola through samples (ip-1, ip, ip+1)."""
    x0, x1, x2 = xv[ip - 1], xv[ip], xv[ip + 1]
    y0, y1, y2 = yv[ip - 1], yv[ip], yv[ip + 1]
    d1 = (y1 - y0) / (x1 - x0)
    d2 = (y2 - y1) / (x2 - x1)
    c2 = (d2 - d1) / (x2 - x0)
    tpos = x1
    vpos = y1
    if c2 < 0.0:
        # y = y1 + b (t - x1) + c2 (t - x1)^2 with b from the divided differences
        b1 = d1 + c2 * (x1 - x0)
        tv = x1 - b1 / (2.0 * c2)
        if tv > x0 and tv < x2:
            tpos = tv
            vpos = y1 + b1 * (tv - x1) + c2 * (tv - x1) * (tv - x1)
    return tpos, vpos


@njit(cache=True, nogil=True)
def _season(xv, yv, n, ip, lo, hi, threshold, absolute, sides, o):
    """Metrics of the season peaking at sample ``ip``, its minima and crossings searched in samples
    lo..hi, into ``o`` (N_FIELDS,); returns whether both crossings were found."""
    lmin = yv[ip]
    for k in range(lo, ip + 1):
        lmin = min(lmin, yv[k])
    rmin = yv[ip]
    for k in range(ip, hi + 1):
        rmin = min(rmin, yv[k])
    tpos, vpos = _refine(xv, yv, ip)
    if sides:
        bl = lmin
        br = rmin
        base = 0.5 * (lmin + rmin)
    else:
        base = min(lmin, rmin)
        bl = base
        br = base
    if absolute:
        lev_l = threshold
        lev_r = threshold
        if vpos <= threshold:
            return False
    else:
        lev_l = bl + threshold * (vpos - bl)
        lev_r = br + threshold * (vpos - br)
    tsos = _cross_up(xv, yv, lo, ip, lev_l)
    teos = _cross_down(xv, yv, ip, hi, lev_r)
    if not (tsos == tsos and teos == teos):
        return False
    t20l = _cross_up(xv, yv, lo, ip, bl + 0.2 * (vpos - bl))
    t80l = _cross_up(xv, yv, lo, ip, bl + 0.8 * (vpos - bl))
    t20r = _cross_down(xv, yv, ip, hi, br + 0.2 * (vpos - br))
    t80r = _cross_down(xv, yv, ip, hi, br + 0.8 * (vpos - br))
    o[0] = tsos
    o[1] = tpos
    o[2] = teos
    o[3] = 0.5 * (t80l + t80r)
    o[4] = _value_at(xv, yv, n, tsos)
    o[5] = vpos
    o[6] = _value_at(xv, yv, n, teos)
    o[7] = base
    o[8] = vpos - base
    o[9] = teos - tsos
    o[10] = 0.6 * (vpos - bl) / (t80l - t20l) if t80l > t20l else _NAN
    o[11] = 0.6 * (vpos - br) / (t20r - t80r) if t20r > t80r else _NAN
    o[12] = _integral(xv, yv, n, tsos, teos, 0.0)
    o[13] = _integral(xv, yv, n, tsos, teos, base)
    return True


@njit(cache=True, nogil=True)
def _window_stats(xv, yv, n, lo, hi):
    """Number of samples in [lo, hi] and their range (max - min)."""
    cnt = 0
    wmin = np.inf
    wmax = -np.inf
    for i in range(n):
        if xv[i] >= lo and xv[i] <= hi:
            cnt += 1
            wmin = min(wmin, yv[i])
            wmax = max(wmax, yv[i])
    return cnt, wmax - wmin


@njit(cache=True, nogil=True)
def phenology_kernel(
    y,
    x,
    win_lo,
    win_hi,
    n_seasons,
    threshold,
    absolute,
    sides,
    min_amplitude,
    min_prominence,
    minima,
    out,
    counts,
):
    """Metrics for every row of ``y`` (n_pix, n_t) at dates ``x`` (days), per window and season.

    ``minima=False``: each window is analysed alone (a season must lie inside it).
    ``minima=True``: peaks are found on the whole series (prominence relative to its whole range);
    a window keeps the ``n_seasons`` most prominent peaks whose refined date is inside it, and each
    season's minima and crossings are searched up to the neighbouring kept peak of the series (or
    its ends), across the window edges (windows must be sorted and disjoint).

    ``out`` has shape (n_pix, n_windows, n_seasons, N_FIELDS) and is filled (NaN where no season);
    ``counts`` (n_windows, 4) accumulates, per window, the pixels without data, flat, without
    season, and with fewer seasons than requested.
    """
    n_pix, n_t = y.shape
    n_win = win_lo.shape[0]
    xv = np.empty(n_t)
    yv = np.empty(n_t)
    peaks = np.empty(n_t, np.int64)
    prom = np.empty(n_t)
    cpk = np.empty(n_t, np.int64)
    cprom = np.empty(n_t)
    chosen = np.empty(n_seasons, np.int64)
    chosen_w = np.empty((n_win, n_seasons), np.int64)
    nch_w = np.zeros(n_win, np.int64)
    all_ch = np.empty(n_win * n_seasons, np.int64)
    for p in range(n_pix):
        for w in range(n_win):
            for s in range(n_seasons):
                for f in range(N_FIELDS):
                    out[p, w, s, f] = _NAN
        if minima:
            n = 0
            for i in range(n_t):
                v = y[p, i]
                if v == v:
                    xv[n] = x[i]
                    yv[n] = v
                    n += 1
            npk = 0
            if n >= 3:
                gmin = yv[0]
                gmax = yv[0]
                for i in range(n):
                    gmin = min(gmin, yv[i])
                    gmax = max(gmax, yv[i])
                npk = _find_peaks(
                    xv, yv, n, min_prominence * (gmax - gmin), min_amplitude, peaks, prom
                )
            n_all = 0
            for w in range(n_win):
                nch_w[w] = 0
                cnt, wr = _window_stats(xv, yv, n, win_lo[w], win_hi[w])
                if cnt < 3:
                    counts[w, C_NODATA] += 1
                    nch_w[w] = -1
                    continue
                if wr < min_amplitude or wr <= 0.0:
                    counts[w, C_FLAT] += 1
                    nch_w[w] = -1
                    continue
                m = 0
                for q in range(npk):
                    tq = _refine(xv, yv, peaks[q])[0]  # the window holding the (refined) peak
                    if tq >= win_lo[w] and tq <= win_hi[w]:
                        cpk[m] = peaks[q]
                        cprom[m] = prom[q]
                        m += 1
                nch = _pick(cpk, cprom, m, n_seasons, chosen)
                nch_w[w] = nch
                for s in range(nch):
                    chosen_w[w, s] = chosen[s]
                    all_ch[n_all] = chosen[s]
                    n_all += 1
            g = 0
            for w in range(n_win):
                if nch_w[w] < 0:
                    continue
                found = 0
                for s in range(nch_w[w]):
                    lo = all_ch[g - 1] if g > 0 else 0
                    hi = all_ch[g + 1] if g + 1 < n_all else n - 1
                    if _season(xv, yv, n, chosen_w[w, s], lo, hi, threshold, absolute, sides,
                               out[p, w, s]):  # fmt: skip
                        found += 1
                    g += 1
                if found == 0:
                    counts[w, C_NOSEASON] += 1
                elif found < n_seasons:
                    counts[w, C_FEWER] += 1
            continue
        for w in range(n_win):
            n = 0
            for i in range(n_t):
                if x[i] >= win_lo[w] and x[i] <= win_hi[w]:
                    v = y[p, i]
                    if v == v:
                        xv[n] = x[i]
                        yv[n] = v
                        n += 1
            if n < 3:
                counts[w, C_NODATA] += 1
                continue
            ymin = yv[0]
            ymax = yv[0]
            for i in range(n):
                ymin = min(ymin, yv[i])
                ymax = max(ymax, yv[i])
            rng = ymax - ymin
            if rng < min_amplitude or rng <= 0.0:
                counts[w, C_FLAT] += 1
                continue
            npk = _find_peaks(xv, yv, n, min_prominence * rng, min_amplitude, peaks, prom)
            if npk == 0:
                counts[w, C_NOSEASON] += 1
                continue
            nch = _pick(peaks, prom, npk, n_seasons, chosen)
            found = 0
            for s in range(nch):
                ip = chosen[s]
                lo = chosen[s - 1] if s > 0 else 0
                hi = chosen[s + 1] if s + 1 < nch else n - 1
                if _season(xv, yv, n, ip, lo, hi, threshold, absolute, sides, out[p, w, s]):
                    found += 1
            if found == 0:
                counts[w, C_NOSEASON] += 1
            elif found < n_seasons:
                counts[w, C_FEWER] += 1
    return counts
