"""eoai report / run_report on a notebook that is not JSON and with unknown parameters (issue #16).

Before: a notebook that is not JSON raised ``nbformat.reader.NotJSONError`` (a traceback from the
CLI); ``eoai report NB -p nosuch 1`` ran the notebook with its defaults and exited 0.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from report_fixtures import make_notebook

from eoai.cli import main
from eoai.errors import InputError
from eoai.reports import notebook_parameters, run_report


def _notebook(path, params="quick = True  # fast\nbbox: list | None = None\nyear = 2016"):
    return make_notebook(path, [params, "print(quick)"])


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not json", "it is not JSON"),
        (b'{"cells": [], "metadata": {}, "nbformat": 4', "it is not JSON"),  # truncated
        (b'{"a": 1}', "it is JSON but not a Jupyter notebook"),
        (b"\xff\xfe\x00\x01", "it is not"),
    ],
)
def test_notebook_that_is_not_json(tmp_path, capsys, content, reason):
    nb = tmp_path / "broken.ipynb"
    nb.write_bytes(content)
    with pytest.raises(InputError) as err:
        run_report(nb, out=tmp_path / "out", progress=False)
    msg = str(err.value)
    assert f"{nb} is not a readable Jupyter notebook: {reason}" in msg
    assert "restore it, or open it in Jupyter and save it again" in msg
    assert main(["report", str(nb), "--out", str(tmp_path / "cli")]) == 1
    captured = capsys.readouterr()
    assert "eoai report: error:" in captured.err and "Traceback" not in captured.err


def test_unknown_parameter_lists_the_notebooks(tmp_path):
    nb = _notebook(tmp_path / "p.ipynb")
    assert notebook_parameters(nb) == {"quick": "True", "bbox": "None", "year": "2016"}
    with pytest.raises(InputError) as err:
        run_report(nb, {"nosuch": 1, "quik": False}, out=tmp_path / "out", progress=False)
    msg = str(err.value)
    assert "p.ipynb has no parameters 'nosuch', 'quik'" in msg
    assert (
        "its parameters are: quick (default True), bbox (default None), year (default 2016)" in msg
    )
    assert "did you mean 'quick'?" in msg and "-p NAME VALUE" in msg
    assert not (tmp_path / "out" / "p.ipynb").exists()  # nothing was run
    # a known one still runs
    rep = run_report(nb, {"quick": False}, out=tmp_path / "ok", progress=False)
    assert "False" in rep.notebook.read_text()


def test_cli_unknown_parameter_exits_non_zero_without_traceback(tmp_path):
    nb = _notebook(tmp_path / "p.ipynb")
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from eoai.cli import main; sys.exit(main())",
         "report", str(nb), "-p", "nosuch", "1", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "eoai report: error: p.ipynb has no parameter 'nosuch'" in proc.stderr
    assert "its parameters are: quick (default True)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
