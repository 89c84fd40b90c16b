"""Provenance and netCDF/Zarr-serialisable attributes of eoai outputs (private).

One convention for the outputs of the time-series functions (gapfill, phenology, change,
detect_breaks):

- the input's attributes are kept under their names (for a variable taken from a Dataset, the
  Dataset's attributes and then the variable's non-descriptive ones);
- the input's own ``eoai:method`` / ``eoai:parameters`` (and any earlier ``eoai:lineage``) are moved
  into ``eoai:lineage``, a JSON list of ``{"method": ..., "parameters": ...}`` from the oldest step
  to the newest, so that e.g. ``load -> gapfill -> phenology`` stays readable;
- the function sets its own ``eoai:method`` and ``eoai:parameters`` (a JSON string);
- every value is made serialisable: strings and numbers as they are, booleans as 0/1, arrays and
  lists of numbers as numbers, anything structured (dicts, lists of strings, mixed lists) as a JSON
  string, dates as ISO strings; None is dropped.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["serialisable", "clean_attrs", "provenance", "VARIABLE_KEYS"]

#: attrs that describe one variable (its values, units, coding): not carried to a new Dataset
VARIABLE_KEYS = frozenset(
    {
        "units", "long_name", "standard_name", "description", "nodata", "_FillValue",
        "missing_value", "scale_factor", "add_offset", "valid_range", "valid_min", "valid_max",
        "flag_values", "flag_masks", "flag_meanings", "flag_colors", "grid_mapping", "coordinates",
        "scale_factor_applied", "add_offset_applied", "eoai:mask_kind",
    }
)  # fmt: skip
_PROVENANCE = ("eoai:method", "eoai:parameters", "eoai:lineage")


def _number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_)
    )


def _json_default(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.integer, np.floating, np.bool_)):
        return x.item()
    return str(x)


def serialisable(value: Any) -> Any:
    """``value`` as a netCDF/Zarr attribute value, or None to drop it (see the module doc).

    Examples
    --------
    >>> serialisable(True), serialisable({"a": 1}), serialisable(["x", "y"]), serialisable([1, 2])
    (1, '{"a": 1}', '["x", "y"]', [1, 2])
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, str) or _number(value):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iuf":
            return value
        if value.dtype.kind == "b":
            return value.astype(np.int8)
        return json.dumps(value.tolist(), default=_json_default)
    if isinstance(value, (list, tuple)):
        if value and all(_number(v) for v in value):
            return [v.item() if isinstance(v, np.generic) else v for v in value]
        return json.dumps(list(value), default=_json_default)
    if isinstance(value, Mapping):
        return json.dumps(dict(value), default=_json_default)
    if isinstance(value, (_dt.datetime, _dt.date, np.datetime64)):
        return str(np.datetime64(value)) if not isinstance(value, _dt.date) else value.isoformat()
    return str(value)


def clean_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Every attribute made serialisable (None values dropped)."""
    out = {}
    for key, value in attrs.items():
        v = serialisable(value)
        if v is not None:
            out[str(key)] = v
    return out


def _parsed(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def provenance(
    sources: Iterable[Mapping[str, Any]], method: str, parameters: Mapping[str, Any] | str
) -> dict[str, Any]:
    """Attributes of an output: the sources' attrs, their steps in ``eoai:lineage``, this step.

    Parameters
    ----------
    sources : iterable of mappings
        Attributes of the input, oldest first (e.g. a Dataset's attrs, then its variable's).
    method : str
        ``eoai:method`` of this step (``"gapfill:linear"``).
    parameters : mapping or str
        ``eoai:parameters`` of this step (a mapping is written as JSON).

    Examples
    --------
    >>> a = provenance([{"eoai:method": "load", "eoai:bands": "red=B04"}], "gapfill:linear", {})
    >>> a["eoai:method"], a["eoai:bands"], a["eoai:lineage"]
    ('gapfill:linear', 'red=B04', '[{"method": "load", "parameters": null}]')
    """
    attrs: dict[str, Any] = {}
    lineage: list[dict[str, Any]] = []
    for src in sources:
        prev = _parsed(src.get("eoai:lineage"))
        if isinstance(prev, list):
            lineage += [step for step in prev if step not in lineage]
        if src.get("eoai:method") is not None:
            step = {"method": src["eoai:method"], "parameters": _parsed(src.get("eoai:parameters"))}
            if step not in lineage:
                lineage.append(step)
        attrs.update({k: v for k, v in src.items() if k not in _PROVENANCE})
    attrs = clean_attrs(attrs)
    if lineage:
        attrs["eoai:lineage"] = json.dumps(lineage, default=_json_default)
    attrs["eoai:method"] = method
    attrs["eoai:parameters"] = (
        parameters
        if isinstance(parameters, str)
        else json.dumps(dict(parameters), default=_json_default)
    )
    return attrs


def dataset_sources(obj: Any, var: Any) -> list[dict[str, Any]]:
    """Attribute sources for a Dataset-level output made from ``var`` (taken from ``obj``)."""
    out = []
    if obj is not var and hasattr(obj, "data_vars"):
        out.append(dict(obj.attrs))
    out.append({k: v for k, v in var.attrs.items() if k not in VARIABLE_KEYS})
    return out
