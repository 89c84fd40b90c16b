"""Named catalog presets and per-collection reflectance scaling.

A preset names a public STAC API and what eoai needs to know to load it well:

========================  ==========================================================  ==============
name                      STAC API                                                    default
========================  ==========================================================  ==============
``earth-search``          https://earth-search.aws.element84.com/v1 (Element 84, AWS)  sentinel-2-l2a
``planetary-computer``    https://planetarycomputer.microsoft.com/api/stac/v1          sentinel-2-l2a
``cdse``                  https://stac.dataspace.copernicus.eu/v1 (Copernicus Data     sentinel-2-l2a
                          Space Ecosystem)
``theia``                 https://api.stac.teledetection.fr (THEIA / MAJA L2A)         sentinel2-l2a-
                                                                                      theia
========================  ==========================================================  ==============

Sentinel-1 presets (same APIs, Sentinel-1 collections; units, asset keys and filters in
:mod:`eoai.io.sentinel1`): ``planetary-computer-s1-rtc`` (``sentinel-1-rtc``, linear gamma0),
``planetary-computer-s1-grd``, ``earth-search-s1-grd`` and ``cdse-s1-grd`` (``sentinel-1-grd``,
amplitude DN in radar geometry: searchable, not loadable onto a map grid).

- **Planetary Computer** asset URLs need a SAS token: with the ``planetary-computer`` package
  installed, items are signed (``planetary_computer.sign_inplace``) when searched and again right
  before loading; without it, loading fails with HTTP 403 and eoai says to install it.
- **CDSE** assets live on the ``eodata`` S3 endpoint: set ``AWS_S3_ENDPOINT=eodata.dataspace.
  copernicus.eu``, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (CDSE S3 keys) and
  ``AWS_VIRTUAL_HOSTING=FALSE`` before loading.
- **THEIA** flat-reflectance bands (``FRE_B*``) are int16 with scale 1e-4, nodata -10000; the
  cloud mask is ``CLM_R1`` (10 m) / ``CLM_R2`` (20 m), bits described in :mod:`eoai.io.masks`.

Scaling rule (:func:`band_scaling`), per item and band:

1. mask / classification bands (SCL, CLM, QA_PIXEL...) are never scaled;
2. ``raster:bands`` ``scale``/``offset``/``nodata`` of the asset when present;
3. else the collection's entry in :data:`COLLECTION_SCALING`;
4. Sentinel-2 L1C/L2A reflectance bands: scale 1e-4; the offset follows the processing baseline
   (``s2:processing_baseline``, ``sentinel:processing_baseline``, ``processing:version`` or the
   ``_Nxxxx_`` of the product id): -0.1 (-1000 DN) for baseline >= 04.00, 0 before, *unless* the
   provider says it already shifted the DN (Earth Search ``earthsearch:boa_offset_applied`` /
   ``sentinel:boa_offset_applied`` = true), in which case 0 — Earth Search v1 items such as those in
   ``shared/data/earthsearch_l2a`` carry ``raster:bands`` offset -0.1 *and* harmonised DN (vegetation
   red ~300 DN), so trusting ``raster:bands`` there would give negative reflectance.

Examples
--------
>>> from eoai.io.presets import get_preset
>>> get_preset("earth-search").url
'https://earth-search.aws.element84.com/v1'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .bands import common_name

S2_REFLECTANCE = {
    "coastal",
    "blue",
    "green",
    "red",
    "rededge1",
    "rededge2",
    "rededge3",
    "rededge",
    "nir",
    "nir08",
    "nir09",
    "cirrus",
    "swir16",
    "swir22",
}
#: names of bands that hold classes or bit flags: loaded as integers, never scaled.
MASK_BANDS = {"scl", "clm", "clm20", "qa_pixel", "qa_radsat", "qa_aerosol", "fmask", "mg2", "sat"}
#: the one table of mask and class variables (lower case): the bands above plus the names other
#: tools give masks (eo-learn's ``IS_DATA`` / ``IS_VALID``). Never interpolated (``gapfill``),
#: never compared as reflectance (``change``), resampled by nearest neighbour (``stack_sources``).
MASK_VARIABLES = frozenset(MASK_BANDS | {"qa", "mask", "cloud_mask", "is_data", "is_valid"})
_FLAG_KEYS = ("flag_values", "flag_masks", "flag_meanings", "eoai:mask_kind")


def is_class_or_mask(var: Any) -> bool:
    """Whether a variable holds class codes or mask bits, not measurements.

    True for CF ``flag_values`` / ``flag_masks`` / ``flag_meanings``, eoai's ``eoai:mask_kind``,
    or a name in :data:`MASK_VARIABLES` (case-insensitive).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> is_class_or_mask(xr.DataArray(np.zeros(2), name="SCL"))
    True
    >>> is_class_or_mask(xr.DataArray(np.zeros(2), name="lulc", attrs={"flag_values": [0, 1]}))
    True
    >>> is_class_or_mask(xr.DataArray(np.zeros(2), name="red"))
    False
    """
    attrs = getattr(var, "attrs", {}) or {}
    return any(k in attrs for k in _FLAG_KEYS) or str(var.name).lower() in MASK_VARIABLES


@dataclass(frozen=True)
class Preset:
    """A public STAC API and how to load it.

    Parameters
    ----------
    name : str
    url : str
        Root of the STAC API.
    collections : tuple of str
        Collections searched when the user gives none.
    sign : bool
        Sign asset URLs with ``planetary_computer.sign_inplace``.
    description : str

    Examples
    --------
    >>> get_preset("planetary-computer").sign
    True
    """

    name: str
    url: str
    collections: tuple[str, ...]
    sign: bool = False
    description: str = ""

    def modifier(self) -> Callable[[Any], Any] | None:
        """Function that signs STAC objects in place (Planetary Computer), or None.

        Examples
        --------
        >>> get_preset("earth-search").modifier() is None
        True
        """
        if not self.sign:
            return None
        try:
            import planetary_computer
        except ImportError:  # pragma: no cover - depends on the environment
            return None
        return planetary_computer.sign_inplace


#: per-collection (scale, offset, nodata) of reflectance bands when items lack ``raster:bands``.
COLLECTION_SCALING: dict[str, tuple[float, float, float | None]] = {
    "sentinel-2-l2a": (1e-4, 0.0, 0),
    "sentinel-s2-l2a-cogs": (1e-4, 0.0, 0),
    "sentinel-2-l1c": (1e-4, 0.0, 0),
    "sentinel-s2-l1c": (1e-4, 0.0, 0),
    "sentinel-2-c1-l2a": (1e-4, 0.0, 0),
    "slovenia-l1c": (1e-4, 0.0, None),
    "landsat-c2-l2": (2.75e-5, -0.2, 0),
    "landsat-c2l2-sr": (2.75e-5, -0.2, 0),
    "sentinel2-l2a-theia": (1e-4, 0.0, -10000),
}

PRESETS: dict[str, Preset] = {
    "earth-search": Preset(
        "earth-search",
        "https://earth-search.aws.element84.com/v1",
        ("sentinel-2-l2a",),
        description="Element 84 Earth Search v1 (AWS open data): Sentinel-2 L2A COGs, Landsat C2.",
    ),
    "planetary-computer": Preset(
        "planetary-computer",
        "https://planetarycomputer.microsoft.com/api/stac/v1",
        ("sentinel-2-l2a",),
        sign=True,
        description="Microsoft Planetary Computer: Sentinel-2 L2A, Landsat C2 L2 (signed URLs).",
    ),
    "cdse": Preset(
        "cdse",
        "https://stac.dataspace.copernicus.eu/v1",
        ("sentinel-2-l2a",),
        description="Copernicus Data Space Ecosystem STAC (assets on the eodata S3 endpoint).",
    ),
    "theia": Preset(
        "theia",
        "https://api.stac.teledetection.fr",
        ("sentinel2-l2a-theia",),
        description="THEIA Sentinel-2 L2A (MAJA) with CLM cloud masks.",
    ),
}

#: Sentinel-1 presets: the same APIs, Sentinel-1 collections (units, asset keys per collection:
#: :mod:`eoai.io.sentinel1`). :func:`get_preset` knows them as it knows :data:`PRESETS`.
SENTINEL1_PRESETS: dict[str, Preset] = {
    "planetary-computer-s1-rtc": Preset(
        "planetary-computer-s1-rtc",
        "https://planetarycomputer.microsoft.com/api/stac/v1",
        ("sentinel-1-rtc",),
        sign=True,
        description="Planetary Computer Sentinel-1 RTC: gamma0, linear power, UTM 10 m, assets "
        "vv/vh/hh/hv (vv-rtc... in early items); signed URLs.",
    ),
    "planetary-computer-s1-grd": Preset(
        "planetary-computer-s1-grd",
        "https://planetarycomputer.microsoft.com/api/stac/v1",
        ("sentinel-1-grd",),
        sign=True,
        description="Planetary Computer Sentinel-1 GRD: amplitude DN in radar geometry "
        "(search only: terrain-correct before loading).",
    ),
    "earth-search-s1-grd": Preset(
        "earth-search-s1-grd",
        "https://earth-search.aws.element84.com/v1",
        ("sentinel-1-grd",),
        description="Earth Search Sentinel-1 GRD (stactools-sentinel1 layout, requester-pays "
        "S3): amplitude DN in radar geometry (search only).",
    ),
    "cdse-s1-grd": Preset(
        "cdse-s1-grd",
        "https://stac.dataspace.copernicus.eu/v1",
        ("sentinel-1-grd",),
        description="Copernicus Data Space Sentinel-1 GRD (assets on the eodata S3 endpoint): "
        "amplitude DN in radar geometry (search only).",
    ),
}


def get_preset(name: str | Preset | None) -> Preset | None:
    """Look up a preset by name (``None`` gives ``None``).

    Raises
    ------
    eoai.errors.InputError
        Unknown name; the message lists the presets.

    Examples
    --------
    >>> get_preset("cdse").collections
    ('sentinel-2-l2a',)
    """
    if name is None or isinstance(name, Preset):
        return name
    key = str(name).lower().replace("_", "-")
    aliases = {
        "earthsearch": "earth-search",
        "pc": "planetary-computer",
        "mpc": "planetary-computer",
        "pc-s1-rtc": "planetary-computer-s1-rtc",
        "pc-s1-grd": "planetary-computer-s1-grd",
    }
    key = aliases.get(key, key)
    known = {**PRESETS, **SENTINEL1_PRESETS}
    if key not in known:
        raise InputError(f"unknown preset {name!r}; use one of {', '.join(known)}")
    return known[key]


def preset_names() -> list[str]:
    """Names of every preset (:data:`PRESETS` and :data:`SENTINEL1_PRESETS`).

    Examples
    --------
    >>> "planetary-computer-s1-rtc" in preset_names()
    True
    """
    return [*PRESETS, *SENTINEL1_PRESETS]


_BASELINE_RE = re.compile(r"_N(\d{2})(\d{2})_")


def processing_baseline(props: dict[str, Any]) -> float | None:
    """Sentinel-2 processing baseline of an item (``4.0`` for ``"04.00"``), or None.

    Examples
    --------
    >>> processing_baseline({"s2:processing_baseline": "05.09"})
    5.09
    >>> processing_baseline({"sentinel:product_id": "S2A_MSIL2A_20200714T115221_N0214_R123_T28QCH"})
    2.14
    """
    for key in ("s2:processing_baseline", "sentinel:processing_baseline", "processing:version"):
        value = props.get(key)
        if value not in (None, ""):
            try:
                return float(value)
            except (TypeError, ValueError):
                pass
    for key in ("s2:product_uri", "sentinel:product_id", "s2:granule_id", "s2:datatake_id"):
        m = _BASELINE_RE.search(str(props.get(key, "")) + "_")
        if m:
            return int(m.group(1)) + int(m.group(2)) / 100
    return None


def _is_sentinel2(item: Any) -> bool:
    props = item.properties
    text = " ".join(
        str(x)
        for x in (item.collection_id, props.get("platform"), props.get("constellation"), item.id)
    ).lower()
    return "sentinel-2" in text or "sentinel2" in text or text.startswith("s2") or "_msil" in text


def band_scaling(item: Any, asset_key: str, name: str | None = None) -> tuple[float, float] | None:
    """``(scale, offset)`` turning an asset's DN into physical values; None for mask bands.

    Parameters
    ----------
    item : pystac.Item
    asset_key : str
    name : str, optional
        The name the user asked for (common name), used to recognise mask bands.

    Examples
    --------
    >>> import pystac, datetime as dt
    >>> it = pystac.Item("S2B_x", None, None, dt.datetime(2022, 6, 1),
    ...                  {"platform": "sentinel-2b", "s2:processing_baseline": "04.00"},
    ...                  collection="sentinel-2-l2a")
    >>> it.add_asset("B04", pystac.Asset("B04.tif"))
    >>> band_scaling(it, "B04")
    (0.0001, -0.1)
    """
    cn = common_name(asset_key) or (name or asset_key).lower()
    if cn in MASK_BANDS or asset_key.lower() in MASK_BANDS or (name or "").lower() in MASK_BANDS:
        return None
    asset = item.assets[asset_key]
    rb = (asset.extra_fields.get("raster:bands") or [{}])[0]
    scale, offset = rb.get("scale"), rb.get("offset")
    coll = COLLECTION_SCALING.get(str(item.collection_id or "").lower())
    if scale is None and coll is not None:
        scale = coll[0]
    if offset is None and coll is not None:
        offset = coll[1]
    if _is_sentinel2(item) and cn in S2_REFLECTANCE:
        props = item.properties
        scale = 1e-4 if scale is None else float(scale)
        harmonised = props.get("earthsearch:boa_offset_applied") or props.get(
            "sentinel:boa_offset_applied"
        )
        baseline = processing_baseline(props)
        if harmonised:
            offset = 0.0
        elif baseline is not None:
            offset = -1000 * scale if baseline >= 4.0 else 0.0
    return (1.0 if scale is None else float(scale), 0.0 if offset is None else float(offset))


def check_preset_name(preset: Any) -> None:
    """Validate a preset argument (``None``, a name or a :class:`Preset`).

    Examples
    --------
    >>> check_preset_name("earth-search")
    """
    if preset is not None and not isinstance(preset, str | Preset):
        raise InputError(
            f"preset must be a name ({', '.join(preset_names())}) or None, got {preset!r}"
        )
    get_preset(preset)
