"""Fine-tuning Presto from a cube's samples: fit / cross_validate / classify / predict / save."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import eoai
import eoai.ml
from eoai.errors import CRSError, DataSkippedWarning, InputError, ModelError
from eoai.testing import raise_if_dask_computes

torch = pytest.importorskip("torch")
gpd = pytest.importorskip("geopandas")
presto = pytest.importorskip("eoai.ml.presto")
from eoai.ml.presto.finetuned import series_of_rows  # noqa: E402

PRESTO_CARD = presto.PRESTO_CARD
pytestmark = pytest.mark.usefixtures("one_torch_thread")
DATES = pd.to_datetime(["2021-05-03", "2021-05-20", "2021-06-10", "2021-07-15"])
NY = NX = 8
YS = 5.1e6 - 10 * np.arange(NY) - 5
XS = 4.6e5 + 10 * np.arange(NX) + 5


@pytest.fixture(scope="module")
def encoder(shared_data):
    path = shared_data / "presto" / "data" / "default_model.pt"
    return presto.load_encoder(path, card=PRESTO_CARD)


@pytest.fixture(scope="module")
def cube():
    """8 x 8 px, 4 dates (3 months), 4 x 4 chunks: bare soil left, vegetation right (known truth);
    one cloudy date (NaN) at one pixel; a continuous 'cover' growing from left to right."""
    import odc.geo.xr  # noqa: F401

    rng = np.random.default_rng(0)
    cover = np.broadcast_to(np.linspace(0, 1, NX), (NY, NX))
    data = {}
    for b in PRESTO_CARD.required:
        green = b.startswith(("nir", "rededge"))
        base = 0.05 + cover * (0.3 if green else 0.03)
        v = base[None] + rng.normal(0, 0.005, (len(DATES), NY, NX))
        data[b] = (("time", "y", "x"), v.astype("float32"))
    data["red"][1][1, 0, 0] = np.nan
    ds = xr.Dataset(data, coords={"time": DATES, "y": YS, "x": XS}).odc.assign_crs("EPSG:32633")
    return ds.chunk({"time": -1, "y": 4, "x": 4})


@pytest.fixture(scope="module")
def samples(cube):
    from shapely.geometry import box

    x0, y0 = XS[0] - 5, YS[0] + 5
    geoms = [box(x0 + 40 * j, y0 - 20 * (i + 1), x0 + 40 * (j + 1), y0 - 20 * i)
             for j in range(2) for i in range(4)]  # fmt: skip
    polys = gpd.GeoDataFrame({"label": ["bare"] * 4 + ["crop"] * 4}, geometry=geoms, crs=32633)
    table = eoai.ml.extract(cube, polys, label="label")
    table["cover"] = np.interp(table["x"], XS, np.linspace(0, 100, NX))
    return table


@pytest.fixture(scope="module")
def model(samples, encoder):
    return eoai.ml.fit(samples, "presto", finetune=True, encoder=encoder, epochs=2, batch_size=16)


def test_rows_get_embeds_inputs(samples, cube, encoder):
    """The table's rows become exactly what embed makes of the cube's pixels."""
    cols = [c for c in samples.attrs["eoai:features"]]
    crs = samples.attrs["eoai:cube"]["crs"]
    x, mask, dw, latlon, month, valid = series_of_rows(
        samples[cols].to_numpy("float32"), samples[["x", "y"]].to_numpy(), cols, PRESTO_CARD,
        crs, "auto", "auto",
    )  # fmt: skip
    assert x.shape == (len(samples), 3, 17) and valid.all()
    assert month[0].tolist() == [4, 5, 6]  # May, June, July
    # the cloudy date of pixel (0, 0) is left out of May's median, not filled
    i00 = int(np.flatnonzero((samples.x == XS[0]) & (samples.y == YS[0]))[0])
    red = cube["red"].values[:, 0, 0]
    k = [b.name for b in PRESTO_CARD.bands].index("red")
    assert x[i00, 0, k] == pytest.approx(red[0] * 1e4 / 1e4, rel=1e-6)  # only 05-03 is valid
    assert mask[:, :, [b.group == "S1" for b in PRESTO_CARD.bands]].all()  # no S1: masked
    emb_rows = encoder.embed_arrays(x, mask, dw, latlon, month)
    emb_cube = presto.embed(cube, encoder).values
    iy = np.searchsorted(-YS, -samples.y.values)
    ix = np.searchsorted(XS, samples.x.values)
    assert np.abs(emb_cube[:, iy, ix].T - emb_rows).max() < 1e-5


def test_finetuned_classifier_separates_known_classes(model, samples, encoder):
    assert isinstance(model, presto.finetuned.PrestoFinetunedClassifier)
    assert model.features == [*samples.attrs["eoai:features"], "x", "y"]
    assert model.classes == ["bare", "crop"]
    assert model.metadata["finetune"]["validation_split"] == "groups by class"  # whole polygons
    assert (model.predict(samples) == samples["label"]).mean() == 1.0
    # the encoder was trained (a copy), the given one is unchanged
    assert model.encoder.weights_hash() != encoder.weights_hash()
    assert encoder.source.endswith("default_model.pt")
    # an array in features order, and the band columns alone (lat/lon of the samples' centre)
    p = model.predict_proba(samples)
    assert np.allclose(model.predict_proba(samples[model.features].to_numpy()), p, atol=1e-6)
    bands = model.predict_proba(samples[model.features[:-2]].to_numpy())
    assert np.abs(bands - p).max() < 0.05


def test_classify_equals_rows_lazily_each_model_once(model, samples, cube):
    with raise_if_dask_computes():
        out = cube.eoai.classify(model, probabilities=True)
    graph = dict(out["probability"].data.__dask_graph__())
    assert sum(str(k).startswith("presto-") for k in graph) == 1  # the fine-tuned encoder
    assert sum(str(k).startswith("prestoclassifierhead-") for k in graph) == 1
    proba = out["probability"].values
    iy = np.searchsorted(-YS, -samples.y.values)
    ix = np.searchsorted(XS, samples.x.values)
    assert np.abs(proba[:, iy, ix].T - model.predict_proba(samples)).max() < 1e-5
    assert out["class"].attrs["class_names"] == ["bare", "crop"]
    # extra dates in the cube are not read: the model's dates only
    more = xr.concat([cube, cube.isel(time=[0]).assign_coords(time=[np.datetime64("2021-08-01")])],
                     "time")  # fmt: skip
    assert np.array_equal(more.eoai.classify(model)["class"].values, out["class"].values)
    with pytest.raises(ModelError, match="swir22"):
        cube.drop_vars("swir22").eoai.classify(model)


def test_regression_predict_cross_validate_and_round_trip(samples, cube, encoder, tmp_path):
    reg = eoai.ml.fit(
        samples, "presto", finetune=True, encoder=encoder, target="cover", units="%",
        epochs=2, batch_size=16, lr=1e-3, head_lr=1e-2,
    )  # fmt: skip
    assert isinstance(reg, presto.finetuned.PrestoFinetunedRegressor)
    rows = reg.predict(samples)
    assert np.corrcoef(rows, samples["cover"])[0, 1] > 0.9  # cover grows left to right
    with raise_if_dask_computes():
        out = cube.eoai.predict(reg)
    assert out["prediction"].attrs["units"] == "%"
    iy = np.searchsorted(-YS, -samples.y.values)
    ix = np.searchsorted(XS, samples.x.values)
    assert np.abs(out["prediction"].values[iy, ix] - rows).max() < 1e-3
    path = eoai.ml.save_model(reg, tmp_path / "reg.pt")
    back = eoai.ml.load_model(path)
    assert back.target == "cover" and back.features == reg.features
    assert np.allclose(back.predict(samples), rows, atol=1e-5)
    cv = eoai.ml.cross_validate(
        samples, "presto", finetune=True, encoder=encoder, target="cover", k=2, epochs=1,
        batch_size=16,
    )  # fmt: skip
    assert np.isfinite(cv.extra["predictions"]["predicted"]).all()


def test_classifier_round_trip_weights_only(model, samples, tmp_path):
    path = eoai.ml.save_model(model, tmp_path / "ft.pt")
    state = torch.load(path, weights_only=True)
    assert any(k.startswith("encoder.") for k in state) and any(
        k.startswith("head.") for k in state
    )
    back = eoai.ml.load_model(path)
    assert back.encoder.card == PRESTO_CARD and back.class_names == model.class_names
    assert back.encoder.weights_hash() == model.encoder.weights_hash()
    assert np.allclose(back.predict_proba(samples), model.predict_proba(samples), atol=1e-6)


def test_cross_validate_classes(samples, encoder):
    cv = eoai.ml.cross_validate(samples, "presto", finetune=True, encoder=encoder, k=2,
                                epochs=1, batch_size=16)  # fmt: skip
    assert np.asarray(cv.confusion).sum() == len(samples)


def test_errors_say_what_to_change(samples, encoder):
    with pytest.raises(ModelError, match="encoder=eoai.ml.presto.load_encoder"):
        eoai.ml.fit(samples, "presto", finetune=True)
    no_nir = samples.drop(columns=[c for c in samples.columns if c.startswith("nir_")])
    no_nir.attrs["eoai:features"] = [c for c in samples.attrs["eoai:features"] if c in no_nir]
    with pytest.raises(ModelError, match="lack 1 band.*nir"):
        eoai.ml.fit(no_nir, "presto", finetune=True, encoder=encoder)
    no_crs = samples.copy()
    no_crs.attrs = {k: v for k, v in samples.attrs.items() if k != "eoai:cube"}
    with pytest.raises(CRSError, match="crs="):
        eoai.ml.fit(no_crs, "presto", finetune=True, encoder=encoder)
    with pytest.raises(InputError, match="'x' column"):
        eoai.ml.fit(samples.drop(columns=["x"]), "presto", finetune=True, encoder=encoder)
    with pytest.raises(InputError, match="does not take hidden"):
        eoai.ml.fit(samples, "presto", finetune=True, encoder=encoder, hidden=8)
    dn = samples.copy()
    dn[dn.attrs["eoai:features"]] *= 1e4
    with pytest.raises(ModelError, match="scaling='dn'"):
        eoai.ml.fit(dn, "presto", finetune=True, encoder=encoder)
    empty = samples.copy()
    empty.loc[:3, empty.attrs["eoai:features"]] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = eoai.ml.fit(empty, "presto", finetune=True, encoder=encoder, epochs=1, scaling="auto")
    assert any(issubclass(w.category, DataSkippedWarning) and "4 of" in str(w.message)
               for w in caught)  # fmt: skip
    assert np.isnan(m.predict_proba(empty.iloc[:4])).all()


def test_finetune_presto_groups_are_checked(encoder):
    x = np.zeros((12, 2, 17), "float32")
    with pytest.raises(InputError, match="one id per series"):
        presto.finetune_presto(encoder, x, [0, 1] * 6, latlon=np.zeros((12, 2)),
                               month=np.zeros((12, 2), int), groups=[0, 1], task="classification")  # fmt: skip
