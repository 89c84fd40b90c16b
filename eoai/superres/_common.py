"""Helpers shared by the super-resolution modules (the bottom layer above :mod:`.bands`).

Band selection and checks used by :func:`eoai.superres.superres` and by
:func:`eoai.superres.wald.simulate`, and the device resolver of training and inference. The
modules of :mod:`eoai.superres` import downwards only (``bands``, ``baselines`` -> ``_common``
-> ``net`` -> ``wald`` -> ``tiling`` -> ``weights`` -> ``api``; checked by
``tests/superres/test_layers.py``).

Examples
--------
>>> import numpy as np, xarray as xr
>>> cube = xr.Dataset({n: (("y", "x"), np.zeros((4, 4))) for n in ("red", "B05", "ndvi")})
>>> default_bands(cube, "guided", "20m", None, None, None)
(['B05'], ['red'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._dims import spatial_dims
from ..errors import InputError, ModelError, UnknownBandError
from .bands import BANDS_10M, BANDS_20M, band_id, find_bands


def resolve_device(device: Any = "auto") -> Any:
    """The ``torch.device`` for ``device``: the package's one resolver (:mod:`eoai._device`).

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    from .._device import resolve_device as _resolve

    return torch.device(_resolve(device, "superres"))


def superres_dims(cube: xr.Dataset) -> tuple[str, str]:
    """The cube's (y, x) dimension names (:func:`eoai._dims.spatial_dims`)."""
    return spatial_dims(cube, "superres")


def _check_names(cube: xr.Dataset, names: Sequence[str], what: str) -> list[str]:
    names = [names] if isinstance(names, str) else list(names)
    missing = [n for n in names if n not in cube.data_vars]
    if missing:
        raise UnknownBandError(
            f"{what} {missing} not in the cube; its variables are {list(cube.data_vars)}"
        )
    for n in names:
        band_id(n)  # raises UnknownBandError for non Sentinel-2 names
    return names


def check_grid(cube: xr.Dataset, names: list[str], y: str, x: str, tdim: str | None) -> None:
    want = {y, x} | ({tdim} if tdim else set())
    ref = None
    for n in names:
        v = cube[n]
        if set(v.dims) != want:
            raise InputError(
                f"mismatched grids: band {n!r} has dims {v.dims} but super-resolution needs every "
                f"band on the same fine grid with dims {tuple(sorted(want))}; put the coarse bands "
                "on the 10 m grid first (eoai.load(..., resolution=10) does, by nearest neighbour)"
            )
        if v.dtype.kind not in "fiu":
            raise InputError(f"band {n!r} has dtype {v.dtype}; numbers (reflectance) are needed")
        ref = ref or n
    for d in (y, x):
        if cube.sizes[d] < 2:
            raise InputError(f"the cube has {cube.sizes[d]} pixel(s) along {d}; nothing to sharpen")
        if d in cube.coords and cube.sizes[d] > 2:
            c = np.asarray(cube[d].values, dtype=np.float64)
            step = np.diff(c)
            if not np.allclose(step, step[0], rtol=1e-6, atol=1e-6 * abs(step[0])):
                raise InputError(
                    f"mismatched grids: coordinate {d} is not regularly spaced (steps "
                    f"{step.min():g}..{step.max():g}); resample the cube onto a regular grid"
                )


def default_bands(cube, method, mode, bands, guide, meta):
    names = list(cube.data_vars)
    if mode == "x2":
        if guide:
            raise InputError("mode='x2' sharpens the 10 m bands on their own: leave guide=None")
        bands = _given_or_default(
            cube,
            bands,
            meta,
            "bands",
            BANDS_10M,
            f"no 10 m band (blue, green, red, nir / B02, B03, B04, B08) in the cube "
            f"(variables {names}); pass bands=[...]",
        )
        return _check_names(cube, bands, "bands"), []
    bands = _given_or_default(
        cube,
        bands,
        meta,
        "bands",
        BANDS_20M,
        "no 20 m band (rededge1-3, nir08, swir16, swir22 / B05, B06, B07, B8A, B11, B12) "
        f"in the cube (variables {names}); pass bands=[...]",
    )
    bands = _check_names(cube, bands, "bands")
    if method != "guided":
        return bands, []
    guide = _given_or_default(
        cube,
        guide,
        meta,
        "guide",
        BANDS_10M,
        "the guided method needs the 10 m guide bands (blue, green, red, nir / B02, B03, "
        f"B04, B08) but the cube has none (variables {names}); load them too, or use "
        "method='bicubic'",
    )
    guide = _check_names(cube, guide, "guide bands")
    both = set(bands) & set(guide)
    if both:
        raise InputError(f"bands {sorted(both)} are both sharpened and guide; pick one role")
    return bands, guide


def _given_or_default(cube, given, meta, key, defaults, message):
    """``given`` names, else the weights' ``meta[key]`` band ids, else the cube's ``defaults``."""
    if given is not None:
        return given
    if meta is not None:
        found = _names_for_ids(cube, meta[key], key)
    else:
        found = find_bands(list(cube.data_vars), defaults)
    if not found:
        raise UnknownBandError(message)
    return found


def _names_for_ids(cube, ids, what):
    by_id = {}
    for n in cube.data_vars:
        try:
            by_id.setdefault(band_id(n), n)
        except UnknownBandError:
            pass
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ModelError(
            f"the weights need {what} {list(ids)} but the cube lacks {missing} "
            f"(variables {list(cube.data_vars)})"
        )
    return [by_id[i] for i in ids]
