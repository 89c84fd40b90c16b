"""Cubes for the viz tests: the embedded real sample (loaded lazily) and small synthetic grids."""

from __future__ import annotations

import pytest
import xarray as xr


@pytest.fixture(scope="session")
def sample_ndvi() -> xr.DataArray:
    """The sample's NDVI series (time, y, x), clouds masked, dask-backed."""
    import eoai

    cube = eoai.load(
        eoai.datasets.sample_catalog(), collections=["slovenia-ndvi"], bands=["ndvi"], chunks={}
    )
    return cube["ndvi"]


@pytest.fixture(scope="session")
def sample_l1c() -> xr.Dataset:
    """The sample's 5 L1C dates, reflectance bands red/green/blue/nir."""
    import eoai

    return eoai.load(
        eoai.datasets.sample_catalog(),
        collections=["slovenia-l1c"],
        bands=["red", "green", "blue", "nir"],
        chunks={},
    )
