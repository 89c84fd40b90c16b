"""stack_sources: which resampling puts a source on a sub-pixel-shifted grid best (real pixels).

Run from the project root: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_stack.py``.

The case of Sentinel-1 and Sentinel-2 on one grid is a grid of about the same resolution shifted by
a fraction of a pixel (SSL4EO-S12 patch 0000200: 0.4 px). A truth for it is built from real 10 m
pixels: the source is the 2 x 2 block mean of a 10 m image (a 20 m grid), the target is the same
20 m grid shifted by one 10 m pixel (half a 20 m pixel) in x and y, whose exact values are the
2 x 2 block means of the 10 m image one pixel further. Each method puts the source on the target
through ``stack_sources(..., like=target)``; the score is the RMSE against that truth (interior,
two 20 m pixels off the edges), relative to nearest (the simplest baseline).

1. Sentinel-2 L2A reflectance: B2, B3, B4, B8, both dates (rico-hdl SSL4EO-S12 patch 0000200).
2. Sentinel-1 sigma0 (VV, VH, both dates), given in dB, the same construction (truth: the block
   mean of linear power, in dB), resampled in linear power (what ``stack_sources`` does) and, for
   comparison, on the dB values (``units`` dropped, so the band is not known as backscatter). The
   truth is a 4-look value like each source pixel, so it carries the same log bias as the dB mean;
   hence also:
3. Mean power kept when S1 goes onto the real S2 grid of the patch (0.4 px shift, bilinear) and
   onto a 3x coarser grid (average): mean linear power out / mean linear power in. Backscatter is
   a mean power; averaging dB values gives the log of a geometric mean, biased low.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.xr import wrap_xr

from eoai.io.stack import stack_sources

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PATCH = SHARED / "sentinel1/rico-hdl/integration_tests/tiffs/SSL4EO-S12"
METHODS = ("nearest", "bilinear", "cubic", "lanczos", "average")


def _read(path: Path) -> tuple[np.ndarray, GeoBox]:
    with rasterio.open(path) as f:
        return f.read(1).astype("float64"), GeoBox(f.shape, f.transform, f.crs)


def _blocks(a: np.ndarray) -> np.ndarray:
    ny, nx = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
    return a[:ny, :nx].reshape(ny // 2, 2, nx // 2, 2).mean(axis=(1, 3))


def _case(image: np.ndarray, gbox: GeoBox, name: str, units: str | None):
    """(source Dataset on the 20 m grid, target GeoBox shifted half a 20 m pixel, truth)."""
    power = 10 ** (image / 10) if units == "dB" else image
    src = _blocks(power[:-1, :-1])  # leave room for the shifted truth
    truth = _blocks(power[1:, 1:])
    if units == "dB":
        src, truth = 10 * np.log10(src), 10 * np.log10(truth)
    a = gbox.affine
    coarse = Affine(2 * a.a, a.b, a.c, a.d, 2 * a.e, a.f)
    src_box = GeoBox(src.shape, coarse, gbox.crs)
    target = GeoBox(truth.shape, Affine(2 * a.a, a.b, a.c + a.a, a.d, 2 * a.e, a.f + a.e), gbox.crs)
    da = wrap_xr(src[None].astype("float32"), src_box, time=pd.to_datetime(["2020-06-01"]))
    if units:
        da.attrs["units"] = units
    return xr.Dataset({name: da}), target, truth


def _rmse(got: np.ndarray, truth: np.ndarray) -> float:
    d = (got - truth)[2:-2, 2:-2]
    return float(np.sqrt(np.nanmean(d * d)))


def _bias(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.nanmean((got - truth)[2:-2, 2:-2]))


def _scores(cases, drop_units: bool = False, score=_rmse) -> dict[str, float]:
    out = {}
    for method in METHODS:
        errs = []
        for ds, target, truth in cases:
            if drop_units:  # not known as backscatter: resampled as plain numbers (dB)
                ds = ds.rename({next(iter(ds.data_vars)): "b"})
                ds["b"].attrs = {}
            tree = stack_sources({"src": ds}, like=target, resampling=method)
            var = next(iter(tree["src"].data_vars))
            errs.append(score(tree["src"][var].values[0], truth))
        out[method] = float(np.median(errs))
    return out


def main() -> None:
    s2_cases, s1_cases = [], []
    for folder in sorted((PATCH / "s2a/0000200").iterdir()):
        for band in ("B2", "B3", "B4", "B8"):
            image, gbox = _read(folder / f"{band}.tif")
            s2_cases.append(_case(image * 1e-4, gbox, "b", None))
    for folder in sorted((PATCH / "s1/0000200").iterdir()):
        for pol in ("VV", "VH"):
            image, gbox = _read(folder / f"{pol}.tif")
            s1_cases.append(_case(image, gbox, "vv", "dB"))
    s2 = _scores(s2_cases)
    print("Sentinel-2 reflectance, 8 bands x dates: median RMSE (reflectance), ratio to nearest")
    for m, v in s2.items():
        print(f"  {m:9s} {v:.5f}  {v / s2['nearest']:.3f}")
    s1_items = []
    for folder in sorted((PATCH / "s1/0000200").iterdir()):
        for pol in ("VV", "VH"):
            image, gbox = _read(folder / f"{pol}.tif")
            da = wrap_xr(image[None].astype("float32"), gbox, time=pd.to_datetime(["2020-06-07"]))
            s1_items.append(xr.Dataset({"vv": da.assign_attrs(units="dB")}))
    s2_box = _read(next((PATCH / "s2a/0000200").iterdir()) / "B4.tif")[1]
    s1, s1_db = _scores(s1_cases), _scores(s1_cases, drop_units=True)
    b1, b1_db = _scores(s1_cases, score=_bias), _scores(s1_cases, drop_units=True, score=_bias)
    print(
        "Sentinel-1 sigma0 (dB), 4 bands x dates: median RMSE and bias (dB), RMSE ratio to nearest"
    )
    print("  method    in linear power: RMSE ratio  bias | in dB: RMSE ratio  bias")
    for m in METHODS:
        print(f"  {m:9s} {s1[m]:.4f} {s1[m] / s1['nearest']:.3f} {b1[m]:+.3f} | "
              f"{s1_db[m]:.4f} {s1_db[m] / s1['nearest']:.3f} {b1_db[m]:+.3f}")  # fmt: skip
    _power_kept(s1_items, s2_box)


def _power_kept(s1_items, s2_box) -> None:
    print("Sentinel-1 mean power kept (out / in), 4 bands x dates, median")
    from odc.geo import resxy_

    r = s2_box.resolution
    coarse = GeoBox.from_bbox(s2_box.boundingbox, s2_box.crs, resolution=resxy_(3 * r.x, 3 * r.y))
    for label, grid, method in (("onto the S2 grid, bilinear", s2_box, "bilinear"),
                                ("3x coarser, average", coarse, "average")):  # fmt: skip
        kept = {"linear power": [], "dB": []}
        for ds in s1_items:
            for how in kept:
                src = ds
                if how == "dB":
                    src = ds.rename(vv="b")
                    src["b"].attrs = {}
                tree = stack_sources({"s1": src}, like=grid, resampling=method)
                out = next(iter(tree["s1"].data_vars.values())).values
                inside = 10 ** (ds.vv.values / 10)
                kept[how].append(np.nanmean(10 ** (out / 10)) / inside.mean())
        print(
            f"  {label:28s} in linear power {np.median(kept['linear power']):.4f} | "
            f"in dB {np.median(kept['dB']):.4f}"
        )


if __name__ == "__main__":
    sys.exit(main())
