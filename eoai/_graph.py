"""Large objects (models, networks) enter a dask graph once, as one key shared by every chunk task.

A model handed to ``map_blocks`` / ``blockwise`` / ``map_overlap`` as a plain argument is copied
into every task: pickled as one graph, pickle's memo keeps one copy, but the scheduler of
``dask.distributed`` ships each task to a worker on its own, model included (16 chunks of a 175 MB
random forest: 16 x 175 MB to workers of 1.5 GiB, which the nanny restarts). :func:`graph_constant`
turns the object into **one key** instead, to pass as an argument of those calls (dask replaces it
by the object inside each task):

- no ``distributed`` client in use: ``dask.delayed(obj)`` named by its content token (the graph holds
  the object once; the same model gives the same key, so graphs stay deterministic);
- a ``distributed`` client is the scheduler dask would use now: the object is scattered to the
  cluster once (``client.scatter``) and the graph holds only its future, so the graph sent to the
  scheduler stays small (no "Sending large graph" warning) and each worker fetches the model once,
  when its first task needs it (measured faster than broadcasting it to every worker up front).
  Such a graph is computed on that client (the local schedulers do not know its keys).

``distributed`` is never imported here, no cluster is started and the scheduler is not changed.

Examples
--------
>>> import dask.array as da, numpy as np
>>> from eoai._graph import graph_constant
>>> weights = np.arange(3.0)
>>> x = da.ones((4, 3), chunks=(1, 3))
>>> y = x.map_blocks(lambda b, w: b * w, w=graph_constant(weights), meta=np.array((), "f8"))
>>> y.sum().compute().item()
12.0
"""

from __future__ import annotations

import sys
from typing import Any


def active_client() -> Any:
    """The ``distributed`` client that dask would compute with now, or ``None``.

    ``None`` when ``distributed`` has not been imported (it is not imported here), when there is no
    running synchronous client, or when another scheduler is configured (e.g. inside
    ``dask.config.set(scheduler="threads")``).

    Examples
    --------
    >>> import dask
    >>> with dask.config.set(scheduler="threads"):
    ...     active_client() is None
    True
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        client = distributed.default_client()
    except ValueError:  # no client
        return None
    if getattr(client, "asynchronous", False) or getattr(client, "status", None) != "running":
        return None
    import dask.base

    try:
        scheduler = dask.base.get_scheduler()
    except Exception:  # noqa: BLE001 - a misconfigured scheduler is not ours to report here
        return None
    return client if getattr(scheduler, "__self__", scheduler) is client else None


def graph_constant(obj: Any, prefix: str | None = None) -> Any:
    """``obj`` as a single dask graph key, to pass to ``blockwise`` / ``map_blocks`` / ``map_overlap``.

    Parameters
    ----------
    obj
        The object every chunk task needs (a model, a network runner). It must pickle.
    prefix
        Start of the key name (default: the type name in lower case, e.g. ``sklearnmodel``).

    Returns
    -------
    dask.delayed.Delayed or distributed.Future
        A ``Delayed`` holding ``obj`` under a key named by its content token, or, when a
        ``distributed`` client is the active scheduler (:func:`active_client`), the future of
        ``obj`` scattered to the cluster under that key. Dask passes ``obj`` itself to the task.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = graph_constant(np.zeros(3)), graph_constant(np.zeros(3))
    >>> a.key == b.key, a.key.startswith("ndarray-")
    (True, True)
    """
    import dask
    from dask.base import tokenize

    name = prefix or type(obj).__name__.lower().replace("_", "")
    key = f"{name}-{tokenize(obj)}"
    client = active_client()
    if client is not None:
        return client.scatter({key: obj})[key]
    return dask.delayed(obj, name=key, traverse=False)
