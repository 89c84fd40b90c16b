"""Land-surface phenology metrics per pixel, season and year (TIMESAT-style threshold method).

For each pixel and year, the series (ideally smoothed: pass ``smooth="whittaker"`` to gap-fill and
smooth first) is read as a piecewise-linear curve through its valid samples. Peaks are interior
local maxima ranked by prominence; up to ``seasons`` of them (those whose prominence is at least
``min_prominence`` of the year's range and ``min_amplitude``) are kept, in date order, on a
``season`` dimension. For each season:

- ``pos`` / ``vpos``: peak date and value (refined by a parabola through the three samples around the
  maximum);
- ``base``: the lower of the minima before and after the peak (each searched up to the
  neighbouring season or the year edge); with ``base="sides"`` (TIMESAT) each side keeps its own
  minimum for its levels and ``base`` is their mean; ``amplitude`` = ``vpos - base``;
- ``sos`` / ``eos``: where the curve crosses ``base + threshold * amplitude`` on the way up / down
  (``threshold=0.2`` by default, 0.5 as in many TIMESAT set-ups) or, with ``absolute=True``, the
  value ``threshold``; searched outwards from the peak and linearly interpolated between samples;
  ``vsos`` / ``veos`` the values there; ``los`` = ``eos - sos`` in days;
- ``greenup_rate`` / ``senescence_rate``: rise (fall) between the 20 % and 80 % levels of the side
  amplitude divided by the time it takes (value per day, both positive);
- ``large_integral``: integral of the curve from sos to eos; ``small_integral``: integral of
  ``curve - base`` over the same span (value x days);
- ``mos``: middle of season, midway between the 80 % crossings on both sides.

Dates are datetime64 (``sos``, ``pos``, ``eos``, ``mos``), fractional calendar day of year of that
date (``sos_doy``..., 1.0 = 1 January 00:00; a season crossing 1 January has ``eos_doy < sos_doy``)
and days since the start of the season-year window (``sos_days``..., 0.0 = ``window_start``; they
keep increasing past 1 January, so ``eos_days - sos_days`` is the length of season).

Season years. The window of year ``Y`` runs from ``Y-MM-DD`` (``year_start``, default ``"01-01"``:
calendar years) to ``(Y+1)-MM-DD``; the ``year`` label is the year in which the window starts, and
the ``window_start`` / ``window_end`` coordinates give its bounds. A ``year`` dimension is added
when there are several windows; with the default ``year_start`` a series of at most 366 days is one
window (labelled with the year of its middle date) as before. ``year_start="09-01"`` gives
September-August agricultural years, so that a southern-hemisphere season (October to April) or a
tropical wet season lies inside one window instead of being cut by 1 January.

With ``windows="year"`` (default) each window is analysed alone and a season must lie inside it:
seasons cut by the window edge are not complete and are NaN. With ``windows="minima"`` the seasons
are found as TIMESAT does, between each pixel's own minima over the whole series: the peaks are
found on the whole series, a window keeps the ``seasons`` most prominent peaks dated inside it,
and each season's minima and crossings are searched up to the neighbouring kept peak, across the
window edges, so a season may start before its window or end after it (its dates then fall in the
neighbouring year). Pixel-years without data (fewer than 3 valid samples in the window), flat
(range below ``min_amplitude``) or without a complete season give NaN / NaT, never an invented
date, and a ``DataSkippedWarning`` counts them.
"""

from __future__ import annotations

import functools
import json
from typing import Any, cast

import numpy as np
import pandas as pd
import xarray as xr

from eoai import _skipped
from eoai._provenance import VARIABLE_KEYS, provenance
from eoai.errors import InputError, TimeAxisError
from eoai.timeseries import _phenology_numba as PK
from eoai.timeseries._nodata import to_float_with_nan
from eoai.timeseries._timeaxis import DAY_NS, check_time, days, single_time_chunk

__all__ = ["phenology", "METRICS"]

