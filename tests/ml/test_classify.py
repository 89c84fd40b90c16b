"""classify: accuracy on a synthetic cube with known classes, laziness, nodata, errors, distributed."""

from __future__ import annotations

import logging
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from eoai_testing import assert_model_enters_once

import eoai
import eoai.ml
import eoai.ml.features
from eoai.errors import InputError, ModelError
from eoai.ml.base import ClassifierModel


@pytest.fixture(scope="module")
def trained(synthetic):
    cube, truth, parcels = synthetic
    samples = eoai.ml.extract(cube, parcels, label="class")
    train_groups = parcels.index[parcels["parcel"] % 2 == 0]
    train = samples[samples["group"].isin(train_groups)]
    names = dict(enumerate(truth.attrs["class_names"]))
    model = eoai.ml.fit(train, "rf", n_estimators=60, threads=1, class_names=names)
    return model, samples, train_groups


def test_synthetic_accuracy_on_held_out_parcels(synthetic, trained):
    cube, truth, parcels = synthetic
    model, _, train_groups = trained
    out = cube.eoai.classify(model)
    pred = out["class"].values
    test_mask = ~np.isin(
        _parcel_raster(parcels, cube), np.asarray(train_groups)
    )  # pixels of parcels not used for training
    oa = (pred == truth["class"].values)[test_mask].mean()
    assert test_mask.sum() > 500
    assert oa >= 0.95, f"overall accuracy on held-out parcels {oa:.3f} < 0.95"
    # names and colours travel with the map; no pixel is nodata (every pixel has clear dates)
    assert out["class"].attrs["class_names"] == truth.attrs["class_names"]
    assert out["class"].attrs["flag_values"] == list(range(6))
    assert not (pred == 255).any()
    assert out.odc.crs == cube.odc.crs


def _parcel_raster(parcels, cube):
    import rasterio.features

    gbox = cube.odc.geobox
    return rasterio.features.rasterize(
        zip(parcels.geometry, parcels.index, strict=True), out_shape=gbox.shape,
        transform=gbox.affine, fill=-1, dtype="int32",
    )  # fmt: skip


def test_lazy_and_numpy_agree(synthetic, trained, count_computes):
    cube, _, _ = synthetic
    model, _, _ = trained
    with count_computes() as c:
        lazy = eoai.ml.classify(cube, model, probabilities=True, uncertainty="margin")
    assert c.count == 0
    assert all(hasattr(v.data, "dask") for v in lazy.data_vars.values())
    eager = eoai.ml.classify(cube.compute(), model, probabilities=True, uncertainty="margin")
    assert not hasattr(eager["class"].data, "dask")
    lazy = lazy.compute()
    np.testing.assert_array_equal(lazy["class"].values, eager["class"].values)
    np.testing.assert_allclose(lazy["probability"].values, eager["probability"].values, atol=1e-6)
    # probabilities sum to one, confidence is the max, margin uncertainty in [0, 1]
    np.testing.assert_allclose(lazy["probability"].sum("class_name"), 1.0, atol=1e-5)
    np.testing.assert_allclose(lazy["confidence"], lazy["probability"].max("class_name"))
    p = np.sort(lazy["probability"].values, axis=0)
    np.testing.assert_allclose(lazy["uncertainty"], 1 - (p[-1] - p[-2]), atol=1e-6)
    assert list(lazy["probability"]["class_name"].values) == model.class_names


def test_entropy_bounds_and_values(synthetic, trained):
    cube, _, _ = synthetic
    model, _, _ = trained
    out = eoai.ml.classify(
        cube.isel(x=slice(0, 8), y=slice(0, 8)), model, probabilities=True
    ).compute()
    p = out["probability"].values
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.nansum(np.where(p > 0, p * np.log(p), 0), axis=0) / np.log(p.shape[0])
    np.testing.assert_allclose(out["uncertainty"].values, h, atol=1e-5)


def test_nan_pixels_get_nodata_never_class_zero(synthetic, trained):
    cube, _, _ = synthetic
    model, _, _ = trained
    holed = cube.where((cube.x != cube.x[5]) | (cube.y != cube.y[7]))  # one all-NaN pixel
    out = eoai.ml.classify(holed, model, nodata=200).compute()
    assert out["class"].values[7, 5] == 200
    assert np.isnan(out["confidence"].values[7, 5]) and np.isnan(out["uncertainty"].values[7, 5])
    assert (out["class"].values != 200).sum() == 64 * 64 - 1
    assert out["class"].encoding["_FillValue"] == 200 or out["class"].attrs["nodata"] == 200
    with pytest.raises(InputError, match="not a class code"):
        eoai.ml.classify(cube, model, nodata=3)


