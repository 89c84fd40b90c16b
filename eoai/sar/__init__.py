"""eoai.sar: SAR backscatter units (linear power, dB, amplitude) and speckle filters.

- :func:`to_db`, :func:`from_db`, :func:`convert_units` (:mod:`eoai.sar.units`): lazy, NaN and
  nodata kept NaN, units in ``attrs["units"]``;
- :func:`speckle_filter` (:mod:`eoai.sar.speckle`): Lee, enhanced Lee, boxcar per date and the
  Quegan & Yu multi-temporal filter, lazy with ``dask.array.map_overlap``, in linear power.

Also on the accessor: ``cube.eoai.speckle_filter(...)``, ``cube.eoai.to_db()``,
``cube.eoai.from_db()``.

Examples
--------
>>> import numpy as np, xarray as xr
>>> import eoai.sar
>>> eoai.sar.to_db(xr.DataArray(np.array([0.1]), attrs={"units": "linear"})).values.tolist()
[-10.0]
"""

from __future__ import annotations

from .speckle import METHODS, speckle_filter
from .units import UNITS, backscatter_units, convert_units, from_db, to_db

__all__ = [
    "METHODS",
    "UNITS",
    "backscatter_units",
    "convert_units",
    "from_db",
    "speckle_filter",
    "to_db",
]