_FLOAT_OUT = tuple(f for f in PK.FIELDS if f not in PK.DATE_FIELDS)
METRICS = (
    *PK.DATE_FIELDS,
    *(f"{f}_doy" for f in PK.DATE_FIELDS),
    *(f"{f}_days" for f in PK.DATE_FIELDS),
    *_FLOAT_OUT,
)
_DESCRIPTIONS = {
    "sos": "start of season",
    "pos": "peak of season",
    "eos": "end of season",
    "mos": "middle of season (midway between the 80 % crossings)",
    "vsos": "value at the start of season",
    "vpos": "value at the peak of season",
    "veos": "value at the end of season",
    "base": "base level (minimum around the season, see eoai:parameters)",
    "amplitude": "peak value minus base",
    "los": "length of season (eos - sos)",
    "greenup_rate": "rate of green-up between the 20 % and 80 % levels",
    "senescence_rate": "rate of senescence between the 80 % and 20 % levels",
    "large_integral": "integral of the curve from sos to eos",
    "small_integral": "integral of the curve minus base from sos to eos",
}
_UNITS = {"los": "days", "greenup_rate": "1/day", "senescence_rate": "1/day",
          "large_integral": "days", "small_integral": "days"}  # fmt: skip
_FIELDS_OUT = ("year", "season", "__eoai_metric")


