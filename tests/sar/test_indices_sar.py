"""SAR indices through eoai.indices.index: VH/VV ratio, dual-pol RVI, cross-pol difference, units."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from eoai.errors import InputError
from eoai.indices import index, list_indices

VV_DB = np.array([-10.0, -6.0, -12.0, np.nan])
VH_DB = np.array([-17.0, -16.0, -12.0, -20.0])


def _cube(units="dB"):
    lin = units == "linear"
    vv, vh = (10 ** (VV_DB / 10), 10 ** (VH_DB / 10)) if lin else (VV_DB, VH_DB)
    attrs = {} if units is None else {"units": units}
    return xr.Dataset({"vv": ("x", vv, attrs), "vh": ("x", vh, attrs)})


@pytest.mark.parametrize("units", ["dB", "linear"])
def test_known_values_in_either_unit(units):
    ds = _cube(units)
    vv, vh = 10 ** (VV_DB / 10), 10 ** (VH_DB / 10)
    ratio = index(ds, "VHVVR")
    np.testing.assert_allclose(ratio.values, vh / vv, rtol=1e-12)
    assert ratio.attrs["eoai:computed_in"] == "linear" and ratio.attrs["units"] == "1"
    rvi = index(ds, "RVI")  # a cube with vv / vh and no red: the dual-pol radar RVI
    assert rvi.attrs["eoai:index"] == "DpRVIVV"
    np.testing.assert_allclose(rvi.values, 4 * vh / (vv + vh), rtol=1e-12)
    np.testing.assert_allclose(index(ds, "rvi_sar").values, rvi.values)
    assert rvi.values[2] == pytest.approx(2.0)  # VV == VH: 4 / 2
    diff = index(ds, "VHVVD")
    np.testing.assert_allclose(diff.values, VH_DB - VV_DB, atol=1e-12)
    assert diff.attrs["units"] == "dB" and units in diff.attrs["eoai:input_units"]
    assert np.isnan(ratio.values[3]) and np.isnan(diff.values[3])  # NaN stays NaN


def test_lazy_and_optical_rvi_unchanged():
    ds = _cube("dB").chunk({"x": 2})
    out = index(ds, ["VHVVR", "RVI", "VHVVD"])
    assert all(v.chunks is not None for v in out.data_vars.values())
    opt = xr.Dataset({"red": ("x", [0.1]), "rededge2": ("x", [0.3])})
    assert index(opt, "RVI").attrs["eoai:index"] == "RVI"
    assert {"VHVVR", "DpRVIVV", "VHVVD"} <= set(list_indices(bands=["vv", "vh"]))


def test_unknown_units_raise():
    with pytest.raises(InputError, match="units='dB'"):
        index(_cube(None), "VHVVR")
    np.testing.assert_allclose(
        index(_cube(None), "VHVVD", units="dB").values, VH_DB - VV_DB, atol=1e-12
    )
    with pytest.raises(InputError, match="not a backscatter unit"):
        index(_cube("K"), "RVI")
