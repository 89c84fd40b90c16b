"""Package-wide options: ``eoai.set_options(device=, threads=, progress=)``.

Usable globally or as a context manager, in the manner of ``xarray.set_options`` and
``rioxarray.set_options``. An option fills in a function argument left at its default
(``device="auto"``, ``threads=None``, ``progress=None``); an argument passed explicitly always wins.

Options are read **on the client, when an eoai function is called**, and the resolved values are
what enters the dask graph (a device string, a thread count), so workers of a
``dask.distributed`` cluster never read eoai's global state.

- ``device``: ``"auto"`` (the default: a CUDA GPU when torch sees one, else the CPU), ``"cpu"``,
  ``"cuda"`` or ``"cuda:N"``. See :func:`eoai._device.resolve_device`.
- ``threads``: threads one chunk's computation may use (forest ``n_jobs``, OpenMP threads of
  gradient boosting, torch threads of a network); ``None`` (the default) lets each library
  choose. With many dask threads per worker, ``threads=1`` avoids oversubscription.
- ``progress``: ``True`` / ``False`` shows or hides progress bars; ``None`` (the default) decides
  from the session (on in interactive Jupyter, off in scripts and papermill runs).

Examples
--------
>>> import eoai
>>> with eoai.set_options(threads=1, progress=False):
...     eoai.get_options()["threads"]
1
>>> eoai.get_options()["threads"] is None
True
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InputError

_DEFAULTS: dict[str, Any] = {"device": "auto", "threads": None, "progress": None}
OPTIONS: dict[str, Any] = dict(_DEFAULTS)


def _check_device(value: Any) -> None:
    if not isinstance(value, str) or not (
        value in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", value)
    ):
        raise InputError(
            f"set_options: device={value!r} is unknown; use 'auto' (a GPU when present), "
            "'cpu', 'cuda' or 'cuda:N'"
        )


def _check_threads(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InputError(
            f"set_options: threads={value!r} must be a positive integer, or None to let each "
            "library choose"
        )


def _check_progress(value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise InputError(
            f"set_options: progress={value!r} must be True, False or None (from the session)"
        )


_VALIDATORS = {"device": _check_device, "threads": _check_threads, "progress": _check_progress}


class set_options:  # noqa: N801  (a function-like class, as xarray.set_options)
    """Set eoai options globally, or for a ``with`` block.

    Parameters
    ----------
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``: where torch (and the time-series kernels)
        run when a function is called with ``device="auto"``.
    threads
        Threads one chunk may use when a function is called with ``threads=None``.
    progress
        Progress bars on (``True``), off (``False``) or from the session (``None``).

    Examples
    --------
    >>> import eoai
    >>> eoai.set_options(progress=False)  # globally  # doctest: +ELLIPSIS
    <eoai._options.set_options object at ...>
    >>> eoai.set_options(progress=None)  # back to the default  # doctest: +ELLIPSIS
    <eoai._options.set_options object at ...>
    >>> with eoai.set_options(device="cpu"):  # for a block only
    ...     eoai.get_options()["device"]
    'cpu'
    """

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(_DEFAULTS))
        if unknown:
            raise InputError(
                f"set_options: unknown option(s) {unknown}; eoai's options are {sorted(_DEFAULTS)}"
            )
        for name, value in kwargs.items():
            _VALIDATORS[name](value)
        self._old = {name: OPTIONS[name] for name in kwargs}
        OPTIONS.update(kwargs)

    def __enter__(self) -> set_options:
        return self

    def __exit__(self, *exc: Any) -> None:
        OPTIONS.update(self._old)


def get_options() -> dict[str, Any]:
    """A copy of the current eoai options.

    Examples
    --------
    >>> import eoai
    >>> sorted(eoai.get_options())
    ['device', 'progress', 'threads']
    """
    return dict(OPTIONS)


def option_threads(threads: int | None) -> int | None:
    """``threads`` as given, or the ``threads`` option when ``None``.

    Examples
    --------
    >>> with set_options(threads=2):
    ...     option_threads(None), option_threads(4)
    (2, 4)
    """
    return OPTIONS["threads"] if threads is None else threads
