"""Sentinel-2 band bookkeeping for super-resolution: names, native resolutions, sensor MTF.

Bands may be called by their STAC common names (``rededge1``) or by their Sentinel-2 ids
(``B05``); both are recognised. The MTF values at the Nyquist frequency of each band are the
ones used by Lanaras et al. (SupReME, S2Sharp, DSen2) to simulate the sensor's blur.

Examples
--------
>>> from eoai.superres.bands import band_id, native_resolution, gaussian_sigma
>>> band_id("rededge1"), native_resolution("B8A")
('B05', 20)
>>> round(gaussian_sigma("B05", 2), 3)
0.886
"""

from __future__ import annotations

import math

from ..errors import UnknownBandError
from ..io.bands import SENTINEL2_BANDS

#: STAC ``eo:common_name`` -> Sentinel-2 band id (from the loader's table, reflectance bands only).
COMMON_TO_ID: dict[str, str] = {c: i for i, c in SENTINEL2_BANDS.items() if i.startswith("B")}
ID_TO_COMMON = {v: k for k, v in COMMON_TO_ID.items()}

#: Native ground sampling distance in metres.
RESOLUTION: dict[str, int] = {
    "B01": 60,
    "B02": 10,
    "B03": 10,
    "B04": 10,
    "B05": 20,
    "B06": 20,
    "B07": 20,
    "B08": 10,
    "B8A": 20,
    "B09": 60,
    "B10": 60,
    "B11": 20,
    "B12": 20,
}

#: Modulation transfer function at Nyquist (Lanaras et al. 2017/2018; S2 radiometric report).
MTF_NYQUIST: dict[str, float] = {
    "B01": 0.32,
    "B02": 0.26,
    "B03": 0.28,
    "B04": 0.24,
    "B05": 0.38,
    "B06": 0.34,
    "B07": 0.34,
    "B08": 0.26,
    "B8A": 0.33,
    "B09": 0.26,
    "B10": 0.26,
    "B11": 0.22,
    "B12": 0.23,
}

#: Order in which default bands are picked.
BANDS_10M = ("B02", "B03", "B04", "B08")
BANDS_20M = ("B05", "B06", "B07", "B8A", "B11", "B12")


def band_id(name: str) -> str:
    """Sentinel-2 band id (``"B05"``) of a common name or id, case-insensitive.

    Parameters
    ----------
    name : str
        ``"rededge1"``, ``"B05"``, ``"b5"``...

    Returns
    -------
    str
        The band id.

    Raises
    ------
    eoai.errors.UnknownBandError
        If the name is not a Sentinel-2 band.

    Examples
    --------
    >>> band_id("nir08"), band_id("b5"), band_id("B12")
    ('B8A', 'B05', 'B12')
    """
    low = str(name).lower()
    if low in COMMON_TO_ID:
        return COMMON_TO_ID[low]
    up = str(name).upper()
    if up.startswith("B") and len(up) == 2 and up[1].isdigit():
        up = "B0" + up[1]
    if up in RESOLUTION:
        return up
    raise UnknownBandError(
        f"band {name!r} is not a Sentinel-2 band; use a common name "
        f"({', '.join(COMMON_TO_ID)}) or an id (B01..B12, B8A)"
    )


def native_resolution(name: str) -> int:
    """Native resolution in metres of a Sentinel-2 band.

    Examples
    --------
    >>> native_resolution("swir16")
    20
    """
    return RESOLUTION[band_id(name)]


def gaussian_sigma(name: str | None, factor: int) -> float:
    """Std-dev (in fine pixels) of the Gaussian blur matching a band's MTF for a ``factor`` reduction.

    A Gaussian of std ``s`` pixels has frequency response ``exp(-2 pi^2 s^2 f^2)``; setting it to
    the band's MTF at the Nyquist frequency of the coarse grid (``f = 1 / (2 factor)``) gives
    ``s = factor * sqrt(-2 ln MTF) / pi``. Unknown names (``None``) use MTF 0.3.

    Examples
    --------
    >>> round(gaussian_sigma("B02", 2), 3), round(gaussian_sigma(None, 2), 3)
    (1.045, 0.988)
    """
    mtf = MTF_NYQUIST.get(band_id(name), 0.3) if name is not None else 0.3
    return factor * math.sqrt(-2.0 * math.log(mtf)) / math.pi


def find_bands(names, wanted) -> list[str]:
    """Names in ``names`` (variables of a cube) whose band id is in ``wanted``, in ``wanted`` order.

    Examples
    --------
    >>> find_bands(["red", "B05", "nir", "ndvi"], ("B02", "B04", "B05", "B08"))
    ['red', 'B05', 'nir']
    """
    by_id: dict[str, str] = {}
    for n in names:
        try:
            bid = band_id(n)
        except UnknownBandError:
            continue
        by_id.setdefault(bid, n)
    return [by_id[b] for b in wanted if b in by_id]
