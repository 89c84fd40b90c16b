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
  stopping, patience 5); on Slovenia through the public path, ``eoai.ml.fit(samples, "presto",
  finetune=True, encoder=...)`` on the band table (early stopping on held-out polygons);
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

SIZES = ["10", "20", "50", "200", "all"]
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


# -- the Slovenia patch: classification, labels counted in polygons ------------------------------

SLO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eolearn_slovenia"
SLO_NAMES = {1: "cultivated land", 2: "forest", 3: "grassland", 4: "shrubland", 8: "artificial"}
L1C = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


def draw_polygons(polys: np.ndarray, classes: np.ndarray, n: int, rng) -> np.ndarray:
    """``n`` of the polygons ``polys`` (class ``classes``): one polygon of each class first (the
    classes in random order, as many as ``n`` allows), then the rest at random."""
    order = rng.permutation(len(polys))
    first: list[int] = []
    for c in rng.permutation(np.unique(classes)):
        if len(first) < n:
            first.append(int(next(i for i in order if classes[i] == c)))
    rest = [int(i) for i in order if i not in first]
    return np.sort(polys[np.array(first + rest[: n - len(first)], dtype=int)])


def slovenia_inputs(cache: Path, pretrain_epochs: int, pretrain: bool, n_pixels: int) -> dict:
    """The patch's sample tables (the same labelled pixels, in the same order, in every table) and
    the Presto inputs of those pixels; embeddings and the pre-trained encoder cached in ``cache``."""
    import warnings

    import geopandas as gpd
    import pandas as pd
    import xarray as xr

    import eoai  # noqa: F401 - the .eoai accessor
    import eoai.ml.presto as presto
    from eoai.io.bands import common_name
    from eoai.ml.presto.pretrain import _cube_series
    from eoai.timeseries.gapfill import gapfill

    ds = xr.open_dataset(SLO / "eolearn_testpatch.nc").load()
    ndvi = ds["NDVI"].where(ds["CLM"] == 0).rename(time_all="time").rename("ndvi")
    clm5 = ds["CLM"].sel(time_all=ds["time"].values).rename(time_all="time")
    s2 = ds[L1C].where(clm5 == 0).rename({b: common_name(b) for b in L1C})  # clouds NaN
    labels = gpd.read_file(SLO / "LULC_polygons.gpkg")
    labels = labels[labels["LULC_ID"] > 0]

    def extract(cube):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 6 of the 84 polygons cover no pixel (tested)
            return cube.eoai.extract(
                labels, label="LULC_ID", max_per_polygon=300, drop_empty=False
            ).reset_index(drop=True)

    cache.mkdir(parents=True, exist_ok=True)
    model = presto.load_encoder(DATA / "default_model.pt", card=presto.PRESTO_CARD)
    s2p = s2[presto.PRESTO_CARD.required]  # B01, B09, B10 are not Presto inputs

    def embedded(name, enc):
        f = cache / f"{name}.npy"
        t0 = time.perf_counter()
        if not f.exists():
            np.save(f, s2p.chunk({"y": 64, "x": 64}).eoai.embed(enc).values)
        emb = xr.DataArray(np.load(f), dims=("embedding", "y", "x"),
                           coords={"embedding": [f"presto_{i:03d}" for i in range(128)],
                                   "y": ds["y"], "x": ds["x"], "spatial_ref": ds["spatial_ref"]})  # fmt: skip
        return extract(emb.to_dataset("embedding")), time.perf_counter() - t0

    tables = (
        cache / "tables.pkl"
    )  # this script's own file (a pickle: never load one you did not write)
    if tables.exists():
        out = pd.read_pickle(tables)
    else:
        out = {"ndvi": extract(ndvi), "filled": extract(gapfill(ndvi, "linear")),
               "bands": extract(s2)}  # fmt: skip
        out["emb0"], out["t_embed"] = embedded("emb0", model)
        for k in ("filled", "bands", "emb0"):  # the same pixels as the NDVI table
            assert np.array_equal(out[k][["x", "y", "group"]], out["ndvi"][["x", "y", "group"]]), k
        # the encoder's inputs of every pixel, as pretrain_presto samples them from the cube
        ny, nx = ds.sizes["y"], ds.sizes["x"]
        x, miss, dw, latlon, month = _cube_series(s2p, model.card, ny * nx, 0, "auto", "auto")
        assert len(x) == ny * nx  # every pixel has a clear date: row i is pixel (i // nx, i % nx)
        iy = np.searchsorted(-ds["y"].values, -out["ndvi"]["y"].to_numpy())
        ix = np.searchsorted(ds["x"].values, out["ndvi"]["x"].to_numpy())
        pix = iy * nx + ix
        out["series"] = (x[pix], miss[pix], dw[pix], latlon[pix], month[pix])
        feats = [f"presto_{i:03d}" for i in range(128)]
        again = model.embed_arrays(*out["series"])
        out["check"] = float(np.abs(again - out["emb0"][feats].to_numpy()).max())
        pd.to_pickle(out, tables)
    out["model"] = model
    out["months"] = sorted({str(t)[:7] for t in s2p["time"].values})
    out["t_pretrain"] = "not run"
    fp = cache / "pretrained.pt"
    if not pretrain:
        return out
    if fp.exists():
        out["pre"] = presto.load_encoder(fp)
        out["t_pretrain"] = json.loads((cache / "pretrained.json").read_text())
    else:
        t0 = time.perf_counter()
        pre = presto.pretrain_presto(s2p, model=model, n_pixels=n_pixels, epochs=pretrain_epochs,
                                     patience=2, progress=False, seed=0)  # fmt: skip
        md = pre.metadata
        out["t_pretrain"] = {"seconds": time.perf_counter() - t0, "epochs": md["epochs"],
                             "n_series": md["n_series"], "mse_before": md["validation_mse_before"],
                             "mse_after": md["validation_mse_after"]}  # fmt: skip
        presto.save_encoder(pre, fp)
        (cache / "pretrained.json").write_text(json.dumps(out["t_pretrain"]))
        out["pre"] = pre
    out["emb1"], _ = embedded("emb1", out["pre"])
    return out


