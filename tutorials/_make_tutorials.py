"""Regenerate the tutorial notebooks (``python tutorials/_make_tutorials.py``)."""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
PARAMS = (
    "# Parameters (papermill can change them)\n"
    "quick = True  # small and fast\n"
    "catalog = None  # None: the Slovenia sample shipped with eoai"
)
SETUP = (
    "import numpy as np\nimport pandas as pd\n\nimport eoai\nimport eoai.viz\n\neoai.viz.notebook()"
)


def solution(text: str) -> str:
    return f"<details><summary>Show a solution</summary>\n\n```python\n{text}\n```\n</details>"


TUTORIALS = {
    "01_first_look.ipynb": [
        md(
            "# 1. A first look at a satellite image time series\n\n"
            "**Goal:** open a STAC catalog, load a *data cube* and look at it as images and on a map.\n\n"
            "A **STAC catalog** lists satellite images (*items*) with their date, footprint and files "
            "(*assets*, one per spectral band). `eoai.load` searches it and stacks the images into an "
            "`xarray.Dataset` with dimensions `(time, y, x)`: one variable per band. Nothing is read yet: "
            "the cube is *lazy* (dask) and pixels are only read when a result needs them.\n\n"
            "We use the sample shipped with eoai: 101 x 100 pixels of 10 m in central Slovenia, "
            "Sentinel-2 (contains modified Copernicus Sentinel data)."
        ),
        code(PARAMS, metadata={"tags": ["parameters"]}),
        code(SETUP),
        code(
            "source = eoai.datasets.sample_catalog() if catalog is None else catalog\n"
            'scenes = eoai.load(source, collections=["slovenia-l1c"], bands=["blue", "green", "red", "nir", "swir16"], chunks={})\n'
            "scenes"
        ),
        md(
            "Each band is reflectance (0 to 1, the fraction of sunlight reflected). The cube knows its "
            "coordinate reference system (CRS), so it can be put on a map:"
        ),
        code(
            'print("CRS:", scenes.odc.crs.epsg, "| dates:", [str(t)[:10] for t in scenes.time.values])'
        ),
        md(
            "## True and false colour\n\nA *true-colour* image maps red, green and blue to the screen's "
            "colours. A *false-colour* image maps near infrared (NIR) to red: healthy vegetation reflects "
            "NIR strongly and shows bright red."
        ),
        code(
            'eoai.viz.quicklook(scenes) + eoai.viz.quicklook(scenes, bands=("nir", "red", "green"))'
        ),
        md(
            "## On a map\n\nThe map below is interactive: zoom, change the date with the slider, change "
            "the opacity, and toggle layers."
        ),
        code("scenes.eoai.explore()"),
        md(
            '## Exercises\n\n1. Show the *SWIR* false colour `("swir16", "nir", "red")`: what stands '
            "out (bare soil, water, buildings)?\n"
            + solution('eoai.viz.quicklook(scenes, bands=("swir16", "nir", "red"))')
            + "\n\n2. NDVI = (NIR - red) / (NIR + red). Compute it by hand and compare with "
            '`scenes.eoai.index("ndvi")`.\n'
            + solution(
                "mine = (scenes.nir - scenes.red) / (scenes.nir + scenes.red)\n"
                'float(abs(mine - scenes.eoai.index("ndvi")).max())  # 0.0'
            )
        ),
        code(
            "# your answers here\n"
            'ndvi = scenes.eoai.index("ndvi")\n'
            "mine = (scenes.nir - scenes.red) / (scenes.nir + scenes.red)\n"
            'print("largest difference:", float(abs(mine - ndvi).max()))'
        ),
    ],
    "02_clouds_and_time_series.ipynb": [
        md(
            "# 2. Clouds, gaps and time series\n\n"
            "**Goal:** see how clouds leave gaps in a time series and fill them.\n\n"
            "Optical satellites cannot see through clouds. Each image comes with a *cloud mask*; "
            "`eoai.load` uses it to set cloudy pixels to NaN (*not a number*), never to 0, so that "
            "statistics are not biased."
        ),
        code(PARAMS, metadata={"tags": ["parameters"]}),
        code(SETUP),
        code(
            "source = eoai.datasets.sample_catalog() if catalog is None else catalog\n"
            'ndvi = eoai.load(source, collections=["slovenia-ndvi"], bands=["ndvi"], chunks={})["ndvi"]\n'
            'clear = ndvi.notnull().mean(("y", "x")).compute()\n'
            "print(f\"{ndvi.sizes['time']} dates; on average {float(clear.mean()):.0%} of the pixels are clear\")\n"
            'clear.to_series().rename("clear fraction").hvplot.line(height=250, width=700, title="Clear pixels per date")'
        ),
        md(
            "## Filling the gaps\n\n`gapfill` estimates the missing values from the clear ones and "
            "resamples the series onto regular dates. The *Whittaker* smoother balances fidelity to the "
            "observations against smoothness; `linear` simply joins the dots."
        ),
        code(
            'series = ndvi.chunk({"time": -1})\n'
            'smooth = series.eoai.gapfill("whittaker", freq="10D")\n'
            'linear = series.eoai.gapfill("linear", freq="10D")\n'
            "labels = eoai.datasets.sample_labels()\n"
            'forest = labels[labels["class"] == "forest"].geometry.representative_point().iloc[0]\n'
            'point = {"forest": (forest.x, forest.y)}\n'
            '(eoai.viz.plot_series(smooth, point, raw=ndvi, title="Whittaker")\n'
            ' + eoai.viz.plot_series(linear, point, raw=ndvi, title="linear")).cols(1)'
        ),
        md(
            "## Exercises\n\n1. Plot the series of a *cultivated_land* polygon. How does it differ from "
            "the forest?\n"
            + solution(
                'field = labels[labels["class"] == "cultivated_land"].geometry.representative_point().iloc[0]\n'
                'eoai.viz.plot_series(smooth, {"field": (field.x, field.y)}, raw=ndvi)'
            )
            + "\n\n2. Count the NaN (cloudy observations) before and after gap-filling.\n"
            + solution("int(smooth.isnull().sum())")
        ),
        code(
            "# your answers here\n"
            'print("NaN before:", int(ndvi.isnull().sum()), "after:", int(smooth.isnull().sum()))'
        ),
    ],
    "03_growing_seasons.ipynb": [
        md(
            "# 3. Growing seasons from space\n\n"
            "**Goal:** find when vegetation greens up and senesces, pixel by pixel.\n\n"
            "From a gap-filled NDVI curve, *phenology* finds the start of season (SOS: the curve rises "
            "past 20% of its seasonal amplitude), the peak (POS) and the end (EOS)."
        ),
        code(PARAMS + "\nyear = 2016", metadata={"tags": ["parameters"]}),
        code(SETUP + "\nimport warnings"),
        code(
            "source = eoai.datasets.sample_catalog() if catalog is None else catalog\n"
            'ndvi = eoai.load(source, collections=["slovenia-ndvi"], bands=["ndvi"], chunks={})["ndvi"]\n'
            'filled = ndvi.chunk({"time": -1}).eoai.gapfill("whittaker", freq="10D").sel(time=str(year))\n'
            "with warnings.catch_warnings():\n"
            '    warnings.simplefilter("ignore", eoai.errors.DataSkippedWarning)\n'
            "    pheno = filled.eoai.phenology().compute()\n"
            'pheno[["sos_doy", "pos_doy", "eos_doy"]].to_dataframe().describe().round(1)'
        ),
        md(
            "## A map of the start of season\n\nPixels without a complete season in the year are left "
            "empty (NaN): eoai never invents a value."
        ),
        code(
            'pheno["sos_doy"].attrs = {}\n'
            'pheno["sos_doy"].rename("start of season (day of year)").eoai.explore(cmap="viridis")'
        ),
        md("## One pixel's season"),
        code(
            "labels = eoai.datasets.sample_labels()\n"
            'p = labels[labels["class"] == "cultivated_land"].geometry.representative_point().iloc[0]\n'
            'at = dict(x=p.x, y=p.y, method="nearest")\n'
            "eoai.viz.plot_phenology(filled.sel(**at), pheno.sel(**at), raw=ndvi.sel(time=str(year)).sel(**at))"
        ),
        md(
            "## Exercises\n\n1. Which land-cover class starts its season earliest? Sample `sos_doy` at one "
            "point per polygon and average by class.\n"
            + solution(
                "pts = labels.geometry.representative_point()\n"
                "import xarray as xr\n"
                "sos = pheno.sos_doy.sel(x=xr.DataArray(pts.x.values, dims='p'), y=xr.DataArray(pts.y.values, dims='p'), method='nearest')\n"
                "pd.Series(sos.values, index=labels['class']).groupby(level=0).mean()"
            )
            + "\n\n2. Change the threshold to 50% (`phenology(threshold=0.5)`): does SOS move earlier or "
            "later? Why?"
        ),
        code(
            "# your answers here\n"
            "import xarray as xr\n"
            "pts = labels.geometry.representative_point()\n"
            'sos = pheno.sos_doy.sel(x=xr.DataArray(pts.x.values, dims="p"), y=xr.DataArray(pts.y.values, dims="p"), method="nearest")\n'
            'pd.Series(sos.values, index=labels["class"].values).groupby(level=0).mean().round(1)'
        ),
    ],
}

for name, cells in TUTORIALS.items():
    nb = nbf.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbf.validate(nb)
    nbf.write(nb, HERE / name)
    print("written", HERE / name)
