"""Image quality metrics for super-resolution: RMSE, PSNR, SSIM per band, and Wald evaluation.

Reflectance is scaled by 10000 (Sentinel-2 DN) for RMSE. PSNR uses a peak of 10000 (reflectance
1.0): ``PSNR = 20 log10(10000 / RMSE)``. SSIM is Wang et al. (2004) with a Gaussian window
(sigma 1.5, 11 x 11), K1 = 0.01, K2 = 0.03 and the data range of the reference band (max - min),
averaged over the valid pixels; NaN pixels are left out of every metric.

Examples
--------
>>> import numpy as np
>>> from eoai.superres.metrics import rmse, psnr, ssim
>>> a = np.linspace(0, 0.3, 400).reshape(20, 20)
>>> rmse(a, a + 0.001), round(psnr(a, a + 0.001), 1), round(ssim(a, a), 6)
(10.0, 60.0, 1.0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    import pandas as pd

SCALE = 10000.0


def rmse(truth, pred) -> float:
    """Root mean square error in reflectance x 10000 over finite pixels.

    Examples
    --------
    >>> rmse(np.zeros(4), np.full(4, 0.002))
    20.0
    """
    t, p = np.asarray(truth, np.float64), np.asarray(pred, np.float64)
    ok = np.isfinite(t) & np.isfinite(p)
    return round(float(np.sqrt(np.mean((t[ok] - p[ok]) ** 2)) * SCALE), 6)


def psnr(truth, pred, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB with ``peak`` in reflectance (default 1.0).

    Examples
    --------
    >>> round(psnr(np.zeros(4), np.full(4, 0.01)), 2)
    40.0
    """
    e = rmse(truth, pred) / SCALE
    return float("inf") if e == 0 else float(20 * np.log10(peak / e))


def ssim(truth, pred, sigma: float = 1.5) -> float:
    """Structural similarity of two 2-D images (Wang et al. 2004), NaN-aware.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.random((32, 32))
    >>> ssim(a, a) == 1.0, ssim(a, rng.random((32, 32))) < 0.2
    (True, True)
    """
    from scipy.ndimage import gaussian_filter

    t = np.asarray(truth, np.float64)
    p = np.asarray(pred, np.float64)
    ok = np.isfinite(t) & np.isfinite(p)
    if not ok.any():
        return float("nan")
    L = float(np.nanmax(t[ok]) - np.nanmin(t[ok])) or 1.0
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    w = ok.astype(np.float64)
    t0, p0 = np.where(ok, t, 0.0), np.where(ok, p, 0.0)

    def f(a):
        return gaussian_filter(a, sigma, truncate=3.5, mode="reflect")

    wn = f(w)
    wn_safe = np.where(wn > 1e-6, wn, 1.0)
    mt, mp = f(t0) / wn_safe, f(p0) / wn_safe
    vt = f(t0 * t0) / wn_safe - mt**2
    vp = f(p0 * p0) / wn_safe - mp**2
    cov = f(t0 * p0) / wn_safe - mt * mp
    s = ((2 * mt * mp + c1) * (2 * cov + c2)) / ((mt**2 + mp**2 + c1) * (vt + vp + c2))
    r = 5  # drop the border where the window is cut
    inner = np.zeros_like(ok)
    inner[r:-r, r:-r] = True
    sel = ok & inner & (wn > 0.99)
    return float(np.mean(s[sel])) if sel.any() else float(np.mean(s[ok]))


def compare(truth: xr.Dataset, pred: xr.Dataset, bands=None) -> pd.DataFrame:
    """Per-band RMSE (x 10000), PSNR (dB) and SSIM of ``pred`` against ``truth``.

    Images with a ``time`` dimension are compared date by date; SSIM is averaged over dates,
    RMSE pooled over all pixels. Computes (metrics are an in-memory result).

    Parameters
    ----------
    truth, pred : xarray.Dataset
        Same variables and grid.
    bands : list of str, optional
        Variables to compare (default those of ``pred``).

    Returns
    -------
    pandas.DataFrame
        Index: band; columns ``rmse``, ``psnr``, ``ssim``.

    Examples
    --------
    >>> t = xr.Dataset({"B05": (("y", "x"), np.linspace(0, 0.3, 400).reshape(20, 20))})
    >>> compare(t, t + 0.001).round(2).to_dict("records")
    [{'rmse': 10.0, 'psnr': 60.0, 'ssim': 1.0}]
    """
    import pandas as pd

    rows = {}
    for b in bands or list(pred.data_vars):
        tv = np.asarray(truth[b].values, np.float64)
        pv = np.asarray(pred[b].values, np.float64)
        imgs = zip(tv.reshape(-1, *tv.shape[-2:]), pv.reshape(-1, *pv.shape[-2:]), strict=True)
        rows[b] = {
            "rmse": rmse(tv, pv),
            "psnr": psnr(tv, pv),
            "ssim": float(np.nanmean([ssim(a, c) for a, c in imgs])),
        }
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "band"
    return df


def spectral_consistency(sharp: xr.Dataset, cube: xr.Dataset, bands=None):
    """How well sharpened 20 m bands, degraded back to 20 m, match the cube's 20 m bands.

    The cube's bands are nearest-replicated 20 m pixels on the 10 m grid; their native 20 m
    image is recovered at the 2 x 2 block phase (:func:`eoai.superres.wald.block_phase`). The
    sharpened bands are brought back to 20 m two ways: the sensor-like degradation of Wald's
    protocol (MTF Gaussian blur + block mean, :func:`eoai.superres.wald.degrade`: the relation
    the network is trained to respect) and a plain 2 x 2 block mean. Computes.

    Parameters
    ----------
    sharp : xarray.Dataset
        Output of :func:`eoai.superres.superres` (10 m grid).
    cube : xarray.Dataset
        Its input.
    bands : list of str, optional
        Default: the variables of ``sharp``.

    Returns
    -------
    pandas.DataFrame
        Index band; columns ``rmse_sensor`` and ``rmse_blockmean`` (reflectance x 10000).

    Examples
    --------
    >>> b5 = np.repeat(np.repeat(np.arange(64.0).reshape(8, 8) / 100, 2, 0), 2, 1)
    >>> cube = xr.Dataset({"B05": (("y", "x"), b5)})
    >>> spectral_consistency(cube, cube).rmse_blockmean.tolist()
    [0.0]
    """
    import pandas as pd

    from .wald import block_mean, block_phase, degrade

    rows = {}
    for b in bands or list(sharp.data_vars):
        dims = [d for d in cube[b].dims if d not in ("y", "x")] + ["y", "x"]
        orig = np.asarray(cube[b].transpose(*dims).values, np.float32)
        out = np.asarray(sharp[b].transpose(*dims).values, np.float32)
        (py, px), _ = block_phase(orig)
        native = block_mean(orig[..., py:, px:], 2)
        o = out[..., py:, px:]
        sensor = degrade(o[..., None, :, :], [b], 2)[..., 0, :, :]
        rows[b] = {
            "rmse_sensor": rmse(native, sensor),
            "rmse_blockmean": rmse(native, block_mean(o, 2)),
        }
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "band"
    return df
