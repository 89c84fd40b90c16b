"""Search STAC APIs (pystac-client) and static catalogs (pystac) for items.

Examples
--------
>>> import eoai
>>> items = eoai.search("../shared/data/earthsearch_l2a/catalog.json",
...                     bbox=(16, 46, 16.1, 46.1), datetime="2023-08-13")  # doctest: +SKIP
>>> sorted(i.id for i in items)  # doctest: +SKIP
['S2B_33TWL_20230813_0_L2A', 'S2B_33TWM_20230813_0_L2A']
"""

from __future__ import annotations

import datetime as _dt
import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._skipped import user_stacklevel
from ..errors import (
    CatalogError,
    CatalogUnreachableError,
    DataSkippedWarning,
    EmptySearchError,
    InputError,
)
from . import _http
from .presets import Preset, get_preset, preset_names


def _check_bbox(bbox: Any) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    try:
        vals = tuple(float(v) for v in bbox)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"bbox must be 4 numbers (west, south, east, north), got {bbox!r}"
        ) from err
    if len(vals) != 4:
        raise InputError(f"bbox must be 4 numbers (west, south, east, north), got {bbox!r}")
    w, s, e, n = vals
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise InputError(
            f"bbox {vals} is not in longitude/latitude degrees (EPSG:4326); give "
            "(west, south, east, north) in degrees"
        )
    if w >= e or s >= n:
        raise InputError(f"bbox {vals} is empty: need west < east and south < north")
    return vals


def _as_shape(geometry: Any):
    """shapely geometry from GeoJSON dict, shapely object or anything with __geo_interface__."""
    import shapely.geometry

    if geometry is None:
        return None
    if hasattr(geometry, "geom_type"):
        return geometry
    if hasattr(geometry, "__geo_interface__"):
        geometry = geometry.__geo_interface__
    if isinstance(geometry, dict):
        if geometry.get("type") == "Feature":
            geometry = geometry["geometry"]
        if geometry.get("type") == "FeatureCollection":
            return shapely.geometry.shape(
                {
                    "type": "GeometryCollection",
                    "geometries": [f["geometry"] for f in geometry["features"]],
                }
            )
        try:
            return shapely.geometry.shape(geometry)
        except Exception as err:
            raise InputError(f"geometry is not valid GeoJSON: {err}") from err
    raise InputError(
        f"geometry must be a GeoJSON dict or a shapely geometry (EPSG:4326), got "
        f"{type(geometry).__name__}"
    )


def _parse_instant(text: str, end: bool) -> _dt.datetime | None:
    import pandas as pd

    text = text.strip()
    if text in ("", "..", "None"):
        return None
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"cannot read {text!r} as a date; use ISO 8601 such as 2023-08-15"
        ) from err
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    if end:  # widen a partial date to the end of its period
        period = {4: pd.DateOffset(years=1), 7: pd.DateOffset(months=1), 10: pd.Timedelta(days=1)}
        if len(text) in period:
            ts = ts + period[len(text)] - pd.Timedelta(microseconds=1)
    return ts.to_pydatetime()


def _ordered(value: Any, start: _dt.datetime | None, end: _dt.datetime | None) -> tuple:
    """``(start, end)``, or an InputError when the range is reversed (it would match nothing)."""
    if start is not None and end is not None and start > end:
        if isinstance(value, str):
            a, b = value.split("/")
            swapped = repr(f"{b.strip()}/{a.strip()}")
        else:
            swapped = f"({value[1]!r}, {value[0]!r})"
        raise InputError(
            f"datetime {value!r} is reversed: its start {start.isoformat()} is after its end "
            f"{end.isoformat()}, so no item can match; give the earlier date first, e.g. "
            f"datetime={swapped}"
        )
    return start, end


