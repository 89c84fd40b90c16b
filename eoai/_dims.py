"""Spatial dimension names (private helper shared by the writer, super-resolution and SAR filters).

eoai cubes use ``(y, x)`` as odc-stac and rioxarray do; geographic grids may use
``(latitude, longitude)`` or ``(lat, lon)``.

Examples
--------
>>> import numpy as np, xarray as xr
>>> spatial_dims(xr.DataArray(np.zeros((2, 3)), dims=("lat", "lon")), "eoai.write")
('lat', 'lon')
"""

from __future__ import annotations

from typing import Any

from .errors import MissingDimensionError

__all__ = ["SPATIAL_DIMS", "find_spatial_dims", "spatial_dims"]

#: accepted (y, x) dimension pairs, in order of preference
SPATIAL_DIMS: tuple[tuple[str, str], ...] = (("y", "x"), ("latitude", "longitude"), ("lat", "lon"))


def find_spatial_dims(obj: Any) -> tuple[str, str] | None:
    """The ``(y, x)`` dimension names of ``obj`` (a Dataset or DataArray), or ``None``."""
    dims = obj.dims
    for ydim, xdim in SPATIAL_DIMS:
        if ydim in dims and xdim in dims:
            return ydim, xdim
    return None


def spatial_dims(obj: Any, func: str) -> tuple[str, str]:
    """The ``(y, x)`` dimension names of ``obj``; a MissingDimensionError naming ``func`` if none.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> spatial_dims(xr.DataArray(np.zeros(2), dims="row"), "superres")
    Traceback (most recent call last):
    ...
    eoai.errors.MissingDimensionError: superres needs spatial dimensions y and x (or latitude / longitude, lat / lon); the input has dims ['row']: rename them, e.g. .rename({'row': 'y', 'col': 'x'}), and give them coordinates, or load the data with eoai.load
    """
    found = find_spatial_dims(obj)
    if found is None:
        name = getattr(obj, "name", None)
        what = f"{name!r}" if isinstance(name, str) else "the input"
        raise MissingDimensionError(
            f"{func} needs spatial dimensions y and x (or latitude / longitude, lat / lon); {what} "
            f"has dims {list(obj.dims)}: rename them, e.g. .rename({{'row': 'y', 'col': 'x'}}), and "
            "give them coordinates, or load the data with eoai.load"
        )
    return found
