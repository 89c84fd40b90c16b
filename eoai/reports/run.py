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


def _read_notebook(nb_path: Path) -> Any:
    """The notebook at ``nb_path`` (nbformat v4), or an InputError naming the file and the fix."""
    import nbformat

    try:
        return nbformat.read(nb_path, as_version=4)
    except UnicodeDecodeError as err:
        reason = f"it is not UTF-8 text ({err})"
    except nbformat.reader.NotJSONError as err:
        reason = f"it is not JSON ({str(err)[:120]})"
    except OSError as err:
        raise InputError(f"cannot read the notebook {nb_path}: {err}") from None
    except Exception as err:  # noqa: BLE001 - jsonschema ValidationError, NBFormatError, KeyError
        reason = f"it is JSON but not a Jupyter notebook ({type(err).__name__}: {str(err)[:160]})"
    raise InputError(
        f"{nb_path} is not a readable Jupyter notebook: {reason}. Give the path of an .ipynb "
        "file; if it is one, it is corrupt or truncated: restore it, or open it in Jupyter and "
        "save it again"
    )


def notebook_parameters(notebook: str | Path) -> dict[str, str]:
    """The parameters of a notebook: ``{name: default}`` of its cell tagged ``parameters``.

    Parameters
    ----------
    notebook : str or Path
        The ``.ipynb`` file.

    Returns
    -------
    dict
        Names and default values (as written in the cell), in order; empty when no cell is
        tagged ``parameters``.

    Raises
    ------
    eoai.errors.InputError
        The file is missing or not a notebook.

    Examples
    --------
    >>> from eoai.reports.demo import flagship_notebook
    >>> list(notebook_parameters(flagship_notebook()))[:2]
    ['quick', 'catalog']
    """
    nb_path = Path(notebook)
    if not nb_path.is_file():
        raise InputError(f"notebook {notebook} does not exist")
    return _parameters_of(_read_notebook(nb_path), nb_path)


def _parameters_of(nb: Any, nb_path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # not Python: papermill's own parser for the kernel's language
            import papermill as pm

            return {k: v["default"] for k, v in pm.inspect_notebook(str(nb_path)).items()}
        for node in tree.body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign) and node.value is not None
                else []
            )
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        out[name.id] = ast.get_source_segment(cell.source, node.value) or ""
    return out


def _check_parameters(nb_path: Path, nb: Any, parameters: dict[str, Any]) -> None:
    import difflib

    has_params = any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)
    if parameters and not has_params:
        raise InputError(
            f"{nb_path.name} has no cell tagged 'parameters', so {sorted(parameters)} cannot be "
            "injected: tag the cell that defines the defaults with 'parameters' (JupyterLab: "
            "property inspector > cell tags)"
        )
    known = _parameters_of(nb, nb_path)
    unknown = [p for p in parameters if p not in known]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, list(known), n=1)
        if close:
            hints.append(f"{name!r} -> did you mean {close[0]!r}?")
    listed = ", ".join(f"{k} (default {v})" for k, v in known.items()) or "none"
    raise InputError(
        f"{nb_path.name} has no parameter{'s' * (len(unknown) > 1)} "
        f"{', '.join(map(repr, unknown))} (papermill would run "
        f"it with the defaults); its parameters are: {listed}. "
        + (" ".join(hints) + " " if hints else "")
        + "Set one of them (eoai report NOTEBOOK -p NAME VALUE), or add the name to the cell "
        "tagged 'parameters'"
    )


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
        When the notebook is missing or not a notebook (not JSON, truncated), has no
        ``parameters`` cell while parameters are given, or a parameter is not one of the
        notebook's (the message lists them, see :func:`notebook_parameters`).
    eoai.errors.ReportError
        When a cell fails: the message names the cell and the error, and the partial notebook
        is kept in ``out``.

    Examples
    --------
    >>> r = run_report("notebooks/00_flagship_report.ipynb", {"quick": True}, out="eoai-demo")  # doctest: +SKIP
    >>> r.html.name  # doctest: +SKIP
    '00_flagship_report.html'
    """
    import papermill as pm

    nb_path = Path(notebook).resolve()
    if not nb_path.is_file():
        raise InputError(f"notebook {notebook} does not exist")
    if parameters is not None and not isinstance(parameters, dict):
        raise InputError(
            f"parameters must be a dict such as {{'quick': True}}, got {type(parameters).__name__}"
        )
    parameters = dict(parameters or {})
    nb = _read_notebook(nb_path)
    _check_parameters(nb_path, nb, parameters)
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
