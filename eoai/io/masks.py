"""Cloud, shadow and no-data masks: Sentinel-2 SCL, THEIA/MAJA CLM, Landsat Collection 2 QA_PIXEL.

A :class:`MaskSpec` says which values of a mask band mark a pixel invalid, either as a set of
classes (SCL) or as a set of bits (CLM, QA_PIXEL). :func:`mask` sets the invalid pixels of every
other band to NaN, lazily; :func:`valid_fraction` gives the fraction of valid pixels per date,
lazily, from the mask band alone.

Defaults:

- **SCL** (Sentinel-2 L2A scene classification): invalid classes 0 no data, 1 saturated or
  defective, 3 cloud shadow, 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus;
  ``snow=True`` adds 11 snow/ice. Any other set via ``MaskSpec.scl(classes=[...])``.
- **CLM** (THEIA/MAJA cloud mask, also the embedded sample's 0/1 cloud mask): invalid when any of
  the bits in ``bits`` is set; default all 8 bits (bit 0 clouds and shadows summary, 1 all clouds
  except the thinnest, 2/3 mono/multi-temporal clouds, 4 thinnest clouds, 5 shadows, 6 shadows of
  clouds outside the image, 7 high clouds at 1.38 um).
- **QA_PIXEL** (Landsat Collection 2): invalid when bit 0 fill, 1 dilated cloud, 2 cirrus,
  3 cloud or 4 cloud shadow is set; ``snow=True`` adds bit 5.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from eoai.io.masks import MaskSpec, mask
>>> ds = xr.Dataset({"red": ("x", np.array([0.1, 0.2, 0.3], "float32")),
...                  "scl": ("x", np.array([4, 9, 0], "uint8"))})
>>> mask(ds, MaskSpec.scl()).red.values.tolist()
[0.10000000149011612, nan, nan]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import xarray as xr

from .._provenance import provenance, step
from ..errors import InputError, UnknownBandError

#: SCL classes masked by default (see module docstring).
SCL_DEFAULT_CLASSES: tuple[int, ...] = (0, 1, 3, 8, 9, 10)
SCL_SNOW = 11
#: names of the SCL classes, for legends and messages.
SCL_CLASS_NAMES: dict[int, str] = {
    0: "no data",
    1: "saturated or defective",
    2: "dark area pixels",
    3: "cloud shadows",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud medium probability",
    9: "cloud high probability",
    10: "thin cirrus",
    11: "snow or ice",
}
#: Landsat Collection 2 QA_PIXEL bits.
QA_PIXEL_BITS: dict[str, int] = {
    "fill": 0,
    "dilated_cloud": 1,
    "cirrus": 2,
    "cloud": 3,
    "cloud_shadow": 4,
    "snow": 5,
    "clear": 6,
    "water": 7,
}
#: THEIA/MAJA CLM bits.
CLM_BITS: dict[str, int] = {
    "clouds_and_shadows": 0,
    "all_clouds": 1,
    "clouds_mono_temporal": 2,
    "clouds_multi_temporal": 3,
    "thin_clouds": 4,
    "cloud_shadows": 5,
    "shadows_outside": 6,
    "high_clouds": 7,
}

KINDS = ("scl", "clm", "qa_pixel")


@dataclass(frozen=True)
class MaskSpec:
    """Which values of a mask band mark a pixel invalid.

    Parameters
    ----------
    kind : {"scl", "clm", "qa_pixel"}
        The mask product; it also names the band looked up in the items (``scl``, ``clm``,
        ``qa_pixel``, by asset key or common name).
    classes : tuple of int, optional
        Invalid class values (class masks such as SCL).
    bits : tuple of int, optional
        Invalid bit positions (bit masks such as CLM and QA_PIXEL): a pixel is invalid when any
        of them is set.
    band : str, optional
        Band (asset key or common name) holding the mask; default ``kind``.

    Examples
    --------
    >>> MaskSpec.scl(snow=True).classes
    (0, 1, 3, 8, 9, 10, 11)
    >>> MaskSpec.qa_pixel().bits
    (0, 1, 2, 3, 4)
    """

    kind: str
    classes: tuple[int, ...] = field(default_factory=tuple)
    bits: tuple[int, ...] = field(default_factory=tuple)
    band: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown mask kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if not self.classes and not self.bits:
            raise InputError(f"mask {self.kind!r} needs classes=... or bits=... to mark invalid")
        if any(not 0 <= int(b) < 16 for b in self.bits):
            raise InputError(f"mask bits must be in 0..15, got {self.bits}")

    @property
    def band_name(self) -> str:
        """Band name to look up in the items."""
        return self.band or self.kind

    @classmethod
    def scl(
        cls, classes: Sequence[int] = SCL_DEFAULT_CLASSES, *, snow: bool = False, band=None
    ) -> MaskSpec:
        """Sentinel-2 SCL mask; ``snow=True`` also masks class 11.

        Examples
        --------
        >>> MaskSpec.scl(classes=[0, 8, 9]).classes
        (0, 8, 9)
        """
        cl = tuple(int(c) for c in classes)
        if snow and SCL_SNOW not in cl:
            cl = (*cl, SCL_SNOW)
        return cls("scl", classes=cl, band=band)

    @classmethod
    def clm(cls, bits: Sequence[int] = tuple(range(8)), *, band=None) -> MaskSpec:
        """THEIA/MAJA CLM (or any 0/1 cloud mask): invalid when any of ``bits`` is set.

        Examples
        --------
        >>> MaskSpec.clm(bits=[1, 5]).bits
        (1, 5)
        """
        return cls("clm", bits=tuple(int(b) for b in bits), band=band)

    @classmethod
    def qa_pixel(
        cls, bits: Sequence[int] = (0, 1, 2, 3, 4), *, snow: bool = False, band=None
    ) -> MaskSpec:
        """Landsat Collection 2 QA_PIXEL mask; ``snow=True`` also masks bit 5.

        Examples
        --------
        >>> MaskSpec.qa_pixel(snow=True).bits
        (0, 1, 2, 3, 4, 5)
        """
        b = tuple(int(x) for x in bits)
        if snow and QA_PIXEL_BITS["snow"] not in b:
            b = (*b, QA_PIXEL_BITS["snow"])
        return cls("qa_pixel", bits=b, band=band)

    @classmethod
    def default(cls, kind: str) -> MaskSpec:
        """Default spec of a mask kind (``"scl"``, ``"clm"``, ``"qa_pixel"``).

        Examples
        --------
        >>> MaskSpec.default("clm").bits
        (0, 1, 2, 3, 4, 5, 6, 7)
        """
        if kind not in KINDS:
            raise InputError(f"unknown mask kind {kind!r}; use one of {', '.join(KINDS)}")
        return getattr(cls, kind)()

    def invalid(self, band: xr.DataArray) -> xr.DataArray:
        """Boolean DataArray, True where ``band`` marks the pixel invalid (lazy on dask).

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> MaskSpec.clm().invalid(xr.DataArray(np.array([0, 1, 32], "uint8"))).values.tolist()
        [False, True, True]
        """
        kw: dict[str, Any] = dict(
            classes=tuple(int(c) for c in self.classes),
            bitmask=int(sum(1 << int(b) for b in self.bits)),
        )
        data = band.data
        if isinstance(data, np.ndarray):
            bad = _invalid_block(data, **kw)
        else:  # one task per chunk
            import dask.array as dsa
            from dask.base import tokenize

            bad = dsa.map_blocks(
                _invalid_block,
                data,
                dtype=bool,
                meta=np.empty((0,) * data.ndim, bool),
                name=f"eoai-invalid-{tokenize(data.name, *kw.values())}",
                **kw,
            )
        return band.copy(data=bad)

    def to_attrs(self) -> dict:
        """Attributes recording this spec on a mask variable (read back by ``spec_from_attrs``).

        Examples
        --------
        >>> MaskSpec.qa_pixel().to_attrs()["eoai:mask_bits"]
        [0, 1, 2, 3, 4]
        """
        out: dict = {"eoai:mask_kind": self.kind}
        if self.classes:
            out["eoai:mask_classes"] = list(self.classes)
        if self.bits:
            out["eoai:mask_bits"] = list(self.bits)
        return out

    def describe(self) -> str:
        """Short text for attrs and messages.

        Examples
        --------
        >>> MaskSpec.scl().describe()
        'scl classes 0,1,3,8,9,10'
        """
        if self.classes:
            return f"{self.kind} classes {','.join(map(str, self.classes))}"
        return f"{self.kind} bits {','.join(map(str, self.bits))}"


def as_spec(spec: MaskSpec | str) -> MaskSpec:
    """Turn ``"scl"``/``"clm"``/``"qa_pixel"`` or a :class:`MaskSpec` into a MaskSpec.

    Examples
    --------
    >>> as_spec("qa_pixel").kind
    'qa_pixel'
    """
    if isinstance(spec, MaskSpec):
        return spec
    if isinstance(spec, str):
        return MaskSpec.default(spec.lower())
    raise InputError(
        f"mask must be 'auto', None, one of {KINDS} or an eoai.io.masks.MaskSpec, got {spec!r}"
    )


def spec_from_attrs(attrs: dict) -> MaskSpec:
    """The MaskSpec recorded on a mask variable by :meth:`MaskSpec.to_attrs`.

    Examples
    --------
    >>> spec_from_attrs(MaskSpec.scl(snow=True).to_attrs()).classes
    (0, 1, 3, 8, 9, 10, 11)
    """
    kind = attrs["eoai:mask_kind"]
    classes = tuple(int(v) for v in np.atleast_1d(attrs.get("eoai:mask_classes", ())))
    bits = tuple(int(v) for v in np.atleast_1d(attrs.get("eoai:mask_bits", ())))
    if not classes and not bits:
        return MaskSpec.default(kind)
    return MaskSpec(kind, classes=classes, bits=bits)


def _spec_for_band(mask_band: xr.DataArray, spec: MaskSpec | str) -> MaskSpec:
    if not isinstance(mask_band, xr.DataArray):
        raise InputError(f"mask_band must be a DataArray, got {type(mask_band).__name__}")
    if isinstance(spec, str) and spec == "auto":
        if mask_band.attrs.get("eoai:mask_kind") in KINDS:
            return spec_from_attrs(mask_band.attrs)
        spec = str(mask_band.name or "").lower()
        if spec not in KINDS:
            raise InputError(
                f"cannot tell the kind of mask_band {mask_band.name!r}; pass spec='scl', "
                "'clm', 'qa_pixel' or a MaskSpec"
            )
    return as_spec(spec)


def _invalid_block(a: np.ndarray, classes: tuple, bitmask: int) -> np.ndarray:
    """True where the mask values ``a`` are in ``classes`` or have a bit of ``bitmask`` set;
    NaN in a float mask band is invalid too."""
    isfloat = a.dtype.kind == "f"
    if classes:
        bad = np.isin(a, classes)
    else:
        ints = np.nan_to_num(a, nan=0).astype(np.int64) if isfloat else a.astype(np.int64)
        bad = (ints & bitmask) != 0
    if isfloat:
        bad |= np.isnan(a)
    return bad


def _find_mask_var(ds: xr.Dataset, spec: MaskSpec | str) -> tuple[str, MaskSpec]:
    if isinstance(spec, str) and spec == "auto":
        marked = [v for v in ds.data_vars if ds[v].attrs.get("eoai:mask_kind") in KINDS]
        for v in marked:
            return str(v), spec_from_attrs(ds[v].attrs)
        lower = {str(v).lower(): str(v) for v in ds.data_vars}
        for kind in KINDS:
            if kind in lower:
                return lower[kind], MaskSpec.default(kind)
        raise UnknownBandError(
            f"no mask variable in this Dataset (looked for {', '.join(KINDS)}); variables: "
            f"{', '.join(map(str, ds.data_vars))}. Load it with eoai.load(..., keep_mask=True) "
            "or pass mask_band=<DataArray>."
        )
    spec = as_spec(spec)
    lower = {str(v).lower(): str(v) for v in ds.data_vars}
    for name in (spec.band_name, spec.kind):
        if name in ds.data_vars:
            return name, spec
        if name.lower() in lower:
            return lower[name.lower()], spec
    raise UnknownBandError(
        f"mask band {spec.band_name!r} is not a variable of this Dataset; variables: "
        f"{', '.join(map(str, ds.data_vars))}"
    )


def _set_nan(x, bad):
    """``x`` with NaN where ``bad`` (arrays of one shape; numpy or dask, lazily)."""
    if isinstance(x, np.ndarray) and isinstance(bad, np.ndarray):
        return _set_nan_block(x, bad)
    import dask.array as dsa
    from dask.base import tokenize

    x, bad = dsa.asarray(x), dsa.asarray(bad)
    return dsa.map_blocks(
        _set_nan_block,
        x,
        bad,
        dtype=x.dtype,
        meta=np.empty((0,) * x.ndim, x.dtype),
        name=f"eoai-mask-{tokenize(x.name, bad.name)}",
    )


def _set_nan_block(x: np.ndarray, bad: np.ndarray) -> np.ndarray:
    return np.where(bad, x.dtype.type(np.nan), x)  # a scalar of x's dtype: float32 stays


@overload
def mask(
    obj: xr.Dataset,
    spec: MaskSpec | str = ...,
    *,
    mask_band: xr.DataArray | None = ...,
    keep_mask: bool = ...,
) -> xr.Dataset: ...
@overload
def mask(
    obj: xr.DataArray,
    spec: MaskSpec | str = ...,
    *,
    mask_band: xr.DataArray | None = ...,
    keep_mask: bool = ...,
) -> xr.DataArray: ...
def mask(
    obj: xr.Dataset | xr.DataArray,
    spec: MaskSpec | str = "auto",
    *,
    mask_band: xr.DataArray | None = None,
    keep_mask: bool = False,
) -> xr.Dataset | xr.DataArray:
    """Set pixels that the mask band marks invalid (clouds, shadows, no data) to NaN, lazily.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Reflectances (float). A Dataset may hold the mask band as a variable (``scl``, ``clm``,
        ``qa_pixel``, or one whose attrs have ``eoai:mask_kind``).
    spec : MaskSpec or {"auto", "scl", "clm", "qa_pixel"}
        Which values are invalid; ``"auto"`` uses the mask variable found in ``obj``.
    mask_band : xarray.DataArray, optional
        The mask band, when it is not a variable of ``obj`` (always needed for a DataArray).
    keep_mask : bool
        Keep the mask variable in the returned Dataset (default: drop it).

    Returns
    -------
    same type as ``obj``
        Float bands with invalid pixels NaN; ``attrs["eoai:method"] = "mask"`` and
        ``attrs["eoai:mask"]`` describing the spec.

    Raises
    ------
    eoai.errors.UnknownBandError
        No mask band found. ``eoai.errors.InputError``: bad spec or mask shape.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> red = xr.DataArray(np.array([0.1, 0.2], "float32"), dims="x")
    >>> qa = xr.DataArray(np.array([1 << 6, 1 << 3], "uint16"), dims="x")
    >>> mask(red, "qa_pixel", mask_band=qa).values.tolist()
    [0.10000000149011612, nan]
    """
    if not isinstance(obj, xr.Dataset | xr.DataArray):
        raise InputError(f"mask expects an xarray Dataset or DataArray, got {type(obj).__name__}")
    mask_name = None
    if mask_band is None:
        if isinstance(obj, xr.DataArray):
            raise InputError("masking a DataArray needs mask_band=<the mask DataArray>")
        mask_name, spec = _find_mask_var(obj, spec)
        mask_band = obj[mask_name]
    else:
        spec = _spec_for_band(mask_band, spec)
    missing = set(mask_band.dims) - set(obj.dims)
    if missing:
        raise InputError(
            f"mask band dims {mask_band.dims} do not match the data dims {tuple(obj.dims)}"
        )
    invalid = spec.invalid(mask_band)

    def _apply(da: xr.DataArray) -> xr.DataArray:
        if da.dtype.kind != "f":
            da = da.astype("float32")
        out = da.where(~invalid)
        out.attrs = dict(da.attrs)
        return out

    out: xr.Dataset | xr.DataArray
    if isinstance(obj, xr.DataArray):
        out = _apply(obj)
    else:
        # variables of one Dataset are aligned already: mask their arrays directly and
        # replace them in one copy (no per-band alignment); others go through xarray
        bad = invalid.variable
        data, other = {}, []
        for v, var in obj.data_vars.items():
            if v != mask_name and var.dims == bad.dims and var.shape == bad.shape:
                x = var.data if var.dtype.kind == "f" else var.data.astype(np.float32)
                data[v] = _set_nan(x, bad.data)
            else:
                data[v] = var.data
                other.append(v)
        out = obj.copy(data=data)
        for v in other:
            if v != mask_name:
                out[v] = _apply(obj[v])
        if mask_name is not None and not keep_mask:
            out = out.drop_vars(mask_name)
    # the input's attrs kept, its step (e.g. load) moved to eoai:lineage
    out.attrs = {
        **provenance([obj.attrs], "mask", {"mask": spec.describe(), "keep_mask": bool(keep_mask)}),
        "eoai:mask": spec.describe(),
    }
    return out


def valid_fraction(
    obj: xr.Dataset | xr.DataArray,
    spec: MaskSpec | str = "auto",
    *,
    mask_band: xr.DataArray | None = None,
) -> xr.DataArray:
    """Fraction of valid pixels per date, lazily (from the mask band alone when there is one).

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        With dims ``(time, y, x)``. If a Dataset holds a mask variable (or ``mask_band`` is given),
        validity comes from it with ``spec``; otherwise a pixel is valid where every variable is
        not NaN.
    spec : MaskSpec or {"auto", "scl", "clm", "qa_pixel"}
    mask_band : xarray.DataArray, optional

    Returns
    -------
    xarray.DataArray
        ``(time,)`` float64 in [0, 1], dask-backed when the input is.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> scl = xr.DataArray(np.array([[[4, 9], [4, 4]]], "uint8"), dims=("time", "y", "x"),
    ...                    name="scl")
    >>> valid_fraction(xr.Dataset({"scl": scl})).values.tolist()
    [0.75]
    """
    if not isinstance(obj, xr.Dataset | xr.DataArray):
        raise InputError(
            f"valid_fraction expects an xarray Dataset or DataArray, got {type(obj).__name__}"
        )
    spatial = [d for d in obj.dims if d != "time"]
    if "time" not in obj.dims:
        from ..errors import MissingDimensionError

        raise MissingDimensionError(f"valid_fraction needs a 'time' dimension, dims: {obj.dims}")
    if mask_band is not None:
        valid = ~_spec_for_band(mask_band, spec).invalid(mask_band)
    elif isinstance(obj, xr.Dataset):
        try:
            name, sp = _find_mask_var(obj, spec)
        except UnknownBandError:
            if not (isinstance(spec, str) and spec == "auto"):
                raise
            name = None
        if name is not None:
            valid = ~sp.invalid(obj[name])
        else:
            valid = xr.concat([obj[v].notnull() for v in obj.data_vars], "var").all("var")
    else:
        if not (isinstance(spec, str) and spec == "auto"):
            valid = ~as_spec(spec).invalid(obj)
        else:
            valid = obj.notnull()
    frac = valid.astype("float64").mean(dim=spatial)
    frac.name = "valid_fraction"
    frac.attrs = {
        **step(
            "valid_fraction", {"mask": spec.describe() if isinstance(spec, MaskSpec) else str(spec)}
        ),
        "units": "1",
    }
    return frac
