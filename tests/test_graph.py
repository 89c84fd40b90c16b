"""eoai._graph: a large object is one graph key (delayed, or scattered with a distributed client)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from dask.delayed import Delayed
from eoai_testing import assert_model_enters_once, pickled_tasks

from eoai._graph import active_client, graph_constant


class Weights:
    """A picklable 'model' of ~400 kB whose prediction is easy to check."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.table = np.arange(50_000, dtype="float64")

    def __call__(self, block: np.ndarray) -> np.ndarray:
        return block * self.scale + self.table[1]


def _apply(block, model):
    return model(block)


def _mapped(x, model):
    return x.map_blocks(_apply, model=graph_constant(model), meta=np.array((), "f8"))


def test_one_key_per_content_and_the_object_reaches_the_tasks():
    model = Weights(2.0)
    a, b, c = graph_constant(model), graph_constant(Weights(2.0)), graph_constant(Weights(3.0))
    assert a.key == b.key != c.key  # named by content: same model, same key
    assert a.key.startswith("weights-")
    x = da.ones((8, 8), chunks=2)
    y = _mapped(x, model)
    np.testing.assert_array_equal(y.compute(scheduler="sync"), np.full((8, 8), 3.0))
    assert [k for k in dict(y.__dask_graph__()) if str(k).startswith("weights-")] == [a.key]


def test_graph_does_not_grow_with_the_number_of_chunks():
    model = Weights(2.0)
    few = _mapped(da.ones((16, 16), chunks=8), model)
    many = _mapped(da.ones((16, 16), chunks=2), model)
    assert many.npartitions == 64 and few.npartitions == 4
    assert_model_enters_once(few, many, model)


def test_distributed_is_never_imported():
    code = (
        "import sys, dask.array as da, numpy as np; from eoai._graph import graph_constant;"
        "k = graph_constant(np.ones(3));"
        "x = da.ones(4, chunks=2).map_blocks(lambda b, w: b + w[0], w=k, meta=np.array(()));"
        "print('distributed' in sys.modules);"
        "assert x.sum().compute(scheduler='sync') == 8.0"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "False"  # eoai._graph looked for a client without importing it


def test_scattered_once_with_a_client_and_not_under_another_scheduler():
    distributed = pytest.importorskip("distributed")
    model = Weights(2.0)
    x = da.ones((16, 16), chunks=4)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        assert active_client() is client
        key = graph_constant(model)
        assert isinstance(key, distributed.Future)
        assert client.who_has([key])[key.key]  # already on the worker
        y = _mapped(x, model)
        assert key.key not in dict(y.__dask_graph__())  # only the future: the graph stays small
        assert max(pickled_tasks(y)) < len(pickle.dumps(model)) / 20
        np.testing.assert_array_equal(y.compute(), np.full((16, 16), 3.0))
        with dask.config.set(scheduler="threads"):
            assert active_client() is None
            local = _mapped(x, model)
            assert isinstance(graph_constant(model), Delayed)
            np.testing.assert_array_equal(local.compute(), np.full((16, 16), 3.0))
    assert active_client() is None
