"""Progress bars for long operations: on in interactive sessions, off in scripts and papermill runs.

``progress=None`` (the default of eoai functions that take it) resolves with :func:`enabled`:

- the ``progress`` option of :func:`eoai.set_options` decides when set;
- environment variable ``EOAI_PROGRESS`` = ``1``/``0`` decides when set;
- on in an interactive IPython/Jupyter session;
- off in papermill / nbclient / ``nbconvert --execute`` runs (their kernels get execute requests
  with ``allow_stdin=False``, or papermill is imported in the process) and in plain scripts.

:func:`bar` returns a tqdm bar (``tqdm.auto``, so a widget in notebooks) writing to stderr, or a
no-op bar when disabled.

Examples
--------
>>> from eoai._progress import bar, enabled
>>> enabled(False), enabled(True)
(False, True)
>>> with bar(3, "demo", enabled=False) as b:
...     b.update(3)
"""

from __future__ import annotations

import os
import sys
from typing import Any


def _ipython_shell() -> Any:
    ip = sys.modules.get("IPython")
    if ip is None:
        return None
    try:
        return ip.get_ipython()
    except Exception:  # noqa: BLE001  (any failure means: not in IPython)
        return None


def in_notebook_kernel() -> bool:
    """Whether this process is a Jupyter kernel (ipykernel), interactive or not.

    Examples
    --------
    >>> in_notebook_kernel()
    False
    """
    shell = _ipython_shell()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def is_batch_run() -> bool:
    """Whether this is a papermill / nbclient run (a notebook executed without a person).

    Examples
    --------
    >>> import sys
    >>> is_batch_run() == ("papermill" in sys.modules)  # outside a kernel only papermill counts
    True
    """
    if "papermill" in sys.modules:
        return True
    shell = _ipython_shell()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    kernel = getattr(shell, "kernel", None)
    # nbclient (papermill, nbconvert --execute) sends every cell with allow_stdin=False;
    # JupyterLab, Notebook and VS Code send allow_stdin=True
    return not bool(getattr(kernel, "_allow_stdin", True))


def enabled(progress: bool | None) -> bool:
    """Resolve a ``progress`` argument: ``True``/``False`` as given, ``None`` from the session.

    Examples
    --------
    >>> enabled(None)  # a doctest is a script, not an interactive session
    False
    """
    if progress is not None:
        return bool(progress)
    from ._options import OPTIONS

    if OPTIONS["progress"] is not None:
        return bool(OPTIONS["progress"])
    env = os.environ.get("EOAI_PROGRESS", "").strip().lower()
    if env in {"1", "true", "yes", "on"}:
        return True
    if env in {"0", "false", "no", "off"}:
        return False
    if is_batch_run():
        return False
    shell = _ipython_shell()
    return shell is not None and type(shell).__name__ in {
        "ZMQInteractiveShell",
        "TerminalInteractiveShell",
    }


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def bar(total: int, desc: str, *, enabled: bool, unit: str = "region", initial: int = 0) -> Any:
    """A progress bar over ``total`` steps (tqdm; a widget in notebooks), or a no-op one.

    Parameters
    ----------
    total
        Number of steps.
    desc
        Text before the bar.
    enabled
        Show it (see :func:`enabled`).
    unit
        Name of one step.
    initial
        Steps already done (e.g. resumed work).

    Returns
    -------
    object
        Has ``update(n)``, ``set_postfix_str(s)``, ``close()`` and works as a context manager.

    Examples
    --------
    >>> import io, contextlib
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     with bar(2, "demo", enabled=True) as b:
    ...         b.update(2)
    >>> "2/2" in err.getvalue()
    True
    """
    if not enabled:
        return _NoBar()
    if in_notebook_kernel():
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr, leave=True)
