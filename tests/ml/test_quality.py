"""Sample quality: eoai.ml.quality.sample_quality (SOM of the samples, mislabelled ones flagged)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from eoai.errors import DataSkippedWarning, InputError
from eoai.ml.quality import neuron_summary, plot_som, sample_quality


@pytest.fixture(scope="module")
def samples(synthetic):
    """Pixels of the synthetic parcels (6 classes, 250 features with 30 % cloudy NaN dates)."""
    cube, _, parcels = synthetic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSkippedWarning)
        return cube.eoai.extract(parcels, label="class", max_per_polygon=12)


def _swap(samples: pd.DataFrame, fraction: float, seed: int, by_group: bool):
    """Labels of ``fraction`` of the samples (or of the polygons) swapped to another class."""
    rng = np.random.default_rng(seed)
    out = samples.copy()
    classes = np.unique(out["label"])
    if by_group:
        groups = out["group"].unique()
        picked = rng.choice(groups, int(fraction * len(groups)), replace=False)
        swapped = out["group"].isin(picked).to_numpy()
        new = {
            g: rng.choice(classes[classes != out.loc[out.group == g, "label"].iloc[0]])
            for g in picked
        }
        out.loc[swapped, "label"] = out.loc[swapped, "group"].map(new)
    else:
        swapped = np.zeros(len(out), bool)
        swapped[rng.choice(len(out), int(fraction * len(out)), replace=False)] = True
        out.loc[swapped, "label"] = [
            rng.choice(classes[classes != v]) for v in out.loc[swapped, "label"]
        ]
    return out, swapped


def _recall_precision(flagged: np.ndarray, swapped: np.ndarray) -> tuple[float, float]:
    hit = (flagged & swapped).sum()
    return hit / swapped.sum(), hit / max(flagged.sum(), 1)


@pytest.mark.parametrize("by_group", [False, True], ids=["pixels", "polygons"])
def test_flags_most_swapped_labels(samples, by_group):
    noisy, swapped = _swap(samples, 0.10, seed=0, by_group=by_group)
    with pytest.warns(DataSkippedWarning, match=r"feature values are NaN \(e.g. clouds\)"):
        q = sample_quality(noisy)
    recall, precision = _recall_precision(q["flagged"].to_numpy(), swapped)
    # measured (seeds 0-2, 890 samples, 9 x 9 neurons): pixels 0.99 / 0.95, polygons 0.97 / 0.93;
    # (seed 0, these 538 samples, 7 x 7 neurons): pixels 0.98 / 0.93, polygons 1.00 / 0.76
    assert recall >= (0.85 if by_group else 0.90), (recall, precision)
    assert precision >= (0.60 if by_group else 0.80), (recall, precision)  # swap rate: 0.10
    assert q.index.equals(noisy.index)
    assert (q["label"] == noisy["label"]).all()
    assert q.attrs["eoai:som"]["grid"] == [7, 7]
    assert q.attrs["eoai:method"] == "sample_quality"


def test_clean_samples_have_pure_neurons_and_few_flags(samples):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSkippedWarning)
        clean = sample_quality(samples, init="random", seed=1)
    # measured: 1.3 % flagged, mean purity 0.996    assert clean["flagged"].mean() <= 0.03
    assert clean["neuron_purity"].mean() >= 0.9


@pytest.mark.filterwarnings("ignore:.*feature values are NaN:eoai.errors.DataSkippedWarning")
def test_columns_and_neuron_summary(samples):
    s = samples.iloc[:300].copy()
    s.iloc[0, : len(s.attrs["eoai:features"])] = np.nan  # no feature value: not mapped
    with pytest.warns(
        DataSkippedWarning, match="0 samples without a 'label' value and 1 without any"
    ):
        q = sample_quality(s, grid=(4, 5), iterations=10)
    assert q.loc[s.index[0], "neuron"] == -1 and not q.loc[s.index[0], "flagged"]
    mapped = q[q["neuron"] >= 0]
    assert mapped["neuron"].between(0, 19).all()
    assert (mapped["neuron"] == mapped["neuron_row"] * 5 + mapped["neuron_col"]).all()
    assert ((mapped["prior"] >= 0) & (mapped["prior"] <= mapped["neuron_purity"] + 1e-12)).all()
    assert (mapped["flagged"] == (mapped["posterior"] < 0.3)).all()
    table = neuron_summary(q)
    assert len(table) == 20 and table["size"].sum() == len(mapped)
    first = mapped.iloc[0]
    row = table.loc[first["neuron"]]
    assert row["majority"] == first["neuron_class"] and row["purity"] == first["neuron_purity"]
    counts = table.filter(like="n_").to_numpy()
    np.testing.assert_array_equal(counts.sum(1), table["size"])


@pytest.mark.filterwarnings("ignore::eoai.errors.DataSkippedWarning")
def test_plot_som(samples):
    """The grid coloured by majority class (holoviews: its first import takes seconds, in CI
    tests/ml/test_metrics.py has paid it)."""
    q = sample_quality(samples.iloc[:200], grid=(3, 4), iterations=5)
    table = neuron_summary(q)
    plot = plot_som(q)
    assert len(plot.data) == int((table["size"] > 0).sum())
    first = plot.data.iloc[0]
    assert first["colour"].startswith("#") and 0 < first["purity"] <= 1


def test_errors(samples):
    s = samples.iloc[:50]
    with pytest.raises(InputError, match="no label column 'class'"):
        sample_quality(s, "class")
    with pytest.raises(InputError, match="must be a pandas DataFrame"):
        sample_quality(s.to_numpy())
    with pytest.raises(InputError, match="at least 10 labelled samples of 2 classes, got 50 of 1"):
        sample_quality(s.assign(label=1))
    with pytest.raises(InputError, match="at least 2 neurons"):
        sample_quality(s, grid=(1, 1))
    with pytest.raises(InputError, match=r"threshold must be in \[0, 1\]"):
        sample_quality(s, threshold=2)
    with pytest.raises(InputError, match="iterations must be an int >= 1"):
        sample_quality(s, iterations=0)
    with pytest.raises(InputError, match="no group column 'field'"):
        sample_quality(s, group="field")
    with pytest.raises(InputError, match=r"must be numeric; these are not: \['name'\]"):
        sample_quality(s.assign(name="a"), features=[s.columns[0], "name"])
    with pytest.raises(InputError, match="lack the feature columns"):
        sample_quality(s, features=["nope"])
    with pytest.raises(InputError, match="table of eoai.ml.sample_quality"):
        neuron_summary(s)
