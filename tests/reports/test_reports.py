"""eoai report / eoai demo: parameters injected, offline self-contained HTML, failures named."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from report_fixtures import make_notebook

from eoai.cli import main
from eoai.errors import InputError, ReportError
from eoai.reports import run_report
from eoai.reports.html import network_urls
from eoai.reports.run import parse_value

ROOT = Path(__file__).resolve().parents[2]


def test_parse_value():
    assert parse_value("False") is False and parse_value("null") is None
    assert parse_value("[14.9, 45.9]") == [14.9, 45.9]
    assert parse_value("'a b'") == "a b" and parse_value("2019-06") == "2019-06"


def test_parameters_are_injected_and_code_hidden(tmp_path):
    nb = make_notebook(
        tmp_path / "p.ipynb",
        ["quick = True\nbbox = None", "SECRET_CODE_MARKER = 1\nprint('result', quick, sum(bbox))"],
    )
    rep = run_report(nb, {"quick": False, "bbox": [1, 2, 3]}, out=tmp_path / "out", progress=False)
    executed = nbformat.read(rep.notebook, as_version=4)
    outputs = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "result False 6" in outputs
    html = rep.html.read_text()
    assert "result False 6" in html
    assert "SECRET_CODE_MARKER" not in html  # code hidden by default
    shown = run_report(nb, {"bbox": [1]}, out=tmp_path / "shown", hide_code=False, progress=False)
    assert "SECRET_CODE_MARKER" in shown.html.read_text()


def test_failure_names_the_cell_and_keeps_the_partial_notebook(tmp_path, capsys):
    nb = make_notebook(
        tmp_path / "bad.ipynb",
        [
            "quick = True",
            "x = 1\nprint('before the failure')",
            "y = 1 / 0  # boom",
            "print('never')",
        ],
    )
    with pytest.raises(ReportError) as err:
        run_report(nb, {}, out=tmp_path / "out", progress=False)
    msg = str(err.value)
    assert "cell 2 (0-based)" in msg and "y = 1 / 0" in msg and "ZeroDivisionError" in msg
    partial = tmp_path / "out" / "bad.ipynb"
    assert str(partial) in msg and partial.is_file()
    text = partial.read_text()
    assert "before the failure" in text and "ZeroDivisionError" in text
    # the command line exits non-zero with the same message
    code = main(["report", str(nb), "-p", "quick", "False", "--out", str(tmp_path / "cli")])
    assert code == 1
    assert "cell 2 (0-based)" in capsys.readouterr().err


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        run_report(tmp_path / "missing.ipynb")
    nb = make_notebook(tmp_path / "np.ipynb", ["a = 1"], tag_first=False)
    with pytest.raises(InputError, match="no cell tagged 'parameters'"):
        run_report(nb, {"a": 2}, out=tmp_path / "o", progress=False)


def test_flagship_copy_is_identical():
    from eoai.reports.demo import flagship_notebook

    assert (
        ROOT / "notebooks" / "00_flagship_report.ipynb"
    ).read_bytes() == flagship_notebook().read_bytes()


def test_demo_writes_an_offline_report(demo_report):
    out, proc = demo_report
    html = (out / "report.html").read_text()
    if proc is not None:
        assert f"report written to {out / 'report.html'}" in proc.stdout
    assert network_urls(html) == []
    # no element of the page loads anything from the network (CDN or otherwise)
    tags = re.findall(
        r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(https?:)?//", html
    )
    assert tags == []
    assert "cdn.jsdelivr.net/npm/@jupyter-widgets" not in html and "unpkg.com" not in html
    # the map (widget state with an image overlay) and the Bokeh plots are embedded
    assert "application/vnd.jupyter.widget-state+json" in html
    assert "LeafletImageOverlayModel" in html and "data:image/png;base64," in html
    assert html.count("data-root-id") >= 4
    executed = json.loads((out / "report.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["quick"] is True
    # the whole mission: land cover with its accuracy and areas, change, super-resolution, files
    text = "".join(
        "".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])
    )
    oa = re.search(r"cross-validated overall accuracy (0\.\d+), kappa (0\.\d+)", text)
    assert oa and 0.6 < float(oa[1]) < 0.9, text[-2000:]  # 0.721 measured (60 trees)
    assert "adjusted area (ha)" in html and "NDVI change 2016 -> 2017" in text
    share = float(re.search(r"(\d+\.\d)% of the pixels with data changed", text)[1])
    assert 0.5 < share < 15  # mean + 2 sd of the magnitude, not Otsu's 30 %
    assert "sharpened to 10 m (guided network)" in html
    # the sample has no Sentinel-1: its section is one line saying so (tests/reports/
    # test_sentinel1_quicklook.py runs that cell on a real Sentinel-1 catalog)
    s1_lines = [line for line in text.splitlines() if "Sentinel-1" in line]
    assert len(s1_lines) == 1 and s1_lines[0].startswith("no Sentinel-1 in this catalog: its 73 ")
    assert s1_lines[0].endswith("the Sentinel-1 section is skipped (-p s1_catalog URL adds one)")
    maps = out / "maps"
    assert {"land_cover.tif", "land_cover.qml"} <= {p.name for p in maps.iterdir()}
    assert (maps / "ndvi_change" / "magnitude.tif").is_file()  # one COG per variable
    assert "import eoai" not in html.split("<main>", 1)[1]  # code hidden


def test_module_entry_point_help():
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "eoai.cli", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "report" in proc.stdout and "demo" in proc.stdout
