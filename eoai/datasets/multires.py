"""A fine "aerial" image and a coarse image series of one scene, with known truth.

:func:`multires_scene` draws a scene whose classes need both sources (the setting of U-T&T,
:class:`eoai.ml.models.UTT`):

- **crop parcels** (a Voronoi partition, many series pixels each) are ``early_crop`` or
  ``late_crop``: the same spectra, only the timing of their season differs, so the classes are
  seen in the series; the aerial image (one date) shows each parcel with a random brightness
  that does not depend on its class, so it shows the parcel edges but not the crop;
- **buildings** (squares) and **trees** (discs), 3 to 7 fine pixels across, smaller than about two
  series pixels: the aerial image shows their shapes (grey roofs, dark crowns), the series only
  mixes them into their neighbours' pixels.

The series is made on the fine grid (reflectances from an NDVI curve per class, red and nir) and
averaged over ``factor`` x ``factor`` blocks, so it is exactly what a coarser sensor would see of
the scene, then noise and clouds (NaN) are added. Both grids share their origin: the fine grid is
an integer multiple of the coarse one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError

#: classes of :func:`multires_scene`, by code
CLASSES = ("early_crop", "late_crop", "building", "tree")
COLOURS = ("#fdbf6f", "#ff7f00", "#e31a1c", "#33a02c")
#: aerial colours (red, green, blue, nir) of buildings and trees; crops get their parcel's
_AERIAL = {"building": (0.35, 0.33, 0.32, 0.30), "tree": (0.03, 0.08, 0.03, 0.50)}
#: constant (red, nir) reflectance in the series of buildings and trees
_SERIES = {"building": (0.22, 0.26), "tree": (0.04, 0.32)}


def _ndvi_to_red_nir(ndvi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Red and nir of a mixture of bare soil and vegetation with that NDVI (soil NDVI 0.1)."""
    soil, veg = np.array([0.12, 0.15]), np.array([0.03, 0.45])
    f_soil = (soil[1] - soil[0]) / (soil[1] + soil[0])
    f_veg = (veg[1] - veg[0]) / (veg[1] + veg[0])
    w = np.clip((ndvi - f_soil) / (f_veg - f_soil), 0, 1)
    return soil[0] + w * (veg[0] - soil[0]), soil[1] + w * (veg[1] - soil[1])


