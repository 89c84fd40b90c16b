"""Change detection: breaks in time series (BFAST Monitor) and bi-temporal change maps.

- :func:`detect_breaks`: per pixel, a season-trend model fitted on a stable history and OLS-MOSUM
  monitoring of the observations after ``monitor_start`` (R's ``bfastmonitor``), vectorised over
  pixels (numba) and lazy over dask chunks.
- :func:`change`: before/after composites, change vector analysis or index differencing, and an
  automatic threshold (Otsu or k x sigma) into a change mask.

Examples
--------
>>> import numpy as np, pandas as pd, xarray as xr
>>> from eoai.timeseries.change import detect_breaks
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
from .._provenance import VARIABLE_KEYS, provenance
from ..errors import InputError, MissingDimensionError, TimeAxisError, UnknownBandError
from . import _bfast
from ._mosum_critvals import PERIODS, WINSIZES, mosum_critval
from ._nodata import to_float_with_nan

__all__ = ["detect_breaks", "change"]

_NAT = np.datetime64("NaT", "ns")


# --------------------------------------------------------------------------------------------
# input helpers
# --------------------------------------------------------------------------------------------


def _select_variable(obj: Any, variable: str | None, func: str) -> xr.DataArray:
    if isinstance(obj, xr.DataArray):
        return obj
    if isinstance(obj, xr.Dataset):
        names = list(obj.data_vars)
        if variable is None:
            if len(names) == 1:
                return obj[names[0]]
            raise InputError(
                f"{func} works on one variable and the Dataset has {len(names)}: {names}; "
                "pick one with variable='<name>' (or compute an index first, e.g. "
                "cube.eoai.index('ndvi'))"
            )
        if variable not in obj.data_vars:
            raise UnknownBandError(
                f"variable {variable!r} is not in the Dataset; available: {names}"
            )
        return obj[variable]
    raise InputError(
        f"{func} needs an xarray DataArray or Dataset, got {type(obj).__name__}; wrap numpy "
        "arrays with xr.DataArray(values, dims=('time', 'y', 'x'), coords={'time': dates})"
    )


def _check_time(da: xr.DataArray, func: str) -> pd.DatetimeIndex:
    if "time" not in da.dims:
        raise MissingDimensionError(
            f"{func} needs a 'time' dimension, found dims {tuple(da.dims)}; rename yours with "
            "obj.rename({'<your time dim>': 'time'})"
        )
    if "time" not in da.coords or not np.issubdtype(da["time"].dtype, np.datetime64):
        raise TimeAxisError(
            f"{func}: the 'time' dimension needs datetime64 coordinates; assign them with "
            "obj.assign_coords(time=pd.to_datetime(dates))"
        )
    times = pd.DatetimeIndex(da["time"].values)
    if times.hasnans:
        raise TimeAxisError(f"{func}: the time coordinate contains NaT; drop those dates first")
    if not times.is_monotonic_increasing:
        raise TimeAxisError(f"{func}: the time axis is not sorted; sort it with obj.sortby('time')")
    if times.has_duplicates:
        raise TimeAxisError(
            f"{func}: the time axis has {int(times.duplicated().sum())} duplicate date(s); merge "
            "them first, e.g. obj.groupby('time').mean()"
        )
    return times


def _timestamp(value: Any, name: str, func: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"{func}: {name}={value!r} is not a date; give e.g. '2021-01-01' or a datetime"
        ) from err
    if ts is pd.NaT:
        raise InputError(f"{func}: {name} must be a date, got NaT")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _single_time_chunk(da: xr.DataArray) -> xr.DataArray:
    if da.chunks is None:
        return da
    axis = da.get_axis_num("time")
    if len(da.chunks[axis]) == 1:
        return da
    return da.chunk({"time": -1})


def _keep_spatial_meta(out: xr.Dataset, src: xr.DataArray | xr.Dataset) -> xr.Dataset:
    """Carry the CRS coordinate ``spatial_ref`` (and odc-geo's grid mapping) to the output."""
    for name in ("spatial_ref", "crs"):
        if name in src.coords:  # also when apply_ufunc(keep_attrs=False) kept it without its attrs
            out = out.assign_coords({name: src.coords[name]})
    for var in out.data_vars:
        gm = src.attrs.get("grid_mapping") or src.encoding.get("grid_mapping")
        if gm:
            out[var].attrs.setdefault("grid_mapping", gm)
    return out


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
    device: str = "cpu",
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
    device : {"cpu", "auto", "torch", "cuda", "cuda:N"}, default "cpu"
        Where to compute: "cpu" the numba kernels; "torch" the torch backend on the CPU;
        "cuda" / "cuda:N" the torch backend on that GPU (float64, same results); "auto" the GPU
        when torch sees one, else the numba kernels.

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
    da = _select_variable(obj, variable, func)
    times = _check_time(da, func)
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
        from ._bfast_torch import resolve_device

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
    roc_lambda = _bfast.roc_critval(float(levels[1]))

    mon = _timestamp(monitor_start, "monitor_start", func)
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
        hstart = _timestamp(history, "history", func)
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

    X = _bfast.design_matrix(_bfast.decimal_year(times.values), order, bool(trend))
    da, _ = to_float_with_nan(da, func)  # declared nodata -> NaN, CF packing applied
    da = _single_time_chunk(da)
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
            from . import _bfast_torch

            res = _bfast_torch.run_kernel(block, X, **params, device=torch_device)
        else:
            res = _bfast.run_kernel(block, X, **params)
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
                flag_meanings=_bfast.STATUS_MEANINGS,
            ),
        }
    )
    out = _keep_spatial_meta(out, obj)
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
    step = {k.removeprefix("eoai:"): v for k, v in flat.items() if k != "eoai:method"}
    out.attrs = {**provenance(sources, "bfastmonitor", step), **flat}
    return out


