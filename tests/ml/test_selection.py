"""select_samples: OTB / iota2 strategies, per-polygon caps, samplers, counts, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import eoai.ml
from eoai.errors import FewSamplesWarning, InputError


@pytest.fixture
def table():
    """3 classes: 'a' 600 px in 6 polygons of 100, 'b' 120 px in 4 of 30, 'c' 40 px in 1."""
    g = np.r_[np.repeat(np.arange(6), 100), 6 + np.repeat(np.arange(4), 30), np.full(40, 10)]
    lab = np.r_[["a"] * 600, ["b"] * 120, ["c"] * 40]
    df = pd.DataFrame({"v": np.arange(len(g), dtype="float32"), "label": lab, "group": g})
    df.attrs["eoai:features"] = ["v"]
    return df


def counts(df):
    return df["label"].value_counts().sort_index().to_dict()


def test_strategies_give_the_counts_asked_for(table):
    assert counts(eoai.ml.select_samples(table)) == {"a": 40, "b": 40, "c": 40}
    assert counts(eoai.ml.select_samples(table, "percent", ratio=0.1)) == {"a": 60, "b": 12, "c": 4}
    sel = eoai.ml.select_samples(table, "total", n=100)  # 600:120:40 -> 78.9, 15.8, 5.3
    assert counts(sel) == {"a": 79, "b": 16, "c": 5}
    assert counts(eoai.ml.select_samples(table, "byclass", n={"a": 10, "c": 3})) == {
        "a": 10,
        "c": 3,
    }
    assert len(eoai.ml.select_samples(table, "all")) == 760
    with pytest.warns(FewSamplesWarning, match=r"c: 40 < 50"):
        assert counts(eoai.ml.select_samples(table, "constant", n=50)) == {
            "a": 50,
            "b": 50,
            "c": 40,
        }


def test_per_polygon_cap_then_balance_and_report(table):
    sel = eoai.ml.select_samples(table, "all", per_polygon=25)
    assert sel.groupby("group").size().max() == 25
    assert counts(sel) == {"a": 150, "b": 100, "c": 25}
    rep = sel.attrs["eoai:selection"]
    assert rep["available"] == {"a": 150, "b": 100, "c": 25}  # after the cap
    assert rep["polygons_selected"] == {"a": 6, "b": 4, "c": 1}
    assert sel.attrs["eoai:features"] == ["v"]  # the table's attrs travel
    # balanced after the cap: every class at 25
    assert counts(eoai.ml.select_samples(table, per_polygon=25)) == {"a": 25, "b": 25, "c": 25}


def test_samplers_are_seeded_and_periodic_is_evenly_spaced(table):
    a = eoai.ml.select_samples(table, seed=1)
    b = eoai.ml.select_samples(table, seed=1)
    c = eoai.ml.select_samples(table, seed=2)
    assert a.index.equals(b.index) and not a.index.equals(c.index)
    p = eoai.ml.select_samples(table, "constant", n=6, sampler="periodic")
    # class a: 600 rows in order -> every 100th, from the middle of each run: one per polygon
    assert p[p["label"] == "a"]["v"].tolist() == [50, 150, 250, 350, 450, 550]
    assert p.index.is_monotonic_increasing


def test_errors_say_what_to_do(table):
    for kwargs, message in [
        (dict(strategy="balanced"), "strategy must be one of"),
        (dict(strategy="constant"), "needs n="),
        (dict(strategy="percent", ratio=1.5), r"ratio= in \(0, 1\]"),
        (dict(strategy="smallest", n=3), "n= is not used"),
        (dict(strategy="byclass", n={"z": 3}), r"classes \['z'\] that the samples do not have"),
        (dict(per_polygon=0), "per_polygon must be a positive int"),
        (dict(sampler="grid"), "sampler must be one of"),
        (dict(label="class"), "no class column 'class'"),
    ]:
        with pytest.raises(InputError, match=message):
            eoai.ml.select_samples(table, **kwargs)
    with pytest.raises(InputError, match="per_polygon needs the polygon column"):
        eoai.ml.select_samples(table.drop(columns="group"), per_polygon=3)
