"""change(): before/after composites, CVA, index differencing, Otsu / k-sigma thresholds."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from eoai.errors import DataSkippedWarning, InputError, TimeAxisError, UnknownBandError
from eoai.timeseries.change import _otsu_from_hist, change

BEFORE = ("2019-05-01", "2019-09-30")
AFTER = ("2021-05-01", "2021-09-30")


@pytest.fixture(scope="module")
def scene():
    from eoai.datasets.synthetic import synthetic_cube

    cube, truth = synthetic_cube(
        shape=(48, 48), start="2019-01-01", end="2021-12-31", freq="10D",
        classes=["forest", "grassland", "cropland"], breaks=5, cloud_fraction=0.2,
        noise=0.01, seed=11, parcel_size=80, bands=["red", "nir", "swir16", "swir22"],
    )  # fmt: skip
    bd = truth["break_date"].values
    changed = ~np.isnat(bd) & (bd > np.datetime64(BEFORE[1])) & (bd < np.datetime64(AFTER[0]))
    # breaks inside a period change its composite only partly: left out of the scores
    ambiguous = ~np.isnat(bd) & ~changed
    changed = np.where(ambiguous, -1, changed.astype(int))
    return cube, truth, changed


def _scores(mask, truth):
    keep = truth >= 0
    mask, truth = mask[keep], truth[keep] == 1
    tp = (mask & truth).sum()
    return tp / max(mask.sum(), 1), tp / max(truth.sum(), 1)


def test_cva_otsu_finds_the_clear_cuts(scene):
    cube, truth, changed = scene
    assert (changed == 1).sum() > 50
    out = change(cube, before=BEFORE, after=AFTER, method="cva", bands=["red", "nir"])
    precision, recall = _scores(out["change"].values == 1, changed)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    # clear-cut: red up, nir down -> direction in the 4th quadrant (angle from the red axis)
    d = out["direction"].values[(out["change"].values == 1) & (changed == 1)]
    assert ((d > 270) & (d < 360)).mean() >= 0.95
    # the composites are the medians of the valid observations in the periods
    sel = cube["red"].sel(time=slice(*BEFORE))
    np.testing.assert_allclose(
        out["before"].sel(feature="red").values, sel.median("time").values, rtol=1e-6
    )
    assert out.attrs["eoai:method"] == "change:cva"
    assert out.attrs["eoai:before"] == "2019-05-01/2019-09-30"
    assert "spatial_ref" in out.coords


def test_dnbr_difference_with_ksigma(scene):
    cube, truth, changed = scene
    out = change(cube, BEFORE, AFTER, method="difference", index="nbr", threshold="ksigma", k=2.0)
    diff = out["difference"].values
    assert np.nanmedian(diff[changed == 1]) < -0.5  # forest -> bare soil: NBR drops
    mag = np.abs(diff)
    want = np.nanmean(mag) + 2.0 * np.nanstd(mag)
    assert float(out["threshold"]) == pytest.approx(want, rel=1e-5)
    np.testing.assert_array_equal(out["change"].values, mag > want)
    precision, recall = _scores(out["change"].values == 1, changed)
    assert precision >= 0.9 and recall >= 0.8, (precision, recall)
    # dNDVI with a fixed threshold
    nd = change(cube, BEFORE, AFTER, method="difference", index="ndvi", threshold=0.3)
    assert float(nd["threshold"]) == 0.3
    np.testing.assert_array_equal(nd["change"].values, np.abs(nd["difference"].values) > 0.3)


def test_otsu_threshold_is_the_between_class_variance_maximum():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0.1, 0.03, 5000), rng.normal(0.6, 0.05, 1000)])
    hist, edges = np.histogram(x, bins=256, range=(x.min(), x.max()))
    thr = float(_otsu_from_hist(hist, edges))
    # brute force on the raw values: between-class variance of every cut
    xs = np.sort(x)
    cuts = np.linspace(xs[0], xs[-1], 2001)[1:-1]
    best = max(
        cuts,
        key=lambda c: (
            (xs <= c).mean() * (xs > c).mean() * (xs[xs <= c].mean() - xs[xs > c].mean()) ** 2
        ),
    )
    assert abs(thr - best) <= 2 * (edges[1] - edges[0])
    assert 0.15 < thr < 0.5


def test_lazy_and_numpy_dask_agree(scene, count_computes):
    cube, _, _ = scene
    lazy = cube.chunk({"time": 20, "y": 24, "x": 24})
    for kw in (
        dict(method="cva", bands=["red", "nir", "swir16"]),
        dict(method="difference", index="nbr", threshold="ksigma"),
    ):
        with count_computes() as c:
            out = change(lazy, BEFORE, AFTER, **kw)
            assert out["change"].chunks is not None and out["threshold"].chunks is not None
        assert c.count == 0
        xr.testing.assert_allclose(out.compute(), change(cube, BEFORE, AFTER, **kw))


def test_cva_sector_codes_for_three_bands():
    t = pd.date_range("2020-01-01", periods=4, freq="30D")
    v = np.ones((4, 1, 2))
    ds = xr.Dataset(
        {b: (("time", "y", "x"), v.copy()) for b in ("a", "b", "c")}, coords={"time": t}
    )
    ds["a"][2:, 0, 0] = 2.0  # only a increases at pixel 0
    ds["c"][2:, 0, 1] = 3.0  # only c increases at pixel 1
    out = change(ds, before=("2020-01-01", "2020-02-01"), after=("2020-03-01", "2020-05-01"))
    assert out["direction"].values.ravel().tolist() == [1, 4]
    np.testing.assert_allclose(out["magnitude"].values.ravel(), [1.0, 2.0])
    # partial date strings select whole periods
    out2 = change(ds, before="2020-01", after="2020-03")
    np.testing.assert_allclose(out2["magnitude"].values.ravel(), [1.0, 2.0])


def test_masks_and_class_maps_are_never_compared_as_bands():
    """Float masks and class maps (eo-learn's IS_VALID, a float class map with flag_values) are
    left out of the default features by the package's one table of masks (issue #14); a float
    IS_VALID that flips 1 -> 0 used to be a 'change' of magnitude 1."""
    t = pd.date_range("2020-01-01", periods=4, freq="30D")
    v = np.ones((4, 1, 2))
    ds = xr.Dataset(
        {b: (("time", "y", "x"), v.copy()) for b in ("red", "nir", "IS_VALID", "lulc")},
        coords={"time": t},
    )
    ds["IS_VALID"][2:] = 0.0
    ds["lulc"].attrs["flag_values"] = [1, 2]
    ds["lulc"][2:] = 2.0
    out = change(ds, before=("2020-01-01", "2020-02-01"), after=("2020-03-01", "2020-05-01"))
    assert out.attrs["eoai:features"] == "red,nir"
    np.testing.assert_array_equal(out["magnitude"].values.ravel(), [0.0, 0.0])


@pytest.mark.parametrize("chunks", [None, {"y": 2, "x": 2}])
@pytest.mark.parametrize("method", ["cva", "difference"])
def test_pixels_without_data_in_a_period_are_nodata_not_no_change(method, chunks):
    t = pd.date_range("2021-06-01", periods=6, freq="30D")
    red, nir = np.full((6, 4, 4), 0.05), np.full((6, 4, 4), 0.4)
    nir[3:, :2, :2] = 0.1  # a clear-cut: 4 changed pixels
    nir[:3, 3, 3] = np.nan  # no valid nir before
    red[3:, 3, 2] = np.nan  # no valid red after
    red[:3, 0, 3] = np.nan  # no data at all before
    nir[:3, 0, 3] = np.nan
    cube = xr.Dataset(
        {"red": (("time", "y", "x"), red), "nir": (("time", "y", "x"), nir)}, coords={"time": t}
    )
    if chunks:
        cube = cube.chunk(chunks)
    kw = {"index": "ndvi"} if method == "difference" else {}
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = change(cube, ("2021-06-01", "2021-08-01"), ("2021-08-02", "2022-01-01"),
                     method=method, threshold=0.05, **kw).compute()  # fmt: skip
    msgs = [str(w.message) for w in rec if issubclass(w.category, DataSkippedWarning)]
    assert len(msgs) == 1 and msgs[0].startswith(
        "change: 3 of 16 pixels have no valid observation of every feature in a period "
        "(2 in before, 1 in after)"
    ), msgs
    nodata = np.zeros((4, 4), bool)
    nodata[3, 3] = nodata[3, 2] = nodata[0, 3] = True
    chg = out["change"].values
    # was False (no change) before: now NaN in every derived output
    assert np.isnan(chg[nodata]).all() and np.isnan(out["magnitude"].values[nodata]).all()
    other = out["direction"] if method == "cva" else out["difference"]
    assert np.isnan(other.values[nodata]).all()
    assert chg.dtype == np.float32 and (chg[:2, :2] == 1).all() and (chg[~nodata].sum() == 4)


def test_errors(scene):
    cube, _, _ = scene
    with pytest.raises(InputError, match="method='x' is unknown"):
        change(cube, BEFORE, AFTER, method="x")
    with pytest.raises(InputError, match="threshold='mean' is unknown"):
        change(cube, BEFORE, AFTER, threshold="mean")
    with pytest.raises(TimeAxisError, match="no date of the cube falls in after"):
        change(cube, BEFORE, ("2030-01-01", "2030-12-31"))
    with pytest.raises(InputError, match="compares one band or index"):
        change(cube, BEFORE, AFTER, method="difference", bands=["red", "nir"])
    with pytest.raises(UnknownBandError, match="not in the cube"):
        change(cube, BEFORE, AFTER, bands=["B04"])
    with pytest.raises(InputError, match="not a date range"):
        change(cube, 2019, AFTER)
