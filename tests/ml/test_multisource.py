"""Several sources in the ML chain: feature names ``<source>.<band>_<date>``, extract -> fit ->
classify on a DataTree of sources (each with its own dates) with known truth, laziness, and the
errors of a model trained on other sources or channels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio.features
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.xr import wrap_xr

import eoai
import eoai.ml
from eoai.errors import InputError, ModelError
from eoai.io.stack import stack_sources
from eoai.ml.features import feature_array, feature_names, flatten_sources
from eoai.testing import raise_if_dask_computes

S1_DATES = pd.to_datetime(["2021-04-03", "2021-05-21", "2021-07-08"])


def _parcels(truth_class, gbox):
    """The connected regions of the truth class map as labelled polygons (one per parcel)."""
    import geopandas as gpd
    from shapely.geometry import shape

    values = np.asarray(truth_class.values, dtype="int32")
    shapes = list(rasterio.features.shapes(values, transform=gbox.affine, connectivity=4))
    return gpd.GeoDataFrame(
        {"class": [int(v) for _, v in shapes], "parcel": np.arange(len(shapes))},
        geometry=[shape(geom) for geom, _ in shapes],
        crs=gbox.crs.to_wkt(),
    )


@pytest.fixture(scope="module")
def two_sources():
    """(tree, truth, parcels): S2-like (7 dates, 10 m) + S1-like (3 other dates, dB, grid shifted
    by half a pixel) of the same scene; backscatter per class + gamma speckle (ENL 4.4)."""
    chunks = {"time": -1, "y": 24, "x": 24}
    s2, truth = eoai.datasets.synthetic_cube(
        shape=(48, 48), start="2021-04-01", end="2021-09-30", freq="30D", bands=["red", "nir"],
        breaks=False, seed=3, parcel_size=60, chunks=chunks,
    )  # fmt: skip
    s2 = s2.drop_vars("scl")
    g = s2.odc.geobox
    g1 = GeoBox((48, 48), g.affine @ Affine.translation(0.5, -0.5), g.crs)
    rng = np.random.default_rng(0)
    cls = truth["class"].values
    means = {"vv": rng.uniform(-20, -5, cls.max() + 1), "vh": rng.uniform(-28, -12, cls.max() + 1)}

    def sar(m):
        speckle = rng.gamma(4.4, 1 / 4.4, size=(len(S1_DATES), *cls.shape))
        db = (10 * np.log10(10 ** (m[cls] / 10) * speckle)).astype("float32")
        return wrap_xr(db, g1, time=S1_DATES).assign_attrs(units="dB")

    s1 = xr.Dataset({k: sar(m) for k, m in means.items()}).chunk(chunks)
    tree = stack_sources({"s2": s2, "s1": s1}, like=g)
    parcels = _parcels(truth["class"], g)
    return tree, truth, parcels


def test_feature_names_contract():
    t2 = pd.to_datetime(["2020-06-04", "2020-08-13"])
    t1 = pd.to_datetime(["2020-06-07", "2020-09-03"])

    def src(bands, t):
        return xr.Dataset({b: (("time", "y", "x"), np.zeros((len(t), 2, 2))) for b in bands},
                          coords={"time": t})  # fmt: skip

    dem = xr.Dataset({"elevation": (("y", "x"), np.ones((2, 2)))})
    tree = xr.DataTree.from_dict({"s2": src(["red", "nir"], t2), "s1": src(["vv"], t1), "dem": dem})
    assert feature_names(tree) == [
        "s2.red_2020-06-04", "s2.red_2020-08-13", "s2.nir_2020-06-04", "s2.nir_2020-08-13",
        "s1.vv_2020-06-07", "s1.vv_2020-09-03", "dem.elevation",
    ]  # fmt: skip
    # one Dataset with source-prefixed variables on one time axis: the same names
    one = src(["s2.red", "s1.vv"], t2)
    assert feature_names(one) == [
        "s2.red_2020-06-04", "s2.red_2020-08-13", "s1.vv_2020-06-04", "s1.vv_2020-08-13",
    ]  # fmt: skip
    flat = flatten_sources(tree)
    assert (
        flat["s1.vv"].dims == ("time_s1", "y", "x") and flat["s1.vv"].attrs["eoai:source"] == "s1"
    )
    arr = feature_array(tree, ["s1.vv_2020-09-03", "dem.elevation"])
    assert arr.dims == ("y", "x", "feature") and arr.values[..., 1].tolist() == [[1, 1], [1, 1]]
    other_grid = xr.DataTree.from_dict({"a": src(["red"], t2), "b": src(["vv"], t1).isel(x=[0])})
    with pytest.raises(InputError, match="not on one grid.*stack_sources"):
        feature_names(other_grid)


def test_extract_fit_classify_on_a_tree_of_sources(two_sources):
    tree, truth, parcels = two_sources
    train, test = parcels[parcels.parcel % 2 == 0], parcels[parcels.parcel % 2 == 1]
    samples = eoai.ml.extract(tree, train, label="class", min_samples=1, max_per_polygon=20)
    names = [c for c in samples.columns if c not in ("label", "group", "x", "y")]
    assert names == feature_names(tree) and len(names) == 2 * 7 + 2 * 3
    assert names[14:17] == ["s1.vv_2021-04-03", "s1.vv_2021-05-21", "s1.vv_2021-07-08"]
    assert samples.attrs["eoai:cube"]["sources"]["s1"][0].startswith("2021-04-03")
    model = eoai.ml.fit(samples, n_estimators=20, threads=1, seed=0)
    with raise_if_dask_computes():
        out = eoai.ml.classify(tree, model, threads=1)
    assert out["class"].chunks is not None and out["class"].shape == (48, 48)
    g = tree.to_dataset().odc.geobox
    held_out = rasterio.features.rasterize(
        [(geom, 1) for geom in test.geometry], out_shape=g.shape, transform=g.affine, fill=0
    ).astype(bool)
    assert held_out.sum() > 500
    cls = truth["class"].values

    def accuracy(classes):
        return float((classes.values[held_out] == cls[held_out]).mean())

    acc = accuracy(out["class"])
    # each source alone is worse (measured: S2 0.85, S1 0.86 against 0.94 for both)
    alone = {}
    for src in ("s2", "s1"):
        feats = [f for f in feature_names(tree) if f.startswith(f"{src}.")]
        m = eoai.ml.fit(samples, features=feats, n_estimators=20, threads=1, seed=0)
        alone[src] = accuracy(eoai.ml.classify(tree, m, threads=1, uncertainty=None)["class"])
    assert acc >= 0.9, acc
    assert acc > max(alone.values()) + 0.04, (acc, alone)


def test_model_of_other_sources_or_channels(two_sources):
    tree, truth, parcels = two_sources
    samples = eoai.ml.extract(tree, parcels, label="class", min_samples=1, max_per_polygon=5)
    model = eoai.ml.fit(samples, n_estimators=5, threads=1, seed=0)
    s2_only = xr.DataTree.from_dict(
        {"/": tree.to_dataset(inherit=False), "s2": tree["s2"].to_dataset(inherit=False)}
    )
    with pytest.raises(
        ModelError, match=r"lacks 6 of the model's 20 features.*sources missing: s1"
    ):
        eoai.ml.classify(s2_only, model)
    no_vh = tree.copy()
    no_vh["s1"] = tree["s1"].to_dataset(inherit=False).drop_vars("vh")
    with pytest.raises(ModelError, match=r"s1\.vh_2021-04-03.*variables missing: s1\.vh"):
        eoai.ml.classify(no_vh, model)
    with pytest.raises(ModelError, match=r"sources missing: s2, s1.*eoai\.stack_sources"):
        eoai.ml.classify(tree["s2"].to_dataset(), model)  # a single-source cube


def test_extract_with_a_variable_named_like_another_plus_suffix():
    """``ndvi`` and ``ndvi_max``: each variable's columns are its own (a prefix match took the
    other's names too and failed)."""
    import geopandas as gpd
    from odc.geo.xr import xr_zeros
    from shapely.geometry import box

    gbox = GeoBox.from_bbox((500000, 5000000, 500040, 5000040), "EPSG:32633", resolution=10)
    t = pd.to_datetime(["2021-05-01", "2021-07-01"])
    base = xr_zeros(gbox, dtype="float32").expand_dims(time=t)
    cube = xr.Dataset({"ndvi": base + 0.5, "ndvi_max": base + 0.9})
    labels = gpd.GeoDataFrame({"class": [1]}, geometry=[box(500000, 5000000, 500020, 5000020)],
                              crs=32633)  # fmt: skip
    df = eoai.ml.extract(cube, labels, min_samples=1)
    assert list(df.columns[:4]) == [
        "ndvi_2021-05-01", "ndvi_2021-07-01", "ndvi_max_2021-05-01", "ndvi_max_2021-07-01",
    ]  # fmt: skip
    assert df["ndvi_2021-07-01"].eq(0.5).all() and df["ndvi_max_2021-05-01"].eq(0.9).all()
