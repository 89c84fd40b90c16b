"""Phenology curves with exact, known dates: the truth of the synthetic cubes.

Curve convention (:func:`double_logistic`)::

    f(t) = base + amplitude * (sigma(rate_up * (t - sos)) - sigma(rate_down * (t - eos)))

with ``sigma(z) = 1 / (1 + exp(-z))``. ``sos`` and ``eos`` are the inflection points of the rising and
falling logistic, i.e. the dates where the curve crosses 50 % of the amplitude (exactly for each
logistic alone; for the whole curve, whose peak stays slightly below ``base + amplitude``, within about
a day when ``(eos - sos) * rate >= 8`` and within 0.1 day when it is >= 12). Crossing a fraction ``p`` of
the amplitude happens at ``sos + log(p / (1 - p)) / rate_up`` on the way up and
``eos - log(p / (1 - p)) / rate_down`` on the way down (:func:`logistic_crossing`);
:func:`crossing_dates` gives the exact crossings of the real, possibly multi-season, curve for every
pixel of a truth Dataset.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError

__all__ = ["double_logistic", "logistic_crossing", "crossing_dates"]

# --------------------------------------------------------------------------------------------
# Curves
# --------------------------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # 0.5 * (1 + tanh(z / 2)) is the logistic without overflow for large |z|
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def double_logistic(
    t_doy: Any,
    base: Any,
    amplitude: Any,
    sos: Any,
    eos: Any,
    rate_up: Any,
    rate_down: Any,
) -> np.ndarray:
    """Double-logistic phenology curve, vectorised (all arguments broadcast with numpy rules).

    ``f(t) = base + amplitude * (s(rate_up * (t - sos)) - s(rate_down * (t - eos)))`` with the
    logistic ``s(z) = 1 / (1 + exp(-z))``. ``sos``/``eos`` are the inflection points: the curve
    crosses ``base + amplitude / 2`` there (exactly for each logistic alone; the whole curve peaks
    slightly below ``base + amplitude`` so its 50 % crossings of the real peak move by about
    ``2 * exp(-rate * (eos - sos) / 2) / rate`` days: < 1 day for ``rate * (eos - sos) >= 8``).

    Parameters
    ----------
    t_doy
        Time in days (day of year, or days since any origin shared with ``sos``/``eos``).
    base, amplitude
        Minimum value and seasonal amplitude.
    sos, eos
        Inflection points (days) of the green-up and of the senescence.
    rate_up, rate_down
        Logistic rates (1/day); ``4 / rate`` days is about the 12 %-88 % rise time.

    Returns
    -------
    numpy.ndarray
        The curve, float64, of the broadcast shape.

    Examples
    --------
    >>> from eoai.datasets import double_logistic
    >>> v = double_logistic([1, 120, 180, 270], 0.2, 0.6, 120, 270, 0.1, 0.1)
    >>> [round(float(x), 3) for x in v]
    [0.2, 0.5, 0.798, 0.5]
    """
    t = np.asarray(t_doy, dtype=float)
    return np.asarray(base, dtype=float) + np.asarray(amplitude, dtype=float) * (
        _sigmoid(np.asarray(rate_up, dtype=float) * (t - np.asarray(sos, dtype=float)))
        - _sigmoid(np.asarray(rate_down, dtype=float) * (t - np.asarray(eos, dtype=float)))
    )


def logistic_crossing(
    fraction: float, sos: Any, eos: Any, rate_up: Any, rate_down: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Days where a double-logistic season crosses ``fraction`` of its amplitude (analytic).

    Up: ``sos + log(p / (1 - p)) / rate_up``; down: ``eos - log(p / (1 - p)) / rate_down``. Exact for
    each logistic taken alone; relative to the real peak of the whole curve the error is below about a
    day when the season is long compared with the rise time (``(eos - sos) * rate >= 8``). :func:`crossing_dates` computes
    the exact crossings of the full curve.

    Parameters
    ----------
    fraction
        Fraction of the amplitude above the base, strictly between 0 and 1 (0.5 gives sos/eos).
    sos, eos, rate_up, rate_down
        Curve parameters as in :func:`double_logistic` (arrays broadcast).

    Returns
    -------
    tuple of numpy.ndarray
        ``(rising, falling)`` crossing days.

    Examples
    --------
    >>> from eoai.datasets import logistic_crossing
    >>> up, down = logistic_crossing(0.2, 120, 270, 0.1, 0.1)
    >>> round(float(up), 2), round(float(down), 2)
    (106.14, 283.86)
    """
    if not 0.0 < float(fraction) < 1.0:
        raise InputError(f"fraction must be strictly between 0 and 1, got {fraction}")
    logit = math.log(fraction / (1.0 - fraction))
    up = np.asarray(sos, dtype=float) + logit / np.asarray(rate_up, dtype=float)
    down = np.asarray(eos, dtype=float) - logit / np.asarray(rate_down, dtype=float)
    return up, down