def parse_datetime(value: Any) -> tuple[_dt.datetime | None, _dt.datetime | None] | None:
    """Turn a STAC datetime (``"2023-08"``, ``"2023-08-10/2023-08-15"``, a pair...) into a range.

    Parameters
    ----------
    value : str, datetime, or (start, end)
        A single value covers its whole period (``"2023-08-15"`` is that day).

    Returns
    -------
    (start, end) with tz-aware datetimes (``None`` = open), or None when ``value`` is None.

    Raises
    ------
    eoai.errors.InputError
        A value that is not a date, or a reversed range (start after end), which would match
        nothing: the message says to swap it.

    Examples
    --------
    >>> s, e = parse_datetime("2023-08")
    >>> s.isoformat(), e.isoformat()
    ('2023-08-01T00:00:00+00:00', '2023-08-31T23:59:59.999999+00:00')
    """
    if value is None:
        return None
    if isinstance(value, _dt.datetime | _dt.date):
        value = value.isoformat()
    if isinstance(value, str):
        parts = value.split("/")
        if len(parts) == 1:
            return _parse_instant(parts[0], False), _parse_instant(parts[0], True)
        if len(parts) == 2:
            return _ordered(value, _parse_instant(parts[0], False), _parse_instant(parts[1], True))
        raise InputError(f"datetime {value!r} must be one date or 'start/end'")
    if isinstance(value, Sequence) and len(value) == 2:
        a, b = (
            None if v is None else (v.isoformat() if hasattr(v, "isoformat") else str(v))
            for v in value
        )
        return _ordered(
            value,
            None if a is None else _parse_instant(a, False),
            None if b is None else _parse_instant(b, True),
        )
    raise InputError(f"datetime must be a string, a datetime or a (start, end) pair, got {value!r}")


def _datetime_param(rng):
    if rng is None:
        return None

    def fmt(d):
        return (
            ".." if d is None else d.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        )

    return f"{fmt(rng[0])}/{fmt(rng[1])}"


def _item_times(item) -> tuple[_dt.datetime, _dt.datetime]:
    props = item.properties
    start = item.datetime or _dt.datetime.fromisoformat(
        props["start_datetime"].replace("Z", "+00:00")
    )
    end = item.datetime
    if end is None or "end_datetime" in props:
        end = _dt.datetime.fromisoformat(
            props.get("end_datetime", start.isoformat()).replace("Z", "+00:00")
        )
    if start.tzinfo is None:
        start = start.replace(tzinfo=_dt.timezone.utc)
    if end.tzinfo is None:
        end = end.replace(tzinfo=_dt.timezone.utc)
    return start, end


