"""A fine-tuned Presto from a cube's samples: ``fit(samples, "presto", finetune=True, encoder=...)``.

:func:`fit_finetuned` (reached through :func:`eoai.ml.fit`) reads the ``<band>_<date>`` columns and
``x`` / ``y`` of a sample table from :func:`eoai.ml.extract` as the encoder's inputs with the rules
of :func:`eoai.ml.presto.embed`: the table's columns are laid out as a one-row cube (``(time, y, x)``
with the samples along ``x``) and go through the same private functions (card check, scaling
checks, monthly composites, normalisation, masks of absent groups and of NaN dates), lat/lon from
``x`` / ``y`` and the samples' CRS (``attrs["eoai:cube"]["crs"]``). The encoder and a linear head
are then trained by :func:`eoai.ml.presto.finetune_presto` (early stopping on held-out polygons
of each class, the ``group`` column, as :func:`~eoai.ml.presto.fit_presto_head` does).

The result (:class:`PrestoFinetunedClassifier` / :class:`PrestoFinetunedRegressor`) follows the
eoai model contract: ``features`` are the table columns it reads (the card's ``<band>_<date>``
columns, then ``x`` and ``y``), ``predict_proba`` / ``predict`` take those rows (a DataFrame, or an
array in ``features`` order; an array of the band columns alone takes the lat/lon of the training
samples' centre). ``classify(cube, model)`` / ``cube.eoai.predict(model)`` embed the model's bands
and dates of the cube with the fine-tuned encoder (:func:`embed`, lazily, the encoder one graph
key) and apply the head chunk by chunk, so the map at a sample pixel equals the prediction of its
row. :func:`eoai.ml.save_model` writes one weights-only torch file (encoder and head tensors) and
the sidecar with the model card; :func:`eoai.ml.load_model` reads it back.

Examples
--------
A table as :func:`eoai.ml.extract` makes it (here by hand, with a random encoder to keep it quick;
use :func:`load_encoder` for the published weights):

>>> import numpy as np, pandas as pd, eoai.ml
>>> from eoai.ml.presto import PRESTO_CARD, PrestoModel
>>> from eoai.ml.presto.encoder import PrestoEncoder
>>> rng = np.random.default_rng(0)
>>> level = np.repeat([0.05, 0.3], 10)
>>> samples = pd.DataFrame({f"{b}_2021-0{m}-15": level + rng.normal(0, 0.01, 20)
...                         for b in PRESTO_CARD.required for m in (5, 6)})
>>> samples["x"], samples["y"] = 4.6e5 + 10 * np.arange(20), 5.1e6
>>> samples["label"] = np.repeat(["bare", "crop"], 10)
>>> samples.attrs["eoai:cube"] = {"crs": "EPSG:32633"}  # eoai.ml.extract records it
>>> encoder = PrestoModel(PrestoEncoder(), PRESTO_CARD)
>>> model = eoai.ml.fit(samples, "presto", finetune=True, encoder=encoder, epochs=2)
>>> model.features[-3:], model.predict_proba(samples).shape
(['swir22_2021-06-15', 'x', 'y'], (20, 2))

On a cube with these bands and dates, ``cube.eoai.classify(model)`` maps it (lazily).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ... import _skipped
from ...errors import CRSError, DataSkippedWarning, InputError, ModelError
from ..base import ClassifierModel
from ..regress import RegressorModel
from .card import ModelCard
from .head import PrestoClassifierHead, PrestoRegressorHead
from .model import PrestoModel, load_encoder

LOADER = "eoai.ml.presto.finetuned:load_saved"
FORMAT = "torch-state-dict"
_DATED = re.compile(r"^(?P<band>.+)_(?P<date>\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2})?)$")
#: finetune_presto's training parameters that fit(..., finetune=True) passes on
TRAIN_PARAMS = (
    "epochs", "lr", "head_lr", "weight_decay", "batch_size", "validation", "patience", "device",
)  # fmt: skip


def _card_columns(columns: list[str], card: ModelCard) -> tuple[list[str], list[str]]:
    """The columns of the card's inputs (in table order) and the sorted date labels."""
    from .embedding import DW_VAR

    names = {b.name for b in card.bands if not b.derived} | {DW_VAR}
    static = {b.name for b in card.bands if not b.temporal}
    used, dates = [], set()
    for c in columns:
        m = _DATED.match(str(c))
        if m and m["band"] in names:
            used.append(str(c))
            dates.add(m["date"])
        elif str(c) in static:
            used.append(str(c))
    return used, sorted(dates)


