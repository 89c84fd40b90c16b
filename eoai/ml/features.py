"""The feature layout shared by sample extraction, training and prediction.

A cube becomes a table of features, one column per ``band x date``: band ``red`` on 2021-03-04 is the
feature ``"red_2021-03-04"``. Variables without a ``time`` dimension (phenology metrics, a DEM,
indices aggregated over time) are one feature each, named after the variable. The same names are
computed for the training samples (:func:`eoai.ml.samples.extract`), stored with the model, and
checked against the cube at prediction time (:func:`eoai.ml.classify.classify`), so a model can only
be applied to a cube that has the features it was trained on.

Examples
--------
>>> import numpy as np, pandas as pd, xarray as xr
>>> from eoai.ml.features import feature_names
>>> t = pd.to_datetime(["2021-03-04", "2021-04-01"])
>>> cube = xr.Dataset({"red": (("time", "y", "x"), np.zeros((2, 1, 1)))}, coords={"time": t})
>>> feature_names(cube)
['red_2021-03-04', 'red_2021-04-01']
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError, MissingDimensionError, ModelError

SPATIAL_DIMS = ("y", "x")


def as_dataset(cube: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """Return ``cube`` as a Dataset of variables with dims ``(time, y, x)`` or ``(y, x)``.

    A DataArray with a ``band`` dimension, or an ``embedding`` dimension (the output of
    :func:`eoai.ml.presto.embed`: ``presto_000`` ...), is split into one variable per element;
    another DataArray becomes a one-variable Dataset named after it (``"value"`` when it has no
    name).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 2)), dims=("y", "x"), name="ndvi")
    >>> list(as_dataset(da).data_vars)
    ['ndvi']
    >>> emb = xr.DataArray(np.zeros((2, 2, 2)), dims=("embedding", "y", "x"),
    ...                    coords={"embedding": ["presto_000", "presto_001"]})
    >>> list(as_dataset(emb).data_vars)
    ['presto_000', 'presto_001']
    """
    if isinstance(cube, xr.DataArray):
        split = next((d for d in ("band", "embedding") if d in cube.dims), None)
        if split == "embedding" and "embedding" not in cube.coords:
            cube = cube.assign_coords(
                embedding=[
                    f"{cube.name or 'embedding'}_{i:03d}" for i in range(cube.sizes["embedding"])
                ]
            )
        if split is not None:
            cube = cube.to_dataset(split)
            cube = cube.rename({k: str(k) for k in cube.data_vars})
        else:
            cube = cube.to_dataset(name=str(cube.name) if cube.name is not None else "value")
    if not isinstance(cube, xr.Dataset):
        raise InputError(
            f"expected an xarray Dataset or DataArray cube, got {type(cube).__name__}; "
            "load one with eoai.load(...)"
        )
    missing = [d for d in SPATIAL_DIMS if d not in cube.dims]
    if missing:
        raise MissingDimensionError(
            f"the cube has no {' and '.join(missing)} dimension (dims: {tuple(cube.dims)}); "
            "features are taken per pixel of a (time, y, x) cube: rename the spatial dims to y and x"
        )
    bad = {
        name: var.dims
        for name, var in cube.data_vars.items()
        if not set(SPATIAL_DIMS) <= set(var.dims) or not set(var.dims) <= {"time", *SPATIAL_DIMS}
    }
    if bad:
        raise InputError(
            "every variable of the cube must have dims (time, y, x) or (y, x); these do not: "
            + ", ".join(f"{k} {v}" for k, v in bad.items())
            + ". Drop them (cube.drop_vars([...])) or select one element of the extra dimension."
        )
    return cube


def _date_labels(times: np.ndarray) -> list[str]:
    idx = pd.DatetimeIndex(times)
    labels = [t.strftime("%Y-%m-%d") for t in idx]
    if len(set(labels)) != len(labels):  # several acquisitions on one day: keep the time of day
        labels = [t.strftime("%Y-%m-%dT%H:%M:%S") for t in idx]
    if len(set(labels)) != len(labels):
        raise InputError(
            "the cube has duplicate time stamps, so its features would not be unique; "
            "group them first (e.g. cube.groupby('time').mean() or eoai.load(..., groupby='solar_day'))"
        )
    return labels


def feature_names(cube: xr.Dataset | xr.DataArray) -> list[str]:
    """Names of the features of ``cube``: ``<band>_<YYYY-MM-DD>`` per band and date, then ``<var>``.

    Parameters
    ----------
    cube
        Dataset (one variable per band) or DataArray with dims ``(time, y, x)`` or ``(y, x)``.

    Returns
    -------
    list of str
        Band-major order: all dates of the first variable, then the second variable, ...

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.to_datetime(["2021-03-04"])
    >>> cube = xr.Dataset(
    ...     {"red": (("time", "y", "x"), np.zeros((1, 1, 1))), "dem": (("y", "x"), np.zeros((1, 1)))},
    ...     coords={"time": t},
    ... )
    >>> feature_names(cube)
    ['red_2021-03-04', 'dem']
    """
    ds = as_dataset(cube)
    names: list[str] = []
    dates = _date_labels(ds["time"].values) if "time" in ds.dims else []
    for name, var in ds.data_vars.items():
        if "time" in var.dims:
            names.extend(f"{name}_{d}" for d in dates)
        else:
            names.append(str(name))
    return names


def feature_array(
    cube: xr.Dataset | xr.DataArray, features: Sequence[str] | None = None
) -> xr.DataArray:
    """Stack the cube into a lazy ``(y, x, feature)`` float32 DataArray, features in one chunk.

    Parameters
    ----------
    cube
        Dataset or DataArray with dims ``(time, y, x)`` / ``(y, x)``; dask-backed stays dask-backed.
    features
        Feature names to keep, in this order (a model's ``features``). ``None`` keeps all.

    Returns
    -------
    xarray.DataArray
        dims ``(y, x, feature)``, coordinate ``feature`` with the names, spatial coords and CRS kept.

    Raises
    ------
    eoai.errors.ModelError
        If a requested feature is not in the cube; the message lists missing and extra features.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.to_datetime(["2021-03-04", "2021-04-01"])
    >>> cube = xr.Dataset({"red": (("time", "y", "x"), np.ones((2, 3, 4)))}, coords={"time": t})
    >>> feature_array(cube, ["red_2021-04-01"]).shape
    (3, 4, 1)
    """
    ds = as_dataset(cube)
    names = feature_names(ds)
    if features is not None:
        check_features(names, features)
    parts = []
    for _name, var in ds.data_vars.items():
        if "time" in var.dims:
            part = var.transpose("y", "x", "time").drop_vars("time").rename(time="feature")
        else:
            part = var.transpose("y", "x").expand_dims("feature", axis=-1)
        parts.append(part.astype("float32", copy=False).drop_attrs(deep=False))
    stacked = xr.concat(parts, dim="feature", coords="minimal", compat="override", join="override")
    stacked = stacked.assign_coords(feature=np.asarray(names, dtype=object))
    if features is not None:
        stacked = stacked.sel(feature=list(features))
    if stacked.chunks is not None:
        stacked = stacked.chunk({"feature": -1})
    stacked.name = "features"
    return stacked


def check_features(available: Sequence[str], required: Sequence[str]) -> None:
    """Raise :class:`~eoai.errors.ModelError` if ``required`` features are not all ``available``.

    Examples
    --------
    >>> check_features(["red_2021-03-04", "nir_2021-03-04"], ["red_2021-03-04"])
    >>> check_features(["red_2021-03-04"], ["red_2021-05-01"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    eoai.errors.ModelError: the cube lacks 1 of the model's 1 features: red_2021-05-01 (dates missing: 2021-05-01);...
    """
    available_set = set(available)
    missing = [f for f in required if f not in available_set]
    if missing:
        required_set = set(required)
        extra = [f for f in available if f not in required_set]
        hint = _summary(missing, available)
        raise ModelError(
            f"the cube lacks {len(missing)} of the model's {len(required)} features: "
            f"{_short(missing)}{hint}; the cube has {len(extra)} features the model does not use: "
            f"{_short(extra)}. Load the cube with the bands and dates the model was trained on "
            "(model.features), or gap-fill / resample it onto those dates first."
        )


_NAME = re.compile(r"^(?P<var>.+)_(?P<date>\d{4}-\d{2}-\d{2}(T[\d:]+)?)$")


def _summary(missing: Sequence[str], available: Sequence[str]) -> str:
    """' (variables missing: ...; dates missing: ...)' for band_date names."""
    have_vars, have_dates = set(), set()
    for f in available:
        m = _NAME.match(f)
        have_vars.add(m["var"] if m else f)
        if m:
            have_dates.add(m["date"])
    miss_vars, miss_dates = [], []
    for f in missing:
        m = _NAME.match(f)
        var = m["var"] if m else f
        if var not in have_vars and var not in miss_vars:
            miss_vars.append(var)
        if m and m["date"] not in have_dates and m["date"] not in miss_dates:
            miss_dates.append(m["date"])
    parts = []
    if miss_vars:
        parts.append(f"variables missing: {_short(miss_vars)}")
    if miss_dates:
        parts.append(f"dates missing: {_short(miss_dates)}")
    return f" ({'; '.join(parts)})" if parts else ""


def _short(items: Sequence[str], n: int = 12) -> str:
    items = list(items)
    if not items:
        return "(none)"
    text = ", ".join(items[:n])
    return text + (f", ... ({len(items) - n} more)" if len(items) > n else "")
