"""eoai.indices: formulas against hand-computed values, laziness, metadata and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import eoai
from eoai.errors import InputError, UnknownBandError
from eoai.indices import COMMON_INDICES, index, list_indices

V = {"coastal": 0.04, "blue": 0.05, "green": 0.08, "red": 0.1, "rededge1": 0.15,
     "rededge2": 0.3, "rededge3": 0.38, "nir": 0.5, "nir08": 0.52, "swir16": 0.25,
     "swir22": 0.12}  # fmt: skip


@pytest.fixture
def pixel():
    """One pixel with known reflectances (float32), on a 2x2 grid."""
    return xr.Dataset(
        {b: (("y", "x"), np.full((2, 2), v, np.float32)) for b, v in V.items()},
        coords={"y": [10.0, 0.0], "x": [0.0, 10.0]},
    )


def _hand(name):
    b, g, r, re1, n, s1, s2 = (V[k] for k in
                               ("blue", "green", "red", "rededge1", "nir", "swir16", "swir22"))  # fmt: skip
    nd = lambda a, c: (a - c) / (a + c)  # noqa: E731
    return {
        "ndvi": nd(n, r),
        "evi": 2.5 * (n - r) / (n + 6 * r - 7.5 * b + 1),
        "evi2": 2.5 * (n - r) / (n + 2.4 * r + 1),
        "savi": 2 * (n - r) / (n + r + 1),  # L = 1 is the catalogue default
        "msavi": 0.5 * (2 * n + 1 - np.sqrt((2 * n + 1) ** 2 - 8 * (n - r))),
        "osavi": (n - r) / (n + r + 0.16),
        "gndvi": nd(n, g),
        "ndre": nd(n, re1),
        "ndwi": nd(g, n),
        "mndwi": nd(g, s1),
        "ndmi": nd(n, s1),
        "nbr": nd(n, s2),
        "nbr2": nd(s1, s2),
        "ndbi": nd(s1, n),
        "bsi": ((s1 + r) - (n + b)) / ((s1 + r) + (n + b)),
        "ndsi": nd(g, s1),
        "kndvi": np.tanh(nd(n, r) ** 2),
    }[name]


@pytest.mark.parametrize("name", [n.lower() for n in COMMON_INDICES])
def test_common_indices_equal_hand_computed_values(pixel, name):
    out = index(pixel, name)
    assert out.name == name
    assert out.dtype == np.float32
    assert out.dims == ("y", "x")
    np.testing.assert_allclose(out.values, _hand(name), rtol=2e-6)
    assert out.attrs["eoai:method"] == "index"
    assert out.attrs["long_name"]
    assert out.attrs["eoai:formula"]


def test_parameters_override_catalogue_constants(pixel):
    n, r = V["nir"], V["red"]
    out = index(pixel, "SAVI", L=0.5)
    np.testing.assert_allclose(out.values, 1.5 * (n - r) / (n + r + 0.5), rtol=2e-6)
    assert json.loads(out.attrs["eoai:parameters"]) == {"L": 0.5}  # JSON: netCDF-storable
    assert json.loads(index(pixel, "savi").attrs["eoai:parameters"]) == {"L": 1.0}
    k = index(pixel, "kNDVI", sigma=0.2)
    rbf = np.exp(-((n - r) ** 2) / (2 * 0.2**2))  # k(N, R); k(N, N) = 1
    np.testing.assert_allclose(k.values, (1 - rbf) / (1 + rbf), rtol=2e-6)
    np.testing.assert_allclose(k.values, np.tanh((n - r) ** 2 / (4 * 0.2**2)), rtol=2e-6)
    with pytest.raises(InputError, match=r"does not use parameter\(s\) \['L'\]"):
        index(pixel, "ndvi", L=0.5)
    both = index(pixel, ["ndvi", "savi"], L=0.5)  # a list: each index takes what it uses
    np.testing.assert_allclose(both.savi, out)
    assert json.loads(both.ndvi.attrs["eoai:parameters"]) == {}
    with pytest.raises(InputError, match=r"none of the indices \['ndvi', 'gndvi'\] uses"):
        index(pixel, ["ndvi", "gndvi"], L=0.5)


def test_accessor_docstring_example_and_float64():
    ds = xr.Dataset({"red": ("x", np.array([0.1, 0.2])), "nir": ("x", np.array([0.5, 0.4]))})
    out = ds.eoai.index("ndvi")
    assert out.round(3).values.tolist() == [0.667, 0.333]
    assert out.dtype == np.float64


def test_sentinel2_ids_band_dim_and_explicit_mapping(pixel):
    s2 = pixel.rename({"red": "B04", "nir": "B08"})[["B04", "B08"]]
    np.testing.assert_allclose(index(s2, "ndvi"), _hand("ndvi"), rtol=2e-6)
    arr = pixel[["red", "nir"]].to_array("band")
    np.testing.assert_allclose(index(arr, "ndvi"), _hand("ndvi"), rtol=2e-6)
    n8 = index(pixel, "ndvi", bands={"N": "nir08"})
    np.testing.assert_allclose(n8, (V["nir08"] - V["red"]) / (V["nir08"] + V["red"]), rtol=2e-6)
    assert json.loads(n8.attrs["eoai:bands"]) == {"N": "nir08", "R": "red"}
    with pytest.raises(UnknownBandError, match="variable 'nir2' is not in the data"):
        index(pixel, "ndvi", bands={"N": "nir2"})


def test_integer_dn_become_float():
    ds = xr.Dataset(
        {"red": ("x", np.array([1000], np.uint16)), "nir": ("x", np.array([3000], np.uint16))}
    )
    out = index(ds, "ndvi")
    assert out.dtype == np.float32 and float(out[0]) == pytest.approx(0.5)


def test_zero_denominator_gives_nan_not_inf():
    ds = xr.Dataset(
        {"red": ("x", np.array([0.0, 0.1, np.nan])), "nir": ("x", np.array([0.0, 0.3, 0.2]))}
    )
    out = index(ds, "ndvi").values
    assert np.isnan(out[0]) and out[1] == pytest.approx(0.5) and np.isnan(out[2])


def test_lazy_numpy_dask_agree_and_crs_kept(count_computes):
    from eoai.datasets import synthetic_cube

    cube, _ = synthetic_cube(shape=(32, 32), seed=3)
    lazy_cube = cube.chunk({"time": 10, "y": 16, "x": 16})
    with count_computes() as c:
        lazy = index(lazy_cube, ["ndvi", "evi", "ndmi", "ndre"])
        lazy_one = lazy_cube.eoai.index("nbr")
    assert c.count == 0
    assert lazy.ndvi.chunks == lazy_cube.red.chunks
    assert lazy_one.chunks == lazy_cube.red.chunks
    eager = index(cube, ["ndvi", "evi", "ndmi", "ndre"])
    xr.testing.assert_allclose(lazy.compute(), eager)
    assert eager.odc.crs.epsg == 32631 and lazy.ndvi.odc.crs.epsg == 32631
    np.testing.assert_array_equal(eager.ndvi.x, cube.x)
    np.testing.assert_array_equal(np.isnan(eager.ndvi.values), np.isnan(cube.red.values))


def test_ndvi_of_synthetic_cube_is_the_truth():
    from eoai.datasets import synthetic_cube

    cube, truth = synthetic_cube(shape=(24, 24), noise=0.0, seed=2)
    ndvi = index(cube, "ndvi")
    clear = truth.clear.values
    np.testing.assert_allclose(ndvi.values[clear], truth.ndvi.values[clear], atol=2e-6)


def test_unknown_index_lists_known_ones(pixel):
    with pytest.raises(UnknownBandError) as err:
        index(pixel, "ndvii")
    msg = str(err.value)
    assert "unknown spectral index 'ndvii'" in msg
    assert "did you mean NDVI" in msg
    assert "Common ones: NDVI, EVI" in msg and "list_indices()" in msg


def test_missing_band_names_it_and_the_bands_present():
    ds = xr.Dataset({"red": ("x", [0.1]), "nir": ("x", [0.5])})
    with pytest.raises(UnknownBandError) as err:
        index(ds, "NBR")
    msg = str(err.value)
    assert "needs band 'swir22' or 'B12'" in msg
    assert "bands present: nir, red" in msg


def test_other_input_errors(pixel):
    with pytest.raises(InputError, match="needs several bands"):
        index(pixel.red, "ndvi")
    with pytest.raises(InputError, match="needs an xarray Dataset"):
        index({"red": 1}, "ndvi")
    with pytest.raises(InputError, match="non-empty"):
        index(pixel, [])
    with pytest.raises(InputError, match="needs the parameter 'PAR'"):
        index(pixel, "NIRvP")
    par = index(pixel, "NIRvP", PAR=1200.0)
    np.testing.assert_allclose(par, _hand("ndvi") * V["nir"] * 1200.0, rtol=2e-6)
    with pytest.raises(InputError, match="needs the parameter 'lambdaN'"):
        index(pixel, "FAI", lambdaR=665.0, lambdaS1=1610.0)
    fai = index(pixel, "FAI", lambdaN=842.0, lambdaR=665.0, lambdaS1=1610.0)
    r, n, s1 = V["red"], V["nir"], V["swir16"]
    np.testing.assert_allclose(fai, n - (r + (s1 - r) * (842 - 665) / (1610 - 665)), rtol=2e-6)


def test_list_indices_filters():
    names = list_indices()
    assert len(names) > 200 and names == sorted(names)
    assert set(COMMON_INDICES) - {"NDRE", "BSI"} <= set(names)
    water = list_indices(domain="water")
    assert "MNDWI" in water and "NDVI" not in water
    rn = list_indices(bands=["red", "nir"])
    assert "NDVI" in rn and "EVI" not in rn
    with pytest.raises(InputError, match="unknown domain 'wet'"):
        list_indices(domain="wet")


def test_import_eoai_does_not_import_spyndex():
    code = "import sys, eoai, eoai.indices; print('spyndex' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert eoai.indices.index is index


def test_ndvi_of_the_real_sample_matches_the_provider(shared_data):
    """NDVI from the embedded L1C COGs (through eoai.load) equals the provider's NDVI layer."""
    from eoai.datasets import sample_catalog

    nc = xr.open_dataset(shared_data / "eolearn_slovenia" / "eolearn_testpatch.nc")
    cube = eoai.load(
        sample_catalog(), collections=["slovenia-l1c"], bands=["red", "nir"], mask=None
    )
    ndvi = cube.eoai.index("ndvi")
    assert ndvi.odc.crs.epsg == 32633 and ndvi.sizes["time"] == 5
    ref = nc.NDVI.sel(time_all=nc.time.values).values
    np.testing.assert_allclose(ndvi.values, ref, atol=1e-4)
