"""Real NDVI series sets for gap-filling accuracy checks, and the hiding protocol of the benchmark.

Importable from tests (``tests/`` is on ``sys.path``) and from ``benchmarks/bench_gapfill.py``.
Each loader returns ``(ndvi, clear)``: NDVI as float32 with NaN where there is no observation, and
the boolean mask of the observations that count as clear (the ones that may be hidden and scored).

- ``slovenia``: ``../shared/data/eolearn_slovenia`` Sentinel-2 NDVI, 68 dates x 101 x 100 px,
  clear = ``CLM == 0`` and ``IS_DATA``.
- ``modis_fluxsites``: ``data/real/modis_fluxsites`` MODIS MOD13A1 NDVI at 10 flux sites on five
  continents, 422 16-day composites 2000-2018, clear = SummaryQA 0 (good) or 1 (marginal).
- ``sits_cerrado``: ``data/real/sits_cerrado`` MODIS MOD13Q1 NDVI at 83 Cerrado / Pasture
  locations in Brazil, 345 16-day composites 2000-2015, no quality flag (every observation counts,
  cloud residue included).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data" / "real"
SLOVENIA = ROOT.parent / "shared" / "data" / "eolearn_slovenia" / "eolearn_testpatch.nc"
SETS = ("slovenia", "modis_fluxsites", "sits_cerrado")


def _series_da(values: np.ndarray, days: np.ndarray, series: np.ndarray) -> xr.DataArray:
    t = pd.Timestamp("1970-01-01") + pd.to_timedelta(days.astype(np.int64), unit="D")
    return xr.DataArray(
        values.astype(np.float32),
        dims=("series", "time"),
        coords={"series": series, "time": t.values},
        name="ndvi",
    )


def load(name: str) -> tuple[xr.DataArray, xr.DataArray]:
    """``(ndvi, clear)`` of one set (see the module documentation)."""
    if name == "slovenia":
        ds = xr.open_dataset(SLOVENIA)
        ndvi = ds.NDVI.rename(time_all="time").astype(np.float32).load()
        clear = (ds.CLM == 0).rename(time_all="time") & ndvi.notnull()
        clear = (clear & (ds.IS_DATA > 0).rename(time_all="time")).load()
        ds.close()
        return ndvi, clear
    if name == "modis_fluxsites":
        with np.load(REAL / name / "series.npz") as z:
            raw, qa, days, site = z["ndvi"], z["summary_qa"], z["time"], z["site"]
        ok = (raw > -3000) & (raw <= 10000)  # the MOD13 valid range
        ndvi = _series_da(np.where(ok, raw / 1e4, np.nan), days, site)
        return ndvi, ndvi.notnull() & xr.DataArray((qa == 0) | (qa == 1), dims=ndvi.dims)
    if name == "sits_cerrado":
        with np.load(REAL / name / "series.npz") as z:
            raw, days = z["ndvi"], z["time"]
        ndvi = _series_da(raw, days, np.arange(raw.shape[0]))
        return ndvi, ndvi.notnull()
    raise ValueError(f"unknown set {name!r}; choose one of {SETS}")


def hide(
    ndvi: xr.DataArray, clear: xr.DataArray, seed: int = 0, fraction: float = 0.2
) -> tuple[xr.DataArray, xr.DataArray]:
    """The benchmark's protocol: hide ``fraction`` of the clear observations at random (numpy
    ``default_rng(seed)``, one uniform draw per cell in array order); return ``(observed, hidden)``
    where ``observed`` keeps only the clear observations that were not hidden."""
    rng = np.random.default_rng(seed)
    hidden = clear & (rng.random(clear.shape) < fraction)
    return ndvi.where(clear & ~hidden), hidden


def scores(rec: xr.DataArray, ndvi: xr.DataArray, hidden: xr.DataArray) -> tuple[float, float]:
    """RMSE and MAE of ``rec`` at the hidden observations."""
    err = (rec.transpose(*ndvi.dims) - ndvi).where(hidden).values
    err = err[np.isfinite(err)]
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))
