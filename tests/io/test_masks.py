"""Mask definitions bit by bit: THEIA/MAJA CLM, Landsat C2 QA_PIXEL, SCL options, numpy vs dask."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from eoai.errors import InputError, UnknownBandError
from eoai.io.masks import CLM_BITS, QA_PIXEL_BITS, MaskSpec, mask, valid_fraction

# Landsat 8/9 C2 QA_PIXEL values (USGS Collection 2 L2 guide): bit 6 clear, 7 water, 3 cloud, ...
CLEAR_LAND = 21824  # bits 6, 8, 10, 12, 14
CLEAR_WATER = 21952  # + bit 7
HIGH_CLOUD = 22280  # bit 3 cloud + high confidence
FILL = 1


def _cube(values, name):
    mask_band = np.array(values, dtype="uint16").reshape(1, 1, -1)
    red = np.linspace(0.01, 0.2, mask_band.size, dtype="float32").reshape(mask_band.shape)
    return xr.Dataset(
        {"red": (("time", "y", "x"), red), name: (("time", "y", "x"), mask_band)},
        coords={"time": [np.datetime64("2023-08-10")]},
    )


def test_qa_pixel_bits():
    snow = 1 << QA_PIXEL_BITS["snow"] | 1 << QA_PIXEL_BITS["clear"]
    shadow = 1 << QA_PIXEL_BITS["cloud_shadow"]
    cirrus = 1 << QA_PIXEL_BITS["cirrus"]
    dilated = 1 << QA_PIXEL_BITS["dilated_cloud"]
    ds = _cube(
        [CLEAR_LAND, CLEAR_WATER, HIGH_CLOUD, FILL, snow, shadow, cirrus, dilated], "qa_pixel"
    )
    out = mask(ds)
    assert np.isnan(out.red.values[0, 0]).tolist() == [
        False,
        False,
        True,
        True,
        False,
        True,
        True,
        True,
    ]
    with_snow = mask(ds, MaskSpec.qa_pixel(snow=True))
    assert np.isnan(with_snow.red.values[0, 0, 4])
    assert "qa_pixel" not in out and out.attrs["eoai:mask"] == "qa_pixel bits 0,1,2,3,4"


def test_clm_bits_and_sample_style_mask():
    # MAJA CLM: any bit set = cloud or shadow by default; the embedded sample's 0/1 CLM as well
    values = [0, 1, 2, 1 << CLM_BITS["cloud_shadows"], 1 << CLM_BITS["thin_clouds"], 255]
    ds = _cube(values, "clm")
    assert np.isnan(mask(ds).red.values[0, 0]).tolist() == [False, True, True, True, True, True]
    only_shadows = mask(ds, MaskSpec.clm(bits=[CLM_BITS["cloud_shadows"]]))
    assert np.isnan(only_shadows.red.values[0, 0]).tolist() == [
        False,
        False,
        False,
        True,
        False,
        True,
    ]


def test_scl_snow_optional_and_fraction():
    ds = _cube([4, 5, 11, 9, 0, 6, 3, 10], "scl")
    assert valid_fraction(ds).values.tolist() == [0.5]
    assert valid_fraction(ds, MaskSpec.scl(snow=True)).values.tolist() == [0.375]
    kept = mask(ds, keep_mask=True)
    assert "scl" in kept and kept.scl.dtype == np.uint16


@pytest.mark.parametrize(
    "kind,values", [("scl", [4, 9, 0, 11]), ("qa_pixel", [CLEAR_LAND, HIGH_CLOUD, FILL, 0])]
)
def test_numpy_and_dask_agree(kind, values):
    eager = _cube(values * 64, kind)
    lazy = eager.chunk({"x": 32})
    a, b = mask(lazy), mask(eager)
    assert isinstance(a.red.data, da.Array)
    xr.testing.assert_identical(a.compute(), b)
    xr.testing.assert_identical(valid_fraction(lazy).compute(), valid_fraction(eager))


def test_dataarray_mask_and_errors():
    ds = _cube([4, 9], "scl")
    out = mask(ds.red, "scl", mask_band=ds.scl)
    assert np.isnan(out.values[0, 0]).tolist() == [False, True]
    with pytest.raises(InputError, match="needs mask_band"):
        mask(ds.red)
    with pytest.raises(UnknownBandError, match="no mask variable in this Dataset"):
        mask(ds[["red"]])
    with pytest.raises(InputError, match="unknown mask kind 'fmask'"):
        mask(ds, "fmask")
    with pytest.raises(InputError, match="bits must be in 0..15"):
        MaskSpec("clm", bits=(16,))
