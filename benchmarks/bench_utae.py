"""Benchmark of the U-TAE against the stacked-date U-Net (``eoai.ml.deep.fit_segmentation``).

A synthetic cube where the dates matter: crop classes with the same spectra, base and amplitude
that differ only in the timing of their season (early, mid, late, double), plus a grassland and a
forest, Voronoi parcels, clouds masked to NaN (``--clouds``, default 0.3; dates NaN over the whole
labelled area are dropped, which the U-Net needs). Labels cover the left
two thirds of the scene; both networks train on the same patches, with the same schedule, one
torch thread, seeds 0 ... ``--seeds`` - 1; the mIoU (mean of the per-class intersection over
union) is measured on the right third (parcels never seen), with each network's tiled inference
(``eoai.ml.classify`` with its halo). Training CPU time is ``time.process_time`` (one thread).
Each model is also applied to the same scene observed on other dates (10 days later, other
clouds): the U-TAE as it is, the U-Net after a linear gap-fill onto its training dates.

The stacked-date U-Net reads every band x date as a channel (NaN -> the channel mean); the U-TAE
reads the series (time, band, y, x) with the acquisition days and masks NaN per pixel.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_utae.py [--quick] [--seeds N] [--clouds F]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def scene(size: int, clouds: float, seed: int = 11, start: str = "2021-01-01"):
    import eoai.datasets
    from eoai.datasets.synthetic import DEFAULT_CLASSES, LandClass

    crop = dict(base=0.18, amplitude=0.6, rate_up=0.1, rate_down=0.09)
    classes = [
        LandClass("early_crop", "#fdbf6f", seasons=((95, 185),), **crop),
        LandClass("mid_crop", "#ffd92f", seasons=((135, 225),), **crop),
        LandClass("late_crop", "#ff7f00", seasons=((175, 265),), **crop),
        LandClass("double_crop", "#e31a1c", seasons=((90, 150), (200, 265)), **crop),
        DEFAULT_CLASSES["grassland"],
        DEFAULT_CLASSES["forest"],
    ]
    cube, truth = eoai.datasets.synthetic_cube(
        shape=(size, size), start=start, freq="20D", breaks=False, seed=seed, parcel_size=90,
        cloud_fraction=clouds, bands=["red", "nir", "swir16"], classes=classes, jitter_days=8,
    )  # fmt: skip
    cube = cube.drop_vars("scl")
    cut = 2 * size // 3
    # the U-Net cannot take a date NaN over the whole labelled area (no channel mean): drop those
    # dates for both networks (the U-TAE would just mask them)
    seen = cube["red"].isel(x=slice(0, cut)).notnull().any(("y", "x")).values
    cube = cube.isel(time=np.flatnonzero(seen))
    labels = truth["class"].copy()
    labels[:, cut:] = -1
    labels.attrs["nodata"] = -1
    return cube, truth, labels, cut, int((~seen).sum())


def miou(pred: np.ndarray, ref: np.ndarray) -> tuple[float, list[float]]:
    ious = [
        ((pred == k) & (ref == k)).sum() / ((pred == k) | (ref == k)).sum() for k in np.unique(ref)
    ]
    return float(np.mean(ious)), [round(float(v), 3) for v in ious]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--clouds", type=float, default=0.3)
    ap.add_argument("--day-jitter", type=float, default=0.0)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    import eoai.ml
    from eoai.ml.deep import fit_segmentation

    warnings.simplefilter("ignore")
    size, epochs = (64, 10) if args.quick else (96, 30)
    cube, truth, labels, cut, dropped = scene(size, args.clouds)
    nan = float(np.isnan(cube["red"].values).mean())
    print(f"scene {size} x {size} px, {cube.sizes['time']} dates x 3 bands, {nan:.0%} NaN "
          f"({dropped} overcast dates dropped), labels on x < {cut}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    common = dict(patch=32, patches_per_epoch=32, epochs=epochs, batch_size=8, lr=3e-3,
                  progress=False)  # fmt: skip
    nets = {
        "unet": dict(model="unet", depth=2, base=16),
        "utae": dict(
            model="utae", encoder=(16, 32, 32), n_head=4, d_model=32, day_jitter=args.day_jitter
        ),
    }
    ref = truth["class"].values[:, cut:]
    # the same scene observed on other dates (10 days later, other clouds): the U-TAE reads them
    # as they are; the U-Net needs them gap-filled onto its training dates
    other, truth2, *_ = scene(size, args.clouds, start="2021-01-11")
    assert (truth2["class"].values == truth["class"].values).all()
    from eoai.timeseries.gapfill import gapfill

    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in nets}
    for seed in range(args.seeds):
        for name, kw in nets.items():
            t0 = time.process_time()
            m = fit_segmentation(cube, labels, seed=seed, **common, **kw)
            cpu = time.process_time() - t0
            pred = eoai.ml.classify(cube.chunk({"time": -1, "y": 48, "x": 48}), m)["class"]
            score, per_class = miou(pred.values[:, cut:], ref)
            if name == "unet":
                moved = gapfill(other, "linear", dates=m.dates)
            else:
                moved = other
            pred2 = eoai.ml.classify(moved.chunk({"time": -1, "y": 48, "x": 48}), m)["class"]
            score2 = miou(pred2.values[:, cut:], ref)[0]
            rows[name].append((score, cpu, score2))
            n_par = sum(p.numel() for p in m.net.parameters())
            print(f"seed {seed} {name}: mIoU {score:.3f} {per_class}, training CPU {cpu:.1f} s, "
                  f"{n_par} parameters, halo {m.halo}; on other dates mIoU {score2:.3f}")  # fmt: skip
    mu = {k: np.mean([r[0] for r in v]) for k, v in rows.items()}
    cpu = {k: np.mean([r[1] for r in v]) for k, v in rows.items()}
    mu2 = {k: np.mean([r[2] for r in v]) for k, v in rows.items()}
    print(f"mean mIoU  unet {mu['unet']:.3f}  utae {mu['utae']:.3f}  (utae - unet "
          f"{mu['utae'] - mu['unet']:+.3f})")  # fmt: skip
    print(f"mean mIoU on other dates  unet (gap-filled) {mu2['unet']:.3f}  utae {mu2['utae']:.3f}")
    print(f"training CPU  unet {cpu['unet']:.1f} s  utae {cpu['utae']:.1f} s  "
          f"(ratio utae / unet {cpu['utae'] / cpu['unet']:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