def _pseudo_cube(
    values: np.ndarray, columns: list[str], dates: list[str], crs_wkt: str
) -> xr.Dataset:
    """Rows ``(n, columns)`` as a ``(time, y=1, x=n)`` cube: what embed's checks read."""
    n = values.shape[0]
    pos = {d: i for i, d in enumerate(dates)}
    data: dict[str, Any] = {}
    for j, c in enumerate(columns):
        m = _DATED.match(c)
        if m is None:  # a static input
            data[c] = (("y", "x"), values[None, :, j])
            continue
        arr = data.setdefault(m["band"], np.full((len(dates), 1, n), np.nan, "float32"))
        arr[pos[m["date"]], 0] = values[:, j]
    coords = {
        "time": pd.to_datetime(dates),
        "y": [0.0],
        "x": np.arange(n, dtype="float64"),
        "spatial_ref": xr.DataArray(0, attrs={"crs_wkt": crs_wkt}),
    }
    return xr.Dataset(
        {k: v if isinstance(v, tuple) else (("time", "y", "x"), v) for k, v in data.items()},
        coords=coords,
    )


def series_of_rows(
    values: np.ndarray,
    xy: np.ndarray,
    columns: list[str],
    card: ModelCard,
    crs_wkt: str,
    scaling: str,
    s1_units: str,
    what: str = "fit(model='presto', finetune=True)",
) -> tuple[np.ndarray, ...]:
    """Sample rows -> the encoder's inputs ``(x, mask, dynamic_world, latlon, month)`` and which
    rows have any valid Sentinel-1 / Sentinel-2 value: embed's rules (:mod:`.embedding`)."""
    from .embedding import _latlon, _prepare, _series

    _, dates = _card_columns(columns, card)
    cube = _pseudo_cube(np.asarray(values, "float32"), columns, dates, crs_wkt)
    cube, arrays, layout, steps, months, _, wkt = _prepare(cube, card, scaling, s1_units, what)
    n = values.shape[0]
    flat = [np.asarray(a.transpose(*(("time",) if "time" in a.dims else ()), "y", "x").values)
            .reshape(*(a.shape[:1] if "time" in a.dims else ()), n) for a in arrays.values()]  # fmt: skip
    x, mask, dw, valid = _series(flat, layout, card, steps, months, n)
    latlon = _latlon(xy[:, 0], xy[:, 1], wkt)
    month = np.broadcast_to(months, (n, len(months))).copy()
    return x, mask, dw, latlon, month, valid


