"""Shared by the report and browser tests: the demo report, produced once per test session with the
real command line (:func:`demo_report_dir`), and small notebooks built in a test (:func:`make_notebook`)."""

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


def make_notebook(path: Path, cells: list[str], tag_first: bool = True) -> Path:
    """A notebook of code ``cells`` at ``path``, the first tagged ``parameters`` (python3 kernel)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    if tag_first:
        nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path
