"""Sentinel-1 in :func:`eoai.search` / :func:`eoai.load`: filters, polarisations, units.

Collections eoai knows (:data:`SENTINEL1_COLLECTIONS`), with the unit of their pixels, which
:func:`eoai.load` records in ``attrs["units"]`` of each polarisation band:

=========================  ====================================  ==========  =================
collection                 where (preset)                        units       map-projected
=========================  ====================================  ==========  =================
``sentinel-1-rtc``         Planetary Computer                    linear      yes (UTM, 10 m)
                           (``planetary-computer-s1-rtc``)       (gamma0)
``sentinel-1-grd``         Planetary Computer, Earth Search,     amplitude   no (radar
                           CDSE (``*-s1-grd``)                   (DN)        geometry, GCPs)
``sentinel1-grd``          stactools-sentinel1 (Earth Search's   amplitude   no
                           item layout)                          (DN)
``sentinel-s1-rtc-indigo`` AWS RTC tiles (``gamma0_vv``...)      linear      yes (MGRS UTM)
=========================  ====================================  ==========  =================

Planetary Computer documents its RTC pixels as linear gamma0 (terrain-flattened, Small 2011); GRD
pixels are detected amplitude digital numbers, in radar geometry (eoai refuses to put them on a map
grid: terrain-correct them first, or use ``sentinel-1-rtc``). Any other Sentinel-1 source (a local
catalog of dB GeoTIFFs...) says its unit through ``raster:bands`` ``unit`` of the asset (``"dB"``,
``"linear"``, ``"amplitude"``) or through ``load(..., units="dB")``; without either, :func:`load`
raises an :class:`~eoai.errors.InputError` asking for ``units=`` (guessing would be wrong by a
factor of ten or a logarithm).

Search filters (:func:`filter_sentinel1`, also arguments of :func:`eoai.search` and
:func:`eoai.load`): ``orbit_state`` (``sat:orbit_state``: ascending / descending),
``relative_orbit`` (``sat:relative_orbit``: one or several), ``instrument_mode``
(``sar:instrument_mode``: IW, EW, SM, WV) and ``polarizations`` (``sar:polarizations`` must hold
all of them). Against a STAC API the first three are sent as CQL2 ``filter`` (APIs conforming to
*filter*) or ``query`` (APIs conforming to *query*); the result is filtered again client-side in
every case, and always client-side for static catalogs, items in memory and APIs conforming to
neither (``rustac serve``, many small servers).

Examples
--------
>>> from eoai.io.sentinel1 import normalise_units
>>> normalise_units("decibel"), normalise_units("Linear")
('dB', 'linear')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .._skipped import warn_at_user
from ..errors import DataSkippedWarning, InputError, UnknownBandError
from .bands import SENTINEL1_BANDS, common_name

__all__ = [
    "SENTINEL1_COLLECTIONS",
    "POLARISATIONS",
    "UNITS",
    "S1Collection",
    "filter_sentinel1",
    "is_sentinel1",
    "normalise_units",
    "check_s1_filters",
]

#: polarisation band names (common names of Sentinel-1 assets)
POLARISATIONS = ("vv", "vh", "hh", "hv")
#: the units eoai knows for backscatter: linear power (sigma0 / gamma0), decibels, amplitude (DN)
UNITS = ("linear", "dB", "amplitude")
_UNIT_SPELLINGS = {
    "linear": "linear",
    "lin": "linear",
    "power": "linear",
    "linear power": "linear",
    "intensity": "linear",
    "db": "dB",
    "decibel": "dB",
    "decibels": "dB",
    "amplitude": "amplitude",
    "dn": "amplitude",
    "amp": "amplitude",
}
_MODES = ("IW", "EW", "SM", "WV")


@dataclass(frozen=True)
class S1Collection:
    """What eoai knows about a Sentinel-1 collection.

    Examples
    --------
    >>> SENTINEL1_COLLECTIONS["sentinel-1-rtc"].units
    'linear'
    """

    id: str
    units: str
    quantity: str
    map_projected: bool
    where: str


SENTINEL1_COLLECTIONS: dict[str, S1Collection] = {
    c.id: c
    for c in (
        S1Collection(
            "sentinel-1-rtc",
            "linear",
            "gamma0 (radiometrically terrain corrected, linear power)",
            True,
            "Planetary Computer (assets vv/vh/hh/hv; vv-rtc... in early items)",
        ),
        S1Collection(
            "sentinel-1-grd",
            "amplitude",
            "detected amplitude (digital numbers, uncalibrated)",
            False,
            "Planetary Computer, Earth Search, Copernicus Data Space (assets vv/vh or VV/VH)",
        ),
        S1Collection(
            "sentinel1-grd",
            "amplitude",
            "detected amplitude (digital numbers, uncalibrated)",
            False,
            "stactools-sentinel1 items (Earth Search's layout)",
        ),
        S1Collection(
            "sentinel-s1-rtc-indigo",
            "linear",
            "gamma0 (radiometrically terrain corrected, linear power)",
            True,
            "AWS open data RTC tiles (assets gamma0_vv/gamma0_vh)",
        ),
        S1Collection(
            "sentinel1-rtc-aws",
            "linear",
            "gamma0 (radiometrically terrain corrected, linear power)",
            True,
            "stactools-sentinel1 items of the AWS RTC tiles",
        ),
    )
}


def normalise_units(units: Any, what: str = "units") -> str:
    """Canonical spelling (``"linear"``, ``"dB"``, ``"amplitude"``) of a unit name.

    Raises
    ------
    eoai.errors.InputError
        An unknown unit name.

    Examples
    --------
    >>> normalise_units("DB")
    'dB'
    """
    key = str(units).strip().lower() if isinstance(units, str) else None
    if key not in _UNIT_SPELLINGS:
        raise InputError(
            f"{what}={units!r} is not a backscatter unit; use 'linear' (power: sigma0 / gamma0), "
            "'dB' (10 log10 of power) or 'amplitude' (square root of power, e.g. GRD DN)"
        )
    return _UNIT_SPELLINGS[key]


def is_sentinel1(item: Any) -> bool:
    """Whether a STAC item is Sentinel-1 (``sar:*`` properties, platform or collection name).

    Examples
    --------
    >>> import pystac, datetime as dt
    >>> is_sentinel1(pystac.Item("x", None, None, dt.datetime(2020, 1, 1),
    ...                          {"sar:instrument_mode": "IW"}))
    True
    """
    props = item.properties
    if any(k.startswith("sar:") for k in props):
        return True
    text = " ".join(
        str(x) for x in (item.collection_id, props.get("platform"), props.get("constellation"))
    ).lower()
    return "sentinel-1" in text or "sentinel1" in text or "sentinel-s1" in text


def item_polarisations(item: Any) -> list[str] | None:
    """Lower-case polarisations of an item (``sar:polarizations``, else its assets), or None."""
    pols = item.properties.get("sar:polarizations")
    if pols:
        return [str(p).lower() for p in pols]
    found = [SENTINEL1_BANDS[k.upper()] for k in item.assets if k.upper() in SENTINEL1_BANDS]
    return sorted(set(found)) or None


def _as_str_list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    if not values or not all(isinstance(v, str) for v in values):
        raise InputError(f"{what} must be a string or a list of strings, got {value!r}")
    return values


def check_s1_filters(
    orbit_state: Any = None,
    relative_orbit: Any = None,
    instrument_mode: Any = None,
    polarizations: Any = None,
) -> dict[str, Any]:
    """Validated Sentinel-1 filters: ``{name: value}`` of the ones given (canonical spellings).

    Examples
    --------
    >>> check_s1_filters(orbit_state="DESC", relative_orbit=51, polarizations="vh")
    {'orbit_state': 'descending', 'relative_orbit': [51], 'polarizations': ['VH']}
    """
    out: dict[str, Any] = {}
    if orbit_state is not None:
        key = str(orbit_state).strip().lower() if isinstance(orbit_state, str) else ""
        full = {"asc": "ascending", "desc": "descending", "a": "ascending", "d": "descending"}
        key = full.get(key, key)
        if key not in ("ascending", "descending"):
            raise InputError(
                f"orbit_state must be 'ascending' or 'descending' (sat:orbit_state), got "
                f"{orbit_state!r}"
            )
        out["orbit_state"] = key
    if relative_orbit is not None:
        values = (
            [relative_orbit]
            if isinstance(relative_orbit, int | str) or not isinstance(relative_orbit, Iterable)
            else list(relative_orbit)
        )
        try:
            orbits = [int(v) for v in values]
        except (TypeError, ValueError) as err:
            raise InputError(
                f"relative_orbit must be an integer or a list of integers (sat:relative_orbit, "
                f"1-175 for Sentinel-1), got {relative_orbit!r}"
            ) from err
        if not orbits or any(
            isinstance(v, bool) or not 1 <= o <= 175 for v, o in zip(values, orbits, strict=True)
        ):
            raise InputError(
                f"relative_orbit must be in 1-175 (Sentinel-1 has 175 orbits per cycle), got "
                f"{relative_orbit!r}"
            )
        out["relative_orbit"] = orbits
    modes = _as_str_list(instrument_mode, "instrument_mode")
    if modes is not None:
        modes = [m.upper() for m in modes]
        bad = [m for m in modes if m not in _MODES]
        if bad:
            raise InputError(
                f"instrument_mode {bad} is not a Sentinel-1 mode; use {', '.join(_MODES)} "
                "(sar:instrument_mode)"
            )
        out["instrument_mode"] = modes
    pols = _as_str_list(polarizations, "polarizations")
    if pols is not None:
        pols = [p.upper() for p in pols]
        bad = [p for p in pols if p.lower() not in POLARISATIONS]
        if bad:
            raise InputError(
                f"polarizations {bad} are not Sentinel-1 polarisations; use VV, VH, HH or HV "
                "(sar:polarizations)"
            )
        out["polarizations"] = pols
    return out


_PROPERTY = {
    "orbit_state": "sat:orbit_state",
    "relative_orbit": "sat:relative_orbit",
    "instrument_mode": "sar:instrument_mode",
    "polarizations": "sar:polarizations",
}


def cql2_conditions(filters: dict[str, Any]) -> list[dict]:
    """CQL2-JSON conditions of the scalar filters (polarisations stay client-side).

    Examples
    --------
    >>> cql2_conditions({"orbit_state": "ascending", "relative_orbit": [5, 7]})[1]
    {'op': 'in', 'args': [{'property': 'sat:relative_orbit'}, [5, 7]]}
    """
    conds = []
    for name in ("orbit_state", "relative_orbit", "instrument_mode"):
        if name not in filters:
            continue
        value, prop = filters[name], {"property": _PROPERTY[name]}
        if isinstance(value, list) and len(value) > 1:
            conds.append({"op": "in", "args": [prop, value]})
        else:
            conds.append(
                {"op": "=", "args": [prop, value[0] if isinstance(value, list) else value]}
            )
    return conds


def query_conditions(filters: dict[str, Any]) -> dict[str, dict]:
    """STAC *query* extension conditions of the scalar filters.

    Examples
    --------
    >>> query_conditions({"instrument_mode": ["IW"]})
    {'sar:instrument_mode': {'eq': 'IW'}}
    """
    out = {}
    for name in ("orbit_state", "relative_orbit", "instrument_mode"):
        if name not in filters:
            continue
        value = filters[name]
        if isinstance(value, list) and len(value) > 1:
            out[_PROPERTY[name]] = {"in": value}
        else:
            out[_PROPERTY[name]] = {"eq": value[0] if isinstance(value, list) else value}
    return out


def _matches(item: Any, name: str, value: Any) -> bool | None:
    """True / False, or None when the item lacks the property."""
    props = item.properties
    if name == "polarizations":
        have = item_polarisations(item)
        if have is None:
            return None
        return all(p.lower() in have for p in value)
    raw = props.get(_PROPERTY[name])
    if raw is None:
        return None
    if name == "orbit_state":
        return str(raw).lower() == value
    if name == "relative_orbit":
        try:
            return int(raw) in value
        except (TypeError, ValueError):
            return None
    return str(raw).upper() in value


def filter_sentinel1(items: Iterable[Any], **filters: Any) -> list[Any]:
    """Keep the items matching Sentinel-1 filters (client-side, as a STAC API would).

    Parameters
    ----------
    items : iterable of pystac.Item
    **filters
        ``orbit_state``, ``relative_orbit``, ``instrument_mode``, ``polarizations`` (see
        :func:`check_s1_filters`).

    Items lacking a filtered property are left out with one
    :class:`~eoai.errors.DataSkippedWarning` giving their count.

    Examples
    --------
    >>> import pystac, datetime as dt
    >>> a = pystac.Item("a", None, None, dt.datetime(2020, 1, 1), {"sat:orbit_state": "ascending",
    ...                 "sat:relative_orbit": 5, "sar:polarizations": ["VV", "VH"]})
    >>> b = pystac.Item("b", None, None, dt.datetime(2020, 1, 1), {"sat:orbit_state": "descending",
    ...                 "sat:relative_orbit": 51, "sar:polarizations": ["HH", "HV"]})
    >>> [i.id for i in filter_sentinel1([a, b], orbit_state="ascending")]
    ['a']
    >>> [i.id for i in filter_sentinel1([a, b], polarizations="hv")]
    ['b']
    """
    checked = check_s1_filters(**filters)
    items = list(items)
    if not checked:
        return items
    out: list[Any] = []
    missing: dict[str, int] = {}
    for item in items:
        ok = True
        for name, value in checked.items():
            hit = _matches(item, name, value)
            if hit is None:
                missing[_PROPERTY[name]] = missing.get(_PROPERTY[name], 0) + 1
                ok = False
                break
            if not hit:
                ok = False
                break
        if ok:
            out.append(item)
    if missing:
        what = ", ".join(f"{n} without {p}" for p, n in missing.items())
        warn_at_user(
            f"{sum(missing.values())} item(s) left out ({what}): their Sentinel-1 properties "
            f"cannot be checked against {checked}",
            DataSkippedWarning,
        )
    return out


def polarisation_summary(items: Sequence[Any]) -> str:
    """``'VV+VH (4 items), HH+HV (2 items)'``: the polarisations present, for messages."""
    counts: dict[str, int] = {}
    for it in items:
        pols = item_polarisations(it)
        key = "+".join(p.upper() for p in pols) if pols else "unknown"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} ({n} item{'s' * (n > 1)})" for k, n in counts.items())


def check_polarisations(items: Sequence[Any], bands: Any) -> tuple[list[Any], int]:
    """Items holding every asked polarisation; an UnknownBandError when none does.

    Returns ``(items kept, number left out)``: items of Sentinel-1 that lack an asked
    polarisation (a VV+VH load over DV and DH scenes) are left out, so a band is never a silent
    mosaic of some scenes.
    """
    if bands is None:
        return list(items), 0
    asked = [bands] if isinstance(bands, str) else list(bands)
    pols = [b.lower() for b in asked if isinstance(b, str) and b.lower() in POLARISATIONS]
    if not pols or not any(is_sentinel1(it) for it in items):
        return list(items), 0
    keep = []
    for it in items:
        if not is_sentinel1(it):
            keep.append(it)
            continue
        have = {common_name(k) for k in it.assets if k.upper() in SENTINEL1_BANDS}
        have |= {k.lower() for k in it.assets if k.lower() in POLARISATIONS}
        if all(p in have for p in pols):
            keep.append(it)
    if not any(is_sentinel1(it) for it in keep):
        raise UnknownBandError(
            f"polarisation(s) {', '.join(p.upper() for p in pols)} are not in these Sentinel-1 "
            f"items, whose polarisations are {polarisation_summary(items)}; search with "
            f"polarizations={[p.upper() for p in pols]} (or another collection / mode), or load "
            "the polarisations the items have"
        )
    return keep, len(items) - len(keep)


def asset_units(item: Any, key: str) -> str | None:
    """Unit of a Sentinel-1 asset: its ``raster:bands`` ``unit``, else the collection's; or None."""
    asset = item.assets.get(key)
    if asset is not None:
        rb = (asset.extra_fields.get("raster:bands") or [{}])[0]
        unit = rb.get("unit")
        if isinstance(unit, str) and unit.strip().lower() in _UNIT_SPELLINGS:
            return _UNIT_SPELLINGS[unit.strip().lower()]
    coll = SENTINEL1_COLLECTIONS.get(str(item.collection_id or "").lower())
    if coll is None and any(k.lower().endswith("-rtc") for k in item.assets):
        coll = SENTINEL1_COLLECTIONS["sentinel-1-rtc"]  # early Planetary Computer RTC items
    return coll.units if coll is not None else None


