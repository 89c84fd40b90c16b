"""Regression heads for the networks of :mod:`eoai.ml.deep` (private; use ``eoai.ml.fit``).

``eoai.ml.fit(samples, "tempcnn" | "ltae" | "fusion", target=<continuous column>)`` trains the
network with one output on the standardised target (mean squared error) and returns a
:class:`DeepRegressor`: it de-standardises the output, so :meth:`DeepRegressor.predict` and
:func:`eoai.ml.predict` (``cube.eoai.predict(model)``) give values in the target's units. It is an
:class:`eoai.ml.regress.RegressorModel`, saved by :func:`eoai.ml.save_model` as a ``state_dict``
plus JSON and read back (weights only) by :func:`eoai.ml.load_model`. A U-Net trained by
``eoai.ml.deep.fit_segmentation`` on a continuous target raster is a
:class:`SegmentationRegressor`: the same scaling, applied image by image with a halo.

Examples
--------
>>> import numpy as np, pandas as pd, eoai.ml
>>> X = np.random.default_rng(0).normal(size=(60, 2)).astype("float32")
>>> df = pd.DataFrame(X, columns=["b_2021-01-01", "b_2021-02-01"]).assign(h=10 * X[:, 0] + 50)
>>> m = eoai.ml.fit(df, "tempcnn", target="h", units="m", epochs=2, hidden=4, dense=4,
...                 kernel_size=1, progress=False)
>>> m.predict(X[:3]).shape, m.units, m.architecture
((3,), 'm', 'tempcnn')
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ModelError
from ._deep_model import SegmentationModel, _plural
from .regress import RegressorModel

LOADER = "eoai.ml._deep_regress:load_saved"
SEGMENTATION_LOADER = "eoai.ml._deep_regress:load_saved_regressor"
#: placeholder classes of the inner DeepModel (one output; never shown)
_INNER_CLASSES = [0, 1]


class DeepRegressor(RegressorModel):
    """A pixel network (TempCNN, L-TAE, fusion) with one output: a continuous quantity per pixel.

    Parameters
    ----------
    inner
        The :class:`eoai.ml.deep.DeepModel` (or :class:`FusionModel`) holding the network, its
        input normalisation, layout and device; its one output is the standardised target.
    target, units, metadata
        As for :class:`eoai.ml.regress.RegressorModel`.
    y_mean, y_std
        Standardisation of the target: ``prediction = output * y_std + y_mean``.

    Attributes
    ----------
    architecture, bands, dates, net
        Those of the network (as for :class:`eoai.ml.deep.DeepModel`).
    """

    def __init__(
        self,
        inner: Any,
        target: str = "label",
        *,
        y_mean: float,
        y_std: float,
        units: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(inner.features, target, units=units, metadata=metadata)
        if not np.isfinite(y_std) or y_std <= 0:
            raise InputError(f"the target scale must be a positive number, got {y_std}")
        self.inner = inner
        self.y_mean, self.y_std = float(y_mean), float(y_std)
        self.allow_nan = bool(inner.allow_nan)

    # the network, layout and device of the inner model
    net = property(lambda self: self.inner.net)
    architecture = property(lambda self: self.inner.architecture)
    bands = property(lambda self: self.inner.bands)
    dates = property(lambda self: self.inner.dates)

    def for_cube(self, cube: Any, *, reference_date: Any = None) -> DeepRegressor:
        """This model set up for the dates of ``cube`` (see :meth:`eoai.ml.deep.DeepModel.for_cube`).

        Examples
        --------
        >>> out = eoai.ml.predict(cube_2022, model.for_cube(cube_2022))  # doctest: +SKIP
        """
        inner = self.inner.for_cube(cube, reference_date=reference_date)
        if inner is self.inner:
            return self
        new = copy.copy(self)
        new.inner = inner
        new.features = list(inner.features)
        return new

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted values ``(n,)`` (float32, the target's units) of features ``(n, n_features)``.

        Examples
        --------
        >>> values = model.predict(samples[model.features].to_numpy("float32"))  # doctest: +SKIP
        """
        out = self.inner._outputs(X, 1)[:, 0]
        return (out * np.float32(self.y_std) + np.float32(self.y_mean)).astype("float32")

    def describe(self) -> dict[str, Any]:
        """JSON description (:meth:`RegressorModel.describe` plus the target scaling)."""
        return {**super().describe(), "target_scaling": {"mean": self.y_mean, "std": self.y_std}}

    def _eoai_save(self, path: Path) -> dict[str, Any]:
        """Write the ``state_dict``; the JSON fields (used by :func:`eoai.ml.save_model`)."""
        fields = self.inner._eoai_save(path)
        fields["loader"] = LOADER
        return fields

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def __repr__(self) -> str:
        units = f" ({self.units})" if self.units else ""
        return (
            f"<DeepRegressor {self.architecture}: {self.target}{units}, {len(self.bands)} bands "
            f"x {len(self.inner.layout.dates)} dates>"
        )


