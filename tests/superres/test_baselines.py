"""Baselines: the replicated-grid kernels are exact x2 interpolations, lazily applied."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from eoai.superres.baselines import (
    _interp_kernel,
    interpolate,
    replicated_kernel,
    upsample_replicated,
)


def _direct_x2(img: np.ndarray, kind: str) -> np.ndarray:
    """Half-pixel x2 interpolation of a 1-D signal with kernel ``kind`` (reference)."""
    n = len(img)
    out = np.zeros(2 * n)
    for i in range(2 * n):
        u = (i - 0.5) / 2  # position of fine pixel i in coarse pixel units
        k = np.arange(int(np.floor(u)) - 3, int(np.floor(u)) + 5)
        w = _interp_kernel(kind, u - k)
        w = w / w.sum()
        out[i] = np.sum(w * img[np.clip(k, 0, n - 1)])
    return out


@pytest.mark.parametrize("kind", ["bilinear", "bicubic", "lanczos"])
@pytest.mark.parametrize("phase", [0, 1])
def test_replicated_kernel_is_the_interpolation_at_any_phase(kind, phase):
    rng = np.random.default_rng(1)
    coarse = rng.random(40)
    rep = np.repeat(coarse, 2)
    ref = _direct_x2(coarse, kind)
    if phase:  # grid starting in the middle of a block
        rep, ref = rep[1:], ref[1:]
    got = upsample_replicated(rep[None, :], kind, axes=(-1,))[0]
    inner = slice(8, -8)
    np.testing.assert_allclose(got[inner], ref[inner], atol=1e-12 if kind != "lanczos" else 2e-3)


def test_bilinear_kernel_matches_torch():
    import torch

    rng = np.random.default_rng(2)
    coarse = rng.random((1, 1, 16, 16)).astype(np.float32)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(coarse), scale_factor=2, mode="bilinear", align_corners=False
    ).numpy()[0, 0]
    rep = np.repeat(np.repeat(coarse[0, 0], 2, 0), 2, 1)
    got = upsample_replicated(rep, "bilinear")
    np.testing.assert_allclose(got[2:-2, 2:-2], ref[2:-2, 2:-2], atol=1e-6)
    assert replicated_kernel("bicubic").sum() == pytest.approx(1.0)


def test_interpolate_lazy_equals_numpy(count_computes):
    rng = np.random.default_rng(3)
    v = np.repeat(np.repeat(rng.random((2, 30, 30)), 2, 1), 2, 2).astype(np.float32)
    ds = xr.Dataset({"B05": (("time", "y", "x"), v)})
    eager = interpolate(ds, ["B05"], "bicubic")
    with count_computes() as c:
        lazy = interpolate(ds.chunk({"time": 1, "y": 16, "x": 16}), ["B05"], "bicubic")
        assert isinstance(lazy.B05.data, da.Array)
    assert c.count == 0
    np.testing.assert_allclose(lazy.B05.values, eager.B05.values, atol=1e-6)
