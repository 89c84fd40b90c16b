"""Presto in eoai: the authors' reference outputs, the input contract, lazy cube embeddings."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import eoai
import eoai.ml
from eoai.errors import CRSError, DataSkippedWarning, InputError, ModelError

torch = pytest.importorskip("torch")
presto = pytest.importorskip("eoai.ml.presto")
PRESTO_CARD = presto.PRESTO_CARD
S2 = PRESTO_CARD.required

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def presto_dir(shared_data):
    return shared_data / "presto"


@pytest.fixture(scope="module")
def model(presto_dir):
    return presto.load_encoder(presto_dir / "data" / "default_model.pt", card=PRESTO_CARD)


@pytest.fixture(scope="module")
def reference(presto_dir):
    return json.loads((presto_dir / "reference_embeddings.json").read_text())


@pytest.fixture(scope="module")
def sample_cube():
    """30 x 30 px of the embedded sample (forest, grassland, shrubland, artificial), 4 chunks."""
    cube = eoai.load(eoai.datasets.sample_catalog(), bands=S2, collections="slovenia-l1c")
    cube = cube.isel(y=slice(45, 75), x=slice(35, 65))
    hole = (cube.y < cube.y[21]) & (cube.x < cube.x[6])  # no valid data in 8 x 6 px
    return cube.where(~hole).chunk({"time": -1, "y": 15, "x": 15}), hole.transpose("y", "x").values


@pytest.fixture(scope="module")
def sample_embedding(model, sample_cube):
    """(lazy embeddings, computed values, warnings of the compute)."""
    emb = sample_cube[0].eoai.embed(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = emb.values
    return emb, values, [w for w in caught if issubclass(w.category, DataSkippedWarning)]


# --- 1. the published weights reproduce the authors' outputs ---------------------------------


@pytest.mark.parametrize("dataset", ["fuel_moisture", "algae_blooms"])
def test_reproduces_reference_embeddings(model, reference, dataset):
    ref = reference[dataset]
    x = presto.normalise(np.array(ref["x_raw"]))
    assert reference["normed_bands"] == [b.source for b in PRESTO_CARD.bands]
    emb = model.embed_arrays(
        x, dynamic_world=np.array(ref["dynamic_world"]), latlon=np.array(ref["latlon"]),
        month=np.array(ref["month"]),
    )  # fmt: skip
    expected = np.array(ref["embedding"])
    assert emb.shape == expected.shape == (16, 128)
    assert np.abs(emb - expected).max() <= 1e-4


def test_normalisation_matches_reference_constants(reference):
    raw = np.array(reference["fuel_moisture"]["x_raw"])
    x = presto.normalise(raw)
    add, div = np.array(reference["add_by"]), np.array(reference["divide_by"])
    keep = [i for i, b in enumerate(reference["bands_raw"]) if b != "B9"]
    manual = ((raw + add) / div)[..., keep]
    np.testing.assert_allclose(x[..., :-1], manual[..., :-1], rtol=1e-6)
    b8, b4 = manual[..., 8], manual[..., 4]
    np.testing.assert_allclose(x[..., -1], (b8 - b4) / (b8 + b4), rtol=1e-5)
    # the card holds the same constants, in the same order
    np.testing.assert_allclose(PRESTO_CARD.add_by[:-1], add[keep][:-1])
    np.testing.assert_allclose(PRESTO_CARD.divide_by[:-1], div[keep][:-1])


def test_mixed_masks_in_one_batch_equal_token_removal(model, reference):
    """Key-masked attention over a batch with different masks == each series alone (whose fully
    masked tokens are removed, as in the authors' code)."""
    ref = reference["algae_blooms"]
    x = presto.normalise(np.array(ref["x_raw"]))[:6]
    rng = np.random.default_rng(0)
    mask = np.zeros(x.shape, bool)
    for i in range(6):  # cloudy months (all S2 + NDVI), no S1 for some series
        mask[i, rng.choice(12, size=i + 1, replace=False), 2:12] = True
        mask[i, :, 16] = mask[i, :, 2]
        if i % 2:
            mask[i, :, :2] = True
    kw = dict(dynamic_world=np.array(ref["dynamic_world"])[:6], latlon=np.array(ref["latlon"])[:6])
    month = np.array(ref["month"])[:6]
    together = model.embed_arrays(x, mask, month=month, **kw)
    alone = np.concatenate([
        model.embed_arrays(x[i : i + 1], mask[i : i + 1], month=month[i : i + 1],
                           dynamic_world=kw["dynamic_world"][i : i + 1], latlon=kw["latlon"][i : i + 1])
        for i in range(6)
    ])  # fmt: skip
    assert np.abs(together - alone).max() < 1e-5
    full = model.embed_arrays(x, month=month, **kw)
    assert np.abs(together - full).max() > 1e-2  # masks do change the embedding


# --- 2. the input contract -----------------------------------------------------------------


def test_file_without_card_is_refused(presto_dir):
    with pytest.raises(ModelError, match=r"no model card .*card=eoai.ml.presto.PRESTO_CARD"):
        presto.load_encoder(presto_dir / "data" / "default_model.pt")


def test_save_load_keeps_card_and_weights(model, tmp_path, reference):
    path = presto.save_encoder(model, tmp_path / "presto.pt")
    meta = json.loads((tmp_path / "presto.pt.json").read_text())
    assert meta["loader"] == "eoai.ml.presto.model:load_saved"
    assert meta["model_card"]["bands"][2] == {
        "name": "blue", "source": "B2", "group": "S2_RGB", "units": "reflectance x 1e4",
        "add_by": 0.0, "divide_by": 10000.0, "temporal": True, "optional": False, "derived": None,
    }  # fmt: skip
    again = presto.load_encoder(path)
    via_persist = eoai.ml.load_model(path)
    assert again.card == via_persist.card == PRESTO_CARD
    assert again.weights_hash() == model.weights_hash() == meta["weights_sha256"]
    other = presto.ModelCard.from_dict({**PRESTO_CARD.to_dict(), "resolution_m": 30.0})
    with pytest.raises(ModelError, match="differs from the one stored"):
        presto.load_encoder(path, card=other)
    torch.save({"x": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="do not fit the architecture"):
        presto.load_encoder(tmp_path / "bad.pt", card=PRESTO_CARD)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="weights_only=True"):
        presto.load_encoder(tmp_path / "junk.pt", card=PRESTO_CARD)


def test_card_describes_inputs():
    text = PRESTO_CARD.describe()
    assert "blue                 B2" in text and "(reflectance x 1e4 + 0) / 10000" in text
    assert "[optional, static]" in text  # SRTM
    bad = {**PRESTO_CARD.to_dict(), "card_version": 99}
    with pytest.raises(ModelError, match="newer than this eoai reads"):
        presto.ModelCard.from_dict(bad)


def _tiny_cube(dates, value=0.2, crs=True, **extra):
    t = pd.to_datetime(dates)
    shape = (len(t), 2, 3)
    data = {b: (("time", "y", "x"), np.full(shape, value, "float32")) for b in S2}
    data["red"] = (("time", "y", "x"), np.full(shape, value / 2, "float32"))
    data.update(extra)
    cube = xr.Dataset(
        data, coords={"time": t, "y": [5.08e6, 5.07999e6], "x": [4.65e5, 4.6501e5, 4.6502e5]}
    )
    if crs:
        import odc.geo.xr  # noqa: F401

        cube = cube.odc.assign_crs("EPSG:32633")
    return cube


def test_cube_errors_say_what_to_change(model):
    cube = _tiny_cube(["2021-05-01", "2021-06-01"])
    with pytest.raises(
        ModelError, match=r"lacks 1 band\(s\).*rededge2.*rename first.*'B06': 'rededge2'"
    ):
        presto.embed(cube.rename(rededge2="B06"), model)
    with pytest.raises(ModelError, match=r"reads vv, vh together.*add vh"):
        presto.embed(cube.assign(vv=cube.red), model)
    long = _tiny_cube(pd.date_range("2019-01-01", periods=26, freq="MS"))
    with pytest.raises(
        ModelError,
        match=r"spans 26 months .* at most 24 .*cube.sel\(time=slice\('2019-01', '2019-12'\)\)",
    ):
        presto.embed(long, model)
    with pytest.raises(CRSError, match="no CRS"):
        presto.embed(_tiny_cube(["2021-05-01"], crs=False), model)
    with pytest.raises(InputError, match="scaling must be one of"):
        presto.embed(cube, model, scaling="toa")


def test_scaling_detected_and_converted(model):
    refl = _tiny_cube(["2021-05-01", "2021-06-01"], value=0.2)
    dn = refl * 1e4
    with pytest.raises(ModelError, match=r"median of 2000: DN .* pass scaling='dn'"):
        presto.embed(dn, model).compute()
    with pytest.raises(ModelError, match=r"reflectance 0-1, not DN .* scaling='reflectance'"):
        presto.embed(refl, model, scaling="dn").compute()
    a = presto.embed(refl, model).values
    b = presto.embed(dn, model, scaling="dn").values
    with pytest.raises(InputError, match="declares no nodata"):
        presto.embed(dn.astype("uint16"), model)
    dn16 = dn.astype("uint16")
    for v in dn16.data_vars.values():
        v.attrs["nodata"] = 0
    c = presto.embed(dn16, model).values  # integers are DN
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, c, atol=1e-5)
    lin = refl.assign(vv=refl.red * 0 + 0.05, vh=refl.red * 0 + 0.01)
    with pytest.raises(ModelError, match="linear backscatter"):
        presto.embed(lin, model).compute()
    db = lin.assign(vv=10 * np.log10(lin.vv), vh=10 * np.log10(lin.vh))
    np.testing.assert_allclose(
        presto.embed(lin, model, s1_units="linear").values,
        presto.embed(db, model).values,
        atol=1e-5,
    )