def load_saved(
    path: Path, description: dict[str, Any], *, trusted: bool = False, encoder: Any = None
) -> DeepRegressor:
    """Loader named in the JSON of saved deep regressors, called by :func:`eoai.ml.load_model`.

    Examples
    --------
    >>> model = eoai.ml.load_model("ltae_lfmc.pt")  # doctest: +SKIP
    """
    from ._deep_io import _build

    scaling = description.get("target_scaling")
    if not isinstance(scaling, dict) or not {"mean", "std"} <= set(scaling):
        raise InputError(
            f"{path}.json lacks 'target_scaling' (mean, std of the target): it was not written by "
            "eoai.ml.save_model or was edited; restore it, or save the model again"
        )
    inner = _build(
        Path(path).read_bytes(), {**description, "classes": _INNER_CLASSES, "metadata": {}},
        str(path), encoder=encoder,
    )  # fmt: skip
    return DeepRegressor(
        inner, str(description.get("target", "label")), y_mean=float(scaling["mean"]),
        y_std=float(scaling["std"]), units=str(description.get("units", "")),
        metadata=description.get("metadata", {}),
    )  # fmt: skip


class SegmentationRegressor(DeepRegressor):
    """A trained patch network (U-Net) with one output: a continuous quantity per pixel.

    Made by :func:`eoai.ml.deep.fit_segmentation` on a continuous target raster (canopy height,
    biomass); :func:`eoai.ml.predict` (``cube.eoai.predict(model)``) maps it tile by tile with
    :attr:`halo` pixels of overlap, as :class:`SegmentationModel` classes, and the output is
    de-standardised (``output * y_std + y_mean``: the target's units). Pixels with all features
    NaN are NaN in the map.

    Parameters
    ----------
    inner
        The :class:`SegmentationModel` holding the network (one output), its input normalisation,
        halo and device.
    target, y_mean, y_std, units, metadata
        As for :class:`DeepRegressor`.

    Examples
    --------
    >>> import numpy as np
    >>> from eoai.ml.models import UNet
    >>> inner = SegmentationModel(UNet(2, 1, depth=1, base=4), ["a", "b"], [0, 1], mean=[0, 0],
    ...                           std=[1, 1])
    >>> m = SegmentationRegressor(inner, "height", y_mean=20.0, y_std=5.0, units="m")
    >>> m.predict_image(np.zeros((5, 6, 2), "float32")).shape, m.halo
    ((5, 6), 12)
    """

    def __init__(self, inner: SegmentationModel, target: str = "label", **kw: Any) -> None:
        if not isinstance(inner, SegmentationModel):
            raise ModelError(
                f"a SegmentationRegressor wraps a SegmentationModel, got {type(inner).__name__}"
            )
        super().__init__(inner, target, **kw)

    halo = property(lambda self: self.inner.halo)
    tile_multiple = property(lambda self: self.inner.tile_multiple)

    def for_cube(self, cube: Any, *, reference_date: Any = None) -> SegmentationRegressor:
        """Patch models read their training features; returned unchanged (checked by predict)."""
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Not available: a patch model needs images (see :meth:`predict_image`)."""
        raise ModelError(
            "a U-Net maps images, not pixel rows: map a cube with cube.eoai.predict(model) "
            "(eoai.ml.predict), or call model.predict_image(block)"
        )

    def predict_image(self, block: np.ndarray) -> np.ndarray:
        """Predicted values ``(y, x)`` (float32, the target's units) of an image ``(y, x, feature)``.

        Examples
        --------
        >>> values = model.predict_image(block)  # doctest: +SKIP
        """
        out = self.inner._image_outputs(block)
        if out.shape[-1] != 1:
            raise ModelError(
                f"the network returned {out.shape[-1]} outputs per pixel; a regression needs one"
            )
        return (out[..., 0] * np.float32(self.y_std) + np.float32(self.y_mean)).astype("float32")

    def _eoai_save(self, path: Path) -> dict[str, Any]:
        """Write the ``state_dict``; the JSON fields (used by :func:`eoai.ml.save_model`)."""
        fields = self.inner._eoai_save(path)
        fields["loader"] = SEGMENTATION_LOADER
        return fields

    def __repr__(self) -> str:
        units = f" ({self.units})" if self.units else ""
        return (
            f"<SegmentationRegressor {self.architecture}: {self.target}{units}, "
            f"{_plural(len(self.features), 'channel')}, halo {self.halo}>"
        )


def load_saved_regressor(
    path: Path, description: dict[str, Any], *, trusted: bool = False, encoder: Any = None
) -> SegmentationRegressor:
    """Loader named in the JSON of saved U-Net regressors, called by :func:`eoai.ml.load_model`.

    Examples
    --------
    >>> model = eoai.ml.load_model("unet_height.pt")  # doctest: +SKIP
    """
    reg = load_saved(path, description, encoder=encoder)
    if not isinstance(reg.inner, SegmentationModel):
        raise ModelError(f"{path}.json does not describe a patch network (network.kind 'patch')")
    return SegmentationRegressor(
        reg.inner, reg.target, y_mean=reg.y_mean, y_std=reg.y_std, units=reg.units,
        metadata=reg.metadata,
    )  # fmt: skip