class _Finetuned:
    """What both fine-tuned models share: inputs from rows or a cube, the head, saving."""

    encoder: PrestoModel
    head: Any
    features: list[str]
    metadata: dict[str, Any]
    allow_nan = True  # cloudy dates (NaN) are masked, as embed does

    def _setup(self, encoder, head, columns, crs_wkt, scaling, s1_units, centre) -> None:
        self.encoder, self.head = encoder, head
        self.columns = list(columns)
        self.crs_wkt, self.scaling, self.s1_units = str(crs_wkt), scaling, s1_units
        self.centre = [float(centre[0]), float(centre[1])]

    def _rows(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Band values ``(n, columns)`` and ``x``, ``y`` ``(n, 2)`` of rows (module docstring)."""
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.columns if c not in X.columns]
            if missing:
                raise ModelError(
                    f"the rows lack {len(missing)} column(s) of the model: {missing[:8]}; "
                    "extract them from a cube with the bands and dates the model was trained on"
                )
            vals = X[self.columns].to_numpy("float32")
            if {"x", "y"} <= set(X.columns):
                return vals, X[["x", "y"]].to_numpy("float64")
            return vals, np.broadcast_to(np.asarray(self.centre), (len(X), 2))
        X = np.asarray(X, dtype="float32")
        n_cols = len(self.columns)
        if X.ndim == 2 and X.shape[1] == n_cols + 2:
            return X[:, :n_cols], X[:, n_cols:].astype("float64")
        if X.ndim == 2 and X.shape[1] == n_cols:
            return X, np.broadcast_to(np.asarray(self.centre), (len(X), 2))
        raise InputError(
            f"X must be (n, {n_cols + 2}) rows in the order of model.features (the band columns, "
            f"then x and y), or (n, {n_cols}) band columns; got shape {X.shape}"
        )

    def embeddings(self, X: Any) -> np.ndarray:
        """Fine-tuned embeddings ``(n, 128)`` of rows (NaN for rows without any valid value)."""
        vals, xy = self._rows(X)
        x, mask, dw, latlon, month, valid = series_of_rows(
            vals, xy, self.columns, self.encoder.card, self.crs_wkt, self.scaling, self.s1_units,
            what="predict",
        )  # fmt: skip
        out = np.full((len(vals), self.encoder.card.embedding_size), np.nan, "float32")
        if valid.any():
            out[valid] = self.encoder.embed_arrays(
                x[valid], mask[valid], dw[valid], latlon[valid], month[valid]
            )
        return out

    def embed_cube(self, cube: Any) -> tuple[xr.Dataset, Any]:
        """The cube's fine-tuned embeddings (lazy, one variable per dimension) and the head to map
        them with: what :func:`eoai.ml.classify` / :func:`eoai.ml.predict` apply."""
        from ..features import _date_labels, as_dataset, check_features, feature_names
        from .embedding import embed

        ds = as_dataset(cube)
        bands = list(
            dict.fromkeys(m["band"] if (m := _DATED.match(c)) else c for c in self.columns)
        )
        have = [b for b in bands if b in ds.data_vars]
        sub = ds[have]
        check_features(feature_names(sub), self.columns)  # ModelError naming what is missing
        if "time" in sub.dims:
            wanted = {m["date"] for c in self.columns if (m := _DATED.match(c))}
            keep = [i for i, d in enumerate(_date_labels(sub["time"].values)) if d in wanted]
            sub = sub.isel(time=keep)
        emb = embed(sub, self.encoder, scaling=self.scaling, s1_units=self.s1_units)
        pixel = copy.copy(self.head)
        pixel.metadata = self.metadata
        for k in ("target", "units"):
            if hasattr(self, k):
                setattr(pixel, k, getattr(self, k))
        return emb.to_dataset("embedding"), pixel

    def _extra(self) -> dict[str, Any]:
        return {
            "finetuned": {
                "columns": self.columns, "crs_wkt": self.crs_wkt, "scaling": self.scaling,
                "s1_units": self.s1_units, "centre": self.centre,
                "head": {"mean": self.head.mean.tolist(), "std": self.head.std.tolist(),
                         "n_out": int(self.head._n_out),
                         **({"y_mean": self.head.y_mean, "y_std": self.head.y_std}
                            if hasattr(self.head, "y_mean") else {})},
            },
            "model_card": self.encoder.card.to_dict(),
        }  # fmt: skip

    def _eoai_save(self, path: Path) -> dict[str, Any]:
        """One weights-only file (``encoder.*``, ``head.*``); the sidecar fields (eoai.ml.persist)."""
        import torch

        state = {
            f"encoder.{k}": v.detach().cpu() for k, v in self.encoder.encoder.state_dict().items()
        }
        state.update({f"head.{k}": v.detach().cpu() for k, v in self.head.net.state_dict().items()})
        torch.save(state, path)
        return {
            "format": FORMAT, "loader": LOADER, **self._extra(),
            "weights_sha256": self.encoder.weights_hash(),
            "versions": {"torch": torch.__version__},
        }  # fmt: skip


class PrestoFinetunedClassifier(_Finetuned, ClassifierModel):
    """A fine-tuned Presto encoder and its linear classification head; an eoai classifier whose
    features are the sample table's ``<band>_<date>`` columns, ``x`` and ``y``."""

    def __init__(self, encoder, head, columns, crs_wkt, scaling, s1_units, centre, **kw) -> None:
        super().__init__([*columns, "x", "y"], head.classes, **kw)
        self._setup(encoder, head, columns, crs_wkt, scaling, s1_units, centre)

    def predict_proba(self, X: Any) -> np.ndarray:
        emb = self.embeddings(X)
        ok = ~np.isnan(emb).any(axis=1)
        out = np.full((len(emb), len(self.classes)), np.nan, "float32")
        if ok.any():
            out[ok] = self.head.predict_proba(emb[ok])
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class per row (rows without any valid value get the first class; see
        :meth:`predict_proba`, NaN there)."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes, dtype=object if self._str_labels else None)[
            np.argmax(np.nan_to_num(proba, nan=-1.0), axis=1)
        ]


class PrestoFinetunedRegressor(_Finetuned, RegressorModel):
    """A fine-tuned Presto encoder and its linear regression head (``predict`` -> target units)."""

    def __init__(self, encoder, head, columns, crs_wkt, scaling, s1_units, centre, target="label",
                 units="", metadata=None) -> None:  # fmt: skip
        super().__init__([*columns, "x", "y"], target, units=units, metadata=metadata)
        self._setup(encoder, head, columns, crs_wkt, scaling, s1_units, centre)

    def predict(self, X: Any) -> np.ndarray:
        emb = self.embeddings(X)
        ok = ~np.isnan(emb).any(axis=1)
        out = np.full(len(emb), np.nan, "float32")
        if ok.any():
            out[ok] = self.head.predict(emb[ok])
        return out


