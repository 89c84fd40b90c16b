"""sentinel1_quicklook and the flagship report's Sentinel-1 section (issue #15).

Real data: the SSL4EO-S12 patch 0000200 (VV + VH sigma0 in dB, 2020-06-07 descending orbit 107,
2020-09-03 ascending orbit 173) in a static catalog written to a tmp dir (tests/io/s1_local.py
builds the items from the products' own metadata); real Planetary Computer item JSON for the GRD
and dual-pol HH+HV cases. Nothing is downloaded.
"""

from __future__ import annotations

import glob
import importlib.util
import json
from pathlib import Path

import nbformat
import numpy as np
import pystac
import pytest
import rasterio

import eoai
from eoai.errors import InputError
from eoai.reports import Sentinel1Quicklook, sentinel1_quicklook
from eoai.reports.demo import flagship_notebook
from eoai.reports.sentinel1 import _pair
from eoai.testing import raise_if_dask_computes

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("s1_local", HERE.parent / "io" / "s1_local.py")
assert _spec is not None and _spec.loader is not None
s1_local = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(s1_local)

PIXEL = (100, 150)  # (row, col) checked against the GeoTIFFs


@pytest.fixture(scope="module")
def s1_catalog(shared_data, tmp_path_factory) -> Path:
    """A static catalog.json of the two SSL4EO-S12 dates (assets point at the shared files)."""
    root = tmp_path_factory.mktemp("s1cat")
    cat = pystac.Catalog("ssl4eo-s1", "SSL4EO-S12 patch 0000200, Sentinel-1 sigma0 (dB)")
    cat.add_items(s1_local.ssl4eo_items(shared_data, unit="dB"))
    cat.normalize_hrefs(str(root))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


@pytest.fixture(scope="module")
def rasters(shared_data) -> dict[str, np.ndarray]:
    """``{"vv": (2, 264, 264), "vh": ...}`` in dB, dates in time order (descending, ascending)."""
    folders = sorted(glob.glob(str(shared_data / s1_local.SSL4EO / "*")))
    out = {}
    for pol in ("vv", "vh"):
        stack = []
        for folder in folders:
            with rasterio.open(Path(folder) / f"{pol.upper()}.tif") as src:
                stack.append(src.read(1).astype("float64"))
        out[pol] = np.stack(stack)
    return out


def _linear_mean_db(db: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.mean(10 ** (db / 10), axis=0))


def test_quicklook_of_a_known_scene(s1_catalog, rasters):
    with raise_if_dask_computes():  # found, loaded and composed without reading a pixel
        s1 = sentinel1_quicklook(s1_catalog)
    assert s1 and s1.found and s1.polarisations == ("vv", "vh")
    assert s1.orbits == {"ascending": 1, "descending": 1}
    assert s1.collections == ("ssl4eo-s12-s1",)
    assert s1.message.startswith("Sentinel-1 VV+VH of ssl4eo-s12-s1: 2 dates (ascending 1, ")
    assert "loaded in dB" in s1.message and "mean of the dates in linear power" in s1.message
    cube, comp = s1.cube, s1.composite
    assert [str(t)[:10] for t in cube.time.values] == ["2020-06-07", "2020-09-03"]
    assert cube.orbit_state.values.tolist() == ["descending", "ascending"]
    assert cube.relative_orbit.values.tolist() == [107, 173]
    assert cube["vv"].attrs["units"] == "dB" and cube.attrs["eoai:n_items"] == 2
    assert set(comp.data_vars) == {"vv", "vh", "vv_vh"}
    assert {comp[v].attrs["units"] for v in comp.data_vars} == {"dB"}
    assert comp.sizes == {"y": 264, "x": 264}
    assert comp.attrs["eoai:method"] == "sentinel1_quicklook"
    assert json.loads(comp.attrs["eoai:parameters"])["mean"] == "linear power"
    i, j = PIXEL
    vv, vh = rasters["vv"][:, i, j], rasters["vh"][:, i, j]
    got = comp.isel(y=i, x=j).compute()
    # the dB composite is 10 log10 of the mean linear power over the dates
    assert float(got["vv"]) == pytest.approx(_linear_mean_db(vv), abs=1e-4)
    assert float(got["vh"]) == pytest.approx(_linear_mean_db(vh), abs=1e-4)
    assert float(got["vv_vh"]) == pytest.approx(_linear_mean_db(vv) - _linear_mean_db(vh), abs=1e-4)
    # ... which is not the mean of the dB values (higher: arithmetic >= geometric mean)
    assert float(got["vv"]) - vv.mean() > 0.05
    whole = comp["vv"].values
    assert np.allclose(whole, _linear_mean_db(rasters["vv"]), atol=1e-4)


