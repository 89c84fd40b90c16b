"""Label efficiency: test error against the number of labelled series, RF / TempCNN / L-TAE / Presto.

On the authors' real Presto sets (``../shared/data/presto``: fuel moisture, algae blooms; the
published split by site), for ``n`` labelled training series drawn at random (several seeds; the
whole train split for ``all``), the test RMSE and the training time of:

- ``rf raw``: scikit-learn random forest (100 trees) on the raw ``T x 18`` inputs;
- ``tempcnn`` / ``ltae``: eoai's TempCNN and L-TAE networks (:mod:`eoai.ml.models`) from scratch,
  with one regression output (MSE on the standardised target, AdamW, early stopping on 15 % of the
  labelled series);
- ``presto head``: the frozen published encoder and a ridge head (RidgeCV);
- ``presto rf``: a random forest on the frozen embeddings (the data README's baseline);
- ``presto finetuned``: :func:`eoai.ml.presto.finetune_presto` (encoder + linear head; 30 epochs
  of batches of 16 up to 50 labels, 15 up to 200, ``--finetune-epochs`` of 64 for all; early
  stopping, patience 5);
- ``pretrained head`` / ``pretrained finetuned``: the same after
  :func:`eoai.ml.presto.pretrain_presto` on the set's *unlabelled* train series (all of them, no
  target: what a user has for a region), starting from the published weights.

The pre-training time is paid once per set (shown separately); the embedding time of the frozen
encoder is included in no training time (one pass over the set, shown separately).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_label_efficiency.py --dataset algae_blooms``
(``--seeds 0 1 --sizes 10 20 50 200 all``; ``--json out.json`` keeps the raw results).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "presto" / "data"


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


def fit_net(kind: str, x: np.ndarray, y: np.ndarray, month: np.ndarray, seed: int, epochs: int):
    """A TempCNN / L-TAE regressor from scratch (MSE, AdamW, early stopping); returns predict(x, month)."""
    import copy

    import torch

    from eoai.ml.models.ltae import LTAE
    from eoai.ml.models.tempcnn import TempCNN
    from eoai.ml.presto.head import _AdamW

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mu, sd = x.reshape(-1, x.shape[-1]).mean(0), x.reshape(-1, x.shape[-1]).std(0) + 1e-6
    y_mu, y_sd = float(y.mean()), float(y.std() or 1.0)
    net = TempCNN(x.shape[2], x.shape[1], 1) if kind == "tempcnn" else LTAE(x.shape[2], 1)
    xt = torch.from_numpy(((x - mu) / sd).astype("float32"))
    yt = torch.from_numpy(((y - y_mu) / y_sd).astype("float32"))[:, None]
    days = torch.from_numpy((month * 30.4).astype("float32"))
    n = len(x)
    val = rng.choice(n, size=max(2, int(round(0.15 * n))), replace=False)
    tr = np.setdiff1d(np.arange(n), val)
    opt = _AdamW(list(net.parameters()), lr=1e-3, weight_decay=1e-4)
    best, state, stale = np.inf, copy.deepcopy(net.state_dict()), 0
    bs = 16 if n <= 200 else 64
    for _ in range(epochs):
        net.train()
        order = rng.permutation(tr)
        for s in range(0, len(order), bs):
            i = torch.from_numpy(order[s : s + bs])
            if len(i) < 2:
                continue
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(xt[i], days[i]), yt[i]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            v = float(torch.nn.functional.mse_loss(net(xt[val], days[val]), yt[val]))
        if v < best - 1e-6:
            best, state, stale = v, copy.deepcopy(net.state_dict()), 0
        else:
            stale += 1
            if stale >= 10:
                break
    net.load_state_dict(state)
    net.eval()

    def predict(x2, month2):
        with torch.no_grad():
            z = torch.from_numpy(((x2 - mu) / sd).astype("float32"))
            d = torch.from_numpy((month2 * 30.4).astype("float32"))
            return net(z, d)[:, 0].numpy() * y_sd + y_mu

    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--dataset", default="algae_blooms", choices=["algae_blooms", "fuel_moisture"]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--sizes", nargs="+", default=["10", "20", "50", "200", "all"])
    parser.add_argument("--finetune-epochs", type=int, default=8)
    parser.add_argument("--net-epochs", type=int, default=60)
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import torch
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import eoai.ml.presto as presto

    torch.set_num_threads(1)
    npy = DATA / args.dataset / "npy"
    raw = np.load(npy / "s1_s2_era5_srtm.npy")
    dw, latlon, month = (np.load(npy / f) for f in ("dynamic_world.npy", "latlon.npy", "month.npy"))
    y = np.load(npy / "target.npy").astype("float64")
    test = np.load(npy / "is_test.npy").astype(bool)
    x = presto.normalise(raw)
    train, te = np.flatnonzero(~test), np.flatnonzero(test)
    model = presto.load_encoder(DATA / "default_model.pt", card=presto.PRESTO_CARD)
    print(f"{args.dataset}: {len(train)} train / {len(te)} test series x {x.shape[1]} months; "
          f"seeds {args.seeds}; 1 torch thread; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")  # fmt: skip

    t0 = time.perf_counter()
    emb0 = model.embed_arrays(x, dynamic_world=dw, latlon=latlon, month=month)
    t_embed = time.perf_counter() - t0
    t0 = time.perf_counter()
    pre = presto.pretrain_presto(
        x[train], model=model, latlon=latlon[train], month=month[train],
        dynamic_world=dw[train], epochs=args.pretrain_epochs, patience=2, progress=False, seed=0,
    )  # fmt: skip
    t_pre = time.perf_counter() - t0
    emb1 = pre.embed_arrays(x, dynamic_world=dw, latlon=latlon, month=month)
    md = pre.metadata
    print(f"frozen embeddings of all series: {t_embed:.1f} s; pre-training on the {len(train)} "
          f"unlabelled train series: {t_pre:.0f} s, {md['epochs']} epochs, held-out masked MSE "
          f"{md['validation_mse_before']:.4f} -> {md['validation_mse_after']:.4f}")  # fmt: skip
    flat = raw.reshape(len(raw), -1)

    def ridge(emb, idx):
        r = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
        r.fit(emb[idx], y[idx])
        return r.predict(emb[te])

    def rf(feats, idx, seed):
        f = RandomForestRegressor(100, random_state=seed, n_jobs=1).fit(feats[idx], y[idx])
        return f.predict(feats[te])

    def finetune(start, idx, seed):
        # few labels, short epochs: more of them and smaller batches (similar cost per label)
        small = len(idx) <= 50
        epochs = 30 if small else (15 if len(idx) <= 200 else args.finetune_epochs)
        new, head = presto.finetune_presto(
            start, x[idx], y[idx], latlon=latlon[idx], month=month[idx], dynamic_world=dw[idx],
            epochs=epochs, patience=5, seed=seed, task="regression",
            batch_size=16 if len(idx) <= 200 else 64,
        )  # fmt: skip
        return head.predict(
            new.embed_arrays(x[te], dynamic_world=dw[te], latlon=latlon[te], month=month[te])
        )

    def net(kind, idx, seed):
        pred = fit_net(kind, x[idx], y[idx], month[idx], seed, args.net_epochs)
        return pred(x[te], month[te])

    methods = {
        "rf raw": lambda idx, s: rf(flat, idx, s),
        "tempcnn": lambda idx, s: net("tempcnn", idx, s),
        "ltae": lambda idx, s: net("ltae", idx, s),
        "presto head": lambda idx, s: ridge(emb0, idx),
        "presto rf": lambda idx, s: rf(emb0, idx, s),
        "presto finetuned": lambda idx, s: finetune(model, idx, s),
        "pretrained head": lambda idx, s: ridge(emb1, idx),
        "pretrained finetuned": lambda idx, s: finetune(pre, idx, s),
    }
    if args.methods:
        methods = {k: v for k, v in methods.items() if k in args.methods}
    results = []
    for size in args.sizes:
        seeds = args.seeds if size != "all" else args.seeds[:1]  # one subset: the whole split
        for seed in seeds:
            rng = np.random.default_rng(1000 + seed)
            idx = train if size == "all" else np.sort(rng.choice(train, int(size), replace=False))
            for name, fn in methods.items():
                t0 = time.perf_counter()
                pred = fn(idx, seed)
                dt = time.perf_counter() - t0
                results.append({"size": size, "seed": seed, "method": name,
                                "rmse": rmse(pred, y[te]), "seconds": dt})  # fmt: skip
                print(
                    f"  n={size:>4} seed {seed} {name:<22} RMSE {results[-1]['rmse']:7.3f}  {dt:6.1f} s",
                    flush=True,
                )
    print(
        f"\n{args.dataset}: test RMSE, mean (min-max) over seeds {args.seeds}; training seconds (mean)"
    )
    header = "| method | " + " | ".join(f"n={s}" for s in args.sizes) + " | s at n=all |"
    print(header)
    print("|" + "---|" * (len(args.sizes) + 2))
    for name in methods:
        cells = []
        for size in args.sizes:
            r = [v["rmse"] for v in results if v["method"] == name and v["size"] == size]
            cells.append(
                f"{np.mean(r):.3f} ({min(r):.2f}-{max(r):.2f})" if len(r) > 1 else f"{r[0]:.3f}"
            )
        secs = np.mean(
            [v["seconds"] for v in results if v["method"] == name and v["size"] == args.sizes[-1]]
        )
        print(f"| {name} | " + " | ".join(cells) + f" | {secs:.1f} |")
    print(f"| (train mean) | {rmse(np.full(len(te), y[train].mean()), y[te]):.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"dataset": args.dataset, "t_embed": t_embed,
                                               "t_pretrain": t_pre, "pretrain": md, "results": results}, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
