"""Regression heads of TempCNN and L-TAE: eoai.ml.fit(samples, "tempcnn" | "ltae", target=...).

A synthetic cube of two bands on 6 dates whose continuous field is known: each pixel has an
amplitude ``u`` and a slope ``v`` (uniform), ``red = u * bump + noise``, ``nir = v * ramp + noise``
and the target is ``h = 40 u + 20 v + 100``. Trained on one cube, mapped on another with
``cube.eoai.predict(model)``: R^2 against the known field.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

torch = pytest.importorskip("torch")

import eoai  # noqa: E402
import eoai.ml  # noqa: E402
from eoai.errors import InputError, ModelError  # noqa: E402
from eoai.ml.features import feature_array, feature_names  # noqa: E402
from eoai.testing import raise_if_dask_computes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATES = pd.date_range("2021-03-01", periods=6, freq="20D")
TRAIN = dict(epochs=15, batch_size=50, lr=1e-2, progress=False)
NETS = {
    "tempcnn": dict(hidden=8, dense=16),
    "ltae": dict(d_model=16, n_head=4, d_k=4, mlp=(16,), encoder=()),
}


def field_cube(size: int, seed: int, dates=DATES) -> tuple[xr.Dataset, np.ndarray]:
    """(cube, known target field h)."""
    rng = np.random.default_rng(seed)
    u, v = rng.uniform(0, 1, (2, size, size))
    t = len(dates)
    red = u * np.sin(np.linspace(0, np.pi, t))[:, None, None] + rng.normal(0, 0.05, (t, size, size))
    nir = v * np.linspace(0, 1, t)[:, None, None] + rng.normal(0, 0.05, (t, size, size))
    coords = {"time": dates, "y": np.arange(size, 0, -1.0), "x": np.arange(size, dtype=float)}
    dims = ("time", "y", "x")
    cube = xr.Dataset(
        {"red": (dims, red.astype("float32")), "nir": (dims, nir.astype("float32"))}, coords
    )
    return cube, 40 * u + 20 * v + 100


def table(cube: xr.Dataset, h: np.ndarray) -> pd.DataFrame:
    names = feature_names(cube)
    X = feature_array(cube, names).values.reshape(-1, len(names))
    df = pd.DataFrame(X, columns=names).assign(h=h.ravel(), group=np.arange(h.size) // 4)
    df.attrs["eoai:features"] = names
    return df


def r2(pred: np.ndarray, truth: np.ndarray) -> float:
    return 1 - float(((pred - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum())


@pytest.fixture(scope="module")
def data():
    train = table(*field_cube(20, seed=0))
    cube, h = field_cube(12, seed=1)
    return train, cube, h


@pytest.fixture(scope="module")
def models(data):
    return {
        arch: eoai.ml.fit(data[0], arch, target="h", units="t/ha", **kw, **TRAIN)
        for arch, kw in NETS.items()
    }


@pytest.fixture(params=list(NETS))
def model(request, models):
    return models[request.param]


def test_the_map_reaches_the_known_field(data, model):
    _, cube, h = data
    assert type(model).__name__ == "DeepRegressor" and model.target == "h"
    out = cube.eoai.predict(model)["prediction"]
    assert out.attrs["units"] == "t/ha" and out.dtype == np.float32
    assert r2(out.values, h) >= 0.85, model.architecture
    assert abs(float(out.mean()) - h.mean()) < 3  # de-standardised: in the target's units


def test_predict_is_lazy_and_equals_in_memory(data, model):
    _, cube, _ = data
    lazy_cube = cube.chunk({"time": -1, "y": 4, "x": 4})
    with raise_if_dask_computes():
        lazy = eoai.ml.predict(lazy_cube, model)["prediction"]
    assert lazy.data.npartitions == 9
    np.testing.assert_allclose(
        lazy.values, eoai.ml.predict(cube, model)["prediction"].values, atol=1e-4
    )


def test_save_and_load_give_identical_predictions(data, model, tmp_path):
    _, cube, _ = data
    back = eoai.ml.load_model(eoai.ml.save_model(model, tmp_path / "reg.pt"))
    assert type(back).__name__ == "DeepRegressor" and back.units == "t/ha"
    assert back.architecture == model.architecture and back.features == model.features
    np.testing.assert_array_equal(
        eoai.ml.predict(cube, back)["prediction"].values,
        eoai.ml.predict(cube, model)["prediction"].values,
    )


def test_ltae_regression_on_other_dates(models):
    """L-TAE reads acquisition days: predict maps a cube observed 5 days later."""
    m = models["ltae"]
    cube, h = field_cube(12, seed=2, dates=DATES + pd.Timedelta(days=5))
    assert r2(eoai.ml.predict(cube, m)["prediction"].values, h) >= 0.8


def test_cross_validate_a_deep_regression(data):
    train, _, _ = data
    part = train.iloc[:200]
    cv = eoai.ml.cross_validate(
        part, "tempcnn", k=2, target="h", **NETS["tempcnn"], **{**TRAIN, "epochs": 3}
    )  # fmt: skip
    assert cv.extra["folds"].shape[0] == 2 and np.isfinite(cv.rmse) and cv.rmse < part["h"].std()


def test_errors(data, model):
    train, cube, _ = data
    with pytest.raises(ModelError, match="regression model"):
        eoai.ml.classify(cube, model)
    with pytest.raises(InputError, match="class_weight"):
        eoai.ml.fit(train, "ltae", target="h", class_weight="balanced", **TRAIN)
    with pytest.raises(InputError, match="label_smoothing"):
        eoai.ml.fit(train, "ltae", target="h", label_smoothing=0.1, **TRAIN)
    with pytest.raises(InputError, match="a U-Net learns from patches of a cube"):
        eoai.ml.fit(train, "unet", target="h")
    with pytest.raises(ModelError, match="lacks the band"):
        eoai.ml.predict(cube.drop_vars("nir"), model)