def phenology(
    obj: xr.DataArray | xr.Dataset,
    threshold: float = 0.2,
    seasons: int = 1,
    *,
    absolute: bool = False,
    base: str = "min",
    min_amplitude: float = 0.1,
    min_prominence: float = 0.25,
    years: int | list[int] | None = None,
    year_start: str = "01-01",
    windows: str = "year",
    smooth: str | None = None,
    smooth_kw: dict[str, Any] | None = None,
    variable: str | None = None,
    dim: str = "time",
) -> xr.Dataset:
    """Phenology metrics (start, peak, end of season and more) per pixel, season and year.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Vegetation index series along ``dim`` (NaN = missing). For a Dataset, ``variable`` (default
        ``"ndvi"`` if present, else its only variable) is used.
    threshold : float
        Fraction of the amplitude (0 < threshold < 1, default 0.2) or, with ``absolute=True``, the
        value that the curve crosses at the start and end of season.
    seasons : {1, 2}
        Seasons per year to report (2 for double cropping); more than one adds a ``season`` dim.
    absolute : bool
        Read ``threshold`` as a value of the series instead of a fraction of the amplitude.
    base : {"min", "sides"}
        ``"min"`` (default): one base per season, the lower of the minima before and after the
        peak; start and end levels are ``base + threshold * (vpos - base)``. ``"sides"`` (TIMESAT):
        each side uses its own minimum, and ``base`` is their mean.
    min_amplitude : float
        Smallest amplitude (in data units, NDVI by default) of a season; flatter pixels are NaN.
    min_prominence : float
        Smallest prominence of a peak as a fraction of the year's range (separates two seasons from
        a dent in one).
    years : int or list of int, optional
        Season years to analyse, labelled by the year in which their window starts (default: every
        window that overlaps the series; with ``year_start="01-01"``, one window if the series
        spans at most 366 days).
    year_start : str
        ``"MM-DD"``: first day of the season-year window (default ``"01-01"``, calendar years);
        e.g. ``"09-01"`` for September-August agricultural years (southern hemisphere) or the
        start of the dry season for a tropical wet season. ``"02-29"`` is not allowed.
    windows : {"year", "minima"}
        ``"year"`` (default): a season must lie inside its window. ``"minima"`` (TIMESAT): seasons
        run between the pixel's own minima over the whole series and belong to the window that
        holds their (refined) peak date; they may start or end outside it (pass the whole series
        with ``years=``, not one year cut out of it). ``min_prominence`` is then a fraction of the
        whole series' range. Peaks close to a window edge may fall on either side from one pixel
        to the next: choose a ``year_start`` in the off-season.
    smooth : str, optional
        Gap-fill / smooth first with :func:`eoai.timeseries.gapfill.gapfill` (e.g. ``"whittaker"``),
        with the keyword arguments ``smooth_kw``.
    smooth_kw : dict, optional
        Arguments for ``gapfill`` (e.g. ``{"lam": "vcurve", "freq": "5D"}``).
    variable : str, optional
        Variable of a Dataset to use.
    dim : str
        Time dimension.

    Returns
    -------
    xarray.Dataset
        Variables ``sos``, ``pos``, ``eos``, ``mos`` (datetime64), ``sos_doy``... (calendar day
        of year of the date), ``sos_days``... (days since ``window_start``), ``vsos``, ``vpos``,
        ``veos``, ``base``, ``amplitude``, ``los``, ``greenup_rate``, ``senescence_rate``,
        ``large_integral``, ``small_integral`` on ``(year, season, *space)``
        (``year`` / ``season`` only when there are several), with coordinates ``year`` (the year in
        which the window starts), ``window_start`` and ``window_end`` (datetime64). Lazy for a
        dask input.

    Raises
    ------
    eoai.errors.MissingDimensionError, eoai.errors.TimeAxisError, eoai.errors.InputError
        Missing / non-datetime time, series too short, bad parameters.

    Warns
    -----
    eoai.errors.DataSkippedWarning
        One per call (for a lazy result, per compute, also on dask.distributed) with the counts
        of pixel-years left NaN over all chunks (no data, flat, no complete season, fewer seasons
        than asked).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> from eoai.datasets import double_logistic
    >>> from eoai.timeseries.phenology import phenology
    >>> t = pd.date_range("2021-01-01", "2021-12-31", freq="D")
    >>> v = double_logistic(np.arange(1, 366), 0.2, 0.6, 120, 270, 0.1, 0.1)
    >>> ph = phenology(xr.DataArray(v, dims="time", coords={"time": t}), threshold=0.5)
    >>> round(float(ph.sos_doy), 1), round(float(ph.eos_doy), 1)
    (120.0, 270.0)

    A southern-hemisphere season (October to April) over two September-August years:

    >>> t = pd.date_range("2020-09-01", "2022-08-31", freq="5D")
    >>> d = np.asarray((t - pd.Timestamp("2020-01-01")).days, float)
    >>> v = sum(double_logistic(d, 0.2 * (k == 0), 0.6, 285 + 365 * k, 470 + 365 * k, 0.1, 0.1)
    ...         for k in range(2))
    >>> ph = phenology(xr.DataArray(v, dims="time", coords={"time": t}), 0.5, year_start="09-01")
    >>> [str(d)[:10] for d in ph.sos.values], [str(d)[:10] for d in ph.eos.values]
    (['2020-10-12', '2021-10-12'], ['2021-04-15', '2022-04-15'])
    >>> [str(d)[:10] for d in ph.window_start.values]
    ['2020-09-01', '2021-09-01']
    """
    func = "phenology"
    ds_attrs = dict(obj.attrs) if isinstance(obj, xr.Dataset) else None
    if isinstance(obj, xr.Dataset):
        variables = [str(v) for v in obj.data_vars]
        if variable is None:
            variable = (
                "ndvi" if "ndvi" in variables else variables[0] if len(variables) == 1 else None
            )
        if variable is None or variable not in variables:
            raise InputError(
                f"{func}: choose the variable of the Dataset with variable=...; it has {variables}"
            )
        obj = obj[variable]
    if isinstance(obj, xr.DataArray) and dim in obj.dims:
        # before check_time: duplicate dates are merged on values, never on nodata codes
        obj, _ = to_float_with_nan(obj, func)
    obj = check_time(obj, dim, func=func)
    if isinstance(seasons, bool) or seasons not in (1, 2):
        raise InputError(f"{func}: seasons must be 1 or 2, got {seasons!r}")
    if isinstance(threshold, bool) or not isinstance(
        threshold, (int, float, np.integer, np.floating)
    ):
        raise InputError(f"{func}: threshold must be a number, got {threshold!r}")
    if not absolute and not 0.0 < float(threshold) < 1.0:
        raise InputError(
            f"{func}: threshold={threshold} must be a fraction of the amplitude in (0, 1); "
            "pass absolute=True to use it as a value of the series"
        )
    if not np.isfinite(threshold):
        raise InputError(f"{func}: threshold must be finite, got {threshold!r}")
    if base not in ("min", "sides"):
        raise InputError(f"{func}: base must be 'min' or 'sides', got {base!r}")
    if not (min_amplitude >= 0 and 0 <= min_prominence < 1):
        raise InputError(f"{func}: need min_amplitude >= 0 and 0 <= min_prominence < 1")
    month_day = _parse_year_start(year_start, func)
    if windows not in ("year", "minima"):
        raise InputError(
            f"{func}: windows must be 'year' (a season lies inside its year window) or 'minima' "
            f"(seasons between each pixel's minima, TIMESAT), got {windows!r}"
        )
    if smooth is not None:
        from eoai.timeseries.gapfill import gapfill

        obj = gapfill(obj, smooth, dim=dim, **(smooth_kw or {}))
    if obj.sizes[dim] < 3:
        raise TimeAxisError(f"{func}: {obj.sizes[dim]} dates are too few; need at least 3")
    if not np.issubdtype(obj.dtype, np.floating):
        obj = obj.astype(np.float32)

    t = pd.DatetimeIndex(obj[dim].values)
    origin = t[0].floor("D").to_datetime64()
    x = days(t.values, origin)
    labels, lo, hi, year_dim, starts, ends, covered = _windows(t, years, origin, func, month_day)
    keep = np.arange(len(labels))
    if windows == "minima" and years is not None:
        # the seasons of the whole series bound each other: find them in every window, keep the
        # ones asked for
        _, lo, hi, _, _, _, _ = _windows(t, covered, origin, func, month_day)
        keep = np.array([covered.index(y) for y in labels])
    spec = {
        "x": x, "lo": lo, "hi": hi, "keep": keep, "seasons": int(seasons),
        "threshold": float(threshold),
        "absolute": bool(absolute), "sides": base == "sides", "min_amplitude": float(min_amplitude),
        "min_prominence": float(min_prominence), "origin": origin, "minima": windows == "minima",
    }  # fmt: skip
    # a Dataset became its variable above
    da = single_time_chunk(cast(xr.DataArray, obj), dim, func)
    n_f = len(PK.FIELDS) + len(PK.DATE_FIELDS)
    call = _skipped.SkippedCall(functools.partial(_skipped_message, n_seasons=int(seasons)))
    res = xr.apply_ufunc(
        call.reporter(_block),
        da,
        call.chunk_ids(da, [dim]),
        kwargs={"spec": spec},
        input_core_dims=[[dim], []],
        output_core_dims=[list(_FIELDS_OUT)],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={
            "output_sizes": {"year": len(labels), "season": int(seasons), "__eoai_metric": n_f}
        },
    )
    call.seal()
    res = res.assign_coords(
        year=np.asarray(labels),
        season=np.arange(seasons),
        window_start=("year", starts.values.astype("datetime64[ns]")),
        window_end=("year", ends.values.astype("datetime64[ns]")),
    )
    res.window_start.attrs = {"long_name": "start of the season-year window (inclusive)"}
    res.window_end.attrs = {"long_name": "end of the season-year window (exclusive)"}
    names = list(PK.FIELDS) + [f"{f}_doy" for f in PK.DATE_FIELDS]
    out = {}
    origin_ns = np.datetime64(origin, "ns")
    start_days = xr.DataArray(days(starts.values, origin), dims="year")
    names += [f"{f}_days" for f in PK.DATE_FIELDS]
    for k, name in enumerate(names):
        if name.endswith("_days"):
            raw = res.isel(__eoai_metric=PK.FIELDS.index(name[:-5]), drop=True)
            v = (raw - start_days).astype(np.float32)
            v.attrs = {
                "long_name": f"{_DESCRIPTIONS[name[:-5]]}, days since window_start",
                "units": "days",
            }
        elif name in PK.DATE_FIELDS:
            v = res.isel(__eoai_metric=k, drop=True)
            v = (v * float(DAY_NS)).astype("timedelta64[ns]") + origin_ns
            v.attrs = {"long_name": _DESCRIPTIONS[name]}
        elif name.endswith("_doy"):
            v = res.isel(__eoai_metric=k, drop=True).astype(np.float32)
            v.attrs = {
                "long_name": f"{_DESCRIPTIONS[name[:-4]]}, day of year",
                "units": "day of year",
            }
        else:
            v = res.isel(__eoai_metric=k, drop=True).astype(np.float32)
            v.attrs = {"long_name": _DESCRIPTIONS[name]}
            if name in _UNITS:
                unit = obj.attrs.get("units", "1")
                v.attrs["units"] = (
                    _UNITS[name] if name in ("los",) else f"{unit} {_UNITS[name]}".replace("1 ", "")
                )
            elif "units" in obj.attrs:
                v.attrs["units"] = obj.attrs["units"]
        if not year_dim:
            v = v.squeeze("year")
        if seasons == 1:
            v = v.squeeze("season", drop=True)
        space = [d for d in obj.dims if d != dim]
        lead = [d for d in ("year", "season") if d in v.dims]
        out[name] = v.transpose(*lead, *space)
    ds = xr.Dataset({k: out[k] for k in METRICS})
    grid_mapping = obj.attrs.get("grid_mapping") or obj.encoding.get("grid_mapping")
    if grid_mapping:
        for v in ds.data_vars.values():
            v.attrs["grid_mapping"] = str(grid_mapping)
    # the input's attrs (a Dataset's, then its variable's) and lineage, then this step
    sources = [] if ds_attrs is None else [ds_attrs]
    sources.append({k: v for k, v in obj.attrs.items() if k not in VARIABLE_KEYS})
    ds.attrs = provenance(
        sources,
        "phenology:threshold",
        json.dumps(
            {
                "threshold": float(threshold),
                "absolute": bool(absolute),
                "base": base,
                "seasons": int(seasons),
                "min_amplitude": float(min_amplitude),
                "min_prominence": float(min_prominence),
                "years": [int(v) for v in labels],
                "year_start": f"{month_day[0]:02d}-{month_day[1]:02d}",
                "windows": windows,
                "smooth": smooth,
                "smooth_kw": {k: str(v) for k, v in (smooth_kw or {}).items()},
            }
        ),
    )  # fmt: skip
    if obj.name is not None:
        ds.attrs["eoai:variable"] = str(obj.name)
    return ds


