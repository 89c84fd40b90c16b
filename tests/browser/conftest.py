"""Browser fixtures: Debian chromium driven by Python playwright, network blocked."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from eoai_testing import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
]
sys.path.insert(0, str(ROOT / "tests" / "reports"))


@pytest.fixture(scope="session")
def browser():
    """A headless chromium (never downloaded: the Debian package)."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        skip_or_fail("Debian chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("python playwright is not installed (pip install playwright)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def demo_report(tmp_path_factory):
    from report_fixtures import demo_report_dir

    return demo_report_dir(tmp_path_factory.getbasetemp())


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
