"""Write results to disk, region by region, resumably: Cloud-optimised GeoTIFFs for QGIS, or Zarr.

Reached as ``eoai.write(obj, path)`` or ``obj.eoai.write(path)``. The format follows the suffix of
``path`` (``.tif``/``.tiff``: COG, ``.zarr``: Zarr) or ``format=``.

How a write runs
----------------
1. The object is checked (xarray, ``y``/``x`` dims, a CRS) and its **regions** are planned: the
   blocks of its dask chunk grid (numpy-backed data is first cut into ``chunks``-sized blocks).
2. Everything in progress lives under a temporary name: ``<target>.partial/`` for a file or store,
   ``<folder>/.eoai-write.partial/`` for a folder of COGs. It holds ``ledger.json`` (a fingerprint
   of the computation and the regions done) and ``stage.zarr`` (the regions written so far).
3. Regions are computed in **batches** of ``batch_size`` (default: 2 per dask worker thread, or per
   thread of the local scheduler); a batch is one dask computation, so every worker of a
   ``distributed`` cluster stays busy, and each region is written by the task that computed it (the
   result is never loaded whole). After each batch the ledger is replaced atomically.
4. At the end the Zarr store is consolidated, or each COG is built from the stage (GDAL's COG driver:
   tiled, compressed, overviews), and renamed into place; the ``.partial`` folder is removed. A
   file that has its final name is complete.

If the process dies, the same call resumes: the ledger's fingerprint (grid, variables, dims,
dtypes, chunks, attrs, dask tokens of the data, write options) must equal the new one, and only the
missing regions are computed. A different computation at the same path raises
:class:`~eoai.errors.ResumeMismatchError` and leaves everything in place.

COG naming
----------
One COG per variable and per date (GeoTIFF bands cannot hold several dtypes or a time axis):

- ``path`` ends in ``.tif``/``.tiff``: one output -> ``path`` itself; several ->
  ``<stem>[_<var>][_<YYYY-MM-DD>].tif`` beside it (``_<var>`` when there are several variables);
- otherwise ``path`` is a folder: ``<path>/<var>[_<YYYY-MM-DD>].tif``.

Dates that share a day get ``_<YYYY-MM-DDTHHMMSS>``. Class maps (integer variables with
``class_names`` / ``flag_meanings`` attrs, as made by :func:`eoai.ml.classify`) get their colour
table and class names in the band metadata, a ``.tif.aux.xml`` with GDAL category names, and a
``.qml`` QGIS style (paletted renderer) beside them. Date variables (datetime64) cannot be GeoTIFF
pixels: they are skipped with a :class:`~eoai.errors.DataSkippedWarning` (``*_doy`` variables carry
the same dates as day of year).

Examples
--------
>>> import eoai, tempfile, pathlib  # doctest: +SKIP
>>> classes = cube.eoai.classify(model)  # doctest: +SKIP
>>> classes["class"].eoai.write("classes.tif")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, cast
from xml.sax.saxutils import quoteattr

import numpy as np
import xarray as xr

from .._attrs import _plain, netcdf_attrs, to_json
from .._dims import spatial_dims
from .._skipped import user_stacklevel
from ..errors import (
    CRSError,
    DataSkippedWarning,
    InputError,
    ResumeMismatchError,
    TargetExistsError,
    WriteError,
)

__all__ = ["write", "serialisable_attrs", "WriteReport"]

LEDGER = "ledger.json"
STAGE = "stage.zarr"
_COG_SUFFIXES = {".tif", ".tiff"}
_ZARR_SUFFIXES = {".zarr"}
_FORMATS = {"cog": "cog", "geotiff": "cog", "gtiff": "cog", "tif": "cog", "zarr": "zarr"}


def _kept_encoding(var: xr.Variable) -> dict[str, Any]:
    """Encoding that survives a write: values are stored as they are in memory (no packing)."""
    enc = var.encoding
    if var.dtype.kind in "iub":  # e.g. the nodata code of a class map
        return {k: enc[k] for k in ("_FillValue",) if k in enc}
    if var.dtype.kind in "mM":
        return {k: enc[k] for k in ("units", "calendar") if k in enc}
    return {}  # floats: NaN is the fill value; a source's int16 + scale_factor packing is dropped


# ------------------------------------------------------------------------------------------------
# attributes
# ------------------------------------------------------------------------------------------------


def serialisable_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``attrs`` that both netCDF and Zarr accept: :func:`eoai._attrs.netcdf_attrs`.

    The one convention of the package (the same as every eoai output's own attributes): strings,
    numbers (NaN included) and non-empty lists of one kind are kept; booleans become 0/1; dicts,
    ``None``, mixed, nested or empty lists and other objects become JSON strings (``json.loads``
    gives them back); dates become ISO 8601 strings.

    Parameters
    ----------
    attrs
        Attributes of a Dataset or a variable.

    Returns
    -------
    dict
        New dict with ``str`` keys.

    Examples
    --------
    >>> import numpy as np
    >>> serialisable_attrs({"a": {"k": 1}, "b": None, "c": True, "d": [1, "x"], "e": [1, 2],
    ...                     "f": np.float32(0.5), "g": ["crop", "forest"], "h": "text"})
    {'a': '{"k": 1}', 'b': 'null', 'c': 1, 'd': '[1, "x"]', 'e': [1, 2], 'f': 0.5, 'g': ['crop', 'forest'], 'h': 'text'}
    """
    return netcdf_attrs(attrs)


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------


