"""Data shipped with eoai: the embedded real sample and synthetic cubes with known truth.

- :func:`sample_catalog`, :func:`sample_labels`, :func:`sample_path`: a static STAC catalog of real
  Sentinel-2 data over central Slovenia (eo-learn TestEOPatch, MIT, sentinel-hub; contains modified
  Copernicus Sentinel data) and its land-cover polygons;
- :func:`synthetic_cube`, :func:`double_logistic`, :func:`logistic_crossing`,
  :func:`crossing_dates`: seeded Sentinel-2-like cubes whose phenology, clouds, breaks and
  high-resolution originals are known.

Examples
--------
>>> from eoai.datasets import synthetic_cube
>>> cube, truth = synthetic_cube(shape=(16, 16), seed=0)
>>> cube.sizes["time"]
73
"""

from __future__ import annotations

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
    "sample_catalog",
    "sample_labels",
    "sample_path",
    "synthetic_cube",
]
