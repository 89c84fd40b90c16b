"""Generate eoai/reports/notebooks/flagship.ipynb and its copy notebooks/00_flagship_report.ipynb."""

import shutil
from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parents[3]
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md(
        "# eoai report: from a STAC catalog to land information\n\n"
        "This report loads a satellite image time series lazily from a STAC catalog (by default the "
        "real Sentinel-2 sample over central Slovenia shipped with eoai), masks clouds, shows true- and "
        "false-colour quicklooks and an interactive map, fills the gaps of the NDVI series and "
        "derives the growing season (start, peak and end) of every pixel.\n\n"
        "Run it on your own area with `eoai report 00_flagship_report.ipynb -p catalog URL "
        '-p collections "[\'sentinel-2-l2a\']" -p bbox "[lon0, lat0, lon1, lat1]" '
        "-p datetime 2023 --out my-report`."
    ),
    code(
        "# Parameters (papermill injects new values after this cell)\n"
        "quick = True  # small and fast\n"
        "catalog = None  # None: the embedded sample; else a STAC API URL or a static catalog path\n"
        "collections = None  # e.g. ['sentinel-2-l2a'] for a STAC API\n"
        "bbox = None  # [west, south, east, north] in degrees\n"
        "datetime = None  # e.g. '2023' or '2023-03-01/2023-10-31'\n"
        "year = 2016  # season analysed for phenology\n"
        "resolution = None  # metres; None keeps the native resolution",
        metadata={"tags": ["parameters"]},
    ),
    code(
        "import warnings\n\n"
        "import numpy as np\n"
        "import pandas as pd\n\n"
        "import eoai\n"
        "import eoai.viz\n\n"
        "eoai.viz.notebook()  # Bokeh inlined: the exported report works offline\n"
        'warnings.simplefilter("ignore", RuntimeWarning)'
    ),
    md(
        "## The data\n\nThe cube is loaded lazily (dask): nothing is read until a plot or a table "
        "needs it. Cloudy pixels are masked to NaN with the catalog's cloud mask."
    ),
    code(
        "if catalog is None:\n"
        "    source = eoai.datasets.sample_catalog()\n"
        '    series = eoai.load(source, collections=["slovenia-ndvi"], bands=["ndvi"], bbox=bbox,\n'
        "                       datetime=datetime, chunks={})\n"
        '    ndvi = series["ndvi"]\n'
        '    scenes = eoai.load(source, collections=["slovenia-l1c"], bands=["red", "green", "blue", "nir"],\n'
        "                       bbox=bbox, chunks={})\n"
        "    labels = eoai.datasets.sample_labels()\n"
        "else:\n"
        '    scenes = eoai.load(catalog, bands=["red", "green", "blue", "nir"], collections=collections,\n'
        "                       bbox=bbox, datetime=datetime, resolution=resolution, chunks={})\n"
        '    ndvi = scenes.eoai.index("ndvi")\n'
        "    labels = None\n"
        'valid = ndvi.notnull().mean(("y", "x")).compute().to_series()\n'
        "pd.DataFrame({\n"
        '    "dates": [ndvi.sizes["time"]],\n'
        '    "first": [str(ndvi.time.values[0])[:10]],\n'
        '    "last": [str(ndvi.time.values[-1])[:10]],\n'
        "    \"pixels\": [f\"{ndvi.sizes['y']} x {ndvi.sizes['x']}\"],\n"
        '    "CRS": [f"EPSG:{ndvi.odc.crs.epsg}"],\n'
        '    "mean clear fraction": [round(float(valid.mean()), 3)],\n'
        '}, index=["cube"])'
    ),
    code(
        'valid.rename("clear fraction").hvplot.bar(\n'
        '    rot=90, height=250, width=800, title="Fraction of clear pixels per date", xlabel="date",\n'
        ").opts(xticks=[(i, str(t)[:10]) for i, t in enumerate(valid.index)][:: max(1, len(valid) // 15)])"
    ),
    md(
        "## Quicklooks\n\nTrue colour (red, green, blue) and false colour (near infrared, red, green: "
        "vegetation in red) of the clearest date, stretched between the 2nd and 98th percentiles."
    ),
    code('eoai.viz.quicklook(scenes) + eoai.viz.quicklook(scenes, bands=("nir", "red", "green"))'),
    md(
        "## Map\n\nNDVI on an interactive map (date slider, opacity, layers; the land-cover "
        "reference polygons on top). In a live notebook, clicking a pixel plots its time series."
    ),
    code(
        "clearest = valid[str(year)].idxmax()  # the clearest date of the year\n"
        'm = ndvi.eoai.explore(time=clearest, vectors={"land cover": labels} if labels is not None else None)\n'
        "m"
    ),
    md(
        "## Gap-filled NDVI time series\n\nMarkers are the clear observations, lines the gap-filled "
        "series (Whittaker smoother, smoothing chosen by the V-curve) on a regular grid of 10 days "
        "(5 days when `quick=False`)."
    ),
    code(
        'filled = ndvi.chunk({"time": -1}).eoai.gapfill("whittaker", freq="10D" if quick else "5D")\n'
        "if labels is not None:  # one reference polygon per land-cover class\n"
        '    firsts = labels.groupby("class").head(1).set_index("class")\n'
        "    points = firsts.assign(geometry=firsts.geometry.representative_point())\n"
        "else:  # three pixels across the area\n"
        "    xs, ys = ndvi.x.values, ndvi.y.values\n"
        '    points = {f"pixel {i}": (xs[len(xs) * i // 4], ys[len(ys) * i // 4]) for i in (1, 2, 3)}\n'
        'eoai.viz.plot_series(filled, points, raw=ndvi, title="NDVI: observations and gap-filled series")'
    ),
    md(
        f"## Growing season\n\nStart (SOS), peak (POS) and end (EOS) of season of every pixel "
        "for the chosen year, from the gap-filled NDVI (20% of the seasonal amplitude)."
    ),
    code(
        "season = filled.sel(time=str(year))\n"
        "with warnings.catch_warnings():\n"
        '    warnings.simplefilter("ignore", eoai.errors.DataSkippedWarning)\n'
        "    pheno = season.eoai.phenology().compute()\n"
        'found = float(pheno["sos"].notnull().mean())\n'
        'print(f"a growing season was found in {found:.0%} of the pixels in {year}")\n'
        'sos_map = pheno["sos_doy"].hvplot.image(x="x", y="y", cmap="viridis", data_aspect=1, frame_width=360,\n'
        '                                       title=f"start of season {year} (day of year)")\n'
        'amp = np.where(pheno["sos"].notnull(), pheno["amplitude"].values, -np.inf)\n'
        "yy, xx = np.unravel_index(int(np.argmax(amp)), amp.shape)\n"
        "pixel = dict(x=pheno.x.values[xx], y=pheno.y.values[yy])\n"
        "curve = eoai.viz.plot_phenology(season.sel(pixel), pheno.sel(pixel), raw=ndvi.sel(time=str(year)).sel(pixel),\n"
        '                                title="NDVI season of the pixel with the largest amplitude", width=480)\n'
        "(sos_map + curve).cols(2)"
    ),
]
nb = nbf.v4.new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["language_info"] = {"name": "python"}
nb.metadata["title"] = "eoai report"
nbf.validate(nb)
dst = ROOT / "eoai/reports/notebooks/flagship.ipynb"
nbf.write(nb, dst)
shutil.copyfile(dst, ROOT / "notebooks/00_flagship_report.ipynb")
print("written", dst)