def slovenia(args: argparse.Namespace) -> None:
    import warnings

    import torch
    from sklearn.model_selection import StratifiedGroupKFold

    import eoai.ml
    import eoai.ml.presto as presto
    from eoai.ml.metrics import confusion_from_labels, scores_from_confusion

    torch.set_num_threads(1)
    cache = Path(args.cache)
    t0 = time.perf_counter()
    wanted = args.methods or ["pretrained"]
    d = slovenia_inputs(
        cache,
        args.pretrain_epochs,
        any(m.startswith("pretrained") for m in wanted),
        args.pretrain_pixels,
    )
    base = d["ndvi"]
    y, groups = base["label"].to_numpy(), base["group"].to_numpy()
    poly = base.groupby("group")["label"].first()
    print(f"slovenia: {len(base)} labelled px in {len(poly)} polygons "
          f"({poly.value_counts().sort_index().to_dict()} polygons per class); 5-fold CV grouped by "
          f"polygon (seed 0, as cross_validate); seeds {args.seeds}; 1 torch thread; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; inputs {time.perf_counter() - t0:.0f} s")  # fmt: skip
    print(f"Presto: 13-band L1C TOA on 5 dates -> monthly composites {d['months']}; embedding "
          f"{d['t_embed']:.1f} s (cached: 0); embed() vs embed_arrays max |diff| {d['check']:.2e}; "
          f"pre-training {d['t_pretrain']}")  # fmt: skip
    folds = list(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(base, y, groups))
    if any("finetuned" in m for m in wanted):  # the table's rows are the cube's encoder inputs
        from eoai.ml.presto.finetuned import _card_columns, series_of_rows

        tb = d["bands"]
        cols, _ = _card_columns(list(tb.attrs["eoai:features"]), presto.PRESTO_CARD)
        rows = series_of_rows(tb[cols].to_numpy("float32"), tb[["x", "y"]].to_numpy(), cols,
                              presto.PRESTO_CARD, tb.attrs["eoai:cube"]["crs"], "auto", "auto")  # fmt: skip
        diffs = [np.abs(np.nan_to_num(a.astype("float64")) - np.nan_to_num(b.astype("float64"))).max()
                 for a, b in zip(rows[:5], d["series"], strict=True)]  # fmt: skip
        print(f"fine-tuning inputs from the table vs from the cube: max |diff| x, mask, dw, "
              f"latlon, month {[float(v) for v in diffs]}")  # fmt: skip
    rf = dict(n_estimators=100, threads=1)
    deep = dict(progress=False, device="cpu")  # TRAINING_DEFAULTS of eoai.ml.deep otherwise

    def fitted(table, model, **kw):
        def run(tr, te, seed):
            m = eoai.ml.fit(table.iloc[tr], model, seed=seed, **kw)
            cols = list(m.features)
            return m.predict(table.iloc[te][cols].to_numpy("float32"))

        return run

    def finetune(start):  # the public path: fit(samples, "presto", finetune=True, encoder=)
        table = d["bands"]

        def run(tr, te, seed):
            n = len(tr)
            epochs = 30 if n <= 50 else (15 if n <= 200 else args.finetune_epochs)
            m = eoai.ml.fit(
                table.iloc[tr], "presto", finetune=True, encoder=start, seed=seed,
                epochs=epochs, patience=5, batch_size=16 if n <= 200 else 64,
            )  # fmt: skip
            return m.predict(table.iloc[te][m.features])

        return run

    pre, emb1 = d.get("pre"), d.get("emb1")
    methods = {
        "rf ndvi": fitted(d["ndvi"], "rf", **rf),
        "rf bands": fitted(d["bands"], "rf", **rf),
        "presto head": fitted(d["emb0"], "presto"),
        "presto rf": fitted(d["emb0"], "rf", **rf),
        "pretrained head": fitted(emb1, "presto"),
        "pretrained rf": fitted(emb1, "rf", **rf),
        "tempcnn": fitted(d["filled"], "tempcnn", **deep),
        "ltae": fitted(d["ndvi"], "ltae", **deep),
        "presto finetuned": finetune(d["model"]),
        "pretrained finetuned": finetune(pre),
    }
    if args.methods:
        methods = {k: v for k, v in methods.items() if k in args.methods}
    results = []
    for size in args.sizes:
        for seed in args.seeds:
            rng = np.random.default_rng(1000 + seed)
            fold_rows = []
            for tr, te in folds:
                polys = np.unique(groups[tr])
                if size != "all":
                    polys = draw_polygons(polys, poly.loc[polys].to_numpy(), int(size), rng)
                fold_rows.append((np.flatnonzero(np.isin(groups, polys)), te, len(polys)))
            for name, fn in methods.items():
                pred = np.empty(len(y), dtype=object)
                secs, cpu, error = [], [], None
                for tr, te, _ in fold_rows:
                    t0, c0 = time.perf_counter(), time.process_time()
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            pred[te] = fn(tr, te, seed)
                    except Exception as err:  # noqa: BLE001 - recorded in the table
                        error = f"{type(err).__name__}: {err}"
                        break
                    secs.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                row = {"size": size, "seed": seed, "method": name, "seconds": float(np.mean(secs or [0])), "cpu": float(np.mean(cpu or [0])),
                       "n_px": float(np.mean([len(r[0]) for r in fold_rows])),
                       "n_polygons": float(np.mean([r[2] for r in fold_rows]))}  # fmt: skip
                if error is None:
                    oa, kappa, _ = scores_from_confusion(
                        confusion_from_labels(pred, y, sorted(poly.unique()))
                    )
                    row.update(oa=float(oa), kappa=float(kappa))
                else:
                    row["error"] = error
                results.append(row)
                msg = (
                    f"OA {row['oa']:.3f} kappa {row['kappa']:.3f}" if error is None else error[:120]
                )
                print(f"  n={size:>3} seed {seed} {name:<21} {msg}  {row['seconds']:6.1f} s/fold, CPU {row['cpu']:.1f} s "
                      f"({row['n_px']:.0f} px)", flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"dataset": "slovenia", "t_embed": d["t_embed"], "t_pretrain": d["t_pretrain"],
             "results": results}, default=str))  # fmt: skip
    print_class_table(results, args.sizes)