@dataclass
class WriteReport:
    """What :func:`write` did.

    Attributes
    ----------
    paths
        The files (COG, with their ``.qml``/``.aux.xml`` sidecars) or the store written.
    format
        ``"cog"`` or ``"zarr"``.
    regions
        Regions of the computation.
    computed
        Regions computed by this call (fewer than ``regions`` when it resumed).
    resumed
        Whether it continued an interrupted write.
    """

    paths: list[Path]
    format: str
    regions: int
    computed: int
    resumed: bool
    sidecars: list[Path] = field(default_factory=list)

    @property
    def path(self) -> Path:
        """The single output (the first COG when there are several)."""
        return self.paths[0]

    def __repr__(self) -> str:
        names = ", ".join(str(p) for p in self.paths[:4]) + (" ..." if len(self.paths) > 4 else "")
        how = f"resumed: {self.regions - self.computed} regions were done" if self.resumed else ""
        return (
            f"WriteReport({self.format}, {len(self.paths)} output(s): {names}; "
            f"{self.computed}/{self.regions} regions computed{'; ' + how if how else ''})"
        )


# ------------------------------------------------------------------------------------------------
# preparing the object
# ------------------------------------------------------------------------------------------------


def _resolve_format(path: Path, format: str | None) -> str:
    if format is not None:
        key = str(format).lower().lstrip(".")
        if key not in _FORMATS:
            raise WriteError(
                f"unknown format {format!r}: use format='cog' (Cloud-optimised GeoTIFF) or "
                "format='zarr'"
            )
        return _FORMATS[key]
    suffix = path.suffix.lower()
    if suffix in _COG_SUFFIXES:
        return "cog"
    if suffix in _ZARR_SUFFIXES:
        return "zarr"
    if suffix in {"", "."} or path.is_dir():
        return "cog"  # a folder of COGs
    raise WriteError(
        f"cannot tell the format of {str(path)!r} from its suffix {suffix!r}: end it with .tif "
        "(Cloud-optimised GeoTIFF) or .zarr, give a folder name (one COG per variable and date), "
        "or pass format='cog' / format='zarr'"
    )


def _as_dataset(obj: Any) -> tuple[xr.Dataset, bool]:
    if isinstance(obj, xr.DataArray):
        name = obj.name if obj.name is not None else "value"
        return obj.to_dataset(name=str(name), promote_attrs=False), True
    if isinstance(obj, xr.Dataset):
        return obj, False
    raise InputError(
        f"eoai.write needs an xarray Dataset or DataArray, got {type(obj).__name__}: wrap numpy "
        "data in xarray.DataArray(values, dims=('y', 'x'), coords=...) with a CRS "
        "(.odc.assign_crs('EPSG:32633'))"
    )


def _check_names(ds: xr.Dataset) -> None:
    """Variable, coordinate and dimension names are text: Zarr, netCDF and COG file names need it."""
    bad = list(dict.fromkeys(n for n in (*ds.variables, *ds.dims) if not isinstance(n, str)))
    if bad:
        raise InputError(
            f"eoai.write needs text names for variables, coordinates and dimensions (Zarr keys and "
            f"COG file names are made of them); {bad} are not: rename them, e.g. "
            f"obj.rename({{{bad[0]!r}: {str(bad[0])!r}}})"
        )


def _spatial_dims(ds: xr.Dataset) -> tuple[str, str]:
    return spatial_dims(ds, "eoai.write")


def _geobox(ds: xr.Dataset) -> Any:
    import odc.geo.xr  # noqa: F401  (registers .odc)

    try:
        with warnings.catch_warnings():  # odc-geo's own use of affine's deprecated `*`
            warnings.filterwarnings("ignore", "Use `@` matmul", PendingDeprecationWarning)
            gbox = ds.odc.geobox
    except Exception:  # noqa: BLE001  (odc-geo raises various errors for odd coordinates)
        gbox = None
    if gbox is None or getattr(gbox, "crs", None) is None:
        raise CRSError(
            "eoai.write needs a CRS and a regular grid: this object has none that odc-geo can read; "
            "attach one with obj.odc.assign_crs('EPSG:32633') (your CRS), and give 'y'/'x' regular "
            "coordinates (pixel centres)"
        )
    return gbox


