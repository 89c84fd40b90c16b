"""Sentinel-1 quicklook of a catalog: whether it holds Sentinel-1 and, if so, what it looks like.

:func:`sentinel1_quicklook` searches a catalog (what :func:`eoai.search` accepts: a STAC API URL,
a preset name, a static catalog, an ItemCollection or items) for Sentinel-1 over an area and a
time, loads a co- and a cross-polarisation (VV + VH, else HH + HV) with :func:`eoai.load` and
returns a :class:`Sentinel1Quicklook`:

- ``composite``: a false-colour composite in dB, red = co-pol, green = cross-pol, blue = the
  co / cross ratio, each the **mean of the dates in linear power** converted to dB (never a mean
  of dB values, which is the log of a geometric mean and biased low);
- ``cube``: the loaded bands (lazy, in the catalog's unit) with each date's orbit direction
  (``orbit_state``) and relative orbit (``relative_orbit``) as coordinates on ``time``;
- :meth:`Sentinel1Quicklook.plot`: the composite (stretch ranges in dB printed below it) and a
  panel of the co-polarisation of each date in dB, titled with its orbit direction.

A catalog without (usable) Sentinel-1 is not an error: the result has ``found=False`` and a
``message`` saying why in one sentence (no Sentinel-1 item over the area and time, only GRD in
radar geometry, a single polarisation...), so a report can skip its Sentinel-1 section with it.

Examples
--------
>>> import eoai
>>> from eoai.reports import sentinel1_quicklook
>>> s1 = sentinel1_quicklook(eoai.datasets.sample_catalog())
>>> bool(s1), s1.message  # doctest: +ELLIPSIS
(False, 'no Sentinel-1 in this catalog: its 73 items ... are of collections slovenia-l1c, slovenia-ndvi, none of them Sentinel-1 ...')
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import EmptySearchError, InputError

__all__ = ["Sentinel1Quicklook", "sentinel1_quicklook", "PAIRS"]

#: (co-polarisation, cross-polarisation) pairs, in order of preference
PAIRS: tuple[tuple[str, str], ...] = (("vv", "vh"), ("hh", "hv"))


@dataclass
class Sentinel1Quicklook:
    """What :func:`sentinel1_quicklook` found: the composite and cube, or why there is none.

    Attributes
    ----------
    found : bool
        Whether Sentinel-1 was found and loaded (also the truth value of the object).
    message : str
        One sentence: what the quicklook shows, or why there is none.
    composite : xarray.Dataset or None
        ``(y, x)`` variables in dB: the co-pol (``vv``), cross-pol (``vh``) and their ratio
        (``vv_vh``, ratio of the mean powers), each the mean over the dates in linear power.
        Lazy.
    cube : xarray.Dataset or None
        The loaded co- and cross-pol bands ``(time, y, x)`` in the catalog's unit
        (``attrs["units"]``), with coordinates ``orbit_state`` and ``relative_orbit`` on time.
    polarisations : (str, str) or None
        The (co, cross) pair loaded, e.g. ``("vv", "vh")``.
    orbits : dict
        Number of dates per orbit direction, e.g. ``{"ascending": 1, "descending": 1}``.
    collections : tuple of str
        Collections of the Sentinel-1 items used.

    Examples
    --------
    >>> Sentinel1Quicklook(False, "no Sentinel-1 in this catalog").found
    False
    """

    found: bool
    message: str
    composite: xr.Dataset | None = None
    cube: xr.Dataset | None = None
    polarisations: tuple[str, str] | None = None
    orbits: dict[str, int] = field(default_factory=dict)
    collections: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.found

    def __repr__(self) -> str:
        return f"Sentinel1Quicklook(found={self.found}, message={self.message!r})"

    def stretch(self, percentiles: tuple[float, float] = (2, 98)) -> dict[str, tuple[float, float]]:
        """Display range (dB) of each composite band: its ``percentiles`` over the pixels where
        all three bands are valid (the stretch :meth:`plot` uses, at full resolution).

        Computes the composite.

        Examples
        --------
        >>> Sentinel1Quicklook(False, "none").stretch()
        Traceback (most recent call last):
        ...
        eoai.errors.InputError: no Sentinel-1 quicklook to stretch: none
        """
        return _stretch(self._require("stretch").compute(), percentiles)

    def _require(self, what: str) -> xr.Dataset:
        if not self.found or self.composite is None:
            raise InputError(f"no Sentinel-1 quicklook to {what}: {self.message}")
        return self.composite

    def plot(
        self,
        *,
        per_date: bool = True,
        max_dates: int = 6,
        percentiles: tuple[float, float] = (2, 98),
        max_size: int = 1024,
        width: int = 420,
    ):
        """The composite (with its stretch in dB) and, optionally, the co-pol of each date.

        Parameters
        ----------
        per_date : bool
            Add a panel of the co-polarisation of each date (dB, one colour scale for all,
            titled with the date, orbit direction and relative orbit).
        max_dates : int
            At most this many dates in the panel (evenly spread over the series).
        percentiles : (low, high)
            Stretch of the composite (each band on its own) and of the per-date colour scale.
        max_size : int
            Largest side in pixels (strided downsampling beyond it).
        width : int
            Width of each image in pixels.

        Returns
        -------
        holoviews.Layout
            The composite RGB, a text line giving each band's dB range, then the per-date images.

        Examples
        --------
        >>> Sentinel1Quicklook(False, "none").plot()
        Traceback (most recent call last):
        ...
        eoai.errors.InputError: no Sentinel-1 quicklook to plot: none
        """
        import dask

        from ..sar import to_db
        from ..viz.colours import robust_range
        from ..viz.plots import _hv, quicklook

        comp = self._require("plot")
        if int(max_dates) < 1:
            raise InputError(f"max_dates must be >= 1, got {max_dates}")
        if self.cube is None or self.polarisations is None:
            raise InputError("a Sentinel1Quicklook with a composite also needs its cube and pair")
        co, cross = self.polarisations
        hv = _hv()
        ratio = f"{co}_{cross}"
        step = max(1, int(np.ceil(max(comp.sizes["y"], comp.sizes["x"]) / max_size)))
        every = {"y": slice(None, None, step), "x": slice(None, None, step)}
        n = self.cube.sizes["time"]
        picks = np.unique(np.linspace(0, n - 1, min(n, int(max_dates))).round().astype(int))
        dates_lazy = to_db(self.cube[co].isel(time=picks.tolist())).isel(every)
        # one computation: the composite and the dates share their reads of the files
        small, dates = dask.compute(comp.isel(every), dates_lazy if per_date else None)
        stretch = _stretch(small, percentiles)
        title = (
            f"Sentinel-1 {co.upper()} / {cross.upper()} / {co.upper()}:{cross.upper()} (dB), "
            f"mean of {n} date{'s' * (n > 1)} in linear power"
        )
        rgb = quicklook(small, bands=(co, cross, ratio), percentiles=percentiles, title=title,
                        width=width, max_size=max_size)  # fmt: skip
        orbits = ", ".join(f"{k} {v}" for k, v in self.orbits.items())
        legend = "; ".join(
            f"{c}: {name.upper().replace('_', ':')} {lo:.1f} to {hi:.1f} dB"
            for c, (name, (lo, hi)) in zip(("red", "green", "blue"), stretch.items(), strict=True)
        )
        text = hv.Div(f"<p>{legend}. Dates per orbit direction: {orbits}.</p>").opts(
            width=width, height=60
        )
        layout = rgb + text
        if dates is not None:
            values = np.asarray(dates.values, dtype="float32")  # half the bytes in the HTML
            finite = values[np.isfinite(values)]
            clim = robust_range(finite, percentiles) if finite.size else (-25.0, 0.0)
            xs, ys = dates["x"].values, dates["y"].values
            height = max(150, int(width * len(ys) / max(len(xs), 1)))
            for i in range(dates.sizes["time"]):
                t = dates.isel(time=i)
                label = f"{str(t.time.values)[:10]} {t.orbit_state.item()}" + (
                    f" (orbit {int(t.relative_orbit)})" if int(t.relative_orbit) > 0 else ""
                )
                img = hv.Image((xs, ys, values[i]), kdims=["x", "y"], vdims=[f"{co}_db"])
                layout += img.opts(
                    cmap="gray", clim=tuple(float(c) for c in clim), colorbar=True,
                    clabel=f"{co.upper()} (dB)", title=f"{co.upper()} {label}", width=width,
                    height=height, data_aspect=1, tools=["hover"],
                )  # fmt: skip
        return layout.cols(2)


def _stretch(comp: xr.Dataset, percentiles: tuple[float, float]) -> dict[str, tuple[float, float]]:
    """``{band: (low, high)}``: percentiles of each band where all bands are valid."""
    from ..viz.colours import robust_range

    arrays = {str(k): np.asarray(v.values, dtype="float64") for k, v in comp.data_vars.items()}
    valid = np.logical_and.reduce([np.isfinite(a) for a in arrays.values()])
    if not valid.any():
        raise InputError("the Sentinel-1 composite has no pixel where all its bands are valid")
    out = {}
    for name, a in arrays.items():
        lo, hi = robust_range(a[valid], percentiles)
        out[name] = (float(lo), float(hi))
    return out


def _pol_keys(item: Any, pols: Sequence[str]) -> list[str]:
    """Asset keys of ``item`` holding the polarisations ``pols``."""
    from ..io.bands import common_name

    return [k for k in item.assets if common_name(k) in pols or k.lower() in pols]


def _orbit_of(item: Any) -> str:
    value = item.properties.get("sat:orbit_state")
    return str(value).lower() if value else "unknown"


def _is_local_or_items(catalog: Any) -> bool:
    """Items in memory, a local path, or a URL of a JSON file (a static catalog)."""
    from ..io import _http

    if not isinstance(catalog, str | Path):
        return True
    text = str(catalog)
    if not _http.is_url(text):
        return True
    return text.split("?", 1)[0].lower().endswith(".json")


def _api_collections(
    catalog: Any, preset: Any, timeout: float, retries: int
) -> tuple[list[str] | None, str | None]:
    """Sentinel-1 collections to ask a STAC API for, or (None, reason) when it has none.

    ``(None, None)``: not an API (a static catalog: every collection is searched).
    """
    from ..io import _http
    from ..io.catalog import _is_api
    from ..io.presets import get_preset, preset_names
    from ..io.sentinel1 import SENTINEL1_COLLECTIONS

    known = list(SENTINEL1_COLLECTIONS)
    if (
        isinstance(catalog, str)
        and catalog.lower() in preset_names()
        and not Path(catalog).exists()
    ):
        preset, catalog = catalog, None
    preset_obj = get_preset(preset)
    if preset_obj is not None and all(
        c.lower() in SENTINEL1_COLLECTIONS for c in preset_obj.collections
    ):
        return list(preset_obj.collections), None
    url = preset_obj.url if catalog is None and preset_obj is not None else catalog
    if url is None or _is_local_or_items(url):
        return None, None
    root = _http.get_json(str(url), timeout=timeout, retries=retries)
    if not _is_api(root):
        return None, None
    href = next(
        (lk.get("href") for lk in root.get("links", []) or [] if lk.get("rel") == "data"),
        str(url).rstrip("/") + "/collections",
    )
    doc = _http.get_json(str(href), timeout=timeout, retries=retries)
    ids = [str(c.get("id")) for c in (doc.get("collections", []) if isinstance(doc, dict) else [])]
    s1 = [
        c for c in ids
        if c.lower() in SENTINEL1_COLLECTIONS or "sentinel-1" in c.lower()
        or "sentinel1" in c.lower() or "sentinel-s1" in c.lower()
    ]  # fmt: skip
    if not s1:
        shown = ", ".join(ids[:12]) + (f" and {len(ids) - 12} more" if len(ids) > 12 else "")
        return None, (
            f"no Sentinel-1 in this catalog: the STAC API {url} has no Sentinel-1 collection "
            f"(its collections: {shown or 'none'}; eoai knows {', '.join(known)}); pass "
            "collections= to name one"
        )
    return s1, None


def _pair(items: Sequence[Any]) -> tuple[tuple[str, str] | None, dict[str, int]]:
    """The first (co, cross) pair that some items hold, and the polarisations' item counts."""
    from ..io.sentinel1 import item_polarisations

    counts: dict[str, int] = {}
    for it in items:
        key = "+".join(p.upper() for p in item_polarisations(it) or []) or "unknown"
        counts[key] = counts.get(key, 0) + 1
    for co, cross in PAIRS:
        if any({co, cross} <= set(item_polarisations(it) or []) for it in items):
            return (co, cross), counts
    return None, counts


