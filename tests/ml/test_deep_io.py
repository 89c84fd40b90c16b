"""Saving and loading networks: state_dict + JSON, weights_only, from a path and from a URL."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

import eoai.ml  # noqa: E402
from eoai.errors import InputError, ModelError  # noqa: E402
from eoai.ml.deep import DeepModel, fit_network, load_network, save_network  # noqa: E402
from eoai.ml.models import UNet  # noqa: E402


@pytest.fixture(scope="module")
def samples():
    """Two NDVI-like classes over 12 dates (with clouds), 20 polygons each."""
    rng = np.random.default_rng(0)
    t = pd.date_range("2021-01-05", periods=12, freq="30D").strftime("%Y-%m-%d")
    curve = np.sin(np.linspace(0, np.pi, 12))
    X = np.r_[0.2 + 0.1 * curve + rng.normal(0, 0.03, (200, 12)),
              0.2 + 0.6 * curve + rng.normal(0, 0.03, (200, 12))].astype("float32")  # fmt: skip
    X[rng.random(X.shape) < 0.2] = np.nan
    cols = [f"ndvi_{d}" for d in t]
    df = pd.DataFrame(X, columns=cols).assign(
        label=np.repeat(["bare", "crop"], 200), group=np.arange(400) // 10
    )
    df.attrs["eoai:features"] = cols
    return df


@pytest.fixture(scope="module")
def model(samples):
    return fit_network(samples, "ltae", epochs=3, d_model=16, n_head=4, mlp=(16,), progress=False,
                       colours={"crop": "#ffd92f"})  # fmt: skip


def test_roundtrip_path(tmp_path, samples, model):
    path = save_network(model, tmp_path / "ltae.pt")
    meta = json.loads((tmp_path / "ltae.pt.json").read_text())
    net = meta["network"]
    assert net["architecture"] == "ltae" and net["bands"] == ["ndvi"] and len(net["dates"]) == 12
    assert net["reference_date"].startswith("2021-01-05") and net["config"]["d_model"] == 16
    assert meta["classes"] == ["bare", "crop"] and meta["colours"][1] == "#ffd92f"
    assert meta["loader"] == "eoai.ml.deep:load_saved"
    loaded = load_network(path)
    X = samples[model.features].to_numpy("float32")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert isinstance(loaded, DeepModel) and loaded.allow_nan
    assert loaded.class_names == model.class_names and loaded.colours == model.colours
    assert loaded.metadata["history"] == model.metadata["history"]
    # the generic eoai.ml.save_model / load_model give the same files and model
    again = eoai.ml.load_model(eoai.ml.save_model(model, tmp_path / "b.pt"))
    np.testing.assert_array_equal(again.predict_proba(X[:20]), model.predict_proba(X[:20]))


def test_roundtrip_url(tmp_path, samples, model):
    save_network(model, tmp_path / "remote.pt")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):  # pragma: no cover
            pass

    handler.log_message = lambda *a, **k: None
    server = Quiet(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        loaded = load_network(f"{url}/remote.pt", map_location="cpu")
        X = samples[model.features].to_numpy("float32")[:50]
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        with pytest.raises(InputError, match="could not download .*missing.pt.json"):
            load_network(f"{url}/missing.pt")
    finally:
        server.shutdown()
        server.server_close()


def test_weights_only_refuses_pickled_objects(tmp_path, model):
    path = save_network(model, tmp_path / "evil.pt")

    import fractions

    # any object other than tensors and containers of them needs unpickling: refused
    torch.save({"state": fractions.Fraction(1, 3)}, path)
    with pytest.raises(InputError, match="not a readable torch state_dict"):
        load_network(path)


def test_load_errors(tmp_path, model):
    with pytest.raises(InputError, match="does not exist"):
        load_network(tmp_path / "nothing.pt")
    path = save_network(model, tmp_path / "m.pt")
    (tmp_path / "m.pt.json").unlink()
    with pytest.raises(InputError, match="metadata file .* is missing"):
        load_network(path)
    path = save_network(model, tmp_path / "n.pt")
    meta = json.loads((tmp_path / "n.pt.json").read_text())
    meta["network"]["config"]["d_model"] = 32  # weights no longer fit the architecture
    (tmp_path / "n.pt.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="do not fit the network"):
        load_network(path)


def test_custom_module_needs_its_instance(tmp_path, samples):
    class Lin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(12, 2)

        def forward(self, x):
            return self.lin(torch.nan_to_num(x)[..., 0])

    feats = samples.attrs["eoai:features"]
    filled = samples.fillna(samples[feats].mean())
    m = fit_network(filled, Lin(), epochs=2, progress=False)
    path = save_network(m, tmp_path / "lin.pt")
    with pytest.raises(ModelError, match=r"custom network .*net=MyNet"):
        load_network(path)
    loaded = load_network(path, net=Lin())
    X = filled[feats].to_numpy("float32")
    np.testing.assert_array_equal(loaded.predict_proba(X), m.predict_proba(X))


def test_segmentation_model_roundtrip(tmp_path):
    from eoai.ml.deep import SegmentationModel

    torch.manual_seed(0)
    net = UNet(in_channels=3, n_classes=2, depth=1, base=4).eval()
    m = SegmentationModel(net, ["a", "b", "c"], [3, 7], mean=[0, 1, 2], std=[1, 2, 3])
    loaded = load_network(save_network(m, tmp_path / "u.pt"))
    assert isinstance(loaded, SegmentationModel) and loaded.halo == m.halo
    img = np.random.default_rng(0).random((20, 24, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict_proba_image(img), m.predict_proba_image(img))