def _regular_chunks(chunks: tuple[int, ...]) -> bool:
    return len(chunks) <= 1 or (len(set(chunks[:-1])) == 1 and chunks[-1] <= chunks[0])


def _prepare(ds: xr.Dataset, gbox: Any, chunks: int, spatial: tuple[str, str]) -> xr.Dataset:
    """Lazy: crs coordinate, CF grid_mapping, regular unified dask chunks, safe attrs/encoding."""
    if not ds.data_vars:
        raise InputError("this Dataset has no data variables to write")
    import odc.geo.xr  # noqa: F401

    if "spatial_ref" not in ds.coords:
        ds = ds.odc.assign_crs(gbox.crs)
    crs_name = "spatial_ref"
    ds = ds.copy()
    # numpy-backed variables: cut into blocks of `chunks` pixels (other dims whole)
    plain = {v for v in ds.data_vars if not hasattr(ds[v].data, "dask")}
    if plain:
        spec = {d: (min(chunks, ds.sizes[d]) if d in spatial else -1) for d in ds.dims}
        for v in plain:
            ds[v] = ds[v].chunk({d: spec[d] for d in ds[v].dims})
    ds = ds.unify_chunks()
    fix = {d: max(c) for d, c in ds.chunks.items() if not _regular_chunks(tuple(c))}
    if fix:
        ds = ds.chunk(fix)
    for name in list(ds.variables):
        var = ds.variables[name]
        var.encoding = _kept_encoding(var)
        attrs = serialisable_attrs(var.attrs)
        if name in ds.data_vars:
            attrs.setdefault("grid_mapping", crs_name)
            attrs.pop("coordinates", None)
        var.attrs = attrs
    ds.attrs = serialisable_attrs(ds.attrs)
    ds.attrs.setdefault("Conventions", "CF-1.8")
    return ds


# ------------------------------------------------------------------------------------------------
# regions and fingerprint
# ------------------------------------------------------------------------------------------------


def _region_dims(ds: xr.Dataset) -> list[str]:
    dims: list[str] = []  # names are str (checked by _check_names)
    for var in ds.data_vars.values():
        for d in map(str, var.dims):
            if d not in dims:
                dims.append(d)
    return dims


def _plan_regions(ds: xr.Dataset) -> list[dict[str, tuple[int, int]]]:
    """Blocks of the chunk grid over all dims of the data variables, row-major."""
    dims = _region_dims(ds)
    edges = {}
    for d in dims:
        sizes = ds.chunks[d]
        stops = np.cumsum(sizes).tolist()
        edges[d] = list(zip([0, *stops[:-1]], stops, strict=True))
    return [dict(zip(dims, combo, strict=True)) for combo in product(*(edges[d] for d in dims))]


def _region_subset(ds: xr.Dataset, region: dict[str, tuple[int, int]]) -> xr.Dataset | None:
    """Variables written by this region: those with its dims, and for dims they lack, block 0."""
    keep = []
    for name, var in ds.data_vars.items():
        if all(region[d][0] == 0 for d in region if d not in var.dims):
            keep.append(name)
    if not keep:
        return None
    sub = ds[keep]
    dims = {d for v in keep for d in ds[v].dims}
    sub = sub.isel({d: slice(*region[str(d)]) for d in dims})
    # numpy coordinates were written with the metadata; dask-backed ones go with their regions
    return sub.drop_vars(
        [c for c in sub.coords if not hasattr(sub[c].data, "dask") or c in sub.dims]
    )


def _digest(values: np.ndarray) -> str:
    import hashlib

    arr = np.ascontiguousarray(values)
    if arr.dtype.kind in "OUS":
        data = json.dumps([str(v) for v in arr.ravel().tolist()]).encode()
    else:
        data = arr.tobytes()
    return hashlib.sha256(data + str(arr.dtype).encode() + str(arr.shape).encode()).hexdigest()