def _crs_of(samples: pd.DataFrame, crs: Any) -> str:
    from pyproj import CRS

    given = crs if crs is not None else samples.attrs.get("eoai:cube", {}).get("crs")
    if given is None:
        raise CRSError(
            "the samples record no CRS (attrs['eoai:cube']['crs'], set by eoai.ml.extract on a "
            "cube with one), which Presto needs for the pixels' latitude and longitude: extract "
            "them from a cube with a CRS, or pass crs='EPSG:...' (the CRS of x and y)"
        )
    return CRS.from_user_input(given).to_wkt()


def fit_finetuned(
    samples: pd.DataFrame,
    target: str = "label",
    *,
    encoder: PrestoModel | str | Path | None = None,
    task: str = "classification",
    features: list[str] | None = None,
    scaling: str = "auto",
    s1_units: str = "auto",
    crs: Any = None,
    seed: int | None = 0,
    class_names: Any = None,
    colours: Any = None,
    units: str = "",
    **train: Any,
) -> PrestoFinetunedClassifier | PrestoFinetunedRegressor:
    """Fine-tune a Presto encoder and a linear head on a sample table of a cube's bands.

    Reached as ``eoai.ml.fit(samples, "presto", finetune=True, encoder=...)``.

    Parameters
    ----------
    samples
        Table of :func:`eoai.ml.extract` on a cube with the card's bands (``blue_2021-05-03`` ...,
        optionally ``vv`` / ``vh``, ERA5, ``elevation`` / ``slope``, ``dynamic_world``), ``x``,
        ``y``, the target and its CRS in ``attrs["eoai:cube"]["crs"]``. Other columns are ignored.
    target, task, seed, class_names, colours, units
        As for :func:`eoai.ml.fit`.
    encoder
        The pretrained :class:`~eoai.ml.presto.model.PrestoModel` (:func:`load_encoder`) or its
        path (with its card); left unchanged.
    features
        Columns to read (default all of the table's feature columns); ``x`` / ``y`` are always read.
    scaling, s1_units
        As for :func:`eoai.ml.presto.embed` (the table keeps no band attrs: floats are taken as
        reflectance 0-1 and checked; pass ``scaling="dn"`` for DN).
    crs
        CRS of ``x`` / ``y`` when the samples do not record it.
    **train
        :func:`eoai.ml.presto.finetune_presto`'s ``epochs``, ``lr``, ``head_lr``, ``weight_decay``,
        ``batch_size``, ``validation``, ``patience``, ``device``.

    Returns
    -------
    PrestoFinetunedClassifier or PrestoFinetunedRegressor

    Raises
    ------
    eoai.errors.ModelError
        No encoder, or the table lacks bands the card requires (or half a group).
    eoai.errors.CRSError
        The samples record no CRS and none is given.
    eoai.errors.InputError
        No ``x`` / ``y`` columns, unknown parameters, fewer than 10 usable rows.

    Examples
    --------
    See the module's example; without ``encoder=``:

    >>> fit_finetuned(pd.DataFrame({"label": [1, 2]}))
    Traceback (most recent call last):
    eoai.errors.ModelError: fine-tuning needs the pretrained encoder: pass encoder=...
    """
    from ..samples import sample_features
    from .finetune import finetune_presto

    if encoder is None:
        raise ModelError(
            "fine-tuning needs the pretrained encoder: pass encoder=eoai.ml.presto.load_encoder("
            "'presto.pt') (the published weights: load_encoder('default_model.pt', "
            "card=eoai.ml.presto.PRESTO_CARD))"
        )
    if isinstance(encoder, str | Path):
        encoder = load_encoder(encoder)
    if not isinstance(encoder, PrestoModel):
        raise ModelError(
            f"encoder= must be a PrestoModel (eoai.ml.presto.load_encoder), got {type(encoder).__name__}"
        )
    unknown = sorted(set(train) - set(TRAIN_PARAMS))
    if unknown:
        raise InputError(
            f"fit(model='presto', finetune=True) does not take {', '.join(unknown)}; it takes "
            f"{', '.join(TRAIN_PARAMS)}, scaling, s1_units, crs, encoder (the fine-tuned head is "
            "linear)"
        )
    for c in ("x", "y"):
        if c not in samples.columns:
            raise InputError(
                f"the samples have no {c!r} column, which fine-tuning Presto needs for each "
                "pixel's latitude and longitude: make them with eoai.ml.extract"
            )
    card = encoder.card
    feats = [f for f in sample_features(samples, features, target) if f not in ("x", "y")]
    columns, dates = _card_columns(feats, card)
    have = {m["band"] if (m := _DATED.match(c)) else c for c in columns}
    missing = [b for b in card.required if b not in have]
    if missing:
        raise ModelError(
            f"the samples lack {len(missing)} band(s) that {card.name} needs: {', '.join(missing)} "
            f"(their columns: {', '.join(feats[:8])}{' ...' if len(feats) > 8 else ''}); extract "
            f"them from a cube with the bands {card.required} (eoai common names), columns "
            "<band>_<YYYY-MM-DD>"
        )
    crs_wkt = _crs_of(samples, crs)
    vals = samples[columns].to_numpy("float32")
    xy = samples[["x", "y"]].to_numpy("float64")
    x, mask, dw, latlon, month, valid = series_of_rows(
        vals, xy, columns, card, crs_wkt, scaling, s1_units
    )
    y = samples[target].to_numpy()
    # early stopping on whole polygons, as the frozen head (fit_presto_head) does
    groups = samples["group"].to_numpy()[valid] if "group" in samples.columns else None
    if not valid.all():
        _skipped.warn_at_user(
            f"fit(model='presto', finetune=True): {int((~valid).sum())} of {len(valid)} samples "
            "have no valid Sentinel-1 / Sentinel-2 value in any month and were left out",
            DataSkippedWarning,
        )
    new, head = finetune_presto(
        encoder, x[valid], y[valid], latlon=latlon[valid], month=month[valid],
        dynamic_world=dw[valid], mask=mask[valid], task=task, seed=seed, groups=groups, **train,
    )  # fmt: skip
    metadata = {
        "method": f"eoai.ml.fit(presto, finetune=True, {task})",
        "task": task, "label_column": target, "training_cube": samples.attrs.get("eoai:cube", {}),
        "n_samples": int(valid.sum()), "encoder_source": encoder.source, "first_date": dates[0],
        "finetune": head.metadata,
    }  # fmt: skip
    centre = xy[valid].mean(axis=0)
    if isinstance(head, PrestoClassifierHead):
        named = PrestoClassifierHead(
            head.net, head.mean, head.std, 0, head.features, head.classes,
            class_names=class_names, colours=colours, metadata=head.metadata,
        )  # fmt: skip
        return PrestoFinetunedClassifier(
            new, named, columns, crs_wkt, scaling, s1_units, centre, class_names=class_names,
            colours=colours, metadata=metadata,
        )  # fmt: skip
    return PrestoFinetunedRegressor(
        new, head, columns, crs_wkt, scaling, s1_units, centre, target=target, units=units,
        metadata=metadata,
    )  # fmt: skip