def _breaks_message(totals: dict[str, dict[str, int]]) -> str | None:
    """The one warning of a detect_breaks() call, from the status counts over its chunks."""
    c = totals.get("", {})
    names = _bfast.STATUS_MEANINGS.split()
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


# --------------------------------------------------------------------------------------------
# bi-temporal change
# --------------------------------------------------------------------------------------------

_NOT_SPECTRAL = {"scl", "clm", "qa", "mask", "fmask", "spatial_ref"}


def _index(cube: xr.Dataset, name: str) -> xr.DataArray:
    """A spectral index of the cube (:func:`eoai.indices.index`, lazy)."""
    from ..indices import index as _eoai_index

    return _eoai_index(cube, name)


def _period(
    obj: xr.Dataset | xr.DataArray, period: Any, name: str, times: pd.DatetimeIndex
) -> tuple[xr.Dataset | xr.DataArray, str]:
    """Select a date range: (start, end), slice, or a partial date string ('2021', '2021-07')."""
    func = "change"
    if isinstance(period, slice):
        start, stop = period.start, period.stop
    elif isinstance(period, (tuple, list)) and len(period) == 2:
        start, stop = period
    elif isinstance(period, str):
        try:
            p = pd.Period(period)
        except (ValueError, TypeError) as err:
            raise InputError(
                f"{func}: {name}={period!r} is not a date range; give (start, end), a slice or a "
                "partial date such as '2021' or '2021-07'"
            ) from err
        start, stop = p.start_time, p.end_time
    else:
        raise InputError(
            f"{func}: {name}={period!r} is not a date range; give (start, end), a slice or a "
            "partial date such as '2021' or '2021-07'"
        )
    t0 = _timestamp(start, name, func) if start is not None else times[0]
    t1 = _timestamp(stop, name, func) if stop is not None else times[-1]
    if isinstance(stop, str) and len(stop) < 11:  # a day or coarser: include the whole period
        t1 = pd.Period(stop).end_time
    sel = (times >= t0) & (times <= t1)
    if not sel.any():
        raise TimeAxisError(
            f"{func}: no date of the cube falls in {name}=({t0.date()}, {t1.date()}); the cube "
            f"covers {times[0].date()} to {times[-1].date()}"
        )
    return obj.isel(time=np.flatnonzero(sel)), f"{t0.date()}/{t1.date()}"


def _composite(obj: xr.DataArray) -> xr.DataArray:
    """Median over time of the valid observations (NaN where a pixel has none)."""
    obj = _single_time_chunk(obj)
    return xr.apply_ufunc(
        _nanmedian_block,
        obj,
        input_core_dims=[["time"]],
        dask="parallelized",
        output_dtypes=[obj.dtype],
        keep_attrs=True,
    )


