"""The scale of a production run, measured on a ``distributed.LocalCluster`` of processes.

A Sentinel-2-like cube (``red``, ``nir``, ``swir16``; 73 dates of 2021, every 5 days; clouds as NaN;
parcels of four land-cover classes with double-logistic phenologies) is generated lazily, block by
block, from a seed and the block's position, so it is the same in every process and every run and
never exists in memory at once. By default it is >= 10 x one worker's memory limit. It goes through
the pipeline of a land-cover / phenology study:

``index("ndvi") -> gapfill("whittaker", freq="10D") -> phenology()`` and
``classify(random forest on the gap-filled NDVI)`` -> ``eoai.write`` of both to one Zarr store

on ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=...)``. It prints

- the graph (tasks, pickled size) and, from the scheduler's task stream, the time per task and the
  scheduler's overhead per task (wall x threads - compute time, per task);
- throughput per core of each stage (measured by computing the stages cumulatively on a subset of
  the cube, reduced to a scalar so nothing is kept);
- the peak memory (RSS the scheduler reports) of each worker during the full run, against the limit;
- the digest (sha256 of every array written, in chunk order) of an uninterrupted run, and of a run
  during which one worker process is killed by its PID (SIGKILL) mid-run: the two must be equal;
- a projection of the wall time of the same pipeline for a full Sentinel-2 tile.

Run: ``.venv/bin/python benchmarks/bench_scale.py`` (about 15 min on two idle cores) or
``--size 1024`` for a quick look. Results go to ``benchmarks/README.md`` ("Scale").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

BANDS = ("red", "nir", "swir16")
#: class -> (sos day, eos day, base ndvi, amplitude); crops, grass, forest, bare
CLASSES = {
    1: (120.0, 230.0, 0.15, 0.70),
    2: (80.0, 290.0, 0.35, 0.40),
    3: (100.0, 300.0, 0.55, 0.30),
    4: (0.0, 0.0, 0.10, 0.0),
}
PARCEL = 32  # parcel size in pixels


def _class_of(iy: np.ndarray, ix: np.ndarray, seed: int) -> np.ndarray:
    """Class code of each parcel from a hash of its position (deterministic, no RNG state)."""
    h = (iy.astype(np.uint64) * np.uint64(73856093)) ^ (ix.astype(np.uint64) * np.uint64(19349663))
    h ^= np.uint64(seed) * np.uint64(83492791)
    return (h % np.uint64(4)).astype(np.int64) + 1


def _block(n_dates: int, y0: int, y1: int, x0: int, x1: int, seed: int) -> np.ndarray:
    """One (band, time, y, x) float32 block of the cube, from the seed and the block's position."""
    days = np.arange(n_dates, dtype=np.float64) * 5.0 + 1.0
    yy, xx = np.meshgrid(np.arange(y0, y1), np.arange(x0, x1), indexing="ij")
    cls = _class_of(yy // PARCEL, xx // PARCEL, seed)
    params = np.array([CLASSES[c] for c in sorted(CLASSES)])[cls - 1]  # (ny, nx, 4)
    sos, eos, base, amp = (params[..., i] for i in range(4))
    rng = np.random.default_rng([seed, y0, x0])
    jitter = rng.normal(0.0, 6.0, size=(2, *cls.shape))
    t = days[:, None, None]
    ndvi = base + amp * (
        1.0 / (1.0 + np.exp(-0.08 * (t - sos - jitter[0])))
        - 1.0 / (1.0 + np.exp(-0.08 * (t - eos - jitter[1])))
    )
    ndvi = np.clip(ndvi + rng.normal(0.0, 0.02, size=ndvi.shape), -0.2, 0.95)
    red = 0.12 - 0.09 * ndvi
    nir = red * (1.0 + ndvi) / (1.0 - ndvi)
    swir = 0.30 - 0.15 * ndvi
    out = np.stack([red, nir, swir]).astype(np.float32)
    # clouds: on 35 % of the dates a disc covering part of the block
    cloudy = rng.random(n_dates) < 0.35
    cy, cx = rng.uniform(y0, y1, n_dates), rng.uniform(x0, x1, n_dates)
    r = rng.uniform(0.2, 0.6, n_dates) * (y1 - y0)
    for k in np.flatnonzero(cloudy):  # one vectorised disc per cloudy date, not a loop over pixels
        out[:, k][:, (yy - cy[k]) ** 2 + (xx - cx[k]) ** 2 < r[k] ** 2] = np.nan
    return out


def make_cube(size: int, n_dates: int = 73, chunk: int = 256, seed: int = 0) -> xr.Dataset:
    """A lazy ``size`` x ``size`` cube (EPSG:32633, 10 m) built block by block by ``_block``."""
    import dask.array as da
    import odc.geo.xr  # noqa: F401  (registers .odc)

    chunks = ((len(BANDS),), (n_dates,), da.core.normalize_chunks(chunk, (size,))[0],
              da.core.normalize_chunks(chunk, (size,))[0])  # fmt: skip

    def gen(block_info=None):
        (_, _), (_, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        return _block(n_dates, y0, y1, x0, x1, seed)

    arr = da.map_blocks(gen, chunks=chunks, dtype=np.float32, name=f"s2like-{size}-{chunk}-{seed}")
    time_ = pd.Timestamp("2021-01-01") + pd.to_timedelta(np.arange(n_dates) * 5, unit="D")
    x = 500000.0 + 10.0 * np.arange(size) + 5.0
    y = 5100000.0 - 10.0 * np.arange(size) - 5.0
    ds = xr.Dataset(
        {b: (("time", "y", "x"), arr[i]) for i, b in enumerate(BANDS)},
        coords={"time": time_, "y": y, "x": x},
    )
    for b in BANDS:
        ds[b].attrs["units"] = "1"
    return ds.odc.assign_crs("EPSG:32633")


def train_forest(ndvi_filled: xr.DataArray, seed: int = 0):
    """A random forest on the gap-filled NDVI of the cube's first block (labels from the generator)."""
    import eoai.ml
    from eoai.ml.features import feature_names

    chunk = ndvi_filled.chunks[1][0]
    sub = ndvi_filled.isel(y=slice(0, chunk), x=slice(0, chunk)).compute(scheduler="threads")
    yy, xx = np.meshgrid(np.arange(chunk), np.arange(chunk), indexing="ij")
    labels = _class_of(yy // PARCEL, xx // PARCEL, seed)
    names = feature_names(sub.to_dataset(name="ndvi"))
    X = sub.transpose("y", "x", "time").values.reshape(-1, sub.sizes["time"])
    keep = np.isfinite(X).all(axis=1)
    rng = np.random.default_rng(seed)
    idx = rng.choice(np.flatnonzero(keep), size=min(20000, int(keep.sum())), replace=False)
    samples = pd.DataFrame(X[idx], columns=names)
    samples["label"] = labels.ravel()[idx]
    return eoai.ml.fit(samples, "rf", n_estimators=50, max_depth=12, threads=1)


def pipeline(cube: xr.Dataset, model=None):
    """index -> gapfill -> phenology, and classify; returns (filled, pheno, classes, model)."""
    ndvi = cube.eoai.index("ndvi")
    filled = ndvi.eoai.gapfill("whittaker", freq="10D")
    pheno = filled.eoai.phenology(threshold=0.5)
    if model is None:
        model = train_forest(filled)
    classes = filled.to_dataset(name="ndvi").eoai.classify(model, uncertainty=None, threads=1)
    return filled, pheno, classes, model


def _graph_stats(objs) -> tuple[int, int]:
    import cloudpickle

    graph: dict = {}
    for o in objs:
        graph.update(dict(o.__dask_graph__()))
    return len(graph), len(cloudpickle.dumps(graph))


def digest(path: Path) -> str:
    """sha256 of every array of a Zarr store, variable by variable, read chunk by chunk."""
    ds = xr.open_zarr(path, consolidated=True)
    h = hashlib.sha256()
    for name in sorted(ds.data_vars):
        var = ds[name]
        h.update(name.encode())
        for block in var.data.to_delayed().ravel():
            h.update(np.ascontiguousarray(block.compute(scheduler="sync")).tobytes())
    return h.hexdigest()


class MemoryWatch:
    """Peak RSS of each worker, polled from the scheduler's heartbeat metrics."""

    def __init__(self, client, every: float = 0.25) -> None:
        self.client, self.every, self.peak = client, every, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for w in self.client.scheduler_info(n_workers=-1)["workers"].values():
                    mem = w["metrics"]["memory"]
                    name = str(w.get("name", w["id"]))
                    self.peak[name] = max(self.peak.get(name, 0), mem)
            except Exception:  # noqa: BLE001 - a worker restarting between two polls
                pass
            self._stop.wait(self.every)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _write(obj, path: Path, progress: bool = False) -> None:
    import eoai

    if hasattr(eoai, "write"):
        eoai.write(obj, path, overwrite=True, progress=progress)
    else:  # before eoai.write existed
        obj.to_zarr(path, mode="w", consolidated=True)


def run_full(client, cube, model, out: Path, kill_after: float | None = None) -> dict:
    """The whole pipeline written to Zarr; optionally SIGKILL one worker ``kill_after`` s in."""
    _, pheno, classes, _ = pipeline(cube, model)
    killed: dict = {}
    finished = threading.Event()
    if kill_after is not None:
        pids = client.run(os.getpid)

        def killer() -> None:
            if finished.wait(kill_after):  # the run ended first: nothing to kill
                return
            addr, pid = sorted(pids.items())[0]
            os.kill(pid, signal.SIGKILL)
            killed.update(addr=addr, pid=pid, at=kill_after)

        threading.Thread(target=killer, daemon=True).start()
    # one store, one computation: the class map and the phenology share each region's gap-filled
    # NDVI instead of generating and gap-filling the cube twice (two writes = two computations)
    maps = xr.merge([pheno, classes], combine_attrs="drop_conflicts")
    client.get_task_stream()  # reset
    t0 = time.perf_counter()
    with MemoryWatch(client) as mem:
        _write(maps, out / "maps.zarr")
    finished.set()
    wall = time.perf_counter() - t0
    if kill_after is not None and not killed:
        print(f"warning: the run ended ({wall:.0f} s) before the kill at {kill_after:.0f} s")
    return {"wall_s": wall, "peak_rss": dict(mem.peak), "killed": killed,
            "digest": {"maps.zarr": digest(out / "maps.zarr")}}  # fmt: skip


def workers_cpu_s(client) -> float:
    """CPU seconds (user + system) used so far by all worker processes."""

    def cpu() -> float:
        import psutil

        t = psutil.Process().cpu_times()
        return t.user + t.system

    return sum(client.run(cpu).values())


def stage_throughput(client, cube, model) -> list[dict]:
    """Stages computed cumulatively, reduced to a scalar (nothing kept): px per worker CPU-second.

    Each row computes its stage and everything before it; its own cost is its workers' CPU time
    less that of the stage it builds on (phenology and classify both build on the gap-filled
    NDVI). CPU time, not wall time: the figures do not depend on other load on the machine.
    """
    filled, pheno, classes, _ = pipeline(cube, model)
    n_px = cube.sizes["y"] * cube.sizes["x"]
    steps = [  # (name, expression, index of the row it builds on)
        ("generate", cube["red"].isnull().sum(), None),
        ("index (ndvi)", cube.eoai.index("ndvi").isnull().sum(), 0),
        ("gapfill (whittaker, 10D)", filled.isnull().sum(), 1),
        ("phenology", pheno["sos"].isnull().sum(), 2),
        ("classify (rf, 50 trees)", (classes["class"] == 255).sum(), 2),
    ]
    rows: list[dict] = []
    for name, expr, base in steps:
        c0, t0 = workers_cpu_s(client), time.perf_counter()
        client.compute(expr.data).result()
        wall, cpu = time.perf_counter() - t0, workers_cpu_s(client) - c0
        own = max(cpu - (rows[base]["cumulative_cpu_s"] if base is not None else 0.0), 1e-9)
        rows.append({"stage": name, "wall_s": wall, "cumulative_cpu_s": cpu, "cpu_s": own,
                     "px_per_cpu_s": n_px / own})  # fmt: skip
    return rows


def task_overhead(client, objs, n_threads: int) -> dict:
    """Run ``objs`` once and read the task stream: compute time and idle time per task."""
    from dask.distributed import wait

    client.get_task_stream()
    t0 = time.perf_counter()
    futures = client.compute([o.data for o in objs])
    wait(futures)
    wall = time.perf_counter() - t0
    stream = client.get_task_stream()
    busy = sum(
        s["stop"] - s["start"] for t in stream for s in t["startstops"] if s["action"] == "compute"
    )
    n = len(stream)
    del futures
    return {"tasks": n, "wall_s": wall, "compute_s_per_task": busy / max(n, 1),
            "overhead_s_per_task": max(wall * n_threads - busy, 0.0) / max(n, 1)}  # fmt: skip


def scheduler_rate(client, n_tasks: int = 4000) -> float:
    """Seconds of scheduler time per task: a graph of ``n_tasks`` trivial tasks, wall / tasks."""
    import dask.array as da

    x = da.ones(n_tasks, chunks=1).sum()  # n_tasks leaves + a tree reduction
    n = len(x.__dask_graph__())
    t0 = time.perf_counter()
    client.compute(x).result()
    return (time.perf_counter() - t0) / n


def project(
    px_per_s_per_core: float, worker_overhead_s: float, sched_s_per_task: float, tasks_per_px: float
) -> list[dict]:
    """Wall time of the pipeline for a full Sentinel-2 tile (10980^2 px, 70 dates) on W workers.

    Workers share the compute and their own per-task overhead; the one scheduler handles every
    task serially, so the wall time is ``max(work / W, tasks x scheduler time per task)``. The
    per-pixel cost is scaled by 70 / 73 dates; reading the tile (10 bands from object storage) is
    not included: measured separately by ``bench_load.py``.
    """
    px = 10980**2
    tasks = px * tasks_per_px
    rows = []
    for workers in (8, 32, 128):
        compute_s = px / (px_per_s_per_core * workers) * (70 / 73)
        worker_s = tasks * worker_overhead_s / workers
        sched_s = tasks * sched_s_per_task
        wall = max(compute_s + worker_s, sched_s)
        rows.append({"workers": workers, "hours": wall / 3600.0, "compute_s": compute_s,
                     "overhead_s": worker_s, "scheduler_s": sched_s, "tasks": tasks})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=3584, help="pixels per side (default 3584)")
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--memory-limit", default="1GiB")
    parser.add_argument(
        "--stage-size", type=int, default=1024, help="side of the throughput subset"
    )
    parser.add_argument("--kill-after", type=float, default=None,
                        help="seconds into the killed run (default: a third of the first run)")  # fmt: skip
    parser.add_argument("--out", default=None, help="folder for the stores (default: a temp dir)")
    parser.add_argument("--killed-only", metavar="DIGEST", default=None,
                        help="only the run with a killed worker (--kill-after seconds in), its "
                        "digest compared with DIGEST, that of an uninterrupted run")  # fmt: skip
    args = parser.parse_args()
    if args.killed_only and not args.kill_after:
        parser.error("--killed-only needs --kill-after SECONDS")

    import dask
    from dask.distributed import Client, LocalCluster
    from dask.utils import parse_bytes

    import eoai  # noqa: F401  (registers .eoai)

    cube = make_cube(args.size, chunk=args.chunk)
    nbytes = sum(v.nbytes for v in cube.data_vars.values())
    limit = parse_bytes(args.memory_limit)
    print(f"cube: {dict(cube.sizes)} {len(BANDS)} bands float32 = {nbytes / 2**30:.2f} GiB "
          f"= {nbytes / limit:.1f} x the worker memory limit ({args.memory_limit})")  # fmt: skip
    out = Path(args.out or tempfile.mkdtemp(prefix="eoai-scale-"))
    with dask.config.set({"distributed.worker.daemon": False}), LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit=args.memory_limit,
        dashboard_address=None,
    ) as cluster, Client(cluster) as client:  # fmt: skip
        n_cores = 2
        t0 = time.perf_counter()
        _, _, _, model = pipeline(cube)
        print(f"forest trained on one block in {time.perf_counter() - t0:.1f} s")
        # warm-up: imports and numba's cache loads on every worker, out of the measured runs
        tiny = cube.isel(y=slice(0, args.chunk), x=slice(0, 2 * args.chunk))
        _, p_tiny, c_tiny, _ = pipeline(tiny, model)
        client.compute([p_tiny["sos"].isnull().sum().data, c_tiny["class"].sum().data], sync=True)
        if args.killed_only:
            run = run_full(client, cube, model, out / "killed", kill_after=args.kill_after)
            digest_ = run["digest"]["maps.zarr"]
            print(
                f"run with a worker killed at {args.kill_after:.0f} s (pid "
                f"{run['killed'].get('pid')}): {run['wall_s']:.0f} s, peak RSS per worker "
                + ", ".join(f"{v / 2**20:.0f} MiB" for v in run["peak_rss"].values())
                + f"; digest {digest_}; equal to the uninterrupted run's: "
                f"{digest_ == args.killed_only}"
            )
            return
        _, pheno, classes, _ = pipeline(cube, model)
        n_tasks, graph_bytes = _graph_stats([pheno, classes])
        print(f"graph: {n_tasks} tasks, {graph_bytes / 2**20:.1f} MiB pickled "
              f"({graph_bytes / n_tasks:.0f} B per task)")  # fmt: skip

        sub = cube.isel(y=slice(0, args.stage_size), x=slice(0, args.stage_size))
        stages = stage_throughput(client, sub, model)
        for r in stages:
            print(f"  {r['stage']:<28} {r['cpu_s']:7.1f} CPU s  "
                  f"{r['px_per_cpu_s']:>12,.0f} px per CPU-second")  # fmt: skip
        _, p_sub, c_sub, _ = pipeline(sub, model)
        ovh = task_overhead(client, [p_sub["sos"], c_sub["class"]], n_cores)
        print(f"task stream ({args.stage_size} px subset): {ovh['tasks']} tasks, "
              f"{ovh['compute_s_per_task'] * 1e3:.1f} ms compute / task, "
              f"{ovh['overhead_s_per_task'] * 1e3:.1f} ms overhead / task")  # fmt: skip

        sched = scheduler_rate(client)
        print(f"scheduler: {sched * 1e3:.2f} ms per trivial task")
        first = run_full(client, cube, model, out / "run1")
        print(
            f"full run: {first['wall_s']:.0f} s, peak RSS per worker (limit "
            f"{limit / 2**20:.0f} MiB): "
            + ", ".join(f"{v / 2**20:.0f} MiB" for v in first["peak_rss"].values())
        )
        kill_after = args.kill_after or first["wall_s"] / 3
        second = run_full(client, cube, model, out / "run2", kill_after=kill_after)
        print(
            f"run with a worker killed at {kill_after:.0f} s (pid {second['killed'].get('pid')}):"
            f" {second['wall_s']:.0f} s; digests equal: {first['digest'] == second['digest']}"
        )
        print(json.dumps(first["digest"], indent=1))

    px_rate = args.stage_size**2 / sum(r["cpu_s"] for r in stages)
    # tasks of the full run per pixel (its chunking, not the subset's)
    tasks_per_px = n_tasks / args.size**2
    print(f"whole pipeline: {px_rate:,.0f} px/s/core; {tasks_per_px * 1e6:.0f} tasks per Mpx; "
          f"scheduler {sched * 1e3:.2f} ms per task")  # fmt: skip
    for r in project(px_rate, ovh["overhead_s_per_task"], sched, tasks_per_px):
        print(
            f"  full S2 tile on {r['workers']:>3} workers: {r['hours'] * 60:.1f} min "
            f"(compute {r['compute_s'] / 60:.1f} min + worker overhead "
            f"{r['overhead_s'] / 60:.2f} min; scheduler {r['scheduler_s'] / 60:.2f} min "
            f"for {r['tasks']:,.0f} tasks)"
        )


if __name__ == "__main__":
    main()
