"""The package itself: light import, accessor registration and delegation, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import eoai
from eoai import accessors, errors

HEAVY = [
    "torch",
    "sklearn",
    "ipyleaflet",
    "hvplot",
    "holoviews",
    "bokeh",
    "papermill",
    "odc.stac",
    "pystac_client",
    "geopandas",
    "rasterio",
    "matplotlib",
]


def test_import_is_light():
    code = f"import sys, eoai; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import eoai pulled heavy modules: {out.stdout.strip()}"


def test_accessor_registered_on_both_types():
    da = xr.DataArray(np.zeros(3), dims="x")
    assert isinstance(da.eoai, accessors.EoaiAccessor)
    assert isinstance(da.to_dataset(name="a").eoai, accessors.EoaiAccessor)


@pytest.mark.parametrize("name", sorted(accessors._METHODS))
def test_every_accessor_method_resolves_to_a_documented_function(name):
    func = accessors._target(name)
    assert callable(func)
    assert func.__name__ == name
    assert func.__doc__ and "Examples" in func.__doc__, f"{name} needs a numpydoc example"


def test_accessor_delegates_with_object_first(monkeypatch):
    calls = []

    def fake(obj, *args, **kwargs):
        calls.append((obj, args, kwargs))
        return "result"

    monkeypatch.setattr(accessors, "_target", lambda name: fake)
    da = xr.DataArray(np.arange(3.0), dims="time")
    assert da.eoai.gapfill("linear", freq="10D") == "result"
    assert calls[0][0] is da and calls[0][1] == ("linear",) and calls[0][2] == {"freq": "10D"}


def test_unknown_attribute_is_a_clear_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        eoai.nope  # noqa: B018


def test_errors_are_builtin_compatible():
    assert issubclass(errors.UnknownBandError, KeyError)
    assert str(errors.UnknownBandError("band 'x' unknown")) == "band 'x' unknown"
    assert issubclass(errors.CatalogUnreachableError, ConnectionError)
    assert issubclass(errors.InputError, ValueError)
