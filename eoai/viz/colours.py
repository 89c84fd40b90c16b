"""Colour maps, class colours and legends shared by maps and plots.

Class maps carry their legend in ``attrs``; eoai reads, in this order:

- ``class_names`` (list, aligned with ``class_values`` or with 0..n-1) or a dict ``{value: name}``;
- ``class_colours`` / ``class_colors`` (list of ``#rrggbb``, aligned with the names) or a dict;
- the CF convention ``flag_values`` + ``flag_meanings`` (space separated) + ``flag_colors``.

Continuous layers use a matplotlib colour map (``RdYlGn`` for vegetation indices, ``viridis``
otherwise) stretched between robust percentiles.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from eoai.viz.colours import class_legend
>>> da = xr.DataArray(np.zeros((2, 2)), attrs={"class_names": ["water", "forest"]})
>>> class_legend(da)
{0: ('water', '#2b83ba'), 1: ('forest', '#1a7f37')}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError

# The package's one palette (issue #14): maps, plots, models and written class maps take their
# class colours from here. Qualitative (Tableau 10 then Tableau 20 light tones): readable on
# maps, colour-blind aware; used for classes without a colour of their own or a known name.
PALETTE = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#dbdb8d", "#9edae5", "#c7c7c7",
]  # fmt: skip

# Colours by common land-cover names (lower case, spaces / underscores / hyphens ignored).
NAMED_COLOURS = {
    "forest": "#1a7f37", "tree": "#1a7f37", "trees": "#1a7f37", "grassland": "#a6d96a",
    "grass": "#a6d96a", "shrubland": "#8c6d31", "schrubland": "#8c6d31", "shrub": "#8c6d31",
    "cropland": "#f1c232", "cultivatedland": "#f1c232", "crop": "#f1c232", "crops": "#f1c232",
    "water": "#2b83ba", "wetland": "#66c2a5", "wetlands": "#66c2a5", "urban": "#d7191c",
    "builtup": "#d7191c", "artificialsurface": "#d7191c", "bareland": "#bdbdbd", "bare": "#bdbdbd",
    "snowandice": "#f0f0f0", "snow": "#f0f0f0", "cloud": "#ffffff", "nodata": "#000000",
}  # fmt: skip


def default_colour(name: Any, i: int) -> str:
    """The colour of class number ``i`` named ``name``: its land-cover colour when the name is
    known (:data:`NAMED_COLOURS`), else the ``i``-th colour of :data:`PALETTE`.

    Examples
    --------
    >>> default_colour("Forest", 0), default_colour("thing", 1)
    ('#1a7f37', '#f28e2b')
    """
    key = str(name).lower().replace(" ", "").replace("_", "").replace("-", "")
    return NAMED_COLOURS.get(key, PALETTE[i % len(PALETTE)])


def default_colours(names: Sequence[Any]) -> list[str]:
    """A colour per class name (:func:`default_colour`).

    Examples
    --------
    >>> default_colours(["forest", "thing"])
    ['#1a7f37', '#f28e2b']
    """
    return [default_colour(n, i) for i, n in enumerate(names)]


_VEGETATION = {"ndvi", "evi", "evi2", "savi", "ndre", "ndmi", "gndvi", "msavi", "kndvi", "nirv"}
_WATER = {"ndwi", "mndwi"}


def default_cmap(name: str | None) -> str:
    """Matplotlib colour map name suited to a variable name.

    Parameters
    ----------
    name : str or None
        Variable name (``"ndvi"``, ``"nbr"``, ``"red"`` ...).

    Returns
    -------
    str
        ``"RdYlGn"`` for vegetation indices, ``"RdBu"`` for water indices, ``"viridis"`` otherwise.

    Examples
    --------
    >>> default_cmap("ndvi"), default_cmap("red")
    ('RdYlGn', 'viridis')
    """
    key = (name or "").lower()
    if key in _VEGETATION or key in {"nbr", "nbr2"}:
        return "RdYlGn"
    if key in _WATER:
        return "RdBu"
    return "viridis"


def _as_list(value: Any) -> list:
    if isinstance(value, str):
        return value.split()
    return list(np.atleast_1d(value).tolist())


def is_class_map(attrs: dict) -> bool:
    """Whether ``attrs`` describe a categorical (class) map.

    Examples
    --------
    >>> is_class_map({"flag_values": [1, 2], "flag_meanings": "crop forest"}), is_class_map({})
    (True, False)
    """
    return any(
        k in attrs for k in ("class_names", "flag_meanings", "class_colours", "class_colors")
    )


def class_legend(da: Any) -> dict[int, tuple[str, str]]:
    """``{class value: (name, colour)}`` from a class map's ``attrs`` (see module docstring).

    Parameters
    ----------
    da : xarray.DataArray
        A class map whose ``attrs`` name its classes.

    Returns
    -------
    dict
        Class value -> (name, ``#rrggbb`` colour); colours missing from attrs are the class
        name's land-cover colour when it is known, else from :data:`PALETTE`
        (:func:`default_colour`).

    Raises
    ------
    eoai.errors.InputError
        When names and values or colours have different lengths.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 2)), attrs={"flag_values": [1, 5],
    ...     "flag_meanings": "crop forest", "flag_colors": "#ffff00 #006400"})
    >>> class_legend(da)
    {1: ('crop', '#ffff00'), 5: ('forest', '#006400')}
    """
    attrs = dict(getattr(da, "attrs", {}) or {})
    names: Any = attrs.get("class_names", attrs.get("flag_meanings"))
    values: Any = attrs.get("class_values", attrs.get("flag_values"))
    colours: Any = attrs.get("class_colours", attrs.get("class_colors", attrs.get("flag_colors")))
    if isinstance(names, dict):
        values = [int(k) for k in names]
        names = [str(v) for v in names.values()]
    if names is None:
        raise InputError(
            "this class map has no class names: set attrs['class_names'] (a list or a dict "
            "{value: name}) or the CF attrs 'flag_values' and 'flag_meanings'"
        )
    names = [str(n) for n in _as_list(names)]
    values = list(range(len(names))) if values is None else [int(v) for v in _as_list(values)]
    if len(values) != len(names):
        raise InputError(
            f"class map attrs disagree: {len(values)} class values but {len(names)} class names; "
            "give one name per value"
        )
    if isinstance(colours, dict):
        colours = [
            colours.get(v, colours.get(str(v), colours.get(n)))
            for v, n in zip(values, names, strict=True)
        ]
    if colours is None:
        colours = [None] * len(names)
    colours = _as_list(colours) if not isinstance(colours, list) else colours
    if len(colours) != len(names):
        raise InputError(
            f"class map attrs disagree: {len(colours)} class colours for {len(names)} classes"
        )
    out = {}
    for i, (v, n, c) in enumerate(zip(values, names, colours, strict=True)):
        out[v] = (n, to_hex(c) if c is not None else default_colour(n, i))
    return out


def to_hex(colour: Any) -> str:
    """Any matplotlib-style colour (name, hex, RGB tuple in 0-1 or 0-255) to ``#rrggbb``.

    Examples
    --------
    >>> to_hex("red"), to_hex((0, 128, 0)), to_hex("#00ff00")
    ('#ff0000', '#008000', '#00ff00')
    """
    if isinstance(colour, str) and colour.startswith("#") and len(colour) == 7:
        return colour.lower()
    if isinstance(colour, Sequence) and not isinstance(colour, str):
        rgb = np.asarray(colour[:3], dtype=float)
        if rgb.max() > 1:
            rgb = rgb / 255.0
        return "#" + "".join(f"{int(round(c * 255)):02x}" for c in rgb)
    from matplotlib.colors import to_hex as _mpl_to_hex

    return _mpl_to_hex(colour)


def robust_range(
    values: np.ndarray, percentiles: tuple[float, float] = (2, 98)
) -> tuple[float, float]:
    """Percentile range of the finite values (for colour stretching).

    Raises
    ------
    eoai.errors.InputError
        When no value is finite (an all-NaN layer cannot be stretched).

    Examples
    --------
    >>> robust_range(np.array([0.0, 1.0, 2.0, np.nan]), (0, 100))
    (0.0, 2.0)
    """
    finite = np.asarray(values)[np.isfinite(values)]
    if finite.size == 0:
        raise InputError(
            "every value of this layer is NaN (all masked?): pick another date or variable, "
            "or pass vmin and vmax"
        )
    lo, hi = np.percentile(finite, percentiles)
    if hi <= lo:
        hi = lo + 1e-6
    return float(lo), float(hi)


def colourise(
    values: np.ndarray,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    legend: dict[int, tuple[str, str]] | None = None,
) -> np.ndarray:
    """Colour a 2-D array into RGBA ``uint8``; NaN (and unknown classes) become transparent.

    Parameters
    ----------
    values : numpy.ndarray
        2-D array.
    cmap : str
        Matplotlib colour map for continuous values.
    vmin, vmax : float, optional
        Stretch range; the 2-98 percentiles of the finite values by default.
    legend : dict, optional
        ``{class value: (name, colour)}``: colour classes instead of stretching.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols, 4)`` uint8.

    Examples
    --------
    >>> rgba = colourise(np.array([[0.0, 1.0], [np.nan, 0.5]]), vmin=0, vmax=1)
    >>> rgba.shape, int(rgba[1, 0, 3]), int(rgba[0, 0, 3])
    ((2, 2, 4), 0, 255)
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise InputError(f"colourise needs a 2-D array, got shape {values.shape}")
    out = np.zeros(values.shape + (4,), dtype=np.uint8)
    if legend is not None:
        finite = np.isfinite(values)
        ints = np.where(finite, values, -(2**31)).astype(np.int64)
        for value, (_, colour) in legend.items():
            h = to_hex(colour)
            rgb = [int(h[i : i + 2], 16) for i in (1, 3, 5)]
            sel = ints == value
            out[sel, :3] = rgb
            out[sel, 3] = 255
        return out
    import matplotlib

    if vmin is None or vmax is None:
        lo, hi = robust_range(values)
        vmin = lo if vmin is None else vmin
        vmax = hi if vmax is None else vmax
    scaled = (values - vmin) / max(vmax - vmin, 1e-12)
    rgba = matplotlib.colormaps[cmap](np.clip(np.nan_to_num(scaled, nan=0.0), 0, 1), bytes=True)
    rgba[..., 3] = np.where(np.isfinite(values), 255, 0)
    return rgba