def print_class_table(results: list[dict], sizes: list[str]) -> None:
    """OA and kappa, mean (min-max) over seeds, per method and number of polygons."""
    print("\nslovenia: OA / kappa on the held-out polygons (pooled over 5 folds), mean (min-max) "
          "over seeds; training CPU seconds per fold (mean; 1 thread)")  # fmt: skip
    npoly = {s: np.mean([r["n_polygons"] for r in results if r["size"] == s]) for s in sizes}
    print("| method | " + " | ".join(f"n={s} ({npoly[s]:.0f})" if s == "all" else f"n={s}" for s in sizes)
          + f" | CPU s/fold, n={sizes[0]} / {sizes[-1]} |")  # fmt: skip
    print("|" + "---|" * (len(sizes) + 2))
    for name in dict.fromkeys(r["method"] for r in results):
        cells = []
        for size in sizes:
            rs = [r for r in results if r["method"] == name and r["size"] == size]
            ok = [r for r in rs if "oa" in r]
            if not ok:
                cells.append("-" if not rs else f"fails ({len(rs)}/{len(rs)})")
                continue
            oa, ka = [r["oa"] for r in ok], [r["kappa"] for r in ok]
            cell = (f"{np.mean(oa):.3f} / {np.mean(ka):.2f} ({min(oa):.2f}-{max(oa):.2f})"
                    if len(ok) > 1 else f"{oa[0]:.3f} / {ka[0]:.2f}")  # fmt: skip
            if len(ok) < len(rs):
                cell += f" [{len(rs) - len(ok)} of {len(rs)} seeds fail]"
            cells.append(cell)

        def cpu(size, name=name):
            c = [
                r.get("cpu", r["seconds"])
                for r in results
                if r["method"] == name and r["size"] == size
            ]
            return f"{np.mean(c):.1f}" if c else "-"

        print(f"| {name} | " + " | ".join(cells) + f" | {cpu(sizes[0])} / {cpu(sizes[-1])} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--dataset", default="algae_blooms", choices=["algae_blooms", "fuel_moisture", "slovenia"]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--sizes", nargs="+", default=SIZES)
    parser.add_argument("--finetune-epochs", type=int, default=8)
    parser.add_argument("--net-epochs", type=int, default=60)
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument(
        "--pretrain-pixels", type=int, default=5000, help="slovenia: pixels pre-trained on"
    )
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--cache",
        default="/tmp/eoai_label_efficiency",
        help="slovenia: embeddings and the pre-trained encoder (not in the repo)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        help="print the table of these --json files (seeds merged), run nothing",
    )
    args = parser.parse_args()
    if args.merge:
        return merge(args.merge)
    if args.dataset == "slovenia":
        if args.sizes == SIZES:
            args.sizes = ["5", "10", "20", "40", "all"]
        return slovenia(args)
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
    pre = emb1 = md = t_pre = None
    if args.methods is None or any(m.startswith("pretrained") for m in args.methods):
        t0 = time.perf_counter()
        pre = presto.pretrain_presto(
            x[train], model=model, latlon=latlon[train], month=month[train],
            dynamic_world=dw[train], epochs=args.pretrain_epochs, patience=2, progress=False,
            seed=0,
        )  # fmt: skip
        t_pre = time.perf_counter() - t0
        emb1 = pre.embed_arrays(x, dynamic_world=dw, latlon=latlon, month=month)
        md = pre.metadata
        print(f"pre-training on the {len(train)} unlabelled train series: {t_pre:.0f} s, "
              f"{md['epochs']} epochs, held-out masked MSE {md['validation_mse_before']:.4f} -> "
              f"{md['validation_mse_after']:.4f}")  # fmt: skip
    print(f"frozen embeddings of all series: {t_embed:.1f} s")
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
    baseline = rmse(np.full(len(te), y[train].mean()), y[te])
    if args.json:
        Path(args.json).write_text(json.dumps({"dataset": args.dataset, "t_embed": t_embed,
                                               "t_pretrain": t_pre, "pretrain": md, "baseline": baseline,
                                               "results": results}, default=str))  # fmt: skip
    print_rmse_table(args.dataset, results, args.sizes, baseline)


