"""An unknown CRS anywhere a crs is accepted is an eoai CRSError naming the value and the fix.

Before (issue #16) each raised ``pyproj.exceptions.CRSError: Invalid projection: EPSG:99999`` from
inside odc-geo / geopandas.
"""

from __future__ import annotations

import pandas as pd
import pytest

import eoai
from eoai.errors import CRSError

FIX = "pass an EPSG code such as 'EPSG:32633'"


def test_load_unknown_crs():
    with pytest.raises(CRSError) as err:
        eoai.load(
            eoai.datasets.sample_catalog(), ["ndvi"], collections="slovenia-ndvi", crs="EPSG:99999"
        )
    msg = str(err.value)
    assert "load: crs='EPSG:99999' is not a CRS that PROJ knows" in msg and FIX in msg
    with pytest.raises(CRSError, match=r"crs='nonsense' is not a CRS that PROJ knows"):
        eoai.load(eoai.datasets.sample_catalog(), ["ndvi"], collections="slovenia-ndvi",
                  crs="nonsense")  # fmt: skip


def test_synthetic_cube_unknown_or_geographic_crs():
    with pytest.raises(CRSError) as err:
        eoai.datasets.synthetic_cube(shape=(8, 8), crs="EPSG:99999")
    assert "synthetic_cube: crs='EPSG:99999' is not a CRS that PROJ knows" in str(err.value)
    assert FIX in str(err.value)
    with pytest.raises(CRSError, match=r"crs='EPSG:4326' is a geographic CRS .* projected"):
        eoai.datasets.synthetic_cube(shape=(8, 8), crs="EPSG:4326")


def test_labels_and_extract_unknown_crs(tmp_path):
    from eoai.ml.samples import extract, read_labels

    table = pd.DataFrame({"x": [600005.0], "y": [4899995.0], "class": [1]})
    with pytest.raises(CRSError, match=r"read_labels: crs=99999 is not a CRS that PROJ knows"):
        read_labels(table, crs=99999)
    cube, _ = eoai.datasets.synthetic_cube(shape=(8, 8), freq="60D")
    path = tmp_path / "points.csv"
    table.to_csv(path, index=False)
    with pytest.raises(CRSError) as err:
        extract(cube, path, crs="EPSG:99999", min_samples=1)
    assert "extract: crs='EPSG:99999'" in str(err.value) and FIX in str(err.value)
    # a known CRS still works
    with pytest.warns(eoai.errors.FewSamplesWarning):
        df = extract(cube, path, crs="EPSG:32631", min_samples=1)
    assert len(df) == 1


def test_load_geographic_crs_needs_a_resolution():
    # before: a cube of 1 x 1 pixel (the items' 10 m read as 10 degrees), no error
    kw = dict(collections="slovenia-ndvi", datetime="2015-07")
    with pytest.raises(eoai.errors.InputError) as err:
        eoai.load(eoai.datasets.sample_catalog(), ["ndvi"], crs="EPSG:4326", **kw)
    msg = str(err.value)
    assert "crs='EPSG:4326' is in degrees but the items' pixels are in metre (9.99 metre)" in msg
    assert "pass resolution= in degrees, e.g. resolution=9e-05" in msg
    cube = eoai.load(
        eoai.datasets.sample_catalog(), ["ndvi"], crs="EPSG:4326", resolution=9e-05, **kw
    )
    assert cube.sizes["latitude"] > 50 and cube.sizes["longitude"] > 50
