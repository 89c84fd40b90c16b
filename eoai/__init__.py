"""eoai: satellite image time series to land information, in Jupyter.

``import eoai`` registers the ``.eoai`` accessor on xarray objects and imports nothing heavy
(no torch, scikit-learn, ipyleaflet, hvplot or papermill; odc-stac and pystac-client load on first
use). Public entry points:

- :func:`eoai.search` and :func:`eoai.load`: STAC search and lazy loading with cloud masks;
- :func:`eoai.stack_sources`: several sensors (Sentinel-1, Sentinel-2, a DEM) on one grid, each
  with its own dates, as an ``xarray.DataTree`` that extract / classify take as it is;
- :func:`eoai.write`: COGs for QGIS (class maps with colours and a ``.qml``) or Zarr, region by
  region and resumable after a crash;
- :mod:`eoai.datasets`: the embedded real sample and synthetic cubes with known truth;
- :func:`eoai.set_options`: ``device``, ``threads`` and ``progress`` for a block or the session;
- ``obj.eoai.<method>``: indices, gap-filling, phenology, classification, super-resolution,
  change detection, maps and plots.

Examples
--------
>>> import eoai
>>> cube = eoai.load(eoai.datasets.sample_catalog(), bands=["ndvi", "clm"])  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from . import accessors as _accessors  # noqa: F401  (registers .eoai)
from . import errors
from ._options import get_options, set_options

__version__ = "0.1.0"

_LAZY_FUNCTIONS = {
    "search": "eoai.io.catalog",
    "load": "eoai.io.loading",
    "write": "eoai.io.write",
    "stack_sources": "eoai.io.stack",
}
_LAZY_MODULES = {
    "datasets",
    "io",
    "indices",
    "timeseries",
    "ml",
    "superres",
    "viz",
    "reports",
    "sar",
}

__all__ = [
    "errors",
    "get_options",
    "set_options",
    "search",
    "load",
    "write",
    "stack_sources",
    *sorted(_LAZY_MODULES),
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_FUNCTIONS:
        return getattr(import_module(_LAZY_FUNCTIONS[name]), name)
    if name in _LAZY_MODULES:
        return import_module(f"eoai.{name}")
    raise AttributeError(f"module 'eoai' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