def _map_projected(item: Any, key: str) -> bool:
    """False for GRD in radar geometry: a known GRD collection (whose ``proj:transform``, when
    stactools writes one, is the footprint's bounding box, not the pixels' geometry), or GRD
    items without ``proj:transform``."""
    coll = SENTINEL1_COLLECTIONS.get(str(item.collection_id or "").lower())
    if coll is not None:
        return coll.map_projected
    asset = item.assets.get(key)
    fields = {**item.properties, **(asset.extra_fields if asset is not None else {})}
    if "proj:transform" in fields:
        return True
    return str(item.properties.get("sar:product_type", "")).upper() != "GRD"


def band_units(
    items: Sequence[Any], band_map: dict[str, str], units: Any = None
) -> dict[str, dict[str, Any]]:
    """``{variable: attrs}`` (``units``, ``eoai:looks``...) of the Sentinel-1 bands of a load.

    Raises
    ------
    eoai.errors.InputError
        A polarisation band whose unit cannot be determined (asks for ``units=``), bands in
        several units, or GRD items in radar geometry.
    """
    s1 = [it for it in items if is_sentinel1(it)]
    if isinstance(units, dict):
        given = {str(k): normalise_units(v, f"units[{k!r}]") for k, v in units.items()}
        unknown = sorted(set(given) - set(band_map))
        if unknown:
            raise InputError(
                f"units={units!r} names band(s) {unknown} that are not loaded (bands: "
                f"{', '.join(band_map)}); key units= by the names in bands=[...]"
            )
    elif units is not None:
        given = {name: normalise_units(units) for name in band_map}
    else:
        given = {}
    out: dict[str, dict[str, Any]] = {}
    for name, keys in band_map.items():
        key_set = keys.split("|")
        is_pol = any(common_name(k) in POLARISATIONS for k in key_set) or name.lower() in (
            POLARISATIONS
        )
        if not is_pol or (not s1 and name not in given):
            continue
        for it in s1:
            for k in key_set:
                if k in it.assets and not _map_projected(it, k):
                    raise InputError(
                        f"item {it.id} ({it.collection_id}) is Sentinel-1 GRD in radar geometry "
                        "(ground range with GCPs, not map-projected), which cannot be placed on "
                        "a map grid: load radiometrically terrain-corrected data instead (e.g. "
                        "preset 'planetary-computer-s1-rtc', collection sentinel-1-rtc) or "
                        "terrain-correct the GRD first (SNAP, pyroSAR)"
                    )
        if name in given:
            unit = given[name]
        else:
            found_or_none = {asset_units(it, k) for it in s1 for k in key_set if k in it.assets}
            found = {u for u in found_or_none if u is not None}
            if None in found_or_none or not found:
                raise InputError(
                    f"the unit of Sentinel-1 band {name!r} cannot be determined: the items "
                    f"({', '.join(sorted({str(i.collection_id) for i in s1}))}) are not of a "
                    "collection eoai knows and their assets have no raster:bands 'unit'; pass "
                    "units='dB' (decibels), units='linear' (power: sigma0 / gamma0) or "
                    "units='amplitude' to load (or units={'vv': 'dB', ...})"
                )
            if len(found) > 1:
                raise InputError(
                    f"Sentinel-1 band {name!r} is in several units across the items "
                    f"({', '.join(sorted(found))}); load each collection separately "
                    "(collections=...)"
                )
            unit = found.pop()
        attrs: dict[str, Any] = {"units": unit}
        looks = {it.properties.get("sar:looks_equivalent_number") for it in s1}
        if len(looks) == 1 and (enl := looks.pop()) is not None:
            attrs["eoai:looks"] = float(enl)
        colls = {SENTINEL1_COLLECTIONS.get(str(it.collection_id or "").lower()) for it in s1}
        if len(colls) == 1 and (c := colls.pop()) is not None:
            attrs["long_name"] = f"{name.upper()} {c.quantity}"
        out[name] = attrs
    return out
