"""Run a notebook as a report: papermill (parameters) then an offline HTML export.

Examples
--------
>>> from eoai.reports import run_report
>>> run_report("notebooks/03_phenology.ipynb", {"quick": True}, out="out")  # doctest: +SKIP
Report(notebook=PosixPath('out/03_phenology.ipynb'), html=PosixPath('out/03_phenology.html'))
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, ReportError
from .html import export_html


@dataclass(frozen=True)
class Report:
    """Paths written by :func:`run_report`."""

    notebook: Path
    html: Path


def parse_value(text: str) -> Any:
    """Turn a command-line parameter value into a Python value.

    Python literals (numbers, ``True``/``False``/``None``, lists, tuples, dicts, quoted
    strings) are parsed; ``true``/``false``/``null`` are accepted too; anything else stays a
    string.

    Examples
    --------
    >>> parse_value("3"), parse_value("0.5"), parse_value("true"), parse_value("None")
    (3, 0.5, True, None)
    >>> parse_value("[16.0, 46.0, 16.1, 46.1]"), parse_value("2019-06-01")
    ([16.0, 46.0, 16.1, 46.1], '2019-06-01')
    """
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"none", "null"}:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _failure_message(err: Exception, nb_path: Path, partial: Path) -> str:
    import nbformat

    cell_index = getattr(err, "cell_index", None)
    exec_count = getattr(err, "exec_count", None)
    ename = getattr(err, "ename", type(err).__name__)
    evalue = getattr(err, "evalue", str(err))
    source = getattr(err, "source", "") or ""
    own = None
    try:  # position in the user's own notebook (papermill adds cells to the executed copy)
        original = nbformat.read(nb_path, as_version=4)
        own = next(
            i
            for i, c in enumerate(original.cells)
            if c.cell_type == "code" and c.source.strip() == source.strip()
        )
    except (StopIteration, OSError, ValueError):
        own = None
    where = []
    if own is not None:
        where.append(f"cell {own} (0-based)")
    elif cell_index is not None:
        where.append(f"cell {cell_index} of the executed notebook")
    if exec_count is not None:
        where.append(f"In [{exec_count}]")
    first_line = next((ln for ln in source.splitlines() if ln.strip()), "")
    return (
        f"notebook {nb_path.name} failed in {', '.join(where) or 'an unknown cell'}"
        + (f": `{first_line.strip()}`" if first_line else "")
        + f"\n{ename}: {evalue}\n"
        f"The partially executed notebook is kept at {partial}"
    )


def run_report(
    notebook: str | Path,
    parameters: dict[str, Any] | None = None,
    out: str | Path | None = None,
    *,
    name: str | None = None,
    cwd: str | Path | None = None,
    hide_code: bool = True,
    kernel_name: str | None = None,
    timeout: float | None = None,
    progress: bool = True,
) -> Report:
    """Execute a notebook with papermill and write the executed notebook and an HTML report.

    Parameters
    ----------
    notebook : str or Path
        Notebook with a cell tagged ``parameters``.
    parameters : dict, optional
        Values injected after the ``parameters`` cell.
    out : str or Path, optional
        Output folder (default ``./eoai-report``); created if needed.
    name : str, optional
        Base name of the outputs (default the notebook's stem).
    cwd : str or Path, optional
        Working directory of the kernel (default the notebook's folder, so relative paths in
        the notebook work).
    hide_code : bool
        Hide code in the HTML report (default), keeping markdown and outputs.
    kernel_name : str, optional
        Jupyter kernel (default the notebook's).
    timeout : float, optional
        Per-cell timeout in seconds.
    progress : bool
        Show papermill's progress bar.

    Returns
    -------
    Report
        ``notebook`` (executed ``.ipynb``) and ``html`` paths.

    Raises
    ------
    eoai.errors.InputError
        When the notebook is missing or has no ``parameters`` cell while parameters are given.
    eoai.errors.ReportError
        When a cell fails: the message names the cell and the error, and the partial notebook
        is kept in ``out``.

    Examples
    --------
    >>> r = run_report("notebooks/00_flagship_report.ipynb", {"quick": True}, out="eoai-demo")  # doctest: +SKIP
    >>> r.html.name  # doctest: +SKIP
    '00_flagship_report.html'
    """
    import nbformat
    import papermill as pm

    nb_path = Path(notebook).resolve()
    if not nb_path.is_file():
        raise InputError(f"notebook {notebook} does not exist")
    parameters = dict(parameters or {})
    nb = nbformat.read(nb_path, as_version=4)
    has_params = any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)
    if parameters and not has_params:
        raise InputError(
            f"{nb_path.name} has no cell tagged 'parameters', so {sorted(parameters)} cannot be "
            "injected: tag the cell that defines the defaults with 'parameters' (JupyterLab: "
            "property inspector > cell tags)"
        )
    out_dir = Path(out if out is not None else "eoai-report").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = name or nb_path.stem
    executed = out_dir / f"{stem}.ipynb"
    html = out_dir / f"{stem}.html"
    try:
        pm.execute_notebook(
            str(nb_path),
            str(executed),
            parameters=parameters,
            cwd=str(Path(cwd).resolve() if cwd else nb_path.parent),
            kernel_name=kernel_name,
            progress_bar=progress,
            execution_timeout=timeout,
            report_mode=False,
        )
    except pm.PapermillExecutionError as err:
        raise ReportError(_failure_message(err, nb_path, executed)) from None
    export_html(executed, html, hide_code=hide_code)
    return Report(notebook=executed, html=html)
