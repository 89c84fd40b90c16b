"""Data shipped with eoai: the embedded real sample and synthetic cubes with known truth.

- :func:`sample_catalog`, :func:`sample_labels`, :func:`sample_path`: a static STAC catalog of real
  Sentinel-2 data over central Slovenia (eo-learn TestEOPatch, MIT, sentinel-hub; contains modified
  Copernicus Sentinel data) and its land-cover polygons;
- :func:`synthetic_cube`, :func:`double_logistic`, :func:`logistic_crossing`,
  :func:`crossing_dates`: seeded Sentinel-2-like cubes whose phenology, clouds, breaks and
  high-resolution originals are known;
- :func:`parcels`: the connected regions of a truth class map as labelled polygons.

Examples
--------
>>> from eoai.datasets import synthetic_cube
>>> cube, truth = synthetic_cube(shape=(16, 16), seed=0)
>>> cube.sizes["time"]
73
"""

from __future__ import annotations

from .parcels import parcels
from .sample import sample_catalog, sample_labels, sample_path
from .synthetic import (
    DEFAULT_CLASSES,
    SCL_CODES,
    LandClass,
    crossing_dates,
    double_logistic,
    logistic_crossing,
    synthetic_cube,
)

__all__ = [
    "DEFAULT_CLASSES",
    "SCL_CODES",
    "LandClass",
    "crossing_dates",
    "double_logistic",
    "logistic_crossing",
    "parcels",
    "sample_catalog",
    "sample_labels",
    "sample_path",
    "synthetic_cube",
]
