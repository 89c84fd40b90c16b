"""U-Net regression (fit_segmentation on a continuous target raster): truth bound, lazy map, files, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

torch = pytest.importorskip("torch")

import eoai.datasets  # noqa: E402
import eoai.ml  # noqa: E402
from eoai.errors import InputError, ModelError  # noqa: E402
from eoai.ml.deep import SegmentationModel, SegmentationRegressor, fit_segmentation  # noqa: E402
from eoai.testing import raise_if_dask_computes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _r2(pred: np.ndarray, ref: np.ndarray) -> float:
    ok = np.isfinite(pred) & np.isfinite(ref)
    return float(1 - np.mean((pred[ok] - ref[ok]) ** 2) / np.var(ref[ok]))


@pytest.fixture(scope="module")
def scene():
    """32 x 48 px, 7 dates, red / nir; height (m) = 30 x the mean NIR - 10 x the mean red + 5,
    known on the left 32 columns only (NaN on the right: never trained on)."""
    cube, _ = eoai.datasets.synthetic_cube(
        (32, 48), freq="60D", cloud_fraction=0, seed=2, bands=["red", "nir"], breaks=False,
        parcel_size=12,
    )  # fmt: skip
    cube = cube.drop_vars("scl")
    height = (30 * cube["nir"].mean("time") - 10 * cube["red"].mean("time") + 5).astype("float32")
    height = height.rename("height").assign_attrs(units="m")
    target = height.where(height.x < height.x[32])
    return cube, height, target


@pytest.fixture(scope="module")
def regressor(scene):
    cube, _, target = scene
    return fit_segmentation(
        cube, target, patch=16, patches_per_epoch=16, epochs=12, batch_size=4, lr=1e-2,
        depth=1, base=8, progress=False,
    )  # fmt: skip


def test_unet_regressor_recovers_the_field_where_it_never_saw_a_target(scene, regressor):
    cube, height, _ = scene
    assert isinstance(regressor, SegmentationRegressor)
    assert regressor.target == "height" and regressor.units == "m"  # name and units of the raster
    assert regressor.metadata["task"] == "regression"
    assert regressor.metadata["n_labelled_pixels"] == 32 * 32
    hist = regressor.metadata["history"]
    assert "val_loss" in hist[0] and hist[-1]["loss"] < hist[0]["loss"]
    summary = regressor.metadata["target_summary"]  # standardised with the labelled pixels only
    known = height.values[:, :32]
    assert summary["mean"] == pytest.approx(float(known.mean()), rel=1e-5)
    out = eoai.ml.predict(cube, regressor)["prediction"].values
    right = out[:, 32:], height.values[:, 32:]
    assert _r2(*right) >= 0.8, _r2(*right)  # de-standardised: metres, not z-scores
    assert abs(float(np.mean(right[0] - right[1]))) < 0.25 * float(np.std(right[1]))


def test_predict_is_lazy_tiled_like_the_whole_image_and_keeps_nodata_and_crs(scene, regressor):
    cube, _, _ = scene
    gappy = cube.copy(deep=True)
    for v in gappy.data_vars:
        gappy[v][:, 3, 5] = np.nan  # a pixel without any observation
    whole = eoai.ml.predict(gappy, regressor)
    with raise_if_dask_computes():
        lazy = eoai.ml.predict(gappy.chunk({"time": -1, "y": 16, "x": 16}), regressor)
    assert lazy["prediction"].chunks == ((16, 16), (16, 16, 16))
    tiled = lazy["prediction"].values
    np.testing.assert_allclose(tiled, whole["prediction"].values, atol=1e-4)
    assert np.isnan(tiled[3, 5]) and np.isfinite(np.delete(tiled.ravel(), 3 * 48 + 5)).all()
    assert lazy.attrs["eoai:method"] == "predict"
    assert json.loads(lazy.attrs["eoai:model"])["units"] == "m"
    assert lazy["prediction"].attrs == {"long_name": "height", "units": "m"}
    assert lazy.odc.crs == cube.odc.crs
    with pytest.raises(ModelError, match="cube.eoai.predict"):
        regressor.predict(np.zeros((2, len(regressor.features)), "float32"))
    with pytest.raises(ModelError, match="regression model"):
        eoai.ml.classify(cube, regressor)


def test_save_load_round_trip(scene, regressor, tmp_path):
    cube, _, _ = scene
    path = eoai.ml.save_model(regressor, tmp_path / "height.pt")
    sidecar = json.loads(path.with_name("height.pt.json").read_text())
    assert sidecar["loader"] == "eoai.ml._deep_regress:load_saved_regressor"
    assert set(torch.load(path, weights_only=True)) == set(regressor.net.state_dict())
    back = eoai.ml.load_model(path)
    assert isinstance(back, SegmentationRegressor)
    assert (back.target, back.units, back.halo) == ("height", "m", regressor.halo)
    assert (back.y_mean, back.y_std) == (regressor.y_mean, regressor.y_std)
    np.testing.assert_array_equal(
        eoai.ml.predict(cube, back)["prediction"].values,
        eoai.ml.predict(cube, regressor)["prediction"].values,
    )


def test_task_follows_infer_task_and_errors(scene):
    cube, height, target = scene
    quick = dict(patch=16, patches_per_epoch=4, epochs=1, depth=1, base=4, progress=False)
    with pytest.raises(InputError, match="continuous .* classifier was asked"):
        fit_segmentation(cube, target, task="classification", **quick)
    words = xr.full_like(height, np.nan, dtype=object).where(height < 0, "tree")
    with pytest.raises(InputError, match="numeric target raster"):
        fit_segmentation(cube, words, task="regression", **quick)
    codes = (height > float(height.median())).astype("float32")  # 0.0 / 1.0: class codes
    assert isinstance(fit_segmentation(cube, codes, **quick), SegmentationModel)
    with pytest.raises(InputError, match="not on the cube's grid: its x"):
        fit_segmentation(cube, target.assign_coords(x=target.x + 5.0), **quick)
    with pytest.raises(InputError, match="no labelled pixel"):
        fit_segmentation(cube, target.where(target > 1e9), **quick)
    with pytest.raises(InputError, match="constant"):
        fit_segmentation(cube, xr.full_like(target, 3.5), **quick)
    with pytest.raises(InputError, match="class_weight= is for classes"):
        fit_segmentation(cube, target, class_weight="balanced", **quick)
    with pytest.raises(ModelError, match="U-TAE has no regression head"):
        fit_segmentation(cube, target, model="utae", **quick)
