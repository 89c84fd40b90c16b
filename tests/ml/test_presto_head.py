"""Heads on frozen Presto embeddings: training, classification maps, save / load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import eoai.ml
from eoai.errors import DataSkippedWarning, InputError, ModelError

torch = pytest.importorskip("torch")
head_mod = pytest.importorskip("eoai.ml.presto.head")
fit_presto_head, save_head = head_mod.fit_presto_head, head_mod.save_head


def _table(n=300, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype("float32")
    df = pd.DataFrame(X, columns=[f"presto_{i:03d}" for i in range(dim)])
    df["label"] = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "forest", "grassland")
    df["group"] = np.arange(n) // 5
    df.attrs["eoai:features"] = list(df.columns[:dim])
    return df


def test_classification_head_is_an_eoai_classifier(tmp_path):
    df = _table()
    head = fit_presto_head(df.iloc[:200], epochs=100, batch_size=200, lr=0.05)
    test = df.iloc[200:]
    acc = (head.predict(test[head.features].to_numpy()) == test["label"].to_numpy()).mean()
    assert acc > 0.9  # a linear boundary, learnt by a linear head
    assert head.classes == ["forest", "grassland"] and head.metadata["n_validation"] == 30
    # a class map from an embedding cube, like any eoai classifier
    cube = xr.Dataset(
        {c: (("y", "x"), test[c].to_numpy()[:100].reshape(10, 10)) for c in head.features},
        coords={"y": np.arange(10.0), "x": np.arange(10.0)},
    )
    out = eoai.ml.classify(cube.chunk({"y": 5}), head, uncertainty=None)
    expected = np.asarray(head.codes)[
        np.argmax(head.predict_proba(test[head.features].to_numpy()[:100]), 1)
    ]
    np.testing.assert_array_equal(out["class"].values.ravel(), expected)
    path = save_head(head, tmp_path / "head.pt")
    meta = json.loads((tmp_path / "head.pt.json").read_text())
    assert (
        meta["loader"] == "eoai.ml.presto.head:load_saved"
        and meta["head"]["task"] == "classification"
    )
    again = eoai.ml.load_model(path)
    np.testing.assert_allclose(again.predict_proba(test[head.features].to_numpy()),
                               head.predict_proba(test[head.features].to_numpy()), atol=1e-6)  # fmt: skip


def test_regression_head_and_nan_rows(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(240, 8)).astype("float32")
    y = 40 + 10 * X[:, 0] - 5 * X[:, 2]
    X[:4] = np.nan  # pixels without data
    with pytest.warns(DataSkippedWarning, match="4 of 240 rows have NaN embeddings"):
        lin = fit_presto_head(X, y, task="regression", epochs=150, lr=0.05, batch_size=256)
    with pytest.warns(DataSkippedWarning):
        mlp = fit_presto_head(
            X, y, task="regression", hidden=32, epochs=150, lr=0.01, batch_size=256
        )
    for head in (lin, mlp):
        rmse = np.sqrt(np.mean((head.predict(X[4:]) - y[4:]) ** 2))
        assert rmse < 0.1 * y.std()
    again = eoai.ml.load_model(save_head(lin, tmp_path / "reg.pt"))
    np.testing.assert_allclose(again.predict(X[4:10]), lin.predict(X[4:10]), rtol=1e-6)
    via_save_model = eoai.ml.load_model(eoai.ml.save_model(mlp, tmp_path / "mlp.pt"))
    np.testing.assert_allclose(via_save_model.predict(X[4:10]), mlp.predict(X[4:10]), rtol=1e-6)


def test_feature_subset():
    df = _table(n=60, dim=6)
    head = fit_presto_head(df, features=["presto_000", "presto_001"], epochs=5, batch_size=60)
    assert head.features == ["presto_000", "presto_001"]
    assert head.predict_proba(df[head.features].to_numpy()).shape == (60, 2)
    with pytest.raises(InputError, match="lacks the feature column"):
        fit_presto_head(df, features=["presto_999"])


def test_head_errors():
    with pytest.raises(InputError, match="task must be one of"):
        fit_presto_head(np.zeros((20, 4)), np.zeros(20), task="ranking")
    with pytest.raises(InputError, match="no embedding columns"):
        fit_presto_head(pd.DataFrame({"a": [1.0], "label": [1]}))
    with pytest.raises(InputError, match="regression target must be numeric"):
        fit_presto_head(np.zeros((20, 4)), ["a"] * 20, task="regression")
    # a learning rate so large that every validation loss is NaN or inf: no best state to keep
    # (this was a TypeError from load_state_dict(None))
    X = np.random.default_rng(0).normal(size=(40, 8)).astype("float32")
    with pytest.raises(ModelError, match=r"NaN or infinite in all 3 epochs .*lower lr"):
        fit_presto_head(X, 3 * X[:, 0], task="regression", lr=1e30, epochs=3)


def test_fit_model_presto_is_the_head_for_both_tasks():
    """eoai.ml.fit(samples, "presto") trains the head; the task follows the target."""
    df = _table()
    head = eoai.ml.fit(df.iloc[:200], "presto", epochs=100, batch_size=200, lr=0.05)
    assert isinstance(head, head_mod.PrestoClassifierHead)
    test = df.iloc[200:]
    assert (head.predict(test[head.features].to_numpy()) == test["label"].to_numpy()).mean() > 0.9
    df["cover"] = 2.0 * df["presto_000"] + 0.5
    reg = eoai.ml.fit(df, "presto", target="cover", units="%", epochs=100, batch_size=300, lr=0.05)
    assert isinstance(reg, head_mod.PrestoRegressorHead) and reg.metadata["units"] == "%"
    pred = reg.predict(df[reg.features].to_numpy())
    assert np.sqrt(np.mean((pred - df["cover"].to_numpy()) ** 2)) < 0.3  # std of cover is 2
    with pytest.raises(InputError, match="class_weight"):
        eoai.ml.fit(df, "presto", class_weight="balanced")


def test_regression_head_from_fit_maps_with_predict(tmp_path):
    """A regression head from eoai.ml.fit is an eoai regression model (target, units): predict
    maps it on an embedding cube, and it keeps both through save / load. (Found by mypy: the head
    was no RegressorModel, so predict said it was "not an eoai regression model".)"""
    df = _table(n=100, dim=4)
    df["cover"] = 2.0 * df["presto_000"] + 0.5
    reg = eoai.ml.fit(df, "presto", target="cover", units="%", epochs=20, batch_size=100)
    assert isinstance(reg, eoai.ml.RegressorModel) and (reg.target, reg.units) == ("cover", "%")
    cube = xr.Dataset(
        {c: (("y", "x"), df[c].to_numpy()[:20].reshape(4, 5)) for c in reg.features},
        coords={"y": np.arange(4.0), "x": np.arange(5.0)},
    )
    out = eoai.ml.predict(cube, reg)
    np.testing.assert_allclose(
        out["prediction"].values.ravel(), reg.predict(df[reg.features].to_numpy()[:20]), rtol=1e-5
    )
    assert (out["prediction"].attrs["long_name"], out["prediction"].attrs["units"]) == (
        "cover",
        "%",
    )
    with pytest.raises(ModelError, match="is a regression model"):
        eoai.ml.classify(cube, reg)
    again = eoai.ml.load_model(eoai.ml.save_model(reg, tmp_path / "reg.pt"))
    assert (again.target, again.units) == ("cover", "%")


def test_every_class_is_trained_on_with_few_polygons():
    """Early stopping never holds out a class's last polygon (issue #12: 5 polygons, 5 classes).

    The old split held out 15 % of the polygons at random: with one polygon per class, one class
    was never trained on and never predicted."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (5, 8))
    names = ["cultivated", "forest", "grassland", "shrubland", "artificial"]

    def draw(k):
        X = np.concatenate([c + rng.normal(0, 0.3, (k, 8)) for c in centres]).astype("float32")
        return X, np.repeat(names, k)

    X, y = draw(4)  # one polygon of 4 pixels per class
    df = pd.DataFrame(X, columns=[f"presto_{i:03d}" for i in range(8)])
    df["label"], df["group"] = y, np.repeat(np.arange(5), 4)
    head = fit_presto_head(df, epochs=60, batch_size=20, lr=0.05)
    assert head.metadata["validation_split"] == "rows by class (a single group in every class)"
    Xt, yt = draw(10)
    assert (head.predict(Xt) == yt).all()
    # one polygon of a class among many of another: that polygon stays in training
    df = pd.DataFrame(np.concatenate([X[:4], X[4:8].repeat(5, 0)]), columns=df.columns[:8])
    df["label"] = ["cultivated"] * 4 + ["forest"] * 20
    df["group"] = np.r_[[0] * 4, np.arange(1, 21) // 2 + 1]
    for seed in range(2):
        head = fit_presto_head(df, epochs=30, batch_size=24, lr=0.05, seed=seed)
        assert head.metadata["validation_split"] == "groups by class"
        va = head.metadata["n_validation"]
        assert 2 <= va <= 4  # about 15 % of forest's 10 polygons of 2 pixels, none of cultivated
        assert (head.predict(Xt[:20]) == yt[:20]).all()
