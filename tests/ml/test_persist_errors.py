"""eoai.ml.load_model / load_network on damaged files: eoai errors naming the file and the fix.

Before (issue #16): a truncated skops file raised ``zipfile.BadZipFile``, a corrupt sidecar
``json.JSONDecodeError``, a sidecar without ``features`` ``KeyError``, a truncated joblib file
``EOFError`` (all from the dependencies); a truncated ``.pt`` said only "not a readable torch
state_dict".
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import eoai.ml
from eoai.errors import InputError, ModelError

RESTORE = "restore it from where the model came from, or train and save it again"


@pytest.fixture(scope="module")
def forest():
    df = pd.DataFrame({"b": [0.1, 0.2, 0.8, 0.9] * 3, "label": [1, 1, 2, 2] * 3})
    return eoai.ml.fit(df, n_estimators=3, threads=1)


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("name", ["rf.skops", "rf.joblib"])
def test_truncated_or_corrupt_model_file(forest, tmp_path, name):
    path = eoai.ml.save_model(forest, tmp_path / name)
    _truncate(path)
    with pytest.raises(InputError) as err:
        eoai.ml.load_model(path, trusted=name.endswith("joblib"))
    msg = str(err.value)
    assert f"the model file {path} is not a readable" in msg and RESTORE in msg
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InputError, match="is corrupt, truncated"):
        eoai.ml.load_model(path, trusted=name.endswith("joblib"))


def test_corrupt_sidecar(forest, tmp_path):
    path = eoai.ml.save_model(forest, tmp_path / "rf.skops")
    side = tmp_path / "rf.skops.json"
    good = side.read_text()
    side.write_text(good[: len(good) // 2])  # truncated JSON
    with pytest.raises(InputError) as err:
        eoai.ml.load_model(path)
    msg = str(err.value)
    assert f"the metadata file {side} is not valid JSON" in msg and "corrupt or truncated" in msg
    assert "save the model again with eoai.ml.save_model" in msg
    side.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(InputError, match=r"is not (text|valid JSON)"):
        eoai.ml.load_model(path)
    side.write_text("[1, 2]")
    with pytest.raises(InputError, match=r"holds a JSON list, not the object eoai writes"):
        eoai.ml.load_model(path)
    meta = json.loads(good)
    del meta["features"]
    side.write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"lacks 'features'.*save the model again"):
        eoai.ml.load_model(path)
    meta = json.loads(good)
    del meta["loader"]
    side.write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"lacks 'loader'"):
        eoai.ml.load_model(path)
    # the good file still loads
    side.write_text(good)
    assert eoai.ml.load_model(path).classes == forest.classes


@pytest.fixture(scope="module")
def network():
    pytest.importorskip("torch")
    from eoai.ml.deep import fit_network

    rng = np.random.default_rng(0)
    cols = [f"ndvi_2021-0{m}-01" for m in range(1, 7)]
    X = np.r_[rng.normal(0.2, 0.05, (40, 6)), rng.normal(0.7, 0.05, (40, 6))].astype("float32")
    df = pd.DataFrame(X, columns=cols).assign(label=np.repeat(["a", "b"], 40))
    df.attrs["eoai:features"] = cols
    return fit_network(df, "tempcnn", epochs=1, progress=False)


def test_truncated_or_corrupt_network(network, tmp_path):
    from eoai.ml.deep import load_network, save_network

    path = save_network(network, tmp_path / "net.pt")
    _truncate(path)
    for load in (load_network, eoai.ml.load_model):
        with pytest.raises(InputError) as err:
            load(path)
        msg = str(err.value)
        assert f"{path} is not a readable torch state_dict" in msg
        assert "corrupt or truncated" in msg and "save the network again" in msg
    side = tmp_path / "net.pt.json"
    good = side.read_text()
    side.write_text(good[:100])
    for load in (load_network, eoai.ml.load_model):
        with pytest.raises(InputError, match=r"metadata file .*net.pt.json is not valid JSON"):
            load(path)
    meta = json.loads(good)
    del meta["network"]["mean"]
    side.write_text(json.dumps(meta))
    save_network(network, tmp_path / "ok.pt")
    (tmp_path / "ok.pt.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"lacks 'network.mean'.*save the network again"):
        load_network(tmp_path / "ok.pt")
    meta = json.loads(good)
    meta["network"]["config"] = {"nonsense": 1}
    (tmp_path / "ok.pt.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"describes a 'tempcnn' network that cannot be built"):
        load_network(tmp_path / "ok.pt")
