"""Per-pixel Presto embeddings of a cube, lazily and chunk by chunk (``cube.eoai.embed(model)``).

The cube's variables are matched to the model card (:mod:`eoai.ml.presto.card`): Sentinel-2 bands by
eoai's common names (``blue`` ... ``swir22``; required), optional ``vv`` / ``vh`` (Sentinel-1, dB),
``temperature_2m`` / ``total_precipitation`` (ERA5), ``elevation`` / ``slope`` (SRTM, static) and
``dynamic_world`` (classes 0-8). Absent inputs are masked, never filled. Units are checked against
the card: eoai reflectance (0-1, ``attrs["scale_factor_applied"]`` from :func:`eoai.load`) is
converted to Presto's reflectance x 1e4; values that contradict the declared scaling stop the
compute with a :class:`~eoai.errors.ModelError` that says which ``scaling=`` to pass.

Each spatial chunk (all dates in one chunk) becomes monthly composites (median of the valid
observations of each band and calendar month; a month without one is masked for that pixel), then
normalised channels, masks, months and the pixels' lat/lon (from the cube's CRS), and goes through
the encoder in batches. The encoder is one key of the dask graph (:func:`eoai._graph.graph_constant`).
A pixel with no valid Sentinel-1 / Sentinel-2 observation at all is NaN (counted in one warning).

Examples
--------
>>> emb = cube.eoai.embed(model)  # doctest: +SKIP
>>> samples = emb.to_dataset("embedding").eoai.extract("labels.gpkg", label="class")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ... import _skipped
from ..._provenance import provenance
from ...errors import CRSError, InputError, MissingDimensionError, ModelError, TimeAxisError
from ...timeseries._nodata import to_float_with_nan
from .card import ModelCard, ndvi_of_normalised
from .model import PrestoModel, load_encoder

SCALINGS = ("auto", "reflectance", "dn")
S1_UNITS = ("auto", "db", "linear")
DW_VAR = "dynamic_world"
#: Median of valid values beyond which Sentinel-2 data are not reflectance 0-1 (DN are ~100-10000).
_REFLECTANCE_MAX_MEDIAN = 5.0


def _s2_names(card: ModelCard) -> list[str]:
    return [b.name for b in card.bands if b.group.startswith("S2_")]


def _s1_names(card: ModelCard) -> list[str]:
    return [b.name for b in card.bands if b.group == "S1"]


def _scaling_of(var: xr.DataArray, info: dict, scaling: str) -> str:
    """'reflectance' or 'dn' for one Sentinel-2 variable (before decoding, and what decoding did)."""
    if scaling != "auto":
        return scaling
    if float(info.get("scale_factor", 1.0)) != 1.0:  # CF packing of DN just decoded
        return "reflectance"
    if "scale_factor_applied" in var.attrs:  # eoai.load: DN * scale + offset
        return "reflectance" if float(var.attrs["scale_factor_applied"]) != 1.0 else "dn"
    if np.issubdtype(var.dtype, np.integer):
        return "dn"
    return "reflectance"  # eoai's convention for float cubes, checked on the values per chunk


def _s1_units_of(var: xr.DataArray, units: str) -> str:
    if units != "auto":
        return units
    u = str(var.attrs.get("units", "")).lower()
    if "db" in u:
        return "db"
    if u in ("1", "linear", "power", "amplitude^2") or "linear" in u:
        return "linear"
    return "db"  # Presto's own units, checked on the values per chunk


def _missing_message(card: ModelCard, ds: xr.Dataset, missing: list[str]) -> str:
    from ...io.bands import common_name

    have = [str(v) for v in ds.data_vars]
    renames = {v: common_name(v) for v in have if common_name(v) in missing}
    hint = (
        f" The cube names them otherwise: rename first, cube.rename({renames!r})."
        if renames
        else f" Load them, e.g. eoai.load(..., bands={card.required!r})."
    )
    return (
        f"the cube lacks {len(missing)} band(s) that {card.name} needs: {', '.join(missing)} "
        f"(the cube has: {', '.join(have) or 'nothing'}).{hint} Sentinel-1 (vv, vh), ERA5, SRTM "
        "and dynamic_world may be absent (their tokens are then masked)."
    )


def _check_cube(ds: xr.Dataset, card: ModelCard) -> tuple[list[str], dict[str, xr.DataArray]]:
    """Variables used (card order) and the cube's arrays for them; raises on what does not fit."""
    missing = [n for n in card.required if n not in ds.data_vars]
    if missing:
        raise ModelError(_missing_message(card, ds, missing))
    for dim in ("y", "x"):
        if dim not in ds.dims:
            raise MissingDimensionError(
                f"the cube has no {dim!r} dimension (dims {tuple(ds.dims)}); embeddings are per "
                "pixel of a (time, y, x) cube: rename the spatial dims to y and x"
            )
    if "time" not in ds.dims:
        raise MissingDimensionError(
            f"the cube has no 'time' dimension: {card.name} embeds time series of one step per "
            f"{card.time_step} (at most {card.max_steps})"
        )
    groups: dict[str, list[str]] = {}
    for b in card.bands:
        groups.setdefault(b.group, []).append(b.name)
    used: list[str] = []
    for group, names in groups.items():
        present = [n for n in names if n in ds.data_vars]
        derived = [b for b in card.bands if b.group == group and b.derived]
        if derived or not present:
            continue
        if len(present) != len(names):
            raise ModelError(
                f"{card.name} reads {', '.join(names)} together (one token, group {group}); the "
                f"cube has only {', '.join(present)}: add {', '.join(set(names) - set(present))} "
                "or drop the group's variables (then it is masked)"
            )
        used += present
    arrays = {}
    for name in [*used, *([DW_VAR] if DW_VAR in ds.data_vars else [])]:
        var = ds[name]
        band = next((b for b in card.bands if b.name == name), None)
        allowed = ({"y", "x"} if band is not None and not band.temporal else set()) | {
            "time",
            "y",
            "x",
        }
        if not set(var.dims) <= allowed or not {"y", "x"} <= set(var.dims):
            raise InputError(
                f"variable {name!r} has dims {var.dims}; it needs "
                f"{'(y, x) or ' if band is not None and not band.temporal else ''}(time, y, x)"
            )
        if band is not None and band.temporal and "time" not in var.dims:
            raise InputError(
                f"variable {name!r} has no time dimension; {card.name} reads it per month"
            )
        arrays[name] = var
    return used, arrays


