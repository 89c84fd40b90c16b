"""Benchmark eoai.load: throughput against plain rasterio windowed reads, and peak memory.

1. **Throughput.** The real Sentinel-2 L2A tiles of ``../shared/data/earthsearch_l2a`` (10 items,
   bands B02 B03 B04 B08 and SCL, 915 x 915 px at 120 m) are rewritten once as local COGs
   (deflate, 256 x 256 tiles) with STAC items describing them as the real items do (projection,
   raster and eo extensions). The same window of every file is then read (a) with
   ``eoai.load(items, bands, geobox=<that window>, mask=None, groupby="time")`` (default chunks)
   computed with dask, and (b) with ``rasterio`` windowed reads, each window converted the same
   way (``DN * 1e-4`` as float32, nodata 0 -> NaN) and stacked per tile and band in time order.
   Both sides use the same number of threads (``--threads``, default 1 and 2: dask's synchronous
   scheduler or ``num_workers`` threads; a loop or a ``ThreadPoolExecutor`` over the items).
   With ``--masked`` the same is repeated with ``mask="auto"`` (the SCL band, eoai's default
   classes) against rasterio reading the SCL window once per item and ``np.isin``. The outputs
   are checked equal pixel for pixel (NaNs included) before timing; timings are interleaved and
   the best of ``--repeat`` is kept. Throughput is MB/s of source pixels for both, and their
   ratio (goal >= 0.8).
2. **Memory.** A cube over the whole tiles, chunked so it is at least 10x larger than one chunk,
   is reduced chunk by chunk (mean over time and space per band); the peak of ``tracemalloc``
   (numpy buffers included) is compared with the size of the cube and of one chunk.

Run from the project root: ``.venv/bin/python benchmarks/bench_load.py [--repeat 3] [--masked]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "earthsearch_l2a" / "sentinel-2-l2a"
BANDS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}
MASK = {"scl": "SCL"}  # Sentinel-2 scene classification, for the masked runs
SCL_INVALID = (0, 1, 3, 8, 9, 10)  # eoai's default SCL mask: no data, defective, shadow, clouds


def make_cogs(out: Path) -> list:
    """Rewrite the real tiles as local COGs and return pystac items describing them."""
    import pystac
    import rasterio

    items = []
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="FALSE"):
        for folder in sorted(p for p in DATA.iterdir() if p.is_dir()):
            meta = json.loads(next(folder.glob("*_L2A.json")).read_text())
            dst_dir = out / folder.name
            dst_dir.mkdir(parents=True)
            assets = {}
            for name, stem in {**BANDS, **MASK}.items():
                dtype = "uint8" if name in MASK else "uint16"
                with rasterio.open(folder / f"{stem}.tif") as src:
                    data = src.read(1).astype(dtype)
                    profile = dict(
                        driver="COG",
                        dtype=dtype,
                        count=1,
                        width=src.width,
                        height=src.height,
                        crs=src.crs,
                        transform=src.transform,
                        nodata=0,
                        compress="deflate",
                        blocksize=256,
                    )
                    transform = src.transform
                    shape = [src.height, src.width]
                path = dst_dir / f"{stem}.tif"
                with rasterio.open(path, "w", **profile) as dst:
                    dst.write(data, 1)
                assets[name] = pystac.Asset(
                    path.as_uri(),
                    media_type=pystac.MediaType.COG,
                    roles=["data"],
                    extra_fields={
                        "proj:shape": shape,
                        "proj:transform": list(transform)[:6],
                        "raster:bands": [
                            {"nodata": 0, "data_type": "uint8"}
                            if name in MASK
                            else {"nodata": 0, "data_type": "uint16", "scale": 1e-4}
                        ],
                        "eo:bands": [{"name": stem, "common_name": name}],
                    },
                )
            props = dict(meta["properties"])
            when = datetime.fromisoformat(props.pop("datetime").replace("Z", "+00:00"))
            item = pystac.Item(
                meta["id"],
                meta["geometry"],
                meta["bbox"],
                when,
                props,
                collection="sentinel-2-l2a",
                # as declared by the real items: odc-stac reads grids from proj:* only then
                stac_extensions=list(meta.get("stac_extensions", [])),
            )
            for k, a in assets.items():
                item.add_asset(k, a)
            items.append(item)
    return items


def bench_throughput(
    items, window, repeat: int, threads: int, chunks: dict | None, masked: bool = False
) -> dict:
    """MB/s of eoai.load and of plain rasterio reads of the same window, ``threads`` each;
    ``masked``: also the SCL band, its cloud/shadow/no-data classes set to NaN on both sides."""
    from concurrent.futures import ThreadPoolExecutor

    import dask
    import rasterio
    from odc.geo.geobox import GeoBox
    from rasterio.windows import Window

    import eoai

    (r0, r1), (c0, c1) = window
    # the two MGRS tiles share the UTM grid origin in x but not in y: one window per tile
    tiles = {}
    for it in items:
        with rasterio.open(it.assets["red"].get_absolute_href()) as src:
            tiles.setdefault((src.transform.c, src.transform.f), []).append(it)
    for group in tiles.values():  # the time order of the cube
        group.sort(key=lambda it: it.datetime)
    # source bytes: uint16 bands (and the uint8 SCL when masked)
    nbytes = len(items) * (len(BANDS) * 2 + masked) * (r1 - r0) * (c1 - c0)
    # dask: the single-threaded scheduler for one thread, else that many threads
    sched = dict(scheduler="sync") if threads == 1 else dict(scheduler="threads")
    sched["num_workers"] = threads

    def run_eoai():
        cubes = []
        for group in tiles.values():
            with rasterio.open(group[0].assets["red"].get_absolute_href()) as src:
                gbox = GeoBox((src.height, src.width), src.transform, src.crs)[r0:r1, c0:c1]
            cube = eoai.load(
                group,
                list(BANDS),
                geobox=gbox,
                mask="auto" if masked else None,
                groupby="time",
                chunks=chunks,
            )
            cubes.append(cube)
        arrays = dask.compute(*[c[b].data for c in cubes for b in BANDS], **sched)
        return [np.asarray(a) for a in arrays]

    win = Window(c0, r0, c1 - c0, r1 - r0)

    def read_one(href, bad=None):
        with rasterio.open(href) as src:
            dn = src.read(1, window=win)
        ref = dn.astype("float32") * np.float32(1e-4)
        ref[dn == 0] = np.nan
        if bad is not None:
            ref[bad] = np.nan
        return ref

    def read_item(it):
        """The bands of one item as float32 reflectance, masked by its SCL when asked."""
        bad = None
        if masked:
            with rasterio.open(it.assets["scl"].get_absolute_href()) as src:
                bad = np.isin(src.read(1, window=win), SCL_INVALID)
        return [read_one(it.assets[b].get_absolute_href(), bad) for b in BANDS]

    def run_rasterio():
        # the same output: per tile and band a (time, y, x) float32 stack, nodata NaN
        groups = list(tiles.values())
        if threads == 1:
            layers = [[read_item(it) for it in group] for group in groups]
        else:
            with ThreadPoolExecutor(threads) as pool:
                layers = [list(pool.map(read_item, group)) for group in groups]
        return [
            np.stack([bands[i] for bands in group]) for group in layers for i in range(len(BANDS))
        ]

    # correctness first: the same pixels, shapes and NaNs
    a, b = run_eoai(), run_rasterio()
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype == np.float32, (x.shape, y.shape)
        np.testing.assert_array_equal(x, y)
    times = {"eoai": [], "rasterio": []}
    for i in range(repeat):  # interleaved, alternating which goes first
        order = (("rasterio", run_rasterio), ("eoai", run_eoai))
        for name, fn in order if i % 2 == 0 else order[::-1]:
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    mbs = {k: nbytes / 1e6 / v for k, v in best.items()}
    return {
        "window_px": (r1 - r0, c1 - c0),
        "files": len(items) * len(BANDS),
        "MB": nbytes / 1e6,
        "threads": threads,
        "masked": masked,
        "eoai_MBps": mbs["eoai"],
        "rasterio_MBps": mbs["rasterio"],
        "ratio": mbs["eoai"] / mbs["rasterio"],
        "best_s": best,
    }


def bench_memory(items) -> dict:
    import dask
    import rasterio
    from odc.geo.geobox import GeoBox

    import eoai

    group = [it for it in items if "33TWL" in it.id]
    with rasterio.open(group[0].assets["red"].get_absolute_href()) as src:
        gbox = GeoBox((src.height, src.width), src.transform, src.crs)
    chunk = 256
    cube = eoai.load(
        group,
        list(BANDS),
        geobox=gbox,
        mask=None,
        groupby="time",
        chunks={"time": 1, "x": chunk, "y": chunk},
    )
    cube_bytes = sum(cube[b].nbytes for b in BANDS)
    chunk_bytes = chunk * chunk * 4
    reduced = cube.mean(dim=("time", "y", "x"))
    tracemalloc.start()
    with dask.config.set(scheduler="threads"):
        result = reduced.compute()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # the same reduction on the cube held in memory, for reference
    tracemalloc.start()
    with dask.config.set(scheduler="threads"):
        eager = cube.compute()
    _, peak_eager = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_allclose(
        [float(result[b]) for b in BANDS], [float(eager[b].mean()) for b in BANDS], rtol=1e-5
    )
    return {
        "cube_MB": cube_bytes / 1e6,
        "chunk_MB": chunk_bytes / 1e6,
        "cube_over_chunk": cube_bytes / chunk_bytes,
        "n_chunks": sum(cube[b].data.npartitions for b in BANDS),
        "peak_MB_chunked": peak / 1e6,
        "peak_MB_in_memory": peak_eager / 1e6,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--window", type=int, nargs="+", default=[512, 915], help="window sizes in pixels"
    )
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="threads for each side"
    )
    parser.add_argument(
        "--chunks", default="default", help="eoai.load chunks as JSON, default: its default"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory part")
    parser.add_argument(
        "--masked", action="store_true", help="also time SCL-masked loads (mask='auto')"
    )
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"real data not found: {DATA}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="eoai-bench-load-"))
    try:
        t = time.perf_counter()
        items = make_cogs(tmp)
        print(
            f"wrote {len(items) * (len(BANDS) + len(MASK))} local COGs in {time.perf_counter() - t:.1f} s"
        )
        chunks = None if args.chunks == "default" else json.loads(args.chunks)
        for w in args.window:
            start = (915 - w) // 2
            win = ((start, start + w), (start, start + w))
            for masked in (False, True) if args.masked else (False,):
                for threads in args.threads:
                    res = bench_throughput(items, win, args.repeat, threads, chunks, masked)
                    print(
                        f"throughput, window {w}x{w} px, {'SCL-masked ' if masked else ''}"
                        f"{res['MB']:.1f} MB, {threads} thread(s) each: eoai.load "
                        f"{res['eoai_MBps']:.1f} MB/s, rasterio {res['rasterio_MBps']:.1f} "
                        f"MB/s, ratio {res['ratio']:.2f} (goal >= 0.8)",
                        flush=True,
                    )
        if args.no_memory:
            return 0
        mem = bench_memory(items)
        print(
            f"memory: cube {mem['cube_MB']:.1f} MB float32 in {mem['n_chunks']} chunks of "
            f"{mem['chunk_MB']:.2f} MB (cube = {mem['cube_over_chunk']:.0f}x one chunk); "
            f"peak traced while reducing chunk by chunk {mem['peak_MB_chunked']:.1f} MB "
            f"(loading it all: {mem['peak_MB_in_memory']:.1f} MB)"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
