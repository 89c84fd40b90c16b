"""Pluggable U-Net encoders (timm's features_only contract): decoder from the contract, card, files."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eoai.datasets  # noqa: E402
import eoai.ml  # noqa: E402
from eoai.errors import InputError, ModelError  # noqa: E402
from eoai.ml.deep import SegmentationModel, SegmentationRegressor, fit_segmentation  # noqa: E402
from eoai.ml.models import EncoderUNet, UNet  # noqa: E402
from eoai.ml.models.unet import TinyEncoder  # noqa: E402
from eoai.ml.presto.card import ModelCard  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Info:
    def __init__(self, channels, reductions):
        self._c, self._r = channels, reductions

    def channels(self):
        return list(self._c)

    def reduction(self):
        return list(self._r)


class ThreeStage(torch.nn.Module):
    """A user's encoder: stride-1 stem (reduction 1), then two strided convs (2, 4)."""

    receptive_field = 13

    def __init__(self, in_chans: int):
        super().__init__()
        self.stem = torch.nn.Conv2d(in_chans, 6, 3, padding=1)
        self.down1 = torch.nn.Conv2d(6, 10, 3, stride=2, padding=1)
        self.down2 = torch.nn.Conv2d(10, 12, 3, stride=2, padding=1)
        self.feature_info = _Info([6, 10, 12], [1, 2, 4])

    def forward(self, x):
        a = torch.relu(self.stem(x))
        b = torch.relu(self.down1(a))
        return [a, b, torch.relu(self.down2(b))]


@pytest.fixture(scope="module")
def scene():
    cube, truth = eoai.datasets.synthetic_cube(
        (32, 32), freq="60D", cloud_fraction=0, seed=1, bands=["red", "nir"], breaks=False,
        parcel_size=40,
    )  # fmt: skip
    return cube.drop_vars("scl"), truth


def test_decoder_is_built_from_the_contract():
    net = EncoderUNet(ThreeStage(3), n_classes=4, decoder=[5, 7, 9])
    assert (net.channels, net.reductions, net.tile_multiple) == ([6, 10, 12], [1, 2, 4], 4)
    # coarsest (12) up to reduction 2: 12 + 10 skip channels -> 7; then 7 + 6 -> 5 at full size
    assert [b[0].in_channels for b in net.up_blocks] == [22, 13]
    assert [b[0].out_channels for b in net.up_blocks] == [7, 5]
    assert net.final is None and net.head.in_channels == 5  # reduction 1: no last up-sampling
    assert net(torch.zeros(2, 3, 11, 9)).shape == (2, 4, 11, 9)  # padded to 12 x 12, cropped
    assert net.receptive_field == 13 + 4 * 1 + 4 * 2
    tiny = EncoderUNet(TinyEncoder(3), n_classes=1)  # finest map at reduction 2: a last block
    assert tiny.final is not None and [b[0].in_channels for b in tiny.up_blocks] == [24]
    with pytest.raises(TypeError, match="features_only contract"):
        EncoderUNet(torch.nn.Conv2d(3, 4, 3), n_classes=2)


