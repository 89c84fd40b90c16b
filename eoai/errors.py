"""Exceptions and warnings raised by eoai.

Every exception says what went wrong *and* what to do about it. They all derive from
:class:`EoaiError`, so ``except eoai.errors.EoaiError`` catches anything eoai raises on purpose,
and each also derives from the closest built-in (``ValueError``, ``KeyError``, ``ConnectionError``)
so generic handlers keep working.

Examples
--------
>>> import eoai
>>> try:
...     raise eoai.errors.UnknownBandError("band 'foo' is unknown; available: red, nir")
... except eoai.errors.EoaiError as err:
...     print(err)
band 'foo' is unknown; available: red, nir
"""

from __future__ import annotations


class EoaiError(Exception):
    """Base class of every error raised by eoai."""


class InputError(EoaiError, ValueError):
    """The input data is not what the function needs (dims, dtype, values, parameters)."""


class MissingDimensionError(InputError):
    """A required dimension (``time``, ``x``, ``y``...) is missing."""


class TimeAxisError(InputError):
    """The ``time`` axis is unsorted, has duplicates or is too short."""


class CRSError(InputError):
    """A coordinate reference system is missing or two inputs disagree."""


class UnknownBandError(EoaiError, KeyError):
    """A band or index name is not known; the message lists the available ones."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class CatalogError(EoaiError):
    """A STAC catalog could not be read or searched."""


class CatalogUnreachableError(CatalogError, ConnectionError):
    """A catalog URL could not be reached (after retries); the message names the URL."""


class EmptySearchError(CatalogError, LookupError):
    """A search returned no item; the message repeats the query so it can be widened."""


class NoOverlapError(InputError):
    """A bbox / geometry / set of labels does not intersect the data."""


class ModelError(EoaiError):
    """A model cannot be applied (features, classes, bands or dates do not match)."""


class UntrustedFileError(EoaiError, PermissionError):
    """Loading the file would unpickle code; pass ``trusted=True`` only for files you made."""


class ReportError(EoaiError, RuntimeError):
    """A notebook report failed; the message names the failing cell."""


class EoaiWarning(UserWarning):
    """Base class of eoai warnings (data skipped, counts of pixels left NaN, ...)."""


class DataSkippedWarning(EoaiWarning):
    """Some data was left out or left NaN; the message gives the count."""


class LargeChunkWarning(EoaiWarning):
    """A rechunk produced chunks larger than advisable; the message says how to fix it."""


class FewSamplesWarning(EoaiWarning):
    """A class has fewer training samples (or groups) than advisable; the message gives the counts."""


class ExtrapolationWarning(EoaiWarning):
    """Output values were extrapolated beyond the observations; the message gives the count."""


class WriteError(EoaiError, ValueError):
    """An object cannot be written where or how it was asked (format, dims, target path)."""


class TargetExistsError(WriteError, FileExistsError):
    """The target of a write exists already; the message names it (pass ``overwrite=True``)."""


class ResumeMismatchError(WriteError):
    """An interrupted write at the same path came from another computation; nothing was overwritten."""
