"""Small synthetic UTM grids for the viz tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


def utm_grid(ny: int = 40, nx: int = 50, res: float = 10.0) -> xr.DataArray:
    """A (y, x) float32 grid in EPSG:32633 with values 0..1 increasing along x."""
    import odc.geo.xr
    from odc.geo.geobox import GeoBox

    gbox = GeoBox.from_bbox(
        (465000, 5079000, 465000 + nx * res, 5079000 + ny * res), "epsg:32633", resolution=res
    )
    base = odc.geo.xr.xr_zeros(gbox, dtype="float32")
    ramp = xr.DataArray(np.linspace(0, 1, nx, dtype="float32"), dims="x")
    return (base + ramp).rename("ndvi")


def utm_series(n: int = 4) -> xr.DataArray:
    """(time, y, x) series: date i has value i everywhere."""
    grid = utm_grid()
    t = pd.date_range("2020-03-01", periods=n, freq="30D")
    data = xr.concat([grid * 0 + i for i in range(n)], dim=pd.Index(t, name="time"))
    return data.rename("ndvi")
