"""Fixtures shared by the whole suite: paths to ../shared/data and a compute-counting scheduler."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project root; fails (never skips) with the folder named."""
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"real test data not found: expected the folder {SHARED_DATA} "
            "(clone the project next to its shared/ folder)"
        )
    return SHARED_DATA


def skip_or_fail(reason: str) -> None:
    """Skip a test that needs a system service, but fail in CI where .ci/run installs it."""
    if IN_CI:
        pytest.fail(f"{reason} (CI installs it in .ci/run, so this is a real failure)")
    pytest.skip(reason)


class ComputeCounter:
    """A dask scheduler that counts how often a graph is computed (synchronously)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, dsk, keys, **kwargs):
        self.count += 1
        return dask.get(dsk, keys, **kwargs)


@pytest.fixture
def count_computes() -> Iterator:
    """Yield a context-manager factory: ``with count_computes() as c: ...; assert c.count == 0``."""

    @contextmanager
    def _counting() -> Iterator[ComputeCounter]:
        counter = ComputeCounter()
        with dask.config.set(scheduler=counter):
            yield counter

    yield _counting
