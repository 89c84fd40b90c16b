"""Helpers for eoai's tests, importable from any test folder as ``eoai_testing``.

(``tests/`` is on ``sys.path`` because the root conftest lives there; importing from ``conftest`` is
ambiguous once sub-folders have their own conftest.py, so shared helpers live here.)
"""

from __future__ import annotations

import os

import dask
import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


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
