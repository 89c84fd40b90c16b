"""Declared nodata and CF packing of input variables -> float with NaN (private).

The time-series functions work on floats where NaN is a missing observation. An input that still
holds its stored codes (integer digital numbers, or floats with a fill value) declares its nodata in
one of the usual places, all honoured:

- ``attrs["nodata"]`` (odc-stac, eoai.load), ``attrs["_FillValue"]`` (rioxarray's
  ``.rio.nodata`` / ``write_nodata``, xarray opened with ``mask_and_scale=False``),
  ``attrs["missing_value"]`` (CF);
- ``encoding["_FillValue"]`` / ``encoding["missing_value"]`` while the data is still in its stored
  form (no ``scale_factor`` / ``add_offset`` / other ``dtype`` in ``encoding``: xarray has not decoded
  it, so the codes are still there).

Every declared value becomes NaN (compared on the stored values), then ``attrs["scale_factor"]`` /
``attrs["add_offset"]`` (CF packing not yet decoded) are applied. Integer input without any declared
nodata is refused: an integer array cannot hold NaN, so without a declared code eoai cannot tell a
gap from an observation (a 0 may be "no data" or a true 0). Integers of at most 16 bits become
float32, wider ones float64. Lazy: nothing is computed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from eoai.errors import InputError

_NODATA_KEYS = ("nodata", "_FillValue", "missing_value")
_PACKING_KEYS = ("scale_factor", "add_offset")
#: attrs that describe stored codes; dropped from a decoded output (which is float with NaN)
CODING_ATTRS = (*_NODATA_KEYS, *_PACKING_KEYS, "valid_range", "valid_min", "valid_max")


def declared_nodata(da: xr.DataArray) -> list[float]:
    """The nodata values ``da`` declares (attrs, or encoding while still encoded); NaN left out."""
    sources: list[dict] = [da.attrs]
    enc = da.encoding
    still_encoded = not any(k in enc for k in _PACKING_KEYS) and np.dtype(
        enc.get("dtype", da.dtype)
    ) == np.dtype(da.dtype)
    if still_encoded:
        sources.append(enc)
    values: list[float] = []
    for src in sources:
        for key in _NODATA_KEYS:
            raw = src.get(key)
            if raw is None:
                continue
            try:
                vals = np.atleast_1d(np.asarray(raw, dtype=np.float64)).tolist()
            except (TypeError, ValueError) as err:
                raise InputError(
                    f"{da.name!r}: {key}={raw!r} is not a number; set a numeric nodata "
                    f"(da.attrs[{key!r}] = 0) or remove it"
                ) from err
            values += [v for v in vals if not math.isnan(v) and v not in values]
    return values


def to_float_with_nan(da: xr.DataArray, func: str) -> tuple[xr.DataArray, dict[str, Any]]:
    """``da`` as float with its declared nodata as NaN and CF packing applied (lazy).

    Returns the decoded array (attrs without the coding attrs, ``nodata`` NaN when something was
    decoded) and a JSON-able description of what was done (empty when nothing was).
    """
    nodata = declared_nodata(da)
    scale = da.attrs.get("scale_factor")
    offset = da.attrs.get("add_offset")
    integer = np.issubdtype(da.dtype, np.integer) or da.dtype == bool
    if integer and not nodata:
        raise InputError(
            f"{func}: {da.name or 'the input'!r} is {da.dtype} and declares no nodata value "
            "(attrs 'nodata' / '_FillValue' / 'missing_value', encoding '_FillValue', "
            ".rio.nodata): integers cannot hold NaN, so gaps cannot be told from observations. "
            "Declare the code of missing pixels (da.attrs['nodata'] = 0, as Sentinel-2 DN use, or "
            "da.rio.write_nodata(0)), or, if every value is a valid observation, convert to float "
            "first (da.astype('float32'))"
        )
    if not nodata and scale is None and offset is None:
        return da, {}
    dtype: np.dtype = da.dtype
    if integer:
        dtype = np.dtype(np.float32 if da.dtype.itemsize <= 2 else np.float64)
    attrs = {k: v for k, v in da.attrs.items() if k not in CODING_ATTRS}
    out = da.astype(dtype)
    if nodata:
        valid = da != nodata[0]
        for v in nodata[1:]:
            valid = valid & (da != v)
        out = out.where(valid)
    info: dict[str, Any] = {"nodata": nodata}
    try:
        if scale is not None:
            out = out * float(scale)
            info["scale_factor"] = float(scale)
        if offset is not None:
            out = out + float(offset)
            info["add_offset"] = float(offset)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"{func}: {da.name!r} has a non-numeric scale_factor/add_offset "
            f"({scale!r}, {offset!r}); decode it first (xr.decode_cf) or fix the attrs"
        ) from err
    out = out.astype(dtype, copy=False)
    out.attrs = {**attrs, "nodata": np.nan}
    out.encoding = {}
    out.name = da.name
    return out, info
