"""A real dask-gateway server on 127.0.0.1 for the cluster tests (the JupyterHub way of getting workers).

``dask-gateway-server`` runs with its local backend (schedulers and workers are processes of this
machine) and the simple password authenticator, on free ports of 127.0.0.1 only. The fixture waits
until its API answers, yields ``(address, password)`` and stops the server afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from eoai_testing import free_port, skip_or_fail, stop_process

PASSWORD = "eoai-test"


@pytest.fixture(scope="session")
def dask_gateway(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """``(URL, password)`` of a running dask-gateway server with a local backend."""
    exe = Path(sys.executable).parent / "dask-gateway-server"
    try:
        import dask_gateway  # noqa: F401
    except ImportError:
        skip_or_fail(
            "dask-gateway is not installed (pip install dask-gateway dask-gateway-server[local])"
        )
    if not exe.is_file():
        skip_or_fail(
            "dask-gateway-server is not installed (pip install dask-gateway-server[local])"
        )
    tmp = tmp_path_factory.mktemp("gateway")
    public, private = free_port(), free_port()
    dask_cli = Path(sys.executable).parent / "dask"
    (tmp / "config.py").write_text(
        f"""
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.address = "127.0.0.1:{private}"
c.Proxy.address = "127.0.0.1:{public}"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = "{PASSWORD}"
c.ClusterConfig.worker_cores = 1
c.ClusterConfig.worker_memory = "1.5 G"
c.ClusterConfig.scheduler_cmd = ["{dask_cli}", "scheduler"]
c.ClusterConfig.worker_cmd = ["{dask_cli}", "worker"]
c.ClusterConfig.idle_timeout = 600
c.UnsafeLocalBackend.cluster_start_timeout = 180
c.UnsafeLocalBackend.worker_start_timeout = 180
"""
    )
    log = open(tmp / "gateway.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [str(exe), "-f", "config.py"], cwd=tmp, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{public}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(
                f"dask-gateway-server did not start: {(tmp / 'gateway.log').read_text()[-2000:]}"
            )
        time.sleep(0.3)
    try:
        yield url, PASSWORD
    finally:
        stop_process(proc, timeout=20)
        log.close()
