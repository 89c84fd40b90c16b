"""Helpers for eoai's tests, importable from any test folder as ``eoai_testing``.

(``tests/`` is on ``sys.path`` because the root conftest lives there; importing from ``conftest`` is
ambiguous once sub-folders have their own conftest.py, so shared helpers live here.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (test servers listen on the loopback interface only)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, timeout: float = 20) -> None:
    """Terminate a test server's process, killing it if it has not exited after ``timeout`` s."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def skip_or_fail(reason: str) -> None:
    """Skip a test that needs a system service, but fail in CI where .ci/run installs it."""
    if IN_CI:
        pytest.fail(f"{reason} (CI installs it in .ci/run, so this is a real failure)")
    pytest.skip(reason)


@contextmanager
def rustac_server(folder: Path, collection: dict, items: list[dict]) -> Iterator[str]:
    """Run ``rustac serve`` on 127.0.0.1 over ``collection`` and ``items``; yield its URL.

    Skips (fails in CI) when rustac is not installed; fails when the server exits or does not
    answer a search within 60 s; stops the server on exit.
    """
    import json
    import shutil
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    local = Path(sys.executable).parent / "rustac"
    exe = str(local) if local.is_file() else shutil.which("rustac")
    if exe is None:
        skip_or_fail("rustac is not installed (pip install rustac)")
    (folder / "collection.json").write_text(json.dumps(collection))
    (folder / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(folder / "rustac.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [exe, "serve", "--addr", f"127.0.0.1:{port}", "collection.json", "items.json"],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"rustac serve exited: {(folder / 'rustac.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/search?limit=1", timeout=2) as resp:
                    if json.load(resp).get("features"):
                        break
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rustac serve did not answer on {url} within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        stop_process(proc, timeout=10)
        log.close()


class ComputeCounter:
    """A dask scheduler that counts how often a graph is computed (synchronously)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, dsk, keys, **kwargs):
        self.count += 1
        return dask.get(dsk, keys, **kwargs)


# Eilers (2003) Whittaker reference outputs in shared_data/reference/whittaker_eilers_data/output:
# file name -> (x given, weights None / "binary" / "random", difference order)
EILERS = {
    "output_only_y_2e4_2": (False, None, 2),
    "output_only_y_2e4_3": (False, None, 3),
    "output_x_and_y_2e4_2": (True, None, 2),
    "output_x_and_y_2e4_3": (True, None, 3),
    "output_x_y_and_random_weights_2e4_2": (True, "random", 2),
    "output_x_y_and_weights_2e4_2": (True, "binary", 2),
    "output_y_with_random_weights_2e4_3": (False, "random", 3),
    "output_y_with_weights_2e4_2": (False, "binary", 2),
}


def eilers_case(shared_data, name):
    """``(y, x or None, weights or None, order, reference output)`` of the Eilers case ``name``."""
    import numpy as np

    folder = shared_data / "reference" / "whittaker_eilers_data"
    x, y, w01, wrand = np.loadtxt(folder / "input" / "nmr_with_weights_and_x.csv", delimiter=",").T
    use_x, weights, order = EILERS[name]
    w = {None: None, "binary": w01, "random": wrand}[weights]
    ref = np.loadtxt(folder / "output" / f"{name}.csv")
    return y, x if use_x else None, w, order, ref


#: Bytes a chunk task may add to a graph when the model is not inside it (a pickled task of eoai's
#: graphs is a few hundred bytes); far smaller than any model the graph tests use.
TASK_ALLOWANCE = 2048


def pickled_tasks(result, skip=None) -> list[int]:
    """Sizes of the tasks of ``result``'s graph pickled one by one, as the scheduler ships them.

    ``skip``: a dask collection (e.g. the input cube) whose own tasks are left out.
    """
    import cloudpickle

    left_out = set(dict(skip.__dask_graph__())) if skip is not None else set()
    graph = dict(result.__dask_graph__())
    return [len(cloudpickle.dumps(t)) for k, t in graph.items() if k not in left_out]


def assert_model_enters_once(few, many, model, inputs=(None, None)) -> None:
    """``model`` is one key of each graph and the graph of ``many`` chunks is not bigger per task.

    ``few`` and ``many`` are the same lazy result over few and many chunks; ``inputs`` the two
    input collections, whose tasks (pixel data) are left out. Exactly one task holds the model (a
    task larger than half the pickled model), and the tasks pickled one by one grow by at most
    :data:`TASK_ALLOWANCE` bytes per extra task, whereas a model copied into every chunk task adds
    its whole size per chunk.
    """
    import pickle

    model_bytes = len(pickle.dumps(model))
    assert model_bytes > 20 * TASK_ALLOWANCE, f"the model ({model_bytes} B) is too small to tell"
    a, b = pickled_tasks(few, inputs[0]), pickled_tasks(many, inputs[1])
    assert len(b) > len(a)
    for sizes in (a, b):
        holders = [s for s in sizes if s > model_bytes / 2]
        assert len(holders) == 1, f"{len(holders)} tasks hold the {model_bytes} B model"
    growth = sum(b) - sum(a)
    assert growth < (len(b) - len(a)) * TASK_ALLOWANCE, (
        f"{len(a)} -> {len(b)} tasks grew the pickled tasks by {growth} B (model {model_bytes} B)"
    )
