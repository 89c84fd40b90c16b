"""A synthetic scene that only a series branch and a patch branch together can classify.

:func:`fusion_patches` makes a Sentinel-2-like NDVI series on a 10 m grid and one very-high-
resolution panchromatic image (``ratio`` fine pixels per pixel side) over square parcels of four
classes, the product of two independent properties:

============  ============================  =================================
class         NDVI peak (series)            texture of the fine image (patch)
============  ============================  =================================
1 crop        late (day ~240)               none (white noise)
2 meadow      early (day ~120)              none (white noise)
3 orchard     early                         rows (a sinusoid, any direction)
4 vineyard    late                          rows
============  ============================  =================================

The series tell early from late, never rows from none; the fine image the reverse; the mean and
spread of the fine values per pixel are drawn alike for both textures. A model reading one of
them is right at most half the time beyond chance within its pair (overall accuracy about 0.5);
one that combines both can reach 1. Used by the tests and ``benchmarks/bench_patchfusion.py`` of
the M3Fusion patch branch (``eoai.ml.fit(samples, "m3fusion")``).

Examples
--------
>>> import eoai
>>> from eoai.datasets.fusion_patches import fusion_patches
>>> sources, truth, labels = fusion_patches(shape=(8, 8), parcel=4, seed=0)
>>> sources["s2"].ndvi.shape, sources["vhr"].pan.shape, len(labels)
((8, 8, 8), (32, 32), 4)
>>> tree = eoai.stack_sources(sources, fine="vhr")
>>> tree["vhr"].attrs["eoai:fine_ratio"]
4
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError

__all__ = ["FUSION_CLASSES", "fusion_patches"]

#: class code -> (name, early NDVI peak, rows in the fine image)
FUSION_CLASSES = {
    1: ("crop", False, False),
    2: ("meadow", True, False),
    3: ("orchard", True, True),
    4: ("vineyard", False, True),
}


def fusion_patches(
    shape: tuple[int, int] = (32, 32),
    *,
    parcel: int = 4,
    ratio: int = 4,
    n_dates: int = 8,
    noise: float = 0.06,
    texture_noise: float = 0.08,
    amplitude: float = 0.12,
    seed: int = 0,
    crs: str = "EPSG:32631",
    origin: tuple[float, float] = (600000.0, 4900000.0),
    resolution: float = 10.0,
    chunks: dict[str, int] | None = None,
    ms: bool = False,
) -> tuple[dict[str, xr.Dataset], xr.Dataset, Any]:
    """Sources, truth and labelled parcels of the series-and-texture scene (module docstring).

    Parameters
    ----------
    shape
        ``(rows, columns)`` of the 10 m grid; multiples of ``parcel``.
    parcel
        Side of the square parcels, in pixels.
    ratio
        Fine pixels per pixel side of the panchromatic image (``resolution / ratio`` metres).
    n_dates
        Dates of the NDVI series, evenly over 2021.
    noise, texture_noise
        Standard deviation of the per-pixel noise of the NDVI and of the fine image.
    amplitude
        Amplitude of the rows (a sinusoid of period 3-5 fine pixels in one of four directions).
    seed
        Seeds everything.
    crs, origin, resolution
        The grid (upper-left corner, pixel size in metres).
    ms
        Also a one-date multispectral image ``"ms"`` (``red``, ``nir`` on the 10 m grid, no time
        axis) on day 120, when the early classes are green and the late ones bare: with the fine
        image, the panchromatic + multispectral pair of MultiResoLCC (``fit(..., "multireso")``);
        stack it with ``static=["ms"]``.
    chunks
        Dask chunks of the base grid (``{"y": 16, "x": 16}``; the fine image gets ``ratio`` times
        them); default numpy.

    Returns
    -------
    sources : dict
        ``{"s2": Dataset ndvi (time, y, x), "vhr": Dataset pan (y, x)}`` with CRS, ready for
        ``eoai.stack_sources(sources, fine="vhr")`` (and ``"ms"``, see ``ms``).
    truth : xarray.Dataset
        ``class`` (y, x) with ``class_names``, and ``parcel`` (y, x) ids.
    labels : geopandas.GeoDataFrame
        One square polygon per parcel: ``class``, ``class_name``, ``parcel``.

    Raises
    ------
    eoai.errors.InputError
        ``shape`` not a multiple of ``parcel``, or ``ratio`` / ``parcel`` / ``n_dates`` < 1.
    """
    import geopandas as gpd
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_coords
    from shapely.geometry import box

    from ..io.stack import fine_geobox

    ny, nx = (int(v) for v in shape)
    if min(parcel, ratio, n_dates) < 1 or ny % parcel or nx % parcel:
        raise InputError(
            f"fusion_patches: shape {shape} must be multiples of parcel={parcel}, and parcel, "
            f"ratio, n_dates >= 1 (got {parcel}, {ratio}, {n_dates})"
        )
    rng = np.random.default_rng(seed)
    py, px = ny // parcel, nx // parcel
    n_par = py * px
    codes = rng.permutation(np.resize(np.array(list(FUSION_CLASSES)), n_par))
    pid = np.arange(n_par).reshape(py, px).repeat(parcel, 0).repeat(parcel, 1)
    klass = codes[pid]
    early = np.array([FUSION_CLASSES[c][1] for c in codes])
    rows_ = np.array([FUSION_CLASSES[c][2] for c in codes])

    # the series: one NDVI peak per parcel, early or late, jittered
    dates = pd.date_range("2021-01-01", "2021-12-31", periods=n_dates + 2)[1:-1].normalize()
    doy = dates.day_of_year.to_numpy("float64")
    peak = np.where(early, 120.0, 240.0) + rng.normal(0, 12, n_par)
    amp = 0.5 + rng.normal(0, 0.06, n_par)
    width = 45.0 + rng.normal(0, 5, n_par)
    curve = 0.2 + amp[:, None] * np.exp(-0.5 * ((doy[None] - peak[:, None]) / width[:, None]) ** 2)
    ndvi = curve[pid].transpose(2, 0, 1) + rng.normal(0, noise, (n_dates, ny, nx))

    # the fine image: rows or none, means and spreads drawn alike
    fy, fx = ny * ratio, nx * ratio
    fpid = pid.repeat(ratio, 0).repeat(ratio, 1)
    yy, xx = np.mgrid[0:fy, 0:fx].astype("float64")
    angle = rng.choice(np.deg2rad([0.0, 45.0, 90.0, 135.0]), n_par)
    period = rng.uniform(3.0, 5.0, n_par)
    phase = rng.uniform(0, 2 * np.pi, n_par)
    mean = 0.3 + rng.normal(0, 0.04, n_par)
    a, p, ph = angle[fpid], period[fpid], phase[fpid]
    wave = np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / p + ph)
    rows_f = rows_[fpid]
    # white-noise parcels get the variance of the rows so that the spread does not tell them apart
    spread = np.where(rows_f, texture_noise, np.hypot(texture_noise, amplitude / np.sqrt(2)))
    pan = mean[fpid] + np.where(rows_f, amplitude * wave, 0.0) + spread * rng.normal(0, 1, (fy, fx))

    x0, y0 = origin
    base = GeoBox((ny, nx), _affine(x0, y0, resolution), crs)
    fine = fine_geobox(base, ratio)
    bc = xr_coords(base, crs_coord_name="spatial_ref")
    fc = xr_coords(fine, crs_coord_name="spatial_ref")
    s2 = xr.Dataset(
        {"ndvi": (("time", "y", "x"), ndvi.astype("float32"))}, coords={"time": dates, **bc}
    )
    vhr = xr.Dataset({"pan": (("y", "x"), pan.astype("float32"))}, coords=fc)
    if chunks:
        cy, cx = int(chunks.get("y", ny)), int(chunks.get("x", nx))
        s2 = s2.chunk({"time": -1, "y": cy, "x": cx})
        vhr = vhr.chunk({"y": cy * ratio, "x": cx * ratio})
    out = {"s2": s2, "vhr": vhr}
    if ms:
        green = 0.2 + amp * np.exp(-0.5 * ((120.0 - peak) / width) ** 2)
        g = green[pid] + rng.normal(0, noise, (ny, nx))
        red = 0.12 - 0.08 * g + rng.normal(0, 0.01, (ny, nx))
        nir = 0.25 + 0.3 * g + rng.normal(0, 0.01, (ny, nx))
        out["ms"] = xr.Dataset(
            {
                "red": (("y", "x"), red.astype("float32")),
                "nir": (("y", "x"), nir.astype("float32")),
            },
            coords=bc,
        )
        if chunks:
            out["ms"] = out["ms"].chunk({"y": cy, "x": cx})
    names = {c: v[0] for c, v in FUSION_CLASSES.items()}
    truth = xr.Dataset(
        {"class": (("y", "x"), klass.astype("uint8")), "parcel": (("y", "x"), pid)}, coords=bc
    )
    truth["class"].attrs["class_names"] = [names[c] for c in sorted(names)]
    geoms, rows_out = [], []
    for k in range(n_par):
        r, c = divmod(k, px)
        xa, ya = x0 + c * parcel * resolution, y0 - r * parcel * resolution
        geoms.append(box(xa, ya - parcel * resolution, xa + parcel * resolution, ya))
        rows_out.append({"class": int(codes[k]), "class_name": names[int(codes[k])], "parcel": k})
    labels = gpd.GeoDataFrame(rows_out, geometry=geoms, crs=crs)
    return out, truth, labels


def _affine(x0: float, y0: float, res: float) -> Any:
    from affine import Affine

    return Affine(res, 0.0, x0, 0.0, -res, y0)
