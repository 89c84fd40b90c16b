"""U-TAE: attention over dates, accuracy on a cloudy synthetic series, tiled inference, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

torch = pytest.importorskip("torch")

import eoai.datasets  # noqa: E402
import eoai.ml  # noqa: E402
from eoai.errors import InputError, ModelError  # noqa: E402
from eoai.ml.deep import SeriesSegmentationModel, fit_segmentation  # noqa: E402
from eoai.ml.models import UTAE  # noqa: E402
from eoai.testing import raise_if_dask_computes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ARCH = dict(encoder=(8, 8), n_head=4, d_model=16)


@pytest.fixture(scope="module")
def scene():
    """48 x 48 px, 7 dates (60 days apart), red/nir, ~20 % cloudy (NaN); labels on the left 2/3."""
    cube, truth = eoai.datasets.synthetic_cube(
        shape=(48, 48), freq="60D", breaks=False, seed=2, parcel_size=40, cloud_fraction=0.2,
        bands=["red", "nir"], classes=["water", "cropland", "forest"],
    )  # fmt: skip
    cube = cube.drop_vars("scl")
    labels = truth["class"].copy()
    labels[:, 32:] = -1
    labels.attrs["nodata"] = -1
    return cube, truth, labels


@pytest.fixture(scope="module")
def utae(scene):
    cube, _, labels = scene
    return fit_segmentation(
        cube, labels, model="utae", patch=16, patches_per_epoch=16, epochs=12, batch_size=4, lr=1e-2,
        val_fraction=0, progress=False, **ARCH,
    )  # fmt: skip


def _net():
    torch.manual_seed(0)
    return UTAE(in_channels=3, n_classes=4, encoder=(8, 16), n_head=4, d_model=16).eval()


def test_output_shape_and_attention_follows_the_days():
    net = _net()
    x = torch.randn(2, 6, 3, 20, 12)
    days = torch.tensor([0.0, 17, 40, 95, 130, 200])
    with torch.no_grad():
        out, attn = net(x, days, return_attention=True)
        assert out.shape == (2, 4, 20, 12) and attn.shape == (4, 2, 6, 10, 6)
        np.testing.assert_allclose(attn.sum(2).numpy(), 1.0, atol=1e-5)
        perm = torch.tensor([3, 0, 5, 1, 4, 2])  # dates shuffled with their days: same output
        np.testing.assert_allclose(net(x[:, perm], days[perm]).numpy(), out.numpy(), atol=1e-5)
        # the days are what orders the dates: the same images on shuffled days differ
        assert (net(x, days[perm]) - out).abs().max() > 1e-3
    torch.manual_seed(0)
    jit = UTAE(in_channels=3, n_classes=4, encoder=(8, 16), n_head=4, d_model=16, day_jitter=15)
    jit.load_state_dict(net.state_dict())
    with torch.no_grad():
        np.testing.assert_allclose(jit.eval()(x, days).numpy(), out.numpy())  # eval: no jitter
        jit.train()
        assert (jit(x, days) - jit(x, days)).abs().max() > 1e-4  # training: random day shifts


def test_a_missing_date_is_left_out():
    """A date NaN over the patch gives the output of the series without it (padding); a cloud
    (NaN on some pixels of a date) is masked there, not read as a value."""
    net = _net()
    x = torch.randn(1, 6, 3, 16, 16)
    days = torch.arange(6.0) * 30
    keep = torch.tensor([0, 1, 3, 4, 5])
    hidden = x.clone()
    hidden[:, 2] = float("nan")
    with torch.no_grad():
        ref = net(x[:, keep], days[keep])
        np.testing.assert_allclose(net(hidden, days).numpy(), ref.numpy(), atol=1e-5)
        cloudy = x.clone()
        cloudy[:, 2, :, :6, :6] = float("nan")
        out = net(cloudy, days)
        assert torch.isfinite(out).all()
        assert (out - net(x, days)).abs()[..., :6, :6].max() > 1e-3
        # under the cloud, the output is closer to the series without that date than with it
        under = (slice(None), slice(None), slice(0, 5), slice(0, 5))
        assert (out - ref)[under].abs().mean() < (net(x, days) - ref)[under].abs().mean()


@pytest.mark.slow  # trains the module's U-TAE (about 4 s of CPU)
def test_fit_reaches_miou_on_the_unlabelled_part(scene, utae):
    cube, truth, _ = scene
    assert isinstance(utae, SeriesSegmentationModel) and utae.architecture == "utae"
    assert utae.bands == ["red", "nir"] and len(utae.dates) == 7 and utae.mean.shape == (2,)
    assert utae.class_names == truth.attrs["class_names"]
    out = eoai.ml.classify(cube, utae)["class"].values[:, 32:]
    ref = truth["class"].values[:, 32:]
    iou = [
        ((out == k) & (ref == k)).sum() / ((out == k) | (ref == k)).sum() for k in np.unique(ref)
    ]
    assert len(iou) == 3 and np.mean(iou) >= 0.7, iou


@pytest.mark.slow  # trains the module's U-TAE (about 4 s of CPU)
def test_tiled_equals_whole_image(scene, utae):
    cube, _, _ = scene
    m = utae.tile_multiple
    assert m == 2 and utae.halo % m == 0 and utae.halo >= utae.net.receptive_field // 2
    whole = eoai.ml.classify(cube, utae, probabilities=True)["probability"].values
    tiled = eoai.ml.classify(
        cube.chunk({"time": -1, "y": 16, "x": 16}), utae, probabilities=True
    )["probability"].values  # fmt: skip
    np.testing.assert_allclose(tiled, whole, atol=2e-5)

    class ShortHalo(SeriesSegmentationModel):  # the check above can fail: too little overlap
        halo = 2

    short = ShortHalo.__new__(ShortHalo)
    short.__dict__.update(utae.__dict__)
    seams = eoai.ml.classify(cube.chunk({"time": -1, "y": 16, "x": 16}), short, probabilities=True)
    assert np.abs(seams["probability"].values - whole).max() > 1e-3


@pytest.mark.slow  # trains the module's U-TAE (about 4 s of CPU)
def test_classify_is_lazy_and_applies_to_other_dates(scene, utae):
    cube, truth, _ = scene
    lazy = cube.chunk({"time": -1, "y": 24, "x": 24})
    with raise_if_dask_computes():
        out = eoai.ml.classify(lazy, utae, probabilities=True)
    assert out["class"].chunks is not None
    # a cube with fewer dates (here the odd ones): the days come from its own dates
    fewer = eoai.ml.classify(cube.isel(time=slice(0, None, 2)), utae)["class"].values
    assert (fewer == truth["class"].values).mean() > 0.5


@pytest.mark.slow  # trains the module's U-TAE (about 4 s of CPU)
def test_save_load_round_trip(scene, utae, tmp_path):
    cube, _, _ = scene
    path = eoai.ml.save_model(utae, tmp_path / "utae.pt")
    back = eoai.ml.load_model(path)
    assert isinstance(back, SeriesSegmentationModel) and back.halo == utae.halo
    assert back.net.config == utae.net.config and back.reference_date == utae.reference_date
    a = eoai.ml.classify(cube, utae, probabilities=True)["probability"].values
    b = eoai.ml.classify(cube, back, probabilities=True)["probability"].values
    np.testing.assert_array_equal(a, b)


def test_errors(scene):
    cube, truth, labels = scene
    static = xr.Dataset({"dem": cube["red"].isel(time=0, drop=True)})
    with pytest.raises(ModelError, match="these have no date: dem"):
        fit_segmentation(static, labels, model="utae", progress=False)
    with pytest.raises(InputError, match="has 1 date .*model='unet'"):
        fit_segmentation(cube.isel(time=[0]), labels, model="utae", patch=16, progress=False)
    with pytest.raises(InputError, match="patch=30 must be a multiple of 4.*patch=28"):
        fit_segmentation(cube, labels, model="utae", patch=30, encoder=(8, 8, 8), n_head=4)
    with pytest.raises(InputError, match="bad architecture parameters for utae"):
        fit_segmentation(cube, labels, model="utae", patch=16, n_layers=3, progress=False)
    with pytest.raises(InputError, match="divisible by n_head=3"):
        fit_segmentation(cube, labels, model="utae", patch=16, n_head=3, progress=False)
    with pytest.raises(ModelError, match="U-TAE is a patch model.*fit_segmentation"):
        eoai.ml.fit(_table(cube, truth), "utae")


def _table(cube, truth):
    import pandas as pd

    feats = eoai.ml.features.feature_array(cube.isel(y=slice(0, 4), x=slice(0, 4)))
    X = feats.transpose("y", "x", "feature").values.reshape(16, -1)
    df = pd.DataFrame(X, columns=feats["feature"].values)
    return df.assign(label=np.arange(16) % 2)
