"""Attribute values that netCDF and Zarr accept (private helper of every eoai module).

netCDF stores as attribute values only strings, numbers and 1-d arrays of one type; Zarr stores
JSON. :func:`netcdf_attrs` turns any other value into one of those: dicts, ``None``, empty or
mixed lists and other objects become JSON strings (read them back with :func:`json.loads`), booleans
become 0/1, dates ISO 8601 strings.

Examples
--------
>>> netcdf_attrs({"eoai:bands": {"red": "B04"}, "flag": True, "t": None, "v": [1, 2]})
{'eoai:bands': '{"red": "B04"}', 'flag': 1, 't': 'null', 'v': [1, 2]}
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from numbers import Number
from typing import Any

import numpy as np

__all__ = ["netcdf_attrs", "netcdf_value", "to_json"]


def _plain(value: Any) -> Any:
    """JSON-able Python value (numpy scalars/arrays to Python, dates to ISO strings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, np.datetime64 | _dt.datetime | _dt.date):
        import pandas as pd

        return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)  # JSON has no NaN / inf
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def to_json(value: Any) -> str:
    """``value`` as a JSON string (numpy values, dates and other objects made plain).

    Examples
    --------
    >>> to_json({"lam": np.float64(10.0), "dates": None})
    '{"lam": 10.0, "dates": null}'
    """
    return json.dumps(_plain(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, Number | np.number) and not isinstance(value, bool | np.bool_)


def netcdf_value(value: Any) -> Any:
    """One attribute value as netCDF / Zarr accept it (see the module docstring).

    Examples
    --------
    >>> netcdf_value(False), netcdf_value(["a", "b"]), netcdf_value([1, "a"]), netcdf_value(())
    (0, ['a', 'b'], '[1, "a"]', '[]')
    >>> netcdf_value(np.datetime64("2021-05-01"))
    '2021-05-01T00:00:00'
    """
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, str) or _is_number(value):
        if isinstance(value, complex | np.complexfloating):
            return str(value)
        # numpy scalars as Python numbers: Zarr's JSON refuses e.g. np.uint16
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, np.datetime64 | _dt.datetime | _dt.date):
        date = _plain(value)
        return "NaT" if date is None else date  # an ISO 8601 string, not a JSON-quoted one
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return netcdf_value(value.item())
    if isinstance(value, list | tuple | np.ndarray) and len(value) > 0:
        items = list(value)
        if all(isinstance(v, bool | np.bool_) for v in items):
            return [int(v) for v in items]
        if all(isinstance(v, str) for v in items):
            return [str(v) for v in items]
        if all(_is_number(v) and not isinstance(v, complex) for v in items):
            kinds = {isinstance(v, float | np.floating) for v in items}
            items = [v.item() if isinstance(v, np.generic) else v for v in items]
            return [float(v) for v in items] if len(kinds) > 1 else items
    return to_json(value)


def netcdf_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``attrs`` with every value as netCDF / Zarr accept it (:func:`netcdf_value`).

    Examples
    --------
    >>> netcdf_attrs({"eoai:parameters": {"sigma": 0.5}, "units": "1"})
    {'eoai:parameters': '{"sigma": 0.5}', 'units': '1'}
    """
    return {str(k): netcdf_value(v) for k, v in attrs.items()}