def filter_items(
    items: Iterable[Any],
    *,
    collections: Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
    geometry: Any = None,
    datetime: Any = None,
    max_cloud_cover: float | None = None,
    ids: Sequence[str] | None = None,
    max_items: int | None = None,
    orbit_state: str | None = None,
    relative_orbit: int | Sequence[int] | None = None,
    instrument_mode: str | Sequence[str] | None = None,
    polarizations: str | Sequence[str] | None = None,
) -> list[Any]:
    """Filter pystac items client-side, as a STAC API search would.

    Items without ``eo:cloud_cover`` are left out when ``max_cloud_cover`` is given (as a CQL2
    comparison with a missing property would), with a :class:`~eoai.errors.DataSkippedWarning`;
    the same for the Sentinel-1 filters ``orbit_state``, ``relative_orbit``,
    ``instrument_mode``, ``polarizations`` (:func:`eoai.io.sentinel1.filter_sentinel1`).

    Examples
    --------
    >>> import pystac, datetime as dt
    >>> a = pystac.Item("a", None, [0, 0, 1, 1], dt.datetime(2020, 1, 1), {"eo:cloud_cover": 5})
    >>> b = pystac.Item("b", None, [0, 0, 1, 1], dt.datetime(2020, 2, 1), {"eo:cloud_cover": 50})
    >>> [i.id for i in filter_items([a, b], datetime="2020-01", max_cloud_cover=20)]
    ['a']
    """
    import shapely.geometry

    bbox = _check_bbox(bbox)
    rng = parse_datetime(datetime)
    region = _as_shape(geometry)
    if bbox is not None:
        box = shapely.geometry.box(*bbox)
        region = box if region is None else region.intersection(box)
    from .sentinel1 import check_s1_filters, filter_sentinel1

    s1 = check_s1_filters(orbit_state, relative_orbit, instrument_mode, polarizations)
    if s1:
        items = filter_sentinel1(items, **s1)
    colls = _as_list(collections)
    idset = set(_as_list(ids) or [])
    out, no_cc = [], 0
    for item in items:
        if colls is not None and item.collection_id not in colls:
            continue
        if idset and item.id not in idset:
            continue
        if region is not None:
            geom = item.geometry or (
                shapely.geometry.mapping(shapely.geometry.box(*item.bbox)) if item.bbox else None
            )
            if geom is not None and not shapely.geometry.shape(geom).intersects(region):
                continue
        if rng is not None:
            start, end = _item_times(item)
            if (rng[0] is not None and end < rng[0]) or (rng[1] is not None and start > rng[1]):
                continue
        if max_cloud_cover is not None:
            cc = item.properties.get("eo:cloud_cover")
            if cc is None:
                no_cc += 1
                continue
            if float(cc) > float(max_cloud_cover):
                continue
        out.append(item)
        if max_items is not None and len(out) >= max_items:
            break
    if no_cc:
        warnings.warn(
            f"{no_cc} item(s) left out: they have no eo:cloud_cover property and max_cloud_cover="
            f"{max_cloud_cover} was asked",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
    return out


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [getattr(v, "id", v) for v in value]


def _read_static(source: str | Path, timeout: float, retries: int) -> list[Any]:
    """All items of a static catalog / collection / item collection / item (path or URL)."""
    import pystac

    io = _http.stac_io(timeout, retries)
    href = str(source)
    if _http.is_url(href):
        data = _http.get_json(href, timeout=timeout, retries=retries)
    else:
        if href.startswith("file://"):
            from urllib.parse import unquote, urlparse

            href = unquote(urlparse(href).path)
        path = Path(href).expanduser()
        if path.is_dir():
            for name in ("catalog.json", "collection.json"):
                if (path / name).is_file():
                    path = path / name
                    break
        if not path.is_file():
            raise CatalogError(
                f"no STAC catalog at {href}: the file does not exist. Give the path of a "
                "catalog.json / collection.json / item collection, or a STAC API URL."
            )
        href = str(path.resolve())
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise CatalogError(f"cannot read {href} as STAC JSON: {err}") from err
    kind = data.get("type") if isinstance(data, dict) else None
    try:
        if kind == "FeatureCollection":
            return list(pystac.ItemCollection.from_dict(data, root=None, preserve_dict=False).items)
        obj = pystac.read_dict(data, href=href, stac_io=io)
        if isinstance(obj, pystac.Item):
            return [obj]
        if isinstance(obj, pystac.Catalog):  # Collection is a Catalog
            return list(obj.get_items(recursive=True))
    except CatalogUnreachableError:
        raise
    except Exception as err:
        raise CatalogError(f"cannot read the STAC catalog at {href}: {err}") from err
    raise CatalogError(f"{href} is not a STAC catalog, collection, item collection or item")


def _is_api(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    conforms = " ".join(data.get("conformsTo", []) or [])
    if "item-search" in conforms:
        return True
    return any(link.get("rel") == "search" for link in data.get("links", []) or [])


def _items_source(source: Any) -> list[Any] | None:
    """The items when ``source`` is already pystac objects, else None."""
    import pystac

    if isinstance(source, pystac.Item):
        return [source]
    if isinstance(source, pystac.ItemCollection):
        return list(source.items)
    if isinstance(source, pystac.Catalog):
        return list(source.get_items(recursive=True))
    if isinstance(source, list | tuple) and all(isinstance(i, pystac.Item) for i in source):
        if not source:
            raise InputError("the list of items is empty; search a catalog first")
        return list(source)
    return None


def _describe_query(source, **query) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in query.items() if v is not None)
    return f"{source} with {shown or 'no filter'}"


def search(
    source: Any = None,
    *,
    collections: str | Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
    geometry: Any = None,
    datetime: Any = None,
    max_cloud_cover: float | None = None,
    ids: str | Sequence[str] | None = None,
    limit: int | None = 100,
    max_items: int | None = None,
    preset: str | Preset | None = None,
    timeout: float = _http.DEFAULT_TIMEOUT,
    retries: int = _http.DEFAULT_RETRIES,
    query: dict | None = None,
    filter: dict | None = None,
    orbit_state: str | None = None,
    relative_orbit: int | Sequence[int] | None = None,
    instrument_mode: str | Sequence[str] | None = None,
    polarizations: str | Sequence[str] | None = None,
):
    """Search a STAC API or a static catalog for items.

    Parameters
    ----------
    source : str, Path, pystac object or list of items, optional
        A STAC API root URL (searched with pystac-client), the path or URL of a static
        ``catalog.json`` / ``collection.json`` / item collection (read with pystac and filtered
        client-side), a preset name (``"earth-search"``, ``"planetary-computer"``, ``"cdse"``,
        ``"theia"``; see :mod:`eoai.io.presets`), or items already in memory. ``None`` with
        ``preset=`` searches the preset's API.
    collections : str or list of str, optional
        Collection ids; default the preset's collections (APIs) or all (static catalogs).
    bbox : (west, south, east, north), optional
        In degrees (EPSG:4326).
    geometry : GeoJSON dict or shapely geometry, optional
        Area of interest in EPSG:4326 (``intersects``).
    datetime : str, datetime or (start, end), optional
        ``"2023-08"``, ``"2023-08-10/2023-08-20"``, ``("2023-08-10", None)``...
    max_cloud_cover : float, optional
        Keep items with ``eo:cloud_cover`` <= this (percent). Against a STAC API it is sent as a
        CQL2-JSON ``filter`` (``{"op": "<=", "args": [{"property": "eo:cloud_cover"}, v]}``) when
        the API conforms to *filter*, else as a ``query`` (``{"eo:cloud_cover": {"lte": v}}``)
        when it conforms to *query*; the result is filtered again client-side in every case, and
        static catalogs are filtered client-side only.
    ids : str or list of str, optional
        Item ids.
    limit : int, optional
        Page size asked of an API (paging follows ``next`` links).
    max_items : int, optional
        Stop after this many items.
    preset : str or Preset, optional
        Catalog preset (API URL, default collections, Planetary Computer signing).
    timeout : float
        Seconds per HTTP request.
    retries : int
        Retries per HTTP request (connection errors, timeouts, 429 and 5xx), with backoff.
    query, filter : dict, optional
        Passed to the API as is (STAC *query* / CQL2-JSON *filter*), combined with
        ``max_cloud_cover`` and the Sentinel-1 filters.
    orbit_state : {"ascending", "descending"}, optional
        Sentinel-1 orbit direction (``sat:orbit_state``).
    relative_orbit : int or list of int, optional
        Sentinel-1 relative orbit(s) (``sat:relative_orbit``, 1-175): one track.
    instrument_mode : str or list of str, optional
        ``"IW"``, ``"EW"``, ``"SM"``, ``"WV"`` (``sar:instrument_mode``).
    polarizations : str or list of str, optional
        Keep items whose ``sar:polarizations`` hold all of these (``["VV", "VH"]``).
        The Sentinel-1 filters go to the API like ``max_cloud_cover`` (polarisations, a list
        property, are always checked client-side) and are applied client-side in every case
        (:mod:`eoai.io.sentinel1`); items lacking the property are left out with a
        :class:`~eoai.errors.DataSkippedWarning`.

    Returns
    -------
    pystac.ItemCollection
        The items found, in the catalog's order.

    Raises
    ------
    eoai.errors.CatalogUnreachableError
        The catalog URL cannot be reached after ``retries`` (the message names the URL).
    eoai.errors.EmptySearchError
        Nothing matched; the message repeats the query.
    eoai.errors.CatalogError
        The source is not a STAC catalog, or the API rejected the search.
    eoai.errors.InputError
        Bad bbox, datetime (a reversed range such as ``"2021-12-31/2021-01-01"`` too: checked
        before any request), geometry or preset.

    Examples
    --------
    >>> import eoai
    >>> items = eoai.search(eoai.datasets.sample_catalog(), collections="slovenia-l1c",
    ...                     datetime="2015-07")  # doctest: +SKIP
    >>> len(items)  # doctest: +SKIP
    2
    """
    import pystac

    bbox = _check_bbox(bbox)
    if geometry is not None:
        _as_shape(geometry)
    rng = parse_datetime(datetime)
    if max_cloud_cover is not None and not 0 <= float(max_cloud_cover) <= 100:
        raise InputError(f"max_cloud_cover is a percentage in [0, 100], got {max_cloud_cover}")
    if limit is not None and int(limit) < 1:
        raise InputError(f"limit must be >= 1, got {limit}")
    if max_items is not None and int(max_items) < 1:
        raise InputError(f"max_items must be >= 1, got {max_items}")
    from .sentinel1 import check_s1_filters

    s1 = check_s1_filters(orbit_state, relative_orbit, instrument_mode, polarizations)
    if isinstance(source, str) and source.lower() in preset_names() and not Path(source).exists():
        preset, source = source, None
    preset_obj = get_preset(preset)
    if source is None:
        if preset_obj is None:
            raise InputError(
                "search needs a source (STAC API URL, static catalog path, items) or a preset "
                f"({', '.join(preset_names())})"
            )
        source = preset_obj.url
    query_text = dict(
        collections=collections,
        bbox=bbox,
        geometry="<geometry>" if geometry is not None else None,
        datetime=datetime,
        max_cloud_cover=max_cloud_cover,
        ids=ids,
        **s1,
    )
    static_kw = dict(
        collections=collections,
        bbox=bbox,
        geometry=geometry,
        datetime=datetime,
        max_cloud_cover=max_cloud_cover,
        ids=ids,
        max_items=max_items,
        **s1,
    )

    items = _items_source(source)
    where = "the given items" if items is not None else str(source)
    if items is None:
        if not isinstance(source, str | Path):
            raise InputError(
                f"source must be a URL, a path, a preset name or pystac items, got "
                f"{type(source).__name__}"
            )
        data = None
        if _http.is_url(str(source)):
            data = _http.get_json(str(source), timeout=timeout, retries=retries)
        if data is not None and _is_api(data):
            if collections is None and preset_obj is not None:
                collections = list(preset_obj.collections)
                query_text["collections"] = collections
            items = _search_api(
                str(source),
                preset_obj,
                timeout=timeout,
                retries=retries,
                collections=collections,
                bbox=bbox,
                geometry=geometry,
                datetime=_datetime_param(rng),
                max_cloud_cover=max_cloud_cover,
                ids=ids,
                limit=limit,
                max_items=max_items,
                query=query,
                filter=filter,
                s1=s1,
            )
            static_kw.update(collections=None, bbox=None, geometry=None, datetime=None, ids=None)
        else:
            items = _read_static(source, timeout, retries)
    found = filter_items(items, **static_kw)
    if not found:
        raise EmptySearchError(
            f"no item found in {_describe_query(where, **query_text)}. Widen the bbox or the "
            "datetime range, raise max_cloud_cover, or check the collection names"
            + _collections_hint(items)
            + _s1_hint(items, s1)
        )
    return pystac.ItemCollection(found, clone_items=False)


def _collections_hint(items: list[Any]) -> str:
    colls = sorted({str(i.collection_id) for i in items})
    if not items:
        return "."
    return f" (collections present: {', '.join(colls)})."


def _s1_hint(items: list[Any], s1: dict[str, Any]) -> str:
    if not s1 or not items:
        return ""
    from .sentinel1 import polarisation_summary

    def values(prop: str) -> str:
        found = {i.properties.get(prop) for i in items}
        return ", ".join(
            str(v) for v in sorted(found, key=lambda v: (not isinstance(v, int), str(v)))
        )

    return (
        f" Before the Sentinel-1 filters the items had polarisations {polarisation_summary(items)}"
        f"; sat:orbit_state {values('sat:orbit_state')}; sat:relative_orbit "
        f"{values('sat:relative_orbit')}; sar:instrument_mode {values('sar:instrument_mode')}."
    )


def _search_api(
    url: str,
    preset: Preset | None,
    *,
    timeout,
    retries,
    max_cloud_cover,
    query,
    filter,
    s1=None,
    **kw,
) -> list[Any]:
    import requests
    from pystac_client import Client
    from pystac_client.conformance import ConformanceClasses
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO

    io = StacApiIO(timeout=timeout, max_retries=_http.retry_policy(retries))
    modifier = preset.modifier() if preset is not None else None
    try:
        client = Client.open(url, stac_io=io, modifier=modifier)
        if max_cloud_cover is not None:
            if client.conforms_to(ConformanceClasses.FILTER):
                cond = {
                    "op": "<=",
                    "args": [{"property": "eo:cloud_cover"}, float(max_cloud_cover)],
                }
                filter = cond if filter is None else {"op": "and", "args": [filter, cond]}
                kw["filter_lang"] = "cql2-json"
            elif client.conforms_to(ConformanceClasses.QUERY):
                query = dict(query or {})
                query["eo:cloud_cover"] = {"lte": float(max_cloud_cover)}
        if s1:  # Sentinel-1 scalar filters server-side when possible (re-checked client-side)
            from .sentinel1 import cql2_conditions, query_conditions

            if client.conforms_to(ConformanceClasses.FILTER):
                conds = cql2_conditions(s1)
                if filter is not None:
                    conds = [filter, *conds]
                if conds:
                    filter = conds[0] if len(conds) == 1 else {"op": "and", "args": conds}
                    kw["filter_lang"] = "cql2-json"
            elif client.conforms_to(ConformanceClasses.QUERY):
                query = {**(query or {}), **query_conditions(s1)} or None
        if filter is not None:
            kw["filter"] = filter
        if query is not None:
            kw["query"] = query
        kw = {k: v for k, v in kw.items() if v is not None}
        if "geometry" in kw:
            geom = _as_shape(kw.pop("geometry"))
            import shapely.geometry

            kw["intersects"] = shapely.geometry.mapping(geom)
        result = client.search(**kw)
        items = list(result.items())
    except CatalogUnreachableError:
        raise
    except requests.RequestException as err:
        raise _http.unreachable(url, retries, err) from err
    except APIError as err:
        text = str(err)
        if any(w in text for w in ("Connection", "connect", "Max retries", "timed out", "Timeout")):
            raise _http.unreachable(url, retries, err) from err
        raise CatalogError(f"the STAC API at {url} rejected the search {kw}: {text}") from err
    if max_cloud_cover is not None:
        items = filter_items(items, max_cloud_cover=max_cloud_cover)
    return items


__all__ = ["search", "filter_items", "parse_datetime"]