def test_pipeline_equals_hand_built_series(model):
    """Monthly median composite, normalisation, NDVI, masks, months and lat/lon of one pixel."""
    dates = ["2021-04-28", "2021-05-03", "2021-05-10", "2021-05-25", "2021-07-02"]
    cube = _tiny_cube(dates)
    rng = np.random.default_rng(1)
    vals = {b: rng.uniform(0.02, 0.4, (5, 2, 3)).astype("float32") for b in S2}
    vals["blue"][1, 0, 0] = np.nan  # cloud-masked value: left out of May's median
    cube = cube.assign({b: (("time", "y", "x"), v) for b, v in vals.items()})
    got = presto.embed(cube, model).values[:, 0, 0]
    # by hand: steps April, May, June (no data: masked), July
    x = np.zeros((1, 4, 17), "float32")
    mask = np.zeros((1, 4, 17), bool)
    for j, b in enumerate(PRESTO_CARD.bands):
        if b.derived:
            continue
        if b.name not in vals:
            mask[..., j] = True
            continue
        v = vals[b.name][:, 0, 0]
        comp = [v[0], np.nanmedian(v[1:4]), np.nan, v[4]]
        x[0, :, j] = comp
    mask[0, 2, :] = True
    x[0, 2] = 0
    nir, red = x[0, [0, 1, 3], 8], x[0, [0, 1, 3], 4]
    x[0, [0, 1, 3], 16] = (nir - red) / (nir + red)
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(
        4.65e5, 5.08e6
    )
    want = model.embed_arrays(
        x, mask, latlon=np.array([[lat, lon]]), month=np.array([[3, 4, 5, 6]])
    )
    np.testing.assert_allclose(got, want[0], atol=1e-5)