def print_rmse_table(dataset: str, results: list[dict], sizes: list[str], baseline: float) -> None:
    """Test RMSE, mean (min-max) over seeds, per method and number of labelled series."""
    seeds = sorted({r["seed"] for r in results})
    print(f"\n{dataset}: test RMSE, mean (min-max) over seeds {seeds} (n/seeds per cell); "
          "training seconds (mean)")  # fmt: skip
    print("| method | " + " | ".join(f"n={s}" for s in sizes) + " | s at n=all |")
    print("|" + "---|" * (len(sizes) + 2))
    for name in dict.fromkeys(r["method"] for r in results):
        cells = []
        for size in sizes:
            r = [v["rmse"] for v in results if v["method"] == name and v["size"] == size]
            cells.append(
                "-"
                if not r
                else f"{np.mean(r):.3f} ({min(r):.2f}-{max(r):.2f}; {len(r)})"
                if len(r) > 1
                else f"{r[0]:.3f}"
            )
        secs = [v["seconds"] for v in results if v["method"] == name and v["size"] == sizes[-1]]
        print(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {np.mean(secs) if secs else float('nan'):.1f} |"
        )
    print(f"| (train mean) | {baseline:.3f} |")


def merge(files: list[str]) -> None:
    """The table of several ``--json`` files of one dataset (e.g. other seeds, other methods)."""
    runs = [json.loads(Path(f).read_text()) for f in files]
    dataset = runs[0]["dataset"]
    results = [r for run in runs for r in run["results"]]
    sizes = list(dict.fromkeys(r["size"] for r in results))
    if dataset == "slovenia":
        print_class_table(results, sizes)
    else:
        baseline = next((run["baseline"] for run in runs if run.get("baseline")), float("nan"))
        print_rmse_table(dataset, results, sizes, baseline)


if __name__ == "__main__":
    main()
