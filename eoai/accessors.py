"""The ``.eoai`` accessor on :class:`xarray.Dataset` and :class:`xarray.DataArray`.

Every method is the pure function of the same name (documented there) bound to the object: it
takes and returns xarray objects and can be used without the accessor. ``obj.eoai.gapfill`` *is*
:func:`eoai.timeseries.gapfill.gapfill` with ``obj`` as its first argument, so ``help()``,
Jupyter's ``ds.eoai.gapfill?``, Shift-Tab and keyword completion show that function's own
signature (without its first argument) and full docstring.

Heavy modules are imported on first access to a method (a lazy descriptor), so ``import eoai``
stays light. A Dataset offers only the methods that accept a Dataset and a DataArray only those
that accept a DataArray (:data:`_ACCEPTS`); asking a DataArray for a Dataset method says how to
convert it.

Examples
--------
>>> import inspect, eoai, numpy as np, xarray as xr
>>> ds = xr.Dataset({"red": ("x", np.array([0.1, 0.2])), "nir": ("x", np.array([0.5, 0.4]))})
>>> ds.eoai.index("ndvi").round(3).values.tolist()
[0.667, 0.333]
>>> list(inspect.signature(ds.eoai.index).parameters)  # index(ds, name, *, bands, units, **params)
['name', 'bands', 'units', 'params']
>>> ds.eoai.index.__doc__ == eoai.indices.index.__doc__
True
>>> hasattr(ds.red.eoai, "quicklook")
False
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from importlib import import_module
from typing import Any

import xarray as xr

# method name -> "module:function"; each accessor method is that function with the object first.
# One line per method; a method that takes only one of the two types is also listed in _ACCEPTS.
_METHODS: dict[str, str] = {
    "index": "eoai.indices:index",
    "mask": "eoai.io.masks:mask",
    "valid_fraction": "eoai.io.masks:valid_fraction",
    "gapfill": "eoai.timeseries.gapfill:gapfill",
    "phenology": "eoai.timeseries.phenology:phenology",
    "detect_breaks": "eoai.timeseries.breaks:detect_breaks",
    "change": "eoai.timeseries.change:change",
    "extract": "eoai.ml.samples:extract",
    "classify": "eoai.ml.classify:classify",
    "predict": "eoai.ml.classify:predict",
    "superres": "eoai.superres.api:superres",
    "explore": "eoai.viz.maps:explore",
    "plot_series": "eoai.viz.plots:plot_series",
    "quicklook": "eoai.viz.plots:quicklook",
    "write": "eoai.io.write:write",
    "speckle_filter": "eoai.sar.speckle:speckle_filter",
    "to_db": "eoai.sar.units:to_db",
    "from_db": "eoai.sar.units:from_db",
    "embed": "eoai.ml.presto:embed",
    "bayes_smooth": "eoai.ml.smoothing:bayes_smooth",
    "suggest_samples": "eoai.ml.active:suggest_samples",
    "segment": "eoai.ml.objects:segment",
    "object_features": "eoai.ml.objects:object_features",
    "classify_objects": "eoai.ml.objects:classify_objects",
}

# method name -> the one type it accepts ("Dataset" or "DataArray"); a method not listed here
# accepts both (tests/test_accessors.py checks this against each function's first annotation).
_ACCEPTS: dict[str, str] = {
    "superres": "Dataset",
    "quicklook": "Dataset",
    "embed": "Dataset",
}

_CONVERT = {
    "Dataset": "use da.to_dataset(name=...) (or da.to_dataset(dim='band') for a band dimension)",
    "DataArray": "select a variable, ds['name'], or use ds.to_dataarray(dim='band')",
}


def _target(name: str) -> Callable:
    """The function behind accessor method ``name`` (imports its module)."""
    module, func = _METHODS[name].split(":")
    return getattr(import_module(module), func)


def _accepts(name: str, kind: str) -> bool:
    return _ACCEPTS.get(name, kind) == kind


@functools.cache
def _bound_signature(func: Callable) -> inspect.Signature | None:
    """``func``'s signature without its first parameter (None when it has none to drop)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        return None
    return sig.replace(parameters=params[1:])


def _bind(func: Callable, obj: Any, name: str, kind: str) -> Callable:
    """``func`` with ``obj`` as its first argument: a function whose signature, docstring, name,
    module and ``__wrapped__`` are ``func``'s (so pydoc, IPython and Jedi document ``func``)."""

    def method(*args: Any, **kwargs: Any) -> Any:
        return func(obj, *args, **kwargs)

    functools.update_wrapper(method, func)
    method.__name__ = name
    method.__qualname__ = f"{kind}.eoai.{name}"
    sig = _bound_signature(func)
    if sig is not None:
        method.__signature__ = sig  # type: ignore[attr-defined]
    return method


class _Method:
    """Descriptor of accessor method ``name``: imports the target on first access and returns it
    bound to the accessor's object (on the class: the function itself, for ``help(cls)``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: EoaiAccessor | None, owner: type | None = None) -> Callable:
        func = _target(self.name)
        if instance is None:
            return func
        return _bind(func, instance._obj, self.name, instance._kind)


class EoaiAccessor:
    """Entry point to eoai from an xarray object: ``obj.eoai.<method>(...)``.

    Each method is the eoai function of the same name with the object as its first argument;
    ``help(ds.eoai.gapfill)`` (or ``ds.eoai.gapfill?`` in Jupyter) shows its documentation.
    """

    _kind = ""

    def __init__(self, obj: xr.Dataset | xr.DataArray) -> None:
        self._obj = obj

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Only reached for names that are not methods of this type. The return annotation is for
        # Jedi (Jupyter's completer): it looks a method up statically on the class first, finds
        # none (the descriptors are set in a loop) and falls back to __getattr__'s annotation; a
        # callable there lets it use the runtime object's inspect.signature for keywords.
        if name in _METHODS:
            wanted = _ACCEPTS.get(name, self._kind)
            if wanted == self._kind:  # added to _METHODS after this module was imported
                return _bind(_target(name), self._obj, name, self._kind)
            raise AttributeError(
                f"{name} takes a {wanted}, not a {self._kind}: {_CONVERT[wanted]}, "
                f"then call .eoai.{name}(...) on that"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def help(self, name: str) -> None:
        """Print the full docstring of accessor method ``name`` (deprecated).

        .. deprecated:: 0.1
            Use ``help(obj.eoai.<name>)``, or ``obj.eoai.<name>?`` and Shift-Tab in Jupyter.
        """
        warnings.warn(
            f"obj.eoai.help({name!r}) is deprecated and will be removed in the next release: "
            f"use help(obj.eoai.{name}), or obj.eoai.{name}? in Jupyter",
            FutureWarning,
            stacklevel=2,
        )
        print(_target(name).__doc__)


class DatasetAccessor(EoaiAccessor):
    """``ds.eoai``: the eoai functions that take a Dataset, bound to ``ds``."""

    _kind = "Dataset"


class DataArrayAccessor(EoaiAccessor):
    """``da.eoai``: the eoai functions that take a DataArray, bound to ``da``."""

    _kind = "DataArray"


for _cls in (DatasetAccessor, DataArrayAccessor):
    for _name in _METHODS:
        if _accepts(_name, _cls._kind):
            setattr(_cls, _name, _Method(_name))
del _cls, _name

xr.register_dataset_accessor("eoai")(DatasetAccessor)
xr.register_dataarray_accessor("eoai")(DataArrayAccessor)