def test_model_without_nan_support_gives_nodata_for_any_nan(synthetic):
    cube, _, _ = synthetic
    sub = cube[["red", "nir"]].isel(time=[0, 1])
    feats = eoai.ml.feature_names(sub)

    class Mean(ClassifierModel):
        allow_nan = False

        def predict_proba(self, X):
            assert not np.isnan(X).any()
            p = (X.mean(axis=1) > 0.2).astype("float32")
            return np.stack([1 - p, p], axis=1)

    out = eoai.ml.classify(sub, Mean(feats, ["low", "high"])).compute()
    anynan = sub.to_array().isnull().any(("variable", "time")).values
    assert anynan.any() and (~anynan).any()
    np.testing.assert_array_equal(out["class"].values == 255, anynan)


def test_missing_features_error_lists_them(synthetic, trained):
    cube, _, _ = synthetic
    model, _, _ = trained
    short = cube.isel(time=slice(0, 20)).drop_vars("swir22")
    with pytest.raises(ModelError) as err:
        eoai.ml.classify(short, model)
    msg = str(err.value)
    assert "the cube lacks 70 of the model's 250 features" in msg
    assert "variables missing: swir22; dates missing: 2021-10-28, 2021-11-12, 2021-11-27, " in msg
    with pytest.raises(ModelError, match="not an eoai model"):
        from sklearn.ensemble import RandomForestClassifier

        eoai.ml.classify(cube, RandomForestClassifier())


def test_postprocessing_inside_classify(synthetic, trained):
    cube, _, _ = synthetic
    model, _, _ = trained
    raw = eoai.ml.classify(cube, model)["class"]
    post = eoai.ml.classify(cube, model, majority=3, sieve=4)["class"]
    assert hasattr(post.data, "dask")
    expected = eoai.ml.sieve(eoai.ml.majority_filter(raw.compute(), 3), 4)
    np.testing.assert_array_equal(post.values, expected.values)
    assert post.attrs["eoai:majority_filter"] == 3 and post.attrs["eoai:sieve"] == 4


def test_classify_under_distributed_processes(synthetic, trained):
    distributed = pytest.importorskip("distributed")
    cube, _, _ = synthetic
    model, _, _ = trained
    expected = eoai.ml.classify(cube, model)["class"].values
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        host="127.0.0.1",
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        result = client.compute(eoai.ml.classify(cube, model)["class"]).result()
    np.testing.assert_array_equal(result.values, expected)


def _random_cube(side: int, chunk: int, *, holes: bool = False) -> xr.Dataset:
    """Lazy cube of 2 uniform random bands x 2 dates (dask-generated: no pixel data in the graph).

    ``holes``: NaN (nodata) except one 32 x 32 block in 4, in every chunk.
    """
    import dask.array as da

    rng = da.random.default_rng(0)
    dates, shape, chunks = ("2021-05-01", "2021-06-01"), (2, side, side), (-1, chunk, chunk)
    bands = {b: rng.random(shape, chunks=chunks, dtype="float32") for b in ("a", "b")}
    if holes:
        i = da.arange(side, chunks=chunk) // 32
        keep = (i[:, None] + i[None, :]) % 4 == 0
        bands = {b: da.where(keep, v, np.float32(np.nan)) for b, v in bands.items()}
    return xr.Dataset(
        {b: (("time", "y", "x"), v) for b, v in bands.items()},
        coords={
            "time": pd.to_datetime(list(dates)),
            "y": np.arange(side, dtype="float64")[::-1] * 10,
            "x": np.arange(side, dtype="float64") * 10,
        },
    )


def _random_forest(n_samples, n_classes, features, **params):
    """A forest made big by deep trees: random labels grow about one leaf per sample."""
    rng = np.random.default_rng(0)
    X = rng.random((n_samples, len(features)), dtype="float32")
    samples = pd.DataFrame(X, columns=features).assign(label=rng.integers(0, n_classes, n_samples))
    return eoai.ml.fit(samples, "rf", threads=1, **params)


FEATURES = [f"{b}_{d}" for b in ("a", "b") for d in ("2021-05-01", "2021-06-01")]


