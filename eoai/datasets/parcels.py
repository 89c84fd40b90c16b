"""The parcels of a synthetic scene as polygons: the connected regions of its truth class map.

:func:`parcels` turns the ``class`` map of the truth of :func:`eoai.datasets.synthetic_cube` (or any
integer class map with a CRS) into a GeoDataFrame with one polygon per 4-connected region of one
class. Neighbouring Voronoi parcels of the same class form one region (the truth has no parcel id),
so these are the objects an ideal segmentation of the class map finds. They serve as labelled
polygons (one polygon, one group for grouped cross-validation) and as the reference objects of the
segmentation tests.

Examples
--------
>>> import eoai
>>> cube, truth = eoai.datasets.synthetic_cube(shape=(16, 16), freq="30D", seed=0)
>>> gdf = eoai.datasets.parcels(truth)
>>> list(gdf.columns), gdf.crs.to_epsg()
(['class', 'class_name', 'parcel', 'geometry'], 32631)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from ..errors import CRSError, InputError, MissingDimensionError

if TYPE_CHECKING:  # pragma: no cover
    import geopandas

__all__ = ["parcels"]


def parcels(truth: xr.Dataset | xr.DataArray) -> geopandas.GeoDataFrame:
    """Polygons of the connected regions of a class map (one row per region).

    Parameters
    ----------
    truth
        The truth Dataset of :func:`eoai.datasets.synthetic_cube` (its ``class`` variable is
        used), or an integer class map DataArray with dims ``(y, x)`` and a CRS (odc-geo).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``class`` (int), ``class_name`` (from the ``class_names`` attribute, else the
        class as a string), ``parcel`` (0, 1, ... in raster order of the regions) and
        ``geometry`` (polygons on the pixel edges), in the CRS of the map.

    Raises
    ------
    eoai.errors.InputError
        ``truth`` has no ``class`` variable, or the map is not made of whole numbers.
    eoai.errors.MissingDimensionError
        The map lacks the ``y`` / ``x`` dimensions.
    eoai.errors.CRSError
        The map has no CRS.

    Examples
    --------
    >>> import eoai
    >>> cube, truth = eoai.datasets.synthetic_cube(shape=(16, 16), freq="30D", seed=0)
    >>> gdf = parcels(truth)
    >>> int(gdf.area.sum()) == 16 * 16 * 10 * 10  # the regions tile the scene
    True
    """
    import geopandas as gpd
    import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
    import rasterio.features
    from shapely.geometry import shape

    if isinstance(truth, xr.Dataset):
        if "class" not in truth.data_vars:
            raise InputError(
                "truth has no 'class' variable; pass the truth of eoai.datasets.synthetic_cube "
                f"or a class map DataArray (its variables: {list(truth.data_vars)})"
            )
        names = truth.attrs.get("class_names") or truth["class"].attrs.get("class_names")
        cls = truth["class"]
    elif isinstance(truth, xr.DataArray):
        cls = truth
        names = truth.attrs.get("class_names")
    else:
        raise InputError(
            f"truth must be an xarray Dataset or DataArray class map, got {type(truth).__name__}"
        )
    missing = [d for d in ("y", "x") if d not in cls.dims]
    if missing or cls.ndim != 2:
        raise MissingDimensionError(
            f"the class map must have dims (y, x), it has {tuple(cls.dims)}: select one time step "
            "or rename the spatial dims to y and x"
        )
    values = np.asarray(cls.transpose("y", "x").values)
    if not np.issubdtype(values.dtype, np.integer):
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        if values.dtype.kind != "f" or not np.array_equal(finite, np.round(finite)):
            raise InputError(f"the class map must hold whole numbers, it is {values.dtype}")
    try:
        gbox = cls.odc.geobox
    except Exception:  # noqa: BLE001
        gbox = None
    if gbox is None or gbox.crs is None:
        raise CRSError(
            "the class map has no CRS / geotransform; set it with "
            "cls.odc.assign_crs('EPSG:....') (odc-geo)"
        )
    valid = np.isfinite(values) if values.dtype.kind == "f" else None
    raster = np.where(valid, values, 0).astype("int32") if valid is not None else values
    shapes = list(
        rasterio.features.shapes(
            raster.astype("int32"), mask=valid, transform=gbox.affine, connectivity=4
        )
    )
    classes = [int(v) for _, v in shapes]

    def _name(c: int) -> str:
        if names is not None and 0 <= c < len(names):
            return str(names[c])
        return str(c)

    return gpd.GeoDataFrame(
        {
            "class": np.asarray(classes, dtype="int64"),
            "class_name": [_name(c) for c in classes],
            "parcel": np.arange(len(shapes), dtype="int64"),
        },
        geometry=[shape(g) for g, _ in shapes],
        crs=gbox.crs.to_wkt(),
    )