def load_saved(path: Path, description: dict[str, Any], *, trusted: bool = False) -> Any:
    """Loader named in the sidecar, for :func:`eoai.ml.load_model` (weights-only torch load)."""
    import torch

    from .encoder import PrestoEncoder
    from .head import _net

    info = description.get("finetuned")
    if description.get("format") != FORMAT or not isinstance(info, dict):
        raise ModelError(f"{path}.json does not describe a fine-tuned Presto model")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means an unreadable weights file
        raise InputError(f"{path} is not a readable weights-only torch file ({err})") from err
    card = ModelCard.from_dict(description["model_card"])
    enc = PrestoEncoder(**card.architecture)
    enc.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("encoder.")})
    h = info["head"]
    mean, std = np.asarray(h["mean"], "float32"), np.asarray(h["std"], "float32")
    net = _net(mean.shape[0], int(h["n_out"]), 0)
    net.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    encoder = PrestoModel(enc, card, source=str(path))
    for p in enc.parameters():
        p.requires_grad_(False)
    args = (info["columns"], info["crs_wkt"], info["scaling"], info["s1_units"], info["centre"])
    feats = [f"presto_{i:03d}" for i in range(mean.shape[0])]
    meta = description.get("metadata", {})
    if description.get("task") == "regression":
        fm = meta.get("finetune", {})
        reg = PrestoRegressorHead(net, mean, std, 0, feats, h["y_mean"], h["y_std"], fm)
        return PrestoFinetunedRegressor(
            encoder, reg, *args, target=description["target"],
            units=description.get("units", ""), metadata=meta,
        )  # fmt: skip
    head = PrestoClassifierHead(
        net, mean, std, 0, feats, description["classes"],
        class_names=description.get("class_names"), colours=description.get("colours"),
    )  # fmt: skip
    return PrestoFinetunedClassifier(
        encoder, head, *args, class_names=description.get("class_names"),
        colours=description.get("colours"), metadata=meta,
    )  # fmt: skip


__all__ = ["PrestoFinetunedClassifier", "PrestoFinetunedRegressor", "fit_finetuned"]
