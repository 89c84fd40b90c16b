"""Synthetic Sentinel-2-like cubes whose truth is known.

:func:`synthetic_cube` draws a scene of parcels (a Voronoi partition), gives each parcel a land-cover
class with a double-logistic NDVI phenology (one or two seasons a year, jittered per parcel, year and
pixel), derives surface reflectances from that NDVI, adds noise, clouds (spatially coherent blobs) and
their shadows, masks them to NaN with a matching Sentinel-2 ``scl`` band, and optionally inserts abrupt
changes (clear-cuts) at known pixels and dates and degrades the 20 m bands (keeping their 10 m
originals). Everything it used is returned as a ``truth`` Dataset, so later capabilities (masking,
gap-filling, phenology, change detection, classification, super-resolution) can be tested against it.

Curve convention (:func:`double_logistic`)::

    f(t) = base + amplitude * (sigma(rate_up * (t - sos)) - sigma(rate_down * (t - eos)))

with ``sigma(z) = 1 / (1 + exp(-z))``. ``sos`` and ``eos`` are the inflection points of the rising and
falling logistic, i.e. the dates where the curve crosses 50 % of the amplitude (exactly for each
logistic alone; for the whole curve, whose peak stays slightly below ``base + amplitude``, within about
a day when ``(eos - sos) * rate >= 8`` and within 0.1 day when it is >= 12). Crossing a fraction ``p`` of the amplitude happens at
``sos + log(p / (1 - p)) / rate_up`` on the way up and ``eos - log(p / (1 - p)) / rate_down`` on the
way down (:func:`logistic_crossing`); :func:`crossing_dates` gives the exact crossings of the real,
possibly multi-season, curve for every pixel of a truth Dataset.

This module draws the scene; the curves and their exact dates live in :mod:`eoai.datasets.curves`,
the spectra, codes and classes in :mod:`eoai.datasets._spectra` (both re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import xarray as xr

from .._attrs import to_json
from .._crs import check_crs
from ..errors import InputError, UnknownBandError
from ._spectra import (  # noqa: F401  (re-exported: eoai.datasets.synthetic.LandClass etc.)
    _ENDMEMBERS,
    _NIR,
    _RED,
    BANDS,
    BANDS_20M,
    BREAK_NDVI,
    DEFAULT_BANDS,
    DEFAULT_CLASSES,
    SCL_CODES,
    LandClass,
)
from .curves import (  # noqa: F401  (re-exported)
    _finite,
    _season_truth,
    _sigmoid,
    crossing_dates,
    double_logistic,
    logistic_crossing,
)

__all__ = [
    "LandClass",
    "DEFAULT_CLASSES",
    "SCL_CODES",
    "double_logistic",
    "logistic_crossing",
    "crossing_dates",
    "synthetic_cube",
]

# --------------------------------------------------------------------------------------------
# Scene
# --------------------------------------------------------------------------------------------


def _resolve_classes(classes: Any) -> list[LandClass]:
    if classes is None:
        return list(DEFAULT_CLASSES.values())
    if isinstance(classes, (str, LandClass)):
        classes = [classes]
    out: list[LandClass] = []
    for c in classes:
        if isinstance(c, LandClass):
            out.append(c)
        elif isinstance(c, str) and c in DEFAULT_CLASSES:
            out.append(DEFAULT_CLASSES[c])
        else:
            raise InputError(
                f"unknown class {c!r}; use LandClass objects or names of "
                f"DEFAULT_CLASSES: {', '.join(DEFAULT_CLASSES)}"
            )
    names = [c.name for c in out]
    if len(set(names)) != len(names) or not out:
        raise InputError(f"classes must be a non-empty list of distinct classes, got {names}")
    return out


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise over the last two axes, standardised per leading index.

    The filter is applied in the Fourier domain (periodic boundaries), so its cost does not grow
    with ``sigma``.
    """
    from scipy import fft, ndimage

    noise = rng.standard_normal(shape)
    sig = (0,) * (len(shape) - 2) + (sigma, sigma)
    spec = fft.rfft2(noise, axes=(-2, -1))
    spec = ndimage.fourier_gaussian(spec, sig, n=shape[-1], axis=-1)
    field_ = fft.irfft2(spec, s=shape[-2:], axes=(-2, -1))
    axes = (-2, -1)
    return (field_ - field_.mean(axis=axes, keepdims=True)) / field_.std(axis=axes, keepdims=True)


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        ..., max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def _clouds(
    rng: np.random.Generator, n_t: int, shape: tuple[int, int], cloud_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cloud SCL codes (0 = none, 8, 9, 10) and shadow mask (T, H, W)."""
    h, w = shape
    if cloud_fraction <= 0:
        return np.zeros((n_t, h, w), np.uint8), np.zeros((n_t, h, w), bool)
    # per-date cloud fraction: U-shaped Beta (many clear and many overcast dates), mean rescaled
    conc = 1.5
    frac = rng.beta(cloud_fraction * conc, (1 - cloud_fraction) * conc, n_t)
    for _ in range(20):
        frac = np.clip(frac * cloud_fraction / max(frac.mean(), 1e-9), 0, 1)
    field_ = _smooth_noise(rng, (n_t, h, w), sigma=max(1.5, min(h, w) / 12))
    flat = np.sort(field_.reshape(n_t, -1), axis=1)
    n_pix = h * w
    n_cloud = np.round(frac * n_pix).astype(int)
    thr = np.where(
        n_cloud > 0, flat[np.arange(n_t), np.clip(n_pix - n_cloud, 0, n_pix - 1)], np.inf
    )
    core = np.where(
        n_cloud > 0, flat[np.arange(n_t), np.clip(n_pix - n_cloud // 2, 0, n_pix - 1)], np.inf
    )
    cloud = field_ >= thr[:, None, None]
    high = field_ >= core[:, None, None]
    codes = np.where(cloud, np.where(high, 9, 8), 0).astype(np.uint8)
    cirrus_dates = rng.random(n_t) < 0.15
    codes[cirrus_dates] = np.where(cloud[cirrus_dates], 10, 0)
    # shadows: the thick clouds projected away from the sun (to the north-west of the cloud)
    dy, dx = -max(1, round(h * 0.06)), -max(1, round(w * 0.08))
    thick = cloud & ~cirrus_dates[:, None, None]
    shadow = _shift(thick, dy, dx) & ~cloud
    return codes, shadow


def _validate(
    shape: Any, cloud_fraction: float, noise: float, bands: Sequence[str], highres: int
) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be (ny, nx), got {shape!r}") from None
    if h < 4 or w < 4:
        raise InputError(f"shape must be at least (4, 4), got {shape!r}")
    if not 0.0 <= cloud_fraction < 1.0:
        raise InputError(f"cloud_fraction must be in [0, 1), got {cloud_fraction}")
    if noise < 0:
        raise InputError(f"noise must be >= 0 (a reflectance standard deviation), got {noise}")
    unknown = [b for b in bands if b not in BANDS]
    if unknown:
        raise UnknownBandError(
            f"band(s) {unknown} unknown to synthetic_cube; available: {', '.join(BANDS)}"
        )
    if highres and (h % highres or w % highres):
        raise InputError(f"shape {shape} must be divisible by the highres factor {highres}")
    return h, w


def synthetic_cube(
    shape: tuple[int, int] = (64, 64),
    start: str = "2021-01-01",
    end: str = "2021-12-31",
    freq: str = "5D",
    classes: Sequence[str | LandClass] | None = None,
    cloud_fraction: float = 0.3,
    noise: float = 0.01,
    breaks: bool | int = True,
    chunks: dict[str, int] | None = None,
    seed: int = 0,
    bands: Sequence[str] | None = None,
    *,
    highres: bool | int = False,
    mask_clouds: bool = True,
    crs: str = "EPSG:32631",
    resolution: float = 10.0,
    origin: tuple[float, float] = (600000.0, 4900000.0),
    parcel_size: float = 120.0,
    jitter_days: float = 6.0,
) -> tuple[xr.Dataset, xr.Dataset]:
    """A seeded Sentinel-2-like cube with known truth.

    The scene is a Voronoi partition into parcels (about ``parcel_size`` pixels each); each parcel
    gets a class and per-parcel-and-year jittered phenology parameters (plus a small per-pixel
    jitter), its NDVI follows :func:`double_logistic` and the reflectances of every band are mixed
    from soil (or water) and vegetation endmembers so that ``(nir - red) / (nir + red)`` equals that
    NDVI exactly before noise. Gaussian noise (``noise``, in reflectance) is added to each band.

    Clouds are smooth random blobs whose per-date cover is drawn from a U-shaped Beta law of mean
    ``cloud_fraction`` (so some dates are clear, some overcast); their cores are SCL 9, their rims 8,
    and about 15 % of cloudy dates have thin cirrus (10) instead; shadows (SCL 3) are the thick clouds
    shifted to the north-west. Clear pixels are SCL 4 (vegetation, true NDVI >= 0.4), 5 (not
    vegetated) or 6 (water). With ``mask_clouds`` (default) every band is NaN where the pixel is not
    clear; otherwise clouds are bright and shadows dark, as in raw data.

    Breaks: in a share of the parcels of breakable classes (forest by default) the land cover turns
    to bare soil (NDVI 0.12) at a known acquisition date (``truth.break_date`` = the first date showing
    the new state, between 20 % and 80 % of the series).

    Parameters
    ----------
    shape
        ``(ny, nx)`` in pixels.
    start, end, freq
        Acquisition dates: ``pandas.date_range(start, end, freq=freq)`` (span several years for
        multi-year phenology).
    classes
        Names from :data:`DEFAULT_CLASSES` (water, urban, cropland, double_crop, grassland, forest)
        or :class:`LandClass` objects; default all defaults. Each has 0, 1 or 2 seasons a year.
    cloud_fraction
        Mean share of cloudy pixels (SCL 8, 9, 10) over the cube, in [0, 1); shadows come on top.
    noise
        Standard deviation of the Gaussian noise added to each band (reflectance units).
    breaks
        ``True``: about 15 % of the breakable parcels (at least one) change; an int: that many
        parcels; ``False``/0: none.
    chunks
        When given, the cube is dask-backed with these chunks (e.g. ``{"time": -1, "y": 32, "x": 32}``).
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same cube and truth.
    bands
        Band common names (from coastal, blue, green, red, rededge1-3, nir, nir08, nir09, swir16,
        swir22); default blue, green, red, rededge1-3, nir, nir08, swir16, swir22. ``scl`` is always
        added.
    highres
        ``True`` (factor 2) or an int factor: the 20 m bands present (rededge1-3, nir08, swir16,
        swir22) are degraded by a block mean over ``factor x factor`` pixels and put back on the
        10 m grid by repetition (as Sentinel-2 delivers them); their originals are in the truth as
        ``<band>_highres`` (``cube[band].coarsen(y=f, x=f).mean()`` gives the coarse grid back).
    mask_clouds
        Set cloudy and shadowed pixels to NaN (default) or keep them bright/dark.
    crs, resolution, origin
        Projected CRS, pixel size (m) and the upper-left corner ``(x, y)`` of the grid.
    parcel_size
        Mean parcel area in pixels.
    jitter_days
        Standard deviation (days) of the per-parcel-and-year shift of the season dates.

    Returns
    -------
    cube : xarray.Dataset
        ``(time, y, x)`` float32 reflectances (band common names, NaN = masked) and ``scl`` uint8, CRS
        as a ``spatial_ref`` coordinate (odc-geo: ``cube.odc.crs``); ``attrs["eoai:method"]`` and
        ``attrs["eoai:parameters"]`` (JSON).
    truth : xarray.Dataset
        ``class`` (y, x) with ``class_names``/``class_colours`` attrs; ``ndvi`` (time, y, x), the
        noise-free NDVI (with breaks); ``clear`` (time, y, x); per ``(year, season, y, x)``:
        ``sos``, ``pos``, ``eos`` (datetime64, 50 % crossings and peak of the curve, NaT where a
        pixel has no such season or the season was cut by a break) and ``sos_doy``, ``pos_doy``,
        ``eos_doy`` (fractional day of the season's ``year``, 1.0 = 1 January 00:00 of that year;
        above 365 / 366 in the next calendar year); ``year`` is the year in which each season is
        drawn (with classes whose seasons run past 31 December, the year before the series comes
        first, as its season reaches into the series); the curve parameters
        ``curve_base`` (y, x), ``curve_amplitude``, ``curve_sos``, ``curve_eos`` (doy),
        ``curve_rate_up``, ``curve_rate_down`` (used by :func:`crossing_dates`); ``n_seasons``
        (y, x); ``break_date`` (y, x, NaT where none) and ``break_magnitude`` (NDVI after minus NDVI
        the curve would have had, NaN where none); ``<band>_highres`` when requested.

    Examples
    --------
    >>> from eoai.datasets import synthetic_cube
    >>> cube, truth = synthetic_cube(shape=(32, 32), seed=1)
    >>> dict(cube.sizes)
    {'time': 73, 'y': 32, 'x': 32}
    >>> sorted(truth.attrs["class_names"])[:3]
    ['cropland', 'double_crop', 'forest']
    """
    bands = tuple(DEFAULT_BANDS if bands is None else bands)
    crs = check_crs(crs, "synthetic_cube: crs", projected=True)
    factor = 2 if highres is True else int(highres or 0)
    if factor == 1 or factor < 0:
        raise InputError(f"highres must be False, True or an int factor >= 2, got {highres!r}")
    h, w = _validate(shape, cloud_fraction, noise, bands, factor)
    cls = _resolve_classes(classes)
    rng = np.random.default_rng(seed)

    try:
        times = pd.date_range(start, end, freq=freq)
    except (ValueError, TypeError) as err:
        raise InputError(f"bad start/end/freq ({start!r}, {end!r}, {freq!r}): {err}") from None
    if len(times) < 3:
        raise InputError(
            f"pd.date_range({start!r}, {end!r}, freq={freq!r}) gives {len(times)} dates; need >= 3"
        )
    times = pd.DatetimeIndex(times.values.astype("datetime64[ns]"))
    n_t = len(times)
    t0 = pd.Timestamp(year=times[0].year, month=1, day=1)
    # a class whose season runs past 31 December: the season of the year before the series also
    # reaches into it, so it is drawn too (its year comes first in the truth)
    wraps = any(c.seasons and c.seasons[-1][1] > 366 for c in cls)
    years = np.arange(times[0].year - int(wraps), times[-1].year + 1)
    year_off = np.array(
        [(pd.Timestamp(year=int(y), month=1, day=1) - t0).days for y in years], float
    )
    t_days = ((times - t0) / pd.Timedelta(days=1)).to_numpy(float)

    # --- parcels (Voronoi) and classes
    from scipy.spatial import cKDTree

    n_parcels = max(len(cls), int(round(h * w / parcel_size)))
    seeds = rng.random((n_parcels, 2)) * [h, w]
    yy, xx = np.mgrid[0:h, 0:w]
    _, parcel = cKDTree(seeds).query(np.column_stack([yy.ravel() + 0.5, xx.ravel() + 0.5]))
    weights = np.array([c.weight for c in cls], float)
    parcel_class = np.concatenate(
        [np.arange(len(cls)), rng.choice(len(cls), n_parcels - len(cls), p=weights / weights.sum())]
    )
    rng.shuffle(parcel_class)
    pix_class = parcel_class[parcel]  # (P,)
    n_pix = h * w

    # --- per-pixel phenology parameters, components ordered (year, season)
    n_slot = max([c.n_seasons for c in cls] + [1])
    k_n = len(years) * n_slot
    par = {k: np.full((k_n, n_pix), np.nan) for k in ("amp", "sos", "eos", "ru", "rd")}
    base_c = np.array([c.base for c in cls])
    ru_c = np.array([c.rate_up for c in cls])
    rd_c = np.array([c.rate_down for c in cls])
    parcel_base = base_c[parcel_class] + rng.normal(0, 0.02, n_parcels)
    parcel_ru = ru_c[parcel_class] * rng.uniform(0.85, 1.15, n_parcels)
    parcel_rd = rd_c[parcel_class] * rng.uniform(0.85, 1.15, n_parcels)
    for iy in range(len(years)):
        shift = rng.normal(0, jitter_days, n_parcels)
        stretch = rng.normal(0, jitter_days / 2, n_parcels)
        amp_f = rng.uniform(0.85, 1.1, n_parcels)
        for s in range(n_slot):
            k = iy * n_slot + s
            sos_c = np.array([c.seasons[s][0] if s < c.n_seasons else np.nan for c in cls])
            eos_c = np.array([c.seasons[s][1] if s < c.n_seasons else np.nan for c in cls])
            amp_c = np.array([c.amplitudes[s] if s < c.n_seasons else np.nan for c in cls])
            pj = rng.normal(0, 1.0, (2, n_pix))  # per-pixel jitter (days)
            par["sos"][k] = (sos_c[parcel_class] + shift)[parcel] + pj[0] + year_off[iy] - 1
            par["eos"][k] = (
                (eos_c[parcel_class] + shift + stretch)[parcel] + pj[1] + year_off[iy] - 1
            )
            par["amp"][k] = (amp_c[parcel_class] * amp_f)[parcel]
            par["ru"][k] = parcel_ru[parcel]
            par["rd"][k] = parcel_rd[parcel]
    valid = np.isfinite(par["amp"])
    for key in ("sos", "eos", "ru", "rd"):
        par[key] = np.where(valid, par[key], np.nan)
    par_eval = {k: np.where(valid, v, 1.0) for k, v in par.items()}  # finite for evaluation
    par_eval["amp"] = np.where(valid, par["amp"], 0.0)
    par_eval["base"] = parcel_base[parcel]
    par["base"] = par_eval["base"]

    ndvi_clean = np.broadcast_to(par_eval["base"], (n_t, n_pix)).copy()
    for k in range(k_n):
        ndvi_clean += par_eval["amp"][k] * (
            _sigmoid(par_eval["ru"][k] * (t_days[:, None] - par_eval["sos"][k]))
            - _sigmoid(par_eval["rd"][k] * (t_days[:, None] - par_eval["eos"][k]))
        )

    # --- breaks
    breakable = np.flatnonzero(np.array([cls[c].breakable for c in parcel_class]))
    if breaks is True:
        n_break = max(1, int(round(0.15 * len(breakable)))) if len(breakable) else 0
    else:
        n_break = int(breaks or 0)
    if n_break > len(breakable):
        raise InputError(
            f"breaks={breaks} but only {len(breakable)} parcels of breakable classes "
            f"({[c.name for c in cls if c.breakable]}); lower it or add breakable classes"
        )
    break_idx = np.full(n_pix, -1)
    if n_break:
        chosen = rng.choice(breakable, n_break, replace=False)
        dates = rng.integers(int(0.2 * n_t), int(0.8 * n_t) + 1, n_break)
        lut = np.full(n_parcels, -1)
        lut[chosen] = dates
        break_idx = lut[parcel]
    has_break = break_idx >= 0
    after = has_break[None, :] & (np.arange(n_t)[:, None] >= break_idx[None, :])
    ndvi_after = BREAK_NDVI + rng.normal(0, 0.01, n_parcels)[parcel]
    ndvi = np.where(after, ndvi_after[None, :], ndvi_clean)
    break_magnitude = np.where(
        has_break, ndvi_after - ndvi_clean[np.maximum(break_idx, 0), np.arange(n_pix)], np.nan
    )
    break_days = np.where(has_break, t_days[np.maximum(break_idx, 0)], np.nan)

    # --- reflectances
    bg_name = np.array([c.background for c in cls])[pix_class]
    is_water = (bg_name == "water") & ~has_break
    soil, veg, water = _ENDMEMBERS["soil"], _ENDMEMBERS["vegetation"], _ENDMEMBERS["water"]
    bg = np.where(is_water[:, None], water[None, :], soil[None, :])  # (P, B)

    def _ndvi_of(s: np.ndarray) -> np.ndarray:
        return (s[..., _NIR] - s[..., _RED]) / (s[..., _NIR] + s[..., _RED])

    nd_bg = _ndvi_of(bg)
    nd_veg = _ndvi_of(veg)
    brightness = (1.0 + 0.06 * _smooth_noise(rng, (h, w), sigma=1.0).ravel()).astype(np.float32)
    # float32 and in place from here: (T, P) arrays are the bulk of the work
    nd32 = ndvi.astype(np.float32)
    v = (nd32 - nd_bg.astype(np.float32)) / (nd_veg - nd_bg).astype(np.float32)
    np.clip(v, 0.0, 1.0, out=v)
    bg32, veg32 = bg.astype(np.float32), veg.astype(np.float32)
    s_rn = None
    if "red" in bands or "nir" in bands:
        # red + nir of the mix, split so that (nir - red) / (nir + red) is exactly the NDVI
        s_rn = (bg32[:, _RED] + bg32[:, _NIR]) * (1 - v) + (veg32[_RED] + veg32[_NIR]) * v
        s_rn *= brightness * 0.5
    cube_vars: dict[str, np.ndarray] = {}
    highres_vars: dict[str, np.ndarray] = {}
    for b in bands:
        ib = BANDS.index(b)
        if b in ("red", "nir"):
            rn = cast(np.ndarray, s_rn)  # computed above whenever red or nir is asked for
            refl = rn * (1 - nd32) if b == "red" else rn * (1 + nd32)
        else:
            refl = bg32[:, ib] * (1 - v)
            refl += veg32[ib] * v
            refl *= brightness
        if noise:
            refl += rng.normal(0, noise, refl.shape)
        refl = refl.reshape(n_t, h, w)
        if factor and b in BANDS_20M:
            highres_vars[b] = refl.copy()
            coarse = refl.reshape(n_t, h // factor, factor, w // factor, factor).mean(axis=(2, 4))
            refl = np.repeat(np.repeat(coarse, factor, axis=1), factor, axis=2)
        cube_vars[b] = refl
    del v, s_rn

    # --- clouds, shadows, SCL
    cloud_codes, shadow = _clouds(rng, n_t, (h, w), cloud_fraction)
    cloud = cloud_codes > 0
    clear = ~cloud & ~shadow
    surface = np.where(nd32.reshape(n_t, h, w) >= 0.4, 4, 5).astype(np.uint8)
    surface[:, is_water.reshape(h, w)] = 6
    scl = np.where(cloud, cloud_codes, np.where(shadow, np.uint8(3), surface)).astype(np.uint8)
    bright = (0.45 + 0.1 * rng.random((n_t, 1, 1))).astype(np.float32)
    cirrus = cloud_codes == 10
    thick = cloud & ~cirrus
    for refl in cube_vars.values():
        if mask_clouds:
            refl[~clear] = np.nan
        else:
            np.copyto(refl, np.broadcast_to(bright, refl.shape), where=thick)
            refl[cirrus] += 0.08
            refl[shadow] *= 0.35

    # --- truth phenology
    ph = _season_truth(_finite(par), 0.5, break_days)
    coords = _grid_coords(crs, resolution, origin, (h, w))
    ys, ss = len(years), n_slot

    def _k(a: np.ndarray) -> np.ndarray:
        return a.reshape(ys, ss, h, w)

    def _to_doy(a: np.ndarray) -> np.ndarray:  # days since t0 -> doy of the component's year
        return (_k(a) - year_off[:, None, None, None] + 1).astype(np.float32)

    def _to_date(a: np.ndarray) -> np.ndarray:
        ns = np.where(np.isfinite(a), a * 86400e9, 0).astype("int64")
        out = np.datetime64(t0, "ns") + ns.astype("timedelta64[ns]")
        return np.where(np.isfinite(a), out, np.datetime64("NaT"))

    dims4 = ("year", "season", "y", "x")
    dims3 = ("time", "y", "x")
    names = [c.name for c in cls]
    colours = [c.colour for c in cls]
    tvars: dict[str, Any] = {
        "class": (("y", "x"), pix_class.reshape(h, w).astype(np.int16), {
            "long_name": "land-cover class", "flag_values": list(range(len(cls))),
            "flag_meanings": " ".join(names), "class_names": names, "class_colours": colours,
        }),
        "n_seasons": (("y", "x"), np.array([c.n_seasons for c in cls], np.int8)[pix_class].reshape(h, w)),
        "ndvi": (dims3, ndvi.reshape(n_t, h, w).astype(np.float32),
                 {"long_name": "noise-free NDVI (breaks included)"}),
        "clear": (dims3, clear, {"long_name": "pixel neither cloud nor shadow"}),
        "break_date": (("y", "x"), _to_date(break_days).reshape(h, w),
                       {"long_name": "first acquisition date showing the abrupt change"}),
        "break_magnitude": (("y", "x"), break_magnitude.reshape(h, w).astype(np.float32),
                            {"long_name": "NDVI after the break minus NDVI without it, at break_date"}),
        "curve_base": (("y", "x"), par["base"].reshape(h, w).astype(np.float32)),
        "curve_amplitude": (dims4, _k(par["amp"]).astype(np.float32)),
        "curve_sos": (dims4, _to_doy(par["sos"]), {"units": "day of year (inflection)"}),
        "curve_eos": (dims4, _to_doy(par["eos"]), {"units": "day of year (inflection)"}),
        "curve_rate_up": (dims4, _k(par["ru"]).astype(np.float32)),
        "curve_rate_down": (dims4, _k(par["rd"]).astype(np.float32)),
    }  # fmt: skip
    for key in ("sos", "pos", "eos"):
        what = {"sos": "50 % rising crossing", "pos": "peak", "eos": "50 % falling crossing"}[key]
        tvars[key] = (dims4, _to_date(ph[key]).reshape(ys, ss, h, w), {"long_name": what})
        tvars[f"{key}_doy"] = (dims4, _to_doy(ph[key]), {"long_name": what, "units": "day of year"})
    for b, hr in highres_vars.items():
        tvars[f"{b}_highres"] = (dims3, hr, {"long_name": f"{b} before degradation (x{factor})"})
    params = {
        "shape": [h, w], "start": str(start), "end": str(end), "freq": freq, "classes": names,
        "cloud_fraction": cloud_fraction, "noise": noise, "breaks": int(n_break), "seed": seed,
        "highres": factor, "mask_clouds": mask_clouds,
    }  # fmt: skip
    truth = xr.Dataset(
        tvars,
        coords={"time": times.values, "year": years, "season": np.arange(n_slot), **coords},
        attrs={"class_names": names, "class_colours": colours, "t0": str(t0.date()),
               "eoai:method": "synthetic_cube", "eoai:parameters": to_json(params)},
    )  # fmt: skip

    var_attrs = {"units": "1", "nodata": float("nan")}
    data_vars: dict[str, Any] = {
        b: (dims3, a, {**var_attrs, "long_name": f"synthetic surface reflectance ({b})"})
        for b, a in cube_vars.items()
    }
    data_vars["scl"] = (dims3, scl, {
        "long_name": "Sentinel-2 scene classification (synthetic)",
        "flag_values": list(SCL_CODES), "flag_meanings": " ".join(SCL_CODES.values()),
    })  # fmt: skip
    cube = xr.Dataset(
        data_vars,
        coords={"time": times.values, **coords},
        attrs={"eoai:method": "synthetic_cube", "eoai:parameters": to_json(params)},
    )
    if chunks is not None:
        cube = cube.chunk(chunks)
    return cube, truth


def _grid_coords(
    crs: str, resolution: float, origin: tuple[float, float], shape: tuple[int, int]
) -> dict[str, xr.DataArray]:
    from affine import Affine
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_coords

    gbox = GeoBox(shape, Affine(resolution, 0, origin[0], 0, -resolution, origin[1]), crs)
    return dict(xr_coords(gbox, crs_coord_name="spatial_ref"))
