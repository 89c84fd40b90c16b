"""The feature layout shared by sample extraction, training and prediction.

A cube becomes a table of features, one column per ``band x date``: band ``red`` on 2021-03-04 is the
feature ``"red_2021-03-04"``. Variables without a ``time`` dimension (phenology metrics, a DEM,
indices aggregated over time) are one feature each, named after the variable. The same names are
computed for the training samples (:func:`eoai.ml.samples.extract`), stored with the model, and
checked against the cube at prediction time (:func:`eoai.ml.classify.classify`), so a model can only
be applied to a cube that has the features it was trained on.

Several sources (:func:`eoai.stack_sources`: an :class:`xarray.DataTree` with one child per
source, each with its own dates) give ``"<source>.<band>_<YYYY-MM-DD>"`` (``"s2.red_2020-06-04"``,
``"s1.vv_2020-06-07"``) and ``"<source>.<var>"`` for static variables: the single-source name
prefixed with the source and a dot. The tree is flattened (:func:`flatten_sources`) into one
Dataset whose variables are ``"<source>.<var>"`` and whose time axes are ``"time_<source>"``;
a Dataset whose variables are already named ``"s2.red"``, ``"s1.vv"`` on one ``time`` axis gives
the same names, so a model trained on either applies to both.

A fine source (``stack_sources(..., fine="vhr")``: a very-high-resolution image at ``ratio`` times
the resolution, dims ``y_fine`` / ``x_fine``) is not flattened; :func:`eoai.ml.extract` with
``patch=p`` reads the ``p x p`` fine pixels around each pixel as the features
``"<source>.<band>[i,j]"`` (row ``i``, column ``j`` of the patch, both from 0; band-major, then
row-major: :func:`patch_names`). The patch of base pixel ``(r, c)`` starts at fine pixel
``(r * ratio + (ratio - p) // 2, c * ratio + (ratio - p) // 2)``: centred on the pixel when
``p`` and ``ratio`` are both even or both odd, otherwise half a fine pixel up and left. Fine
pixels outside the image are NaN. ``patch={"vhr": 32, "ms": 8}`` names the sources: a static source
on the base grid (one multispectral image) gives its ``8 x 8`` base pixels the same way (ratio 1,
:func:`patch_array`); :func:`patch_groups` splits feature names into series and per-source patches.

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
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError, MissingDimensionError, ModelError

SPATIAL_DIMS = ("y", "x")
#: pixel dims of a fine source of a sources tree (``stack_sources(fine=...)``)
FINE_SUFFIX = "_fine"
FINE_DIMS = ("y" + FINE_SUFFIX, "x" + FINE_SUFFIX)
#: time axis of source ``s`` in a flattened multi-source cube: ``"time_<s>"``
TIME_PREFIX = "time_"


def _is_time_dim(dim: Any) -> bool:
    return dim == "time" or (isinstance(dim, str) and dim.startswith(TIME_PREFIX))


def time_dim(var: xr.DataArray) -> str | None:
    """The time axis of a feature variable: ``"time"``, ``"time_<source>"`` or ``None`` (static).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> time_dim(xr.DataArray(np.zeros((1, 1, 1)), dims=("time_s1", "y", "x")))
    'time_s1'
    """
    return next((str(d) for d in var.dims if _is_time_dim(d)), None)


def flatten_sources(tree: xr.DataTree) -> xr.Dataset:
    """A sources tree as one Dataset: variables ``"<source>.<var>"``, time axes ``"time_<source>"``.

    Parameters
    ----------
    tree
        A DataTree with one child per source on one grid (:func:`eoai.stack_sources`).

    Returns
    -------
    xarray.Dataset
        Lazy when the tree is; each variable keeps its attrs plus ``eoai:source``; the coordinate
        ``time_<source>`` holds that source's dates; the grid (``y``, ``x``, ``spatial_ref``) is
        shared; ``attrs`` are the tree root's.

    Raises
    ------
    eoai.errors.InputError
        Not a sources tree, or its children are not on one grid (stack them with
        :func:`eoai.stack_sources`).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> def src(band, dates):
    ...     t = pd.to_datetime(dates)
    ...     return xr.Dataset({band: (("time", "y", "x"), np.zeros((len(t), 1, 1)))}, coords={"time": t})
    >>> tree = xr.DataTree.from_dict({"s2": src("red", ["2020-06-04"]), "s1": src("vv", ["2020-06-07", "2020-06-19"])})
    >>> flat = flatten_sources(tree)
    >>> {k: v.dims for k, v in flat.data_vars.items()}
    {'s2.red': ('time_s2', 'y', 'x'), 's1.vv': ('time_s1', 'y', 'x')}
    >>> feature_names(tree)
    ['s2.red_2020-06-04', 's1.vv_2020-06-07', 's1.vv_2020-06-19']
    """
    from ..io.stack import sources_of

    cubes = sources_of(tree, "flatten_sources")
    first_name, first = next(iter(cubes.items()))
    out: dict[str, xr.DataArray] = {}
    for src, ds in cubes.items():
        for d in ds.dims:
            if d != "time" and d not in SPATIAL_DIMS and _is_time_dim(d):
                raise InputError(
                    f"flatten_sources: source {src!r} has a dimension {d!r}; 'time_...' names the "
                    "time axes of the flattened cube: rename it"
                )
        for dim in SPATIAL_DIMS:
            a, b = ds.indexes.get(dim), first.indexes.get(dim)
            if ds.sizes.get(dim) != first.sizes.get(dim) or (
                a is not None and b is not None and not a.equals(b)
            ):
                raise InputError(
                    f"flatten_sources: sources {first_name!r} and {src!r} are not on one grid "
                    f"(their {dim} coordinates differ); put them on one with "
                    "eoai.stack_sources({...})"
                )
        tdim = f"{TIME_PREFIX}{src}"
        for name, var in ds.data_vars.items():
            if any(str(d).endswith(FINE_SUFFIX) for d in var.dims):
                continue  # a fine source (stack_sources(fine=...)): read as patches, fine_array
            v = var.rename({"time": tdim}) if "time" in var.dims else var
            v = v.drop_vars([c for c in v.coords if c != tdim and tdim in v[c].dims])
            v.attrs = {**var.attrs, "eoai:source": src}
            out[f"{src}.{name}"] = v
    return xr.Dataset(out, attrs=dict(tree.attrs))


def as_dataset(cube: xr.Dataset | xr.DataArray | xr.DataTree) -> xr.Dataset:
    """Return ``cube`` as a Dataset of variables with dims ``(time, y, x)`` or ``(y, x)``.

    A DataArray with a ``band`` dimension, or an ``embedding`` dimension (the output of
    :func:`eoai.ml.presto.embed`: ``presto_000`` ...), is split into one variable per element;
    another DataArray becomes a one-variable Dataset named after it (``"value"`` when it has no
    name). A DataTree of sources is flattened (:func:`flatten_sources`: time axes
    ``time_<source>``).

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
    if isinstance(cube, xr.DataTree):
        cube = flatten_sources(cube)
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
            f"expected an xarray Dataset, DataArray or DataTree of sources, got "
            f"{type(cube).__name__}; load one with eoai.load(...)"
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
        if not set(SPATIAL_DIMS) <= set(var.dims)
        or len(var.dims) > 3
        or not all(_is_time_dim(d) or d in SPATIAL_DIMS for d in var.dims)
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