def _date_labels(cube: xr.Dataset, items: Sequence[Any]) -> tuple[list[str], list[int]]:
    """Orbit direction and relative orbit of each date: those of the item nearest in time."""
    from ..io.catalog import _item_times

    times = np.array([np.datetime64(_item_times(it)[0].replace(tzinfo=None), "ns") for it in items])
    states, orbits = [], []
    for t in cube.time.values:
        i = int(np.argmin(np.abs(times - np.datetime64(t, "ns"))))
        states.append(_orbit_of(items[i]))
        rel = items[i].properties.get("sat:relative_orbit")
        orbits.append(int(rel) if isinstance(rel, int | float | str) and str(rel).isdigit() else 0)
    return states, orbits


def sentinel1_quicklook(
    catalog: Any,
    *,
    collections: str | Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
    geometry: Any = None,
    datetime: Any = None,
    orbit_state: str | None = None,
    relative_orbit: int | Sequence[int] | None = None,
    resolution: float | None = None,
    units: str | None = None,
    preset: str | None = None,
    max_items: int | None = 200,
    chunks: dict | None = None,
    timeout: float | None = None,
    retries: int | None = None,
) -> Sentinel1Quicklook:
    """Whether ``catalog`` holds Sentinel-1 over an area and time; if so its quicklook, lazily.

    Parameters
    ----------
    catalog : str, Path, pystac objects
        What :func:`eoai.search` accepts: a STAC API URL, a preset name
        (``"planetary-computer-s1-rtc"``...), the path or URL of a static catalog, an
        ItemCollection or a list of items.
    collections : str or list of str, optional
        Collections to search. Default: every collection of a static catalog / of the items; for a
        STAC API, its collections that are Sentinel-1 (those of
        :data:`eoai.io.sentinel1.SENTINEL1_COLLECTIONS`, or named ``sentinel-1...``), asked of
        the API's ``/collections``; for an S1 preset, the preset's.
    bbox, geometry, datetime
        Area (degrees, EPSG:4326) and time, as in :func:`eoai.search`; the area also crops.
    orbit_state, relative_orbit
        Keep one orbit direction / track (see :func:`eoai.search`). Default all: the composite
        then averages ascending and descending dates (their layover and shadow differ), which a
        quicklook tolerates; the per-date panel names each date's direction.
    resolution : float, optional
        Pixel size in the items' CRS units (default native).
    units : str, optional
        Unit of the bands when the catalog does not say it (``"dB"``, ``"linear"``,
        ``"amplitude"``), passed to :func:`eoai.load`.
    preset : str, optional
        Catalog preset (API URL, Planetary Computer signing).
    max_items : int, optional
        Stop the search after this many items.
    chunks : dict, optional
        Dask chunks of the load (default :func:`eoai.io.loading.default_chunks`).
    timeout, retries : optional
        HTTP settings of the search (default those of :func:`eoai.search`).

    Returns
    -------
    Sentinel1Quicklook
        ``found=True`` with ``composite`` (dB, lazy), ``cube``, ``orbits``...; or ``found=False``
        with a one-sentence ``message`` when the catalog has no usable Sentinel-1 there (no item,
        no Sentinel-1 item, only GRD in radar geometry, no co- + cross-polarisation pair).

    Raises
    ------
    eoai.errors.InputError
        A bad argument (bbox, datetime, orbit filters, catalog type), from :func:`eoai.search`.
    eoai.errors.CatalogUnreachableError, eoai.errors.CatalogError
        The catalog cannot be read.

    Examples
    --------
    >>> import eoai
    >>> s1 = sentinel1_quicklook(eoai.datasets.sample_catalog(), datetime="2016")
    >>> s1.found
    False
    >>> s1.message  # doctest: +ELLIPSIS
    'no Sentinel-1 in this catalog: its ... items over this area and time are of collections ...'
    """
    import eoai

    from ..io import _http
    from ..io.sentinel1 import _map_projected, is_sentinel1

    if catalog is None:
        raise InputError(
            "sentinel1_quicklook needs a catalog: a STAC API URL, a preset name, a static "
            "catalog path or items (e.g. eoai.datasets.sample_catalog())"
        )
    if not isinstance(catalog, str | Path) and _is_local_or_items(catalog):
        from ..io.catalog import _items_source

        if _items_source(catalog) is None:
            raise InputError(
                "catalog must be a STAC API URL, a preset name, a static catalog path or pystac "
                f"items, got {type(catalog).__name__}"
            )
    timeout_ = float(_http.DEFAULT_TIMEOUT if timeout is None else timeout)
    retries_ = int(_http.DEFAULT_RETRIES if retries is None else retries)
    filters = dict(bbox=bbox, geometry=geometry, datetime=datetime, orbit_state=orbit_state,
                   relative_orbit=relative_orbit)  # fmt: skip
    # check the arguments before any request (search checks them again, cheaply)
    from ..io.catalog import _check_bbox, parse_datetime
    from ..io.sentinel1 import check_s1_filters

    _check_bbox(bbox)
    parse_datetime(datetime)
    check_s1_filters(orbit_state, relative_orbit)
    if collections is None:
        collections_, reason = _api_collections(catalog, preset, timeout_, retries_)
        if reason is not None:
            return Sentinel1Quicklook(False, reason)
    else:
        collections_ = [collections] if isinstance(collections, str) else list(collections)
    try:
        items = list(eoai.search(catalog, collections=collections_, preset=preset,
                                 max_items=max_items, timeout=timeout_, retries=retries_, **filters))  # fmt: skip
    except EmptySearchError:
        what = f"its collections {', '.join(collections_)} have" if collections_ else "it has"
        return Sentinel1Quicklook(
            False,
            f"no Sentinel-1 in this catalog: {what} no item over this area and time",
        )
    s1 = [it for it in items if is_sentinel1(it)]
    if not s1:
        others = ", ".join(sorted({str(it.collection_id) for it in items}))
        return Sentinel1Quicklook(
            False,
            f"no Sentinel-1 in this catalog: its {len(items)} items over this area and time are "
            f"of collections {others}, none of them Sentinel-1 (no sar:* properties, Sentinel-1 "
            "platform or collection name)",
        )
    pair, counts = _pair(s1)
    pols = ", ".join(f"{k} ({v})" for k, v in counts.items())
    if pair is None:
        return Sentinel1Quicklook(
            False,
            f"the {len(s1)} Sentinel-1 items of this catalog have no co- and cross-polarisation "
            f"pair (VV+VH or HH+HV; they have {pols}): no dual-polarisation quicklook",
        )
    co, cross = pair
    from ..io.sentinel1 import item_polarisations

    usable = [
        it for it in s1
        if {co, cross} <= set(item_polarisations(it) or [])
        and all(_map_projected(it, k) for k in _pol_keys(it, (co, cross)))
    ]  # fmt: skip
    colls = tuple(sorted({str(it.collection_id) for it in s1}))
    if not usable:
        return Sentinel1Quicklook(
            False,
            f"the {len(s1)} Sentinel-1 items of this catalog ({', '.join(colls)}) are GRD in "
            "radar geometry, which cannot be put on a map: use terrain-corrected data (e.g. "
            "preset 'planetary-computer-s1-rtc', collection sentinel-1-rtc)",
        )
    # one load per orbit direction (solar-day mosaics never mix directions), on one grid
    groups: dict[str, list[Any]] = {}
    for it in usable:
        groups.setdefault(_orbit_of(it), []).append(it)
    cubes, geobox = [], None
    for orbit in sorted(groups, key=lambda k: -len(groups[k])):
        part = eoai.load(
            groups[orbit], bands=[co, cross], bbox=bbox if geobox is None else None,
            geometry=geometry if geobox is None else None, resolution=resolution,
            geobox=geobox, chunks=chunks, units=units, preset=preset, mask=None,
        )  # fmt: skip
        if geobox is None:
            geobox = part.odc.geobox
        cubes.append(part)
    cube = xr.concat(cubes, "time", combine_attrs="override") if len(cubes) > 1 else cubes[0]
    cube = cube.sortby("time")
    from .._dims import spatial_dims

    ydim, xdim = spatial_dims(cube, "sentinel1_quicklook")
    if (ydim, xdim) != ("y", "x"):
        cube = cube.rename({ydim: "y", xdim: "x"})
    states, rel = _date_labels(cube, usable)
    cube = cube.assign_coords(
        orbit_state=("time", np.array(states, dtype=object).astype(str)),
        relative_orbit=("time", np.array(rel, dtype="int32")),
    )
    cube.attrs["eoai:n_items"] = len(usable)
    composite = _composite(cube, co, cross)
    composite.attrs = {
        "eoai:method": "sentinel1_quicklook",
        "eoai:parameters": json.dumps(
            {
                "collections": list(colls),
                "orbit_state": orbit_state,
                "dates": cube.sizes["time"],
                "polarisations": [co, cross],
                "mean": "linear power",
            }
        ),
    }
    orbits = {k: int(v) for k, v in zip(*np.unique(states, return_counts=True), strict=True)}
    n = cube.sizes["time"]
    units_in = cube[co].attrs.get("units", "?")
    message = (
        f"Sentinel-1 {co.upper()}+{cross.upper()} of {', '.join(colls)}: {n} date"
        f"{'s' * (n > 1)} ({', '.join(f'{k} {v}' for k, v in orbits.items())}), "
        f"{cube.sizes['y']} x {cube.sizes['x']} pixels, loaded in {units_in}; the composite is "
        "the mean of the dates in linear power, shown in dB"
    )
    return Sentinel1Quicklook(True, message, composite, cube, pair, orbits, colls)


def _composite(cube: xr.Dataset, co: str, cross: str) -> xr.Dataset:
    """Mean over time in linear power of co / cross and the ratio of the means, in dB (lazy)."""
    from ..sar import convert_units, to_db

    power = {b: convert_units(cube[b], "linear").mean("time", skipna=True, keep_attrs=True)
             for b in (co, cross)}  # fmt: skip
    ratio = power[co] / power[cross]
    ratio.attrs = {"units": "linear"}
    out = xr.Dataset(
        {
            co: to_db(power[co]),
            cross: to_db(power[cross]),
            f"{co}_{cross}": to_db(ratio),
        }
    )
    for name, long in (
        (co, f"{co.upper()} backscatter, mean of the dates in linear power"),
        (cross, f"{cross.upper()} backscatter, mean of the dates in linear power"),
        (f"{co}_{cross}", f"{co.upper()}/{cross.upper()} ratio of the mean powers"),
    ):
        out[name].attrs.update(units="dB", long_name=long)
    out = out.drop_vars([c for c in ("orbit_state", "relative_orbit") if c in out.coords])
    return out
