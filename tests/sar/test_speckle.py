"""Speckle filters on synthetic speckle of known ENL and on real Sentinel-1 patches.

Synthetic: gamma-distributed intensity with L = 4.4 looks (Sentinel-1 IW GRDH) over a piecewise
constant scene; theory for a window of N pixels: boxcar ENL ~ N L, Lee below that but well above
L, Quegan & Yu over T uncorrelated dates up to ~T L, means preserved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import eoai
from eoai.errors import InputError, MissingDimensionError, TimeAxisError
from eoai.sar import from_db, speckle_filter, to_db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from s1_local import bigearthnet_items, ssl4eo_items  # noqa: E402

L = 4.4
NY = NX = 96
# regions: left 0.05, right (x >= 48) 0.5, bottom-left block (y >= 64, x < 24) 0.01
TRUTH = np.full((NY, NX), 0.05)
TRUTH[:, 48:] = 0.5
TRUTH[64:, :24] = 0.01
HOMOG = (slice(6, 58), slice(6, 42))  # inside the 0.05 region, >= 3 px from any edge
EDGE = (slice(None), slice(40, 56))  # both sides of the vertical step edge


def speckled(t: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return TRUTH * rng.gamma(L, 1 / L, (t, NY, NX))


def enl(a: np.ndarray) -> float:
    v = np.asarray(a, dtype=np.float64)
    return float(v.mean() ** 2 / v.var())


@pytest.fixture(scope="module")
def one_date() -> xr.DataArray:
    return xr.DataArray(speckled(1)[0], dims=("y", "x"), attrs={"units": "linear", "eoai:looks": L})


def test_enl_and_mean_follow_theory(one_date):
    raw = enl(one_date.values[HOMOG])
    assert 3.8 < raw < 5.0  # the simulated speckle has L looks
    out = {
        m: speckle_filter(one_date, m, window=7).values
        for m in ("boxcar", "lee", "refined_lee", "enhanced_lee")
    }
    n_l = 49 * L
    assert 0.8 * n_l < enl(out["boxcar"][HOMOG]) < 1.3 * n_l
    assert 10 * L < enl(out["lee"][HOMOG]) < enl(out["boxcar"][HOMOG])
    assert 10 * L < enl(out["enhanced_lee"][HOMOG]) < 1.3 * n_l
    # refined Lee: half windows of 28 px, so fewer looks than Lee, still well above L
    assert 10 * L < enl(out["refined_lee"][HOMOG]) < 0.8 * enl(out["lee"][HOMOG])
    for m, v in out.items():  # mean preserved within 2 % in every region
        for region in (HOMOG, (slice(6, 90), slice(54, 90)), (slice(70, 90), slice(3, 18))):
            truth = one_date.values[region].mean()
            assert abs(v[region].mean() / truth - 1) < 0.02, m
    # edges kept better than by the boxcar
    rmse = {m: float(np.sqrt(np.mean((v[EDGE] - TRUTH[EDGE]) ** 2))) for m, v in out.items()}
    assert rmse["lee"] < 0.85 * rmse["boxcar"]
    assert rmse["enhanced_lee"] < 0.9 * rmse["boxcar"]
    assert rmse["refined_lee"] < 0.75 * rmse["boxcar"] and rmse["refined_lee"] < rmse["lee"]


def test_quegan_enl_grows_with_dates():
    t = 8
    cube = xr.DataArray(speckled(t, seed=3), dims=("time", "y", "x"), attrs={"units": "linear"})
    cube = cube.assign_coords(time=np.arange(t).astype("datetime64[D]"))
    out = speckle_filter(cube, "quegan", window=7)
    gains = [enl(out.values[i][HOMOG]) for i in range(t)]
    raws = [enl(cube.values[i][HOMOG]) for i in range(t)]
    assert all(0.5 * t * L < g < 1.2 * t * L for g in gains), gains
    assert all(g > 4 * r for g, r in zip(gains, raws, strict=True))
    # each date keeps its own mean level (a change in one date is not smeared)
    for i in range(t):
        assert abs(out.values[i][HOMOG].mean() / cube.values[i][HOMOG].mean() - 1) < 0.02
    # more dates, more looks
    few = speckle_filter(cube.isel(time=slice(0, 2)), "quegan", window=7)
    assert enl(few.values[0][HOMOG]) < 0.5 * gains[0]


@pytest.mark.parametrize("method", ["lee", "refined_lee", "enhanced_lee", "boxcar", "quegan"])
def test_numpy_and_dask_equal_and_chunk_borders_invisible(method):
    cube = xr.DataArray(speckled(3, seed=1), dims=("time", "y", "x"), attrs={"units": "linear"})
    cube = cube.assign_coords(time=np.arange(3).astype("datetime64[D]"))
    cube.values[0, 10:13, 20:30] = np.nan
    ref = speckle_filter(cube, method, looks=L)
    lazy = speckle_filter(cube.chunk({"time": 1, "y": 25, "x": 31}), method, looks=L)
    assert lazy.chunks is not None  # lazy in, lazy out
    np.testing.assert_array_equal(lazy.compute().values, ref.values)


def test_db_input_is_filtered_in_linear_power_and_converted_back():
    lin = xr.DataArray(speckled(1, seed=5)[0], dims=("y", "x"), attrs={"units": "linear"})
    db = to_db(lin)
    out_db = speckle_filter(db, "lee", looks=L)
    assert out_db.attrs["units"] == "dB"
    assert "from dB and back" in out_db.attrs["eoai:parameters"]
    np.testing.assert_allclose(
        from_db(out_db).values, speckle_filter(lin, "lee", looks=L).values, rtol=1e-6
    )
    # averaging dB values directly would bias the mean low by ~0.5 dB at L = 4.4
    assert abs(from_db(out_db).values[HOMOG].mean() / lin.values[HOMOG].mean() - 1) < 0.02


def test_nan_stays_nan_and_none_is_added(one_date):
    x = one_date.copy()
    x.values[30:34, 30:34] = np.nan
    x.values[0, :] = np.nan
    for m in ("lee", "refined_lee", "enhanced_lee", "boxcar"):
        out = speckle_filter(x, m).values
        np.testing.assert_array_equal(np.isnan(out), np.isnan(x.values))


def test_dataset_and_accessor_and_provenance(one_date):
    ds = xr.Dataset({"vv": one_date, "angle": (("y", "x"), np.full((NY, NX), 35.0))})
    out = ds.eoai.speckle_filter("enhanced_lee", window=5)
    np.testing.assert_array_equal(out.angle.values, ds.angle.values)  # not backscatter: kept
    assert out.vv.attrs["eoai:method"] == "speckle_filter:enhanced_lee"
    assert out.vv.attrs["eoai:speckle_looks"] == L
    assert '"looks": 4.4' in out.vv.attrs["eoai:parameters"]  # the ENL used, from the attrs
    assert float(out.vv[HOMOG].std()) < 0.3 * float(ds.vv[HOMOG].std())


def test_errors():
    x = xr.DataArray(speckled(1)[0], dims=("y", "x"))
    with pytest.raises(InputError, match="units="):
        speckle_filter(x, "boxcar")
    x.attrs["units"] = "linear"
    with pytest.raises(InputError, match="looks="):
        speckle_filter(x, "lee")
    with pytest.raises(InputError, match="odd integer"):
        speckle_filter(x, "boxcar", window=4)
    with pytest.raises(InputError, match="7 x 7"):
        speckle_filter(x, "refined_lee", window=5, looks=L)
    with pytest.raises(InputError, match="unknown speckle filter"):
        speckle_filter(x, "frost")
    with pytest.raises(MissingDimensionError, match="'time' dimension"):
        speckle_filter(x, "quegan")
    with pytest.raises(TimeAxisError, match="two or more dates"):
        speckle_filter(x.expand_dims(time=1), "quegan")
    with pytest.raises(MissingDimensionError, match="spatial"):
        speckle_filter(xr.DataArray(np.ones(5), dims="t", attrs={"units": "dB"}), "boxcar")
    with pytest.raises(InputError, match="no backscatter variable"):
        speckle_filter(xr.Dataset({"ndvi": (("y", "x"), np.ones((4, 4)))}), "boxcar")


@pytest.mark.slow
def test_real_patches_enl_rises(shared_data):
    """BigEarthNet-S1 and SSL4EO-S12 patches (dB): ENL of their most homogeneous 16 x 16 block."""
    items = bigearthnet_items(shared_data, "dB") + ssl4eo_items(shared_data, "dB")
    for item in items:
        cube = eoai.load([item], ["vv", "vh"])
        assert cube.vv.attrs["units"] == "dB" and cube.vv.attrs["eoai:looks"] == L
        out = speckle_filter(cube, "lee").compute()
        for band in ("vv", "vh"):
            p = from_db(cube[band]).isel(time=0).values
            f = from_db(out[band]).isel(time=0).values
            assert not np.isnan(f).any()  # no NaN introduced
            blocks = [(enl(p[i : i + 16, j : j + 16]), i, j)
                      for i in range(0, p.shape[0] - 15, 16) for j in range(0, p.shape[1] - 15, 16)]  # fmt: skip
            raw, i, j = max(blocks)
            assert raw < 12  # speckle-dominated block: about the nominal looks
            assert enl(f[i : i + 16, j : j + 16]) > 2.4 * raw, (item.id, band)
            assert abs(np.mean(f) / np.mean(p) - 1) < 0.02  # mean power kept
        # NaN input stays NaN (a nodata hole in a real patch)
        holed = cube.vv.copy(data=cube.vv.values.copy())
        holed.values[0, 40:50, 40:50] = np.nan
        res = speckle_filter(holed, "enhanced_lee").values
        np.testing.assert_array_equal(np.isnan(res), np.isnan(holed.values))


def test_quegan_rechunks_time_into_bounded_chunks():
    import dask.array as dsa

    data = dsa.ones((60, 4096, 4096), chunks=(1, 2048, 2048), dtype=np.float32)
    cube = xr.DataArray(data, dims=("time", "y", "x"), attrs={"units": "linear"})
    out = speckle_filter(cube, "quegan")  # lazy: nothing computed
    assert out.data.chunksize[0] == 60 and np.prod(out.data.chunksize) <= 2**24
    assert out.data.chunksize[1] >= 13  # still more than the halo
