"""Fixtures of the classification tests: a small synthetic cube with known classes and its parcels."""

from __future__ import annotations

import pytest

import eoai.datasets


@pytest.fixture(scope="session")
def synthetic():
    """(cube without scl, truth, parcels GeoDataFrame): 64 x 64 px, 25 dates, 10 bands, 30 % clouds."""
    cube, truth = eoai.datasets.synthetic_cube(
        shape=(64, 64), freq="15D", breaks=False, seed=3, parcel_size=60,
        chunks={"time": -1, "y": 32, "x": 32},
    )  # fmt: skip
    cube = cube.drop_vars("scl")
    return cube, truth, eoai.datasets.parcels(truth)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread: training is tiny and shared CI cores make OpenMP spin.

    Use it module-wide with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
