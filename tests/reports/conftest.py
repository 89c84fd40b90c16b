"""Fixtures of the report tests."""

from __future__ import annotations

import pytest
from report_fixtures import demo_report_dir


@pytest.fixture(scope="session")
def demo_report(tmp_path_factory):
    """(folder, completed process or None) of ``eoai demo``, run once per session."""
    return demo_report_dir(tmp_path_factory.getbasetemp())
