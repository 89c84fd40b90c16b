"""One counted warning per user call for data skipped inside dask chunks (private).

A public function that leaves pixels NaN inside its chunk function (gap-filling, phenology, change)
builds a :class:`SkippedCall` at graph-construction time, wraps its chunk function with
:meth:`SkippedCall.reporter` and passes :meth:`SkippedCall.chunk_ids` as the last argument of
``xr.apply_ufunc``. Inside the chunk the function calls :func:`count`; the wrapper then reports the
chunk's counts, keyed by the chunk's position, instead of warning:

- local schedulers (threads, synchronous, or plain numpy input): an in-process, thread-safe ledger
  sums the counts and, when every chunk of the call has reported, issues ONE warning with the totals
  over all chunks. A second compute of the same lazy object is a new round and warns again. A
  compute of a subset of the chunks (``out.isel(x=slice(0, 10)).compute()``) warns at the end of
  that compute with the totals of the chunks computed, marked ``(partial compute: k of n chunks)``;
- dask.distributed: on a worker the counts go to the client as a ``"eoai-skipped"`` event
  (``Worker.log_event``); the client, subscribed once (``Client.subscribe_topic``) when the graph is
  built under an active client, sums them by call and warns once when every chunk has reported. A
  chunk computed again replaces its earlier counts, so a partial compute followed by a full one gives
  the true totals; counts of a partial compute alone wait until the other chunks are computed or
  :func:`flush` is called. The client must exist when the eoai function is called;
- a chunk run where its call is unknown (the ``"processes"`` scheduler, or a graph built in another
  process) warns by itself with that chunk's counts, so nothing is ever dropped silently.

The warning is attributed to the user's line that called the eoai function and goes through
``warnings.warn_explicit`` with a fresh registry, so every round shows under the default filters
while ``"ignore"``, ``"error"`` and ``"once"`` filters keep working.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import uuid
import warnings
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

import numpy as np
import xarray as xr

from eoai.errors import DataSkippedWarning

__all__ = ["SkippedCall", "count", "flush", "warn_at_user", "user_stacklevel", "TOPIC"]

TOPIC = "eoai-skipped"

Totals = dict[str, dict[str, int]]
Message = Callable[[Totals], "str | None"]

_LOCK = threading.RLock()
_CALLS: weakref.WeakValueDictionary[str, SkippedCall] = weakref.WeakValueDictionary()
_SUBSCRIBED: set[str] = set()
_ACTIVE: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "eoai_skipped_counts", default=None
)
_CALLBACK = None  # the dask local-scheduler callback tuple, built on first use


def count(**counts: int) -> None:
    """Add counts (``left_nan=3, total=100``) for the chunk being processed.

    Only valid inside a function wrapped by :meth:`SkippedCall.reporter`.
    """
    acc = _ACTIVE.get()
    if acc is None:
        raise RuntimeError("eoai._skipped.count() called outside a reporting chunk function")
    for key, value in counts.items():
        acc[key] = acc.get(key, 0) + int(value)


class SkippedCall:
    """The call record of one user call: id, message, category and the chunks that will report.

    Parameters
    ----------
    message : callable
        ``message(totals) -> str or None`` with ``totals[part][key]`` the summed counts; None (or
        an empty string) means there is nothing to warn about. Must be picklable (a module-level
        function or a ``functools.partial`` of one): chunks that run where the call is unknown use
        it to warn by themselves.
    category : type of Warning
        Default :class:`eoai.errors.DataSkippedWarning`.
    """

    def __init__(self, message: Message, category: type[Warning] = DataSkippedWarning) -> None:
        self.id = uuid.uuid4().hex
        self.message = message
        self.category = category
        self.filename, self.lineno, self.module = _user_frame()
        self.expected = 0
        self.sealed = False
        self._reports: dict[int, tuple[str, dict[str, int]]] = {}
        self._source = "local"
        with _LOCK:
            _CALLS[self.id] = self
        _install_local_callback()
        _subscribe_client()

    # -- graph construction ------------------------------------------------------------------
    def chunk_ids(self, da: xr.DataArray, core_dims: list[str] | tuple[str, ...]) -> xr.DataArray:
        """One id per chunk of ``da`` over its non-core dims (pass as the last apply_ufunc input).

        Every non-empty chunk is expected to report once per compute.
        """
        loop = [d for d in da.dims if d not in core_dims]
        if da.chunks is None:
            shape = tuple(da.sizes[d] for d in loop)
            offset = self.expected
            self.expected += int(np.prod(shape, dtype=np.int64) > 0)
            return xr.DataArray(np.broadcast_to(np.int64(offset), shape), dims=loop)
        import dask.array as dsa

        chunks = tuple(da.chunks[da.get_axis_num(d)] for d in loop)
        offset = self.expected
        n_blocks = int(np.prod([len(c) for c in chunks], dtype=np.int64))
        self.expected += sum(
            1 for idx in np.ndindex(*[len(c) for c in chunks]) if all(c[i] for c, i in zip(chunks, idx, strict=True))
        ) if n_blocks else 0  # fmt: skip
        data = dsa.map_blocks(
            _ids_block,
            chunks=chunks,
            dtype=np.int64,
            meta=np.empty((0,) * len(loop), np.int64),
            name=f"eoai-chunk-ids-{self.id}-{offset}",
            offset=offset,
        )
        return xr.DataArray(data, dims=loop)

    def reporter(self, func: Callable, part: str = "") -> ChunkReporter:
        """``func`` wrapped to report its :func:`count` calls for chunk ``ids`` (its last arg)."""
        return ChunkReporter(func, _Token(self.id, self.message, self.category, self), part)

    def seal(self) -> None:
        """Graph construction is over: no more chunks; warn now if every chunk already reported
        (numpy input, computed during the call)."""
        with _LOCK:
            self.sealed = True
            done = self._complete()
        if done is not None:
            self._emit(*done)

    # -- reports -----------------------------------------------------------------------------
    def _add(self, chunk: int, part: str, counts: dict[str, int], source: str) -> None:
        with _LOCK:
            self._source = source
            self._reports[chunk] = (part, dict(counts))
            done = self._complete()
        if done is not None:
            self._emit(*done)

    def _complete(self) -> tuple[Totals, str] | None:
        """Pop the round if complete (lock held)."""
        if not self.sealed or len(self._reports) < self.expected:
            return None
        return self._pop(partial=False)

    def _pop(self, partial: bool) -> tuple[Totals, str]:
        totals: Totals = {}
        for part, counts in self._reports.values():
            dst = totals.setdefault(part, {})
            for key, value in counts.items():
                dst[key] = dst.get(key, 0) + value
        note = (
            f" (partial compute: {len(self._reports)} of {self.expected} chunks)" if partial else ""
        )
        self._reports = {}
        return totals, note

    def _emit(self, totals: Totals, note: str) -> None:
        text = self.message(totals)
        if text:
            warnings.warn_explicit(
                text + note, self.category, self.filename, self.lineno, module=self.module
            )


class _Token:
    """What travels with the graph: the call id, its message and category (picklable).

    In the process that built the graph it also holds the call itself, so that the call (kept in a
    weak registry) lives as long as the lazy result; the call is not pickled.
    """

    __slots__ = ("id", "message", "category", "call")

    def __init__(
        self, call_id: str, message: Message, category: type[Warning], call: SkippedCall | None
    ) -> None:
        self.id, self.message, self.category, self.call = call_id, message, category, call

    def __getstate__(self) -> tuple:
        return (self.id, self.message, self.category)

    def __setstate__(self, state: tuple) -> None:
        self.id, self.message, self.category = state
        self.call = None

    def __dask_tokenize__(self) -> str:
        return self.id


class ChunkReporter:
    """A chunk function whose :func:`count` calls are reported for its chunk (see module doc)."""

    def __init__(self, func: Callable, token: _Token, part: str) -> None:
        self.func, self.token, self.part = func, token, part

    def __dask_tokenize__(self) -> tuple:
        return ("eoai-chunk-reporter", self.token.id, self.part)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ids = np.asarray(args[-1])
        acc: dict[str, int] = {}
        reset = _ACTIVE.set(acc)
        try:
            result = self.func(*args[:-1], **kwargs)
        finally:
            _ACTIVE.reset(reset)
        if ids.size:  # empty blocks (dask's meta inference) report nothing
            _report(self.token, int(ids.flat[0]), self.part, acc)
        return result


def _ids_block(*, block_info: dict[Any, dict[str, Any]], offset: int) -> np.ndarray:
    # dask.array.map_blocks passes block_info (it is in the signature); its None entry is the output's
    info = block_info[None]
    linear = offset + int(np.ravel_multi_index(info["chunk-location"], info["num-chunks"]))
    return np.broadcast_to(np.int64(linear), tuple(info["chunk-shape"]))


def _report(token: _Token, chunk: int, part: str, counts: dict[str, int]) -> None:
    worker = _current_worker()
    if worker is not None:
        text = token.message({part: counts})
        worker.log_event(
            TOPIC,
            {"call": token.id, "chunk": chunk, "part": part, "counts": counts,
             "fallback": f"{text} (one chunk)" if text else ""},
        )  # fmt: skip
        return
    with _LOCK:
        call = _CALLS.get(token.id)
    if call is None:
        text = token.message({part: counts})
        if text:
            warnings.warn(f"{text} (one chunk)", token.category, stacklevel=2)
        return
    call._add(chunk, part, counts, "local")


def _current_worker() -> Any:
    dist = sys.modules.get("distributed")
    if dist is None:
        return None
    try:
        return dist.get_worker()
    except ValueError:
        return None


def _on_event(event: tuple[float, dict]) -> None:
    """Client-side handler of the ``"eoai-skipped"`` topic."""
    _, msg = event
    with _LOCK:
        call = _CALLS.get(msg.get("call", ""))
    if call is None:
        if msg.get("fallback"):
            warnings.warn(msg["fallback"], DataSkippedWarning, stacklevel=2)
        return
    counts = {str(k): int(v) for k, v in msg["counts"].items()}
    call._add(int(msg["chunk"]), str(msg["part"]), counts, "distributed")


def _subscribe_client() -> None:
    """Subscribe the active dask.distributed client (if any) to the topic, once per client."""
    dist = sys.modules.get("distributed")
    if dist is None:
        return
    try:
        client = dist.default_client()
    except ValueError:
        return
    with _LOCK:
        if client.id in _SUBSCRIBED:
            return
        _SUBSCRIBED.add(client.id)
    client.subscribe_topic(TOPIC, _on_event)


def flush(source: str | None = None) -> None:
    """Warn now for every call with counts reported but not all its chunks (a partial compute).

    Parameters
    ----------
    source : {"local", "distributed"}, optional
        Only the calls whose last report came from there (default: all).
    """
    pending = []
    with _LOCK:
        for call in list(_CALLS.values()):
            if call.sealed and call._reports and (source is None or call._source == source):
                pending.append((call, call._pop(partial=True)))
    for call, (totals, note) in pending:
        call._emit(totals, note)


def _finish(dsk: Any, state: Any, errored: bool) -> None:
    flush("local")


def _install_local_callback() -> None:
    """Make sure the dask local-scheduler finish callback (warns for partial computes) is active.

    Checked at every call: ``dask.callbacks.local_callbacks`` swaps ``Callback.active`` out during a
    compute, so a callback added then would not stay.
    """
    global _CALLBACK
    from dask.callbacks import Callback

    if _CALLBACK is None:
        _CALLBACK = (None, None, None, None, _finish)
    if _CALLBACK not in Callback.active:
        Callback.active.add(_CALLBACK)


def warn_at_user(text: str, category: type[Warning] = DataSkippedWarning) -> None:
    """Warn now, attributed to the user's line that called eoai (not to an eoai frame)."""
    filename, lineno, module = _user_frame()
    warnings.warn_explicit(text, category, filename, lineno, module=module)


#: Files under this folder are eoai's own frames, which warnings never point at.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _in_eoai(frame: Any) -> bool:
    return frame.f_code.co_filename.startswith(_PACKAGE_DIR)


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a ``warnings.warn`` in the calling function point at the
    first frame outside the eoai package (the user's line), whether the user called the public
    function directly, through the ``.eoai`` accessor, or through other eoai functions.

    Use as ``warnings.warn(text, Category, stacklevel=user_stacklevel())``.
    """
    # the function that calls warnings.warn: stacklevel 1
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and _in_eoai(frame):
        frame = frame.f_back
        level += 1
    return level


def _user_frame() -> tuple[str, int, str]:
    """File, line and module of the first caller outside eoai (where the warning points)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if not _in_eoai(frame):
            return frame.f_code.co_filename, frame.f_lineno, frame.f_globals.get("__name__", "")
        frame = frame.f_back
    return "<eoai>", 0, "eoai"
