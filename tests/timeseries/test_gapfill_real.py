"""The Whittaker default against linear interpolation on real series (benchmarks/README.md, gap-filling).

The protocol of ``benchmarks/bench_gapfill.py``: 20 % of the clear observations hidden at random,
RMSE at the hidden ones. Small subsets (every second Slovenia pixel; the two ``data/real`` sets
whole), three hidden draws pooled, so that it runs in seconds. The old default (V-curve over the wide
per-step grid, straight-line extrapolation beyond the data) is worse than linear on two of the sets.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import real_series

from eoai.errors import DataSkippedWarning
from eoai.timeseries.gapfill import gapfill

SEEDS = (0, 1, 2)
OLD_DEFAULT = {"lam": "vcurve", "edges": "extrapolate"}


def _pooled_rmse(ndvi, clear, method, **kw):
    sq = []
    for seed in SEEDS:
        observed, hidden = real_series.hide(ndvi, clear, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataSkippedWarning)
            rec = gapfill(observed, method, **kw)
        err = (rec.transpose(*ndvi.dims) - ndvi).where(hidden).values
        sq.append(err[np.isfinite(err)] ** 2)
    return float(np.sqrt(np.concatenate(sq).mean()))


@pytest.fixture(scope="module", params=real_series.SETS)
def real_set(request, shared_data):
    ndvi, clear = real_series.load(request.param)
    if request.param == "slovenia":
        sub = {"y": slice(0, None, 2), "x": slice(0, None, 2)}
        ndvi, clear = ndvi.isel(sub), clear.isel(sub)
    return request.param, ndvi, clear


def test_default_whittaker_is_no_worse_than_linear_on_real_series(real_set):
    name, ndvi, clear = real_set
    linear = _pooled_rmse(ndvi, clear, "linear")
    default = _pooled_rmse(ndvi, clear, "whittaker")
    assert default <= linear, (name, default, linear)
    old = _pooled_rmse(ndvi, clear, "whittaker", **OLD_DEFAULT)
    if name in ("slovenia", "modis_fluxsites"):
        # what the new default fixes: the old one lost to linear here
        assert old > linear, (name, old, linear)
    assert default < old or name == "sits_cerrado", (name, default, old)


def test_real_sets_load_with_their_documented_sizes():
    sizes = {"modis_fluxsites": (10, 422, 3265), "sits_cerrado": (83, 345, 17158)}
    for name, (n, t, n_clear) in sizes.items():
        ndvi, clear = real_series.load(name)
        assert ndvi.shape == (n, t) and int(clear.sum()) == n_clear
        assert float(ndvi.where(clear).min()) > -0.5 and float(ndvi.max()) <= 1.0
