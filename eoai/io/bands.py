"""Band names: resolve common names (``red``, ``nir``, ``swir16``, ``scl``...) to STAC asset keys.

Catalogs name the same band differently: Earth Search v1 uses common names as asset keys (``red``),
Earth Search v0 and Planetary Computer use band ids (``B04``), the Copernicus Data Space adds the
resolution (``B04_10m``), Landsat Collection 2 uses ``red`` or ``SR_B4``; Sentinel-1 polarisations are ``vv`` (Planetary
Computer, Earth Search), ``vv-rtc`` (early Planetary Computer RTC items), ``VV`` or ``gamma0_vv``. :func:`resolve_bands`
accepts any of these spellings and returns the asset key of each requested band.

Resolution order for a requested name ``n`` (first match wins):

1. an asset key equal to ``n`` (then case-insensitively);
2. the one asset whose ``eo:bands`` ``common_name`` is ``n`` (assets with role ``overview``,
   ``thumbnail`` or ``metadata`` and Earth Search's duplicate ``*-jp2`` assets are skipped);
3. the Sentinel-2 / Landsat band-id table below (``red`` -> ``B04``, ``B04_10m``, ``SR_B4``...);
4. an asset whose ``eo:bands`` ``name`` is ``n`` (``B8A``);
5. the common name of the band id ``n`` (``B04`` finds Earth Search v1's ``red``).

Examples
--------
>>> from eoai.io.bands import common_name
>>> common_name("B8A"), common_name("B04_10m"), common_name("SCL_20m")
('nir08', 'red', 'scl')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import UnknownBandError

#: Sentinel-2 MSI band ids -> common names (``rededge1..3`` are the STAC/odc conventions).
SENTINEL2_BANDS: dict[str, str] = {
    "B01": "coastal",
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B08": "nir",
    "B8A": "nir08",
    "B09": "nir09",
    "B10": "cirrus",
    "B11": "swir16",
    "B12": "swir22",
    "SCL": "scl",
    "AOT": "aot",
    "WVP": "wvp",
}

#: Landsat 8/9 Collection 2 Level-2 asset names (USGS spelling) -> common names.
LANDSAT_C2_BANDS: dict[str, str] = {
    "SR_B1": "coastal",
    "SR_B2": "blue",
    "SR_B3": "green",
    "SR_B4": "red",
    "SR_B5": "nir08",
    "SR_B6": "swir16",
    "SR_B7": "swir22",
    "ST_B10": "lwir11",
    "QA_PIXEL": "qa_pixel",
}

#: THEIA / MAJA Sentinel-2 L2A asset names (flat reflectance ``FRE``) -> common names.
THEIA_BANDS: dict[str, str] = {
    "B2": "blue",
    "B3": "green",
    "B4": "red",
    "B5": "rededge1",
    "B6": "rededge2",
    "B7": "rededge3",
    "B8": "nir",
    "B8A": "nir08",
    "B11": "swir16",
    "B12": "swir22",
    "CLM_R1": "clm",
    "CLM_R2": "clm20",
}

#: Sentinel-1 asset keys -> polarisation names (``vv``, ``vh``, ``hh``, ``hv``): Planetary Computer
#: ``sentinel-1-rtc`` (``vv``; ``vv-rtc`` in its early items), ``sentinel-1-grd``, Earth Search
#: (``vv``), the Copernicus Data Space (``VV``) and the AWS RTC "indigo" tiles (``gamma0_vv``).
SENTINEL1_BANDS: dict[str, str] = {
    f"{prefix}{pol.upper()}{suffix}": pol
    for pol in ("vv", "vh", "hh", "hv")
    for prefix, suffix in (("", ""), ("", "-RTC"), ("GAMMA0_", ""), ("SIGMA0_", ""))
}

_SKIP_ROLES = {"thumbnail", "overview", "metadata", "visual", "tiles"}
_RES_SUFFIX = re.compile(r"^(?P<band>.+?)(_\d+m)$", re.IGNORECASE)
_PREFIXES = ("FRE_", "SRE_")


def common_name(asset_key: str) -> str | None:
    """Common name of a band id or asset key, or None when it is not a known band id.

    Parameters
    ----------
    asset_key : str
        An asset key or band id (``B04``, ``B04_10m``, ``SR_B4``, ``FRE_B4``, ``SCL_20m``).

    Returns
    -------
    str or None

    Examples
    --------
    >>> common_name("SR_B5"), common_name("FRE_B8"), common_name("ndvi")
    ('nir08', 'nir', None)
    >>> common_name("vv-rtc"), common_name("gamma0_vh"), common_name("HH")
    ('vv', 'vh', 'hh')
    """
    key = asset_key
    m = _RES_SUFFIX.match(key)
    if m:
        key = m.group("band")
    for prefix in _PREFIXES:
        if key.upper().startswith(prefix):
            key = key[len(prefix) :]
    up = key.upper()
    for table in (SENTINEL2_BANDS, LANDSAT_C2_BANDS, THEIA_BANDS, SENTINEL1_BANDS):
        if up in table:
            return table[up]
    if re.fullmatch(r"B0?\d|B1[0-2]", up):  # B2 -> B02 (THEIA spelling of S2 ids)
        return SENTINEL2_BANDS.get(f"B{int(up[1:]):02d}")
    return None


def _resolution_of(key: str) -> int:
    m = _RES_SUFFIX.match(key)
    return int(m.group(2)[1:-1]) if m else 0


def _is_data_asset(key: str, asset: Any) -> bool:
    roles = set(getattr(asset, "roles", None) or [])
    if roles & _SKIP_ROLES and "data" not in roles:
        return False
    if key.endswith("-jp2"):
        return False
    media = (getattr(asset, "media_type", None) or "").lower()
    extra = getattr(asset, "extra_fields", {}) or {}
    if any(t in media for t in ("tiff", "jp2", "netcdf", "zarr")):
        return True
    if "raster:bands" in extra or "eo:bands" in extra or "data" in roles:
        return True
    return common_name(key) is not None


def available_bands(items: Iterable[Any]) -> dict[str, str]:
    """Map every name a band can be asked by to its asset key, over all ``items``.

    Parameters
    ----------
    items : iterable of pystac.Item

    Returns
    -------
    dict
        ``{name: asset_key}`` with asset keys, their common names and band ids.

    Examples
    --------
    >>> import pystac, datetime as dt
    >>> item = pystac.Item("a", None, None, dt.datetime(2020, 1, 1), {})
    >>> item.add_asset("B04", pystac.Asset("B04.tif", media_type="image/tiff"))
    >>> available_bands([item])["red"]
    'B04'
    """
    names: dict[str, str] = {}
    common_count: dict[str, set[str]] = {}
    for item in items:
        for key, asset in item.assets.items():
            if not _is_data_asset(key, asset):
                continue
            names.setdefault(key, key)
            cn = common_name(key)
            if cn is not None:
                common_count.setdefault(cn, set()).add(key)
            for band in asset.extra_fields.get("eo:bands", []) or []:
                if len(asset.extra_fields.get("eo:bands", [])) != 1:
                    break
                if band.get("common_name"):
                    common_count.setdefault(band["common_name"], set()).add(key)
                if band.get("name"):
                    names.setdefault(band["name"], key)
    for cn, keys in common_count.items():
        if cn in names:
            continue
        if len(keys) == 1:
            names[cn] = next(iter(keys))
        else:  # ambiguous common name (e.g. 'rededge'): prefer the key whose id maps to it
            exact = [k for k in keys if common_name(k) == cn]
            if len(exact) > 1:  # B04_10m, B04_20m, B04_60m (CDSE): the finest resolution
                exact = (
                    sorted(exact, key=_resolution_of)[:1]
                    if all(map(_RES_SUFFIX.match, exact))
                    else exact
                )
            if len(exact) == 1:
                names[cn] = exact[0]
    return names


def resolve_bands(items: Sequence[Any], bands: Sequence[str]) -> dict[str, str]:
    """Asset key of each requested band, by asset key, common name or band id.

    Parameters
    ----------
    items : sequence of pystac.Item
    bands : sequence of str
        Requested names (``"red"``, ``"B04"``, ``"scl"``...).

    Returns
    -------
    dict
        ``{requested_name: asset_key}`` in the order requested.

    Raises
    ------
    eoai.errors.UnknownBandError
        When a name matches no asset; the message lists the available names.

    Examples
    --------
    >>> import pystac, datetime as dt
    >>> item = pystac.Item("a", None, None, dt.datetime(2020, 1, 1), {})
    >>> item.add_asset("B8A", pystac.Asset("B8A.tif", media_type="image/tiff"))
    >>> resolve_bands([item], ["nir08"])
    {'nir08': 'B8A'}
    """
    if isinstance(bands, str):
        bands = [bands]
    names = available_bands(items)
    lower = {k.lower(): v for k, v in names.items()}
    out: dict[str, str] = {}
    for band in bands:
        if not isinstance(band, str):
            raise UnknownBandError(f"band names must be strings, got {band!r}")
        key = names.get(band) or lower.get(band.lower())
        # "B04" where assets say "red"
        if key is None and (common := common_name(band)) is not None:
            key = names.get(common)
        if key is None:
            available = ", ".join(sorted(names, key=str.lower)) or "(no data asset)"
            raise UnknownBandError(
                f"band {band!r} is not in these items; available bands (asset keys and common "
                f"names): {available}. Pass one of them in bands=[...]."
            )
        out[band] = key
    return out
