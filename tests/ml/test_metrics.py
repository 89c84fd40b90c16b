"""assess / area_estimates: the worked example of Olofsson et al. (2014) and known small cases.

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014).
Good practices for estimating area and assessing accuracy of land change. Remote Sensing of
Environment 148, 42-57, section 5 (Table 8 and the estimates on p. 54): 30 m Landsat map of
10 000 000 pixels; strata deforestation, forest gain, stable forest, stable non-forest; a stratified
random sample of 640 pixels. The same example is reproduced in the R package mapaccuracy
(github.com/hagc/mapaccuracy, R/olofsson.R, "Example of table 8 in olofsson et al. (2014)").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import eoai.ml
from eoai.errors import InputError
from eoai.ml.metrics import area_estimates, scores_from_confusion

# Table 8: rows = map class, columns = reference class (sample counts)
OLOFSSON_COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
OLOFSSON_MAP_PIXELS = [200_000, 150_000, 3_200_000, 6_450_000]
CLASSES = ["deforestation", "forest_gain", "stable_forest", "stable_nonforest"]


@pytest.fixture(scope="module")
def olofsson():
    cm = pd.DataFrame(OLOFSSON_COUNTS, index=CLASSES, columns=CLASSES)
    return area_estimates(cm, OLOFSSON_MAP_PIXELS, pixel_area=0.09, area_unit="ha")


def test_olofsson_area_estimates(olofsson):
    t = olofsson.table
    # published (p. 54): 21,158 ± 6,158 ha; 11,686 ± 3,756; 285,770 ± 15,510; 581,386 ± 16,282
    np.testing.assert_allclose(t["area"], [21_158, 11_686, 285_770, 581_386], atol=0.5)
    np.testing.assert_allclose(t["area_ci"], [6_158, 3_756, 15_510, 16_282], atol=1.0)
    np.testing.assert_allclose(t["area_low"] + t["area_ci"], t["area"])


def test_olofsson_accuracies(olofsson):
    t = olofsson.table
    # published user's accuracies 0.88 ± 0.07, 0.73 ± 0.10, 0.93 ± 0.04, 0.96 ± 0.02
    np.testing.assert_allclose(t["users_accuracy"], [0.88, 0.73, 0.93, 0.96], atol=0.005)
    np.testing.assert_allclose(t["users_ci"], [0.07, 0.10, 0.04, 0.02], atol=0.005)
    # published producer's accuracies 0.75 ± 0.21, 0.85 ± 0.23, 0.93 ± 0.03, 0.96 ± 0.01
    np.testing.assert_allclose(t["producers_accuracy"], [0.75, 0.85, 0.93, 0.96], atol=0.005)
    np.testing.assert_allclose(t["producers_ci"].iloc[[0, 2]], [0.21, 0.03], atol=0.005)
    # eq. 7 gives 0.254 and 0.018 for the other two; the paper prints 0.23 and 0.01 (its rounding
    # / typesetting: mapaccuracy and other implementations of eq. 7 also give 0.254 and 0.018)
    np.testing.assert_allclose(t["producers_ci"].iloc[[1, 3]], [0.254, 0.018], atol=0.001)
    # overall accuracy 0.95 ± 0.02
    assert olofsson.overall_accuracy == pytest.approx(0.9465, abs=1e-4)
    assert olofsson.overall_ci == pytest.approx(0.0185, abs=1e-4)
    # the estimated area proportions sum to one and the p_ij matrix to one
    assert t["area_proportion"].sum() == pytest.approx(1.0)
    assert olofsson.proportions.to_numpy().sum() == pytest.approx(1.0)


def test_assess_from_labels_with_map_areas():
    m = np.repeat(np.arange(4), [75, 75, 165, 325])
    r = np.concatenate(
        [np.repeat(np.arange(4), row) for row in OLOFSSON_COUNTS]
    )  # reference labels of each stratum, in order
    a = eoai.ml.assess(m, r, map_areas=dict(enumerate(OLOFSSON_MAP_PIXELS)))
    np.testing.assert_array_equal(a.confusion.to_numpy(), OLOFSSON_COUNTS)
    assert a.overall_accuracy == pytest.approx((66 + 55 + 153 + 313) / 640)
    assert a.area.table["area"].iloc[0] == pytest.approx(21_158 / 0.09, rel=1e-4)


def test_kappa_and_f1_known_values():
    cm = pd.DataFrame([[50, 10], [5, 35]], index=[1, 2], columns=[1, 2])
    oa, kappa, per = scores_from_confusion(cm)
    assert oa == pytest.approx(0.85)
    pe = (60 * 55 + 40 * 45) / 100**2
    assert kappa == pytest.approx((0.85 - pe) / (1 - pe))
    assert per.loc[1, "precision"] == pytest.approx(50 / 60)
    assert per.loc[1, "recall"] == pytest.approx(50 / 55)
    p, r = 50 / 60, 50 / 55
    assert per.loc[1, "f1"] == pytest.approx(2 * p * r / (p + r))


def _grid_map(values, nodata=255):
    import odc.geo.xr  # noqa: F401
    from odc.geo.geobox import GeoBox

    gbox = GeoBox.from_bbox(
        (500000, 5000000, 500000 + 10 * values.shape[1], 5000000 + 10 * values.shape[0]),
        "EPSG:32633",
        resolution=10,
    )
    da = odc.geo.xr.xr_zeros(gbox, dtype="uint8").copy(data=values.astype("uint8"))
    da.attrs.update(flag_values=[1, 2], class_names=["crop", "forest"], nodata=nodata)
    return da


def test_assess_raster_reference_and_map_areas():
    cls = np.ones((10, 10), dtype="uint8")
    cls[:, 6:] = 2
    cls[0, 0] = 255  # nodata in the map: not counted
    ref = np.ones((10, 10), dtype="uint16")
    ref[:, 5:] = 2
    ref[9, 9] = 0  # reference no data
    class_map = _grid_map(cls)
    reference = xr.DataArray(
        ref,
        dims=("y", "x"),
        coords=class_map.coords,
        attrs={"flag_values": [0, 1, 2], "flag_meanings": "no_data crop forest"},
    )
    a = eoai.ml.assess(class_map.chunk(5), reference)
    # map 1 / ref 1: 50 - 1 (nodata) ; map 1 / ref 2: 10 ; map 2 / ref 2: 39 (one ref no data)
    np.testing.assert_array_equal(a.confusion.to_numpy(), [[49, 10], [0, 39]])
    assert a.class_names == {1: "crop", 2: "forest"}
    # mapped areas counted from the map: 59 and 40 pixels of 100 m2 = 0.59 and 0.40 ha
    np.testing.assert_allclose(a.area.table["map_area"], [0.59, 0.40])
    assert a.overall_accuracy == pytest.approx(88 / 98)


def test_assess_with_reference_points():
    import geopandas as gpd

    cls = np.ones((10, 10), dtype="uint8")
    cls[:, 5:] = 2
    class_map = _grid_map(cls)
    pts = gpd.GeoDataFrame(
        {"class": [1, 1, 2, 2, 1]},
        geometry=gpd.points_from_xy([500005, 500015, 500085, 500095, 500075], [5000005] * 5),
        crs="EPSG:32633",
    )
    a = eoai.ml.assess(class_map, pts, label="class")
    np.testing.assert_array_equal(a.confusion.to_numpy(), [[2, 0], [1, 2]])
    assert a.overall_accuracy == pytest.approx(0.8)
    np.testing.assert_allclose(a.area.table["map_area"], [0.5, 0.5])


def test_plot_confusion_matrix_values():
    import matplotlib

    matplotlib.use("Agg")
    a = eoai.ml.assess([1, 1, 2, 2, 2], [1, 2, 2, 2, 2])
    ax = eoai.ml.plot_confusion_matrix(a, normalize="reference")
    img = ax.get_images()[0].get_array()
    np.testing.assert_allclose(img, [[1.0, 1 / 4], [0.0, 3 / 4]])
    assert [t.get_text() for t in ax.texts] == ["1.00", "0.25", "0.00", "0.75"]
    with pytest.raises(InputError, match="normalize"):
        eoai.ml.plot_confusion_matrix(a, normalize="rows")


def test_errors():
    with pytest.raises(InputError, match="square"):
        area_estimates([[1, 2, 3]], [1])
    with pytest.raises(InputError, match="2 map areas for 3 classes"):
        area_estimates(np.eye(3), [1, 2])
    with pytest.raises(InputError, match="3 map labels but 2 reference"):
        eoai.ml.assess([1, 2, 1], [1, 2])


def test_assess_reference_labelled_by_class_name():
    """Polygons labelled with the class *names* the model was trained on are matched to map codes."""
    import geopandas as gpd

    cls = np.ones((10, 10), dtype="uint8")
    cls[:, 5:] = 2
    class_map = _grid_map(cls)
    xs, ys = [500005, 500015, 500085, 500095, 500075, 500045], [5000005] * 6
    named = gpd.GeoDataFrame(
        {"class": ["crop", "crop", "forest", "forest", "crop", "wetland"]},
        geometry=gpd.points_from_xy(xs, ys), crs="EPSG:32633",
    )  # fmt: skip
    with pytest.warns(eoai.errors.DataSkippedWarning, match="1 samples"):
        a = eoai.ml.assess(class_map, named, label="class")
    np.testing.assert_array_equal(a.confusion.to_numpy(), [[2, 0], [1, 2]])
    assert a.overall_accuracy == pytest.approx(0.8)
    none_match = named.assign(**{"class": ["a", "b", "a", "b", "a", "b"]})
    with pytest.raises(eoai.errors.InputError, match="match none of the class map's class names"):
        eoai.ml.assess(class_map, none_match, label="class")
