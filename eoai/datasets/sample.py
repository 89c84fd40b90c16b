"""The embedded real sample: a static STAC catalog of Sentinel-2 data over central Slovenia.

Source: sentinel-hub/eo-learn ``example_data/TestEOPatch`` (MIT licence, Copyright (c) Sinergise),
converted by ``scripts/build_sample_catalog.py``. Contains modified Copernicus Sentinel data
(2015-2017). 101 x 100 pixels of 10 m in EPSG:32633 (UTM 33N):

- collection ``slovenia-ndvi``: 68 items (2015-07-11 ... 2017-12), assets ``ndvi`` (float32, NaN where
  the provider had no data) and ``clm`` (uint8 s2cloudless cloud mask: 1 cloud, 0 clear, 255 no data);
- collection ``slovenia-l1c``: the 5 items (2015-07-11 ... 09-09) with the 13 L1C bands as uint16 DN
  (common names coastal, blue, green, red, rededge1-3, nir, nir08, nir09, cirrus, swir16, swir22;
  ``raster:bands`` scale 1e-4, nodata 0) plus ``clm``;
- ``lulc_polygons.geojson``: the land-cover reference as polygons (``class``, ``class_id``).

See the ``NOTICE`` file of the project for the attribution.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import geopandas

__all__ = ["sample_path", "sample_catalog", "sample_labels"]

#: Land-cover classes of the sample (id -> name), as in the provider's LULC enum.
LULC_CLASSES: dict[int, str] = {
    1: "cultivated_land",
    2: "forest",
    3: "grassland",
    4: "shrubland",
    8: "artificial_surface",
}


def sample_path(*parts: str) -> Path:
    """Path of the embedded sample folder, or of a file inside it.

    Parameters
    ----------
    *parts
        Path components below the sample folder (e.g. ``"slovenia-ndvi"``, ``"collection.json"``).

    Returns
    -------
    pathlib.Path
        An existing path inside the installed package.

    Raises
    ------
    eoai.errors.InputError
        If the path does not exist (the message lists what the folder holds).

    Examples
    --------
    >>> from eoai.datasets import sample_path
    >>> sample_path("catalog.json").name
    'catalog.json'
    """
    root = Path(str(resources.files("eoai.datasets"))) / "sample"
    path = root.joinpath(*parts)
    if not path.exists():
        have = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        raise InputError(
            f"{path} is not in the embedded sample (it holds: {', '.join(have) or 'nothing'}); "
            "reinstall eoai or rebuild it with scripts/build_sample_catalog.py"
        )
    return path


def sample_catalog() -> Path:
    """Path of the embedded static STAC catalog (``catalog.json``) of real Sentinel-2 data.

    Central Slovenia, 101 x 100 pixels at 10 m, EPSG:32633. Collection ``slovenia-ndvi`` has 68 dates
    (2015-07-11 to 2017-12) with assets ``ndvi`` and ``clm`` (cloud mask, 1 = cloud); collection
    ``slovenia-l1c`` has 5 dates with the 13 Sentinel-2 L1C bands (uint16 DN, scale 1e-4, by common
    name) and ``clm``. Source: eo-learn TestEOPatch (MIT, sentinel-hub); contains modified Copernicus
    Sentinel data.

    Returns
    -------
    pathlib.Path
        The ``catalog.json`` path (open it with ``pystac.Catalog.from_file`` or pass it to
        :func:`eoai.load`).

    Examples
    --------
    >>> import pystac
    >>> from eoai.datasets import sample_catalog
    >>> cat = pystac.Catalog.from_file(str(sample_catalog()))
    >>> sorted(c.id for c in cat.get_children())
    ['slovenia-l1c', 'slovenia-ndvi']
    """
    return sample_path("catalog.json")


def sample_labels() -> geopandas.GeoDataFrame:
    """Land-cover reference polygons of the embedded sample (EPSG:32633).

    Columns ``class`` (name: cultivated_land, forest, grassland, shrubland, artificial_surface),
    ``class_id`` (the provider's LULC code) and ``geometry``. Source: eo-learn TestEOPatch
    ``LULC`` (MIT, sentinel-hub); the class names are best read as indicative.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per polygon.

    Examples
    --------
    >>> from eoai.datasets import sample_labels
    >>> labels = sample_labels()
    >>> labels.crs.to_epsg(), "class" in labels.columns
    (32633, True)
    """
    import geopandas as gpd

    return gpd.read_file(sample_path("lulc_polygons.geojson"))
