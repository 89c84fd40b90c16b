"""Active learning: eoai.ml.active.suggest_samples (uncertain points, spread, never nodata)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import pdist

from eoai.errors import DataSkippedWarning, InputError
from eoai.ml.active import suggest_samples
from eoai.testing import raise_if_dask_computes


def _proba(p: np.ndarray, names=None) -> xr.DataArray:
    ny, nx = p.shape[1:]
    return xr.DataArray(
        p.astype("float32"),
        dims=("class_name", "y", "x"),
        coords={"class_name": names or [f"c{i}" for i in range(p.shape[0])],
                "y": 5000.0 - 10 * np.arange(ny) - 5, "x": 400000.0 + 10 * np.arange(nx) + 5},
    )  # fmt: skip


def _certain(ny=30, nx=40, n_classes=3) -> np.ndarray:
    p = np.full((n_classes, ny, nx), 0.02)
    p[0] = 1 - 0.02 * (n_classes - 1)
    return p


def test_picks_the_most_uncertain_pixels_in_order_and_never_nodata():
    p = _certain()
    p[:, 3, 4] = [0.5, 0.3, 0.2]
    p[:, 20, 30] = [0.4, 0.35, 0.25]  # more uncertain than (3, 4)
    p[:, 10, 10] = [0.1, 0.8, 0.1]
    p[:, 25:28, 2:5] = 1 / 3  # the most uncertain of all, but nodata below
    p[0, 25:28, 2:5] = np.nan
    proba = _proba(p)
    pts = suggest_samples(proba, 3, min_distance=0)
    assert list(zip(pts["y"], pts["x"], strict=True)) == [
        (proba.y.values[20], proba.x.values[30]),
        (proba.y.values[3], proba.x.values[4]),
        (proba.y.values[10], proba.x.values[10]),
    ]
    h = -(np.array([0.4, 0.35, 0.25]) * np.log([0.4, 0.35, 0.25])).sum() / np.log(3)
    assert pts["score"].iloc[0] == pytest.approx(h, rel=1e-5)
    assert pts["class"].tolist() == [1, 1, 2]  # codes 1, 2, 3 of the class names c0, c1, c2
    assert pts["class_name"].tolist() == ["c0", "c0", "c1"]
    assert pts.attrs["eoai:method"] == "suggest_samples"


def test_margin_and_entropy_rank_differently():
    p = _certain(10, 10)
    p[:, 2, 2] = [0.5, 0.5, 0.0]  # margin 1 - 0 = 1, entropy 0.63
    p[:, 7, 7] = [0.4, 0.3, 0.3]  # margin 0.9, entropy 0.99
    proba = _proba(p)
    assert suggest_samples(proba, 1, method="entropy", min_distance=0)["y"].iloc[0] == proba.y[7]
    assert suggest_samples(proba, 1, method="margin", min_distance=0)["y"].iloc[0] == proba.y[2]


def test_min_distance_is_kept_and_tiles_give_the_same_points():
    rng = np.random.default_rng(4)
    p = rng.dirichlet([1.0, 1.0, 1.0, 1.0], size=(48, 48)).transpose(2, 0, 1)
    p[:, 5:9, 30:40] = np.nan
    proba = _proba(p).assign_attrs(units="1")
    whole = suggest_samples(proba, 25, min_distance=60.0)
    assert len(whole) == 25
    assert pdist(whole[["x", "y"]].to_numpy()).min() >= 60.0
    assert whole["score"].is_monotonic_decreasing
    # greedy: each point is the most uncertain pixel not within 60 m of an earlier one
    score = -(np.nan_to_num(p) * np.log(np.where(p > 0, p, 1))).sum(0) / np.log(4)
    score[np.isnan(p).any(0)] = -1
    first = np.unravel_index(np.argmax(score), score.shape)
    assert (whole["y"].iloc[0], whole["x"].iloc[0]) == (proba.y[first[0]], proba.x[first[1]])
    lazy = proba.chunk({"y": 16, "x": 16})
    with raise_if_dask_computes(max_computes=1):
        tiled = suggest_samples(lazy, 25, min_distance=60.0, candidates=256)
    assert whole[["x", "y", "class"]].equals(tiled[["x", "y", "class"]])
    rows = np.searchsorted(-proba.y.values, -whole["y"].to_numpy())
    cols = np.searchsorted(proba.x.values, whole["x"].to_numpy())
    assert not np.isnan(p[:, rows, cols]).any()  # nodata is never proposed


def test_crs_of_the_map_and_too_few_points_warned():
    import odc.geo.xr  # noqa: F401

    proba = _proba(np.random.default_rng(5).dirichlet([1, 1], size=(12, 12)).transpose(2, 0, 1))
    proba = proba.odc.assign_crs("EPSG:32633")
    with pytest.warns(DataSkippedWarning, match=r"only 4 of the 10 points asked for are 60 apart"):
        pts = suggest_samples(proba, 10, min_distance=60)
    assert pts.crs.to_epsg() == 32633
    assert len(pts) == 4
    big = _proba(np.random.default_rng(6).dirichlet([1, 1], size=(60, 60)).transpose(2, 0, 1))
    default = suggest_samples(big, 6)  # default spacing: 10 pixels = 100 m
    assert len(default) == 6 and pdist(default[["x", "y"]].to_numpy()).min() >= 100
    assert default.attrs["eoai:parameters"]["min_distance"] == 100


def test_errors():
    proba = _proba(_certain(6, 6))
    with pytest.raises(InputError, match="n must be a number of points >= 1, got 0"):
        suggest_samples(proba, 0)
    with pytest.raises(InputError, match=r"method must be one of \('entropy', 'margin'\)"):
        suggest_samples(proba, 2, method="random")
    with pytest.raises(InputError, match="min_distance must be >= 0, got -1"):
        suggest_samples(proba, 2, min_distance=-1)
    with pytest.raises(InputError, match="candidates must be an int >= n"):
        suggest_samples(proba, 5, candidates=2)
    with pytest.raises(InputError, match="do not sum to 1 at 36 of 36 valid pixels"):
        suggest_samples(proba * 2, 2)
    with pytest.raises(InputError, match="do not sum to 1 at 9 of 9 valid pixels of a chunk"):
        suggest_samples((proba * 2).chunk({"y": 3, "x": 3}), 2)
    with pytest.raises(InputError, match="nodata .NaN. everywhere"):
        suggest_samples(proba.where(proba < 0), 2)
