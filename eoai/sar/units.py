"""Backscatter units: linear power, decibels, amplitude; lazy conversions that keep NaN as NaN.

SAR backscatter comes in three units (``attrs["units"]``, written by :func:`eoai.load` for
Sentinel-1 bands, see :mod:`eoai.io.sentinel1`):

- ``"linear"``: power (intensity), e.g. sigma0 / gamma0 in m²/m² (Planetary Computer RTC);
- ``"dB"``: ``10 log10(power)`` (GEE, SSL4EO, BigEarthNet, most ARD exports);
- ``"amplitude"``: ``sqrt(power)`` (GRD digital numbers).

Anything that averages backscatter (speckle filters, ratios, RVI, temporal means) must do it in
linear power: the mean of dB values is the log of a geometric mean, biased low by up to ~2.5 dB
for single-look speckle. :func:`to_db` / :func:`from_db` / :func:`convert_units` are lazy (one task
per chunk), keep NaN as NaN, turn ``nodata`` values (given, or the ``nodata`` / ``_FillValue``
attribute, e.g. pyroSAR's -99) into NaN, never 0, and leave non-positive power NaN in dB (no
logarithm) with one :class:`~eoai.errors.DataSkippedWarning` giving the count.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from eoai.sar import to_db, from_db
>>> p = xr.DataArray(np.array([1.0, 0.1, np.nan]), dims="x", attrs={"units": "linear"})
>>> to_db(p).values.tolist()
[0.0, -10.0, nan]
>>> from_db(to_db(p)).attrs["units"]
'linear'
"""

from __future__ import annotations

import functools
from typing import Any, overload

import numpy as np
import xarray as xr

from .. import _skipped
from .._provenance import provenance
from ..errors import InputError
from ..io.sentinel1 import POLARISATIONS, UNITS, normalise_units

__all__ = ["to_db", "from_db", "convert_units", "backscatter_units", "UNITS"]


def backscatter_units(da: xr.DataArray, units: Any = None, func: str = "eoai.sar") -> str:
    """The unit of a backscatter variable: ``units`` if given, else its ``attrs["units"]``.

    Raises
    ------
    eoai.errors.InputError
        The unit is neither given nor in the attributes (or not a backscatter unit): the message
        asks for ``units=``.

    Examples
    --------
    >>> import xarray as xr
    >>> backscatter_units(xr.DataArray([1.0], attrs={"units": "decibel"}))
    'dB'
    """
    if units is not None:
        return normalise_units(units)
    found = da.attrs.get("units")
    name = f" {da.name!r}" if da.name is not None else ""
    if found is None:
        raise InputError(
            f"{func}: the unit of backscatter variable{name} is unknown (no attrs['units']); "
            "pass units='dB', units='linear' (power: sigma0 / gamma0) or units='amplitude' "
            "(eoai.load records it for the collections it knows)"
        )
    try:
        return normalise_units(found)
    except InputError as err:
        raise InputError(
            f"{func}: variable{name} has attrs['units']={found!r}, not a backscatter unit "
            "(linear, dB, amplitude); pass units= to say which it is"
        ) from err


def to_power(x: np.ndarray, units: str) -> np.ndarray:
    """Linear power of a block in ``units`` (float64; NaN stays NaN)."""
    x = x.astype(np.float64, copy=units == "linear")
    if units == "dB":
        return np.power(10.0, x / 10.0)
    if units == "amplitude":
        return x * x
    return x


