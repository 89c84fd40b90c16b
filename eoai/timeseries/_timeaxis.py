"""Time-axis checks, date arguments and chunking shared by gap-filling, phenology, breaks and change (private)."""

from __future__ import annotations

import warnings
from typing import Any, overload

import dask
import numpy as np
import pandas as pd
import xarray as xr

from eoai._skipped import user_stacklevel
from eoai.errors import (
    DataSkippedWarning,
    EoaiWarning,
    InputError,
    LargeChunkWarning,
    MissingDimensionError,
    TimeAxisError,
    UnknownBandError,
)

DAY_NS = np.timedelta64(1, "D").astype("timedelta64[ns]").astype(np.int64)


@overload
def check_time(obj: xr.DataArray, dim: str = ..., *, func: str) -> xr.DataArray: ...
@overload
def check_time(obj: xr.Dataset, dim: str = ..., *, func: str) -> xr.Dataset: ...
@overload
def check_time(
    obj: xr.DataArray | xr.Dataset, dim: str = ..., *, func: str
) -> xr.DataArray | xr.Dataset: ...
def check_time(
    obj: xr.DataArray | xr.Dataset, dim: str = "time", *, func: str
) -> xr.DataArray | xr.Dataset:
    """Validate the time axis: present, datetime, sorted (sorted with a warning), unique (merged).

    Duplicate dates are merged by the mean of their valid (non-NaN) values, with a
    ``DataSkippedWarning`` giving the count; an unsorted axis is sorted with an ``EoaiWarning``.
    """
    if not isinstance(obj, (xr.DataArray, xr.Dataset)):
        raise InputError(
            f"{func} needs an xarray DataArray or Dataset, got {type(obj).__name__}; "
            "wrap numpy arrays with xr.DataArray(values, dims=('time', ...), coords={'time': dates})"
        )
    if dim not in obj.dims:
        raise MissingDimensionError(
            f"{func} needs a {dim!r} dimension, found dims {tuple(obj.dims)}; rename yours with "
            f"obj.rename({{'<your time dim>': {dim!r}}}) or pass dim='<your time dim>'"
        )
    if dim not in obj.coords:
        raise TimeAxisError(
            f"{func}: dimension {dim!r} has no coordinate; assign dates with "
            f"obj.assign_coords({dim}=pd.DatetimeIndex([...]))"
        )
    t = obj[dim]
    if not np.issubdtype(t.dtype, np.datetime64):
        raise TimeAxisError(
            f"{func}: coordinate {dim!r} must hold datetime64 dates, got dtype {t.dtype}; convert it "
            f"with obj.assign_coords({dim}=pd.to_datetime(obj[{dim!r}].values))"
        )
    values = t.values
    if np.isnat(values).any():
        raise TimeAxisError(
            f"{func}: coordinate {dim!r} contains NaT dates; drop them with obj.dropna({dim!r}, how='all') after fixing the dates"
        )
    if (
        values.size > 1
        and not (np.diff(values.astype("datetime64[ns]").astype(np.int64)) > 0).all()
    ):
        idx = pd.DatetimeIndex(values)
        if not idx.is_monotonic_increasing:
            warnings.warn(
                f"{func}: the {dim!r} axis was not sorted; it was sorted (sortby) before processing",
                EoaiWarning,
                stacklevel=user_stacklevel(),
            )
            obj = obj.sortby(dim)
            idx = pd.DatetimeIndex(obj[dim].values)
        if idx.has_duplicates:
            n_dup = int(idx.duplicated().sum())
            warnings.warn(
                f"{func}: {n_dup} duplicate date(s) on {dim!r} were merged with the mean of their "
                "valid values (e.g. two orbits or tiles of one day)",
                DataSkippedWarning,
                stacklevel=user_stacklevel(),
            )
            attrs = obj.attrs
            obj = obj.groupby(dim).mean(skipna=True, keep_attrs=True)
            obj.attrs = attrs
    return obj


def days(times: Any, origin: np.datetime64) -> np.ndarray:
    """Days (float64) of ``times`` since ``origin``."""
    t = np.asarray(times, dtype="datetime64[ns]").astype(np.int64)
    o = np.asarray(origin, dtype="datetime64[ns]").astype(np.int64)
    return (t - o) / DAY_NS


def to_days(value: Any, name: str, func: str) -> float:
    """A duration given as number of days, a pandas offset/timedelta string or a timedelta."""
    if value is None:
        return np.inf
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        out = float(value)
    else:
        try:
            out = pd.Timedelta(value) / pd.Timedelta(1, "D")
        except (ValueError, TypeError) as err:
            raise InputError(
                f"{func}: {name}={value!r} is not a duration; give days (e.g. 30) or a string such as '30D'"
            ) from err
    if not out > 0:
        raise InputError(f"{func}: {name} must be a positive duration, got {value!r}")
    return out


def single_time_chunk(da: xr.DataArray, dim: str, func: str) -> xr.DataArray:
    """Rechunk a dask-backed array so ``dim`` is one chunk; warn when the chunks become large."""
    chunks = da.chunks
    if chunks is None:
        return da
    axis = da.get_axis_num(dim)
    if len(chunks[axis]) == 1:
        return da
    limit = dask.utils.parse_bytes(dask.config.get("array.chunk-size"))
    spatial = int(np.prod([max(c) for i, c in enumerate(chunks) if i != axis], dtype=np.int64))
    nbytes = spatial * da.sizes[dim] * da.dtype.itemsize
    if nbytes > limit:
        other = {d: "auto" for d in da.dims if d != dim}
        new = da.chunk({dim: -1, **other})
        new_chunks = new.chunks or ()
        new_bytes = int(np.prod([max(c) for c in new_chunks], dtype=np.int64)) * da.dtype.itemsize
        warnings.warn(
            f"{func}: {dim!r} was split over {len(chunks[axis])} chunks; it must be one chunk, "
            f"which would make chunks of {nbytes / 2**20:.0f} MiB, so the other dimensions were "
            f"rechunked too (now {new_bytes / 2**20:.0f} MiB per chunk). Load with "
            f"chunks={{{dim!r}: -1, 'x': 512, 'y': 512}} to avoid this rechunk.",
            LargeChunkWarning,
            stacklevel=user_stacklevel(),
        )
        return new
    return da.chunk({dim: -1})


def select_variable(obj: Any, variable: str | None, func: str) -> xr.DataArray:
    """The one variable a per-variable time-series function works on (a DataArray as it is)."""
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


def to_timestamp(value: Any, name: str, func: str) -> pd.Timestamp:
    """A date argument as a naive UTC ``pd.Timestamp``, or an InputError naming it."""
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


def keep_spatial_meta(out: xr.Dataset, src: xr.DataArray | xr.Dataset) -> xr.Dataset:
    """Carry the CRS coordinate ``spatial_ref`` (and odc-geo's grid mapping) to the output."""
    for name in ("spatial_ref", "crs"):
        if name in src.coords:  # also when apply_ufunc(keep_attrs=False) kept it without its attrs
            out = out.assign_coords({name: src.coords[name]})
    for var in out.data_vars:
        gm = src.attrs.get("grid_mapping") or src.encoding.get("grid_mapping")
        if gm:
            out[var].attrs.setdefault("grid_mapping", gm)
    return out
