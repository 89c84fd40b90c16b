"""Bi-temporal change maps: before/after composites, change vector analysis, a threshold.

:func:`change`: median composites of two periods, change vector analysis (CVA) or index
differencing, and an automatic threshold (Otsu or k x sigma) into a change mask; pixels without a
valid observation in a period are nodata in every output, with a counted warning. Breaks in time
series (BFAST Monitor) are :func:`eoai.timeseries.breaks.detect_breaks`.

Examples
--------
>>> import numpy as np, pandas as pd, xarray as xr
>>> from eoai.timeseries.change import change
>>> t = pd.to_datetime(["2020-06-01", "2020-07-01", "2021-06-01", "2021-07-01"])
>>> v = np.full((4, 2, 2), 0.8)
>>> v[2:, 0, 0] = 0.2  # one pixel cleared in 2021
>>> da = xr.DataArray(v, dims=("time", "y", "x"), coords={"time": t}, name="ndvi")
>>> out = change(da, before="2020", after="2021", threshold=0.3)
>>> out["change"].values.tolist()
[[1.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

import numbers
from typing import Any, cast

import numpy as np
import pandas as pd
import xarray as xr

from .. import _skipped
from .._provenance import VARIABLE_KEYS, flat_parameters, provenance
from ..errors import InputError, MissingDimensionError, TimeAxisError, UnknownBandError
from ..io.presets import is_class_or_mask
from ._nodata import to_float_with_nan
from ._timeaxis import check_time, keep_spatial_meta, single_time_chunk, to_timestamp

# kept so that ``from eoai.timeseries.change import detect_breaks`` (0.1's place) still works
from .breaks import detect_breaks  # noqa: E402,F401

__all__ = ["change"]

# --------------------------------------------------------------------------------------------
# bi-temporal change
# --------------------------------------------------------------------------------------------


def _index(cube: xr.Dataset, name: str) -> xr.DataArray:
    """A spectral index of the cube (:func:`eoai.indices.index`, lazy)."""
    from ..indices import index as _eoai_index

    out = _eoai_index(cube, name)
    assert isinstance(out, xr.DataArray)  # one name: one DataArray
    return out


def _period(
    obj: xr.DataArray, period: Any, name: str, times: pd.DatetimeIndex
) -> tuple[xr.DataArray, str]:
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
    t0 = to_timestamp(start, name, func) if start is not None else times[0]
    t1 = to_timestamp(stop, name, func) if stop is not None else times[-1]
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
    obj = single_time_chunk(obj, "time", "change")
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
    ds = check_time(ds, func=func)
    times = pd.DatetimeIndex(ds["time"].values)

    # features (time, y, x) each
    if index is not None:
        names = [index] if isinstance(index, str) else list(index)
        feats = {n: _index(ds, n) for n in names}
    else:
        if bands is None:
            names = [
                str(v)
                for v in ds.data_vars
                if np.issubdtype(ds[v].dtype, np.floating)
                and not is_class_or_mask(ds[v])  # the one table of masks (eoai.io.presets)
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
    mag: xr.DataArray
    if method == "cva":
        mag = (diff**2).sum("feature", skipna=False) ** 0.5
        if diff.sizes["feature"] == 2:
            d0, d1 = diff.isel(feature=0), diff.isel(feature=1)
            # numpy ufuncs on DataArrays return DataArrays (numpy's stubs say ndarray)
            angle = cast(xr.DataArray, np.degrees(np.arctan2(d1, d0)))
            direction = (angle % 360.0).where(mag.notnull())
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
    out = keep_spatial_meta(out, cube)
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
    step = flat_parameters(flat)
    step["features"] = list(feats)
    out.attrs = {**provenance(sources, f"change:{method}", step), **flat}
    return out
