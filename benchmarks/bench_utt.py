"""Benchmark of U-T&T against a U-Net on the aerial image alone and a U-TAE on the series alone.

The scene (:func:`eoai.datasets.multires.multires_scene`) needs both sources: early and late crop
parcels look alike on the aerial image (a random brightness per parcel) and differ only in the
timing of their season in the series; buildings and trees, 3-7 fine pixels across, are seen on the
aerial image and mixed into their neighbours in the series (``--factor`` x coarser, default 4).
Clouds hide ``--clouds`` of the series (NaN, default 0.2). Labels cover the left two thirds of the
scene; the mIoU (mean per-class intersection over union) is measured on the right third, on the
fine grid, with each model's tiled inference (``eoai.ml.classify``):

- **U-T&T**: ``fit_segmentation({"aerial": image, "s2": series}, labels, model="utt")``;
- **U-Net, aerial only**: ``fit_segmentation(image, labels, model="unet")``;
- **U-TAE, series only**: ``fit_segmentation(series, coarse_labels, model="utae")`` on the series'
  own grid (the labels' majority class per series pixel), its map repeated onto the fine grid.

The same schedule for all (``--epochs``, 32 windows of 16 series px (``16 * factor`` fine px) per epoch,
batches of 8, one torch thread, seeds 0 ... ``--seeds`` - 1). Training CPU time is
``time.process_time``.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_utt.py [--quick] [--seeds N] [--factor F]
[--aux-weight W] [--models utt,unet_aerial,utae_series]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def miou(pred: np.ndarray, ref: np.ndarray) -> tuple[float, list[float]]:
    ious = [
        ((pred == k) & (ref == k)).sum() / ((pred == k) | (ref == k)).sum() for k in np.unique(ref)
    ]
    return float(np.mean(ious)), [round(float(v), 3) for v in ious]


def majority(labels: np.ndarray, f: int, nodata: int = -1) -> np.ndarray:
    """The most frequent label of each f x f block (nodata where the block has no label)."""
    h, w = labels.shape
    blocks = labels.reshape(h // f, f, w // f, f).transpose(0, 2, 1, 3).reshape(h // f, w // f, -1)
    classes = np.unique(labels[labels != nodata])
    counts = np.stack([(blocks == k).sum(-1) for k in classes], -1)
    return np.where(counts.sum(-1) > 0, classes[counts.argmax(-1)], nodata)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--clouds", type=float, default=0.2)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--aux-weight", type=float, default=0.5)
    ap.add_argument("--models", default="utt,unet_aerial,utae_series")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    import eoai.ml
    from eoai.datasets.multires import multires_scene
    from eoai.ml.deep import fit_segmentation

    warnings.simplefilter("ignore")
    f = args.factor
    size, epochs = (192, 8) if args.quick else (256, args.epochs)
    size = size // (16 * f) * 16 * f or 16 * f
    aerial, s2, truth = multires_scene(
        (size, size), factor=f, seed=11, freq="20D", cloud_fraction=args.clouds, objects=0.12
    )
    cut = 2 * size // 3 // (4 * f) * (4 * f)
    labels = truth["class"].copy()
    labels[:, cut:] = -1
    labels.attrs["nodata"] = -1
    coarse_labels = s2["red"].isel(time=0, drop=True).copy(
        data=majority(labels.values, f).astype("int16")
    )
    coarse_labels.attrs = {**truth["class"].attrs, "nodata": -1}
    ref = truth["class"].values[:, cut:]
    share = np.bincount(truth["class"].values.ravel(), minlength=4) / truth["class"].size
    print(f"scene {size} x {size} px aerial (4 bands), series {size // f} x {size // f} px x "
          f"{s2.sizes['time']} dates x 2 bands (factor {f}), {float(s2['red'].isnull().mean()):.0%} "
          f"NaN, class shares {np.round(share, 3).tolist()}, labels on x < {cut}; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    common = dict(patches_per_epoch=32, epochs=epochs, batch_size=8, lr=3e-3, progress=False,
                  val_fraction=0)  # fmt: skip
    chunks = {"y": size // 2, "x": size // 2}  # multiples of the U-T&T tile_multiple
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in args.models.split(",")}
    for seed in range(args.seeds):
        for name in rows:
            t0 = time.process_time()
            if name == "utt":
                m = fit_segmentation({"aerial": aerial, "s2": s2}, labels, model="utt", patch=16 * f,
                                     seed=seed, depth=2, base=16, encoder=(16, 32), n_head=4,
                                     d_model=32, aux_weight=args.aux_weight, **common)  # fmt: skip
                cpu = time.process_time() - t0
                tree = m.prepare({"aerial": aerial.chunk(chunks), "s2": s2.chunk(
                    {"y": size // 2 // f, "x": size // 2 // f})})  # fmt: skip
                pred = eoai.ml.classify(tree, m)["class"].values
            elif name == "unet_aerial":
                m = fit_segmentation(aerial, labels, model="unet", patch=16 * f, seed=seed, depth=2,
                                     base=16, **common)  # fmt: skip
                cpu = time.process_time() - t0
                pred = eoai.ml.classify(aerial.chunk(chunks), m)["class"].values
            else:
                m = fit_segmentation(s2, coarse_labels, model="utae", patch=16, seed=seed,
                                     encoder=(16, 32, 32), n_head=4, d_model=32, **common)  # fmt: skip
                cpu = time.process_time() - t0
                coarse = eoai.ml.classify(s2, m)["class"].values
                pred = np.repeat(np.repeat(coarse, f, 0), f, 1)
            score, per_class = miou(pred[:, cut:], ref)
            rows[name].append((score, cpu))
            n_par = sum(p.numel() for p in m.net.parameters())
            print(f"seed {seed} {name}: mIoU {score:.3f} {per_class}, training CPU {cpu:.1f} s, "
                  f"{n_par} parameters, halo {m.halo}")  # fmt: skip
    mu = {k: np.mean([r[0] for r in v]) for k, v in rows.items()}
    cpu = {k: np.mean([r[1] for r in v]) for k, v in rows.items()}
    print("mean mIoU  " + "  ".join(f"{k} {v:.3f}" for k, v in mu.items()))
    base = cpu.get("unet_aerial", next(iter(cpu.values())))
    print("training CPU  " + "  ".join(f"{k} {v:.1f} s (x {v / base:.2f})"
                                       for k, v in cpu.items()))  # fmt: skip


if __name__ == "__main__":
    main()