def test_custom_encoder_trains_saves_and_loads_with_its_card(scene, tmp_path):
    cube, truth = scene
    mine = TinyEncoder(14, width=4)
    before = {k: v.clone() for k, v in mine.state_dict().items()}
    m = fit_segmentation(
        cube, truth["class"], encoder=mine, patch=16, patches_per_epoch=8, epochs=2,
        batch_size=4, progress=False,
    )  # fmt: skip
    assert isinstance(m, SegmentationModel) and m.architecture == "encoder_unet"
    assert all(torch.equal(before[k], v) for k, v in mine.state_dict().items())  # a copy trains
    assert m.net.encoder is not mine and m.tile_multiple == 4
    assert m.halo == -(-(m.net.receptive_field // 2 + 4) // 4) * 4
    card = m.card
    assert isinstance(card, ModelCard) and len(card.bands) == 14 == len(m.features)
    assert card.bands[0].name == m.features[0] and card.bands[0].source == "red"
    np.testing.assert_allclose([-b.add_by for b in card.bands], m.mean, rtol=1e-6)
    np.testing.assert_allclose([b.divide_by for b in card.bands], m.std, rtol=1e-6)
    assert card.architecture["channels"] == [4, 8] and card.architecture["reduction"] == [2, 4]
    assert card.extra["patch_size"] == 16 and card.resolution_m == 10.0
    assert card.extra["dates"] == m.layout.dates and card.max_steps == 7

    path = eoai.ml.save_model(m, tmp_path / "seg.pt")
    sidecar = json.loads(path.with_name("seg.pt.json").read_text())
    assert ModelCard.from_dict(sidecar["network"]["encoder"]["card"]) == card
    with pytest.raises(ModelError, match="custom encoder .* encoder=MyEncoder"):
        eoai.ml.load_model(path)
    with pytest.raises(ModelError, match="channels \\[8, 16\\]"):
        eoai.ml.load_model(path, encoder=TinyEncoder(14))  # built unlike the trained one
    back = eoai.ml.load_model(path, encoder=TinyEncoder(14, width=4))
    assert back.card == card and back.halo == m.halo
    a = eoai.ml.classify(cube, m, probabilities=True)["probability"].values
    b = eoai.ml.classify(cube.chunk({"y": 16, "x": 16}), back, probabilities=True)
    np.testing.assert_allclose(b["probability"].values, a, atol=1e-5)  # tiled == whole, too
    plain = SegmentationModel(UNet(2, 2, depth=1, base=4), ["a", "b"], [0, 1], mean=[0, 0],
                              std=[1, 1])  # fmt: skip
    with pytest.raises(InputError, match="encoder= is for a U-Net on a pluggable encoder"):
        eoai.ml.load_model(eoai.ml.save_model(plain, tmp_path / "plain.pt"), encoder=mine)


def test_encoder_weights_and_a_regression_head(scene, tmp_path):
    cube, truth = scene
    enc = ThreeStage(14)
    torch.nn.init.constant_(enc.stem.bias, 0.25)
    torch.save(enc.state_dict(), tmp_path / "enc.pt")
    height = (truth["class"] * 2.5 + 1).astype("float32").rename("height")
    r = fit_segmentation(
        cube, height, encoder=ThreeStage(14), encoder_weights=tmp_path / "enc.pt", patch=16,
        patches_per_epoch=4, epochs=1, batch_size=4, lr=1e-9, decoder=[4, 4, 4], progress=False,
    )  # fmt: skip
    assert isinstance(r, SegmentationRegressor) and r.inner.card.reference.startswith("custom,")
    assert "enc.pt (sha256" in r.inner.card.reference
    assert torch.allclose(r.net.encoder.stem.bias, torch.full((6,), 0.25), atol=1e-6)  # lr ~ 0
    path = eoai.ml.save_model(r, tmp_path / "height.pt")
    back = eoai.ml.load_model(path, encoder=ThreeStage(14))
    assert isinstance(back, SegmentationRegressor)
    np.testing.assert_array_equal(
        eoai.ml.predict(cube, back)["prediction"].values,
        eoai.ml.predict(cube, r)["prediction"].values,
    )


def test_encoder_errors(scene, tmp_path):
    cube, truth = scene
    quick = dict(patch=16, patches_per_epoch=4, epochs=1, progress=False)
    with pytest.raises(ModelError, match="does not take 14 input channels.*in_chans=14"):
        fit_segmentation(cube, truth["class"], encoder=TinyEncoder(3), **quick)
    if importlib.util.find_spec("timm") is None:
        with pytest.raises(ModelError, match="needs the timm package.*pip install timm"):
            fit_segmentation(cube, truth["class"], encoder="timm:resnet18", **quick)
    with pytest.raises(InputError, match="'timm:<name>'"):
        fit_segmentation(cube, truth["class"], encoder="resnet18", **quick)
    with pytest.raises(InputError, match="decoder= only"):
        fit_segmentation(cube, truth["class"], encoder=TinyEncoder(14), depth=2, **quick)
    with pytest.raises(InputError, match="pass the encoder too"):
        fit_segmentation(cube, truth["class"], encoder_weights="w.pt", **quick)
    torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="do not fit the encoder"):
        fit_segmentation(
            cube, truth["class"], encoder=TinyEncoder(14), encoder_weights=tmp_path / "bad.pt",
            **quick,
        )  # fmt: skip

    class NoRF(ThreeStage):
        receptive_field = None

    with pytest.raises(ModelError, match="no receptive_field attribute: pass halo="):
        fit_segmentation(cube, truth["class"], encoder=NoRF(14), **quick)
    m = fit_segmentation(cube, truth["class"], encoder=NoRF(14), halo=8, **quick)
    assert m.halo == 8


def test_timm_names_are_created_with_the_features_only_contract(scene, tmp_path, monkeypatch):
    """``encoder="timm:<name>"`` (a stand-in timm module: the real one needs torchvision)."""
    import sys
    import types

    calls = []

    def create_model(name, **kw):
        calls.append((name, kw))
        return TinyEncoder(kw["in_chans"], width=4)

    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=create_model))
    cube, truth = scene
    m = fit_segmentation(
        cube, truth["class"], encoder="timm:resnet18", patch=16, patches_per_epoch=4, epochs=1,
        batch_size=4, progress=False,
    )  # fmt: skip
    assert calls == [("resnet18", {"features_only": True, "pretrained": False, "in_chans": 14})]
    assert m.card.architecture["source"] == "timm:resnet18" and m.card.name.endswith("resnet18")
    back = eoai.ml.load_model(eoai.ml.save_model(m, tmp_path / "timm.pt"))  # no encoder= needed
    assert len(calls) == 2 and calls[1] == calls[0]
    block = np.random.default_rng(0).normal(size=(16, 16, 14)).astype("float32")
    np.testing.assert_array_equal(back.predict_proba_image(block), m.predict_proba_image(block))


