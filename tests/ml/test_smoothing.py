"""Bayesian smoothing of class probabilities (eoai.ml.smoothing.bayes_smooth, sits_smooth)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

import eoai
from eoai.errors import InputError, MissingDimensionError
from eoai.ml.smoothing import EPS, bayes_smooth
from eoai.testing import raise_if_dask_computes


def _proba(p: np.ndarray, names=None) -> xr.DataArray:
    names = names or [str(i + 1) for i in range(p.shape[0])]
    return xr.DataArray(
        p.astype("float32"),
        dims=("class_name", "y", "x"),
        coords={"class_name": names, "y": 1000.0 - 10 * np.arange(p.shape[1]),
                "x": 10.0 * np.arange(p.shape[2])},
    )  # fmt: skip


@pytest.fixture(scope="module")
def noisy():
    """(truth codes (y, x), noisy probabilities): the parcels of a synthetic scene (6 classes),
    probabilities = softmax(one-hot + N(0, 1.5)) so that about a third of the pixels are right."""
    _, truth = eoai.datasets.synthetic_cube(shape=(64, 64), freq="120D", breaks=False, seed=1)
    t = truth["class"].values
    codes = np.asarray(truth["class"].attrs["flag_values"])
    onehot = (t[None] == codes[:, None, None]).astype("float64")
    logit = onehot + np.random.default_rng(0).normal(0, 1.5, onehot.shape)
    p = np.exp(logit) / np.exp(logit).sum(axis=0)
    return t, _proba(p, [str(c) for c in codes])


def _reference(p: np.ndarray, window: int, smoothness: float, fraction: float) -> np.ndarray:
    """sits' bayes_smoother_fraction, pixel by pixel (mirrored edges), then logistic + normalise."""
    q = np.clip(p.astype("float64"), EPS, 1 - EPS)
    logit = np.log(q / (1 - q))
    h = window // 2
    pad = np.pad(logit, ((0, 0), (h, h), (h, h)), mode="symmetric")
    out = np.empty_like(logit)
    k = math.ceil(fraction * window * window)
    for c in range(p.shape[0]):
        for i in range(p.shape[1]):
            for j in range(p.shape[2]):
                neigh = np.sort(pad[c, i : i + window, j : j + window].ravel())[::-1][:k]
                s0, m0 = neigh.var(ddof=1), neigh.mean()
                w = s0 / (s0 + smoothness)
                out[c, i, j] = w * logit[c, i, j] + (1 - w) * m0
    back = 1 / (1 + np.exp(-out))
    return back / back.sum(axis=0)


def test_matches_the_sits_formula_pixel_by_pixel():
    p = np.random.default_rng(2).dirichlet(np.ones(3), size=(9, 8)).transpose(2, 0, 1)
    for window, smoothness, fraction in [(3, 10.0, 0.5), (5, 4.0, 1.0)]:
        got = bayes_smooth(_proba(p), window=window, smoothness=smoothness, neigh_fraction=fraction)
        want = _reference(p, window, smoothness, fraction)
        np.testing.assert_allclose(got["probability"].values, want, atol=2e-5)


def test_smoothing_raises_accuracy_of_a_noisy_map(noisy):
    truth, proba = noisy
    before = (proba["class_name"].values.astype(int)[proba.values.argmax(0)] == truth).mean()
    out = bayes_smooth(proba)
    after = (out["class"].values == truth).mean()
    strong = (bayes_smooth(proba, window=7, smoothness=10)["class"].values == truth).mean()
    # measured (64 x 64, seed 1, noise 1.5): 0.34 -> 0.70 with the defaults (window 5,
    # smoothness 5), -> 0.80 with window 7, smoothness 10
    assert before < 0.40
    assert after >= 0.65 and after - before >= 0.30, (before, after)
    assert strong >= 0.75, strong
    np.testing.assert_allclose(out["probability"].sum("class_name"), 1, atol=1e-5)
    assert out["class"].attrs["flag_values"] == [0, 1, 2, 3, 4, 5]
    assert out.attrs["eoai:method"] == "bayes_smooth"