def gradient_css(cmap: str, steps: int = 11) -> str:
    """CSS ``linear-gradient`` of a matplotlib colour map (for legends).

    Examples
    --------
    >>> gradient_css("viridis", 2)
    'linear-gradient(to right, #440154, #fde725)'
    """
    import matplotlib

    cm = matplotlib.colormaps[cmap]
    stops = ", ".join(to_hex(cm(i / (steps - 1))[:3]) for i in range(steps))
    return f"linear-gradient(to right, {stops})"


def continuous_legend_html(title: str, cmap: str, vmin: float, vmax: float) -> str:
    """A small HTML colour bar with its range, for a map legend.

    Examples
    --------
    >>> "0.10" in continuous_legend_html("ndvi", "RdYlGn", 0.1, 0.9)
    True
    """
    return (
        '<div class="eoai-legend" style="font:12px sans-serif;background:white;padding:4px 6px;'
        'border-radius:4px">'
        f"<b>{title}</b>"
        f'<div style="width:160px;height:10px;background:{gradient_css(cmap)}"></div>'
        f'<div style="display:flex;justify-content:space-between;width:160px">'
        f"<span>{vmin:.2f}</span><span>{vmax:.2f}</span></div></div>"
    )


def png_data_url(rgba: np.ndarray) -> str:
    """Encode an RGBA ``uint8`` image as a ``data:image/png;base64`` URL.

    Examples
    --------
    >>> png_data_url(np.zeros((2, 2, 4), dtype=np.uint8)).startswith("data:image/png;base64,")
    True
    """
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba)).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
