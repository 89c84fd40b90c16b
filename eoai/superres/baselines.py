"""Bicubic and Lanczos baselines for sharpening bands resampled onto a finer grid.

``eoai.load`` puts 20 m bands on the 10 m grid by nearest-neighbour resampling: every 20 m pixel
becomes a 2 x 2 block of equal values. Classic x2 interpolation (half-pixel convention, as in
``torch.nn.functional.interpolate(..., align_corners=False)``) of the 20 m image is then exactly a
separable convolution of that replicated image with a fixed kernel, *whatever the 2 x 2 block
phase* of the grid: with ``h`` symmetric and ``h[j] + h[j+1] = K(j/2 + 1/4)`` (``K`` the
interpolation kernel), both pixels of a block get the interpolation weights of their position.
The baselines therefore work lazily on the 10 m grid with ``map_overlap`` and no knowledge of the
block alignment. The same bicubic kernel gives the network's upsampled input (:mod:`.net`).

Examples
--------
>>> import numpy as np
>>> from eoai.superres.baselines import replicated_kernel
>>> np.round(replicated_kernel("bilinear"), 4).tolist()
[0.25, 0.5, 0.25]
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError

KINDS = ("nearest", "bilinear", "bicubic", "lanczos")


def _interp_kernel(kind: str, t: np.ndarray) -> np.ndarray:
    t = np.abs(t)
    if kind == "bilinear":
        return np.clip(1.0 - t, 0.0, None)
    if kind == "bicubic":  # Keys (1981), a = -0.5 (as torch/PIL/OpenCV use -0.75/-0.5)
        a = -0.5
        return np.where(
            t <= 1,
            (a + 2) * t**3 - (a + 3) * t**2 + 1,
            np.where(t < 2, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0),
        )
    if kind == "lanczos":  # Lanczos-3
        return np.where(t < 3, np.sinc(t) * np.sinc(t / 3.0), 0.0)
    raise InputError(f"unknown interpolation {kind!r}; use one of {KINDS}")


def replicated_kernel(kind: str = "bicubic", factor: int = 2) -> np.ndarray:
    """1-D kernel turning a nearest-replicated x2 image into the ``kind`` interpolation.

    Parameters
    ----------
    kind : {"nearest", "bilinear", "bicubic", "lanczos"}
        Interpolation (bicubic: Keys a = -0.5; lanczos: Lanczos-3).
    factor : int
        Only 2 is supported.

    Returns
    -------
    numpy.ndarray
        Odd-length symmetric kernel summing to 1.

    Examples
    --------
    >>> np.round(replicated_kernel("bicubic"), 5).tolist()
    [-0.02344, -0.04688, 0.27344, 0.59375, 0.27344, -0.04688, -0.02344]
    """
    if factor != 2:
        raise InputError(f"only factor 2 is supported, got {factor}")
    if kind == "nearest":
        return np.ones(1)
    support = {"bilinear": 1, "bicubic": 2, "lanczos": 3}.get(kind)
    if support is None:
        raise InputError(f"unknown interpolation {kind!r}; use one of {KINDS}")
    n = 2 * support  # h[j] = 0 for j >= n
    h = np.zeros(n + 1)
    for j in range(n - 1, -1, -1):
        h[j] = _interp_kernel(kind, np.array(j / 2 + 0.25)) - h[j + 1]
    full = np.concatenate([h[:0:-1], h])
    full = full[np.abs(full) > 1e-12] if kind != "lanczos" else full
    full = np.trim_zeros(full)
    return full / full.sum()


def upsample_replicated(arr: np.ndarray, kind: str = "bicubic", axes=(-2, -1)) -> np.ndarray:
    """Apply :func:`replicated_kernel` separably along ``axes`` (edges: symmetric reflection).

    Examples
    --------
    >>> x = np.repeat(np.repeat(np.arange(16.0).reshape(4, 4), 2, 0), 2, 1)
    >>> upsample_replicated(x, "bilinear")[2:6, 2].round(3).tolist()
    [3.75, 5.75, 7.75, 9.75]
    """
    from scipy.ndimage import correlate1d

    h = replicated_kernel(kind)
    out = np.asarray(arr, dtype=np.float64)
    for ax in axes:
        out = correlate1d(out, h, axis=ax, mode="reflect")
    return out.astype(np.asarray(arr).dtype if np.asarray(arr).dtype.kind == "f" else np.float32)


def interpolate(
    cube: xr.Dataset, bands: list[str], kind: str = "bicubic", y: str = "y", x: str = "x"
) -> xr.Dataset:
    """Bicubic / Lanczos sharpening of nearest-resampled coarse ``bands`` on the fine grid (lazy).

    Parameters
    ----------
    cube : xarray.Dataset
        Bands on the fine (10 m) grid, coarse ones replicated 2 x 2 (as ``eoai.load`` gives them).
    bands : list of str
        Variables to interpolate.
    kind : {"bicubic", "lanczos", "bilinear"}
        Interpolation kernel.
    y, x : str
        Spatial dimension names.

    Returns
    -------
    xarray.Dataset
        The interpolated bands, same grid, chunks and coordinates; dask in, dask out.

    Examples
    --------
    >>> import xarray as xr
    >>> v = np.repeat(np.repeat(np.arange(16.0).reshape(4, 4), 2, 0), 2, 1)
    >>> ds = xr.Dataset({"B05": (("y", "x"), v)})
    >>> interpolate(ds, ["B05"], "bilinear").B05[2:6, 2].values.round(3).tolist()
    [3.75, 5.75, 7.75, 9.75]
    """
    import dask.array as da

    h = replicated_kernel(kind)
    r = len(h) // 2
    out = {}
    for b in bands:
        v = cube[b]
        ax = (v.get_axis_num(y), v.get_axis_num(x))
        if isinstance(v.data, da.Array):
            depth = {i: (r if i in ax else 0) for i in range(v.ndim)}
            data = v.data.map_overlap(
                upsample_replicated,
                depth=depth,
                boundary={i: ("reflect" if i in ax else "none") for i in range(v.ndim)},
                kind=kind,
                axes=ax,
                dtype=v.dtype if v.dtype.kind == "f" else np.float32,
                meta=np.array((), dtype=v.dtype if v.dtype.kind == "f" else np.float32),
            )
        else:
            data = upsample_replicated(v.values, kind, axes=ax)
        out[b] = v.copy(data=data)
        out[b].attrs = dict(v.attrs)
    ds = xr.Dataset(out, attrs=dict(cube.attrs))
    return ds
