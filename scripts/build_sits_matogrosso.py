"""Build ``data/real/sits_matogrosso/`` (real MODIS NDVI series from Mato Grosso, Brazil).

Source: the R package ``sits`` (e-sensing/sits on GitHub, GPL-2, INPE, Brazil), two of its data sets
of MOD13Q1 (collection 6, 250 m, 16-day composite) NDVI:

- ``data/point_ndvi.rda`` (``point_ndvi``): one location, -55.50563 E, -11.71557 N (north of Sinop),
  392 composites from 2000-02-18 to 2017-02-18: forest until 2003, cleared, pasture, then soy and a
  second crop each season from about 2009/10;
- ``data/samples_mt_ndvi.rda`` (``samples_mt_ndvi``): 2115 labelled samples of Mato Grosso, each one
  September-August year (23 composites) between 2000/01 and 2015/16, labels Cerrado, Forest,
  Pasture, Soy_Corn, Soy_Cotton, Soy_Fallow, Soy_Millet, Soy_Sunflower, Fallow_Cotton.

Both files were removed from the tip of the sits repository; they are read from the commits listed
in ``COMMITS`` (the parents of the commits that removed them). ``pyreadr`` cannot read the nested
``time_series`` column of a sits tibble, so the pure-Python reader ``rdata`` is used (install it for
this script only: ``pip install rdata``).

Output ``sits_matogrosso_ndvi.npz`` (numpy, compressed):

- ``point_time`` (392,) datetime64[D], ``point_ndvi`` (392,) float32, ``point_lonlat`` (2,);
- ``sample_time`` (2115, 23) datetime64[D], ``sample_ndvi`` (2115, 23) float32,
  ``sample_label`` (2115,) int16 (index into ``labels``), ``labels`` (str), ``sample_lonlat``
  (2115, 2) float64.

Run from the project root, with a clone of e-sensing/sits (full history)::

    python scripts/build_sits_matogrosso.py --sits /path/to/sits [--out data/real/sits_matogrosso]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

COMMITS = {
    "point_ndvi": "89370b276a9b659aeb71de124c058145f1fc60bc^",
    "samples_mt_ndvi": "4060353c0fe7fb8bd56831191abbadbb6f536261^",
}


def _read_rda(sits: Path, name: str) -> pd.DataFrame:
    import rdata

    blob = subprocess.run(
        ["git", "-C", str(sits), "show", f"{COMMITS[name]}:data/{name}.rda"],
        check=True,
        capture_output=True,
    ).stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "missing constructor for R class sits / Date"
        parsed = rdata.parser.parse_data(io.BytesIO(blob).read())
        return rdata.conversion.convert(parsed)[name]


def _series(ts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    days = np.asarray(ts.iloc[:, 0], dtype=float).astype(np.int64)  # R Date: days since 1970-01-01
    column = [c for c in ts.columns if str(c).lower() == "ndvi"][0]
    return days.astype("datetime64[D]"), np.asarray(ts[column], dtype=np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sits", type=Path, required=True, help="clone of e-sensing/sits")
    ap.add_argument("--out", type=Path, default=Path("data/real/sits_matogrosso"))
    args = ap.parse_args()
    point = _read_rda(args.sits, "point_ndvi")
    p_time, p_ndvi = _series(point.time_series.iloc[0])
    samples = _read_rda(args.sits, "samples_mt_ndvi")
    times, values = zip(*(_series(ts) for ts in samples.time_series), strict=True)
    labels = sorted(str(v) for v in pd.unique(samples.label))
    code = np.array([labels.index(str(v)) for v in samples.label], np.int16)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "sits_matogrosso_ndvi.npz"
    np.savez_compressed(
        path,
        point_time=p_time,
        point_ndvi=p_ndvi,
        point_lonlat=np.array([float(point.longitude.iloc[0]), float(point.latitude.iloc[0])]),
        sample_time=np.stack(times),
        sample_ndvi=np.stack(values),
        sample_label=code,
        labels=np.array(labels),
        sample_lonlat=np.column_stack(
            [samples.longitude.astype(float), samples.latitude.astype(float)]
        ),
    )
    print(f"{path}: {path.stat().st_size / 1e3:.0f} kB, point {p_time.size} dates, "
          f"{code.size} samples x {values[0].size} dates, labels {labels}")  # fmt: skip


if __name__ == "__main__":
    main()
