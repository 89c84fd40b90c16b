"""``eoai demo``: the flagship report on the embedded sample.

Examples
--------
>>> from eoai.reports.demo import flagship_notebook
>>> flagship_notebook().name
'flagship.ipynb'
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ReportError
from .run import Report, run_report


def flagship_notebook() -> Path:
    """Path of the flagship notebook shipped with eoai (``notebooks/00_flagship_report.ipynb``
    of the repository is an identical copy).

    Examples
    --------
    >>> flagship_notebook().is_file()
    True
    """
    path = Path(__file__).resolve().parent / "notebooks" / "flagship.ipynb"
    if not path.is_file():
        raise ReportError(f"eoai is missing its flagship notebook {path}: reinstall eoai")
    return path


def demo(out: str | Path = "eoai-demo", *, quick: bool = True, progress: bool = True) -> Report:
    """Run the flagship notebook on the embedded sample and write an offline HTML report.

    Parameters
    ----------
    out : str or Path
        Output folder (default ``./eoai-demo``): ``report.html`` and the executed
        ``report.ipynb``.
    quick : bool
        The notebook's quick mode (small and fast).
    progress : bool
        Show papermill's progress bar.

    Returns
    -------
    Report
        Paths of the executed notebook and the HTML report.

    Examples
    --------
    >>> demo("eoai-demo").html.name  # doctest: +SKIP
    'report.html'
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return run_report(
        flagship_notebook(),
        {"quick": quick, "catalog": None},
        out=out,
        name="report",
        cwd=out,
        progress=progress,
    )