def multires_scene(
    shape: tuple[int, int] = (96, 96),
    factor: int = 4,
    *,
    resolution: float = 2.5,
    start: str = "2021-01-01",
    end: str = "2021-12-31",
    freq: str = "20D",
    parcel_size: float = 600.0,
    objects: float = 0.08,
    cloud_fraction: float = 0.0,
    noise: float = 0.01,
    seed: int = 0,
    crs: str = "EPSG:32633",
    origin: tuple[float, float] = (500000.0, 5100000.0),
) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """A fine aerial image, a coarse series of the same scene, and the truth on the fine grid.

    Parameters
    ----------
    shape
        Fine grid ``(y, x)`` in pixels; both must be multiples of ``factor``.
    factor
        Series pixel size / aerial pixel size (e.g. 4: a 2.5 m image and a 10 m series).
    resolution
        Aerial pixel size (CRS units); the series' is ``factor * resolution``.
    start, end, freq
        Dates of the series (``pandas.date_range``).
    parcel_size
        Mean crop parcel area in fine pixels.
    objects
        Share of the fine pixels covered by buildings and trees (placed in turn).
    cloud_fraction
        Share of series observations that are NaN (blobs of about 3 series pixels).
    noise
        Standard deviation of the Gaussian noise of the series and of the aerial image.
    seed
        Random seed.
    crs, origin
        CRS and upper-left corner of both grids.

    Returns
    -------
    aerial : xarray.Dataset
        ``red``, ``green``, ``blue``, ``nir`` ``(y, x)`` float32 on the fine grid, with a CRS.
    series : xarray.Dataset
        ``red``, ``nir`` ``(time, y, x)`` float32 on the coarse grid, NaN under clouds.
    truth : xarray.Dataset
        ``class`` ``(y, x)`` int16 codes of :data:`CLASSES` (attrs ``class_names``,
        ``class_colours``), ``parcel`` ids, on the fine grid.

    Raises
    ------
    eoai.errors.InputError
        A side is not a multiple of ``factor``, or a parameter out of range.

    Examples
    --------
    >>> aerial, series, truth = multires_scene((32, 32), factor=4, seed=1)
    >>> dict(aerial.sizes), dict(series.sizes), truth["class"].attrs["class_names"]
    ({'y': 32, 'x': 32}, {'time': 19, 'y': 8, 'x': 8}, ['early_crop', 'late_crop', 'building', 'tree'])
    >>> float(series.odc.geobox.resolution.x) / float(aerial.odc.geobox.resolution.x)
    4.0
    """
    from .synthetic import _grid_coords, double_logistic

    h, w = (int(v) for v in shape)
    factor = int(factor)
    if factor < 1 or h % factor or w % factor or h < factor or w < factor:
        raise InputError(
            f"multires_scene: shape {shape} must be whole multiples of factor={factor} (>= 1)"
        )
    if not 0 <= objects < 0.5 or not 0 <= cloud_fraction < 1:
        raise InputError(
            f"multires_scene: objects must be in [0, 0.5) and cloud_fraction in [0, 1), got "
            f"{objects}, {cloud_fraction}"
        )
    rng = np.random.default_rng(seed)
    # --- crop parcels: Voronoi cells, half early, half late (at least one of each)
    n = max(2, int(round(h * w / parcel_size)))
    seeds = rng.uniform(0, 1, (n, 2)) * (h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    d2 = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    parcel = d2.argmin(-1).astype("int32")
    crop = rng.permutation(np.arange(n) % 2)
    cls = crop[parcel].astype("int16")
    # --- buildings (squares) and trees (discs), placed until `objects` of the area is covered
    target = objects * h * w
    covered, placed = 0, 0
    while covered < target:
        kind = 2 + placed % 2  # buildings and trees in turn
        placed += 1
        size = int(rng.integers(3, 8))
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        if kind == 2:
            mask = (abs(yy - cy) <= size // 2) & (abs(xx - cx) <= size // 2)
        else:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= (size / 2) ** 2
        covered += int((mask & (cls < 2)).sum())
        cls[mask] = kind
    # --- aerial image: crops take a random brightness per parcel, independent of their class
    bright = rng.uniform(0.6, 1.4, n)[parcel]
    crop_colour = np.array([0.08, 0.11, 0.07, 0.30])
    aerial = crop_colour[:, None, None] * bright[None]
    for code, name in ((2, "building"), (3, "tree")):
        aerial[:, cls == code] = np.asarray(_AERIAL[name])[:, None]
    aerial = aerial + noise * rng.standard_normal(aerial.shape)
    # --- series on the fine grid, then block means
    dates = pd.date_range(start, end, freq=freq)
    if len(dates) < 2:
        raise InputError(f"multires_scene: {start} .. {end} every {freq} gives < 2 dates")
    doy = np.asarray(dates.day_of_year, dtype="float64")
    seasons = {0: (110.0, 190.0), 1: (190.0, 270.0)}  # early and late crop: green-up, senescence
    ndvi = {
        k: double_logistic(doy, 0.15, 0.7, sos, eos, 0.12, 0.12)
        for k, (sos, eos) in seasons.items()
    }
    fine = np.empty((len(dates), 2, h, w))
    for k in (0, 1):
        red, nir = _ndvi_to_red_nir(ndvi[k])
        sel = cls == k
        fine[:, 0, sel], fine[:, 1, sel] = red[:, None], nir[:, None]
    for code, name in ((2, "building"), (3, "tree")):
        fine[:, :, cls == code] = np.asarray(_SERIES[name])[None, :, None]
    hc, wc = h // factor, w // factor
    coarse = fine.reshape(len(dates), 2, hc, factor, wc, factor).mean(axis=(3, 5))
    coarse = coarse + noise * rng.standard_normal(coarse.shape)
    if cloud_fraction > 0:
        from .synthetic import _smooth_noise

        field = _smooth_noise(rng, (len(dates), hc, wc), 1.5)
        cut = np.quantile(field, 1 - cloud_fraction)
        coarse[np.broadcast_to((field > cut)[:, None], coarse.shape)] = np.nan
    fine_coords = _grid_coords(crs, resolution, origin, (h, w))
    coarse_coords = _grid_coords(crs, resolution * factor, origin, (hc, wc))
    attrs = {"eoai:method": "multires_scene", "factor": factor}
    aerial_ds = xr.Dataset(
        {b: (("y", "x"), aerial[i].astype("float32")) for i, b in
         enumerate(("red", "green", "blue", "nir"))},
        coords=fine_coords, attrs=attrs,
    )  # fmt: skip
    series_ds = xr.Dataset(
        {b: (("time", "y", "x"), coarse[:, i].astype("float32")) for i, b in
         enumerate(("red", "nir"))},
        coords={"time": dates, **coarse_coords}, attrs=attrs,
    )  # fmt: skip
    class_da = xr.DataArray(cls, dims=("y", "x"), coords=fine_coords, name="class")
    class_da.attrs = {"class_names": list(CLASSES), "class_colours": list(COLOURS)}
    truth = xr.Dataset(
        {"class": class_da, "parcel": (("y", "x"), parcel)}, coords=fine_coords, attrs=attrs
    )
    truth.attrs["class_names"] = list(CLASSES)
    return aerial_ds, series_ds, truth
