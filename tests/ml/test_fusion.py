"""eoai.ml fusion (model="fusion"): a synthetic two-source cube separable only by both sources.

Sentinel-1-like ``s1.vv`` (5 dates) and Sentinel-2-like ``s2.red``, ``s2.nir`` (6 other dates) on one
time axis (NaN where a source has no acquisition). Each pixel has a sign ``a`` (the slope of the
s1 series) and a sign ``b`` (the sign of the s2 red bump); the class is ``a == b`` (XOR): each source
alone carries no information about the class, so a single-source network is at chance and a
network reading both is near perfect.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from eoai_testing import assert_model_enters_once

torch = pytest.importorskip("torch")

import eoai  # noqa: E402
import eoai.ml  # noqa: E402
from eoai.errors import InputError, ModelError  # noqa: E402
from eoai.testing import raise_if_dask_computes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = dict(d_model=48, n_head=4, d_k=4, mlp=(16,), encoder=())  # ~50 kB: enough to tell
TRAIN = dict(epochs=16, batch_size=50, lr=1e-2, progress=False)  # 128 steps: a few seconds
S1_DATES = pd.date_range("2021-01-03", periods=5, freq="12D")
S2_DATES = pd.date_range("2021-01-08", periods=6, freq="10D")


def two_source_cube(size: int = 24, seed: int = 0, s1_dates=S1_DATES) -> tuple[xr.Dataset, Any]:
    """(cube, class map) of the XOR design above; 1 = same signs, 2 = different."""
    from eoai.datasets.synthetic import _grid_coords

    rng = np.random.default_rng(seed)
    a = rng.choice([-1.0, 1.0], (size, size))
    b = rng.choice([-1.0, 1.0], (size, size))
    time = s1_dates.union(S2_DATES)
    is1, is2 = time.isin(s1_dates), time.isin(S2_DATES)
    shape = (len(time), size, size)
    vv, red, nir = (np.full(shape, np.nan, "float32") for _ in range(3))
    vv[is1] = a * np.linspace(-1, 1, is1.sum())[:, None, None] + rng.normal(
        0, 0.4, (is1.sum(), size, size)
    )
    red[is2] = b * np.sin(np.linspace(0, np.pi, 6))[:, None, None] + rng.normal(
        0, 0.4, (6, size, size)
    )
    nir[is2] = rng.normal(0, 1, (6, size, size))
    coords = {"time": time, **_grid_coords("EPSG:32631", 10.0, (500000.0, 4000000.0), (size, size))}
    dims = ("time", "y", "x")
    cube = xr.Dataset({"s1.vv": (dims, vv), "s2.red": (dims, red), "s2.nir": (dims, nir)}, coords)
    return cube, np.where(a == b, 1, 2)


def samples_of(cube: xr.Dataset, classes: np.ndarray) -> pd.DataFrame:
    """Every pixel as a sample, through eoai.ml.extract (points at the pixel centres)."""
    import geopandas as gpd

    yy, xx = np.meshgrid(cube.y.values, cube.x.values, indexing="ij")
    points = gpd.GeoDataFrame(
        {"class": classes.ravel()}, geometry=gpd.points_from_xy(xx.ravel(), yy.ravel()),
        crs=cube.odc.crs,
    )  # fmt: skip
    return eoai.ml.extract(cube, points, label="class", min_samples=1)


@pytest.fixture(scope="module")
def data():
    train_cube, train_cls = two_source_cube(20, seed=0)
    test_cube, test_cls = two_source_cube(12, seed=1)
    return samples_of(train_cube, train_cls), test_cube, test_cls


@pytest.fixture(scope="module")
def fusion(data):
    samples = data[0]
    return eoai.ml.fit(samples, "fusion", encoder_kw=SMALL, fused=(8,), **TRAIN)


def accuracy(model, cube, classes) -> float:
    return float((eoai.ml.classify(cube, model)["class"].values == classes).mean())


def test_fusion_beats_each_source_alone(data, fusion):
    samples, cube, classes = data
    assert fusion.sources == ["s1", "s2"]
    assert fusion.bands == ["s1.vv", "s2.red", "s2.nir"]
    assert accuracy(fusion, cube, classes) >= 0.9
    for src in ("s1", "s2"):
        feats = [f for f in samples.attrs["eoai:features"] if f.startswith(src + ".")]
        # each source alone is independent of the class by construction: a few epochs show it
        alone = eoai.ml.fit(samples, "ltae", features=feats, **SMALL, **{**TRAIN, "epochs": 4})
        assert accuracy(alone, cube, classes) <= 0.62, src


def test_classify_is_lazy_and_the_model_enters_once(data, fusion):
    samples, cube, _ = data
    model = fusion
    few, many = (cube.chunk({"time": -1, "y": c, "x": c}) for c in (12, 3))
    with raise_if_dask_computes():
        out_few = eoai.ml.classify(few, model, probabilities=True)
        out_many = eoai.ml.classify(many, model, probabilities=True)
    assert_model_enters_once(out_few["class"], out_many["class"], model)
    expected = eoai.ml.classify(cube, model, probabilities=True)["probability"].values
    np.testing.assert_allclose(out_many["probability"].values, expected, atol=1e-5)


def test_save_and_load_give_identical_predictions(data, fusion, tmp_path):
    _, cube, _ = data
    path = eoai.ml.save_model(fusion, tmp_path / "fusion.pt")
    back = eoai.ml.load_model(path)
    assert type(back).__name__ == "FusionModel" and back.sources == ["s1", "s2"]
    a = eoai.ml.classify(cube, fusion, probabilities=True)["probability"].values
    b = eoai.ml.classify(cube, back, probabilities=True)["probability"].values
    np.testing.assert_array_equal(a, b)


def test_other_dates_with_ltae_branches(data, fusion):
    """L-TAE branches read acquisition days: a cube with other S1 dates is classified as well."""
    other, classes = two_source_cube(12, seed=2, s1_dates=S1_DATES + pd.Timedelta(days=2))
    assert accuracy(fusion, other, classes) >= 0.75  # chance: 0.5


def test_tempcnn_branches(data):
    """TempCNN branches read their own source's dates (no NaN there) of the common time axis; a
    pixel with NaN on such a branch is nodata in the map (not filled)."""
    samples, cube, _ = data
    model = eoai.ml.fit(
        samples, "fusion", encoder="tempcnn", encoder_kw=dict(hidden=4, dense=8), fused=(8,),
        **{**TRAIN, "epochs": 2},
    )  # fmt: skip
    spec = {b["name"]: b for b in model.net.config["branches"]}
    assert len(spec["s1"]["times"]) == 5 and len(spec["s2"]["times"]) == 6
    cloudy = cube.copy(deep=True)
    cloudy["s2.red"][1, 0, 0] = np.nan  # an S2 date of pixel (0, 0)
    out = eoai.ml.classify(cloudy, model)["class"].values
    assert out[0, 0] == 255 and (out.ravel()[1:] != 255).all()
    with pytest.raises(ModelError, match="gap-fill the cube onto the training dates"):
        model.for_cube(two_source_cube(8, s1_dates=S1_DATES + pd.Timedelta(days=2))[0])


def test_errors(data, fusion):
    samples, cube, _ = data
    plain = samples.rename(columns=lambda c: c.replace("s1.", "").replace("s2.", ""))
    plain.attrs = {}
    with pytest.raises(InputError, match="source-prefixed variables"):
        eoai.ml.fit(plain, "fusion", **TRAIN)
    with pytest.raises(ModelError, match=r"lacks \['s1.vv'\] \(the source\(s\) \['s1'\]"):
        eoai.ml.classify(cube.drop_vars("s1.vv"), fusion)
    with pytest.raises(ModelError, match="s2.nir"):
        eoai.ml.classify(cube.rename({"s2.nir": "s2.swir"}), fusion)
    with pytest.raises(InputError, match="unknown encoder"):
        eoai.ml.fit(samples, "fusion", encoder="gru", **TRAIN)
    with pytest.raises(InputError, match="unknown source"):
        eoai.ml.fit(samples, "fusion", encoder={"s3": "ltae"}, **TRAIN)
    cloudy = samples.copy()
    cloudy.iloc[0, cloudy.columns.get_loc("s2.red_2021-01-08")] = np.nan
    with pytest.raises(InputError, match="gap-fill that source"):
        eoai.ml.fit(cloudy, "fusion", encoder="tempcnn", **TRAIN)


def test_fusion_regression(data):
    """A continuous target from both sources, y = 50 + 10 a + 5 b (known): R^2 of the map."""
    samples, cube, _ = data
    last, first = (f"s1.vv_{d:%Y-%m-%d}" for d in (S1_DATES[-1], S1_DATES[0]))
    a = np.sign(samples[last] - samples[first])  # the slope of s1 (noise 0.4, rise 2)
    b = np.sign(samples["s2.red_2021-01-28"])  # the peak of the s2 bump
    noise = np.random.default_rng(0).normal(0, 1, len(samples))
    reg = samples.assign(y=50 + 10 * a + 5 * b + noise)
    model = eoai.ml.fit(
        reg, "fusion", target="y", units="%", encoder_kw=SMALL, fused=(8,), **{**TRAIN, "epochs": 8}
    )  # fmt: skip
    assert type(model).__name__ == "DeepRegressor" and model.architecture == "fusion"
    out = eoai.ml.predict(cube, model)["prediction"]
    vv = cube["s1.vv"]
    va = np.sign(vv.sel(time=S1_DATES[-1]) - vv.sel(time=S1_DATES[0])).values
    vb = np.sign(cube["s2.red"].sel(time="2021-01-28")).values
    truth = 50 + 10 * va + 5 * vb
    r2 = 1 - float(((out.values - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum())
    assert r2 >= 0.7 and out.attrs["units"] == "%"


def test_each_source_on_its_own_dates(data):
    """Samples holding only each source's own dates (no common time axis) train the same network;
    the model then reads the cube's common axis, where the other dates are NaN."""
    samples, cube, _ = data
    own = [c for c in samples.attrs["eoai:features"] if samples[c].notna().all()]
    assert len(own) == 5 + 2 * 6
    model = eoai.ml.fit(samples, "fusion", features=own, encoder_kw=SMALL, **{**TRAIN, "epochs": 2})
    assert model.dates.size == 11 and model.features == own
    X = eoai.ml.features.feature_array(cube, model.features).values.reshape(-1, len(own))
    mapped = eoai.ml.classify(cube, model, probabilities=True)["probability"].values
    np.testing.assert_allclose(
        mapped.reshape(2, -1).T, model.predict_proba(X.astype("float32")), atol=1e-5
    )