def test_plot_shows_units_orbits_and_stretch(s1_catalog, rasters):
    import holoviews as hv

    s1 = sentinel1_quicklook(s1_catalog)
    stretch = s1.stretch()
    ref = np.percentile(_linear_mean_db(rasters["vh"]), [2, 98])
    assert stretch["vh"] == pytest.approx(tuple(ref), abs=1e-3)
    layout = s1.plot()
    parts = list(layout)
    assert isinstance(parts[0], hv.RGB) and isinstance(parts[1], hv.Div)
    assert "VV / VH / VV:VH (dB)" in parts[0].opts.get().kwargs["title"]
    assert "mean of 2 dates in linear power" in parts[0].opts.get().kwargs["title"]
    text = parts[1].data
    assert f"green: VH {stretch['vh'][0]:.1f} to {stretch['vh'][1]:.1f} dB" in text
    assert "ascending 1, descending 1" in text
    images = parts[2:]
    assert len(images) == 2
    titles = [im.opts.get().kwargs["title"] for im in images]
    assert titles == ["VV 2020-06-07 descending (orbit 107)", "VV 2020-09-03 ascending (orbit 173)"]
    assert {im.opts.get().kwargs["clabel"] for im in images} == {"VV (dB)"}
    # the per-date image is the date's VV in dB (HoloViews gives rows south first)
    first = images[0].dimension_values(2, flat=False)[::-1]
    assert first.shape == (264, 264)
    i, j = PIXEL
    assert first[i, j] == pytest.approx(rasters["vv"][0, i, j], abs=1e-4)
    assert np.allclose(first, rasters["vv"][0], atol=1e-4)
    assert len(list(s1.plot(per_date=False))) == 2
    assert len(list(s1.plot(max_dates=1))) == 3


def test_one_orbit_direction(s1_catalog, rasters):
    s1 = sentinel1_quicklook(s1_catalog, orbit_state="ascending")
    assert s1.orbits == {"ascending": 1} and s1.cube.sizes["time"] == 1
    i, j = PIXEL
    assert float(s1.composite["vv"][i, j]) == pytest.approx(rasters["vv"][1, i, j], abs=1e-4)


def test_unknown_units_ask_for_units(shared_data):
    """Items of an unknown collection without raster:bands unit: load's error, then units=."""
    items = s1_local.ssl4eo_items(shared_data, unit=None)
    with pytest.raises(InputError, match="pass units='dB'"):
        sentinel1_quicklook(items)
    s1 = sentinel1_quicklook(items, units="dB")
    assert s1 and s1.cube["vh"].attrs["units"] == "dB"


def test_no_sentinel1_is_a_result_not_an_error(s1_catalog, shared_data):
    sample = sentinel1_quicklook(eoai.datasets.sample_catalog())
    assert not sample and sample.composite is None
    assert sample.message == (
        "no Sentinel-1 in this catalog: its 73 items over this area and time are of collections "
        "slovenia-l1c, slovenia-ndvi, none of them Sentinel-1 (no sar:* properties, Sentinel-1 "
        "platform or collection name)"
    )
    away = sentinel1_quicklook(s1_catalog, bbox=[10.0, 45.0, 10.1, 45.1])
    assert away.message == "no Sentinel-1 in this catalog: it has no item over this area and time"
    later = sentinel1_quicklook(s1_catalog, datetime="2021", collections="ssl4eo-s12-s1")
    assert later.message == (
        "no Sentinel-1 in this catalog: its collections ssl4eo-s12-s1 have no item over this "
        "area and time"
    )
    single = sentinel1_quicklook([s1_local.pyrosar_item(shared_data)])  # VV only
    assert not single and "no co- and cross-polarisation pair" in single.message
    assert "they have VV (1)" in single.message
    grd = pystac.Item.from_file(
        str(
            shared_data / "sentinel1/stac-geoparquet/_extracted/"
            "sentinel-1-grd__S1A_IW_GRDH_1SDV_20250312T052236_20250312T052301_058267_073394.json"
        )
    )
    radar = sentinel1_quicklook([grd])
    assert not radar and "GRD in radar geometry, which cannot be put on a map" in radar.message
    assert "planetary-computer-s1-rtc" in radar.message


def test_stac_api_without_sentinel1_collections(monkeypatch):
    """An API's /collections is asked for its Sentinel-1 collections (no network: patched)."""
    from eoai.io import _http

    docs = {
        "https://stac.example/api": {
            "type": "Catalog",
            "conformsTo": ["https://api.stacspec.org/v1.0.0/item-search"],
            "links": [{"rel": "data", "href": "https://stac.example/api/collections"}],
        },
        "https://stac.example/api/collections": {
            "collections": [{"id": "sentinel-2-l2a"}, {"id": "landsat-c2-l2"}]
        },
    }
    monkeypatch.setattr(_http, "get_json", lambda url, **kw: docs[url])
    res = sentinel1_quicklook("https://stac.example/api")
    assert not res and res.message == (
        "no Sentinel-1 in this catalog: the STAC API https://stac.example/api has no Sentinel-1 "
        "collection (its collections: sentinel-2-l2a, landsat-c2-l2; eoai knows sentinel-1-rtc, "
        "sentinel-1-grd, sentinel1-grd, sentinel-s1-rtc-indigo, sentinel1-rtc-aws); pass "
        "collections= to name one"
    )


