"""Spectral indices from band common names, lazy (dask in, dask out).

Formulas come from the Awesome Spectral Indices catalogue through the ``spyndex`` package (its
bundled JSON, read offline; about 280 indices: ``list_indices()``), evaluated on the cube's
``xarray`` variables, so a dask-backed cube gives a dask-backed index and nothing is computed.

Band symbols of the catalogue map to the cube's variables by common name (STAC ``eo`` / eoai
names), falling back to the Sentinel-2 band ids:

====== ========================================= ======  ====== ===================== ======
symbol variable                                  S2      symbol variable              S2
====== ========================================= ======  ====== ===================== ======
A      coastal                                   B01     RE1    rededge1, rededge     B05
B      blue                                      B02     RE2    rededge2              B06
G      green                                     B03     RE3    rededge3              B07
R      red                                       B04     N2     nir08                 B8A
N      nir                                       B08     WV     nir09                 B09
S1     swir16                                    B11     S2     swir22                B12
====== ========================================= ======  ====== ===================== ======

(plus ``G1`` green05, ``Y`` yellow, ``T``/``T1``/``T2`` lwir/lwir11/lwir12 and the radar ``VV``,
``VH``, ``HH``, ``HV``). Pass ``bands={"N": "nir08"}`` to choose another variable for a symbol.

Common indices: NDVI, EVI, EVI2, SAVI, MSAVI, OSAVI, GNDVI, NDRE (alias of the catalogue's NDREI,
``(N - RE1) / (N + RE1)``), NDWI (McFeeters, green/NIR), MNDWI (green/SWIR1), NDMI (NIR/SWIR1, Gao's
NDWI), NBR, NBR2, NDBI, BSI (alias of BI), NDSI, kNDVI. Constants (``L``, ``g``, ``C1``, ``C2``...)
take the catalogue defaults unless passed as keyword arguments. Kernel indices (kNDVI...) use the RBF
kernel ``exp(-(a - b)^2 / (2 sigma^2))`` with ``sigma = 0.5 (a + b)`` per pixel unless ``sigma=`` is
given (so kNDVI = tanh(NDVI^2)). Division by zero gives NaN, not inf.

SAR indices (Sentinel-1 ``vv`` / ``vh`` / ``hh`` / ``hv`` variables, :mod:`eoai.io.sentinel1`):

========  ==============================  ============================  ===========
name      formula                         meaning                       computed in
========  ==============================  ============================  ===========
VHVVR     VH / VV                         cross-pol ratio               linear
DpRVIVV   4 VH / (VV + VH)                dual-pol radar vegetation     linear
          (also ``RVI`` on a cube with    index (RVI_SAR)
          vv/vh and no red / rededge2)
VHVVD     VH - VV                         cross-pol difference          dB
                                          (VH_dB - VV_dB)
========  ==============================  ============================  ===========

(and NDPolI, VDDPI, VVVHR, VVVHD, VVVHS, DPDD, DpRVIHH, RFDI...). Each band's unit is read from
its ``attrs["units"]`` (or ``units=``): bands in dB are converted to linear power for the
ratios and RVI (averaging or dividing dB values is wrong), linear bands to dB for the
differences, lazily; a band of unknown unit raises an InputError asking for ``units=``.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from eoai.indices import index
>>> ds = xr.Dataset({"red": ("x", np.array([0.1, 0.2])), "nir": ("x", np.array([0.5, 0.4]))})
>>> index(ds, "ndvi").round(3).values.tolist()
[0.667, 0.333]
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

import numpy as np
import xarray as xr

from ._attrs import to_json
from ._provenance import step
from .errors import InputError, UnknownBandError

__all__ = ["index", "list_indices", "COMMON_INDICES"]

#: Catalogue symbol -> variable names tried in order (common names first, then Sentinel-2 ids).
SYMBOL_VARIABLES: dict[str, tuple[str, ...]] = {
    "A": ("coastal", "B01", "B1"),
    "B": ("blue", "B02", "B2"),
    "G": ("green", "B03", "B3"),
    "G1": ("green05",),
    "Y": ("yellow",),
    "R": ("red", "B04", "B4"),
    "RE1": ("rededge1", "rededge", "rededge071", "B05", "B5"),
    "RE2": ("rededge2", "rededge075", "B06", "B6"),
    "RE3": ("rededge3", "rededge078", "B07", "B7"),
    "N": ("nir", "B08", "B8"),
    "N2": ("nir08", "B8A"),
    "WV": ("nir09", "B09", "B9"),
    "S1": ("swir16", "B11"),
    "S2": ("swir22", "B12"),
    "T": ("lwir",),
    "T1": ("lwir11",),
    "T2": ("lwir12",),
    "VV": ("vv",),
    "VH": ("vh",),
    "HH": ("hh",),
    "HV": ("hv",),
}

#: Names accepted besides the catalogue's own, and what they mean there.
ALIASES: dict[str, str] = {"NDRE": "NDREI", "BSI": "BI", "RVI_SAR": "DpRVIVV"}

#: Unit of the backscatter bands each SAR index is computed in; the other radar indices of the
#: catalogue (ratios, RVI, normalised differences, sums, products) need linear power.
SAR_INDEX_UNITS: dict[str, str] = {"VHVVD": "dB", "VVVHD": "dB"}
_RADAR_SYMBOLS = ("VV", "VH", "HH", "HV")

#: The indices most users need; all of them are in the catalogue (see :func:`list_indices`).
COMMON_INDICES: tuple[str, ...] = (
    "NDVI", "EVI", "EVI2", "SAVI", "MSAVI", "OSAVI", "GNDVI", "NDRE", "NDWI", "MNDWI", "NDMI",
    "NBR", "NBR2", "NDBI", "BSI", "NDSI", "kNDVI",
)  # fmt: skip

_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


@lru_cache(maxsize=1)
def _catalogue() -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """(indices, constants, band symbols) of the spyndex catalogue, loaded once (no network)."""
    import spyndex  # heavy-ish (requests, python-box): imported on first use only

    return dict(spyndex.indices.items()), dict(spyndex.constants.items()), set(spyndex.bands)


def _resolve_name(name: str) -> str:
    """Catalogue key of a user-given index name (case-insensitive, aliases)."""
    indices, _, _ = _catalogue()
    if not isinstance(name, str) or not name:
        raise InputError(f"index name must be a non-empty string, got {name!r}")
    for cand in (name, ALIASES.get(name.upper(), "")):
        if cand in indices:
            return cand
    folded = [k for k in indices if k.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    if len(folded) > 1:
        raise UnknownBandError(
            f"index name {name!r} is ambiguous in the catalogue: {', '.join(sorted(folded))}; "
            "spell it with the exact case"
        )
    alias = [a for a in ALIASES if a.lower() == name.lower()]
    if alias:
        return ALIASES[alias[0]]
    close = difflib.get_close_matches(name.upper(), [k.upper() for k in indices], n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownBandError(
        f"unknown spectral index {name!r}{hint} Common ones: {', '.join(COMMON_INDICES)}; "
        f"eoai.indices.list_indices() lists all {len(indices)} known indices"
    )


def list_indices(
    domain: str | None = None, bands: xr.Dataset | Sequence[str] | None = None
) -> list[str]:
    """Names of the known spectral indices (Awesome Spectral Indices catalogue, via spyndex).

    Parameters
    ----------
    domain
        Keep only one application domain: ``"vegetation"``, ``"water"``, ``"burn"``, ``"soil"``,
        ``"urban"``, ``"snow"``, ``"radar"``, ``"kernel"``...
    bands
        A Dataset or a list of variable names: keep only the indices computable from them (with
        the catalogue's default constants).

    Returns
    -------
    list of str
        Sorted names (the catalogue's spelling; ``index`` accepts any case and the aliases NDRE,
        BSI).

    Examples
    --------
    >>> from eoai.indices import list_indices
    >>> "NDVI" in list_indices()
    True
    >>> {"NDVI", "SAVI", "EVI2"} <= set(list_indices(bands=["red", "nir"]))
    True
    """
    indices, constants, symbols = _catalogue()
    names = sorted(indices)
    if domain is not None:
        domains = {i.application_domain for i in indices.values()}
        if domain not in domains:
            raise InputError(f"unknown domain {domain!r}; choose from {', '.join(sorted(domains))}")
        names = [n for n in names if indices[n].application_domain == domain]
    if bands is not None:
        have = {str(v) for v in bands.data_vars} if isinstance(bands, xr.Dataset) else set(bands)
        keep = []
        for n in names:
            try:
                _plan(indices[n], have, constants, symbols, {}, {})
            except (UnknownBandError, InputError):
                continue
            keep.append(n)
        names = keep
    return names


def _symbol_var(symbol: str, have: set[str], mapping: Mapping[str, str]) -> str | None:
    if symbol in mapping:
        return mapping[symbol]
    for var in SYMBOL_VARIABLES.get(symbol, (symbol.lower(),)):
        if var in have:
            return var
    return None


def _kernel_parts(term: str, symbols: set[str], constants: Mapping[str, Any]) -> tuple[str, str]:
    body = term[1:]
    for cut in range(1, len(body)):
        a, b = body[:cut], body[cut:]
        if (a in symbols or a in constants) and (b in symbols or b in constants):
            return a, b
    raise InputError(f"cannot read kernel term {term!r}")


def _plan(
    spec: Any,
    have: set[str],
    constants: Mapping[str, Any],
    symbols: set[str],
    params: Mapping[str, Any],
    mapping: Mapping[str, str],
) -> dict[str, tuple[str, Any]]:
    """What each identifier of the formula is: ('band', var) | ('const', value) | ('kernel', (a, b))."""
    plan: dict[str, tuple[str, Any]] = {}
    todo = list(dict.fromkeys(_IDENT.findall(spec.formula)))
    while todo:
        ident = todo.pop(0)
        if ident in plan:
            continue
        if ident in params and ident not in symbols:
            plan[ident] = ("const", params[ident])
        elif ident in symbols or ident in SYMBOL_VARIABLES:
            var = _symbol_var(ident, have, mapping)
            if var is None or var not in have:
                wanted = mapping.get(ident) or " or ".join(
                    repr(v) for v in SYMBOL_VARIABLES.get(ident, (ident.lower(),))
                )
                raise UnknownBandError(
                    f"index {spec.short_name} needs band {wanted} (catalogue symbol {ident}), which "
                    f"is not in the data; bands present: {', '.join(sorted(have)) or 'none'}. "
                    f"Load it, or map the symbol to a variable with bands={{{ident!r}: 'name'}}"
                )
            plan[ident] = ("band", var)
        elif ident in constants:
            value = constants[ident].default
            if value is None:
                raise InputError(
                    f"index {spec.short_name} needs the parameter {ident!r} "
                    f"({constants[ident].description}); pass it, e.g. "
                    f"index(ds, {spec.short_name!r}, {ident}=...)"
                )
            plan[ident] = ("const", value)
        elif ident.startswith("k") and len(ident) > 2:
            a, b = _kernel_parts(ident, symbols, constants)
            plan[ident] = ("kernel", (a, b))
            todo += [a, b]
        else:
            raise InputError(
                f"index {spec.short_name}: cannot evaluate {ident!r} in {spec.formula}"
            )
    return plan


def _as_dataset(ds: xr.Dataset | xr.DataArray) -> xr.Dataset:
    if isinstance(ds, xr.Dataset):
        return ds
    if isinstance(ds, xr.DataArray):
        for dim in ("band", "variable", "bands"):
            if dim in ds.dims:
                return ds.to_dataset(dim)
        raise InputError(
            "index() needs several bands: pass a Dataset (one variable per band) or a DataArray "
            f"with a 'band' dimension; got a DataArray with dims {ds.dims}"
        )
    raise InputError(f"index() needs an xarray Dataset, got {type(ds).__name__}")


def index(
    ds: xr.Dataset | xr.DataArray,
    name: str | Sequence[str],
    *,
    bands: Mapping[str, str] | None = None,
    units: str | Mapping[str, str] | None = None,
    **params: float,
) -> xr.DataArray | xr.Dataset:
    """Compute a spectral index (or several) from the bands of a cube, lazily.

    Parameters
    ----------
    ds
        Dataset with one variable per band named by common name (``red``, ``nir``, ``swir16``...)
        or Sentinel-2 id (``B04``), reflectance (0-1); or a DataArray with a ``band`` dimension.
    name
        Index name, any case (``"ndvi"``, ``"EVI"``, ``"NDRE"``...), or a list of names.
    bands
        Optional mapping catalogue symbol -> variable (``{"N": "nir08"}``).
    units
        SAR indices only: unit of the backscatter bands (``"linear"``, ``"dB"``,
        ``"amplitude"``, or ``{"vv": "dB", ...}``) when their ``attrs["units"]`` lacks it.
    **params
        Constants of the formula (``L=0.5`` for SAVI, ``g``, ``C1``, ``C2``, ``sigma`` for kernel
        indices...), overriding the catalogue defaults.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        The index named ``name.lower()`` with the cube's coordinates (CRS included), float (the
        bands' float dtype), NaN where a denominator is zero; ``attrs``: ``long_name``,
        ``eoai:method`` (``"index"``), ``eoai:index``, ``eoai:formula``, ``eoai:bands`` (JSON:
        formula symbol -> variable) and ``eoai:parameters`` (JSON: the constants used; read them
        with :func:`json.loads`), ``reference``; all storable in netCDF and Zarr. A list of names gives a Dataset of indices.

    Raises
    ------
    eoai.errors.UnknownBandError
        Unknown index (the message lists common ones and close matches) or missing band (the
        message names it and the bands present).
    eoai.errors.InputError
        A needed constant has no default and was not given, or the input is not a Dataset.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from eoai.indices import index
    >>> ds = xr.Dataset({b: ("x", np.array([v], "float32")) for b, v in
    ...                  {"blue": 0.05, "red": 0.1, "nir": 0.5}.items()})
    >>> round(float(index(ds, "evi")[0]), 4)  # 2.5 (N - R) / (N + 6 R - 7.5 B + 1)
    0.5797
    >>> round(float(index(ds, "savi", L=0.5)[0]), 4)
    0.5455
    """
    data = _as_dataset(ds)
    if not isinstance(name, str):
        names = list(name)
        if not names:
            raise InputError("name must be an index name or a non-empty list of names")
        out = xr.Dataset(
            {n.lower(): _index(data, n, bands, params, strict=False, units=units) for n in names}
        )
        unused = set(params) - {
            k for v in out.data_vars.values() for k in json.loads(v.attrs["eoai:parameters"])
        }
        if unused:
            raise InputError(f"none of the indices {names} uses parameter(s) {sorted(unused)}")
        out.attrs["eoai:method"] = "index"
        return out
    return _index(data, name, bands, params, strict=True, units=units)


def _sar_band(band: xr.DataArray, var: str, key: str, units: Any) -> tuple[xr.DataArray, str]:
    """A backscatter band in the unit index ``key`` is computed in, and its original unit."""
    from .sar.units import backscatter_units

    given = units.get(var) if isinstance(units, Mapping) else units
    try:
        src = backscatter_units(band, given, f"index {key}")
    except InputError as err:
        raise InputError(
            f"{err}; SAR index {key} is computed in "
            f"{SAR_INDEX_UNITS.get(key, 'linear')} power: index(ds, {key!r}, units='dB') says "
            "the bands are in dB"
        ) from None
    need = SAR_INDEX_UNITS.get(key, "linear")
    if src == need:
        return band, src
    power = band
    if src == "dB":
        power = 10.0 ** (band / 10.0)
    elif src == "amplitude":
        power = band * band
    if need == "dB":
        # numpy's stubs type np.log10 as ndarray; a DataArray dispatches it to itself (lazy)
        power = 10.0 * cast(xr.DataArray, np.log10(power.where(power > 0)))
    return power, src


def _index(
    data: xr.Dataset,
    name: str,
    bands: Mapping[str, str] | None,
    params: dict,
    strict: bool,
    units: Any = None,
) -> xr.DataArray:
    indices, constants, symbols = _catalogue()
    key = _resolve_name(name)
    have_vars = {str(v) for v in data.data_vars}
    if key == "RVI" and {"vv", "vh"} <= have_vars and not {"red", "rededge2"} <= have_vars:
        key = "DpRVIVV"  # RVI of a Sentinel-1 cube: the dual-pol radar vegetation index
    spec = indices[key]
    mapping = dict(bands or {})
    for sym, var in mapping.items():
        if var not in data.data_vars:
            raise UnknownBandError(
                f"bands={{{sym!r}: {var!r}}}: variable {var!r} is not in the data; bands present: "
                f"{', '.join(map(str, data.data_vars))}"
            )
    have = {str(v) for v in data.data_vars}
    plan = _plan(spec, have, constants, symbols, params, mapping)
    unused = set(params) - {k for k, (kind, _) in plan.items() if kind == "const"}
    kernel = any(kind == "kernel" for kind, _ in plan.values())
    unused -= {"sigma"} if kernel else set()
    if strict and unused:
        raise InputError(
            f"index {key} does not use parameter(s) {sorted(unused)}; its formula is {spec.formula}"
        )

    env: dict[str, Any] = {}
    sar_units: dict[str, str] = {}
    for ident, (kind, value) in plan.items():
        if kind == "band":
            band = data[value]
            if not np.issubdtype(band.dtype, np.floating):
                band = band.astype(np.float32)
            if ident in _RADAR_SYMBOLS:
                band, sar_units[value] = _sar_band(band, value, key, units)
            env[ident] = band
        elif kind == "const":
            env[ident] = float(value)
    for ident, (kind, value) in plan.items():
        if kind == "kernel":
            a, b = (env[v] for v in value)
            sigma = params.get("sigma", 0.5 * (a + b))
            env[ident] = np.exp(-((a - b) ** 2) / (2 * sigma**2)) if value[0] != value[1] else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        result = eval(spec.formula, {"__builtins__": {}}, env)  # noqa: S307 - trusted catalogue
    if not isinstance(result, xr.DataArray):
        raise InputError(f"index {key} evaluates to a constant; check its formula {spec.formula}")
    result = result.where(np.isfinite(result))
    used = {k: env[k] for k, (kind, _) in plan.items() if kind == "const"}
    if kernel:
        used["sigma"] = params.get("sigma", "0.5 * (a + b)")
    result.name = name.lower()
    result.attrs = {
        "long_name": spec.long_name,
        **step("index", used),
        "eoai:index": key,
        "eoai:formula": spec.formula,
        "eoai:bands": to_json({k: v for k, (kind, v) in plan.items() if kind == "band"}),
        "reference": spec.reference,
    }
    if sar_units:
        need = SAR_INDEX_UNITS.get(key, "linear")
        result.attrs["eoai:input_units"] = to_json(sar_units)
        result.attrs["eoai:computed_in"] = need
        result.attrs["units"] = "dB" if need == "dB" else "1"
    return result