def _parse_year_start(year_start: Any, func: str) -> tuple[int, int]:
    """``"MM-DD"`` -> (month, day), with an error saying what is allowed."""
    hint = (
        f"{func}: year_start must be 'MM-DD', the first day of the season year (e.g. '09-01' for "
        "September-August years, default '01-01'), not 02-29"
    )
    if not isinstance(year_start, str) or len(year_start) != 5 or year_start[2] != "-":
        raise InputError(f"{hint}; got {year_start!r}")
    try:
        month, day = int(year_start[:2]), int(year_start[3:])
        pd.Timestamp(year=2001, month=month, day=day)  # a non-leap year: rejects 02-29
    except ValueError:
        raise InputError(f"{hint}; got {year_start!r}") from None
    return month, day


def _windows(
    t: pd.DatetimeIndex, years: Any, origin: np.datetime64, func: str, month_day: tuple[int, int]
):
    """Year labels, window bounds (days since origin), whether a ``year`` dim is needed, the
    nominal window starts and ends (DatetimeIndex) and every label the series covers."""
    month, day = month_day

    def start(y: int) -> pd.Timestamp:
        return pd.Timestamp(year=y, month=month, day=day)

    first = t[0].year if t[0] >= start(t[0].year) else t[0].year - 1
    last = t[-1].year if t[-1] >= start(t[-1].year) else t[-1].year - 1
    covered = list(range(first, last + 1))
    single = False
    if years is None:
        span = (t[-1] - t[0]) / pd.Timedelta(1, "D")
        if month_day == (1, 1) and span <= 366:
            single = True
            labels = [int((t[0] + (t[-1] - t[0]) / 2).year)]
        else:
            labels = covered
        year_dim = len(labels) > 1
    else:
        one = isinstance(years, (int, np.integer))
        try:
            labels = [int(years)] if one else [int(y) for y in years]
        except (TypeError, ValueError) as err:
            raise InputError(
                f"{func}: years must be an int or a list of ints, got {years!r}"
            ) from err
        if not labels:
            raise InputError(f"{func}: years is empty")
        if len(set(labels)) != len(labels):
            raise InputError(f"{func}: years {labels} has duplicates; give each year once")
        missing = [y for y in labels if y not in covered]
        if missing:
            what = (
                "" if month_day == (1, 1) else f" (season years starting on {month:02d}-{day:02d})"
            )
            raise TimeAxisError(
                f"{func}: years {missing} are outside the series ({t[0].date()} to {t[-1].date()})"
                + what
            )
        year_dim = not one
    starts = pd.DatetimeIndex([start(y) for y in labels])
    ends = pd.DatetimeIndex([start(y + 1) for y in labels])
    if single:
        return labels, np.array([-np.inf]), np.array([np.inf]), False, starts, ends, covered
    lo = days(starts.values, origin)
    hi = days(ends.values, origin) - 1e-9
    return labels, lo, hi, year_dim, starts, ends, covered


