"""The torch architectures themselves (training and inference are tested with eoai.ml.deep)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from eoai.errors import InputError  # noqa: E402
from eoai.ml.models import LTAE, TempCNN, UNet, build_model  # noqa: E402


def test_ltae_ignores_missing_dates_exactly():
    torch.manual_seed(0)
    net = LTAE(in_channels=3, n_classes=4, d_model=16, n_head=4, d_k=4, mlp=(16,)).eval()
    x = torch.randn(5, 8, 3)
    days = torch.arange(8.0) * 10
    with_gap = x.clone()
    with_gap[:, 2] = float("nan")
    keep = [i for i in range(8) if i != 2]
    out_gap = net(with_gap, days)
    out_drop = net(x[:, keep], days[keep])
    assert torch.allclose(out_gap, out_drop, atol=1e-5)


def test_ltae_depends_on_acquisition_days():
    torch.manual_seed(0)
    net = LTAE(in_channels=3, n_classes=4, d_model=16, n_head=4, d_k=4, mlp=(16,)).eval()
    x = torch.randn(5, 8, 3)
    assert not torch.allclose(net(x, torch.arange(8.0) * 10), net(x, torch.arange(8.0) * 10 + 100))


def test_tempcnn_shape_and_config_roundtrip():
    net = TempCNN(in_channels=4, n_times=12, n_classes=3)
    clone = build_model("tempcnn", **net.config)
    clone.load_state_dict(net.state_dict())
    net.eval(), clone.eval()
    x = torch.randn(6, 12, 4)
    assert torch.equal(net(x), clone(x))


def test_unet_receptive_field_bounds_the_true_one():
    torch.manual_seed(0)
    net = UNet(in_channels=1, n_classes=1, depth=2, base=4).eval()
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    net(x)[0, 0, 64, 64].backward()
    rows = (x.grad[0, 0].abs() > 0).any(dim=1).nonzero()[:, 0]
    extent = int(rows.max() - rows.min() + 1)
    assert 0.8 * net.receptive_field <= extent <= net.receptive_field


def test_unet_keeps_odd_sizes():
    assert UNet(2, 3, depth=3, base=4)(torch.zeros(2, 2, 37, 21)).shape == (2, 3, 37, 21)


def test_unknown_architecture_lists_choices():
    with pytest.raises(InputError, match="unknown architecture 'resnet'.*ltae"):
        build_model("resnet")
