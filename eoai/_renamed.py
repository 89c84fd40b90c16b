"""Renamed keyword arguments: old names keep working for one release, with a FutureWarning.

eoai uses one name for one concept across the package (``seed=`` for randomness, ``threads=`` for
threads inside a chunk, ``device=`` for where torch / numba run). A function whose parameter was
renamed is decorated with :func:`renamed_parameters`; a call with the old name still works, warns
once per call with a :class:`FutureWarning` that names the new one (pointing at the user's line),
and a call that passes both names is an error.

Examples
--------
>>> import warnings
>>> from eoai._renamed import renamed_parameters
>>> @renamed_parameters(random_state="seed")
... def draw(n, *, seed=0):
...     return seed
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     draw(3, random_state=7)
7
>>> print(caught[0].message)
draw(random_state=...) is renamed seed=...; random_state= will be removed in the next release
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


def _name(func: Callable[..., Any]) -> str:
    """``Class.method`` / ``Class`` (for ``__init__``) / ``function``, as the user calls it."""
    name = func.__qualname__
    if "<locals>" in name:
        return func.__name__
    return name.removesuffix(".__init__")


def renamed_parameters(**old_to_new: str) -> Callable[[F], F]:
    """Decorate a function whose keyword arguments ``old`` are now called ``new``.

    The wrapped function keeps its signature and docstring (``functools.wraps``), so
    ``help()`` and Jupyter show only the new names.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise InputError(
                        f"{_name(func)}() got both {old}= and {new}=; {old}= is the old name "
                        f"of {new}=: pass only {new}="
                    )
                from ._skipped import user_stacklevel

                warnings.warn(
                    f"{_name(func)}({old}=...) is renamed {new}=...; {old}= will be removed "
                    "in the next release",
                    FutureWarning,
                    stacklevel=user_stacklevel(),
                )
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        wrapper.__eoai_renamed__ = dict(old_to_new)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
