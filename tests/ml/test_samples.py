"""extract: exact pixel counts under polygons, points from CSV, groups, chunks read, errors and warnings."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from shapely.geometry import Point, Polygon, box

import eoai.ml
from eoai.errors import CRSError, DataSkippedWarning, FewSamplesWarning, InputError, NoOverlapError


@pytest.fixture
def grid():
    import odc.geo.xr  # noqa: F401
    from odc.geo.geobox import GeoBox

    gbox = GeoBox.from_bbox(
        (500000, 5000000, 500200, 5000100), "EPSG:32633", resolution=10
    )  # 20 x 10
    t = pd.to_datetime(["2021-05-01", "2021-07-01"])
    base = odc.geo.xr.xr_zeros(gbox, dtype="float32")
    row, col = np.meshgrid(np.arange(10), np.arange(20), indexing="ij")
    val = (row * 100 + col).astype("float32")
    cube = xr.Dataset(
        {
            "red": (("time", "y", "x"), np.stack([val, val + 0.5])),
            "dem": (("y", "x"), val * 2),
        },
        coords={"time": t, **{k: v for k, v in base.coords.items()}},
    )
    return cube


def test_polygons_exact_pixels_and_values(grid):
    # two boxes aligned on the grid: 3 x 2 and 2 x 2 pixels
    labels = gpd.GeoDataFrame(
        {"class": ["crop", "forest"], "field": [7, 9]},
        geometry=[box(500000, 5000080, 500030, 5000100), box(500100, 5000000, 500120, 5000020)],
        crs="EPSG:32633",
    )
    with pytest.warns(FewSamplesWarning, match="class .crop.: 6 pixels in 1 polygon"):
        df = eoai.ml.extract(grid, labels, group="field")
    assert list(df.columns) == [
        "red_2021-05-01",
        "red_2021-07-01",
        "dem",
        "label",
        "group",
        "x",
        "y",
    ]
    assert df.groupby("label").size().to_dict() == {"crop": 6, "forest": 4}
    assert df.groupby("label")["group"].first().to_dict() == {"crop": 7, "forest": 9}
    # the value encodes row*100 + col: top-left box = rows 0-1, cols 0-2
    crop = df[df.label == "crop"]
    assert sorted(crop["red_2021-05-01"]) == [0, 1, 2, 100, 101, 102]
    np.testing.assert_array_equal(crop["red_2021-07-01"], crop["red_2021-05-01"] + 0.5)
    np.testing.assert_array_equal(crop["dem"], crop["red_2021-05-01"] * 2)
    forest = df[df.label == "forest"]
    assert sorted(forest["red_2021-05-01"]) == [810, 811, 910, 911]
    # pixel centres
    assert sorted(set(crop["x"])) == [500005.0, 500015.0, 500025.0]
    assert df.attrs["eoai:features"] == ["red_2021-05-01", "red_2021-07-01", "dem"]
    assert df.attrs["eoai:cube"]["dates"][0].startswith("2021-05-01")


def test_reprojected_points_from_csv(grid, tmp_path):
    from pyproj import Transformer

    to_ll = Transformer.from_crs(32633, 4326, always_xy=True)
    xs, ys = [500055.0, 500195.0, 499000.0], [5000095.0, 5000005.0, 5000050.0]
    lon, lat = to_ll.transform(xs, ys)
    path = tmp_path / "pts.csv"
    pd.DataFrame({"lon": lon, "lat": lat, "class": [1, 2, 1]}).to_csv(path, index=False)
    with pytest.warns(DataSkippedWarning, match="1 of 3 labels cover no pixel"):
        df = eoai.ml.extract(grid, path, min_samples=1)
    # (500055, 5000095) -> row 0, col 5 ; (500195, 5000005) -> row 9, col 19
    assert df["red_2021-05-01"].tolist() == [5.0, 919.0]
    assert df["group"].tolist() == [0, 1]


def test_max_per_polygon_is_seeded(grid):
    labels = gpd.GeoDataFrame(
        {"class": [1, 2]},
        geometry=[box(500000, 5000000, 500100, 5000100), box(500100, 5000000, 500200, 5000100)],
        crs=32633,
    )
    a = eoai.ml.extract(grid, labels, max_per_polygon=7, seed=1)
    b = eoai.ml.extract(grid, labels, max_per_polygon=7, seed=1)
    assert a.groupby("group").size().tolist() == [7, 7]
    pd.testing.assert_frame_equal(a, b)
    c = eoai.ml.extract(grid, labels, max_per_polygon=7, seed=2)
    assert not np.array_equal(a["dem"], c["dem"])


def test_reads_only_the_chunks_under_the_labels(grid):
    # a dask cube whose chunks raise when read, except the top-left one
    def block(block_info=None):
        loc = block_info[None]["chunk-location"]
        if loc != (0, 0, 0):
            raise RuntimeError(f"chunk {loc} should not be read")
        return np.ones(block_info[None]["chunk-shape"], dtype="float32")

    arr = da.map_blocks(block, chunks=((2,), (5, 5), (10, 10)), dtype="float32")
    cube = grid[["red"]].copy()
    cube["red"] = (("time", "y", "x"), arr)
    labels = gpd.GeoDataFrame(
        {"class": [1]}, geometry=[box(500000, 5000060, 500040, 5000100)], crs=32633
    )
    with pytest.warns(FewSamplesWarning):
        df = eoai.ml.extract(cube, labels)
    assert len(df) == 16 and (df["red_2021-05-01"] == 1).all()


def test_errors_and_warnings(grid):
    poly = box(500000, 5000000, 500050, 5000050)
    with pytest.raises(CRSError, match="the labels have no CRS"):
        eoai.ml.extract(grid, gpd.GeoDataFrame({"class": [1]}, geometry=[poly]))
    with pytest.raises(InputError, match="no column 'kind'"):
        eoai.ml.extract(
            grid, gpd.GeoDataFrame({"class": [1]}, geometry=[poly], crs=32633), label="kind"
        )
    far = gpd.GeoDataFrame({"class": [1]}, geometry=[box(0, 0, 10, 10)], crs=32633)
    with pytest.raises(NoOverlapError, match="none of the 1 labels falls on the cube"):
        eoai.ml.extract(grid, far)
    nocrs = xr.Dataset(
        {"dem": (("y", "x"), grid["dem"].values)}, coords={"y": grid.y.values, "x": grid.x.values}
    )
    with pytest.raises(CRSError, match="the cube has no CRS"):
        eoai.ml.extract(nocrs, far)
    bowtie = Polygon([(500000, 5000000), (500050, 5000050), (500050, 5000000), (500000, 5000050)])
    mixed = gpd.GeoDataFrame(
        {"class": [1, 2, 2, None]},
        geometry=[Polygon(), bowtie, box(500100, 5000000, 500200, 5000100), Point(500005, 5000005)],
        crs=32633,
    )
    with pytest.warns(DataSkippedWarning) as rec:
        df = eoai.ml.extract(grid, mixed, min_samples=1)
    messages = [str(w.message) for w in rec]
    assert any("1 label geometries have no 'class' value" in m for m in messages)
    assert any("1 of 3 label geometries are empty or missing" in m for m in messages)
    assert df.groupby("label").size()[2] > 100  # the repaired bow-tie and the box


def test_all_nan_samples_are_dropped_with_count(grid):
    holed = grid.where(grid.x > 500050)
    labels = gpd.GeoDataFrame(
        {"class": [1, 2]},
        geometry=[box(500000, 5000000, 500100, 5000100), box(500100, 5000000, 500200, 5000100)],
        crs=32633,
    )
    with pytest.warns(DataSkippedWarning, match="50 of 200 sampled pixels have no valid value"):
        df = eoai.ml.extract(holed, labels)
    assert len(df) == 150


def test_feature_subset_and_missing_feature(grid):
    labels = gpd.GeoDataFrame(
        {"class": [1, 2]},
        geometry=[box(500000, 5000000, 500100, 5000100), box(500100, 5000000, 500200, 5000100)],
        crs=32633,
    )
    df = eoai.ml.extract(grid, labels, features=["dem"])
    assert list(df.columns) == ["dem", "label", "group", "x", "y"]
    from eoai.errors import ModelError

    with pytest.raises(ModelError, match="dates missing: 2022-01-01"):
        eoai.ml.extract(grid, labels, features=["red_2022-01-01"])