def _curve(t: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Full multi-season curve at per-pixel times ``t`` (P,), params (K, P) + base (P,)."""
    out = p["base"].copy()
    amp0 = p.get("amp0", p["amp"])
    for k in range(amp0.shape[0]):
        a = amp0[k]
        if not a.any():
            continue
        out += a * (
            _sigmoid(p["ru"][k] * (t - p["sos"][k])) - _sigmoid(p["rd"][k] * (t - p["eos"][k]))
        )
    return out


def _dcurve(t: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    out = np.zeros_like(t)
    amp0 = p.get("amp0", p["amp"])
    for k in range(amp0.shape[0]):
        a = amp0[k]
        if not a.any():
            continue
        su = _sigmoid(p["ru"][k] * (t - p["sos"][k]))
        sd = _sigmoid(p["rd"][k] * (t - p["eos"][k]))
        out += a * (p["ru"][k] * su * (1 - su) - p["rd"][k] * sd * (1 - sd))
    return out


def _bisect(fun, lo: np.ndarray, hi: np.ndarray, n_iter: int = 42) -> np.ndarray:
    """Vectorised bisection for a root of ``fun`` with fun(lo) < 0 <= fun(hi)."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        pos = fun(mid) >= 0
        hi = np.where(pos, mid, hi)
        lo = np.where(pos, lo, mid)
    return 0.5 * (lo + hi)


def _season_truth(
    p: dict[str, np.ndarray], fraction: float, break_days: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Exact pos and ``fraction`` crossings (days since origin) per component (K, P).

    The threshold of a season is ``base + fraction * (f(pos) - base)``; the rising crossing is searched
    between the previous trough (or ``sos - 12 / rate_up``) and the peak, the falling one between the
    peak and the next trough (or ``eos + 12 / rate_down``). Seasons not completed before a break are
    NaN.
    """
    amp, sos, eos, ru, rd = p["amp"], p["sos"], p["eos"], p["ru"], p["rd"]
    k_n, n_pix = amp.shape
    valid = np.isfinite(amp)
    fill = np.where(valid, sos, 0.0), np.where(valid, eos, 1.0)
    pos = np.full((k_n, n_pix), np.nan)
    for k in range(k_n):
        root = _bisect(lambda t: -_dcurve(t, p), fill[0][k], fill[1][k])
        pos[k] = np.where(valid[k], root, np.nan)
    # previous / next valid component of each pixel, and the troughs between consecutive seasons
    prev_idx = np.full((k_n, n_pix), -1)
    last = np.full(n_pix, -1)
    for k in range(k_n):
        prev_idx[k] = last
        last = np.where(valid[k], k, last)
    cols = np.arange(n_pix)
    trough_before = np.full((k_n, n_pix), np.nan)
    for k in range(k_n):
        has = valid[k] & (prev_idx[k] >= 0)
        lo = np.where(has, pos[np.maximum(prev_idx[k], 0), cols], 0.0)
        hi = np.where(has, pos[k], 1.0)
        root = _bisect(lambda t: _dcurve(t, p), np.nan_to_num(lo), np.nan_to_num(hi, nan=1.0))
        trough_before[k] = np.where(has, root, np.nan)
    trough_after = np.full((k_n, n_pix), np.nan)
    for k in range(k_n):
        # the trough after k is the trough before the next valid component
        for j in range(k + 1, k_n):
            take = np.isnan(trough_after[k]) & (prev_idx[j] == k) & valid[j]
            trough_after[k] = np.where(take, trough_before[j], trough_after[k])

    rise = np.full((k_n, n_pix), np.nan)
    fall = np.full((k_n, n_pix), np.nan)
    for k in range(k_n):
        peak = _curve(np.nan_to_num(pos[k]), p)
        thr = p["base"] + fraction * (peak - p["base"])
        lo = np.where(np.isnan(trough_before[k]), sos[k] - 12.0 / ru[k], trough_before[k])
        hi = np.where(np.isnan(trough_after[k]), eos[k] + 12.0 / rd[k], trough_after[k])
        lo, hi, pk = np.nan_to_num(lo), np.nan_to_num(hi, nan=1.0), np.nan_to_num(pos[k])
        ok_up = valid[k] & (_curve(lo, p) < thr)
        ok_dn = valid[k] & (_curve(hi, p) < thr)
        r = _bisect(lambda t, thr=thr: _curve(t, p) - thr, lo, pk)
        f = _bisect(lambda t, thr=thr: thr - _curve(t, p), pk, hi)
        rise[k] = np.where(ok_up, r, np.nan)
        fall[k] = np.where(ok_dn, f, np.nan)
    if break_days is not None:
        done = (eos + 12.0 / rd) <= break_days[None, :]
        keep = np.isnan(break_days)[None, :] | done
        pos, rise, fall = (np.where(keep, a, np.nan) for a in (pos, rise, fall))
    return {"pos": pos, "sos": rise, "eos": fall}


def crossing_dates(truth: xr.Dataset, fraction: float) -> xr.Dataset:
    """Exact dates where the true NDVI curve crosses ``fraction`` of each season's amplitude.

    The threshold of a season is ``base + fraction * (peak - base)`` with ``peak`` the curve's
    maximum in that season; the rising crossing is searched between the previous trough and the
    peak, the falling one between the peak and the next trough. Seasons cut by a break are NaT.
    ``fraction=0.5`` reproduces ``truth.sos``/``truth.eos``.

    Parameters
    ----------
    truth
        The truth Dataset of :func:`synthetic_cube`.
    fraction
        Fraction of the amplitude, strictly between 0 and 1 (e.g. 0.2 for a 20 % threshold).

    Returns
    -------
    xarray.Dataset
        ``sos``, ``eos`` (datetime64) and ``sos_doy``, ``eos_doy`` (day of year) on
        ``(year, season, y, x)``, with ``attrs["fraction"]``.

    Examples
    --------
    >>> from eoai.datasets import synthetic_cube, crossing_dates
    >>> cube, truth = synthetic_cube(shape=(16, 16), cloud_fraction=0.0, seed=2)
    >>> c20 = crossing_dates(truth, 0.2)
    >>> bool((c20.sos_doy < truth.sos_doy).sum() > 0)
    True
    """
    if not isinstance(truth, xr.Dataset) or "curve_amplitude" not in truth:
        raise InputError("truth must be the truth Dataset returned by synthetic_cube")
    if not 0.0 < float(fraction) < 1.0:
        raise InputError(f"fraction must be strictly between 0 and 1, got {fraction}")
    t0 = pd.Timestamp(truth.attrs["t0"])
    year_off = np.array(
        [(pd.Timestamp(year=int(y), month=1, day=1) - t0).days for y in truth.year.values], float
    )
    shape4 = truth.curve_amplitude.shape
    n_pix = shape4[2] * shape4[3]

    def flat(name: str, doy: bool = False) -> np.ndarray:
        a = truth[name].values.astype(float)
        if doy:
            a = a + year_off[:, None, None, None] - 1
        return a.reshape(-1, n_pix)

    par = {
        "amp": flat("curve_amplitude"), "sos": flat("curve_sos", True),
        "eos": flat("curve_eos", True), "ru": flat("curve_rate_up"), "rd": flat("curve_rate_down"),
    }  # fmt: skip
    par["base"] = truth.curve_base.values.astype(float).ravel()
    bd = truth.break_date.values.ravel()
    break_days = np.where(
        np.isnat(bd), np.nan, (bd - np.datetime64(t0, "ns")) / np.timedelta64(1, "D")
    )
    ph = _season_truth(_finite(par), float(fraction), break_days)
    out = {}
    for key in ("sos", "eos"):
        days = ph[key].reshape(shape4)
        doy = (days - year_off[:, None, None, None] + 1).astype(np.float32)
        ns = np.where(np.isfinite(days), days * 86400e9, 0).astype("int64")
        dates = np.where(
            np.isfinite(days), np.datetime64(t0, "ns") + ns.astype("timedelta64[ns]"),
            np.datetime64("NaT"),
        )  # fmt: skip
        out[key] = (("year", "season", "y", "x"), dates)
        out[f"{key}_doy"] = (("year", "season", "y", "x"), doy)
    coords = {
        k: truth.coords[k] for k in ("year", "season", "y", "x", "spatial_ref") if k in truth.coords
    }
    return xr.Dataset(out, coords=coords, attrs={"fraction": float(fraction)})


def _finite(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keep NaN amplitude as the validity flag; make the other parameters finite for evaluation."""
    valid = np.isfinite(p["amp"])
    q = dict(p)
    for k in ("sos", "eos", "ru", "rd"):
        q[k] = np.where(valid, p[k], 1.0)
    q["amp0"] = np.where(valid, p["amp"], 0.0)  # amplitude 0 where a pixel has no such season
    return q