def _block(values: np.ndarray, spec: dict) -> np.ndarray:
    lead = values.shape[:-1]
    y = np.ascontiguousarray(values.reshape(-1, values.shape[-1]), dtype=np.float64)
    n_s = spec["seasons"]
    keep = spec["keep"]
    n_win = keep.size
    out = np.empty((y.shape[0], spec["lo"].size, n_s, PK.N_FIELDS))
    counts = np.zeros((spec["lo"].size, 4), np.int64)
    PK.phenology_kernel(
        y, spec["x"], spec["lo"], spec["hi"], n_s, spec["threshold"], spec["absolute"],
        spec["sides"], spec["min_amplitude"], spec["min_prominence"], spec["minima"], out, counts,
    )  # fmt: skip
    out = out[:, keep]  # minima mode ran every window of the series; keep those asked for
    counts = counts[keep].sum(axis=0)
    # fractional day of year of the date fields
    origin_ns = np.datetime64(spec["origin"], "ns").astype(np.int64)
    doys = []
    for f in PK.DATE_FIELDS:
        d = out[..., PK.FIELDS.index(f)]
        finite = np.isfinite(d)
        ns = origin_ns + np.where(finite, d * DAY_NS, 0).astype(np.int64)
        dt = ns.astype("datetime64[ns]")
        jan1 = dt.astype("datetime64[Y]").astype("datetime64[ns]")
        doy = (dt - jan1).astype(np.int64) / DAY_NS + 1.0
        doys.append(np.where(finite, doy, np.nan))
    full = np.concatenate([out, np.stack(doys, axis=-1)], axis=-1)
    # reported, not warned: phenology() warns once per call with the totals over all chunks
    _skipped.count(
        nodata=counts[PK.C_NODATA], flat=counts[PK.C_FLAT], noseason=counts[PK.C_NOSEASON],
        fewer=counts[PK.C_FEWER], total=y.shape[0] * n_win,
    )  # fmt: skip
    return full.reshape(*lead, n_win, n_s, full.shape[-1])


def _skipped_message(totals: dict[str, dict[str, int]], *, n_seasons: int) -> str | None:
    """The one warning of a phenology call, from the counts summed over its chunks."""
    c = totals.get("", {})
    total = c.get("total", 0)
    parts = []
    if c.get("nodata"):
        parts.append(f"{c['nodata']} without data (fewer than 3 valid dates)")
    if c.get("flat"):
        parts.append(f"{c['flat']} flat (range below min_amplitude)")
    if c.get("noseason"):
        parts.append(f"{c['noseason']} without a complete season")
    lines = []
    if parts:
        left = sum(c.get(k, 0) for k in ("nodata", "flat", "noseason"))
        lines.append(f"phenology: {left} of {total} pixel-years left NaN: " + ", ".join(parts))
    if n_seasons > 1 and c.get("fewer"):
        lines.append(
            f"phenology: {c['fewer']} of {total} pixel-years have fewer than {n_seasons} "
            "seasons; the missing seasons are NaN"
        )
    return "; ".join(lines) or None