def _steps(times: np.ndarray, card: ModelCard) -> tuple[np.ndarray, np.ndarray, pd.Period]:
    """Step index of every date, calendar month (0-11) of every step, first month."""
    if card.time_step != "month":
        raise ModelError(f"time step {card.time_step!r} of {card.name} is not supported (month)")
    idx = pd.DatetimeIndex(times)
    if idx.hasnans:
        raise TimeAxisError("the cube's time axis has NaT values; drop those dates first")
    ym = idx.year.to_numpy() * 12 + idx.month.to_numpy() - 1
    first, last = int(ym.min()), int(ym.max())
    n = last - first + 1
    if n > card.max_steps:
        p0 = pd.Period(year=first // 12, month=first % 12 + 1, freq="M")
        raise ModelError(
            f"the cube spans {n} months ({p0} to {pd.Period(year=last // 12, month=last % 12 + 1, freq='M')}); "
            f"{card.name} takes at most {card.max_steps} monthly steps (pre-trained on "
            f"{card.pretrained_steps}): select a period, e.g. "
            f"cube.sel(time=slice('{p0}', '{p0 + card.pretrained_steps - 1}'))"
        )
    months = (np.arange(first, last + 1) % 12).astype("int64")
    return (
        (ym - first).astype("int64"),
        months,
        pd.Period(year=first // 12, month=first % 12 + 1, freq="M"),
    )


def _nanmedian(sel: np.ndarray) -> np.ndarray:
    """Median over axis 0 of the non-NaN values, NaN where none (no warning, thread-safe)."""
    n = (~np.isnan(sel)).sum(axis=0)
    srt = np.sort(sel, axis=0)  # NaN sort last
    lo = np.clip((n - 1) // 2, 0, None)[None]
    hi = np.clip(n // 2, 0, None)[None]
    med = 0.5 * (np.take_along_axis(srt, lo, 0)[0] + np.take_along_axis(srt, hi, 0)[0])
    return np.where(n > 0, med, np.nan).astype("float32")


def _composite(block: np.ndarray, steps: np.ndarray, n_steps: int) -> np.ndarray:
    """(dates, y, x) -> (steps, y, x): median of the valid values of each step, NaN if none."""
    out = np.full((n_steps,) + block.shape[1:], np.nan, dtype="float32")
    for s in np.unique(steps):
        sel = block[steps == s]
        out[s] = sel[0] if sel.shape[0] == 1 else _nanmedian(sel)
    return out


def _mode(block: np.ndarray, steps: np.ndarray, n_steps: int, missing: int) -> np.ndarray:
    """Dynamic World classes (dates, y, x) -> most frequent valid class per step, else missing."""
    valid = np.isfinite(block) & (block >= 0) & (block < missing)
    cls = np.where(valid, block, -1).astype("int64")
    out = np.full((n_steps,) + block.shape[1:], missing, dtype="int64")
    for s in np.unique(steps):
        c = cls[steps == s]
        counts = np.stack([(c == k).sum(axis=0) for k in range(missing)])
        best = counts.argmax(axis=0)
        out[s] = np.where(counts.max(axis=0) > 0, best, missing)
    return out


def _check_values(name: str, values: np.ndarray, declared: str, kind: str) -> None:
    """Stop when the values of a chunk contradict their declared scaling (see module doc)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return
    med = float(np.median(v[:: max(1, v.size // 4096)]))
    if kind == "s2":
        if declared == "reflectance" and med > _REFLECTANCE_MAX_MEDIAN:
            raise ModelError(
                f"Sentinel-2 band {name!r} has a median of {med:.4g}: DN (reflectance x 1e4), not "
                "the reflectance 0-1 its attributes / dtype suggest; pass scaling='dn' (or divide "
                "the cube by 1e4)"
            )
        if declared == "dn" and med < _REFLECTANCE_MAX_MEDIAN:
            raise ModelError(
                f"Sentinel-2 band {name!r} has a median of {med:.4g}: reflectance 0-1, not DN "
                "(reflectance x 1e4); pass scaling='reflectance' (eoai.load's scaling)"
            )
    elif kind == "s1" and declared == "db" and med > 0:
        raise ModelError(
            f"Sentinel-1 band {name!r} has a median of {med:.4g} > 0: linear backscatter, not the "
            "dB Presto expects; pass s1_units='linear' (converted with 10 log10) or convert it"
        )


def _series(
    data: list[np.ndarray],
    layout: list[tuple[str, str, bool]],
    card: ModelCard,
    steps: np.ndarray,
    months: np.ndarray,
    px: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Blocks ``(dates, px)`` / ``(px,)`` in ``layout`` order -> the encoder's inputs of ``px`` pixels.

    Returns ``x`` (px, steps, channels) normalised, NaN where missing; its mask; Dynamic World
    classes (px, steps); and which pixels have any valid Sentinel-1 / Sentinel-2 value.
    """
    n_steps = months.shape[0]
    n_ch = len(card.bands)
    x = np.full((px, n_steps, n_ch), np.nan, dtype="float32")
    dw_missing = int(card.extra.get("dynamic_world_missing", 9))
    dw = np.full((px, n_steps), dw_missing, dtype="int64")
    index = {b.name: i for i, b in enumerate(card.bands)}
    for blk, (name, how, temporal) in zip(data, layout, strict=True):
        blk = np.asarray(blk)
        if name == DW_VAR:
            dw = _mode(blk.astype("float32"), steps, n_steps, dw_missing).T
            continue
        vals = blk.astype("float32")
        if how in ("reflectance", "dn"):
            _check_values(name, vals, how, "s2")
            if how == "reflectance":
                vals = vals * np.float32(1e4)
        elif how in ("db", "linear"):
            if how == "db":
                _check_values(name, vals, how, "s1")
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    vals = np.where(vals > 0, 10 * np.log10(vals), np.nan).astype("float32")
        if temporal:
            comp = _composite(vals, steps, n_steps).T
        elif vals.ndim == 2:  # a static input given per date: its median over time
            comp = np.repeat(_nanmedian(vals).reshape(px, 1), n_steps, axis=1)
        else:
            comp = np.repeat(vals.reshape(px, 1), n_steps, axis=1)
        b = card.bands[index[name]]
        x[:, :, index[name]] = (comp + np.float32(b.add_by)) / np.float32(b.divide_by)
    for i, b in enumerate(card.bands):
        if b.derived:  # NDVI from the normalised nir and red
            x[:, :, i] = ndvi_of_normalised(x[:, :, index["nir"]], x[:, :, index["red"]])
    mask = np.isnan(x)
    sensing = [index[n] for n in (*_s1_names(card), *_s2_names(card))]
    valid = (~mask[:, :, sensing]).any(axis=(1, 2))
    return x, mask, dw, valid


def _latlon(xs: np.ndarray, ys: np.ndarray, crs_wkt: str) -> np.ndarray:
    """``(n, 2)`` latitude, longitude (degrees) of points ``xs``, ``ys`` in ``crs_wkt``."""
    from pyproj import Transformer

    tr = Transformer.from_crs(crs_wkt, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(np.asarray(xs, "float64"), np.asarray(ys, "float64"))
    return np.stack([lat, lon], axis=-1).astype("float32")


def _embed_block(
    *blocks: np.ndarray,
    layout: list[tuple[str, str, bool]],
    card: ModelCard,
    model: PrestoModel,
    steps: np.ndarray,
    months: np.ndarray,
    crs_wkt: str,
    batch_size: int,
) -> np.ndarray:
    """One spatial chunk: blocks in ``layout`` order, then x, y coordinates -> (embedding, y, x)."""
    *data, xs, ys = blocks
    ny, nx = ys.shape[0], xs.shape[0]
    n_steps = months.shape[0]
    px = ny * nx
    flat = [np.asarray(b).reshape(b.shape[:-2] + (px,)) for b in data]
    x, mask, dw, valid = _series(flat, layout, card, steps, months, px)
    _skipped.count(nodata=int(px - valid.sum()), pixels=int(px))
    out = np.full((px, card.embedding_size), np.nan, dtype="float32")
    if valid.any():
        gx, gy = np.meshgrid(xs, ys)
        latlon = _latlon(gx.ravel()[valid], gy.ravel()[valid], crs_wkt)
        out[valid] = model.embed_arrays(
            x[valid], mask[valid], dw[valid], latlon,
            np.broadcast_to(months, (int(valid.sum()), n_steps)), batch_size=batch_size,
        )  # fmt: skip
    return out.T.reshape(card.embedding_size, ny, nx)


def _nodata_message(totals: dict[str, dict[str, int]]) -> str | None:
    c = totals.get("", {})
    if not c.get("nodata"):
        return None
    return (
        f"embed: {c['nodata']} of {c['pixels']} pixels have no valid Sentinel-1 / Sentinel-2 "
        "observation in any month and are NaN in every embedding dimension (not filled); widen "
        "the period or relax the cloud mask to embed them"
    )


def _prepare(cube: Any, card: ModelCard, scaling: str, s1_units: str, what: str = "embed") -> tuple:
    """Check a cube against the card: (sorted cube, float arrays by name, layout, step of each
    date, month of each step, first month, CRS WKT); the shared front of :func:`embed` and of
    pre-training on a cube (:func:`eoai.ml.presto.pretrain_presto`)."""
    if scaling not in SCALINGS:
        raise InputError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
    if s1_units not in S1_UNITS:
        raise InputError(f"s1_units must be one of {S1_UNITS}, got {s1_units!r}")
    if isinstance(cube, xr.DataArray):
        if "band" not in cube.dims:
            raise InputError(
                f"{what} needs a Dataset of bands (or a DataArray with a band dimension), got a "
                f"DataArray with dims {cube.dims}"
            )
        cube = cube.to_dataset("band")
    if not isinstance(cube, xr.Dataset):
        raise InputError(f"{what} needs an xarray Dataset cube, got {type(cube).__name__}")
    used, arrays = _check_cube(cube, card)
    crs_wkt = _crs_wkt(cube)
    cube = cube.sortby("time") if not cube.indexes["time"].is_monotonic_increasing else cube
    arrays = {n: cube[n] for n in arrays}
    steps, months, first = _steps(cube["time"].values, card)

    layout: list[tuple[str, str, bool]] = []
    s2, s1 = set(_s2_names(card)), set(_s1_names(card))
    for name, var in list(arrays.items()):
        band = next((b for b in card.bands if b.name == name), None)
        info: dict = {}
        if name != DW_VAR:  # declared nodata -> NaN, CF packing applied; integers need a nodata
            arrays[name], info = to_float_with_nan(var, what)
        if name in s2:
            how = _scaling_of(var, info, scaling)
        elif name in s1:
            how = _s1_units_of(var, s1_units)
        else:
            how = "as-is"
        layout.append((name, how, "time" in var.dims and (band is None or band.temporal)))

    return cube, arrays, layout, steps, months, first, crs_wkt


def embed(
    cube: xr.Dataset,
    model: PrestoModel | str | Path,
    *,
    scaling: str = "auto",
    s1_units: str = "auto",
    batch_size: int = 2048,
) -> xr.DataArray:
    """Presto embeddings of every pixel of a ``(time, y, x)`` cube: a lazy ``(embedding, y, x)`` array.

    Parameters
    ----------
    cube
        Dataset with the Sentinel-2 bands by eoai common names (``blue``, ``green``, ``red``,
        ``rededge1``-``3``, ``nir``, ``nir08``, ``swir16``, ``swir22``), optionally ``vv`` / ``vh``
        (Sentinel-1, dB), ``temperature_2m`` / ``total_precipitation`` (ERA5, K / m),
        ``elevation`` / ``slope`` (SRTM, m / degrees; ``(y, x)``), ``dynamic_world`` (class 0-8
        per date), and a CRS (``spatial_ref``, as :func:`eoai.load` gives). Cloud-masked values are
        NaN. Other variables are ignored. Dates are composited to months (median of the valid
        observations); the months from the first to the last date are the steps (at most 24).
    model
        A :class:`~eoai.ml.presto.model.PrestoModel` (:func:`~eoai.ml.presto.load_encoder`) or the
        path of a weights file with its model card (``<file>.json``).
    scaling
        Sentinel-2 values: ``"auto"`` (from the attrs: eoai.load's ``scale_factor_applied`` means
        reflectance 0-1; integers are DN; other floats are taken as reflectance, eoai's
        convention), ``"reflectance"`` (0-1) or ``"dn"`` (reflectance x 1e4, Presto's units).
        Values contradicting it stop the compute with a ModelError saying what to pass.
    s1_units
        Sentinel-1 values: ``"auto"`` (attrs ``units``, else dB, checked), ``"db"`` or ``"linear"``
        (converted to dB).
    batch_size
        Pixels per forward pass of the encoder.

    Returns
    -------
    xarray.DataArray
        ``(embedding, y, x)`` float32 named ``presto``, coordinate ``embedding`` = ``presto_000``
        ..., NaN where a pixel has no valid observation; dask-backed when the cube is (one task
        per spatial chunk), CRS coordinate kept, provenance attrs (``eoai:method`` = ``embed``).
        ``emb.to_dataset("embedding")`` gives one feature per dimension for
        :func:`eoai.ml.extract` / :func:`eoai.ml.fit` / :func:`eoai.ml.classify`.

    Raises
    ------
    eoai.errors.ModelError
        A required band is missing, a group half present (``vv`` without ``vh``), the cube spans
        more months than the model takes, or (at compute time) values contradict their scaling.
    eoai.errors.MissingDimensionError
        No ``time``, ``y`` or ``x`` dimension.
    eoai.errors.CRSError
        The cube has no CRS (needed for the pixels' lat/lon).
    eoai.errors.InputError
        Bad ``scaling`` / ``s1_units`` / ``batch_size``, or a variable with unexpected dims.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> from eoai.ml.presto import PRESTO_CARD, PrestoModel, embed
    >>> from eoai.ml.presto.encoder import PrestoEncoder
    >>> bands = PRESTO_CARD.required
    >>> t = pd.to_datetime(["2021-05-03", "2021-05-20", "2021-06-10"])
    >>> cube = xr.Dataset({b: (("time", "y", "x"), np.full((3, 2, 2), 0.2, "float32")) for b in bands},
    ...                   coords={"time": t, "y": [5.1e6, 5.09e6], "x": [4.6e5, 4.61e5]})
    >>> cube = cube.assign_coords(spatial_ref=xr.DataArray(0, attrs={"crs_wkt": "EPSG:32633"}))
    >>> embed(cube, PrestoModel(PrestoEncoder(), PRESTO_CARD)).shape
    (128, 2, 2)
    """
    if isinstance(model, str | Path):
        model = load_encoder(model)
    if not isinstance(model, PrestoModel):
        raise ModelError(
            f"embed needs a PrestoModel (eoai.ml.presto.load_encoder), got {type(model).__name__}"
        )
    if scaling not in SCALINGS:
        raise InputError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
    if s1_units not in S1_UNITS:
        raise InputError(f"s1_units must be one of {S1_UNITS}, got {s1_units!r}")
    if int(batch_size) < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    card = model.card
    cube, arrays, layout, steps, months, first, crs_wkt = _prepare(cube, card, scaling, s1_units)

    lazy = any(getattr(v.data, "dask", None) is not None for v in arrays.values())
    import dask.array as da

    ref = arrays[card.required[0]].transpose("time", "y", "x")
    ychunks = ref.chunks[1] if ref.chunks else (ref.sizes["y"],)
    xchunks = ref.chunks[2] if ref.chunks else (ref.sizes["x"],)
    args: list[Any] = []
    for var in arrays.values():
        dims = ("time", "y", "x") if "time" in var.dims else ("y", "x")
        arr = da.asarray(var.transpose(*dims).data)
        chunks = ((-1,) if "time" in dims else ()) + (ychunks, xchunks)
        arr = arr.rechunk(tuple(c if c != -1 else arr.shape[0] for c in chunks))
        args += [arr, "tyx" if "time" in dims else "yx"]
    args += [da.from_array(np.asarray(cube["x"].values), chunks=(xchunks,)), "x"]
    args += [da.from_array(np.asarray(cube["y"].values), chunks=(ychunks,)), "y"]
    call = _skipped.SkippedCall(_nodata_message)
    template = xr.DataArray(
        da.zeros((ref.sizes["y"], ref.sizes["x"]), chunks=(ychunks, xchunks), dtype="u1"),
        dims=("y", "x"),
    )
    ids = call.chunk_ids(template, [])
    args += [da.asarray(ids.data).rechunk((ychunks, xchunks)), "yx"]
    from ..._graph import graph_constant

    data = da.blockwise(
        call.reporter(_embed_block), "eyx", *args,
        new_axes={"e": card.embedding_size}, concatenate=True, dtype=np.float32,
        meta=np.empty((0, 0, 0), np.float32),
        layout=layout, card=card, model=graph_constant(model, prefix="presto"),
        steps=steps, months=months, crs_wkt=crs_wkt, batch_size=int(batch_size),
    )  # fmt: skip
    coords = {
        "embedding": [f"presto_{i:03d}" for i in range(card.embedding_size)],
        "y": cube["y"],
        "x": cube["x"],
    }
    if "spatial_ref" in cube.coords:
        coords["spatial_ref"] = cube["spatial_ref"]
    params = {
        "model": card.name, "source": model.source, "scaling": scaling, "s1_units": s1_units,
        "inputs": {n: how for n, how, _ in layout}, "first_month": str(first),
        "months": [int(m) for m in months], "composite": "monthly median of valid observations",
    }  # fmt: skip
    attrs = provenance([cube.attrs], "embed", params)
    attrs["long_name"] = f"{card.name} embedding"
    attrs["eoai:model_card"] = json.dumps(card.to_dict())
    out = xr.DataArray(
        data, dims=("embedding", "y", "x"), coords=coords, name="presto", attrs=attrs
    )
    if not lazy:
        out = out.compute()
    call.seal()
    return out


def _crs_wkt(cube: xr.Dataset) -> str:
    """WKT of the cube's CRS (odc-geo's ``spatial_ref`` convention), or CRSError."""
    crs = None
    try:
        import odc.geo.xr  # noqa: F401 - registers the .odc accessor

        crs = cube.odc.crs
    except Exception:  # noqa: BLE001 - odc raises on odd cubes; then we read spatial_ref below
        crs = None
    if crs is not None:
        return crs.to_wkt()
    ref = cube.coords.get("spatial_ref")
    if ref is not None:
        for key in ("crs_wkt", "spatial_ref"):
            if key in ref.attrs:
                from pyproj import CRS

                return CRS.from_user_input(ref.attrs[key]).to_wkt()
    raise CRSError(
        "the cube has no CRS, which Presto needs for each pixel's latitude and longitude: load it "
        "with eoai.load (it sets spatial_ref) or assign one, e.g. cube.odc.assign_crs('EPSG:32633')"
    )


__all__ = ["embed"]