def test_dual_pol_hh_hv_items_are_paired(shared_data):
    base = shared_data / "sentinel1/planetary-computer-tasks/pctasks/core/tests/data-files/items"
    dh = pystac.Item.from_file(str(next((base / "s1-rtc").rglob("DH/*.json"))))
    dv = pystac.Item.from_file(str(next((base / "s1-rtc").rglob("DV/*.json"))))
    assert _pair([dh])[0] == ("hh", "hv")
    assert _pair([dh, dv])[0] == ("vv", "vh")  # VV+VH first when both are there


def test_bad_input(s1_catalog):
    with pytest.raises(InputError, match="needs a catalog"):
        sentinel1_quicklook(None)
    with pytest.raises(InputError, match="got int"):
        sentinel1_quicklook(5)
    with pytest.raises(InputError, match="list of items is empty"):
        sentinel1_quicklook([])
    with pytest.raises(InputError, match="bbox"):
        sentinel1_quicklook(s1_catalog, bbox=[10, 45, 9, 44])
    with pytest.raises(InputError, match="orbit_state must be 'ascending' or 'descending'"):
        sentinel1_quicklook(s1_catalog, orbit_state="north")
    with pytest.raises(InputError, match="relative_orbit must be in 1-175"):
        sentinel1_quicklook(s1_catalog, relative_orbit=400)
    none = Sentinel1Quicklook(False, "no Sentinel-1 in this catalog")
    with pytest.raises(InputError, match="no Sentinel-1 quicklook to plot: no Sentinel-1"):
        none.plot()
    with pytest.raises(InputError, match="max_dates must be >= 1"):
        sentinel1_quicklook(s1_catalog).plot(max_dates=0)


def _s1_cell() -> str:
    nb = nbformat.read(flagship_notebook(), as_version=4)
    cells = [c.source for c in nb.cells if "sentinel1_quicklook(" in c.source]
    assert len(cells) == 1
    params = nb.cells[1]
    assert "parameters" in params.metadata["tags"]
    for name in ("s1_catalog = None", "s1_collections = None", "s1_datetime = None"):
        assert name in params.source
    return cells[0]


def _run_cell(code: str, **names):
    """Execute the flagship's Sentinel-1 cell with the names earlier cells define."""
    shown: list = []
    ns = {"display": shown.append, "quick": True, "bbox": None, "datetime": None,
          "s1_catalog": None, "s1_collections": None, "s1_datetime": None, **names}  # fmt: skip
    exec(compile(code, "flagship-sentinel1-cell", "exec"), ns)
    return ns["s1"], shown


def test_flagship_cell_on_the_sample_says_it_has_no_sentinel1(capsys):
    """The demo's case (the embedded sample, no S1): one line, no plot."""
    source = eoai.datasets.sample_catalog()
    ndvi = eoai.load(source, collections=["slovenia-ndvi"], bands=["ndvi"], chunks={})["ndvi"]
    s1, shown = _run_cell(_s1_cell(), catalog=None, source=source, ndvi=ndvi)
    out = capsys.readouterr().out.strip().splitlines()
    assert not s1 and shown == []
    assert out == [
        "no Sentinel-1 in this catalog: its 73 items over this area and time are of collections "
        "slovenia-l1c, slovenia-ndvi, none of them Sentinel-1 (no sar:* properties, Sentinel-1 "
        "platform or collection name); the Sentinel-1 section is skipped (-p s1_catalog URL "
        "adds one)"
    ]


def test_flagship_cell_with_an_s1_catalog(s1_catalog, capsys):
    """-p s1_catalog: the report's area and dates (from its cube) select the S1 scenes."""
    cube = eoai.load(s1_catalog, bands=["vv"], chunks={})  # stands in for the optical cube
    ndvi = cube["vv"].rename({"latitude": "y", "longitude": "x"})
    s1, shown = _run_cell(
        _s1_cell(), catalog=None, source=None, ndvi=ndvi, s1_catalog=str(s1_catalog)
    )
    assert s1 and s1.orbits == {"ascending": 1, "descending": 1}
    assert capsys.readouterr().out.startswith("Sentinel-1 VV+VH of ssl4eo-s12-s1: 2 dates")
    assert len(shown) == 1 and len(list(shown[0])) == 4
    one, _ = _run_cell(
        _s1_cell(), catalog=None, source=None, ndvi=ndvi.isel(time=[0]), s1_catalog=str(s1_catalog)
    )
    assert one.orbits == {"descending": 1}  # the report's dates: the first one only
