"""U-T&T: a fine image and a coarse series, fused; grids, accuracy, tiling, laziness, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

torch = pytest.importorskip("torch")

import eoai  # noqa: E402
import eoai.ml  # noqa: E402
from eoai.datasets.multires import multires_scene  # noqa: E402
from eoai.errors import CRSError, InputError, ModelError  # noqa: E402
from eoai.ml.deep import MultiResSegmentationModel, fit_segmentation, stack_multires  # noqa: E402
from eoai.ml.models import UTT  # noqa: E402
from eoai.testing import raise_if_dask_computes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ARCH = dict(depth=1, base=16, encoder=(8, 8), n_head=4, d_model=8)


def _miou(pred, ref):
    return [((pred == k) & (ref == k)).sum() / ((pred == k) | (ref == k)).sum() for k in range(4)]


@pytest.fixture(scope="module")
def utt():
    """Trained on a 96 x 96 px aerial image and a 24 x 24 px series (factor 4), all labelled."""
    aerial, s2, truth = multires_scene((96, 96), factor=4, seed=0, freq="30D", objects=0.12)
    return fit_segmentation(
        {"aerial": aerial, "s2": s2}, truth["class"], model="utt", patch=32, patches_per_epoch=16,
        epochs=20, batch_size=4, lr=1e-2, val_fraction=0, progress=False, **ARCH,
    )  # fmt: skip


@pytest.fixture(scope="module")
def other():
    """Another scene, 192 x 192 px, for the bound and the tiling (4 tiles of 96 px)."""
    aerial, s2, truth = multires_scene((192, 192), factor=4, seed=5, freq="30D", objects=0.12)
    return {"aerial": aerial, "s2": s2}, truth


def test_the_series_is_read_as_block_means_and_the_days_matter():
    torch.manual_seed(0)
    net = UTT(3, 2, n_classes=4, factor=4, **ARCH).eval()
    image, series = torch.randn(2, 3, 16, 24), torch.randn(2, 5, 2, 4, 6)
    x = UTT.pack(image, series, factor=4)
    days = torch.arange(5.0) * 30
    with torch.no_grad():
        out, (aux,) = net(x, days, aux=True)
        assert out.shape == aux.shape == (2, 4, 16, 24)
        # the series enters through its 4 x 4 block means only: moving values inside a block,
        # or hiding some of them (NaN), changes nothing
        moved = x.clone()
        moved[:, 3:, 0:4, 0:4] = x[:, 3:, 0:4, 0:4].flip(-1).flip(-2)
        np.testing.assert_allclose(net(moved, days).numpy(), out.numpy(), atol=1e-5)
        # aux: the U-TAE's own map is constant over each series pixel
        assert (aux[..., :4, :4] - aux[..., :1, :1]).abs().max() < 1e-6
        # the day encoding is used: the same images on other days give another map
        assert (net(x, days.flip(0)) - out).abs().max() > 1e-3
        # and the image: another image changes the fine map inside a series pixel
        other = UTT.pack(image.roll(1, -1), series, factor=4)
        assert (net(other, days) - out).abs().max() > 1e-3
    with pytest.raises(ValueError, match="the image must be 16 x 20 px"):
        UTT.pack(image, torch.randn(2, 5, 2, 4, 5), factor=4)


def test_stack_multires_repeats_the_series_exactly():
    aerial, s2, _ = multires_scene((32, 48), factor=4, seed=1)
    tree = stack_multires({"aerial": aerial, "s2": s2})
    fine = tree["s2"].to_dataset()["red"].values
    np.testing.assert_array_equal(fine, np.repeat(np.repeat(s2["red"].values, 4, 1), 4, 2))
    assert tree["aerial"].sizes == {"y": 32, "x": 48}
    np.testing.assert_array_equal(tree["s2"]["x"].values, aerial["x"].values)
    # the same sources through eoai.stack_sources (nearest onto the image's grid) and factor=
    stacked = eoai.stack_sources(
        {"aerial": aerial, "s2": s2}, static=["aerial"], resampling={"s2": "nearest"}
    )
    again = stack_multires(stacked, factor=4)
    np.testing.assert_array_equal(again["s2"].to_dataset()["red"].values, fine)
    # the layout of eoai.stack_sources(..., fine="aerial"): the series' grid at the root, the
    # image at its own pixels on dims y_fine / x_fine with eoai:fine_ratio
    nested = aerial.drop_vars("spatial_ref").rename(y="y_fine", x="x_fine")
    nested.attrs["eoai:fine_ratio"] = 4
    root = xr.Dataset(coords={k: s2.coords[k] for k in ("y", "x", "spatial_ref")})
    kept = xr.DataTree.from_dict({"/": root, "s2": s2, "aerial": nested})
    back = stack_multires(kept)
    np.testing.assert_array_equal(back["s2"].to_dataset()["red"].values, fine)
    assert back["aerial"].to_dataset().odc.geobox == aerial.odc.geobox
    with pytest.raises(InputError, match="factor=2 but the tree's fine ratio is 4"):
        stack_multires(kept, factor=2)
    # and the tree eoai.stack_sources(..., fine="aerial") really builds gives the same
    real = stack_multires(eoai.stack_sources({"aerial": aerial, "s2": s2}, fine="aerial"))
    np.testing.assert_array_equal(real["s2"].to_dataset()["red"].values, fine)
    np.testing.assert_array_equal(real["aerial"].to_dataset()["red"].values, aerial["red"].values)
    # a window of the series under a smaller image, on series pixel edges: rows 1.., cols 2..
    part = aerial.isel(y=slice(4, 20), x=slice(8, 32))
    win = stack_multires({"aerial": part, "s2": s2})["s2"].to_dataset()["nir"].values
    np.testing.assert_array_equal(win[:, ::4, ::4], s2["nir"].values[:, 1:5, 2:8])


def test_stack_multires_errors():
    aerial, s2, _ = multires_scene((32, 32), factor=4, seed=1)
    with pytest.raises(
        InputError, match=r"\(3 x 3\); the fine grid must be an integer multiple.*e.g. 2.5\)"
    ):
        stack_multires({"aerial": aerial.odc.reproject(aerial.odc.geobox.zoom_to(resolution=3.0)),
                        "s2": s2})  # fmt: skip
    with pytest.raises(InputError, match="corner lies .* off the series' pixel edges"):
        stack_multires({"aerial": aerial.isel(y=slice(1, 29)), "s2": s2})
    with pytest.raises(InputError, match=r"not whole series pixels.*slice\(0, 28\)"):
        stack_multires({"aerial": aerial.isel(y=slice(0, 30)), "s2": s2})
    with pytest.raises(InputError, match="beyond the series"):
        stack_multires({"aerial": aerial, "s2": s2.isel(y=slice(0, 4))})
    with pytest.raises(CRSError, match="EPSG:32633 and 's2' in EPSG:32634"):
        stack_multires({"aerial": aerial, "s2": s2.odc.assign_crs("EPSG:32634")})
    with pytest.raises(InputError, match="factor=5 but the grids give 4"):
        stack_multires({"aerial": aerial, "s2": s2}, factor=5)
    with pytest.raises(InputError, match=r"dims \('lat', 'lon'\).*dims y / x"):
        stack_multires({"aerial": aerial.rename(y="lat", x="lon"), "s2": s2})
    with pytest.raises(InputError, match="two sources.*got 1"):
        stack_multires({"aerial": aerial})
    with pytest.raises(InputError, match="cannot tell the series from the image"):
        stack_multires({"aerial": aerial, "s2": s2.isel(time=[0])})
    tree = eoai.stack_sources({"aerial": aerial, "s2": s2}, static=["aerial"])
    with pytest.raises(InputError, match="share one grid.*pass factor="):
        stack_multires(tree)
    with pytest.raises(InputError, match=r"not whole blocks of factor=3.*slice\(0, 30\)"):
        stack_multires(tree, factor=3)


@pytest.mark.slow  # trains the module's U-T&T (about 6 s of CPU)
def test_fit_reaches_miou_on_another_scene(utt, other):
    sources, truth = other
    assert isinstance(utt, MultiResSegmentationModel) and utt.architecture == "utt"
    assert utt.factor == 4 and utt.sources == ("aerial", "s2") and utt.tile_multiple == 8
    assert utt.image_features == ["aerial.red", "aerial.green", "aerial.blue", "aerial.nir"]
    assert utt.bands == ["s2.red", "s2.nir"] and len(utt.dates) == 13
    assert utt.class_names == ["early_crop", "late_crop", "building", "tree"]
    pred = eoai.ml.classify(utt.prepare(sources), utt)["class"].values
    iou = _miou(pred, truth["class"].values)
    # early / late crops look alike on the aerial image (random brightness per parcel): only the
    # series tells them apart; buildings and trees are only seen on the image
    # (measured 0.72 / 0.78 / 0.99 / 0.83 for seed 0, 0.80 / 0.83 / 0.98 / 0.85 for seed 1)
    assert min(iou[:2]) > 0.6 and min(iou[2:]) > 0.7 and np.mean(iou) > 0.75, iou


@pytest.mark.slow  # trains the module's U-T&T (about 6 s of CPU)
def test_tiled_lazy_equals_whole_image(utt, other):
    sources, _ = other
    assert utt.halo % utt.tile_multiple == 0 and utt.halo >= utt.net.receptive_field // 2
    whole = eoai.ml.classify(utt.prepare(sources), utt, probabilities=True)["probability"].values
    lazy = {k: v.chunk({"y": 96 // (4 if k == "s2" else 1), "x": 48}) for k, v in sources.items()}
    with raise_if_dask_computes():
        tree = utt.prepare(lazy)
        out = eoai.ml.classify(tree, utt, probabilities=True)
    assert out["probability"].chunks is not None
    np.testing.assert_allclose(out["probability"].values, whole, atol=2e-5)

    class ShortHalo(MultiResSegmentationModel):  # the check above can fail: too little overlap
        halo = 8

    short = ShortHalo.__new__(ShortHalo)
    short.__dict__.update(utt.__dict__)
    seams = eoai.ml.classify(tree, short, probabilities=True)["probability"].values
    assert np.abs(seams - whole).max() > 1e-3


@pytest.mark.slow  # trains the module's U-T&T (about 6 s of CPU)
def test_save_load_round_trip(utt, other, tmp_path):
    sources, _ = other
    path = eoai.ml.save_model(utt, tmp_path / "utt.pt")
    back = eoai.ml.load_model(path)
    assert isinstance(back, MultiResSegmentationModel) and back.halo == utt.halo
    assert back.net.config == utt.net.config and back.features == utt.features
    small = {"aerial": sources["aerial"].isel(y=slice(0, 128), x=slice(0, 128)),
             "s2": sources["s2"].isel(y=slice(0, 32), x=slice(0, 32))}  # fmt: skip
    a = eoai.ml.classify(utt.prepare(small), utt, probabilities=True)["probability"].values
    b = eoai.ml.classify(back.prepare(small), back, probabilities=True)["probability"].values
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # trains the module's U-T&T (about 6 s of CPU)
def test_classify_errors(utt, other):
    sources, _ = other
    with pytest.raises(InputError, match=r"model.prepare\("):
        eoai.ml.classify(sources, utt)
    with pytest.raises(ModelError, match="missing"):
        eoai.ml.classify(utt.prepare(sources)["aerial"].to_dataset(), utt)


def test_fit_errors():
    aerial, s2, truth = multires_scene((32, 32), factor=4, seed=1)
    src = {"aerial": aerial, "s2": s2}
    with pytest.raises(InputError, match="patch=20 must be a multiple of 8.*patch=16"):
        fit_segmentation(src, truth["class"], model="utt", patch=20, progress=False, **ARCH)
    with pytest.raises(InputError, match="the label raster is .*put the labels on the cube grid"):
        fit_segmentation(src, truth["class"].isel(y=slice(0, 8)), model="utt", progress=False)
    with pytest.raises(InputError, match="bad architecture parameters for utt"):
        fit_segmentation(src, truth["class"], model="utt", patch=16, n_layers=2, progress=False)
    with pytest.raises(InputError, match="features of both sources"):
        fit_segmentation(src, truth["class"], model="utt", features=["aerial.red"])
    with pytest.raises(ModelError, match="U-T&T is a patch model"):
        import pandas as pd

        table = pd.DataFrame({"red_2021-01-01": [0.1, 0.2], "label": [0, 1]})
        eoai.ml.deep.fit_network(table, "utt")
