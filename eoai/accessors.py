"""The ``.eoai`` accessor on :class:`xarray.Dataset` and :class:`xarray.DataArray`.

Every method is a one-line delegation to a pure function of the same name (documented there),
which takes and returns xarray objects and can be used without the accessor. Heavy modules are
imported only when a method is called, so ``import eoai`` stays light.

Examples
--------
>>> import eoai, numpy as np, xarray as xr
>>> ds = xr.Dataset({"red": ("x", np.array([0.1, 0.2])), "nir": ("x", np.array([0.5, 0.4]))})
>>> ds.eoai.index("ndvi").round(3).values.tolist()
[0.667, 0.333]
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import xarray as xr

# method name -> "module:function"; each accessor method calls that function with the object first.
_METHODS: dict[str, str] = {
    "index": "eoai.indices:index",
    "mask": "eoai.io.masks:mask",
    "valid_fraction": "eoai.io.masks:valid_fraction",
    "gapfill": "eoai.timeseries.gapfill:gapfill",
    "phenology": "eoai.timeseries.phenology:phenology",
    "detect_breaks": "eoai.timeseries.change:detect_breaks",
    "change": "eoai.timeseries.change:change",
    "extract": "eoai.ml.samples:extract",
    "classify": "eoai.ml.classify:classify",
    "superres": "eoai.superres.api:superres",
    "explore": "eoai.viz.maps:explore",
    "plot_series": "eoai.viz.plots:plot_series",
    "quicklook": "eoai.viz.plots:quicklook",
    "write": "eoai.io.write:write",
    "embed": "eoai.ml.presto:embed",
}


def _target(name: str):
    module, func = _METHODS[name].split(":")
    return getattr(import_module(module), func)


def _delegate(name: str):
    module, func = _METHODS[name].split(":")

    def method(self, *args: Any, **kwargs: Any):
        return _target(name)(self._obj, *args, **kwargs)

    method.__name__ = name
    method.__qualname__ = f"EoaiAccessor.{name}"
    method.__doc__ = (
        f"Call :func:`{module}.{func}` on this object (see its docstring for parameters)."
    )
    return method


class EoaiAccessor:
    """Entry point to eoai from an xarray object: ``obj.eoai.<method>(...)``."""

    def __init__(self, obj: xr.Dataset | xr.DataArray) -> None:
        self._obj = obj

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_METHODS))

    def help(self, name: str) -> None:
        """Print the full docstring of accessor method ``name`` (imports its module)."""
        print(_target(name).__doc__)


for _name in _METHODS:
    setattr(EoaiAccessor, _name, _delegate(_name))

xr.register_dataset_accessor("eoai")(EoaiAccessor)
xr.register_dataarray_accessor("eoai")(EoaiAccessor)