def from_power(p: np.ndarray, units: str, dtype: Any) -> np.ndarray:
    """A block of linear power in ``units`` (non-positive power is NaN in dB)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if units == "dB":
            out = 10.0 * np.log10(np.where(p > 0, p, np.nan))
        elif units == "amplitude":
            out = np.sqrt(np.where(p >= 0, p, np.nan))
        else:
            out = p
    return out.astype(dtype, copy=False)


def _convert_block(x: np.ndarray, src: str, dst: str, nodata: float | None) -> np.ndarray:
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
    x = x.astype(np.float64)
    if nodata is not None:
        x[x == nodata] = np.nan
    bad = 0
    if dst == "dB" and src != "dB":
        bad = int(np.count_nonzero(np.isfinite(x) & (x <= 0)))
    if dst == "amplitude" and src == "linear":
        bad = int(np.count_nonzero(np.isfinite(x) & (x < 0)))
    _skipped.count(nonpositive=bad, values=x.size)
    if dst == "dB" and src == "amplitude":  # 20 log10 |a| directly (no squaring round-off)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (20.0 * np.log10(np.where(x > 0, x, np.nan))).astype(dtype)
    return from_power(to_power(x, src), dst, dtype)


def _nonpositive_message(totals: dict, func: str, dst: str) -> str | None:
    n = sum(c.get("nonpositive", 0) for c in totals.values())
    if not n:
        return None
    total = sum(c.get("values", 0) for c in totals.values())
    what = "<= 0 (no logarithm)" if dst == "dB" else "< 0 (no square root)"
    return (
        f"{func}: {n} of {total} value(s) are {what} and were left NaN in {dst}; check the input's "
        "units (pass units=) or its nodata value (nodata=)"
    )


def _nodata_of(da: xr.DataArray, nodata: Any) -> float | None:
    value = nodata
    if value is None:
        for key in ("nodata", "_FillValue"):
            if key in da.attrs:
                value = da.attrs[key]
                break
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"nodata must be a number, got {value!r}") from err
    return None if np.isnan(value) else value


def _is_backscatter(name: Any, da: xr.DataArray, units: Any) -> bool:
    if str(name).lower() in POLARISATIONS:
        return True
    u = da.attrs.get("units")
    try:
        return isinstance(u, str) and normalise_units(u) in UNITS
    except InputError:
        return units is not None and np.issubdtype(da.dtype, np.floating)


def _convert_da(
    da: xr.DataArray, to: str, units: Any, nodata: Any, func: str, call: Any, part: str
) -> xr.DataArray:
    src = backscatter_units(da, units, func)
    nd = _nodata_of(da, nodata)
    if src == to and nd is None:
        out = da.copy(deep=False)
        out.attrs["units"] = to
        return out
    kw = {"src": src, "dst": to, "nodata": nd}
    dtype = da.dtype if np.issubdtype(da.dtype, np.floating) else np.dtype(np.float32)
    out = xr.apply_ufunc(
        call.reporter(_convert_block, part),
        da,
        call.chunk_ids(da, []),
        kwargs=kw,
        dask="parallelized",
        output_dtypes=[dtype],
        keep_attrs=True,  # keeps the coordinates' attrs (the CRS of spatial_ref); attrs set below
    )
    attrs = provenance([da.attrs], f"{func}", {"from": src, "to": to, "nodata": nd})
    attrs.pop("_FillValue", None)
    attrs.update({"units": to, "nodata": np.nan})
    out.attrs = attrs
    out.name = da.name
    return out


@overload
def convert_units(
    obj: xr.DataArray, to: str, *, units: str | None = ..., nodata: float | None = ...
) -> xr.DataArray: ...
@overload
def convert_units(
    obj: xr.Dataset, to: str, *, units: str | None = ..., nodata: float | None = ...
) -> xr.Dataset: ...
def convert_units(
    obj: xr.DataArray | xr.Dataset,
    to: str,
    *,
    units: str | None = None,
    nodata: float | None = None,
) -> xr.DataArray | xr.Dataset:
    """Convert backscatter to ``to`` (``"linear"``, ``"dB"``, ``"amplitude"``), lazily.

    Parameters
    ----------
    obj : DataArray or Dataset
        Backscatter; a Dataset converts its polarisation variables (``vv``, ``vh``...) and those
        whose ``attrs["units"]`` is a backscatter unit, and keeps the others as they are.
    to : {"linear", "dB", "amplitude"}
    units : str, optional
        Unit of the input when its ``attrs["units"]`` lacks it (or to override it).
    nodata : float, optional
        Value meaning "no data" (default the ``nodata`` / ``_FillValue`` attribute): NaN in the
        output, never 0.

    Returns
    -------
    Same type as ``obj``, float, ``attrs["units"] = to``, ``nodata`` NaN, provenance
    (``eoai:method``, ``eoai:parameters``, ``eoai:lineage``).

    Raises
    ------
    eoai.errors.InputError
        Unknown unit (asks for ``units=``), a bad ``to`` or ``nodata``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.array([10.0, -99.0]), dims="x", attrs={"units": "amplitude"})
    >>> convert_units(a, "dB", nodata=-99).values.tolist()
    [20.0, nan]
    """
    to = normalise_units(to, "to")
    func = {"dB": "to_db", "linear": "from_db"}.get(to, "convert_units")
    call = _skipped.SkippedCall(functools.partial(_nonpositive_message, func=func, dst=to))
    out: xr.DataArray | xr.Dataset
    if isinstance(obj, xr.Dataset):
        out_vars = {}
        for name, var in obj.data_vars.items():
            if _is_backscatter(name, var, units):
                out_vars[name] = _convert_da(var, to, units, nodata, func, call, str(name))
            else:
                out_vars[name] = var
        if not any(_is_backscatter(n, v, units) for n, v in obj.data_vars.items()):
            raise InputError(
                f"{func}: no backscatter variable in this Dataset (variables "
                f"{', '.join(map(str, obj.data_vars))}): name them vv/vh/hh/hv or set their "
                "attrs['units'] to linear / dB / amplitude"
            )
        out = xr.Dataset(out_vars, attrs=obj.attrs)
    elif isinstance(obj, xr.DataArray):
        out = _convert_da(obj, to, units, nodata, func, call, "")
    else:
        raise InputError(f"{func} needs an xarray DataArray or Dataset, got {type(obj).__name__}")
    call.seal()
    return out


def to_db(
    obj: xr.DataArray | xr.Dataset, *, units: str | None = None, nodata: float | None = None
) -> xr.DataArray | xr.Dataset:
    """Backscatter in decibels: ``10 log10(power)`` (``20 log10(amplitude)``), lazily.

    Input already in dB is returned as is (nodata values turned to NaN). See
    :func:`convert_units` for the parameters.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> to_db(xr.DataArray(np.array([0.01, np.nan]), dims="x"), units="linear").values.tolist()
    [-20.0, nan]
    """
    return convert_units(obj, "dB", units=units, nodata=nodata)


def from_db(
    obj: xr.DataArray | xr.Dataset, *, units: str | None = None, nodata: float | None = None
) -> xr.DataArray | xr.Dataset:
    """Backscatter in linear power: ``10 ** (dB / 10)``, lazily (``attrs["units"] = "linear"``).

    Input already linear is returned as is (nodata values turned to NaN); amplitude is squared.
    See :func:`convert_units` for the parameters.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> db = xr.DataArray(np.array([-10.0, -99.0]), dims="x", attrs={"units": "dB", "nodata": -99})
    >>> from_db(db).values.tolist()
    [0.1, nan]
    """
    return convert_units(obj, "linear", units=units, nodata=nodata)
