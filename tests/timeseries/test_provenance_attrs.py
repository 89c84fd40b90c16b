"""gapfill, phenology, change and detect_breaks keep the input's provenance and write
serialisable attributes (issue #16 items 5 and 6)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from eoai._attrs import netcdf_value
from eoai._provenance import provenance
from eoai.datasets import double_logistic
from eoai.errors import EoaiWarning
from eoai.timeseries.breaks import detect_breaks
from eoai.timeseries.change import change
from eoai.timeseries.gapfill import gapfill
from eoai.timeseries.phenology import phenology

LOAD_ATTRS = {
    "eoai:method": "load",
    "eoai:bands": "red=B04,nir=B08",
    "eoai:mask": "scl classes 0,1,3,8,9,10",
    "eoai:n_items": 12,
    "crs": "EPSG:32633",
}


def _loaded() -> xr.Dataset:
    """A Dataset shaped like eoai.load's output: provenance attrs, CRS coordinate, float bands."""
    t = pd.date_range("2018-01-01", "2021-12-31", freq="8D")
    doy = np.asarray(t.day_of_year, float)
    rng = np.random.default_rng(0)
    curve = double_logistic(doy, 0.2, 0.6, 120, 270, 0.1, 0.1)
    ndvi = curve[:, None, None] + rng.normal(0, 0.01, (t.size, 3, 4))
    ndvi[t >= "2021-03-01", 0, 0] -= 0.3
    red = 0.3 - 0.25 * ndvi
    nir = red * (1 + ndvi) / (1 - ndvi)
    dims = ("time", "y", "x")
    band_attrs = {"nodata": np.nan, "scale_factor_applied": 1e-4, "eoai:asset": "B04"}
    ds = xr.Dataset(
        {
            "ndvi": xr.DataArray(ndvi.astype("float32"), dims=dims, attrs={"units": "1"}),
            "red": xr.DataArray(red.astype("float32"), dims=dims, attrs=band_attrs),
            "nir": xr.DataArray(nir.astype("float32"), dims=dims, attrs=band_attrs),
        },
        coords={"time": t, "y": [30.0, 20.0, 10.0], "x": [0.0, 10.0, 20.0, 30.0],
                "spatial_ref": xr.DataArray(0, attrs={"crs_wkt": "EPSG:32633"})},
        attrs={**LOAD_ATTRS, "flag": True, "extra": {"k": [1, 2]}, "names": ["a", "b"]},
    )  # fmt: skip
    return ds


def _outputs(ds: xr.Dataset) -> dict[str, xr.Dataset]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EoaiWarning)
        return {
            "gapfill": gapfill(ds, "linear", freq="16D"),
            "phenology": phenology(ds, variable="ndvi", years=2020),
            "phenology_smooth": phenology(
                ds, variable="ndvi", years=2020, smooth="whittaker", smooth_kw={"lam": 1e3}
            ),
            "change": change(ds, before="2019", after="2021", bands=["red", "nir"]),
            "detect_breaks": detect_breaks(ds, "2021-01-01", variable="ndvi"),
        }


@pytest.mark.parametrize(
    "name", ["gapfill", "phenology", "phenology_smooth", "change", "detect_breaks"]
)
def test_input_provenance_is_kept_with_a_lineage(name):
    ds = _loaded()
    out = _outputs(ds)[name]
    for key in ("eoai:bands", "eoai:mask", "eoai:n_items", "crs"):
        assert out.attrs[key] == LOAD_ATTRS[key], (
            name,
            key,
        )  # phenology/detect_breaks dropped them
    assert "spatial_ref" in out.coords
    lineage = json.loads(out.attrs["eoai:lineage"])
    assert lineage[0]["method"] == "load"
    if name == "phenology_smooth":
        assert [s["method"] for s in lineage] == ["load", "gapfill:whittaker"]
    method = out.attrs["eoai:method"]
    assert method != "load" and method.split(":")[0] in {
        "gapfill", "phenology", "change", "detect_breaks"
    }  # fmt: skip
    assert isinstance(json.loads(out.attrs["eoai:parameters"]), dict)


def _check_serialisable(value, where):
    ok = isinstance(value, str) or (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
    )
    if isinstance(value, np.ndarray):
        ok = value.dtype.kind in "iuf"
    if isinstance(value, list):  # one type: numbers or strings
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) or all(
            isinstance(v, str) for v in value
        )
    assert ok, (where, type(value), value)


@pytest.mark.filterwarnings("ignore::UserWarning:zarr")
@pytest.mark.filterwarnings("ignore:Consolidated metadata")
def test_every_attribute_is_serialisable_and_writes(tmp_path):
    for name, out in _outputs(_loaded()).items():
        for key, value in out.attrs.items():
            _check_serialisable(value, (name, key))
        for vname, var in out.variables.items():
            for key, value in var.attrs.items():
                _check_serialisable(value, (name, vname, key))
        assert out.attrs["flag"] == 1 and json.loads(out.attrs["extra"]) == {"k": [1, 2]}
        assert list(out.attrs["names"]) == ["a", "b"]
        # the real writers accept them (the cross-package round trip is tested elsewhere)
        out.to_netcdf(tmp_path / f"{name}.nc", engine="h5netcdf")
        out.to_zarr(tmp_path / f"{name}.zarr", mode="w")
        back = xr.open_dataset(tmp_path / f"{name}.nc", engine="h5netcdf")
        assert back.attrs["eoai:method"] == out.attrs["eoai:method"]
        back.close()


def test_provenance_helper_and_storable_values():
    assert netcdf_value(np.bool_(True)) == 1 and netcdf_value({"a": [1]}) == '{"a": [1]}'
    a = provenance(
        [{"eoai:method": "load", "eoai:parameters": '{"x": 1}', "keep": 1},
         {"eoai:method": "gapfill:linear", "eoai:lineage": '[{"method": "load", "parameters": {"x": 1}}]'}],
        "phenology:threshold",
        {"t": 0.5},
    )  # fmt: skip
    assert a["keep"] == 1 and a["eoai:method"] == "phenology:threshold"
    assert [s["method"] for s in json.loads(a["eoai:lineage"])] == ["load", "gapfill:linear"]
    assert json.loads(a["eoai:parameters"]) == {"t": 0.5}
