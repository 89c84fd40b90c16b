"""A notebook run in a real JupyterLab (127.0.0.1) shows the explore() map widget."""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest
from eoai_testing import free_port, skip_or_fail, stop_process
from PIL import Image

pytestmark = pytest.mark.browser

NOTEBOOK_CODE = """import eoai
ndvi = eoai.load(eoai.datasets.sample_catalog(), collections=["slovenia-ndvi"], bands=["ndvi"], chunks={})["ndvi"]
m = ndvi.eoai.explore(time="2016-08-04")
m"""


@pytest.fixture
def jupyterlab(tmp_path):
    lab = Path(sys.executable).with_name("jupyter-lab")
    if not lab.exists():
        skip_or_fail("jupyterlab is not installed in this environment (pip install jupyterlab)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK_CODE)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp_path / "map.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
    )
    proc = subprocess.Popen(
        [str(lab), "--allow-root", "--no-browser", "--ip", "127.0.0.1", "--port", str(port),
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    pytest.fail(f"jupyter lab did not start on {base}:\n{out[-3000:]}")
                time.sleep(0.5)
        # start the notebook's kernel through the REST API, so JupyterLab attaches to it
        body = json.dumps({"path": "map.ipynb", "type": "notebook", "name": "map.ipynb",
                           "kernel": {"name": "python3"}}).encode()  # fmt: skip
        req = urllib.request.Request(
            f"{base}/api/sessions?token={token}", data=body, method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        urllib.request.urlopen(req, timeout=60)
        yield base, token
    finally:
        stop_process(proc, timeout=20)


def test_map_widget_renders_in_jupyterlab(browser, jupyterlab, artifacts):
    base, token = jupyterlab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})

    def local_only(route):  # JupyterLab itself only; no tiles, no CDN
        url = route.request.url
        route.continue_() if url.startswith((base, "data:", "blob:")) else route.abort()

    page.route("**/*", local_only)
    try:
        page.goto(f"{base}/lab/tree/map.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_timeout(2000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        deadline = time.time() + 150
        while page.locator(".jp-OutputArea .leaflet-container").count() == 0:
            assert time.time() < deadline, "no map rendered in JupyterLab within 150 s"
            accept = page.locator(".jp-Dialog button.jp-mod-accept")  # "Select Kernel"
            if accept.count():
                accept.first.click()
            page.wait_for_timeout(1000)
        page.wait_for_selector(".jp-OutputArea img.leaflet-image-layer", timeout=60_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-OutputArea img.leaflet-image-layer')]"
            ".some(i => i.complete && i.naturalWidth > 0 && i.src.startsWith('data:image/png'))",
            timeout=60_000,
        )
        assert page.locator(".jp-OutputArea .jupyter-widgets").count() >= 1
        page.wait_for_timeout(1500)
        # the overlay must actually be on screen inside the map, not merely in the DOM
        rects = page.evaluate(
            "() => { const m = document.querySelector('.jp-OutputArea .leaflet-container')"
            ".getBoundingClientRect(); const i = document.querySelector("
            "'.jp-OutputArea img.leaflet-image-layer').getBoundingClientRect();"
            " return {map: [m.left, m.top, m.right, m.bottom], img: [i.left, i.top, i.right, i.bottom]}; }"
        )
        (ml, mt, mr, mb), (il, it, ir, ib) = rects["map"], rects["img"]
        overlap = max(0, min(mr, ir) - max(ml, il)) * max(0, min(mb, ib) - max(mt, it))
        assert overlap > 0.05 * (mr - ml) * (mb - mt), f"overlay not inside the map: {rects}"
        # ... and painted: the pixels under it are NDVI colours, not the map's flat grey background
        shot = page.screenshot(clip={"x": il, "y": it, "width": ir - il, "height": ib - it})
        pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=float)
        assert pixels.std(axis=(0, 1)).max() > 20, "overlay image is in place but shows nothing"
        assert page.locator(".jp-OutputArea .leaflet-control-layers").count() == 1
    finally:
        page.screenshot(path=str(artifacts / "jupyterlab_map.png"), full_page=True)
        page.close()
