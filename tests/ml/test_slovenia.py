"""Real data: the eo-learn Slovenia patch (68 dates of NDVI with real clouds, LULC polygons).

Cloudy observations (CLM = 1) are NaN: the random forest handles them (scikit-learn >= 1.4). Accuracy
is measured by 5-fold cross-validation grouped by polygon (a polygon never in training and test).
Measured (n_estimators=100, max_per_polygon=300, seed 0): OA 0.75, kappa 0.59; the bounds below
leave a margin for other scikit-learn versions but fail on a broken pipeline (e.g. shuffled
features or labels give OA ~0.3 / kappa ~0).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import eoai.ml
from eoai.errors import DataSkippedWarning

NAMES = {1: "cultivated land", 2: "forest", 3: "grassland", 4: "shrubland", 8: "artificial surface"}


@pytest.fixture(scope="module")
def slovenia(shared_data):
    pytest.importorskip("geopandas")
    import geopandas as gpd

    folder = shared_data / "eolearn_slovenia"
    ds = xr.open_dataset(folder / "eolearn_testpatch.nc")
    ndvi = ds["NDVI"].where(ds["CLM"] == 0).rename(time_all="time").rename("ndvi")
    labels = gpd.read_file(folder / "LULC_polygons.gpkg")
    return ds, ndvi.chunk({"time": -1, "y": 64, "x": 64}), labels[labels["LULC_ID"] > 0]


def test_slovenia_grouped_cross_validation(slovenia):
    ds, ndvi, labels = slovenia
    with pytest.warns(DataSkippedWarning, match="6 of 84 labels cover no pixel"):
        samples = ndvi.eoai.extract(labels, label="LULC_ID", max_per_polygon=300)
    assert samples.filter(like="ndvi_").isna().to_numpy().mean() > 0.3  # real clouds kept as NaN
    cv = eoai.ml.cross_validate(samples, k=5, n_estimators=100, threads=2, class_names=NAMES)
    pred = cv.extra["predictions"]
    assert (pred.groupby("group")["fold"].nunique() == 1).all()
    assert cv.overall_accuracy >= 0.70, cv
    assert cv.kappa >= 0.50, cv
    assert cv.f1[2] >= 0.75 and cv.f1[3] >= 0.75, cv  # forest, grassland


def test_slovenia_classify_tile_against_lulc_raster(slovenia):
    ds, ndvi, labels = slovenia
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSkippedWarning)
        samples = ndvi.eoai.extract(labels, label="LULC_ID", max_per_polygon=300)
    model = eoai.ml.fit(samples, n_estimators=60, threads=2, class_names=NAMES)
    out = ndvi.eoai.classify(model, probabilities=True)
    assert hasattr(out["class"].data, "dask")
    assert out.odc.crs.epsg == 32633
    result = eoai.ml.assess(out["class"], ds["LULC"])  # LULC 0 = no data (flag_meanings)
    assert result.confusion.to_numpy().sum() == int((ds["LULC"] > 0).sum())
    assert result.overall_accuracy >= 0.75  # training polygons included: a resubstitution check
    assert set(result.class_names.values()) == set(NAMES.values())
    # every pixel has clear dates, so no pixel is nodata
    assert not (out["class"] == 255).any()
    np.testing.assert_allclose(out["probability"].sum("class_name"), 1, atol=1e-5)
