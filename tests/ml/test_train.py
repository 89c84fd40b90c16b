"""fit / cross_validate / save_model / load_model."""

from __future__ import annotations

import json

import numpy as np
import pytest

import eoai.ml
from eoai.errors import InputError, ModelError, UntrustedFileError


@pytest.fixture(scope="module")
def samples(synthetic):
    cube, truth, parcels = synthetic
    df = eoai.ml.extract(cube, parcels, label="class")
    return df


def test_fit_metadata_and_seed(samples, synthetic):
    _, truth, _ = synthetic
    names = dict(enumerate(truth.attrs["class_names"]))
    a = eoai.ml.fit(
        samples,
        n_estimators=20,
        threads=1,
        seed=4,
        class_names=names,
        class_weight="balanced",
    )
    b = eoai.ml.fit(
        samples,
        n_estimators=20,
        threads=1,
        seed=4,
        class_names=names,
        class_weight="balanced",
    )
    X = samples[a.features].to_numpy("float32")[:200]
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.classes == [0, 1, 2, 3, 4, 5] and a.codes == [0, 1, 2, 3, 4, 5]
    assert a.class_names == truth.attrs["class_names"]
    assert a.colours[a.class_names.index("forest")] == "#1a7f37"
    assert len(a.features) == 250 and a.features[0] == "blue_2021-01-01"
    assert a.metadata["n_samples"] == len(samples) == 64 * 64
    assert (
        a.metadata["training_cube"]["crs"].startswith("PROJCRS")
        or "32631" in a.metadata["training_cube"]["crs"]
    )
    assert a.estimator.class_weight == "balanced" and a.allow_nan
    json.dumps(a.describe())  # metadata is JSON-serialisable


def test_fit_errors(samples):
    from sklearn.svm import SVC

    with pytest.raises(InputError, match="SVC does not accept NaN"):
        eoai.ml.fit(samples, SVC(probability=True))
    with pytest.raises(InputError, match="unknown model 'boost'"):
        eoai.ml.fit(samples, "boost")
    with pytest.raises(InputError, match="has no parameter"):
        eoai.ml.fit(samples, n_trees=3)
    with pytest.raises(InputError, match="at least 2 classes"):
        eoai.ml.fit(samples[samples.label == 1])


def test_cross_validate_groups_never_shared(samples):
    cv = eoai.ml.cross_validate(samples, k=4, n_estimators=30, threads=1)
    pred = cv.extra["predictions"]
    assert (pred["fold"] >= 0).all()
    # every polygon's pixels sit in exactly one test fold, hence never in training and test at once
    assert (pred.groupby("group")["fold"].nunique() == 1).all()
    for fold in range(4):
        test_groups = set(pred.loc[pred.fold == fold, "group"])
        train_groups = set(pred.loc[pred.fold != fold, "group"])
        assert not test_groups & train_groups
    assert cv.confusion.to_numpy().sum() == len(samples)
    assert cv.overall_accuracy >= 0.95
    assert len(cv.extra["folds"]) == 4
    with pytest.raises(InputError, match="cannot make 50 folds"):
        eoai.ml.cross_validate(samples, k=50)


def test_save_load_skops_roundtrip(samples, tmp_path):
    model = eoai.ml.fit(samples, n_estimators=10, threads=1, class_names=list("abcdef"))
    path = eoai.ml.save_model(model, tmp_path / "rf.skops")
    meta = json.loads((tmp_path / "rf.skops.json").read_text())
    assert meta["features"] == model.features and meta["class_names"] == list("abcdef")
    assert meta["format"] == "skops"
    loaded = eoai.ml.load_model(path)
    X = samples[model.features].to_numpy("float32")[:100]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.colours == model.colours and loaded.metadata == json.loads(
        json.dumps(model.metadata)
    )


def test_pickle_needs_trust_and_tampered_sidecar(samples, tmp_path):
    model = eoai.ml.fit(samples, n_estimators=5, threads=1)
    path = eoai.ml.save_model(model, tmp_path / "rf.joblib")
    with pytest.raises(UntrustedFileError, match="is a pickle"):
        eoai.ml.load_model(path)
    assert eoai.ml.load_model(path, trusted=True).classes == model.classes
    side = tmp_path / "rf.joblib.json"
    meta = json.loads(side.read_text())
    meta["loader"] = "os:system"
    side.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="names no valid eoai loader"):
        eoai.ml.load_model(path, trusted=True)
    side.unlink()
    with pytest.raises(InputError, match="metadata file .* is missing"):
        eoai.ml.load_model(path)
    with pytest.raises(InputError, match="unknown model file type"):
        eoai.ml.save_model(model, tmp_path / "rf.bin")
