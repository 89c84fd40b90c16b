"""Maps and plots for the notebook: :func:`explore` (ipyleaflet) and HoloViews/Bokeh plots.

Call :func:`notebook` once at the top of a notebook: it loads the Bokeh JavaScript *inline*, so
the plots also render in exported HTML reports with no network.

Examples
--------
>>> import eoai.viz
>>> eoai.viz.notebook()  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_FUNCTIONS = {
    "explore": "eoai.viz.maps",
    "plot_series": "eoai.viz.plots",
    "quicklook": "eoai.viz.plots",
    "plot_phenology": "eoai.viz.plots",
    "plot_confusion_matrix": "eoai.viz.plots",
}

__all__ = ["notebook", *_FUNCTIONS]


def notebook(inline: bool = True) -> None:
    """Set up HoloViews/hvplot with Bokeh in a notebook, JavaScript inlined by default.

    Parameters
    ----------
    inline : bool
        Inline the Bokeh/HoloViews JavaScript in the notebook output (needed for offline HTML
        reports); ``False`` loads it from a CDN.

    Examples
    --------
    >>> import eoai.viz
    >>> eoai.viz.notebook()  # doctest: +SKIP
    """
    import holoviews as hv
    import panel as pn

    pn.config.inline = inline  # panel renders holoviews output: inline its JS and CSS too
    hv.extension("bokeh", inline=inline, logo=False)
    import hvplot.pandas  # noqa: F401  (after the extension, so hvplot does not reload it)
    import hvplot.xarray  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _FUNCTIONS:
        return getattr(import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'eoai.viz' has no attribute {name!r}")