def test_the_forest_enters_the_graph_once():
    """4 or 64 chunks: one key holds the forest; chunk tasks do not carry their own copy."""
    model = _random_forest(3000, 4, FEATURES, n_estimators=10)
    few, many = (
        eoai.ml.classify(_random_cube(64, chunk), model, probabilities=True)
        for chunk in (32, 8)
    )  # fmt: skip
    assert few["class"].data.npartitions == 4 and many["class"].data.npartitions == 64
    assert_model_enters_once(few["class"], many["class"], model)
    assert_model_enters_once(few["probability"], many["probability"], model)
    # n_jobs gives a copy of the model with the estimator's n_jobs set: still one key
    assert_model_enters_once(
        eoai.ml.classify(_random_cube(64, 32), model, threads=2)["class"],
        eoai.ml.classify(_random_cube(64, 8), model, threads=2)["class"],
        model,
    )
    # and the key delivers the forest: the lazy map equals the forest applied in memory
    X = eoai.ml.features.feature_array(_random_cube(64, 8), FEATURES).values.reshape(-1, 4)
    expected = model.estimator.predict_proba(X).reshape(64, 64, -1).transpose(2, 0, 1)
    np.testing.assert_allclose(many["probability"].values, expected, atol=1e-6)


@pytest.mark.slow
def test_a_150_mb_forest_on_a_small_local_cluster():
    """A >= 150 MB forest maps 1024 x 1024 px on 2 workers of 1.5 GiB without a large graph.

    Before, each of the 16 chunk tasks carried the forest (a 151 MiB graph, workers paused at
    their memory limit, no result in 300 s). Three quarters of the cube are nodata (skipped by the
    forest) to keep the predictions short; every chunk task still needs the model.
    """
    distributed = pytest.importorskip("distributed")
    model = _random_forest(120_000, 64, FEATURES, n_estimators=2)
    assert len(pickle.dumps(model)) >= 150e6
    cube = _random_cube(1024, 256, holes=True)
    expected = eoai.ml.classify(cube, model, threads=1)["class"].compute(
        scheduler="threads", num_workers=2
    )
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("distributed").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with (
                distributed.LocalCluster(
                    n_workers=2, threads_per_worker=1, memory_limit="1.5GiB", processes=True,
                    dashboard_address=":0", host="127.0.0.1",
                ) as cluster,
                distributed.Client(cluster) as client,
            ):  # fmt: skip
                out = eoai.ml.classify(cube, model, threads=1)["class"]
                result = client.compute(out).result(timeout=600)
    finally:
        logging.getLogger("distributed").removeHandler(handler)
    messages = [str(w.message) for w in caught] + [r.getMessage() for r in records]
    assert not [m for m in messages if "large graph" in m], messages
    assert not [m for m in messages if "Restarting worker" in m or "KilledWorker" in m], messages
    np.testing.assert_array_equal(result.values, expected.values)
    assert (expected.values == 255).mean() == 0.75  # the holes are nodata ...
    assert len(np.unique(expected.values)) > 32  # ... the rest a map of the 64 classes


class SmoothPatchModel(ClassifierModel):
    """A spatial model: class 1 where the 5 x 5 neighbourhood mean of the first feature > 0.3."""

    halo = 2
    allow_nan = True

    def predict_proba_image(self, block):
        from scipy.ndimage import uniform_filter

        v = np.nan_to_num(block[..., 0], nan=0.0)
        p = uniform_filter(v, size=5, mode="reflect") > 0.3
        p = p.astype("float32")
        return np.stack([1 - p, p], axis=-1)


def test_patch_models_tile_without_seams():
    rng = np.random.default_rng(0)
    data = rng.random((1, 40, 36)).astype("float32")
    cube = xr.Dataset(
        {"b": (("time", "y", "x"), data)},
        coords={
            "time": np.array(["2021-01-01"], dtype="datetime64[ns]"),
            "y": np.arange(40.0)[::-1],
            "x": np.arange(36.0),
        },
    )
    model = SmoothPatchModel(["b_2021-01-01"], ["low", "high"])
    whole = eoai.ml.classify(cube, model)["class"].values
    tiled = eoai.ml.classify(cube.chunk({"y": 9, "x": 7}), model)["class"]
    assert hasattr(tiled.data, "dask")
    np.testing.assert_array_equal(tiled.values, whole)
    from scipy.ndimage import uniform_filter

    np.testing.assert_array_equal(
        whole, (uniform_filter(data[0], 5, mode="reflect") > 0.3).astype("uint8")
    )


def test_feature_order_and_subset_of_the_model(synthetic, trained):
    """A model using a reordered subset of the cube's features gets exactly those columns."""
    cube, _, _ = synthetic
    _, samples, _ = trained
    feats = [f for f in samples.attrs["eoai:features"] if f.startswith(("nir_", "red_"))][::-1][:30]
    model = eoai.ml.fit(samples, features=feats, n_estimators=10, threads=1)
    out = eoai.ml.classify(cube, model, probabilities=True).compute()
    X = eoai.ml.features.feature_array(cube, feats).values.reshape(-1, len(feats))
    expected = model.estimator.predict_proba(X).reshape(64, 64, -1)
    np.testing.assert_allclose(
        out["probability"].transpose("y", "x", "class_name").values, expected, atol=1e-6
    )