# --- 3. lazy embeddings of the embedded sample cube -------------------------------------------


@pytest.mark.slow
def test_embed_sample_cube_lazy(model, sample_cube, sample_embedding, count_computes):
    cube, hole = sample_cube
    with count_computes() as counter:
        emb = cube.eoai.embed(model)
    assert counter.count == 0
    assert emb.dims == ("embedding", "y", "x") and emb.shape == (128, 30, 30)
    assert emb.chunks == ((128,), (15, 15), (15, 15))
    assert json.loads(emb.attrs["eoai:parameters"])["months"] == [6, 7, 8]
    _, values, caught = sample_embedding
    assert hole.sum() == 48
    assert [str(w.message)[:50] for w in caught] == [
        "embed: 48 of 900 pixels have no valid Sentinel-1 /"
    ]
    assert np.isnan(values[:, hole]).all()
    assert np.isfinite(values[:, ~hole]).all()
    assert emb.odc.crs.epsg == 32633
    # the embeddings vary from pixel to pixel (not one constant vector for the whole crop)
    assert values[:, ~hole].std(axis=1).mean() > 0.05


def test_model_enters_graph_once(model, sample_cube):
    cube = sample_cube[0]
    one = cube.chunk({"y": -1, "x": -1}).eoai.embed(model)
    four = cube.chunk({"y": 15, "x": 15}).eoai.embed(model)
    sizes = []
    for emb in (one, four):
        graph = dict(emb.data.__dask_graph__())
        assert sum(1 for k in graph if str(k).startswith("presto-")) == 1
        sizes.append(len(pickle.dumps(graph)))
    weights = 404_160 * 4
    assert sizes[0] > weights  # the model is in the graph ...
    assert sizes[1] - sizes[0] < weights / 4  # ... once, not once per chunk


