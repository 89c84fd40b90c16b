"""eoai.io: STAC search, lazy loading, cloud masks, band names and catalog presets.

Submodules load on first use (``import eoai`` stays light):

- :mod:`eoai.io.catalog`: :func:`search` (STAC APIs with pystac-client, static catalogs with pystac);
- :mod:`eoai.io.loading`: :func:`load` (odc-stac, scale/offset, nodata -> NaN, masks);
- :mod:`eoai.io.masks`: :class:`~eoai.io.masks.MaskSpec`, :func:`mask`, :func:`valid_fraction`
  (Sentinel-2 SCL, THEIA/MAJA CLM, Landsat C2 QA_PIXEL);
- :mod:`eoai.io.bands`: common names <-> asset keys;
- :mod:`eoai.io.presets`: Earth Search, Planetary Computer, CDSE, THEIA; per-collection scaling;
- :mod:`eoai.io.sentinel1`: Sentinel-1 collections, units, orbit / mode / polarisation filters;
- :mod:`eoai.io.write`: :func:`write` (COG / Zarr, region by region, resumable);
- :mod:`eoai.io.stack`: :func:`stack_sources` (several sources on one grid, a DataTree with each
  source's own dates), :func:`gapfill_sources`.

Examples
--------
>>> import eoai
>>> eoai.io.masks.MaskSpec.scl().classes
(0, 1, 3, 8, 9, 10)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_SUBMODULES = {"catalog", "loading", "masks", "bands", "presets", "sentinel1", "write", "stack"}
_FUNCTIONS = {
    "search": "catalog",
    "load": "loading",
    "mask": "masks",
    "valid_fraction": "masks",
    "MaskSpec": "masks",
    "write": "write",
    "stack_sources": "stack",
    "gapfill_sources": "stack",
}

__all__ = sorted(_SUBMODULES | set(_FUNCTIONS))


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f"eoai.io.{name}")
    if name in _FUNCTIONS:
        return getattr(import_module(f"eoai.io.{_FUNCTIONS[name]}"), name)
    raise AttributeError(f"module 'eoai.io' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
