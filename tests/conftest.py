"""Fixtures shared by the whole suite: paths to ../shared/data and a compute-counting scheduler."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
import pytest
from eoai_testing import IN_CI, ComputeCounter, skip_or_fail  # noqa: F401  (re-exported)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project root; fails (never skips) with the folder named."""
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"real test data not found: expected the folder {SHARED_DATA} "
            "(clone the project next to its shared/ folder)"
        )
    return SHARED_DATA


@pytest.fixture
def count_computes() -> Iterator:
    """Yield a context-manager factory: ``with count_computes() as c: ...; assert c.count == 0``."""

    @contextmanager
    def _counting() -> Iterator[ComputeCounter]:
        counter = ComputeCounter()
        with dask.config.set(scheduler=counter):
            yield counter

    yield _counting