@pytest.mark.slow
def test_embeddings_feed_extract_fit_classify(sample_embedding):
    emb, values, _ = sample_embedding
    feats = emb.copy(data=values)  # the (embedding, y, x) array itself: one feature per dim
    labels = eoai.datasets.sample_labels()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSkippedWarning)  # labels outside the crop
        warnings.simplefilter("ignore", eoai.errors.FewSamplesWarning)
        samples = feats.eoai.extract(labels, label="class", max_per_polygon=20)
        as_ds = feats.to_dataset("embedding").eoai.extract(
            labels, label="class", max_per_polygon=20
        )
    assert samples.equals(as_ds)
    assert list(samples.columns[:2]) == ["presto_000", "presto_001"]
    assert {"forest", "grassland"} <= set(samples["label"])
    rf = eoai.ml.fit(samples, n_estimators=10, threads=1)
    out = feats.chunk({"y": 15, "x": 15}).eoai.classify(rf, uncertainty=None, confidence=False)
    assert out["class"].chunks is not None
    cls = out["class"].values
    hole = np.isnan(values[0])
    assert (cls[hole] == 255).all() and set(np.unique(cls[~hole])) <= set(rf.codes)
    # the class map is the model applied to each pixel's embedding, in the features' order
    flat = values.reshape(128, -1).T
    want = np.asarray(rf.codes)[np.argmax(rf.predict_proba(flat[~hole.ravel()]), axis=1)]
    np.testing.assert_array_equal(cls[~hole], want)


# --- 5. fine-tuning ----------------------------------------------------------------------------


