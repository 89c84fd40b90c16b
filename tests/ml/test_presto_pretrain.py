"""Presto pre-training (masked auto-encoding): masks, the published decoder, loss falling, I/O."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import eoai
from eoai.errors import DataSkippedWarning, InputError, ModelError

torch = pytest.importorskip("torch")
presto = pytest.importorskip("eoai.ml.presto")
from eoai.ml.presto import pretrain as P  # noqa: E402
from eoai.ml.presto.encoder import GROUPS  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TIME_GROUPS = [g for g in GROUPS if g != "SRTM"]


@pytest.fixture(scope="module")
def presto_dir(shared_data):
    return shared_data / "presto" / "data"


@pytest.fixture(scope="module")
def model(presto_dir):
    return presto.load_encoder(presto_dir / "default_model.pt", card=presto.PRESTO_CARD)


def _series(presto_dir, name, sel):
    npy = presto_dir / name / "npy"
    x = presto.normalise(np.load(npy / "s1_s2_era5_srtm.npy")[sel])
    kw = {k: np.load(npy / f"{k}.npy")[sel] for k in ("latlon", "month", "dynamic_world")}
    return x, kw


def _grid(eo, dw):
    """(n, T, 9) token grid of the temporal groups + Dynamic World, and SRTM per series/step."""
    cols = [eo[:, :, GROUPS[g][0]] for g in TIME_GROUPS] + [dw]
    return np.stack(cols, axis=-1), eo[:, :, GROUPS["SRTM"][0]]


# --- masks --------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", P.MASKS)
@pytest.mark.parametrize("n_steps", [3, 12])
def test_masks_have_the_ratio_and_structure(strategy, n_steps):
    n = 400
    eo, dw = P.make_masks(n, n_steps, (strategy,), 0.75, np.random.default_rng(1))
    total, k = P.n_masked_tokens(n_steps, 0.75)
    grid, srtm = _grid(eo, dw)
    # a token masks all channels of its group; SRTM is one token for all steps
    for idx in GROUPS.values():
        assert (eo[:, :, list(idx)] == eo[:, :, idx[0] : idx[0] + 1]).all()
    assert (srtm == srtm[:, :1]).all()
    counts = grid.sum(axis=(1, 2)) + srtm[:, 0]
    assert (counts == k).all() and total == n_steps * 9 + 1  # exactly int(0.75 * n_tokens)
    assert 0.65 < srtm[:, 0].mean() < 0.85  # SRTM masked with probability ratio
    k_grid = k - srtm[:, 0]
    if strategy == "channel_groups":
        full_groups = grid.all(axis=1).sum(axis=1)
        assert (full_groups >= k_grid // n_steps).all()
    elif strategy in ("contiguous_time", "random_time"):
        full = grid.all(axis=2)  # (n, T) steps with every group masked
        assert (full.sum(axis=1) >= k_grid // 9).all()
        if strategy == "contiguous_time":
            for row, kk in zip(full, k_grid // 9, strict=True):
                runs = np.flatnonzero(np.diff(np.r_[0, row.astype(int), 0]))
                assert (runs[1::2] - runs[::2]).max() >= kk  # one run of kk steps
    else:  # random: fewer whole groups than the channel-group strategy masks by design
        assert grid.all(axis=1).sum(axis=1).mean() < (k_grid // n_steps).mean() - 1
    # a mix of strategies: each series one of them, all with the same count
    eo, dw = P.make_masks(50, n_steps, P.MASKS, 0.5, np.random.default_rng(0))
    grid, srtm = _grid(eo, dw)
    assert (grid.sum(axis=(1, 2)) + srtm[:, 0] == P.n_masked_tokens(n_steps, 0.5)[1]).all()


# --- the published decoder and the loss -----------------------------------------------------


def test_published_decoder_is_loaded_and_reconstructs(model, presto_dir):
    assert model.decoder is not None
    assert model.decoder.channel_embeddings is model.encoder.channel_embed  # shared, as published
    state = torch.load(presto_dir / "default_model.pt", map_location="cpu", weights_only=True)
    for k, v in model.decoder.state_dict().items():
        assert torch.equal(v, state[f"decoder.{k}"]), k
    x, kw = _series(presto_dir, "algae_blooms", slice(0, 96))
    eo, dwm = P.make_masks(96, 12, ("random",), 0.75, np.random.default_rng(0))
    batch = [
        torch.from_numpy(x), torch.from_numpy(np.isnan(x)),
        torch.from_numpy(kw["dynamic_world"].astype("int64")),
        torch.from_numpy(kw["latlon"].astype("float32")),
        torch.from_numpy(kw["month"].astype("int64")),
    ]  # fmt: skip
    with torch.no_grad():
        _, mse, n_eo = P._loss(
            model.encoder, model.decoder, batch, torch.from_numpy(eo), torch.from_numpy(dwm), torch
        )
    channel_mean = np.nanmean(x, axis=(0, 1))
    baseline = ((x - channel_mean) ** 2)[eo].mean()
    # the authors' decoder from the visible quarter of the tokens: less than half the error of
    # the channel means (measured 0.012 vs 0.027); a wrong token layout does worse than the means
    assert float(mse) < 0.6 * baseline
    assert n_eo == int(eo[:, :, [i for i in range(17) if i not in GROUPS["SRTM"]]].sum()) + int(
        eo[:, 0, GROUPS["SRTM"][0]].sum() * 2
    )


def test_pretraining_from_scratch_lowers_heldout_loss(presto_dir):
    x, kw = _series(presto_dir, "fuel_moisture", slice(0, 160))
    m = presto.pretrain_presto(
        x, model="scratch", epochs=3, lr=1e-3, batch_size=32, val_fraction=0.25, patience=3,
        device="cpu", progress=False, **kw,
    )  # fmt: skip
    meta = m.metadata
    hist = meta["history"]
    assert meta["decoder"] == "new (from scratch)" and meta["n_validation"] == 40
    # held-out masked-reconstruction MSE (fixed masks): ~1.4 at random init, < 0.15 after 3 epochs
    assert meta["validation_mse_after"] < meta["validation_mse_before"] / 5
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert meta["validation_loss_after"] == min(h["validation_loss"] for h in hist)


def test_pretrained_model_saves_loads_and_finetunes(model, presto_dir, tmp_path):
    x, kw = _series(presto_dir, "fuel_moisture", slice(0, 60))
    before = model.weights_hash()
    m = presto.pretrain_presto(x, model=model, epochs=1, batch_size=64, progress=False, **kw)
    assert model.weights_hash() == before  # the starting model is left as it was
    assert m.weights_hash() != before and m.metadata["decoder"].startswith("from ")
    assert torch.equal(m.encoder.pos_embed, model.encoder.pos_embed)
    assert m.decoder.channel_embeddings is m.encoder.channel_embed
    path = eoai.ml.save_model(m, tmp_path / "pre.pt")  # = presto.save_encoder
    state = torch.load(path, weights_only=True)  # plain tensors, the published file's layout
    assert any(k.startswith("decoder.") for k in state) and "encoder.norm.weight" in state
    meta = json.loads((tmp_path / "pre.pt.json").read_text())
    assert meta["decoder"] is True and meta["metadata"]["epochs"] == 1
    again = eoai.ml.load_model(path)
    assert again.weights_hash() == m.weights_hash() and again.decoder is not None
    sub = {k: v[:4] for k, v in kw.items()}
    np.testing.assert_allclose(
        again.embed_arrays(x[:4], **sub), m.embed_arrays(x[:4], **sub), atol=1e-6
    )
    # and pre-training continues from the saved file; fine-tuning takes the pre-trained model
    m2 = presto.pretrain_presto(x, model=path, epochs=1, progress=False, **kw)
    assert m2.metadata["decoder"] == f"from {path}"
    m3 = presto.pretrain_presto(x, model=m, epochs=1, progress=False, **kw)  # frozen in memory
    assert m3.weights_hash() != m.weights_hash()
    assert torch.equal(m3.decoder.month_embed.weight, model.decoder.month_embed.weight)
    y = np.load(presto_dir / "fuel_moisture" / "npy" / "target.npy")[:60]
    new, head = presto.finetune_presto(m, x, y, epochs=1, batch_size=64, seed=1, **kw)
    assert head.predict(new.embed_arrays(x[:4], **sub)).shape == (4,)


@pytest.mark.slow
def test_pretrain_on_a_cube_computes_only_the_sample_once(model, count_computes):
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(0)
    t = pd.to_datetime(["2021-04-03", "2021-05-20", "2021-06-10", "2021-06-25"])
    shape = (4, 20, 20)
    base = rng.uniform(0.05, 0.4, (1,) + shape[1:]) * np.linspace(0.8, 1.2, 4)[:, None, None]
    cube = xr.Dataset(
        {b: (("time", "y", "x"), (base * (1 + 0.1 * i)).astype("float32"))
         for i, b in enumerate(presto.PRESTO_CARD.required)},
        coords={"time": t, "y": 5.1e6 - 10.0 * np.arange(20), "x": 4.6e5 + 10.0 * np.arange(20)},
    ).chunk({"time": -1, "y": 10, "x": 10})  # fmt: skip
    cube = cube.assign_coords(spatial_ref=xr.DataArray(0, attrs={"crs_wkt": "EPSG:32633"}))
    hole = (cube.y > cube.y[5]) & (cube.x < cube.x[5])  # 25 px without valid data
    cube = cube.where(~hole)
    with count_computes() as c, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = presto.pretrain_presto(cube, model=model, n_pixels=1000, epochs=1, progress=False)
    assert c.count == 1
    skipped = [w for w in caught if issubclass(w.category, DataSkippedWarning)]
    assert len(skipped) == 1 and "25 of 400 sampled pixels" in str(skipped[0].message)
    assert m.metadata["n_series"] == 375 and m.metadata["n_steps"] == 3
    # a sample of 50 pixels: 50 series (fewer when some fall in the hole), at distinct pixels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSkippedWarning)
        x, mask, dw, latlon, month = P._cube_series(cube, model.card, 50, 0, "auto", "auto")
    assert 40 <= len(x) <= 50 and len(np.unique(latlon, axis=0)) == len(x)
    assert x.shape[1:] == (3, 17) and (month == [3, 4, 5]).all() and (dw == 9).all()


def test_pretrain_errors(model, presto_dir):
    x, kw = _series(presto_dir, "fuel_moisture", slice(0, 30))
    with pytest.raises(InputError, match="needs a starting model"):
        presto.pretrain_presto(x, **kw)
    with pytest.raises(ModelError, match="needs a PrestoModel"):
        presto.pretrain_presto(x, model=3, **kw)
    with pytest.raises(InputError, match="masks must be"):
        presto.pretrain_presto(x, model=model, masks=("time",), **kw)
    with pytest.raises(InputError, match="mask_ratio"):
        presto.pretrain_presto(x, model=model, mask_ratio=1.0, **kw)
    with pytest.raises(InputError, match="at least 20"):
        presto.pretrain_presto(x[:10], model=model, **{k: v[:10] for k, v in kw.items()})
    with pytest.raises(InputError, match="needs latlon"):
        presto.pretrain_presto(x, model=model)
    with pytest.raises(InputError, match="months 0"):
        presto.pretrain_presto(x, model=model, **{**kw, "month": kw["month"] + 12})
    with pytest.raises(InputError, match="device"):
        presto.pretrain_presto(x, model=model, device="tpu9", **kw)


def test_packed_tokens_equal_the_key_masked_pass(model):
    """encode_tokens moves kept tokens to the front and cuts the batch (as the reference): the same
    outputs as attending over all tokens with masked keys."""
    from eoai.ml.presto.encoder import encode_tokens

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(0.3, 0.1, (6, 4, 17)).astype("float32"))
    eo, dw_mask = P.make_masks(6, 4, P.MASKS, 0.75, rng)
    args = (x, torch.from_numpy(eo), torch.where(torch.from_numpy(dw_mask), 9, 3),
            torch.zeros(6, 2), torch.arange(4).repeat(6, 1))  # fmt: skip
    with torch.no_grad():
        packed, keep = encode_tokens(model.encoder, *args)
        tokens, keep2 = model.encoder.tokens(*args)
        for blk in model.encoder.blocks:
            tokens = blk(tokens, keep2)
        full = model.encoder.norm(tokens)
    assert torch.equal(keep, keep2) and int(keep.sum(1).max()) < keep.shape[1] // 2
    torch.testing.assert_close(packed[keep], full[keep], atol=1e-5, rtol=1e-5)
    assert (packed[~keep] == 0).all()