def test_tiles_give_the_whole_map_and_nodata_stays_nodata(noisy):
    _, proba = noisy
    proba = proba.copy()
    holes = np.zeros(proba.shape[1:], bool)
    holes[14:18, 10:40] = True  # across the chunk border at 16
    holes[40, 31:33] = True
    holes[0, 0] = True
    proba = proba.where(~holes)
    whole = bayes_smooth(proba, window=7).compute()
    tiled = bayes_smooth(proba.chunk({"class_name": 2, "y": 16, "x": 16}), window=7)
    assert tiled["probability"].chunks is not None
    with raise_if_dask_computes(max_computes=1):
        tiled = tiled.compute()
    xr.testing.assert_allclose(whole, tiled, atol=1e-6)
    assert np.isnan(whole["probability"].values[:, holes]).all()
    assert (whole["class"].values[holes] == 255).all()
    assert not np.isnan(whole["probability"].values[:, ~holes]).any()
    assert (whole["class"].values[~holes] != 255).all()


def test_lazy_and_reads_the_classify_dataset():
    p = np.random.default_rng(3).dirichlet(np.ones(2), size=(12, 12)).transpose(2, 0, 1)
    ds = xr.Dataset({"probability": _proba(p, ["crop", "forest"]).chunk({"y": 6, "x": 6})})
    ds["class"] = xr.DataArray(np.zeros((12, 12), "uint8"), dims=("y", "x")).chunk(6)
    ds["class"].attrs = {"flag_values": [10, 20], "class_names": ["crop", "forest"], "nodata": 0}
    ds.attrs = {"eoai:method": "classify", "eoai:parameters": "{}"}
    with raise_if_dask_computes():
        out = ds.eoai.bayes_smooth(window=3)
    assert set(np.unique(out["class"].values)) <= {10, 20}
    assert out["class"].attrs["nodata"] == 0
    assert "classify" in out.attrs["eoai:lineage"]


def test_errors():
    p = np.full((2, 6, 6), 0.5)
    with pytest.raises(InputError, match=r"do not sum to 1 at 36 of 36 valid pixels.*percentages"):
        bayes_smooth(_proba(p * 100))
    bad = _proba(p * 0.9).chunk({"y": 3})
    lazy = bayes_smooth(bad, window=3)  # a dask input is checked chunk by chunk, when computed
    with pytest.raises(InputError, match="do not sum to 1 at 18 of 18 valid pixels of a chunk"):
        lazy.compute()
    with pytest.raises(InputError, match=r"must lie in \[0, 1\].*logits"):
        bayes_smooth(_proba(np.stack([np.full((6, 6), 2.0), np.full((6, 6), -1.0)])))
    with pytest.raises(MissingDimensionError, match=r"\(class_name, y, x\)"):
        bayes_smooth(_proba(p).rename(class_name="band"))
    with pytest.raises(InputError, match="no 'probability' variable"):
        bayes_smooth(xr.Dataset({"class": _proba(p)[0]}))
    with pytest.raises(InputError, match="odd number of pixels from 3 to 21, got 4"):
        bayes_smooth(_proba(p), window=4)
    with pytest.raises(InputError, match="smoothness must be > 0"):
        bayes_smooth(_proba(p), smoothness=0)
    with pytest.raises(InputError, match=r"one per class \(2\)"):
        bayes_smooth(_proba(p), smoothness=[1, 2, 3])
    with pytest.raises(InputError, match=r"neigh_fraction must be in \(0, 1\]"):
        bayes_smooth(_proba(p), neigh_fraction=0)
    with pytest.raises(InputError, match="floating-point"):
        bayes_smooth(_proba(p).astype("uint16"))
    with pytest.raises(InputError, match="smaller than the halo"):
        bayes_smooth(_proba(p)[:, :2], window=7)
