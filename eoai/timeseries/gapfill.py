"""Gap-filling and smoothing of time series onto regular or given dates.

Methods (``method=``):

``"linear"``
    The OTB / iota2 rule (``ImageTimeSeriesGapFilling``, ``it=linear``): linear interpolation in date
    between valid observations; before the first valid date the first valid value, after the last
    the last. A pixel with no valid observation stays NaN (OTB writes 0 there; eoai never does).
``"whittaker"``
    Penalised least squares (Eilers 2003) ``(W + lam D'D) z = W y`` on the union of input and output
    dates, with weight 0 for missing observations and for output-only dates. ``D`` approximates the
    ``order``-th derivative in days (``order!`` times Eilers' divided differences, each row weighted
    by the square root of the spacing it spans), so ``sum((D z)**2)`` approximates the integral of
    the squared derivative: unequal spacing is handled, the output grid does not change the amount
    of smoothing, and on a daily grid ``lam`` is the classic Eilers lambda. On a regular grid of step
    ``s`` days the per-step lambda of regular implementations (modape, vam.whittaker) equals
    ``lam / s**(2 * order - 1)``. ``lam`` is a number, ``"vcurve"`` (per pixel, minimising the V-curve
    distance, as in modape's ``ws2doptv``) or ``"gcv"`` (generalised cross-validation). The default
    (``lam=None``) is GCV per pixel over ``lam`` = 2e3 .. 2e4 days (order 2) with one robust
    (bisquare) re-fit: the choice that was best or within 1 % of the best Whittaker setting, and
    better than linear interpolation, at hidden clear observations of three real NDVI sets
    (Sentinel-2 Slovenia, MODIS at 10 flux sites, MODIS in the Brazilian Cerrado;
    ``benchmarks/README.md``); the V-curve and GCV over the wide per-step grid were worse than
    linear on at least one of them. ``edges="hold"`` (default) keeps the curve's value at the
    first / last valid observation before / after it, as the linear rule does (``"extrapolate"``:
    the curve's own straight-line continuation, which overshoots on real series). ``p`` turns on
    asymmetric weights (``p`` above the curve, ``1 - p`` below; e.g. 0.9 for the upper envelope so
    that cloud residue pulls the curve less).
``"savgol"``
    Savitzky-Golay generalised to unequal spacing and gaps: a polynomial of degree ``polyorder``
    fitted by least squares to the valid observations within ``window`` days around each output
    date (identical to ``scipy.signal.savgol_filter`` on a complete regular series away from the
    edges). Where the window holds too few observations (no more than ``polyorder + 1``, or none on
    one side of the date) the value is linearly interpolated.
``"harmonic"``
    ``harmonics`` annual harmonics plus a constant and (``trend=True``) a linear trend, fitted by
    least squares per pixel.

Output dates: ``freq`` (a regular grid, e.g. ``"10D"`` as iota2 uses for Sentinel-2, starting on the
day of the first input date), ``dates`` (given dates), or neither (the input dates: smoothing).
``max_gap`` leaves NaN at output dates in a gap between valid observations longer than ``max_gap``
(or, before the first / after the last valid observation, farther than ``max_gap`` from it).

Time is a core dimension: dask inputs are processed chunk by chunk with ``time`` in one chunk
(rechunked if needed, with a ``LargeChunkWarning`` when the chunks get large) and stay lazy.
Unsorted dates are sorted (with a warning) and duplicate dates merged by their mean (with a
``DataSkippedWarning`` giving the count).

Backends (``device=``): ``"cpu"`` runs the numba kernels; ``"torch"`` (torch on the CPU),
``"cuda"`` / ``"cuda:N"`` (torch on a GPU) run ``"linear"`` and ``"whittaker"`` with a fixed ``lam``
(with or without ``p``) as batched tensor operations over the pixels of a chunk (same outputs as
numba to rounding); ``"auto"`` (default) uses the ``device`` of :func:`eoai.set_options` when set,
else CUDA when ``torch.cuda.is_available()``, and numba wherever the method has no GPU kernel.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from eoai import _skipped
from eoai._provenance import provenance
from eoai.errors import DataSkippedWarning, ExtrapolationWarning, InputError, TimeAxisError
from eoai.io.presets import is_class_or_mask
from eoai.timeseries import _gapfill_numba as K
from eoai.timeseries._device import resolve_device
from eoai.timeseries._nodata import to_float_with_nan
from eoai.timeseries._timeaxis import check_time, days, single_time_chunk, to_days

__all__ = ["gapfill", "whittaker_smooth", "METHODS", "DEVICES"]

METHODS = ("linear", "whittaker", "savgol", "harmonic")
DEVICES = ("cpu", "torch", "cuda", "cuda:N", "auto")
_OUT = "__eoai_time_out"
# lambda band (days, order 2) searched by GCV when lam is not given; see the module documentation
DEFAULT_LAM_RANGE = (2e3, 2e4)
# robust re-fit (on by default when lam is not given): bisquare cut-off in robust standard deviations
ROBUST_C = 10.0


# ----------------------------------------------------------------------------------------------
# numpy-level Whittaker smoother (reference implementation of Eilers 2003)
# ----------------------------------------------------------------------------------------------
def whittaker_smooth(
    y: np.ndarray,
    lam: float,
    *,
    x: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    order: int = 2,
    derivative: bool = False,
    device: str = "auto",
) -> np.ndarray:
    """Whittaker-Eilers smoother of one series or a batch of series (rows), in memory.

    Solves ``(W + lam D'D) z = W y`` per row with a banded LDL' factorisation (numba, no Python loop
    over rows). NaN in ``y`` gets weight 0 (so the smoother also interpolates).

    Parameters
    ----------
    y : numpy.ndarray
        Shape ``(n,)`` or ``(n_series, n)``.
    lam : float
        Smoothing parameter (> 0).
    x : numpy.ndarray, optional
        Strictly increasing sample positions, shape ``(n,)``; ``D`` becomes Eilers' divided
        differences ``ddmat(x, order)``. Without ``x``, plain differences (unit spacing).
    weights : numpy.ndarray, optional
        Non-negative weights, shape of ``y`` (default 1).
    order : int
        Difference order ``d`` (>= 1); 2 and 3 are usual.
    derivative : bool
        With ``x``: multiply divided differences by ``order!`` so that the penalty approximates the
        squared derivative (this is what :func:`gapfill` uses, in days).
    device : {"auto", "cpu", "torch", "cuda", "cuda:N"}
        Backend, as in :func:`gapfill` (``"cpu"``: numba; ``"auto"``, the default, a GPU when
        there is one).

    Returns
    -------
    numpy.ndarray
        Smoothed series, float64, shape of ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> from eoai.timeseries.gapfill import whittaker_smooth
    >>> z = whittaker_smooth(np.array([0.0, 1.0, np.nan, 3.0, 4.0]), lam=1.0)
    >>> bool(np.allclose(z, [0, 1, 2, 3, 4]))
    True
    """
    y = np.asarray(y, dtype=np.float64)
    one = y.ndim == 1
    y2 = np.atleast_2d(y)
    n = y2.shape[1]
    _check_lam_number(lam, "whittaker_smooth")
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise InputError(f"whittaker_smooth: order must be an integer >= 1, got {order!r}")
    if n <= order:
        raise TimeAxisError(
            f"whittaker_smooth: {n} samples are too few for order {order}; need > {order}"
        )
    if x is not None:
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (n,) or not (np.diff(x) > 0).all():
            raise InputError(
                "whittaker_smooth: x must be strictly increasing with one value per sample"
            )
    w2: np.ndarray
    if weights is None:
        w2 = np.ones((1, 1))
    else:
        w2 = np.broadcast_to(np.asarray(weights, dtype=np.float64), y.shape).reshape(y2.shape)
        if (w2 < 0).any() or not np.isfinite(w2).all():
            raise InputError("whittaker_smooth: weights must be finite and >= 0")
        w2 = np.ascontiguousarray(w2)
    coef = K.difference_coefficients(x, n, order, scale=derivative)
    pen = K.penalty_band(coef, n)
    idx = np.arange(n)
    spec = {"method": "whittaker", "mode": 0, "params": {"lam": lam}}
    dev = _resolve_device(device, spec, "whittaker_smooth")
    if dev is not None:
        from eoai.timeseries import _gapfill_torch as T

        res, _ = T.whittaker_fill(np.ascontiguousarray(y2), None if weights is None else w2,
                                  idx, idx, n, pen, order, float(lam), 0.0, 1, dev)  # fmt: skip
        return res[:, 0] if one else np.ascontiguousarray(res.T)
    out = np.empty(y2.shape)
    lam_out = np.empty(y2.shape[0])
    K.whittaker_fill(
        np.ascontiguousarray(y2), w2, idx, idx, n, pen, coef, order,
        np.array([float(lam)]), 0, 0.0, 0, out, lam_out,
    )  # fmt: skip
    return out[0] if one else out


def _check_lam_number(lam: Any, func: str) -> None:
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.integer, np.floating)):
        raise InputError(f"{func}: lam must be a positive number, 'vcurve' or 'gcv', got {lam!r}")
    if not (math.isfinite(float(lam)) and float(lam) > 0):
        raise InputError(
            f"{func}: lam must be > 0 and finite, got {lam!r}; larger lam smooths more "
            "(gapfill chooses it per pixel by GCV when lam is not given)"
        )


# ----------------------------------------------------------------------------------------------
# the xarray entry point
# ----------------------------------------------------------------------------------------------
def gapfill(
    obj: xr.DataArray | xr.Dataset,
    method: str = "linear",
    *,
    freq: str | None = None,
    dates: Any = None,
    lam: float | str | None = None,
    max_gap: Any = None,
    order: int = 2,
    lam_range: tuple[float, float] | None = None,
    p: float | None = None,
    max_iter: int = 10,
    edges: str = "hold",
    robust: bool | None = None,
    window: Any = None,
    polyorder: int = 2,
    harmonics: int = 3,
    trend: bool = True,
    period: float = 365.25,
    weights: xr.DataArray | None = None,
    dim: str = "time",
    device: str = "auto",
) -> xr.DataArray | xr.Dataset:
    """Fill gaps (NaN) in time series and resample them onto regular or given dates.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Series along ``dim`` with masked observations as NaN. Values equal to a declared nodata
        (``attrs["nodata"]`` as odc-stac / eoai.load write it, ``attrs["_FillValue"]`` as
        rioxarray's ``.rio.nodata``, ``attrs["missing_value"]``, or ``encoding["_FillValue"]``
        while the data is still encoded) are NaN before filling, and undecoded CF packing
        (``attrs["scale_factor"]`` / ``attrs["add_offset"]``) is applied; integer data without
        any declared nodata is refused (see Raises). A Dataset is processed variable by variable
        (every variable with ``dim``; variables without ``dim`` are kept unchanged); class and
        mask variables (``flag_values`` / ``flag_masks`` / ``flag_meanings`` /
        ``eoai:mask_kind`` attrs, or named ``scl``, ``clm``, ``qa``, ``qa_pixel``, ``fmask``,
        ``mask``...) are left out of the output with one ``DataSkippedWarning`` naming them.
    method : {"linear", "whittaker", "savgol", "harmonic"}
        See the module documentation.
    freq : str, optional
        Regular output grid (pandas frequency, e.g. ``"10D"``), starting on the day of the first
        input date.
    dates : sequence of datetime-like, optional
        Output dates (strictly increasing). Not together with ``freq``. Dates outside the input
        dates are extrapolated, with one ``ExtrapolationWarning`` giving their count; ``max_gap``
        leaves NaN farther than ``max_gap`` from the nearest observation.
    lam : float or {"vcurve", "gcv"}, optional
        Whittaker smoothing parameter (penalty in days, see the module documentation). Default
        (None): ``"gcv"`` per pixel over ``lam_range`` = (2e3, 2e4) days for order 2 (six lambdas;
        other orders: the wide per-step grid below) with one robust re-fit (``robust``); chosen on
        real data, see the module documentation.
    max_gap : float or str, optional
        Longest gap to fill, in days or as a duration string (``"45D"``); longer gaps stay NaN.
    order : int
        Whittaker difference order (default 2).
    lam_range : (float, float), optional
        Smallest and largest lambda tried by ``"vcurve"``/``"gcv"`` (log-spaced, 0.2 decades apart).
        Default with ``lam=None`` and order 2: (2e3, 2e4) days. With ``lam="vcurve"``/``"gcv"`` given
        (or another order): ``(1e-2, 1e4) * s**(2 * order - 1)`` with ``s`` the median input spacing
        in days (1e-2 to 1e4 in per-step units).
    p : float, optional
        Asymmetric Whittaker weights in (0, 1): ``p`` for observations above the curve, ``1 - p``
        below (iterated up to ``max_iter`` times). 0.9 gives an upper envelope.
    max_iter : int
        Iterations of the asymmetric weights.
    edges : {"hold", "extrapolate"}
        Whittaker output dates before the first / after the last valid observation of a pixel:
        ``"hold"`` (default) takes the curve's value at that observation (as ``"linear"``);
        ``"extrapolate"`` continues the curve (a straight line for order 2).
    robust : bool, optional
        Whittaker: one robust re-fit, with the weights times Tukey's bisquare of the first fit's
        residuals over 10 robust standard deviations (1.4826 x the median absolute residual; lambda
        chosen again), so that gross outliers (cloud residue the mask missed) pull the curve less.
        Default: on when ``lam`` is not given, off otherwise. Not on the torch backends.
    window : float or str, optional
        Savitzky-Golay window length in days (default 7 median input spacings).
    polyorder : int
        Savitzky-Golay polynomial degree.
    harmonics : int
        Number of annual harmonics for ``"harmonic"``.
    trend : bool
        Include a linear trend in ``"harmonic"``.
    period : float
        Period of the harmonics in days.
    weights : xarray.DataArray, optional
        Whittaker observation weights (e.g. a quality score), with ``dim`` and broadcastable to
        ``obj``, on the same dates; NaN, 0 or negative weights leave the observation out.
    dim : str
        Name of the time dimension.
    device : {"cpu", "torch", "cuda", "cuda:N", "auto"}
        ``"cpu"``: numba kernels. ``"torch"``: torch on the CPU; ``"cuda"``/``"cuda:N"``: torch on
        that GPU (``"linear"`` and ``"whittaker"`` with a numeric ``lam`` only). ``"auto"``
        (default): the ``device`` option of :func:`eoai.set_options`, else CUDA when available,
        and numba wherever the method has no GPU kernel (looking for a GPU imports torch when
        it is installed, once per process; ``"cpu"`` skips that).

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        Same type as ``obj`` with ``dim`` replaced by the output dates; lazy when ``obj`` is
        dask-backed. ``attrs["eoai:method"]`` is ``"gapfill:<method>"`` and
        ``attrs["eoai:parameters"]`` a JSON string of the parameters.

    Raises
    ------
    eoai.errors.MissingDimensionError
        ``dim`` is missing.
    eoai.errors.TimeAxisError
        The time coordinate is not datetime, or the series is too short for the method.
    eoai.errors.InputError
        Unknown method or device, bad ``lam``/``max_gap``/``p``/``edges``/``robust``/``freq``/
        ``dates``; ``device`` names torch or CUDA when they are not available or the method has no
        torch backend; integer data that declares no nodata (integers cannot hold NaN, so gaps
        cannot be told from observations: declare ``attrs["nodata"]`` or convert to float first).

    Warns
    -----
    eoai.errors.DataSkippedWarning
        Pixels without enough valid observations are left NaN: one warning per call (for a lazy
        result, per compute, also on dask.distributed) with the totals over all chunks and
        variables; class/mask variables of a Dataset were left out; duplicate dates were merged.
    eoai.errors.ExtrapolationWarning
        Output dates (``dates=``) lie outside the input dates; the message gives the count and
        how many ``max_gap`` leaves NaN.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> from eoai.timeseries.gapfill import gapfill
    >>> t = pd.to_datetime(["2020-01-01", "2020-01-05", "2020-01-11"])
    >>> da = xr.DataArray([0.2, np.nan, 0.5], dims="time", coords={"time": t})
    >>> gapfill(da, "linear", freq="5D").values.round(3).tolist()
    [0.2, 0.35, 0.5]
    """
    func = "gapfill"
    if method not in METHODS:
        raise InputError(f"{func}: unknown method {method!r}; choose one of {', '.join(METHODS)}")
    # before check_time, so that duplicate dates are merged on values, never on nodata codes
    obj, left_out, decoded = _decode_input(obj, dim, func)
    obj = check_time(obj, dim, func=func)
    if weights is not None:
        weights = _check_weights(weights, obj, method, dim, func)
    spec = _make_spec(obj, method, freq, dates, lam, max_gap, order, lam_range, p, max_iter,
                      window, polyorder, harmonics, trend, period, dim, edges, robust)  # fmt: skip
    spec["device"] = _resolve_device(device, spec, func)
    if spec["device"] is not None:
        spec["params"]["device"] = "torch" if spec["device"] == "cpu" else spec["device"]
    _warn_extrapolation(spec)
    call = _skipped.SkippedCall(
        functools.partial(
            _left_nan_message, method=method, why=_why_left_nan(spec), max_gap=spec["max_gap"]
        )
    )
    if isinstance(obj, xr.Dataset):
        out_vars = {}
        for name, var in obj.data_vars.items():
            if dim not in var.dims:
                out_vars[name] = var
            else:
                out_vars[name] = _fill_da(var, spec, weights, call, str(name), decoded.get(name))
        if left_out:
            _skipped.warn_at_user(
                f"{func}: {len(left_out)} class/mask variable(s) {left_out} were left out of the "
                "output: interpolating class codes or bit masks gives meaningless fractional "
                "codes (they have flag_values/flag_masks/eoai:mask_kind attrs or a mask name); "
                f"resample them separately, e.g. ds[{left_out!r}].sel({dim}=out.{dim}, "
                "method='nearest')",
                DataSkippedWarning,
            )
        out: xr.Dataset | xr.DataArray = xr.Dataset(out_vars, attrs=_attrs(spec, obj.attrs))
    else:
        out = _fill_da(obj, spec, weights, call, "", decoded.get(obj.name))
    call.seal()
    return out


def _decode_input(obj: Any, dim: str, func: str) -> tuple[Any, list[str], dict]:
    """Declared nodata -> NaN and CF packing applied for every variable with ``dim``; class and
    mask variables of a Dataset left out. Returns the input, the names left out and, per
    variable name, what was decoded."""
    if not isinstance(obj, (xr.DataArray, xr.Dataset)) or dim not in obj.dims:
        return obj, [], {}  # check_time raises the right error
    if isinstance(obj, xr.DataArray):
        da, info = to_float_with_nan(obj, func)
        return da, [], ({obj.name: info} if info else {})
    left_out = [str(n) for n, v in obj.data_vars.items() if dim in v.dims and is_class_or_mask(v)]
    obj = obj.drop_vars(left_out)
    decoded, new = {}, {}
    for name, var in obj.data_vars.items():
        if dim in var.dims:
            new[name], info = to_float_with_nan(var, func)
            if info:
                decoded[name] = info
    return (obj.assign(new) if new else obj), left_out, decoded


def _warn_extrapolation(spec: dict) -> None:
    """One ExtrapolationWarning when output dates lie outside the input dates (``dates=``)."""
    x_in, x_out, gap = spec["x_in"], spec["x_out"], spec["max_gap"]
    dist = np.maximum(x_in[0] - x_out, x_out - x_in[-1])  # > 0 outside the input dates
    # a day or more outside: a regular grid starting at midnight of the first observation's day
    # (an observation at 10:00) is not an extrapolation worth a warning
    outside = dist >= 1.0
    n_out = int(outside.sum())
    if not n_out:
        return
    t_in = spec["t_in"]
    head = (
        f"gapfill({spec['method']}): {n_out} of {x_out.size} output dates lie outside the input "
        f"dates ({t_in[0].date()} to {t_in[-1].date()}; "
        f"{int((x_out <= x_in[0] - 1.0).sum())} before, {int((x_out >= x_in[-1] + 1.0).sum())} "
        f"after, up to {float(dist.max()):.0f} days away)"
    )
    if math.isinf(gap):
        tail = (
            ": their values are extrapolated from the nearest observations; pass max_gap "
            "(e.g. max_gap='45D') to leave NaN farther than that from the nearest observation"
        )
    else:
        far = int((dist > gap).sum())
        tail = (
            f": {far} of them are farther than max_gap={gap:g} days from every input date and "
            f"are NaN; the other {n_out - far} are extrapolated (within max_gap of an observation)"
        )
    _skipped.warn_at_user(head + tail, ExtrapolationWarning)


def _why_left_nan(spec: dict) -> str:
    """Why ``_fill_block`` leaves a pixel NaN, for the method of ``spec``."""
    if spec["method"] == "whittaker":
        return f"have fewer than {max(spec['order'], 1)} valid observations"
    if spec["method"] == "harmonic":
        return f"have fewer than {spec['min_obs']} valid observations (or a singular fit)"
    return "have no valid observation"


def _left_nan_message(
    totals: dict[str, dict[str, int]], *, method: str, why: str, max_gap: float = math.inf
) -> str | None:
    """The one warning of a gapfill call, from the counts summed over its chunks."""
    lines = []
    hit = {part: c for part, c in totals.items() if c.get("left_nan")}
    if hit and list(totals) == [""]:  # a DataArray
        c = totals[""]
        lines.append(
            f"gapfill({method}): {c['left_nan']} of {c['pixels']} pixels {why} and were left NaN"
        )
    elif hit:
        detail = ", ".join(f"{c['left_nan']} of {c['pixels']} in {p!r}" for p, c in hit.items())
        lines.append(f"gapfill({method}): pixels that {why} were left NaN: {detail}")
    gap = sum(c.get("gap_nan", 0) for c in totals.values())
    if gap:
        values = sum(c.get("values", 0) for c in totals.values())
        lines.append(
            f"gapfill({method}): {gap} of {values} output values are farther than "
            f"max_gap={max_gap:g} days from a valid observation and were left NaN"
        )
    return "; ".join(lines) or None


def _resolve_device(device: Any, spec: dict, func: str) -> str | None:
    """The torch device to run on, or None for the numba kernels (see ``gapfill(device=)``)."""
    method = spec["method"]
    supported = method == "linear" or (
        method == "whittaker" and spec["mode"] == 0 and not spec.get("n_refit")
    )
    why = (
        None
        if supported
        else (
            "runs method 'linear' and 'whittaker' with a numeric lam (and robust=False) only, not "
            f"{method!r} with lam={spec['params'].get('lam')!r}"
            + (", robust=True" if spec.get("n_refit") else "")
        )
    )
    return resolve_device(device, func, unsupported=why)


def _check_weights(weights: Any, obj: Any, method: str, dim: str, func: str) -> xr.DataArray:
    if method != "whittaker":
        raise InputError(f"{func}: weights are used by method='whittaker' only, not {method!r}")
    if not isinstance(weights, xr.DataArray):
        raise InputError(f"{func}: weights must be an xarray DataArray with a {dim!r} dimension")
    if dim not in weights.dims:
        raise InputError(f"{func}: weights need the {dim!r} dimension, found {tuple(weights.dims)}")
    extra = set(weights.dims) - set(obj.dims)
    if extra:
        raise InputError(
            f"{func}: weights have dimensions {sorted(map(str, extra))} that the data lacks"
        )
    if weights.sizes[dim] != obj.sizes[dim]:
        raise TimeAxisError(
            f"{func}: weights have {weights.sizes[dim]} dates, the data {obj.sizes[dim]}; "
            "give one weight per observation"
        )
    if dim in weights.coords and not np.array_equal(
        np.asarray(weights[dim].values, "datetime64[ns]"),
        np.asarray(obj[dim].values, "datetime64[ns]"),
    ):
        raise TimeAxisError(
            f"{func}: the dates of weights differ from the data's; select them with "
            f"weights.sel({dim}=data.{dim})"
        )
    return weights.assign_coords({dim: obj[dim].values}).astype(np.float64)


def _attrs(spec: dict, src: dict) -> dict:
    """The input's attrs, its steps in ``eoai:lineage``, and this gapfill's method/parameters."""
    return provenance([src], f"gapfill:{spec['method']}", json.dumps(spec["params"]))


def _make_spec(obj, method, freq, dates, lam, max_gap, order, lam_range, p, max_iter, window,
               polyorder, harmonics, trend, period, dim, edges="hold",
               robust=None) -> dict:  # fmt: skip
    func = "gapfill"
    t_in = pd.DatetimeIndex(obj[dim].values)
    n_in = len(t_in)
    origin = t_in[0].floor("D").to_datetime64()
    if freq is not None and dates is not None:
        raise InputError(f"{func}: give freq or dates, not both")
    if freq is not None:
        try:
            t_out = pd.date_range(t_in[0].floor("D"), t_in[-1], freq=freq)
        except (ValueError, TypeError) as err:
            raise InputError(
                f"{func}: freq={freq!r} is not a pandas frequency such as '10D' or '5D'"
            ) from err
        if len(t_out) == 0:
            raise InputError(
                f"{func}: freq={freq!r} gives no date between {t_in[0]} and {t_in[-1]}"
            )
    elif dates is not None:
        try:
            t_out = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(dates))))
        except (ValueError, TypeError) as err:
            raise InputError(f"{func}: dates must be datetime-like, got {dates!r}") from err
        if len(t_out) == 0 or (len(t_out) > 1 and not (np.diff(t_out.asi8) > 0).all()):
            raise TimeAxisError(
                f"{func}: dates must be non-empty and strictly increasing (sort them, drop duplicates)"
            )
    else:
        t_out = t_in
    x_in = days(t_in.values, origin)
    x_out = days(t_out.values, origin)
    params: dict[str, Any] = {"freq": freq, "dates": None if dates is None else "given", "dim": dim}
    gap = to_days(max_gap, "max_gap", func)
    params["max_gap_days"] = None if math.isinf(gap) else gap
    spec: dict[str, Any] = {"method": method, "dim": dim, "t_out": t_out, "t_in": t_in, "x_in": x_in,
                            "x_out": x_out, "max_gap": gap, "params": params}  # fmt: skip
    step = float(np.median(np.diff(x_in))) if n_in > 1 else 1.0
    if method == "linear":
        if n_in < 1:
            raise TimeAxisError(f"{func}: the series is empty")
    elif method == "whittaker":
        if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 1:
            raise InputError(f"{func}: order must be an integer >= 1, got {order!r}")
        if n_in <= order:
            raise TimeAxisError(
                f"{func}: {n_in} dates are too few for Whittaker of order {order}; need at least {order + 1}"
            )
        default_band = lam is None and lam_range is None and order == 2
        if robust is None:
            robust = lam is None
        if not isinstance(robust, (bool, np.bool_)):
            raise InputError(f"{func}: robust must be True or False, got {robust!r}")
        if lam is None:
            lam = "gcv"
        if isinstance(lam, str):
            if lam not in ("vcurve", "gcv"):
                raise InputError(
                    f"{func}: lam must be a positive number, 'vcurve' or 'gcv', got {lam!r}"
                )
            if default_band:
                lo, hi = DEFAULT_LAM_RANGE
            elif lam_range is None:
                scale = step ** (2 * order - 1)
                lo, hi = 1e-2 * scale, 1e4 * scale
            else:
                try:
                    lo, hi = (float(v) for v in lam_range)
                except (TypeError, ValueError) as err:
                    raise InputError(
                        f"{func}: lam_range must be (smallest, largest), got {lam_range!r}"
                    ) from err
                if not (0 < lo < hi and math.isfinite(hi)):
                    raise InputError(
                        f"{func}: lam_range must satisfy 0 < smallest < largest, got {lam_range!r}"
                    )
            nl = max(2, int(round((math.log10(hi) - math.log10(lo)) / 0.2)) + 1)
            lams = np.logspace(math.log10(lo), math.log10(hi), nl)
            mode = 1 if lam == "vcurve" else 2
        else:
            _check_lam_number(lam, func)
            lams = np.array([float(lam)])
            mode = 0
        if p is not None and not (isinstance(p, (int, float, np.floating)) and 0 < float(p) < 1):
            raise InputError(
                f"{func}: p must be in (0, 1) (e.g. 0.9 for an upper envelope), got {p!r}"
            )
        if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise InputError(f"{func}: max_iter must be a positive integer, got {max_iter!r}")
        if edges not in ("hold", "extrapolate"):
            raise InputError(f"{func}: edges must be 'hold' or 'extrapolate', got {edges!r}")
        grid, out_idx = _working_grid(x_in, x_out)
        coef = K.difference_coefficients(grid, grid.size, int(order), scale=True)
        spec.update(grid=grid, in_idx=np.searchsorted(grid, x_in), out_idx=out_idx,
                    coef=coef, pen=K.penalty_band(coef, grid.size), order=int(order), lams=lams, mode=mode,
                    p=0.0 if p is None else float(p), max_iter=int(max_iter),
                    hold=edges == "hold", n_refit=int(bool(robust)))  # fmt: skip
        params.update(lam=lam if isinstance(lam, str) else float(lam), order=int(order),
                      p=p, lam_range=[float(lams[0]), float(lams[-1])] if mode else None,
                      edges=edges, robust=bool(robust))  # fmt: skip
    elif method == "savgol":
        if not isinstance(polyorder, (int, np.integer)) or polyorder < 0:
            raise InputError(f"{func}: polyorder must be an integer >= 0, got {polyorder!r}")
        if n_in <= polyorder:
            raise TimeAxisError(f"{func}: {n_in} dates are too few for polyorder {polyorder}")
        win = 7 * step if window is None else to_days(window, "window", func)
        spec.update(half_window=win / 2.0, polyorder=int(polyorder))
        params.update(window_days=win, polyorder=int(polyorder))
    elif method == "harmonic":
        if not isinstance(harmonics, (int, np.integer)) or harmonics < 0:
            raise InputError(f"{func}: harmonics must be an integer >= 0, got {harmonics!r}")
        if not period > 0:
            raise InputError(f"{func}: period must be > 0 days, got {period!r}")
        k = 1 + int(bool(trend)) + 2 * int(harmonics)
        if n_in < k:
            raise TimeAxisError(
                f"{func}: {n_in} dates are too few for {harmonics} harmonics (+trend={trend}); need {k}"
            )
        mid = 0.5 * (x_in[0] + x_in[-1])
        spec.update(X_in=_design(x_in, mid, int(harmonics), trend, period),
                    X_out=_design(x_out, mid, int(harmonics), trend, period), min_obs=k)  # fmt: skip
        params.update(harmonics=int(harmonics), trend=bool(trend), period=float(period))
    return spec


def _working_grid(
    x_in: np.ndarray, x_out: np.ndarray, tol: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Union of input and output positions; an output within ``tol`` days (~1.4 min) of an input
    date uses that input's position (near-coincident points would make the penalty ill-conditioned).
    Returns the grid and the grid index of every output position."""
    pos = np.searchsorted(x_in, x_out)
    lo = np.clip(pos - 1, 0, x_in.size - 1)
    hi = np.clip(pos, 0, x_in.size - 1)
    nearest = np.where(np.abs(x_in[lo] - x_out) <= np.abs(x_in[hi] - x_out), lo, hi)
    near = np.abs(x_in[nearest] - x_out) <= tol
    grid = np.union1d(x_in, x_out[~near])
    out_idx = np.where(near, np.searchsorted(grid, x_in[nearest]), np.searchsorted(grid, x_out))
    return grid, out_idx


def _design(x: np.ndarray, mid: float, harmonics: int, trend: bool, period: float) -> np.ndarray:
    cols = [np.ones_like(x)]
    if trend:
        cols.append((x - mid) / 365.25)
    for h in range(1, harmonics + 1):
        ang = 2 * np.pi * h * x / period
        cols += [np.cos(ang), np.sin(ang)]
    return np.ascontiguousarray(np.stack(cols, axis=1))


def _fill_block(values: np.ndarray, wts: np.ndarray | None = None, *, spec: dict) -> np.ndarray:
    """Apply the method to a block ``(..., n_in)`` -> ``(..., n_out)`` (numpy, in memory)."""
    lead = values.shape[:-1]
    n_in = values.shape[-1]
    n_out = spec["x_out"].size
    dtype = values.dtype if values.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    time_major = np.moveaxis(values, -1, 0)
    if values.dtype == dtype and time_major.flags.c_contiguous and values.ndim > 1:
        # a (time, y, x) chunk seen with time last: use it in place (pixel-major strided view)
        # and write the output time-major too, so the chunk is never copied or transposed
        y = time_major.reshape(n_in, -1).T
        out = np.empty((n_out, y.shape[0]), dtype=dtype).T
    else:
        y = np.ascontiguousarray(values.reshape(-1, n_in), dtype=dtype)
        out = np.empty((y.shape[0], n_out), dtype=dtype)
    method = spec["method"]
    if spec.get("device") is not None:
        bad, _ = _fill_torch(y, values, wts, spec, out)
    elif method == "linear":
        bad = K.linear_fill(y, spec["x_in"], spec["x_out"], spec["max_gap"], out)
    elif method == "whittaker":
        lam_out = np.empty(y.shape[0])
        if wts is not None:
            wts = np.ascontiguousarray(
                np.broadcast_to(wts, values.shape).reshape(-1, n_in), np.float64
            )
        if (wts is None and spec["order"] == 2 and spec["mode"] == 0 and spec["p"] == 0.0
                and not spec["n_refit"]):  # fmt: skip
            bad = K.whittaker_fixed2(y, spec["in_idx"], spec["out_idx"], spec["grid"].size,
                                     spec["pen"], float(spec["lams"][0]), out,
                                     spec["hold"])  # fmt: skip
        else:
            w2 = np.ones((1, 1)) if wts is None else wts
            bad = K.whittaker_fill(y, w2, spec["in_idx"], spec["out_idx"],
                                   spec["grid"].size, spec["pen"], spec["coef"], spec["order"],
                                   spec["lams"], spec["mode"], spec["p"], spec["max_iter"], out,
                                   lam_out, spec["hold"], spec["n_refit"], ROBUST_C)  # fmt: skip
    elif method == "savgol":
        bad = K.savgol_fill(
            y, spec["x_in"], spec["x_out"], spec["half_window"], spec["polyorder"], out
        )
    else:
        bad = K.harmonic_fill(y, spec["X_in"], spec["X_out"], spec["min_obs"], out)
    if method != "linear" and not math.isinf(spec["max_gap"]):
        K.gap_mask(y, spec["x_in"], spec["x_out"], spec["max_gap"], out)
    # reported, not warned: gapfill() warns once per call with the totals over all chunks
    counts = {"left_nan": int(bad), "pixels": y.shape[0]}
    if not math.isinf(spec["max_gap"]):  # output values of pixels with data NaN'd by max_gap
        gap_nan = int(np.count_nonzero(np.isnan(out))) - int(bad) * n_out
        counts.update(gap_nan=max(gap_nan, 0), values=y.shape[0] * n_out)
    _skipped.count(**counts)
    if not out.flags.c_contiguous:
        return np.moveaxis(out.T.reshape(n_out, *lead), 0, -1)
    return out.reshape(*lead, n_out)


def _fill_torch(y: np.ndarray, values: np.ndarray, wts: Any, spec: dict, out: np.ndarray):
    """Run the torch backend on ``y`` (n_pix, n_in), writing ``out``; returns (bad, why)."""
    from eoai.timeseries import _gapfill_torch as T

    n_in = y.shape[1]
    if spec["method"] == "linear":
        res, bad = T.linear_fill(y, spec["x_in"], spec["x_out"], spec["max_gap"], spec["device"])
        why = "have no valid observation"
    else:
        if wts is not None:
            wts = np.broadcast_to(wts, values.shape).reshape(-1, n_in)
        res, bad = T.whittaker_fill(y, wts, spec["in_idx"], spec["out_idx"], spec["grid"].size,
                                    spec["pen"], spec["order"], float(spec["lams"][0]), spec["p"],
                                    spec["max_iter"], spec["device"], spec["hold"])  # fmt: skip
        why = f"have fewer than {max(spec['order'], 1)} valid observations"
    out[...] = res.T
    return bad, why


def _fill_da(
    da: xr.DataArray,
    spec: dict,
    weights: xr.DataArray | None,
    call: _skipped.SkippedCall,
    part: str = "",
    decoded: dict | None = None,
) -> xr.DataArray:
    dim = spec["dim"]
    if not np.issubdtype(da.dtype, np.floating):
        da = da.astype(np.float32)
    if decoded:
        spec = {**spec, "params": {**spec["params"], "decoded": decoded}}
    da = single_time_chunk(da, dim, "gapfill")
    n_out = spec["x_out"].size
    args = [da]
    if weights is not None:
        weights = weights.broadcast_like(da).transpose(*da.dims)
        if da.chunks is not None:
            weights = weights.chunk(dict(zip(da.dims, da.chunks, strict=True)))
        args.append(weights)
    n_core = len(args)
    args.append(call.chunk_ids(da, [dim]))
    out = xr.apply_ufunc(
        call.reporter(_fill_block, part),
        *args,
        kwargs={"spec": spec},
        input_core_dims=[[dim]] * n_core + [[]],
        output_core_dims=[[_OUT]],
        dask="parallelized",
        output_dtypes=[da.dtype],
        dask_gufunc_kwargs={"output_sizes": {_OUT: n_out}},
        keep_attrs=True,
    )
    out = out.rename({_OUT: dim}).assign_coords({dim: spec["t_out"].values})
    out = out.transpose(*da.dims)
    out.attrs = _attrs(spec, da.attrs)
    return out