@pytest.mark.slow
def test_finetune_changes_encoder_not_encodings(model, presto_dir, tmp_path):
    npy = presto_dir / "data" / "fuel_moisture" / "npy"
    sel = slice(0, 80)
    raw = np.load(npy / "s1_s2_era5_srtm.npy")[sel]
    y = np.load(npy / "target.npy")[sel]
    kw = {k: np.load(npy / f"{k}.npy")[sel] for k in ("latlon", "month", "dynamic_world")}
    x = presto.normalise(raw)
    before = model.weights_hash()
    new, head = presto.finetune_presto(model, x, y, epochs=2, patience=5, batch_size=32, **kw)
    assert model.weights_hash() == before  # the pretrained model is left as it was
    assert new.card == model.card and new.weights_hash() != before
    assert torch.equal(new.encoder.pos_embed, model.encoder.pos_embed)
    assert torch.equal(new.encoder.month_embed.weight, model.encoder.month_embed.weight)
    hist = head.metadata["history"]
    assert len(hist) == 2 and hist[1]["train_loss"] < hist[0]["train_loss"]
    assert head.metadata["best_validation_loss"] == min(h["validation_loss"] for h in hist)
    again = presto.load_encoder(presto.save_encoder(new, tmp_path / "ft.pt"))
    np.testing.assert_allclose(again.embed_arrays(x[:4], **{k: v[:4] for k, v in kw.items()}),
                               new.embed_arrays(x[:4], **{k: v[:4] for k, v in kw.items()}), atol=1e-6)  # fmt: skip


def test_finetune_errors_say_what_to_change(model, presto_dir):
    npy = presto_dir / "data" / "fuel_moisture" / "npy"
    x = presto.normalise(np.load(npy / "s1_s2_era5_srtm.npy")[:12])
    y = np.load(npy / "target.npy")[:12].astype("float64")
    kw = {k: np.load(npy / f"{k}.npy")[:12] for k in ("latlon", "month", "dynamic_world")}
    # both were a TypeError ('NoneType' object is not subscriptable): no epoch kept a state
    with pytest.raises(InputError, match=r"1 of 12 targets are missing \(NaN\); drop those series"):
        presto.finetune_presto(model, x, np.where(np.arange(12) == 3, np.nan, y), epochs=1, **kw)
    with pytest.raises(ModelError, match=r"NaN or infinite in all 2 epochs .*lower lr and head_lr"):
        presto.finetune_presto(model, x, y, epochs=2, lr=1e30, head_lr=1e30, **kw)


def test_dynamic_world_and_static_inputs(model):
    """dynamic_world: most frequent valid class per month (NaN / 9 missing); SRTM static (y, x)."""
    dates = ["2021-05-03", "2021-05-10", "2021-05-25", "2021-06-02"]
    cube = _tiny_cube(dates)
    dw = np.full((4, 2, 3), np.nan, "float32")
    dw[:3, 0, 0] = [2, 2, 5]  # May -> 2; June missing -> 9
    cube["dynamic_world"] = (("time", "y", "x"), dw)
    cube["elevation"] = (("y", "x"), np.full((2, 3), 400.0, "float32"))
    cube["slope"] = (("y", "x"), np.full((2, 3), 5.0, "float32"))
    got = presto.embed(cube, model).values[:, 0, 0]
    x = np.zeros((1, 2, 17), "float32")
    mask = np.ones((1, 2, 17), bool)
    for j, b in enumerate(PRESTO_CARD.bands):
        if b.name in S2:
            x[..., j], mask[..., j] = (0.1 if b.name == "red" else 0.2), False
    x[..., 14], x[..., 15], mask[..., 14:16] = 400 / 2000, 5 / 50, False
    x[..., 16], mask[..., 16] = (0.2 - 0.1) / (0.2 + 0.1), False
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(
        4.65e5, 5.08e6
    )
    kw = dict(latlon=np.array([[lat, lon]]), month=np.array([[4, 5]]))
    want = model.embed_arrays(x, mask, dynamic_world=np.array([[2, 9]]), **kw)
    np.testing.assert_allclose(got, want[0], atol=1e-5)
    without = model.embed_arrays(x, mask, dynamic_world=np.array([[9, 9]]), **kw)
    assert np.abs(without[0] - got).max() > 1e-3  # the Dynamic World token counts
