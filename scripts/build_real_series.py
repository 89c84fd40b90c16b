"""Rebuild ``data/real/modis_fluxsites`` and ``data/real/sits_cerrado`` from their public sources.

Sources (R package data, GPL-2; see the README in each folder):

- ``eco-hydro/phenofit`` ``data/MOD13A1.rda``: MODIS MOD13A1 (500 m, 16-day) NDVI/EVI with the
  SummaryQA reliability flag at 10 flux sites, 2000-02-18 .. 2018-06-10.
- ``e-sensing/sits`` ``data/cerrado_2classes.rda``: MODIS MOD13Q1 (250 m, 16-day) NDVI/EVI samples
  (one row per location and crop year, Sept .. Aug) of Cerrado and Pasture in Brazil, 2000-09 .. 2015-08.

Usage (the R files read with the pure-Python ``rdata`` package, needed only here, not by eoai)::

    pip install rdata
    git -C <phenofit clone> show HEAD:data/MOD13A1.rda > /tmp/MOD13A1.rda
    git -C <sits clone> show HEAD:data/cerrado_2classes.rda > /tmp/cerrado_2classes.rda
    python scripts/build_real_series.py /tmp/MOD13A1.rda /tmp/cerrado_2classes.rda

Writes ``series.npz`` in each folder (``numpy.load``; times as days since 1970-01-01).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "real"


def _read(path: str) -> dict:
    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R classes Date / data.table read as plain columns
        return rdata.read_rda(path)


def build_fluxsites(rda: str) -> None:
    obj = _read(rda)["MOD13A1"]
    dt, st = obj["dt"], obj["st"]
    sites = list(st["site"].astype(str))
    dates = np.sort(dt["date"].astype(float).unique()).astype(np.int32)
    shape = (len(sites), dates.size)
    ndvi = np.full(shape, -32768, np.int16)
    evi = np.full(shape, -32768, np.int16)
    qa = np.full(shape, -1, np.int8)
    doy = np.full(shape, -1, np.int16)
    for i, s in enumerate(sites):
        d = dt[dt["site"].astype(str) == s]
        j = np.searchsorted(dates, d["date"].astype(float).to_numpy().astype(np.int32))
        ndvi[i, j] = d["NDVI"].to_numpy(np.int16, na_value=-32768)
        evi[i, j] = d["EVI"].to_numpy(np.int16, na_value=-32768)
        qa[i, j] = d["SummaryQA"].to_numpy(np.int8, na_value=-1)
        doy[i, j] = d["DayOfYear"].to_numpy(np.int16, na_value=-1)
    np.savez_compressed(
        OUT / "modis_fluxsites" / "series.npz",
        time=dates, ndvi=ndvi, evi=evi, summary_qa=qa, composite_doy=doy,
        site=np.array(sites, dtype="U"), lat=st["lat"].to_numpy(float), lon=st["lon"].to_numpy(float),
        igbp=np.array(list(st["IGBPname"].astype(str)), dtype="U"),
    )  # fmt: skip
    print(f"modis_fluxsites: {shape[0]} sites x {shape[1]} dates, QA counts",
          {int(k): int((qa == k).sum()) for k in np.unique(qa)})  # fmt: skip


def build_cerrado(rda: str) -> None:
    tb = _read(rda)["cerrado_2classes"]
    locs = tb.groupby(["longitude", "latitude"], sort=True)
    dates = np.unique(np.concatenate([ts["Index"].to_numpy(float) for ts in tb["time_series"]]))
    dates = dates.astype(np.int32)
    shape = (locs.ngroups, dates.size)
    ndvi = np.full(shape, np.nan, np.float32)
    evi = np.full(shape, np.nan, np.float32)
    lon, lat, label = [], [], []
    for i, ((x, y), rows) in enumerate(locs):
        lon.append(x)
        lat.append(y)
        (lab,) = rows["label"].astype(str).unique()
        label.append(lab)
        for ts in rows["time_series"]:
            j = np.searchsorted(dates, ts["Index"].to_numpy(float).astype(np.int32))
            ndvi[i, j] = ts["NDVI"].to_numpy(np.float32)
            evi[i, j] = ts["EVI"].to_numpy(np.float32)
    np.savez_compressed(
        OUT / "sits_cerrado" / "series.npz",
        time=dates, ndvi=ndvi, evi=evi, lon=np.array(lon), lat=np.array(lat), label=np.array(label, dtype="U"),
    )  # fmt: skip
    print(f"sits_cerrado: {shape[0]} locations x {shape[1]} dates, "
          f"{int(np.isfinite(ndvi).sum())} observations")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    build_fluxsites(sys.argv[1])
    build_cerrado(sys.argv[2])
