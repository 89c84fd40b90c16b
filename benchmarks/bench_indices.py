"""Spectral indices and synthetic cubes: overhead of eoai.indices.index and generator speed.

Run from the project root: ``.venv/bin/python benchmarks/bench_indices.py [--size 512]``.

1. ``index(cube, name)`` (catalogue formula evaluated on xarray variables, NaN for non-finite) against
   the same formula written by hand with xarray on the same float32 cube (73 x size x size), numpy
   and dask (threaded, chunks 73 x 256 x 256); the ratio hand / eoai should be close to 1 (eoai adds
   the ``where(isfinite)`` pass).
2. ``synthetic_cube`` wall time for 64 x 64 x 73 (goal < 1 s) and size x size x 73.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import xarray as xr

from eoai.datasets import synthetic_cube
from eoai.indices import index


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


HAND = {
    "ndvi": lambda d: (d.nir - d.red) / (d.nir + d.red),
    "evi": lambda d: 2.5 * (d.nir - d.red) / (d.nir + 6.0 * d.red - 7.5 * d.blue + 1.0),
    "nbr": lambda d: (d.nir - d.swir22) / (d.nir + d.swir22),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()

    synthetic_cube(shape=(64, 64), seed=0)  # warm imports
    t_small = _best(lambda: synthetic_cube(shape=(64, 64), seed=0))
    t_big = _best(lambda: synthetic_cube(shape=(args.size, args.size), seed=0), repeat=1)
    print(f"synthetic_cube 64x64x73: {t_small:.3f} s; {args.size}x{args.size}x73: {t_big:.2f} s")

    cube, _ = synthetic_cube(shape=(args.size, args.size), seed=0, cloud_fraction=0.3)
    cube = cube[["blue", "red", "nir", "swir22"]]
    mpix = cube.sizes["time"] * cube.sizes["y"] * cube.sizes["x"] / 1e6
    lazy = cube.chunk({"time": -1, "y": 256, "x": 256})
    for name, hand in HAND.items():
        np.testing.assert_allclose(
            index(cube, name), hand(cube).where(np.isfinite(hand(cube))), rtol=1e-6
        )
        t_e = _best(lambda name=name: index(cube, name).values)
        t_h = _best(lambda hand=hand: hand(cube).values)
        t_ed = _best(lambda name=name: index(lazy, name).compute())
        t_hd = _best(lambda hand=hand: hand(lazy).compute())
        print(
            f"{name:5s} numpy: eoai {mpix / t_e:7.1f} Mpx/s, hand {mpix / t_h:7.1f} Mpx/s, "
            f"ratio {t_h / t_e:.2f} | dask: eoai {mpix / t_ed:7.1f}, hand {mpix / t_hd:7.1f}, "
            f"ratio {t_hd / t_ed:.2f}"
        )
    assert isinstance(index(lazy, "ndvi"), xr.DataArray)


if __name__ == "__main__":
    main()
