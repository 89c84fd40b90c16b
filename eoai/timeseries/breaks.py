"""Breaks in time series: BFAST Monitor (R's ``bfastmonitor``), vectorised and lazy.

:func:`detect_breaks`: per pixel, a season-trend model fitted on a stable history and OLS-MOSUM
monitoring of the observations after ``monitor_start``, vectorised over pixels (numba kernels in
:mod:`._breaks_numba`, torch kernels in :mod:`._breaks_torch`) and lazy over dask chunks. The reference
implementation the tests compare with is :mod:`eoai.testing.bfast_reference`.

Examples
--------
>>> import numpy as np, pandas as pd, xarray as xr
>>> from eoai.timeseries.breaks import detect_breaks
>>> t = pd.date_range("2018-01-01", periods=160, freq="8D")
>>> rng = np.random.default_rng(0)
>>> season = 0.5 + 0.2 * np.sin(2 * np.pi * t.day_of_year.to_numpy() / 365.25)
>>> y = season + rng.normal(0, 0.02, (2, 2, t.size))
>>> y[0, 0, t >= "2021-03-01"] -= 0.2  # a clearing on one pixel
>>> da = xr.DataArray(y, dims=("y", "x", "time"), coords={"time": t}).transpose("time", "y", "x")
>>> out = detect_breaks(da, "2021-01-01")
>>> out["break"].values.tolist()
[[1.0, 0.0], [0.0, 0.0]]
>>> str(out["break_date"].values[0, 0])[:10]
'2021-03-06'
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import _skipped
from .._provenance import VARIABLE_KEYS, flat_parameters, provenance
from ..errors import InputError, TimeAxisError
from . import _breaks_numba
from ._mosum_critvals import PERIODS, WINSIZES, mosum_critval
from ._nodata import to_float_with_nan
from ._timeaxis import (
    check_time,
    keep_spatial_meta,
    select_variable,
    single_time_chunk,
    to_timestamp,
)

__all__ = ["detect_breaks"]

_NAT = np.datetime64("NaT", "ns")


# --------------------------------------------------------------------------------------------
# detect_breaks
# --------------------------------------------------------------------------------------------


def detect_breaks(
    obj: xr.DataArray | xr.Dataset,
    monitor_start: Any,
    *,
    history: str | Any = "roc",
    variable: str | None = None,
    order: int = 3,
    trend: bool = True,
    h: float = 0.25,
    level: float | tuple[float, float] = 0.05,
    end: int = 10,
    min_history: int | None = None,
    standardize: str = "exact",
    device: str = "auto",
) -> xr.Dataset:
    """Detect breaks in each pixel's series after ``monitor_start`` (BFAST Monitor).

    A season-trend model (intercept, optional linear trend and ``order`` harmonics of the
    fractional year) is fitted by OLS on each pixel's stable history and the residuals after
    ``monitor_start`` are monitored with the OLS-MOSUM process of R's ``bfastmonitor``
    (strucchange ``mefp``/``monitor``). Each pixel uses only its valid (non-NaN) observations.
    The work runs per chunk (``xr.apply_ufunc(dask="parallelized")``, time in one chunk) in a
    numba kernel vectorised over pixels.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Series with a ``time`` dimension (e.g. NDVI ``(time, y, x)``), NaN where invalid.
    monitor_start : str or datetime-like
        First date of the monitoring period; it must lie after the first date and not after the
        last date of the series.
    history : {"roc", "all"} or datetime-like, default "roc"
        Start of the stable history: chosen per pixel by the reverse-ordered CUSUM test of
        ``bfastmonitor`` ("roc"), all observations before ``monitor_start`` ("all"), or a date.
    variable : str, optional
        The variable to use when ``obj`` is a Dataset with several.
    order : int, default 3
        Number of harmonic pairs.
    trend : bool, default True
        Include a linear trend.
    h : {0.25, 0.5, 1.0}, default 0.25
        MOSUM bandwidth as a fraction of the pixel's history length.
    level : float or (float, float), default 0.05
        Significance level of the monitoring (0.001 to 0.05) and, if a pair is given, of the ROC
        history test (its second element, as in bfastmonitor).
    end : {2, 4, 6, 8, 10}, default 10
        Maximum monitoring length in multiples of the history for which the boundary keeps its
        level (bfastmonitor's ``end``).
    min_history : int, optional
        Minimum number of valid history observations; default: one more than the model's number
        of parameters (``2 * order + 2`` with trend), the least bfastmonitor accepts.
    standardize : {"exact", "asymptotic"}, default "exact"
        "asymptotic" divides the moving sums by ``sigma * sqrt(n)`` exactly as bfastmonitor does;
        its boundary assumes stationary regressors, and with ``trend=True`` the extrapolated trend
        makes false alarms far more frequent than ``level`` (about 30 % at level 0.05 when the
        monitoring period is half the history). "exact" (default) also rescales each window by
        the ratio of the exact variance of its residual sum under no change (history estimation
        error included, ``K - 2 a'G a_h + a'G a``) to the variance the intercept-only limit
        assumes, which keeps the false-alarm rate below ``level`` (tested).
    device : {"auto", "cpu", "torch", "cuda", "cuda:N"}, default "auto"
        Where to compute: "cpu" the numba kernels; "torch" the torch backend on the CPU;
        "cuda" / "cuda:N" the torch backend on that GPU (float64, same results); "auto" the
        ``device`` option of :func:`eoai.set_options` when set, else the GPU when torch sees
        one, else the numba kernels.

    Returns
    -------
    xarray.Dataset
        On the non-time dims of ``obj``:

        - ``break`` (float32): 1 a break was detected, 0 none, NaN where the pixel was not
          monitored (``status > 0``: no data is never "no break"; test with ``== 1``);
        - ``break_date`` (datetime64): date of the first observation after the break (the
          least-squares mean-shift date of the residuals up to the detection), NaT if none;
        - ``detection_date`` (datetime64): bfastmonitor's break point, the observation at which
          the MOSUM process first crossed its boundary;
        - ``magnitude``: median residual over the monitoring period (NaN where not monitored);
        - ``history_start`` (datetime64): first observation of the stable history used;
        - ``n_valid``: number of valid observations; ``n_history``: of them in the history used;
        - ``status`` (int8): 0 monitored, 1 no valid observation, 2 history too short,
          3 no observation in the monitoring period, 4 degenerate history fit. Pixels with
          ``status > 0`` have ``break`` NaN, dates NaT and ``magnitude`` NaN, and one
          :class:`~eoai.errors.DataSkippedWarning` per call (per compute of a lazy result)
          counts them by status.

    Raises
    ------
    eoai.errors.TimeAxisError
        ``monitor_start`` outside the series, or too few dates in the history for the model.
    eoai.errors.InputError
        Bad ``order``, ``h``, ``level``, ``end``, ``history`` or ``device``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2019-01-01", periods=120, freq="10D")
    >>> doy = t.day_of_year.to_numpy()
    >>> y = 0.6 + 0.1 * np.cos(2 * np.pi * doy / 365.25) + np.random.default_rng(1).normal(0, 0.02, 120)
    >>> y[t >= "2021-06-01"] -= 0.15
    >>> da = xr.DataArray(y[:, None, None], dims=("time", "y", "x"), coords={"time": t})
    >>> res = detect_breaks(da, "2021-01-01", history="all")
    >>> bool(res["break"][0, 0]), str(res["break_date"].values[0, 0])[:10]
    (True, '2021-06-09')
    """
    func = "detect_breaks"
    da = select_variable(obj, variable, func)
    da = check_time(da, func=func)
    times = pd.DatetimeIndex(da["time"].values)
    if not isinstance(order, numbers.Integral) or isinstance(order, bool) or order < 1:
        raise InputError(
            f"{func}: order must be a positive integer (harmonic pairs), got {order!r}"
        )
    order = int(order)
    k = 1 + int(bool(trend)) + 2 * order
    if standardize not in ("exact", "asymptotic"):
        raise InputError(
            f"{func}: standardize={standardize!r} is unknown; use 'exact' or 'asymptotic'"
        )
    torch_device = None
    if device != "cpu":
        from ._breaks_torch import resolve_device

        torch_device = resolve_device(device, func)
    if float(h) not in WINSIZES:
        raise InputError(f"{func}: h={h!r} is not supported; use one of {WINSIZES}")
    if end not in PERIODS:
        raise InputError(f"{func}: end={end!r} is not supported; use one of {PERIODS}")
    levels = (level, level) if np.isscalar(level) else tuple(level)
    if len(levels) != 2 or not all(0 < float(v) < 1 for v in levels):
        raise InputError(
            f"{func}: level must be a float in (0, 1) or a pair of them, got {level!r}"
        )
    critval = mosum_critval(float(h), int(end), float(levels[0]))
    if not 0.0001 <= float(levels[1]) <= 0.5:
        raise InputError(f"{func}: the ROC level must lie in [0.0001, 0.5], got {levels[1]!r}")
    roc_lambda = _breaks_numba.roc_critval(float(levels[1]))

    mon = to_timestamp(monitor_start, "monitor_start", func)
    if not times[0] < mon <= times[-1]:
        raise TimeAxisError(
            f"{func}: monitor_start={mon.date()} is outside the series ({times[0].date()} to "
            f"{times[-1].date()}); it must lie after the first date (a history is needed) and "
            "not after the last one"
        )
    mon_idx = int(np.searchsorted(times.values, mon.to_datetime64(), side="left"))

    if isinstance(history, str) and history.lower() in ("roc", "all"):
        use_roc = history.lower() == "roc"
        hist_idx = 0
        history_desc = history.lower()
    elif isinstance(history, str) and history.lower() in ("bp",):
        raise InputError(
            f"{func}: history='BP' (Bai-Perron) is not implemented; use 'roc', 'all' or a date"
        )
    else:
        hstart = to_timestamp(history, "history", func)
        if hstart >= mon:
            raise TimeAxisError(
                f"{func}: history={hstart.date()} must be before monitor_start={mon.date()}"
            )
        use_roc = False
        hist_idx = int(np.searchsorted(times.values, hstart.to_datetime64(), side="left"))
        history_desc = str(hstart.date())
    n_hist_dates = mon_idx - hist_idx
    if min_history is None:
        min_history = k + 1
    if not isinstance(min_history, numbers.Integral) or min_history < k + 1:
        raise InputError(
            f"{func}: min_history must be an integer >= {k + 1} (the model has {k} parameters)"
        )
    if n_hist_dates < min_history:
        raise TimeAxisError(
            f"{func}: the history ({n_hist_dates} dates before monitor_start={mon.date()}) is "
            f"shorter than the model needs: {k} parameters (order={order}, trend={trend}) need "
            f"at least {int(min_history)} observations; start monitoring later, lower `order` or "
            "set trend=False"
        )

    X = _breaks_numba.design_matrix(_breaks_numba.decimal_year(times.values), order, bool(trend))
    da, _ = to_float_with_nan(da, func)  # declared nodata -> NaN, CF packing applied
    da = single_time_chunk(da, "time", func)
    params = dict(
        mon_idx=mon_idx,
        hist_idx=hist_idx,
        use_roc=use_roc,
        roc_lambda=roc_lambda,
        h=float(h),
        critval=critval,
        min_history=int(min_history),
        exact_var=standardize == "exact",
    )

    def _kernel(block: np.ndarray) -> tuple[np.ndarray, ...]:
        if torch_device is not None:
            from . import _breaks_torch

            res = _breaks_torch.run_kernel(block, X, **params, device=torch_device)
        else:
            res = _breaks_numba.run_kernel(block, X, **params)
        codes = np.bincount(np.asarray(res[-1], np.int64).ravel(), minlength=5)
        _skipped.count(
            pixels=int(codes.sum()), **{f"status{i}": int(codes[i]) for i in range(1, 5)}
        )
        return res

    dtype = da.dtype if da.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    call = _skipped.SkippedCall(_breaks_message)
    outs = xr.apply_ufunc(
        call.reporter(_kernel),
        da,
        call.chunk_ids(da, ["time"]),
        input_core_dims=[["time"], []],
        output_core_dims=[[]] * 8,
        dask="parallelized",
        output_dtypes=[bool, np.int64, np.int64, np.float64, np.int64, np.int32, np.int32, np.int8],
        keep_attrs=False,  # each output gets its own attrs (a "units" on a date is unwritable)
    )
    call.seal()
    brk, detect_idx, break_idx, magnitude, start_idx, n_valid, n_history, status = outs
    # a pixel that was not monitored has no answer: NaN, never "no break"
    brk = brk.astype(np.float32).where(status == 0)
    dates = np.append(times.values.astype("datetime64[ns]"), _NAT)

    def _to_date(i: xr.DataArray) -> xr.DataArray:
        return xr.apply_ufunc(
            lambda a: dates[a], i, dask="parallelized", output_dtypes=["datetime64[ns]"],
            keep_attrs=False,
        )  # fmt: skip

    units = da.attrs.get("units")
    out = xr.Dataset(
        {
            "break": brk.assign_attrs(
                long_name="break detected in the monitoring period; NaN: not monitored (status)",
                flag_values=np.array([0, 1], np.float32),
                flag_meanings="no_break break",
            ),
            "break_date": _to_date(break_idx).assign_attrs(
                long_name="date of the first observation after the break"
            ),
            "detection_date": _to_date(detect_idx).assign_attrs(
                long_name="date at which the OLS-MOSUM process crossed its boundary"
            ),
            "magnitude": magnitude.astype(dtype).assign_attrs(
                long_name="median residual over the monitoring period",
                **({"units": units} if units else {}),
            ),
            "history_start": _to_date(start_idx).assign_attrs(
                long_name="first observation of the stable history"
            ),
            "n_valid": n_valid.assign_attrs(long_name="number of valid observations"),
            "n_history": n_history.assign_attrs(
                long_name="number of valid observations in the history used"
            ),
            "status": status.assign_attrs(
                long_name="monitoring status",
                flag_values=np.arange(5, dtype=np.int8),
                flag_meanings=_breaks_numba.STATUS_MEANINGS,
            ),
        }
    )
    out = keep_spatial_meta(out, obj)
    flat = {
        "eoai:variable": str(da.name) if da.name is not None else "",
        "eoai:monitor_start": str(mon.date()),
        "eoai:history": history_desc,
        "eoai:order": order,
        "eoai:trend": int(bool(trend)),
        "eoai:h": float(h),
        "eoai:level": float(levels[0]),
        "eoai:roc_level": float(levels[1]),
        "eoai:end": int(end),
        "eoai:min_history": int(min_history),
        "eoai:standardize": standardize,
        "eoai:critval": critval,
        "eoai:critval_source": "OLS-MOSUM table simulated as strucchange's monitorMECritvalTable",
    }
    # the input's attrs (a Dataset's, then its variable's) and lineage, then this step
    sources = [dict(obj.attrs)] if isinstance(obj, xr.Dataset) else []
    sources.append({a: v for a, v in da.attrs.items() if a not in VARIABLE_KEYS})
    # (not ``params``: the chunk function reads that one at compute time)
    step = flat_parameters(flat)
    out.attrs = {**provenance(sources, "detect_breaks:bfastmonitor", step), **flat}
    return out


def _breaks_message(totals: dict[str, dict[str, int]]) -> str | None:
    """The one warning of a detect_breaks() call, from the status counts over its chunks."""
    c = totals.get("", {})
    names = _breaks_numba.STATUS_MEANINGS.split()
    hit = [(names[i].replace("_", " "), c.get(f"status{i}", 0)) for i in range(1, 5)]
    hit = [(name, n) for name, n in hit if n]
    if not hit:
        return None
    return (
        f"detect_breaks: {sum(n for _, n in hit)} of {c.get('pixels', 0)} pixels were not "
        "monitored and are NaN/NaT in break, break_date, detection_date and magnitude ("
        + ", ".join(f"{n} {name}" for name, n in hit)
        + "); see the status variable"
    )