def _fingerprint(ds: xr.Dataset, gbox: Any, fmt: str, options: dict[str, Any]) -> dict[str, Any]:
    from dask.base import tokenize

    variables = {}
    for name, var in ds.data_vars.items():
        variables[name] = {
            "dims": list(var.dims),
            "shape": list(var.shape),
            "dtype": str(var.dtype),
            "chunks": [list(c) for c in var.chunks] if var.chunks else None,
            "attrs": var.attrs,
            "encoding": {k: _plain(v) for k, v in var.encoding.items()},
            "token": var.data.name if hasattr(var.data, "dask") else tokenize(var.data),
        }
    coords = {
        name: {"dims": list(c.dims), "dtype": str(c.dtype), "values": _digest(c.values)}
        for name, c in ds.coords.items()
        if c.ndim <= 1 and name != "spatial_ref"
    }
    fp = {
        "format": fmt,
        "options": options,
        "grid": {
            "crs": str(gbox.crs),
            "shape": list(gbox.shape),
            "affine": list(gbox.affine)[:6],
        },
        "sizes": dict(ds.sizes),
        "variables": variables,
        "coords": coords,
        "attrs": ds.attrs,
    }
    return json.loads(json.dumps(_plain(fp), default=str, sort_keys=True))


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Readable list of what differs between two fingerprints (JSON-compared, NaN-safe)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            where = f"{prefix}.{k}" if prefix else str(k)
            if k not in old:
                out.append(f"{where}: absent from the interrupted write, now present")
            elif k not in new:
                out.append(f"{where}: in the interrupted write, absent now")
            else:
                out.extend(_differences(old[k], new[k], where))
        return out
    a, b = json.dumps(old, sort_keys=True), json.dumps(new, sort_keys=True)
    if a == b:
        return []
    what = "the dask graph (inputs or parameters) differs" if prefix.endswith(".token") else ""
    return [f"{prefix}: {_short(a)} before, {_short(b)} now{' -- ' + what if what else ''}"]


def _short(s: str) -> str:
    return s if len(s) <= 80 else s[:77] + "..."