def feature_names(cube: xr.Dataset | xr.DataArray | xr.DataTree) -> list[str]:
    """Names of the features of ``cube``: ``<band>_<YYYY-MM-DD>`` per band and date, then ``<var>``.

    Parameters
    ----------
    cube
        Dataset (one variable per band) or DataArray with dims ``(time, y, x)`` or ``(y, x)``; or
        a DataTree of sources (:func:`eoai.stack_sources`): ``<source>.<band>_<YYYY-MM-DD>`` and
        ``<source>.<var>``, source by source in the order of the tree.

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
    for name, var in ds.data_vars.items():
        names.extend(_var_features(ds, name, var))
    return names


def _var_features(ds: xr.Dataset, name: Any, var: xr.DataArray) -> list[str]:
    """The feature names of one variable of a checked cube (``as_dataset``)."""
    tdim = time_dim(var)
    if tdim is None:
        return [str(name)]
    return [f"{name}_{d}" for d in _date_labels(ds[tdim].values)]


def feature_array(
    cube: xr.Dataset | xr.DataArray | xr.DataTree, features: Sequence[str] | None = None
) -> xr.DataArray:
    """Stack the cube into a lazy ``(y, x, feature)`` float32 DataArray, features in one chunk.

    Parameters
    ----------
    cube
        Dataset or DataArray with dims ``(time, y, x)`` / ``(y, x)``, or a DataTree of sources;
        dask-backed stays dask-backed.
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
        tdim = time_dim(var)
        if tdim is not None:
            var = var.drop_vars([c for c in var.coords if tdim in var[c].dims])
            part = var.transpose("y", "x", tdim).rename({tdim: "feature"})
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
    >>> check_features(["s2.red_2021-03-04"], ["s2.red_2021-03-04", "s1.vv_2021-03-06"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    eoai.errors.ModelError: the cube lacks 1 of the model's 2 features: s1.vv_2021-03-06 (sources missing: s1; dates missing: 2021-03-06);...
    """
    available_set = set(available)
    missing = [f for f in required if f not in available_set]
    if missing:
        required_set = set(required)
        extra = [f for f in available if f not in required_set]
        hint = _summary(missing, available)
        fix = (
            "Load the cube with the bands and dates the model was trained on "
            "(model.features), or gap-fill / resample it onto those dates first."
        )
        if _sources(required):
            fix = (
                "Give it the sources, bands and dates the model was trained on (model.features): "
                "eoai.stack_sources({"
                + ", ".join(f"{s!r}: ..." for s in _sources(required))
                + "}), gap-filled onto those dates if needed."
            )
        raise ModelError(
            f"the cube lacks {len(missing)} of the model's {len(required)} features: "
            f"{_short(missing)}{hint}; the cube has {len(extra)} features the model does not use: "
            f"{_short(extra)}. {fix}"
        )


def split_feature(name: str) -> tuple[str | None, str, str | None]:
    """``(source, variable, date)`` of a feature name; ``None`` for what it does not have.

    The inverse of the naming rule: ``"<source>.<band>_<YYYY-MM-DD>"`` (the source before the first
    dot), ``"<band>_<YYYY-MM-DD>"`` (single source), ``"<source>.<var>"`` / ``"<var>"`` (static).

    Examples
    --------
    >>> split_feature("s1.vv_2020-06-07"), split_feature("red_2021-03-04"), split_feature("dem.elevation")
    (('s1', 'vv', '2020-06-07'), (None, 'red', '2021-03-04'), ('dem', 'elevation', None))
    """
    m = _NAME.match(name)
    var, date = (m["var"], m["date"]) if m else (name, None)
    source, dot, rest = var.partition(".")
    return (source, rest, date) if dot else (None, var, date)


def _sources(names: Sequence[str]) -> list[str]:
    """The sources (``"s2"`` of ``"s2.red_2020-06-04"``) of feature names, in order."""
    out: list[str] = []
    for f in names:
        if "." in f:
            src = f.split(".", 1)[0]
            if src not in out:
                out.append(src)
    return out


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
    have_sources = set(_sources(available))
    miss_sources = [x for x in _sources(missing) if x not in have_sources]
    if miss_sources:
        parts.append(f"sources missing: {_short(miss_sources)}")
        miss_vars = [v for v in miss_vars if v.split(".", 1)[0] not in miss_sources]
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


_PATCH = re.compile(r"^(?P<var>[^\[\]]+)\[(?P<i>\d+),(?P<j>\d+)\]$")


def patch_names(bands: Sequence[str], patch: int) -> list[str]:
    """Feature names of ``patch x patch`` patches of fine ``bands`` (``"<source>.<band>"``).

    Examples
    --------
    >>> patch_names(["vhr.pan"], 2)
    ['vhr.pan[0,0]', 'vhr.pan[0,1]', 'vhr.pan[1,0]', 'vhr.pan[1,1]']
    """
    return [f"{b}[{i},{j}]" for b in bands for i in range(patch) for j in range(patch)]


def patch_groups(features: Sequence[str]) -> tuple[list[str], list[tuple[list[str], int]]]:
    """``(other features, [(bands, size) of each source's patches])`` of feature names.

    Each source's patch features must be whole ``size x size`` patches of its bands in the order of
    :func:`patch_names`; sources (groups) keep their order of appearance.

    Raises
    ------
    eoai.errors.InputError
        A source's patch features are not whole square patches of its bands in that order.

    Examples
    --------
    >>> feats = ["s2.red_2021-05-01", *patch_names(["vhr.pan"], 3), *patch_names(["ms.red", "ms.nir"], 2)]
    >>> patch_groups(feats)
    (['s2.red_2021-05-01'], [(['vhr.pan'], 3), (['ms.red', 'ms.nir'], 2)])
    """
    rest: list[str] = []
    cols: dict[str, list[str]] = {}
    bands: dict[str, list[str]] = {}
    for f in features:
        m = _PATCH.match(str(f))
        if m is None:
            rest.append(str(f))
            continue
        src = m["var"].partition(".")[0]
        cols.setdefault(src, []).append(str(f))
        if m["var"] not in bands.setdefault(src, []):
            bands[src].append(m["var"])
    groups = []
    for src, bs in bands.items():
        p = int(round((len(cols[src]) / len(bs)) ** 0.5))
        if cols[src] != patch_names(bs, p):
            raise InputError(
                f"the patch features of {src!r} ({len(cols[src])} of bands {bs}) are not whole "
                f"{p} x {p} patches in the order of eoai.ml.features.patch_names (band, then row, "
                "then column); pass every column that eoai.ml.extract(..., patch=...) gave"
            )
        groups.append((bs, p))
    return rest, groups


def patch_array(
    tree: Any, source: str, bands: Sequence[str] | None = None
) -> tuple[xr.DataArray, int]:
    """The image patches of ``source`` are read from: ``(rows, columns, band)`` and its ratio.

    A fine source (:func:`fine_array`, ratio > 1 fine pixels per pixel side) or a source on the
    base grid whose variables are static (ratio 1: a multispectral image, a DEM).

    Raises
    ------
    eoai.errors.ModelError
        ``tree`` is not a sources tree, or lacks ``source`` or one of ``bands``.
    eoai.errors.InputError
        The base-grid ``source`` has variables with a time axis.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ms = xr.Dataset({"red": (("y", "x"), np.ones((2, 3)))})
    >>> arr, ratio = patch_array(xr.DataTree.from_dict({"ms": ms}), "ms")
    >>> arr.shape, ratio, list(arr.band.values)
    ((2, 3, 1), 1, ['ms.red'])
    """
    from ..io.stack import fine_sources

    fix = (
        "stack the images with the others, the very-high-resolution one at its own resolution: "
        "eoai.stack_sources({..., 'vhr': vhr, 'ms': ms}, fine='vhr', static=['ms'])"
    )
    if not isinstance(tree, xr.DataTree) or source not in tree.children:
        have = list(tree.children) if isinstance(tree, xr.DataTree) else []
        raise ModelError(
            f"patches of source {source!r} are needed; the cube "
            + (f"has the sources {have}" if have else "is no sources tree")
            + f"; {fix}"
        )
    fines = fine_sources(tree)
    if source in fines:
        names = [f"{source}.{v}" for v in fines[source][0].data_vars]
        return fine_array(tree, list(bands) if bands is not None else names)
    ds = tree[source].to_dataset()
    timed = [str(v) for v, var in ds.data_vars.items() if "time" in var.dims]
    if timed:
        raise InputError(
            f"patches of source {source!r} read one image on the base grid, and its variables "
            f"{timed} have a time axis: stack it as static (one date, stack_sources(static=[...]))"
        )
    names = [f"{source}.{v}" for v in ds.data_vars if set(SPATIAL_DIMS) <= set(ds[v].dims)]
    want = list(bands) if bands is not None else names
    missing = [b for b in want if b not in names]
    if missing or not want:
        raise ModelError(
            f"patches of the band(s) {want} of source {source!r} are needed; it has {names}; {fix}"
        )
    arr = feature_array(tree, want).rename(feature="band")
    return arr, 1


def fine_array(tree: Any, bands: Sequence[str] | None = None) -> tuple[xr.DataArray, int]:
    """The fine source(s) of a tree as a ``(y_fine, x_fine, band)`` float32 array, and the ratio.

    Parameters
    ----------
    tree
        A sources tree with ``fine=`` sources (:func:`eoai.stack_sources`).
    bands
        ``"<source>.<band>"`` names to keep, in this order (a model's patch bands); default all.

    Raises
    ------
    eoai.errors.ModelError
        The tree has no fine source, or lacks a band of ``bands``, or fine sources of different
        ratios are asked for.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"pan": (("y_fine", "x_fine"), np.ones((4, 6)))}, attrs={"eoai:fine_ratio": 2})
    >>> arr, ratio = fine_array(xr.DataTree.from_dict({"vhr": ds}))
    >>> arr.dims, arr.shape, ratio, list(arr.band.values)
    (('y_fine', 'x_fine', 'band'), (4, 6, 1), 2, ['vhr.pan'])
    """
    from ..io.stack import fine_sources

    fines = fine_sources(tree)
    have = {f"{k}.{v}": (ds[v], r) for k, (ds, r) in fines.items() for v in ds.data_vars}
    if bands is None:
        bands = list(have)
    missing = [b for b in bands if b not in have]
    if missing or not bands:
        raise ModelError(
            f"patches of the fine band(s) {list(bands) or '(any)'} are needed; the cube "
            + (f"has the fine bands {sorted(have)}" if have else "has no fine source")
            + ". Stack the very-high-resolution image with the others at its own resolution: "
            "eoai.stack_sources({..., 'vhr': vhr}, fine='vhr')"
        )
    ratios = sorted({have[b][1] for b in bands})
    if len(ratios) > 1:
        raise ModelError(f"the fine bands {list(bands)} have different ratios {ratios}")
    parts = [have[b][0].transpose(*FINE_DIMS).astype("float32", copy=False) for b in bands]
    arr = xr.concat([p.drop_attrs(deep=False) for p in parts], dim="band", coords="minimal",
                    compat="override", join="override")  # fmt: skip
    arr = arr.assign_coords(band=np.asarray(list(bands), dtype=object)).transpose(
        *FINE_DIMS, "band"
    )
    if arr.chunks is not None:
        arr = arr.chunk({"band": -1})
    return arr, ratios[0]


def patch_offset(ratio: int, patch: int) -> int:
    """First fine row (column) of the patch of base pixel 0: ``(ratio - patch) // 2``.

    Examples
    --------
    >>> patch_offset(4, 8), patch_offset(4, 5)
    (-2, -1)
    """
    return (int(ratio) - int(patch)) // 2
