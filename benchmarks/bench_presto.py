"""Benchmark of eoai.ml.presto: frozen Presto embeddings as features, against the raw inputs.

On the authors' real sets (``../shared/data/presto``, split by site as published):

1. encoder throughput: series/s of ``PrestoModel.embed_arrays`` on the whole set, and px/s of the
   lazy cube path ``embed(cube)`` on the embedded Slovenia sample (monthly composites, masks,
   lat/lon, dask) against ``embed_arrays`` on the same pixels in the same process (overhead ratio);
2. a scikit-learn random forest (300 trees) on the raw inputs (``T x 18`` features), on the
   128-d embeddings, and on both, trained on the train split, RMSE on the test split (the data
   README's reference: fuel moisture 25.20 / 24.65 / 23.47, algae blooms 1.32 / 0.87 / 1.16);
3. heads on the frozen embeddings: ridge regression (alpha by 5-fold CV) and
   ``eoai.ml.presto.fit_presto_head`` (linear and MLP, torch), RMSE on the test split;
4. ``eoai.ml.presto.finetune_presto``: the encoder and a linear head trained together (early
   stopping on 15 % of the train split), RMSE on the test split (``--only-finetune`` runs only this).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_presto.py [--dataset algae_blooms] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "presto"
REFERENCE = {"fuel_moisture": (25.20, 24.65, 23.47), "algae_blooms": (1.32, 0.87, 1.16)}


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="fuel_moisture", choices=sorted(REFERENCE))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--finetune-epochs", type=int, default=20)
    parser.add_argument("--only-finetune", action="store_true", help="skip sections 1-3")
    parser.add_argument("--pretrain-epochs", type=int, default=0, help="with --cv-select")
    parser.add_argument("--cv-groups", action="store_true", help="spatial folds (1-degree cells)")
    parser.add_argument(
        "--cv-finetune", action="store_true",
        help="only: 3-fold CV on the train split of finetune_presto from each start, then test",
    )  # fmt: skip
    parser.add_argument(
        "--cv-features",
        nargs="+",
        default=["frozen"],
        choices=["frozen", "raw", "raw+frozen"],
        help="with --cv-select: the feature sets whose candidates compete (pre-trained added "
        "with --pretrain-epochs)",
    )
    parser.add_argument(
        "--cv-select", action="store_true",
        help="only section 5: models on the embeddings chosen by 5-fold CV on the train split",
    )  # fmt: skip
    args = parser.parse_args()
    import torch
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import eoai.ml.presto as presto

    torch.set_num_threads(args.threads)
    npy = DATA / "data" / args.dataset / "npy"
    raw = np.load(npy / "s1_s2_era5_srtm.npy")
    dw, latlon, month = (np.load(npy / f) for f in ("dynamic_world.npy", "latlon.npy", "month.npy"))
    y = np.load(npy / "target.npy").astype("float64")
    test = np.load(npy / "is_test.npy").astype(bool)
    model = presto.load_encoder(DATA / "data" / "default_model.pt", card=presto.PRESTO_CARD)
    print(f"{args.dataset}: {raw.shape[0]} series x {raw.shape[1]} months x {raw.shape[2]} channels, "
          f"{int((~test).sum())} train / {int(test.sum())} test; torch threads {args.threads}")  # fmt: skip

    x = presto.normalise(raw)
    if args.cv_select or args.cv_finetune:
        kw = {"dynamic_world": dw, "latlon": latlon, "month": month}
        embs = {"frozen": model.embed_arrays(x, **kw)}
        if args.pretrain_epochs:
            t0 = time.perf_counter()
            tr = ~test
            pre = presto.pretrain_presto(
                x[tr], model=model, latlon=latlon[tr], month=month[tr], dynamic_world=dw[tr],
                epochs=args.pretrain_epochs, patience=2, progress=False, seed=0,
            )  # fmt: skip
            md = pre.metadata
            print(f"pre-trained on the {int(tr.sum())} unlabelled train series: "
                  f"{time.perf_counter() - t0:.0f} s, held-out masked MSE "
                  f"{md['validation_mse_before']:.4f} -> {md['validation_mse_after']:.4f}")  # fmt: skip
            embs["pretrained"] = pre.embed_arrays(x, **kw)
        if args.cv_finetune:
            starts = {"published": model, **({"pretrained": pre} if args.pretrain_epochs else {})}
            _cv_finetune(starts, x, y, kw, test, args.finetune_epochs)
        else:
            groups = None
            if args.cv_groups:  # 1-degree lat/lon cells as groups
                cell = np.floor(latlon).astype(int)
                groups = np.unique(cell, axis=0, return_inverse=True)[1].ravel()
            flat = raw.reshape(len(raw), -1)
            sets = {"raw": flat, "raw+frozen": np.hstack([flat, embs["frozen"]])}
            chosen = {k: (embs[k] if k in embs else sets[k]) for k in args.cv_features}
            chosen.update({k: v for k, v in embs.items() if k != "frozen"})  # pre-trained
            _cv_select(chosen, flat, y, test, args.threads, groups)
        return
    if args.only_finetune:
        _finetune(model, x, y, dw, latlon, month, test, args.finetune_epochs)
        return
    # 1. throughput
    t0 = time.perf_counter()
    emb = model.embed_arrays(x, dynamic_world=dw, latlon=latlon, month=month)
    dt = time.perf_counter() - t0
    print(f"embed_arrays: {raw.shape[0] / dt:,.0f} series/s ({dt:.1f} s)")
    _cube_throughput(model)

    # 2. random forests
    feats = {
        "raw": raw.reshape(len(raw), -1),
        "presto": emb,
        "raw + presto": np.concatenate([raw.reshape(len(raw), -1), emb], axis=1),
    }
    print(f"\nrandom forest ({args.trees} trees, random_state 0, n_jobs {args.threads}): test RMSE")
    for (name, f), ref in zip(feats.items(), REFERENCE[args.dataset], strict=True):
        t0 = time.perf_counter()
        rf = RandomForestRegressor(args.trees, n_jobs=args.threads, random_state=0)
        rf.fit(f[~test], y[~test])
        err = rmse(rf.predict(f[test]), y[test])
        print(f"  {name:<14} {f.shape[1]:>4} features  RMSE {err:7.3f}  (reference {ref:.2f})  "
              f"fit+predict {time.perf_counter() - t0:5.1f} s")  # fmt: skip

    # 3. heads on frozen embeddings
    print("\nheads on the frozen embeddings: test RMSE")
    t0 = time.perf_counter()
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13), cv=5))
    ridge.fit(emb[~test], y[~test])
    print(f"  ridge (RidgeCV)                  RMSE {rmse(ridge.predict(emb[test]), y[test]):7.3f}  "
          f"{time.perf_counter() - t0:5.1f} s")  # fmt: skip
    print(
        f"  predict the train mean    RMSE {rmse(np.full(test.sum(), y[~test].mean()), y[test]):7.3f}"
    )
    if hasattr(presto, "fit_presto_head"):
        for hidden in (0, 64):
            t0 = time.perf_counter()
            head = presto.fit_presto_head(emb[~test], y[~test], task="regression", hidden=hidden)
            kind = "linear" if not hidden else f"MLP ({hidden} hidden)"
            print(f"  fit_presto_head {kind:<16} RMSE {rmse(head.predict(emb[test]), y[test]):7.3f}  "
                  f"{time.perf_counter() - t0:5.1f} s, {head.metadata['epochs']} epochs")  # fmt: skip
    _finetune(model, x, y, dw, latlon, month, test, args.finetune_epochs)


def _finetune(model, x, y, dw, latlon, month, test, epochs) -> None:
    """4. fine-tuning the encoder with a linear head (finetune_presto), RMSE on the test split."""
    import eoai.ml.presto as presto

    tr, te = ~test, test
    t0 = time.perf_counter()
    new, head = presto.finetune_presto(
        model, x[tr], y[tr], latlon=latlon[tr], month=month[tr], dynamic_world=dw[tr],
        epochs=epochs, task="regression",
    )  # fmt: skip
    dt = time.perf_counter() - t0
    pred = head.predict(
        new.embed_arrays(x[te], dynamic_world=dw[te], latlon=latlon[te], month=month[te])
    )
    hist = head.metadata["history"]
    print(f"\nfine-tuned encoder + linear head ({len(hist)} epochs of at most {epochs}, best "
          f"validation loss {head.metadata['best_validation_loss']:.3f}): test RMSE "
          f"{rmse(pred, y[te]):7.3f}  {dt:5.1f} s")  # fmt: skip
    for h in hist:
        print(
            f"  epoch {h['epoch']:>2}: train {h['train_loss']:.3f}  validation {h['validation_loss']:.3f}"
        )


def _cv_select(embs, flat, y, test, threads, groups=None) -> None:
    """5. settings chosen by 5-fold cross-validation on the train split only, then the test RMSE.

    Candidates: random forests (200 trees) and extra trees on the embeddings (``max_features`` /
    ``min_samples_leaf`` variants), RidgeCV, and the mean of a forest and the ridge, on each set of
    embeddings given (frozen; pre-trained on the unlabelled train series with ``--pretrain-epochs``).
    The lowest CV RMSE is refitted on the whole train split; the test RMSE of every candidate is
    printed too (for the record, not used for the choice). With ``groups`` (``--cv-groups``: 1-degree
    lat/lon cells) the folds are spatial (GroupKFold), like the published split by site; then
    shrunk forests (the mean of a forest and the train mean) and more regularised ones are tried.
    """
    from sklearn.base import BaseEstimator, RegressorMixin, clone
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GroupKFold, KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    class Mean(RegressorMixin, BaseEstimator):
        def __init__(self, models=()):
            self.models = models

        def fit(self, X, y):
            self.fitted_ = [clone(m).fit(X, y) for m in self.models]
            return self

        def predict(self, X):
            return np.mean([m.predict(X) for m in self.fitted_], axis=0)

    def rf(**kw):
        return RandomForestRegressor(200, random_state=0, n_jobs=threads, **kw)

    def ridge():
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))

    cands = {}
    for ename, emb in embs.items():
        cands[f"rf {ename} (mf 1.0)"] = (emb, rf())
        cands[f"rf {ename} (mf 0.33, leaf 3)"] = (emb, rf(max_features=0.33, min_samples_leaf=3))
        cands[f"extra trees {ename} (mf 0.33, leaf 3)"] = (
            emb, ExtraTreesRegressor(200, max_features=0.33, min_samples_leaf=3, random_state=0, n_jobs=threads))  # fmt: skip
        cands[f"ridge {ename}"] = (emb, ridge())
        cands[f"mean(rf, ridge) {ename}"] = (
            emb,
            Mean((rf(max_features=0.33, min_samples_leaf=3), ridge())),
        )
    if groups is not None:
        for ename, emb in embs.items():
            cands[f"rf {ename} (mf 0.33, leaf 20)"] = (
                emb,
                rf(max_features=0.33, min_samples_leaf=20),
            )
            cands[f"mean(rf, train mean) {ename}"] = (
                emb, Mean((rf(max_features=0.33, min_samples_leaf=3), DummyRegressor())))  # fmt: skip
        cands["train mean"] = (flat, DummyRegressor())
    tr = ~test
    folds = KFold(5, shuffle=True, random_state=0) if groups is None else GroupKFold(5)
    kind = (
        "5-fold"
        if groups is None
        else f"spatial 5-fold ({len(np.unique(groups[tr]))} 1-degree cells)"
    )
    print(f"\nsettings by {kind} CV on the train split (test RMSE shown, not used for the choice)")
    scores = {}
    for name, (f, est) in cands.items():
        t0 = time.perf_counter()
        g = None if groups is None else groups[tr]
        cv = rmse(cross_val_predict(est, f[tr], y[tr], cv=folds, groups=g), y[tr])
        test_rmse = rmse(est.fit(f[tr], y[tr]).predict(f[test]), y[test])
        scores[name] = (cv, test_rmse)
        print(
            f"  {name:<40} CV RMSE {cv:6.3f}  test RMSE {test_rmse:6.3f}  {time.perf_counter() - t0:5.1f} s",
            flush=True,
        )
    best = min(scores, key=lambda k: scores[k][0])
    print(f"  chosen by CV: {best}: test RMSE {scores[best][1]:.3f}")


def _cv_finetune(starts, x, y, kw, test, epochs) -> None:
    """6. ``finetune_presto`` from each start: 3-fold CV RMSE on the train split, then the test RMSE
    of the fit on the whole train split (the CV decides; the test is for the record)."""
    from sklearn.model_selection import KFold

    import eoai.ml.presto as presto

    tr = np.flatnonzero(~test)
    te = np.flatnonzero(test)
    folds = list(KFold(3, shuffle=True, random_state=0).split(tr))

    def fit_predict(start, fit_idx, pred_idx):
        new, head = presto.finetune_presto(
            start, x[fit_idx], y[fit_idx], epochs=epochs, patience=3, task="regression",
            **{k: v[fit_idx] for k, v in kw.items()},
        )  # fmt: skip
        return head.predict(
            new.embed_arrays(x[pred_idx], **{k: v[pred_idx] for k, v in kw.items()})
        )

    print(f"\nfinetune_presto ({epochs} epochs), 3-fold CV on the train split, then the test split")
    for name, start in starts.items():
        t0 = time.perf_counter()
        oof = np.empty(len(tr))
        for a, b in folds:
            oof[b] = fit_predict(start, tr[a], tr[b])
        cv = rmse(oof, y[tr])
        test_rmse = rmse(fit_predict(start, tr, te), y[te])
        print(f"  fine-tuned from {name:<12} CV RMSE {cv:6.3f}  test RMSE {test_rmse:6.3f}  "
              f"{time.perf_counter() - t0:5.0f} s", flush=True)  # fmt: skip


def _cube_throughput(model) -> None:
    """embed(cube) on the embedded sample vs embed_arrays on the same composited pixels."""
    import dask

    import eoai
    import eoai.ml.presto as presto
    from eoai.ml.presto import embedding as E

    cube = eoai.load(
        eoai.datasets.sample_catalog(),
        bands=presto.PRESTO_CARD.required,
        collections="slovenia-l1c",
    ).compute()
    n_px = cube.sizes["y"] * cube.sizes["x"]
    lazy = cube.chunk({"time": -1, "y": 51, "x": 50})
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=1):
        out = presto.embed(lazy, model).values
    dt_cube = time.perf_counter() - t0
    # baseline: the same series already composited and normalised, straight into the encoder
    steps, months, _ = E._steps(cube.time.values, presto.PRESTO_CARD)
    n = len(presto.PRESTO_CARD.bands)
    x = np.full((n_px, len(months), n), np.nan, "float32")
    for j, b in enumerate(presto.PRESTO_CARD.bands):
        if b.name in cube:
            comp = E._composite(cube[b.name].values, steps, len(months))
            x[:, :, j] = comp.reshape(len(months), -1).T
    x[:, :, 16] = presto.card.ndvi_of_normalised(x[:, :, 8], x[:, :, 4])
    from pyproj import Transformer

    gx, gy = np.meshgrid(cube.x.values, cube.y.values)
    lon, lat = Transformer.from_crs(cube.odc.crs.to_wkt(), "EPSG:4326", always_xy=True).transform(
        gx.ravel(), gy.ravel()
    )
    latlon = np.stack([lat, lon], -1)
    valid = ~np.isnan(x[:, :, 2:12]).all(axis=(1, 2))
    t0 = time.perf_counter()
    base = model.embed_arrays(
        x[valid],
        latlon=latlon[valid],
        month=np.broadcast_to(months, (int(valid.sum()), len(months))),
    )
    dt_base = time.perf_counter() - t0
    diff = np.nanmax(np.abs(out.reshape(128, -1).T[valid] - base))
    print(f"embed(cube), Slovenia sample {cube.sizes['y']} x {cube.sizes['x']} px x "
          f"{cube.sizes['time']} dates -> {len(months)} months, 4 chunks, 1 dask thread: "
          f"{n_px / dt_cube:,.0f} px/s; embed_arrays on the same series: {valid.sum() / dt_base:,.0f} "
          f"px/s; ratio {dt_base / dt_cube:.2f}; max |difference| {diff:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
