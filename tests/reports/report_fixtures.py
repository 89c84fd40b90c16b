"""The demo report, produced once per test session with the real command line and shared by the
report and browser tests (both import :func:`demo_report_dir`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def demo_report_dir(base: Path) -> tuple[Path, subprocess.CompletedProcess | None]:
    """Run ``eoai demo --out <base>/eoai-demo`` once (cached in ``base``)."""
    out = base / "eoai-demo"
    done = out / "report.html"
    if done.is_file():
        return out, None
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from eoai.cli import main; sys.exit(main())",
            "demo",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=base,
    )
    if proc.returncode != 0:
        raise AssertionError(f"eoai demo failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return out, proc
