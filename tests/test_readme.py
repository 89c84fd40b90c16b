"""The README stays true: its tour runs as written."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tour_runs_and_gives_real_results():
    text = README.read_text()
    tour = text[text.index("## A short tour") :]
    code = re.search(r"```python\n(.*?)```", tour, re.S).group(1)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, str(README), "exec"), namespace)  # noqa: S102
    cube, pheno, scores, classes = (namespace[k] for k in ("cube", "pheno", "scores", "classes"))
    assert cube.sizes["x"] == 100 and cube.sizes["y"] == 101 and cube.odc.crs.epsg == 32633
    assert cube.ndvi.chunks is not None and classes["class"].chunks is not None
    # forest pixels green up in spring: a median start of season between March and June
    sos_doy = float(np.nanmedian(pheno.sos.dt.dayofyear.values))
    assert 60 < sos_doy < 180
    assert 0.5 < scores.overall_accuracy <= 1
    truth, breaks = namespace["truth"], namespace["breaks"]
    in_monitoring = (truth.break_date >= np.datetime64("2021-06-01")).values
    assert in_monitoring.sum() > 0
    assert breaks["break"].values[in_monitoring].mean() >= 0.9
