"""eoai.ml.deep: TempCNN and L-TAE on synthetic cubes with known classes, other dates, seeds, errors.

Training is kept short (small widths, few epochs, one torch thread) so every model trains in seconds.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from eoai_testing import assert_model_enters_once

torch = pytest.importorskip("torch")

import eoai  # noqa: E402
import eoai.datasets  # noqa: E402
import eoai.ml  # noqa: E402
from eoai.errors import EoaiWarning, InputError, ModelError  # noqa: E402
from eoai.ml.deep import DeepModel, fit_network  # noqa: E402
from eoai.timeseries.gapfill import gapfill  # noqa: E402

TEMPCNN = dict(hidden=16, dense=32, epochs=15, batch_size=128, lr=3e-3)
LTAE = dict(d_model=32, n_head=4, d_k=8, mlp=(32,), epochs=30, batch_size=128, lr=3e-3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def split(synthetic):
    cube, truth, parcels = synthetic
    return parcels[parcels["parcel"] % 2 == 0], parcels[parcels["parcel"] % 2 == 1]


@pytest.fixture(scope="module")
def tempcnn(synthetic, split):
    cube, truth, _ = synthetic
    filled = gapfill(cube, "linear")  # TempCNN reads complete series on a fixed grid
    samples = eoai.ml.extract(filled, split[0], label="class")
    names = dict(enumerate(truth.attrs["class_names"]))
    model = fit_network(samples, "tempcnn", class_names=names, progress=False, **TEMPCNN)
    return model, filled, samples


@pytest.fixture(scope="module")
def ltae(synthetic, split):
    cube, truth, _ = synthetic
    samples = eoai.ml.extract(cube, split[0], label="class")  # raw: NaN where cloudy
    names = dict(enumerate(truth.attrs["class_names"]))
    model = fit_network(
        samples, "ltae", class_names=names, progress=False, date_dropout=0.2, **LTAE
    )
    return model, samples


def test_tempcnn_accuracy_on_held_out_parcels(synthetic, split, tempcnn, count_computes):
    _, truth, _ = synthetic
    model, filled, _ = tempcnn
    with count_computes() as c:
        out = eoai.ml.classify(filled, model, probabilities=True)
    assert c.count == 0 and hasattr(out["class"].data, "dask")
    acc = eoai.ml.assess(out["class"], split[1], label="class")
    assert acc.overall_accuracy >= 0.95, acc.confusion
    assert acc.confusion.to_numpy().sum() > 1000
    assert out["class"].attrs["class_names"] == truth.attrs["class_names"]
    assert out.odc.crs == filled.odc.crs
    p = out["probability"].values
    np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-5)
    assert model.metadata["method"] == "eoai.ml.deep.fit_network(tempcnn)"
    assert model.bands == ["blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir",
                           "nir08", "swir16", "swir22"]  # fmt: skip
    assert list(model.dates) == list(pd.DatetimeIndex(filled.time.values))


def test_ltae_on_raw_cloudy_series(synthetic, split, ltae):
    cube, _, _ = synthetic
    model, samples = ltae
    assert samples.filter(like="red_").isna().to_numpy().mean() > 0.1  # clouds are really there
    assert model.allow_nan
    out = eoai.ml.classify(cube, model)
    acc = eoai.ml.assess(out["class"], split[1], label="class")
    assert acc.overall_accuracy >= 0.95, acc.confusion
    assert not (out["class"].values == 255).any()  # every pixel has some clear date


def test_ltae_applies_to_other_dates(synthetic, split, ltae):
    model, _ = ltae
    # the same scene (same seed) acquired 7 days later and every 10 days instead of 15
    other, truth2 = eoai.datasets.synthetic_cube(
        shape=(64, 64), start="2021-01-08", freq="10D", breaks=False, seed=3, parcel_size=60,
        chunks={"time": -1, "y": 32, "x": 32},
    )  # fmt: skip
    other = other.drop_vars("scl")
    assert not set(other.time.values) & set(model.dates.values)  # none of the training dates
    adapted = model.for_cube(other)
    assert adapted.days[0] == pytest.approx(7.0) and adapted.days[1] == pytest.approx(17.0)
    assert len(adapted.dates) == other.sizes["time"] and adapted.net is model.net
    np.testing.assert_array_equal(truth2["class"].values, synthetic[1]["class"].values)
    classes = eoai.ml.classify(other, adapted)["class"]
    acc = eoai.ml.assess(classes, split[1], label="class")
    assert acc.overall_accuracy >= 0.9, acc.confusion
    # classify adapts the model to the cube's dates by itself
    np.testing.assert_array_equal(eoai.ml.classify(other, model)["class"].values, classes.values)


def test_tempcnn_needs_its_date_grid(synthetic, split, tempcnn):
    model, _, _ = tempcnn
    other, _ = eoai.datasets.synthetic_cube(
        shape=(64, 64), start="2021-01-08", freq="10D", breaks=False, seed=3, parcel_size=60,
        chunks={"time": -1, "y": 32, "x": 32},
    )  # fmt: skip
    other = other.drop_vars("scl")
    with pytest.raises(ModelError, match=r"gapfill\('linear', dates=model.dates\)"):
        model.for_cube(other)
    regridded = gapfill(other, "linear", dates=model.dates)
    assert model.for_cube(regridded) is model
    acc = eoai.ml.assess(eoai.ml.classify(regridded, model)["class"], split[1], label="class")
    assert acc.overall_accuracy >= 0.95


def test_numpy_and_dask_agree(synthetic, ltae):
    cube, _, _ = synthetic
    model, _ = ltae
    sub = cube.isel(x=slice(0, 40), y=slice(0, 40))
    lazy = eoai.ml.classify(sub, model, probabilities=True).compute()
    eager = eoai.ml.classify(sub.compute(), model, probabilities=True)
    np.testing.assert_array_equal(lazy["class"].values, eager["class"].values)
    np.testing.assert_allclose(lazy["probability"].values, eager["probability"].values, atol=1e-6)


def test_fixed_seed_gives_the_same_model(tempcnn):
    _, _, samples = tempcnn
    small = samples.iloc[::4]
    kw = dict(hidden=8, dense=8, epochs=3, progress=False)
    a = fit_network(small, "tempcnn", seed=7, **kw).net.state_dict()
    b = fit_network(small, "tempcnn", seed=7, **kw).net.state_dict()
    c = fit_network(small, "tempcnn", seed=8, **kw).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    state = torch.random.get_rng_state()
    fit_network(small, "tempcnn", seed=7, **kw)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is untouched


def test_validation_split_is_grouped_and_stops_early(tempcnn):
    from eoai.ml._deep_train import grouped_split

    _, _, samples = tempcnn
    y, g = samples["label"].to_numpy(), samples["group"].to_numpy()
    tr, va = grouped_split(y, g, 0.25, seed=0)
    assert not set(g[tr]) & set(g[va])
    assert len(tr) + len(va) == len(y)
    for cls in np.unique(y):  # every class keeps training groups and most get validation ones
        assert (y[tr] == cls).any()
    assert 0.15 < len(va) / len(y) < 0.35
    # a linear model with a learning rate of 1e-12 never lowers the validation loss (no batch norm
    # statistics move either): training stops `patience` epochs after the first one
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(250, 6))
    m = fit_network(samples.iloc[::4], net, epochs=20, lr=1e-12, patience=2, val_fraction=0.2,
                    progress=False)  # fmt: skip
    hist = m.metadata["history"]
    assert len(hist) == 3 and hist[0]["best"] and "val_accuracy" in hist[0]


def test_fit_dispatches_deep_models(tempcnn):
    _, _, samples = tempcnn
    m = eoai.ml.fit(samples.iloc[::4], "ltae", epochs=2, d_model=16, n_head=4, mlp=(16,),
                    progress=False, seed=3)  # fmt: skip
    assert isinstance(m, DeepModel) and m.architecture == "ltae"
    assert m.metadata["parameters"]["seed"] == 3


def test_custom_module(tempcnn):
    _, _, samples = tempcnn
    small = samples.iloc[::4]

    class Mean(torch.nn.Module):  # (batch, time, channel) -> logits, ignores the days
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(10, 6)

        def forward(self, x):
            return self.lin(x.mean(dim=1))

    net = Mean()
    m = fit_network(small, net, epochs=2, progress=False)
    assert m.architecture == "custom" and not m.uses_days
    assert m.net is not net  # the module given is copied, not trained in place
    assert m.predict_proba(small[m.features].to_numpy("float32")).shape == (len(small), 6)


def test_class_weights():
    from eoai.ml._deep_train import class_weights

    y = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(class_weights(y, 2, "balanced", [1, 2]), [4 / 6, 4 / 2])
    np.testing.assert_allclose(class_weights(y, 2, {2: 3.0}, [1, 2]), [1.0, 3.0])
    with pytest.raises(InputError, match="unknown classes"):
        class_weights(y, 2, {5: 1.0}, [1, 2])


def test_errors(tempcnn, ltae):
    _, _, samples = tempcnn
    _, raw = ltae
    with pytest.raises(InputError, match=r"have NaN features.*gapfill\('linear'\)"):
        fit_network(raw, "tempcnn", epochs=1, progress=False)
    with pytest.raises(ModelError, match="fit_segmentation"):
        fit_network(samples, "unet", epochs=1, progress=False)
    with pytest.raises(ModelError, match="these have no date: dem"):
        fit_network(samples.assign(dem=1.0), "tempcnn", epochs=1, progress=False,
                    features=[*samples.attrs["eoai:features"], "dem"])  # fmt: skip
    with pytest.raises(InputError, match="unknown architecture 'resnet'"):
        fit_network(samples, "resnet", epochs=1, progress=False)
    with pytest.raises(InputError, match="epochs must be >= 1"):
        fit_network(samples, "tempcnn", epochs=0)
    with pytest.raises(InputError, match="val_fraction"):
        fit_network(samples, "tempcnn", val_fraction=1.5)
    with pytest.warns(EoaiWarning, match="CUDA only"):
        fit_network(samples.iloc[::8], "tempcnn", epochs=1, amp=True, device="cpu",
                    hidden=4, dense=4, progress=False)  # fmt: skip


def test_model_pickles_for_dask_workers(tempcnn):
    model, _, samples = tempcnn
    X = samples[model.features].to_numpy("float32")[:50]
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("arch", ["tempcnn", "ltae"])
def test_the_network_enters_the_graph_once(arch):
    """4 or 64 chunks: one key holds the network, chunk tasks do not carry their own copy."""
    dates = pd.date_range("2021-03-01", periods=4, freq="30D")
    rng = np.random.default_rng(0)
    feats = [f"{b}_{d:%Y-%m-%d}" for b in ("red", "nir") for d in dates]
    X = rng.random((200, len(feats)), dtype="float32")
    samples = pd.DataFrame(X, columns=feats).assign(label=np.repeat([1, 2], 100))
    model = eoai.ml.fit(samples, arch, epochs=1, progress=False)  # default (full-size) network

    def cube(chunk):
        data = rng.random((4, 32, 32), dtype="float32")
        coords = {"time": dates, "y": np.arange(32.0)[::-1], "x": np.arange(32.0)}
        ds = xr.Dataset({b: (("time", "y", "x"), data) for b in ("red", "nir")}, coords=coords)
        return ds.chunk({"time": -1, "y": chunk, "x": chunk})

    few, many = (eoai.ml.classify(cube(c), model, probabilities=True) for c in (16, 4))
    assert many["class"].data.npartitions == 64
    assert_model_enters_once(few["class"], many["class"], model)
    # the key delivers the network: the lazy map equals the model applied in memory
    c = cube(4)
    flat = eoai.ml.features.feature_array(c, model.features).values.reshape(-1, len(feats))
    expected = model.predict_proba(flat).reshape(32, 32, 2).transpose(2, 0, 1)
    lazy = eoai.ml.classify(c, model, probabilities=True)["probability"].values
    np.testing.assert_allclose(lazy, expected, atol=1e-5)
