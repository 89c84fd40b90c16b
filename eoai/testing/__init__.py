"""Testing helpers for code built on eoai (and for eoai's own tests).

:func:`raise_if_dask_computes` checks that a pipeline stays lazy, in the manner of
``cf_xarray.tests.raise_if_dask_computes`` / xarray's own test helper: inside the ``with`` block
every dask compute goes through a scheduler that raises at the offending compute, so the
traceback shows the line that computed. Importing this module imports dask (``import eoai`` does
not import it).

Examples
--------
>>> import dask.array as da, xarray as xr
>>> from eoai.testing import raise_if_dask_computes
>>> x = xr.DataArray(da.ones((4, 4), chunks=2), dims=("y", "x"))
>>> with raise_if_dask_computes():
...     y = (x * 2).mean("x")  # lazy: no compute
>>> with raise_if_dask_computes():  # doctest: +ELLIPSIS
...     float(y.sum())
Traceback (most recent call last):
...
eoai.testing.EagerComputeError: a dask graph was computed 1 time(s) inside raise_if_dask_computes(max_computes=0) ...
>>> with raise_if_dask_computes(max_computes=1) as counter:
...     float(y.sum())
8.0
>>> counter.count
1
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eoai.errors import EoaiError, InputError

__all__ = ["EagerComputeError", "CountingScheduler", "raise_if_dask_computes"]


class EagerComputeError(EoaiError, RuntimeError):
    """A dask graph was computed where the code under test should have stayed lazy."""


class CountingScheduler:
    """A synchronous dask scheduler that counts computes and raises past ``max_computes``.

    Parameters
    ----------
    max_computes : int
        Computes allowed before the next one raises :class:`EagerComputeError` (default 0).
    """

    def __init__(self, max_computes: int = 0) -> None:
        if isinstance(max_computes, bool) or not isinstance(max_computes, int) or max_computes < 0:
            raise InputError(f"max_computes must be an integer >= 0, got {max_computes!r}")
        self.max_computes = max_computes
        self.count = 0

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        import dask

        self.count += 1
        if self.count > self.max_computes:
            raise EagerComputeError(
                f"a dask graph was computed {self.count} time(s) inside "
                f"raise_if_dask_computes(max_computes={self.max_computes}) (the traceback shows "
                "where): keep the computation lazy, or allow it with a larger max_computes"
            )
        return dask.get(dsk, keys, **kwargs)


@contextmanager
def raise_if_dask_computes(max_computes: int = 0) -> Iterator[CountingScheduler]:
    """Raise :class:`EagerComputeError` at the first dask compute beyond ``max_computes``.

    Parameters
    ----------
    max_computes : int
        Computes allowed inside the block (default 0: any compute raises).

    Yields
    ------
    CountingScheduler
        Its ``count`` is the number of computes so far.

    Notes
    -----
    The check replaces the scheduler with dask's synchronous one (``dask.config.set``), so it sees
    ``.compute()``, ``.values``, ``float(...)``, ``dask.compute`` and ``.persist()`` of dask
    collections in this process; code that passes ``scheduler=`` explicitly, or a
    ``dask.distributed.Client``'s own ``compute``, is not intercepted.
    """
    import dask

    scheduler = CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler
