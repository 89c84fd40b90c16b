"""U-Net patch segmentation: accuracy on a synthetic scene, tiled inference without seams."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from eoai_testing import assert_model_enters_once

torch = pytest.importorskip("torch")

import eoai.datasets  # noqa: E402
import eoai.ml  # noqa: E402
from eoai.errors import InputError, ModelError  # noqa: E402
from eoai.ml.deep import SegmentationModel, fit_segmentation  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scene():
    """96 x 96 px, 13 monthly dates, red/nir/swir16 (39 channels), labels on the left 2/3 only."""
    cube, truth = eoai.datasets.synthetic_cube(
        shape=(96, 96), freq="30D", breaks=False, seed=5, parcel_size=80, cloud_fraction=0.0,
        bands=["red", "nir", "swir16"],
    )  # fmt: skip
    cube = cube.drop_vars("scl")
    labels = truth["class"].copy()
    labels[:, 64:] = -1
    labels.attrs["nodata"] = -1
    return cube, truth, labels


@pytest.fixture(scope="module")
def unet(scene):
    cube, _, labels = scene
    return fit_segmentation(
        cube, labels, patch=32, patches_per_epoch=32, epochs=30, batch_size=8, lr=3e-3,
        depth=2, base=16, progress=False,
    )  # fmt: skip


def test_unet_miou_on_unlabelled_part(scene, unet):
    cube, truth, _ = scene
    assert isinstance(unet, SegmentationModel)
    assert unet.class_names == truth.attrs["class_names"]  # names from the label raster attrs
    out = eoai.ml.classify(cube.chunk({"time": -1, "y": 48, "x": 48}), unet)
    right = dict(x=slice(64, None))
    acc = eoai.ml.assess(out["class"].isel(right), truth["class"].isel(right))
    cm = acc.confusion.to_numpy().astype(float)
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    assert cm.sum() == 96 * 32 and len(iou) == 6
    assert iou.mean() >= 0.8, (iou, acc.confusion)


def test_tiled_equals_whole_image_no_seams(scene, unet):
    cube, _, _ = scene
    m = unet.tile_multiple
    assert m == 4 and unet.halo % m == 0 and unet.halo >= unet.net.receptive_field // 2
    whole = eoai.ml.classify(cube, unet, probabilities=True)["probability"].values
    tiled = eoai.ml.classify(
        cube.chunk({"time": -1, "y": 32, "x": 32}), unet, probabilities=True
    )["probability"].values  # fmt: skip
    np.testing.assert_allclose(tiled, whole, atol=2e-5)
    # the plain network on the whole image (zero padding at the border) agrees away from it
    feats = eoai.ml.features.feature_array(cube, unet.features).values
    x = np.nan_to_num((feats - unet.mean) / unet.std).transpose(2, 0, 1)[None]
    with torch.no_grad():
        ref = torch.softmax(unet.net(torch.from_numpy(np.ascontiguousarray(x))), 1)[0].numpy()
    h = unet.halo
    np.testing.assert_allclose(tiled[:, h:-h, h:-h], ref[:, h:-h, h:-h], atol=2e-5)
    assert np.abs(tiled - ref).max() > 1e-3  # ... and differs at the border (reflect padding)


def test_the_unet_enters_the_graph_once(scene, unet):
    """Spatial (map_overlap) inference over 4 or 64 tiles: one key holds the U-Net."""
    cube, _, _ = scene
    big = xr.concat([xr.concat([cube] * 3, "x")] * 3, "y")  # 288 x 288: 8 tiles of 36 >= halo
    big = big.assign_coords(y=np.arange(288.0)[::-1] * 10, x=np.arange(288.0) * 10)
    assert unet.halo <= 36
    cubes = [big.chunk({"time": -1, "y": c, "x": c}) for c in (144, 36)]
    few, many = (eoai.ml.classify(c, unet, probabilities=True) for c in cubes)
    assert few["class"].data.npartitions == 4 and many["class"].data.npartitions == 64
    assert_model_enters_once(few["class"], many["class"], unet, inputs=cubes)
    whole = eoai.ml.classify(big, unet, probabilities=True)["probability"].values
    np.testing.assert_allclose(many["probability"].values, whole, atol=2e-5)


def test_a_short_halo_shows_seams(scene, unet):
    """The test above can fail: without enough overlap, tile edges show up."""
    cube, _, _ = scene

    class ShortHalo(SegmentationModel):
        halo = 4

    short = ShortHalo.__new__(ShortHalo)
    short.__dict__.update(unet.__dict__)
    whole = eoai.ml.classify(cube, unet, probabilities=True)["probability"].values
    tiled = eoai.ml.classify(
        cube.chunk({"time": -1, "y": 32, "x": 32}), short, probabilities=True
    )["probability"].values  # fmt: skip
    diff = np.abs(tiled - whole).max(axis=0)
    assert diff[:, 30:34].max() > 1e-3  # at the tile edge x = 32
    assert diff[:, 12:20].max() < diff[:, 30:34].max()


def test_segmentation_from_polygons_and_errors(scene):
    cube, truth, _ = scene
    import geopandas as gpd
    import rasterio.features
    from shapely.geometry import shape

    from eoai.ml._deep_segment import _label_raster

    gbox = cube.odc.geobox
    values = truth["class"].values.astype("int32")
    shapes = list(rasterio.features.shapes(values, transform=gbox.affine))
    parcels = gpd.GeoDataFrame(
        {"class": [int(v) for _, v in shapes]}, geometry=[shape(g) for g, _ in shapes],
        crs=gbox.crs.to_wkt(),
    )  # fmt: skip
    arr, _ = _label_raster(cube, parcels, "class", None)
    np.testing.assert_array_equal(arr.astype(int), truth["class"].values)
    with pytest.raises(InputError, match="no labelled pixel"):
        fit_segmentation(cube, truth["class"] * 0 - 1, nodata=-1, progress=False)
    with pytest.raises(InputError, match="patch must be >= 8"):
        fit_segmentation(cube, truth["class"], patch=4)
    with pytest.raises(ModelError, match="pixel series"):
        fit_segmentation(cube, truth["class"], model="ltae", epochs=1, progress=False)
    with pytest.raises(InputError, match="on the cube grid"):
        fit_segmentation(cube, truth["class"].isel(x=slice(0, 10)), epochs=1, progress=False)


def test_unet_rejects_pixel_rows(unet):
    with pytest.raises(ModelError, match="segments images"):
        unet.predict_proba(np.zeros((3, len(unet.features)), "float32"))


def test_custom_patch_module_needs_a_halo(scene):
    cube, truth, labels = scene

    class Pixelwise(torch.nn.Module):  # 1x1 convolutions: receptive field 1 px
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(39, 6, 1)  # 3 bands x 13 dates

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(ModelError, match="no receptive_field attribute: pass halo="):
        fit_segmentation(cube, labels, model=Pixelwise(), epochs=1, progress=False)
    m = fit_segmentation(cube, labels, model=Pixelwise(), halo=2, epochs=1, patch=16,
                         progress=False)  # fmt: skip
    assert m.halo == 2 and m.architecture == "custom"
    tiled = eoai.ml.classify(cube.chunk({"time": -1, "y": 32, "x": 32}), m, probabilities=True)
    whole = eoai.ml.classify(cube, m, probabilities=True)
    np.testing.assert_allclose(tiled["probability"].values, whole["probability"].values, atol=1e-5)