def _timm_importable() -> bool:
    """timm and a torchvision built for this torch (CI's CPU torch 2.13.0 has none: the only
    torchvision wheels link the CUDA build of torch, so the test runs where the user has both)."""
    try:
        import timm

        timm.create_model("resnet18", features_only=True, pretrained=False, in_chans=1)
    except Exception:  # noqa: BLE001 - absent, or torchvision's C ops missing for this torch
        return False
    return True


@pytest.mark.skipif(
    not _timm_importable(), reason="timm with a torchvision matching this torch is not installed"
)
def test_a_real_timm_resnet_with_a_local_state_dict(scene, tmp_path):
    """The issue's offline example: timm's resnet18 built without downloading anything, the user's
    local weights loaded (weights_only), trained as the U-Net's encoder, saved and rebuilt."""
    import timm

    cube, truth = scene
    donor = timm.create_model("resnet18", features_only=True, pretrained=False, in_chans=14)
    torch.nn.init.constant_(donor.conv1.weight, 0.01)  # "pretrained" weights the test can see
    torch.save(donor.state_dict(), tmp_path / "resnet18_local.pth")
    m = fit_segmentation(
        cube, truth["class"], encoder="timm:resnet18", encoder_weights=tmp_path / "resnet18_local.pth",
        halo=16, patch=32, patches_per_epoch=4, epochs=1, batch_size=4, lr=1e-9, progress=False,
    )  # fmt: skip
    assert m.card.architecture["source"] == "timm:resnet18"
    assert m.card.architecture["reduction"] == [2, 4, 8, 16, 32] and m.tile_multiple == 32
    assert m.card.architecture["channels"] == [64, 64, 128, 256, 512]
    assert torch.allclose(
        m.net.encoder.conv1.weight, torch.full_like(m.net.encoder.conv1.weight, 0.01)
    )
    back = eoai.ml.load_model(
        eoai.ml.save_model(m, tmp_path / "resnet_unet.pt")
    )  # timm rebuilds it
    np.testing.assert_array_equal(
        eoai.ml.classify(cube, back)["class"].values, eoai.ml.classify(cube, m)["class"].values
    )
