"""Every array -> array accessor method on the embedded real sample: lazy in, lazy out (no compute
while the graph is built), numpy and dask inputs give equal results, and the grid (x/y, the CRS in
``spatial_ref``) and the provenance (``eoai:method``) are kept."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
import xarray as xr

import eoai
from eoai import accessors
from eoai.testing import EagerComputeError, raise_if_dask_computes

WINDOW = {"y": slice(30, 54), "x": slice(40, 64)}  # 24 x 24 pixels of the sample
CHUNKS = {"time": -1, "y": 12, "x": 12}  # 4 spatial chunks


@pytest.fixture(scope="module")
def sample() -> dict[str, xr.Dataset]:
    """In-memory windows of the sample: its NDVI series (clouds masked) and its 5 L1C dates
    (10 m bands, a 20 m band and the unapplied cloud mask band ``clm``)."""
    cat = eoai.datasets.sample_catalog()
    ndvi = eoai.load(cat, collections=["slovenia-ndvi"], bands=["ndvi"], chunks={})
    l1c = eoai.load(
        cat,
        collections=["slovenia-l1c"],
        bands=["red", "green", "blue", "nir", "rededge1", "clm"],
        mask=None,
        chunks={},
    )
    return {"ndvi": ndvi.isel(WINDOW).compute(), "l1c": l1c.isel(WINDOW).compute()}


def _ndvi(s):
    return s["ndvi"]["ndvi"]


def _power(s):
    """The sample's nir reflectance as a stand-in linear-power backscatter band ``vv``."""
    return s["l1c"]["nir"].rename("vv").assign_attrs(units="linear", **{"eoai:looks": 4.4})


def _probabilities(s):
    """Two-class probabilities (bare, vegetation) from the sample's last NDVI date."""
    v = _ndvi(s).isel(time=-1, drop=True).clip(0, 1)
    p = xr.concat([1 - v, v], dim="class_name").assign_coords(class_name=["bare", "vegetation"])
    return p.rename("probability").transpose("class_name", "y", "x")


# method -> (input from the sample, positional args, keyword args); methods that are not
# array -> array (or need a trained model) are skipped with the reason
CASES = {
    "index": (lambda s: s["l1c"][["red", "nir"]], ("ndvi",), {}),
    "mask": (lambda s: s["l1c"], ("clm",), {}),
    "valid_fraction": (lambda s: s["l1c"], ("clm",), {}),
    "gapfill": (_ndvi, ("linear",), {"freq": "10D"}),
    "phenology": (lambda s: _ndvi(s).eoai.gapfill("linear", freq="10D"), (), {}),
    "detect_breaks": (_ndvi, ("2017-01-01",), {}),
    "change": (lambda s: s["l1c"][["red", "nir"]], ("2015-07-11", "2015-09-09"), {}),
    # the interpolation baseline: "guided" trains on the cube, the one step that computes
    "superres": (lambda s: s["l1c"].drop_vars("clm"), ("bicubic",), {"bands": ["rededge1"]}),
    # SAR methods on a stand-in backscatter band (the sample has no Sentinel-1): linear power
    "to_db": (lambda s: _power(s), (), {}),
    "from_db": (lambda s: _power(s).eoai.to_db(), (), {}),
    "speckle_filter": (lambda s: _power(s), ("lee",), {}),
    "bayes_smooth": (_probabilities, (), {}),
    # segment ids of the NDVI series (time first); the tiles, not the dask chunks, set the result
    "segment": (_ndvi, (), {"method": "felzenszwalb", "time_first": True, "tile": 16}),
}
SKIPPED = {
    "extract": "returns a table of samples, not an array",
    "classify": "needs a trained model (tests/ml/test_classify.py checks its laziness)",
    "predict": "needs a trained regressor (tests/ml/test_regression.py checks its map)",
    "embed": "needs the Presto weights (tests/ml/test_presto.py checks its laziness and graph)",
    "explore": "returns a map widget",
    "plot_series": "returns a plot",
    "quicklook": "returns a plot",
    "write": "writes files",
    "suggest_samples": "returns a GeoDataFrame of points (tests/ml/test_active.py: one compute)",
    "object_features": "returns a table of objects (tests/ml/test_objects.py checks its values)",
    "classify_objects": "needs a trained model (tests/ml/test_objects.py checks its lazy map)",
}


def test_every_method_is_checked_or_skipped_with_a_reason():
    assert set(CASES) | set(SKIPPED) == set(accessors._METHODS)
    assert not set(CASES) & set(SKIPPED)


def _is_lazy(obj: xr.Dataset | xr.DataArray) -> bool:
    arrays = obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj]
    return all(a.chunks is not None for a in arrays)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(accessors._METHODS))
def test_method_is_lazy_and_keeps_grid_and_provenance(sample, name):
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    make, args, kwargs = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # counts of skipped pixels: checked in their own tests
        eager = make(sample)
        lazy = eager.chunk({d: c for d, c in CHUNKS.items() if d in eager.dims})
        with raise_if_dask_computes():
            out = getattr(lazy.eoai, name)(*args, **kwargs)
        assert _is_lazy(out), f"{name} of a dask input returned numpy data"
        expected = getattr(eager.eoai, name)(*args, **kwargs).compute()
        with raise_if_dask_computes(max_computes=1):
            got = out.compute()
    xr.testing.assert_allclose(got, expected)
    assert got.coords["spatial_ref"].attrs == eager.coords["spatial_ref"].attrs
    assert int(got.coords["spatial_ref"]) == 32633
    for dim in {"x", "y"} & set(got.dims):
        np.testing.assert_array_equal(got[dim].values, eager[dim].values)
    method = got.attrs.get("eoai:method")
    assert method and method != eager.attrs.get("eoai:method"), got.attrs
    # one pattern in the whole package (issue #14): the function's name, then ":" and its method
    assert re.fullmatch(r"[a-z_0-9]+(:[a-z_0-9]+)?", method) and method.split(":")[0] == name
    assert isinstance(json.loads(got.attrs["eoai:parameters"]), dict), got.attrs


def test_raise_if_dask_computes_raises_at_the_offending_line():
    x = xr.DataArray(np.ones((4, 4)), dims=("y", "x")).chunk(2)
    with pytest.raises(EagerComputeError, match=r"computed 1 time\(s\)") as info:
        with raise_if_dask_computes():
            lazy = x * 2
            float(lazy.sum())  # the offending line
    frames = [(f.path, f.name) for f in info.traceback]
    assert (__file__, "test_raise_if_dask_computes_raises_at_the_offending_line") in [
        (str(p), n) for p, n in frames
    ]
    with raise_if_dask_computes(max_computes=2) as counter:
        assert float(lazy.sum()) == 32.0
        lazy.compute()
    assert counter.count == 2
    with pytest.raises(eoai.errors.InputError, match="max_computes must be an integer >= 0"):
        raise_if_dask_computes(-1).__enter__()
