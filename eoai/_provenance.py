"""Provenance attributes of eoai outputs (private).

One convention for the outputs of the time-series functions (gapfill, phenology, change,
detect_breaks):

- the input's attributes are kept under their names (for a variable taken from a Dataset, the
  Dataset's attributes and then the variable's non-descriptive ones);
- the input's own ``eoai:method`` / ``eoai:parameters`` (and any earlier ``eoai:lineage``) are moved
  into ``eoai:lineage``, a JSON list of ``{"method": ..., "parameters": ...}`` from the oldest step
  to the newest, so that e.g. ``load -> gapfill -> phenology`` stays readable;
- the function sets its own ``eoai:method`` and ``eoai:parameters`` (a JSON string);
- every value is made storable by :func:`eoai._attrs.netcdf_attrs` (the one convention of the
  package: strings and numbers as they are, booleans as 0/1, lists of one type as lists, anything
  structured as a JSON string, dates as ISO strings).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from eoai._attrs import netcdf_attrs, to_json

__all__ = ["provenance", "step", "flat_parameters", "VARIABLE_KEYS"]

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
    attrs = netcdf_attrs(attrs)
    if lineage:
        attrs["eoai:lineage"] = to_json(lineage)
    attrs["eoai:method"] = method
    attrs["eoai:parameters"] = parameters if isinstance(parameters, str) else to_json(parameters)
    return attrs


def flat_parameters(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The ``eoai:parameters`` of a step whose settings are also written as flat ``eoai:*`` keys
    (``eoai:method`` left out, the prefix dropped).

    Examples
    --------
    >>> flat_parameters({"eoai:method": "load", "eoai:bands": "red=B04", "eoai:n_items": 3})
    {'bands': 'red=B04', 'n_items': 3}
    """
    return {k.removeprefix("eoai:"): v for k, v in flat.items() if k != "eoai:method"}


def step(method: str, parameters: Mapping[str, Any] | str) -> dict[str, str]:
    """``eoai:method`` and ``eoai:parameters`` (a JSON string) of one step, for an output that
    starts its own attributes (a class map, a tree of sources); :func:`provenance` when the
    input's attributes and lineage are carried.

    Examples
    --------
    >>> step("classify", {"majority": None})
    {'eoai:method': 'classify', 'eoai:parameters': '{"majority": null}'}
    """
    return {
        "eoai:method": method,
        "eoai:parameters": parameters if isinstance(parameters, str) else to_json(parameters),
    }
