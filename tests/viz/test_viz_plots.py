"""HoloViews plots: the values drawn are the data's, errors say what to fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from eoai.errors import InputError, MissingDimensionError, NoOverlapError, UnknownBandError
from eoai.viz.plots import plot_confusion_matrix, plot_phenology, plot_series, quicklook


def test_plot_series_values_are_the_pixels(sample_ndvi):
    filled = sample_ndvi.fillna(0.5)  # stands in for a gap-filled series
    x0, y0 = float(sample_ndvi.x[5]), float(sample_ndvi.y[7])
    x1, y1 = float(sample_ndvi.x[80]), float(sample_ndvi.y[90])
    plot = plot_series(filled, {"a": (x0, y0), "b": (x1 + 3, y1 - 2)}, raw=sample_ndvi)
    lines, markers = plot.get(0), plot.get(1)
    np.testing.assert_allclose(lines["a"].data["ndvi"], filled.isel(x=5, y=7).values)
    np.testing.assert_allclose(lines["b"].data["ndvi"], filled.isel(x=80, y=90).values)
    raw_b = sample_ndvi.isel(x=80, y=90).values
    assert len(markers["b"].data) == int(np.isfinite(raw_b).sum())


def test_plot_series_accepts_geodataframe_in_another_crs(sample_ndvi):
    import geopandas as gpd
    from shapely.geometry import Point

    x, y = float(sample_ndvi.x[30]), float(sample_ndvi.y[40])
    pts = gpd.GeoDataFrame(geometry=[Point(x, y)], crs=32633).to_crs(4326)
    plot = plot_series(sample_ndvi.fillna(0), pts)
    np.testing.assert_allclose(
        plot["0"].data["ndvi"], sample_ndvi.fillna(0).isel(x=30, y=40).values
    )


def test_plot_series_errors(sample_ndvi):
    with pytest.raises(NoOverlapError, match="outside the data"):
        plot_series(sample_ndvi, [(0.0, 0.0)])
    with pytest.raises(MissingDimensionError, match="'time' missing"):
        plot_series(sample_ndvi.isel(time=0), [(float(sample_ndvi.x[0]), float(sample_ndvi.y[0]))])
    with pytest.raises(InputError, match=r"\(x, y\) pairs"):
        plot_series(sample_ndvi, [(1.0, 2.0, 3.0)])


def test_quicklook_picks_the_clearest_date_and_stretches(sample_l1c):
    valid = sample_l1c[["red", "green", "blue"]].to_array().notnull().all("variable")
    clearest = str(sample_l1c.time.values[int(valid.mean(("y", "x")).argmax("time"))])[:10]
    rgb = quicklook(sample_l1c)
    assert rgb.opts.get().kwargs["title"] == f"red/green/blue {clearest}"
    r = rgb.dimension_values("R", flat=False)
    assert r.shape == (sample_l1c.sizes["y"], sample_l1c.sizes["x"])
    assert 0 <= np.nanmin(r) and np.nanmax(r) <= 1
    # 2-98 % stretch: about 2 % of the pixels saturate at each end
    assert (r == 1).mean() == pytest.approx(0.02, abs=0.01)
    false = quicklook(sample_l1c, bands=("nir", "red", "green"), time="2015-07-11", per_band=False)
    assert "nir/red/green 2015-07-11" == false.opts.get().kwargs["title"]


def test_quicklook_errors(sample_l1c):
    with pytest.raises(UnknownBandError, match=r"\['swir16'\] are not in the dataset; available"):
        quicklook(sample_l1c, bands=("swir16", "red", "green"))
    with pytest.raises(InputError, match="exactly three bands"):
        quicklook(sample_l1c, bands=("red", "green"))
    with pytest.raises(InputError, match="percentiles"):
        quicklook(sample_l1c, percentiles=(50, 10))


def test_plot_phenology_marks_events_on_the_curve():
    t = pd.date_range("2020-01-01", "2020-12-31", freq="10D")
    doy = t.dayofyear.values
    curve = xr.DataArray(
        0.2 + 0.6 * np.exp(-(((doy - 180) / 50.0) ** 2)),
        coords={"time": t},
        dims="time",
        name="ndvi",
    )
    pheno = {"sos": np.datetime64("2020-05-01"), "pos": 180, "eos": np.datetime64("2020-09-01")}
    plot = plot_phenology(curve, pheno)
    labels = plot.Labels.I.data
    assert labels["event"].tolist() == ["SOS", "POS", "EOS"]
    # POS given as day of year 180 -> 28 June 2020 (leap year), at the top of the curve
    assert labels["time"].iloc[1] == pd.Timestamp("2020-06-28")
    assert labels["ndvi"].iloc[1] == pytest.approx(0.8, abs=0.01)
    with pytest.raises(InputError, match="1-D"):
        plot_phenology(curve.expand_dims(x=[0.0, 1.0]))


@pytest.mark.filterwarnings("ignore:eoai.viz.plot_confusion_matrix is deprecated:FutureWarning")
def test_confusion_matrix_counts_normalisation_and_accuracy():
    cm = pd.DataFrame([[8, 2], [1, 9]], index=["crop", "forest"], columns=["crop", "forest"])
    with pytest.warns(FutureWarning, match=r"use eoai.ml.plot_confusion_matrix"):
        plot = plot_confusion_matrix(cm)
    assert "overall accuracy 85.0%" in plot.opts.get().kwargs["title"]
    heat = plot.HeatMap.I.data
    row = heat[heat["reference"] == "crop"].set_index("predicted")["value"]
    assert row["crop"] == 8 and row["forest"] == 2
    norm = plot_confusion_matrix(cm, normalize=True).HeatMap.I.data
    np.testing.assert_allclose(norm.groupby("reference")["value"].sum(), [1.0, 1.0])
    with pytest.raises(InputError, match="square"):
        plot_confusion_matrix(np.ones((2, 3)))