# ------------------------------------------------------------------------------------------------
# ledger
# ------------------------------------------------------------------------------------------------


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_ledger(partial: Path) -> dict[str, Any] | None:
    try:
        return json.loads((partial / LEDGER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------
# scheduling
# ------------------------------------------------------------------------------------------------


def _client() -> Any:
    if "distributed" not in sys.modules:
        return None
    import dask

    if dask.config.get("scheduler", None) not in (None, "dask.distributed", "distributed"):
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


def _threads(client: Any) -> int:
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    import dask

    scheduler = dask.config.get("scheduler", None)
    if scheduler in ("sync", "synchronous", "single-threaded"):
        return 1
    return max(1, int(dask.config.get("num_workers", None) or os.cpu_count() or 1))


def _run_batch(delayeds: list[Any], client: Any, progress: Any) -> None:
    """One dask computation for the whole batch; the bar moves as regions finish."""
    if client is not None:
        from distributed import as_completed

        futures = client.compute(delayeds)
        for fut in as_completed(futures):
            fut.result()
            progress.update(1)
        return
    import dask

    dask.compute(*delayeds)
    progress.update(len(delayeds))


# ------------------------------------------------------------------------------------------------
# the engine: stage regions into a Zarr store
# ------------------------------------------------------------------------------------------------


@contextmanager
def _zarr_quiet() -> Iterator[None]:
    """Silence zarr's notice that consolidated metadata is not in the Zarr v3 spec (yet)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        yield


def _stage(
    ds: xr.Dataset,
    store: Path,
    ledger_path: Path,
    ledger: dict[str, Any],
    regions: list[dict[str, tuple[int, int]]],
    batch_size: int,
    client: Any,
    show: bool,
    desc: str,
) -> int:
    """Write the regions not yet in the ledger; return how many were computed."""
    from .._progress import bar

    done = set(ledger["done"])
    if ledger.get("state") == "init":
        with _zarr_quiet():
            ds.to_zarr(store, mode="w", compute=False, consolidated=False)
        ledger["state"] = "regions"
        done = set()
        ledger["done"] = []
        _write_json_atomic(ledger_path, ledger)
    todo = [i for i in range(len(regions)) if i not in done]
    computed = 0
    with bar(len(regions), desc, enabled=show, initial=len(done)) as progress:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            delayeds, ids = [], []
            with _zarr_quiet():
                for i in batch:
                    region = regions[i]
                    sub = _region_subset(ds, region)
                    if sub is None:
                        continue
                    slices = {str(d): slice(*region[str(d)]) for d in sub.dims}
                    delayeds.append(
                        sub.to_zarr(
                            store, region=slices, mode="r+", compute=False, consolidated=False
                        )
                    )
                    ids.append(i)
                if delayeds:
                    _run_batch(delayeds, client, progress)
            computed += len(batch)
            ledger["done"] = sorted(set(ledger["done"]) | set(batch))
            _write_json_atomic(ledger_path, ledger)
    return computed


# ------------------------------------------------------------------------------------------------
# COG outputs
# ------------------------------------------------------------------------------------------------


@dataclass
class _CogOutput:
    var: str
    time_index: int | None
    name: str  # file name


def _date_labels(times: np.ndarray) -> list[str]:
    days = [str(np.datetime_as_string(np.datetime64(t, "D"))) for t in times]
    if len(set(days)) == len(days):
        return days
    return [str(np.datetime_as_string(np.datetime64(t, "s"))).replace(":", "") for t in times]


def _cog_outputs(
    ds: xr.Dataset, path: Path, single_file: bool, spatial: tuple[str, str]
) -> list[_CogOutput]:
    names = [str(v) for v in ds.data_vars]  # str already (checked by _check_names)
    outs = []
    for var in names:
        if not set(spatial) <= set(ds[var].dims):
            raise WriteError(
                f"variable {var!r} has dims {ds[var].dims}, without both {spatial[0]!r} and "
                f"{spatial[1]!r}, so it is no raster: drop it (.drop_vars({var!r})) to write the "
                "others as COGs, or write everything to Zarr (a path ending in .zarr)"
            )
        extra = [d for d in ds[var].dims if d not in spatial]
        if extra and extra != ["time"]:
            other = [d for d in extra if d != "time"]
            raise WriteError(
                f"variable {var!r} has dims {ds[var].dims}: a GeoTIFF holds y/x (one file per "
                f"'time' step) but not {other}; select one value, e.g. "
                f".isel({other[0]}=0) or .sel({other[0]}=...), or write it to Zarr "
                "(a path ending in .zarr)"
            )
        labels = _date_labels(ds["time"].values) if extra == ["time"] else [None]
        for i, label in enumerate(labels):
            parts = [path.stem] if single_file else []
            if len(names) > 1 or not single_file:
                parts.append(var)
            if label is not None:
                parts.append(label)
            outs.append(_CogOutput(var, i if label is not None else None, "_".join(parts) + ".tif"))
    if single_file and len(outs) == 1:
        outs[0].name = path.name
    return outs


def _is_class_map(var: xr.DataArray) -> bool:
    from ..viz.colours import is_class_map

    return var.dtype.kind in "iu" and is_class_map(var.attrs)


def _legend(var: xr.DataArray) -> dict[int, tuple[str, str]]:
    from ..viz.colours import class_legend

    attrs = dict(var.attrs)
    for key in ("class_names", "flag_values", "class_values", "colours", "class_colours"):
        if isinstance(attrs.get(key), str) and attrs[key].startswith("["):
            attrs[key] = json.loads(attrs[key])
    if "colours" in attrs and "class_colours" not in attrs:
        attrs["class_colours"] = attrs["colours"]
    return class_legend(xr.DataArray(np.zeros(1), attrs=attrs))


def _nodata(var: xr.DataArray, dtype: np.dtype) -> float | int | None:
    if dtype.kind == "f":
        return float("nan")
    for source in (
        var.attrs.get("nodata"),
        var.attrs.get("_FillValue"),
        var.encoding.get("_FillValue"),
    ):
        if source is not None and not (isinstance(source, float) and math.isnan(source)):
            return int(source)
    return None


def _qml(legend: dict[int, tuple[str, str]], nodata: int | None) -> str:
    entries = "\n".join(
        f"        <paletteEntry value={quoteattr(str(v))} color={quoteattr(c)} "
        f'label={quoteattr(n)} alpha="255"/>'
        for v, (n, c) in sorted(legend.items())
    )
    nd = "" if nodata is None else f' nodataValue="{nodata}"'
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28.0" styleCategories="AllStyleCategories">\n'
        "  <pipe>\n"
        f'    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor=""{nd}>\n'
        "      <rasterTransparency/>\n"
        "      <colorPalette>\n"
        f"{entries}\n"
        "      </colorPalette>\n"
        "    </rasterrenderer>\n"
        '    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>\n'
        '    <huesaturation saturation="0" colorizeOn="0" grayscaleMode="0"/>\n'
        '    <rasterresampler maxOversampling="2"/>\n'
        "  </pipe>\n"
        "  <blendMode>0</blendMode>\n"
        "</qgis>\n"
    )


def _aux_xml(legend: dict[int, tuple[str, str]], description: str) -> str:
    top = max(legend)
    names = ["" for _ in range(top + 1)]
    for v, (n, _) in legend.items():
        if v >= 0:
            names[v] = n
    cats = "\n".join(
        f"      <Category>{_xml_text(n)}</Category>" if n else "      <Category />" for n in names
    )
    return (
        "<PAMDataset>\n"
        '  <PAMRasterBand band="1">\n'
        f"    <Description>{_xml_text(description)}</Description>\n"
        "    <CategoryNames>\n"
        f"{cats}\n"
        "    </CategoryNames>\n"
        "  </PAMRasterBand>\n"
        "</PAMDataset>\n"
    )


def _xml_text(s: str) -> str:
    from xml.sax.saxutils import escape

    return escape(str(s))


def _gdal_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind == "b":
        return np.dtype("uint8")
    return dtype


def _finalise_cog(
    stage: Path,
    var: str,
    time_index: int | None,
    attrs: dict[str, Any],
    encoding: dict[str, Any],
    gbox: Any,
    spatial: tuple[str, str],
    tmp_dir: Path,
    out: Path,
    options: dict[str, Any],
) -> list[Path]:
    """Build one COG (and sidecars) in ``tmp_dir`` from the staged store; return the files made."""
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window

    staged = xr.open_zarr(
        stage, consolidated=False, mask_and_scale=False, decode_times=False, chunks=None
    )  # lazily indexed numpy, no dask: reading a strip never goes through a cluster
    arr = staged[var]
    if time_index is not None:
        arr = arr.isel(time=time_index)
    arr = arr.transpose(*spatial)
    dtype = _gdal_dtype(arr.dtype)
    template = xr.DataArray(np.zeros(1, dtype=dtype), attrs=attrs)
    template.encoding = encoding
    is_class = _is_class_map(template)
    nodata = _nodata(template, dtype)
    ny, nx = arr.shape
    block = int(options["blocksize"])
    tmp_tif = tmp_dir / (out.name + ".stage.tif")
    cog_tmp = tmp_dir / (out.name + ".partial")
    profile = {
        "driver": "GTiff", "width": nx, "height": ny, "count": 1, "dtype": dtype.name,
        "crs": gbox.crs.to_wkt(), "transform": gbox.affine, "tiled": True,
        "blockxsize": block, "blockysize": block, "compress": "NONE", "BIGTIFF": "IF_SAFER",
    }  # fmt: skip
    if nodata is not None:
        profile["nodata"] = nodata
    legend = _legend(template) if is_class else None
    with rasterio.open(tmp_tif, "w", **profile) as dst:
        stage_chunks = staged[var].encoding.get("chunks")
        chunk_y = int(stage_chunks[staged[var].dims.index(spatial[0])]) if stage_chunks else block
        step = block * max(1, math.ceil(chunk_y / block))
        for y0 in range(0, ny, step):  # strips of whole tiles (and whole stage chunks)
            y1 = min(ny, y0 + step)
            values = np.asarray(arr.isel({spatial[0]: slice(y0, y1)}).values).astype(dtype)
            dst.write(values, 1, window=Window(0, y0, nx, y1 - y0))
        dst.set_band_description(1, var)
        tags = {k: (v if isinstance(v, str) else to_json(v)) for k, v in attrs.items()}
        tags.pop("grid_mapping", None)
        dst.update_tags(1, **tags)
        if legend is not None and dtype.itemsize <= 2:
            cmap = {int(v): tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) + (255,)
                    for v, (_, c) in legend.items()}  # fmt: skip
            if nodata is not None and nodata not in cmap:
                cmap[int(nodata)] = (0, 0, 0, 0)
            dst.write_colormap(1, cmap)
    resampling = "NEAREST" if (is_class or dtype.kind in "iub") else options["resampling"]
    creation = {
        "COMPRESS": options["compress"].upper(), "BLOCKSIZE": block, "OVERVIEWS": "AUTO",
        "RESAMPLING": resampling, "OVERVIEW_RESAMPLING": resampling, "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "ALL_CPUS",
    }  # fmt: skip
    if options["compress"].upper() in {"DEFLATE", "LZW", "ZSTD"}:
        creation["PREDICTOR"] = "YES"
    if options.get("level") is not None:
        creation["LEVEL"] = int(options["level"])
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        rasterio.shutil.copy(tmp_tif, cog_tmp, driver="COG", **creation)
    tmp_tif.unlink()
    made = [cog_tmp]
    if legend is not None:
        (tmp_dir / (out.name + ".aux.xml")).write_text(_aux_xml(legend, var), encoding="utf-8")
        # a legend is only made for integer class maps, whose nodata is an int or None
        (tmp_dir / (Path(out.name).stem + ".qml")).write_text(
            _qml(legend, cast(int | None, nodata)), encoding="utf-8"
        )
        made += [tmp_dir / (out.name + ".aux.xml"), tmp_dir / (Path(out.name).stem + ".qml")]
    return made


# ------------------------------------------------------------------------------------------------
# public
# ------------------------------------------------------------------------------------------------


def write(
    obj: xr.Dataset | xr.DataArray,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    overwrite: bool = False,
    resume: bool = True,
    progress: bool | None = None,
    batch_size: int | None = None,
    chunks: int = 1024,
    compress: str = "deflate",
    level: int | None = None,
    blocksize: int = 512,
    resampling: str = "average",
) -> WriteReport:
    """Write a Dataset/DataArray as Cloud-optimised GeoTIFF(s) or Zarr, region by region, resumably.

    See the module docstring of :mod:`eoai.io.write` for the naming of COGs, the ``.partial``
    folder and the ledger. Nothing is loaded whole: each region is computed and written by its own
    dask task, a batch of regions per dask computation.

    Parameters
    ----------
    obj
        Dataset or DataArray with ``y``/``x`` dims and a CRS (``obj.odc.crs``); dask-backed
        results (e.g. of ``classify``, ``phenology``) are computed region by region.
    path
        ``*.tif``/``*.tiff`` (COG), ``*.zarr`` (Zarr store) or a folder name (COGs, one per
        variable and date).
    format
        ``"cog"`` or ``"zarr"``, to override the suffix.
    overwrite
        Replace an existing complete target; without it an existing one raises
        :class:`~eoai.errors.TargetExistsError`.
    resume
        Continue an interrupted write of the same computation (``True``); ``False`` discards the
        ``.partial`` folder and starts again.
    progress
        Show a progress bar over regions (tqdm; a widget in Jupyter). ``None``: on in an
        interactive IPython/Jupyter session, off in scripts and papermill runs.
    batch_size
        Regions per dask computation (and per ledger update). Default: 2 per dask worker thread
        (distributed: threads of all workers; local: ``num_workers`` or the CPU count).
    chunks
        Block size (pixels along ``y`` and ``x``) used for numpy-backed variables; dask-backed ones
        keep their chunks (irregular ones are made regular).
    compress, level
        COG compression (``deflate``, ``zstd``, ``lzw``, ``none``) and its level.
    blocksize
        COG tile size (a multiple of 16; GDAL advises >= 128 and logs a notice below that);
        overviews halve the size until one tile covers the image.
    resampling
        Overview resampling of continuous COGs (``average``, ``bilinear``, ...); class maps and
        integers always use ``nearest``.

    Returns
    -------
    WriteReport
        ``paths`` written, ``regions`` and ``computed`` (fewer when it resumed), ``resumed``.

    Raises
    ------
    eoai.errors.InputError
        ``obj`` is not xarray, has no data variables, or has a variable, coordinate or dimension
        name that is not a str.
    eoai.errors.MissingDimensionError
        No ``y``/``x`` dims.
    eoai.errors.CRSError
        No CRS (attach one with ``.odc.assign_crs``).
    eoai.errors.WriteError
        Unknown format/suffix, or a COG of a variable with a dim other than ``time``.
    eoai.errors.TargetExistsError
        The target exists and ``overwrite`` is False.
    eoai.errors.ResumeMismatchError
        An interrupted write at this path came from another computation (the message lists what
        differs); nothing was touched.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, xarray as xr, rasterio
    >>> import eoai, odc.geo.xr
    >>> da = xr.DataArray(np.arange(64, dtype="float32").reshape(8, 8), dims=("y", "x"),
    ...                   coords={"y": 4605.0 - 10 * np.arange(8), "x": 605.0 + 10 * np.arange(8)},
    ...                   name="ndvi").odc.assign_crs("EPSG:32633")
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> report = eoai.write(da, out / "ndvi.tif", progress=False)
    >>> report.paths == [out / "ndvi.tif"], report.computed
    (True, 1)
    >>> with rasterio.open(out / "ndvi.tif") as src:
    ...     src.crs.to_epsg(), src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"]
    (32633, 'COG')
    >>> eoai.write(da, out / "ndvi.zarr", progress=False).paths == [out / "ndvi.zarr"]
    True
    """
    from .._progress import enabled

    ds, _ = _as_dataset(obj)
    _check_names(ds)
    target = Path(os.fspath(path))
    fmt = _resolve_format(target, format)
    spatial = _spatial_dims(ds)
    gbox = _geobox(ds)
    if blocksize % 16 or blocksize <= 0:
        raise InputError(f"blocksize must be a positive multiple of 16, got {blocksize}")
    if batch_size is not None and int(batch_size) < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")

    outputs: list[_CogOutput] = []
    if fmt == "cog":
        dates = [v for v in ds.data_vars if ds[v].dtype.kind == "M"]
        if dates:
            if len(dates) == len(ds.data_vars):
                raise WriteError(
                    f"variables {dates} hold dates (datetime64), which a GeoTIFF cannot store: write "
                    "them to Zarr (a path ending in .zarr) or write their *_doy (day of year) twins"
                )
            warnings.warn(
                f"{len(dates)} date variables ({', '.join(map(str, dates))}) are not written to GeoTIFF "
                "(datetime64 is no pixel type); their *_doy variables hold the same dates as day "
                "of year, and a .zarr path keeps them all",
                DataSkippedWarning,
                stacklevel=user_stacklevel(),
            )
            ds = ds.drop_vars(dates)
        single = target.suffix.lower() in _COG_SUFFIXES
        outputs = _cog_outputs(ds, target, single, spatial)
        folder = target.parent if single else target
        partial = (
            target.with_name(target.name + ".partial") if single else folder / ".eoai-write.partial"
        )
        finals = [folder / o.name for o in outputs]
    else:
        folder = target.parent
        partial = target.with_name(target.name + ".partial")
        finals = [target]

    prepared = _prepare(ds, gbox, int(chunks), spatial)
    if fmt == "cog":  # stage one date per Zarr chunk: each COG then reads only its own date
        for var in prepared.data_vars.values():
            if "time" in var.dims:
                var.encoding["chunks"] = tuple(
                    1 if d == "time" else prepared.chunks[d][0] for d in var.dims
                )
    regions = _plan_regions(prepared)
    options = {
        "compress": compress, "level": level, "blocksize": int(blocksize),
        "resampling": resampling,
    } if fmt == "cog" else {}  # fmt: skip
    fp = _fingerprint(prepared, gbox, fmt, options)

    ledger = _read_ledger(partial) if (partial.exists() and resume) else None
    if ledger is not None:
        diffs = _differences(ledger.get("fingerprint"), fp)
        if diffs or ledger.get("regions_total") != len(regions):
            listed = "\n  ".join(diffs[:12]) or "the number of regions"
            raise ResumeMismatchError(
                f"{partial} holds an interrupted write of another computation, so it cannot be "
                f"resumed for this one; what differs:\n  {listed}\n"
                f"Nothing was overwritten. Write to another path, or pass resume=False to discard "
                f"{partial} and start again."
            )
    finalised = set(ledger.get("finalised", [])) if ledger else set()
    existing = [p for p in finals if (p.exists() and p.name not in finalised)]
    if existing and not overwrite:
        names = ", ".join(str(p) for p in existing[:5]) + (" ..." if len(existing) > 5 else "")
        raise TargetExistsError(
            f"{names} exist{'s' if len(existing) == 1 else ''} already: pass overwrite=True to "
            "replace, or choose another path"
        )
    if ledger is None and partial.exists():
        shutil.rmtree(partial)  # our own temporary folder: unreadable ledger, or resume=False
    resumed = ledger is not None

    if ledger is None:
        partial.mkdir(parents=True, exist_ok=False)
        ledger = {
            "version": 1, "target": str(target), "fingerprint": fp, "state": "init",
            "regions_total": len(regions), "done": [], "finalised": [],
        }  # fmt: skip
        _write_json_atomic(partial / LEDGER, ledger)

    client = _client()
    threads = _threads(client)
    size = int(batch_size) if batch_size is not None else 2 * threads
    show = enabled(progress)
    store = partial / STAGE
    computed = _stage(
        prepared, store, partial / LEDGER, ledger, regions, size, client, show,
        f"eoai.write {target.name}",
    )  # fmt: skip

    sidecars: list[Path] = []
    if fmt == "zarr":
        if target.name in finalised and target.exists() and not store.exists():
            shutil.rmtree(partial)  # killed after the rename: the store is complete
            return WriteReport([target], fmt, len(regions), computed, resumed)
        import zarr

        with _zarr_quiet():
            zarr.consolidate_metadata(str(store))
        ledger["finalised"] = [target.name]  # from here on, target is ours to (re)place
        _write_json_atomic(partial / LEDGER, ledger)
        if target.exists():  # overwrite=True (checked above), or a rename interrupted
            old = target.with_name(target.name + ".replaced")
            if old.exists():
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            os.replace(target, old)
            os.replace(store, target)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            os.replace(store, target)
        shutil.rmtree(partial)
        return WriteReport([target], fmt, len(regions), computed, resumed)

    folder.mkdir(parents=True, exist_ok=True)
    for out, final in zip(outputs, finals, strict=True):
        made_side = []
        if out.name not in finalised:
            made = _finalise_cog(
                store, out.var, out.time_index, dict(prepared[out.var].attrs),
                dict(prepared[out.var].encoding), gbox, spatial, partial, final, options,
            )  # fmt: skip
            for stale in (final.with_name(final.name + ".aux.xml"), final.with_suffix(".qml")):
                if stale.exists() and stale.name not in {m.name for m in made}:
                    stale.unlink()  # overwrite=True: sidecars of the replaced file
            for extra in made[1:]:  # sidecars first: the .tif appearing marks completion
                os.replace(extra, folder / extra.name)
            os.replace(made[0], final)
            ledger["finalised"] = sorted(set(ledger["finalised"]) | {out.name})
            _write_json_atomic(partial / LEDGER, ledger)
        for side in (final.with_name(final.name + ".aux.xml"), final.with_suffix(".qml")):
            if side.exists() and _is_class_map(prepared[out.var]):
                made_side.append(side)
        sidecars.extend(made_side)
    shutil.rmtree(partial)
    return WriteReport(finals, fmt, len(regions), computed, resumed, sidecars)