def _nanmedian_block(values: np.ndarray) -> np.ndarray:
    """Median over the last axis of the valid values; NaN (silently: change() counts them once
    per call) where there is none. Never warns per chunk ("All-NaN slice")."""
    valid = np.isfinite(values).any(axis=-1)
    filled = np.where(valid[..., None], values, 0)
    return np.where(valid, np.nanmedian(filled, axis=-1), np.nan).astype(values.dtype, copy=False)


def _change_block(
    mag: np.ndarray, pre_ok: np.ndarray, post_ok: np.ndarray, thr: np.ndarray
) -> np.ndarray:
    """Change mask of a chunk: 1 / 0 where the magnitude is known, NaN where it is not."""
    known = np.isfinite(mag) & np.isfinite(thr)
    with np.errstate(invalid="ignore"):
        out = np.where(known, (mag > thr).astype(np.float32), np.float32(np.nan))
    _skipped.count(
        nodata=int((~np.isfinite(mag)).sum()),
        no_before=int((~pre_ok).sum()),
        no_after=int((~post_ok).sum()),
        pixels=mag.size,
    )
    return out.astype(np.float32)


def _change_message(totals: dict[str, dict[str, int]]) -> str | None:
    """The one warning of a change() call, from the counts summed over its chunks."""
    c = totals.get("", {})
    if not c.get("nodata"):
        return None
    return (
        f"change: {c['nodata']} of {c['pixels']} pixels have no valid observation of every "
        f"feature in a period ({c['no_before']} in before, {c['no_after']} in after) and are NaN "
        "in magnitude, change and direction/difference (not 'no change'); gap-fill the cube "
        "first (cube.eoai.gapfill(...)) or widen the periods"
    )


