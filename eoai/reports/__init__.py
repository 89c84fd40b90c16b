"""Notebooks as reports: run with papermill, export to a self-contained offline HTML page.

- :func:`run_report` (``eoai report NOTEBOOK -p NAME VALUE --out DIR``);
- :func:`demo` (``eoai demo``): the flagship report on the embedded sample;
- :func:`export_html`: offline HTML (code hidden) from an executed notebook;
- :func:`sentinel1_quicklook`: whether a catalog holds Sentinel-1 over an area and time, and its
  quicklook (dB composite averaged in linear power, a panel per date with its orbit direction).

Examples
--------
>>> import eoai.reports
>>> eoai.reports.demo("eoai-demo")  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_FUNCTIONS = {
    "run_report": "eoai.reports.run",
    "Report": "eoai.reports.run",
    "parse_value": "eoai.reports.run",
    "notebook_parameters": "eoai.reports.run",
    "export_html": "eoai.reports.html",
    "demo": "eoai.reports.demo",
    "flagship_notebook": "eoai.reports.demo",
    "sentinel1_quicklook": "eoai.reports.sentinel1",
    "Sentinel1Quicklook": "eoai.reports.sentinel1",
}

__all__ = list(_FUNCTIONS)


def __getattr__(name: str) -> Any:
    if name in _FUNCTIONS:
        return getattr(import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'eoai.reports' has no attribute {name!r}")