def _otsu_from_hist(hist: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Otsu's threshold (maximal between-class variance) from a histogram."""
    hist = np.asarray(hist, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if hist.sum() == 0 or not np.isfinite(edges).all():
        return np.array(np.nan)
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)[:-1]
    s0 = np.cumsum(hist * centres)[:-1]
    total, stotal = hist.sum(), (hist * centres).sum()
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (s0 / w0 - (stotal - s0) / w1) ** 2
    between[~np.isfinite(between)] = -1.0
    return np.array(edges[int(np.argmax(between)) + 1])


def _threshold(mag: xr.DataArray, threshold: Any, k: float, bins: int = 256) -> xr.DataArray:
    """The change threshold of ``mag`` as a 0-d DataArray (lazy when ``mag`` is)."""
    data = mag.data
    lazy = mag.chunks is not None
    if isinstance(threshold, numbers.Real) and not isinstance(threshold, bool):
        return xr.DataArray(float(threshold))
    if threshold == "ksigma":
        mean = mag.mean(skipna=True)
        std = mag.std(skipna=True)
        return (mean + k * std).drop_vars(list(mag.coords), errors="ignore")
    # otsu on a histogram of the whole image
    if lazy:
        import dask
        import dask.array as dsa

        flat = data.ravel()
        lo, hi = dsa.nanmin(flat), dsa.nanmax(flat)
        hist, edges = dsa.histogram(flat, bins=bins, range=(lo, hi))
        thr = dsa.from_delayed(
            dask.delayed(_otsu_from_hist)(hist, edges), shape=(), dtype=np.float64
        )
        return xr.DataArray(thr)
    flat = np.asarray(data, dtype=np.float64).ravel()
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return xr.DataArray(np.nan)
    hist, edges = np.histogram(flat, bins=bins, range=(flat.min(), flat.max()))
    return xr.DataArray(_otsu_from_hist(hist, edges))


def change(
    cube: xr.Dataset | xr.DataArray,
    before: Any,
    after: Any,
    method: str = "cva",
    *,
    bands: list[str] | None = None,
    index: str | list[str] | None = None,
    threshold: str | float = "otsu",
    k: float = 2.0,
    bins: int = 256,
) -> xr.Dataset:
    """Bi-temporal change map between two periods of a cube.

    Each period is reduced to a per-pixel median composite of its valid observations (use a
    gap-filled cube, e.g. ``cube.eoai.gapfill(...)``, to avoid holes), then:

    - ``method="cva"``: change vector analysis over ``bands`` (or the indices in ``index``):
      ``magnitude`` = Euclidean norm of the after - before vector; ``direction`` = its angle in
      degrees (0-360, counter-clockwise from the first feature's axis) for two features, else the
      sector code ``sum(2**i for features i that increased)``;
    - ``method="difference"``: difference of one band or index (e.g. ``index="nbr"`` gives dNBR,
      ``index="ndvi"`` dNDVI): ``difference`` = after - before (dNBR in the burn-severity
      convention, pre minus post, is ``-difference``) and ``magnitude = |difference|``.

    The ``change`` mask is ``magnitude > threshold`` with the threshold chosen by Otsu's method on
    a histogram of the whole image (``dask.array.histogram``, lazy), as mean + ``k`` standard
    deviations of the magnitude (``"ksigma"``), or given as a number. The threshold is returned as
    the 0-d variable ``threshold``.

    Parameters
    ----------
    cube : xarray.Dataset or xarray.DataArray
        ``(time, y, x)`` bands (NaN = invalid) or one band / index.
    before, after : (start, end), slice or str
        The two periods: a pair of dates, a slice or a partial date ('2021', '2021-07').
    method : {"cva", "difference"}, default "cva"
    bands : list of str, optional
        Bands for CVA (default: all floating-point variables except masks) or the band to
        difference.
    index : str or list of str, optional
        Spectral index(es) computed from the bands (``eoai.indices.index``), used instead of bands.
    threshold : {"otsu", "ksigma"} or float, default "otsu"
    k : float, default 2.0
        Number of standard deviations for ``threshold="ksigma"``.
    bins : int, default 256
        Histogram bins for Otsu.

    Returns
    -------
    xarray.Dataset
        ``magnitude``, ``change`` (float32: 1 change, 0 no change, NaN no data; test with
        ``== 1``), ``threshold`` (0-d), ``direction`` (cva) or ``difference`` (difference), and
        the ``before``/``after`` composites (dims ``feature``, y, x); CRS coordinate and attrs
        kept, ``attrs["eoai:method"]`` and the parameters. A pixel without a valid observation of
        every feature in a period is NaN in ``magnitude``, ``change`` and ``direction`` /
        ``difference`` (never "no change"), with one
        :class:`~eoai.errors.DataSkippedWarning` per call (per compute of a lazy result) giving
        the count.

    Raises
    ------
    eoai.errors.InputError
        Unknown method or threshold, bad periods.
    eoai.errors.TimeAxisError
        A period without any date of the cube.
    eoai.errors.UnknownBandError
        Unknown band or index.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2021-06-01", periods=6, freq="30D")
    >>> red = np.full((6, 4, 4), 0.05); nir = np.full((6, 4, 4), 0.4)
    >>> nir[3:, :2, :2] = 0.1  # a clear-cut in the top-left corner
    >>> cube = xr.Dataset({"red": (("time", "y", "x"), red), "nir": (("time", "y", "x"), nir)},
    ...                   coords={"time": t})
    >>> out = change(cube, before=("2021-06-01", "2021-08-01"), after=("2021-08-02", "2022-01-01"))
    >>> out["change"].values.astype(int).tolist()
    [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    >>> float(out["magnitude"][0, 0].round(3))
    0.3
    """
    func = "change"
    if method not in ("cva", "difference"):
        raise InputError(f"{func}: method={method!r} is unknown; use 'cva' or 'difference'")
    if not (
        threshold in ("otsu", "ksigma")
        or (isinstance(threshold, numbers.Real) and not isinstance(threshold, bool))
    ):
        raise InputError(
            f"{func}: threshold={threshold!r} is unknown; use 'otsu', 'ksigma' or a number"
        )
    if not isinstance(cube, (xr.Dataset, xr.DataArray)):
        raise InputError(
            f"{func} needs an xarray Dataset or DataArray with a time dimension, got "
            f"{type(cube).__name__}"
        )
    if "time" not in cube.dims:
        raise MissingDimensionError(
            f"{func} needs a 'time' dimension, found dims {tuple(cube.dims)}"
        )
    ds = cube.to_dataset(name=cube.name or "value") if isinstance(cube, xr.DataArray) else cube
    times = _check_time(ds[next(iter(ds.data_vars))], func)

    # features (time, y, x) each
    if index is not None:
        names = [index] if isinstance(index, str) else list(index)
        feats = {n: _index(ds, n) for n in names}
    else:
        if bands is None:
            names = [
                v
                for v in ds.data_vars
                if np.issubdtype(ds[v].dtype, np.floating)
                and v.lower() not in _NOT_SPECTRAL
                and "time" in ds[v].dims
            ]
        else:
            names = [bands] if isinstance(bands, str) else list(bands)
            missing = [b for b in names if b not in ds.data_vars]
            if missing:
                raise UnknownBandError(
                    f"bands {missing} are not in the cube; available: {list(ds.data_vars)}"
                )
        if not names:
            raise InputError(f"{func}: the cube has no floating-point band to compare")
        feats = {n: ds[n] for n in names}
    if method == "difference" and len(feats) != 1:
        raise InputError(
            f"{func}: method='difference' compares one band or index, got {list(feats)}; pass "
            "index='nbr' (dNBR), index='ndvi' (dNDVI) or bands=['<band>']"
        )
    feats = {n: to_float_with_nan(f, func)[0] for n, f in feats.items()}  # nodata -> NaN
    stack = xr.concat(
        [f.astype(np.float32) if f.dtype == np.float32 else f for f in feats.values()],
        dim=pd.Index(list(feats), name="feature"),
        coords="minimal",
        compat="override",
    )
    pre, pre_desc = _period(stack, before, "before", times)
    post, post_desc = _period(stack, after, "after", times)
    pre_c, post_c = _composite(pre), _composite(post)
    diff = post_c - pre_c

    data_vars: dict[str, xr.DataArray] = {}
    if method == "cva":
        mag = np.sqrt((diff**2).sum("feature", skipna=False))
        if diff.sizes["feature"] == 2:
            d0, d1 = diff.isel(feature=0), diff.isel(feature=1)
            direction = (np.degrees(np.arctan2(d1, d0)) % 360.0).where(mag.notnull())
            direction.attrs = {
                "long_name": f"CVA direction (angle from {names[0]} towards {names[1]})",
                "units": "degree",
            }
        else:
            weights = xr.DataArray(2 ** np.arange(diff.sizes["feature"]), dims="feature")
            direction = ((diff > 0) * weights).sum("feature").where(mag.notnull())
            direction.attrs = {
                "long_name": "CVA sector: sum of 2**i over the features i that increased",
                "features": ",".join(map(str, feats)),
            }
        data_vars["direction"] = direction
    else:
        d = diff.isel(feature=0, drop=True)
        d.attrs = {"long_name": f"{names[0]} after minus before"}
        data_vars["difference"] = d
        mag = abs(d)
    mag = mag.drop_vars([c for c in mag.coords if c == "feature"], errors="ignore")
    mag.attrs = {"long_name": f"change magnitude ({method})"}
    thr = _threshold(mag, threshold, k, bins)
    thr.attrs = {"long_name": "change threshold", "method": str(threshold)}
    call = _skipped.SkippedCall(_change_message)
    pre_ok = pre_c.notnull().all("feature").drop_vars(["feature"], errors="ignore")
    post_ok = post_c.notnull().all("feature").drop_vars(["feature"], errors="ignore")
    chg = xr.apply_ufunc(
        call.reporter(_change_block),
        mag,
        pre_ok,
        post_ok,
        thr,
        call.chunk_ids(mag, []),
        dask="parallelized",
        output_dtypes=[np.float32],
    )
    call.seal()
    chg.attrs = {
        "long_name": "change mask (magnitude > threshold); NaN: no valid data in a period",
        "flag_values": np.array([0, 1], np.float32),
        "flag_meanings": "no_change change",
    }
    out = xr.Dataset(
        {
            "magnitude": mag,
            **data_vars,
            "change": chg,
            "threshold": thr,
            "before": pre_c.assign_attrs(long_name=f"median composite {pre_desc}"),
            "after": post_c.assign_attrs(long_name=f"median composite {post_desc}"),
        }
    )
    out = _keep_spatial_meta(out, cube)
    flat = {
        "eoai:method": f"change:{method}",
        "eoai:before": pre_desc,
        "eoai:after": post_desc,
        "eoai:features": ",".join(map(str, feats)),
        "eoai:feature_kind": "index" if index is not None else "band",
        "eoai:threshold": str(threshold),
        "eoai:k": float(k),
        "eoai:composite": "median of valid observations",
    }
    sources = [dict(cube.attrs)] if isinstance(cube, xr.Dataset) else []
    if isinstance(cube, xr.DataArray):
        sources.append({a: v for a, v in cube.attrs.items() if a not in VARIABLE_KEYS})
    step = {k.removeprefix("eoai:"): v for k, v in flat.items() if k != "eoai:method"}
    step["features"] = list(feats)
    out.attrs = {**provenance(sources, f"change:{method}", step), **flat}
    return out
