"""Patch networks that keep the time axis (U-TAE) for :mod:`eoai.ml.deep` (private).

The stacked-date U-Net reads every band x date as a channel of one image. A *series* patch network
(``takes_series = True``, e.g. :class:`eoai.ml.models.UTAE`) reads ``(batch, time, band, y, x)``
and the acquisition days, so it is normalised per band (not per band x date), keeps NaN
observations (it masks them) and, like the L-TAE, applies to a cube with other dates:
:meth:`SeriesSegmentationModel.for_cube` maps the cube's own dates to days. Training goes through
:func:`eoai.ml.deep.fit_segmentation` (``model="utae"``), inference through
:func:`eoai.ml.classify`, tiled with a halo.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ._deep_layout import Layout, parse_layout
from ._deep_model import DeepModel, SegmentationModel, _band_scaling


def is_series(model: Any) -> bool:
    """Whether ``model`` (a name or a module) is a time-keeping patch network."""
    if isinstance(model, str):
        return model.lower() == "utae"
    return bool(getattr(model, "takes_series", False))


def tile_multiple_of(model: Any, arch_kw: Mapping[str, Any]) -> int:
    """Down-sampling factor of the network that ``model`` / ``arch_kw`` will build."""
    if not isinstance(model, str):
        return int(getattr(model, "tile_multiple", 1))
    from .models import UTAE

    default = inspect.signature(UTAE).parameters["encoder"].default
    encoder = arch_kw.get("encoder", default)
    try:
        return 2 ** (len(encoder) - 1)
    except TypeError:
        raise InputError(f"encoder must be a sequence of widths, got {encoder!r}") from None


def prepare_series(
    img: np.ndarray, feats: Sequence[str], reference_date: Any = None
) -> tuple[np.ndarray, Layout, np.ndarray, np.ndarray, Any, pd.Timestamp]:
    """Features ``(feature, y, x)`` -> normalised series ``(time, band, y, x)`` with NaN kept.

    Returns the series, its layout, the per-band mean and standard deviation, the days of its
    dates since ``reference_date`` (default the first date) as a float32 tensor, and that date.

    Raises
    ------
    eoai.errors.ModelError
        A feature has no date (the cube has no time axis) or the grid is incomplete.
    eoai.errors.InputError
        Fewer than 2 dates, or a band is NaN over the whole labelled area.
    """
    import torch

    lay = parse_layout(feats)  # ModelError for features without a date
    if len(lay.dates) < 2:
        raise InputError(
            f"the U-TAE attends over the dates of a series and the cube has {len(lay.dates)} "
            f"date ({', '.join(lay.dates)}): give it a time series of at least 2 dates, or use "
            "model='unet' on a single image"
        )
    t, c = len(lay.dates), len(lay.bands)
    series = img[lay.perm].reshape(t, c, *img.shape[1:])
    # per band over dates and pixels: (time, band, y, x) -> (pixel-date, 1, band) for _band_scaling
    mean, std = _band_scaling(series.transpose(0, 2, 3, 1).reshape(-1, 1, c), "standard")
    if not np.all(np.isfinite(mean)):
        bad = [b for b, m in zip(lay.bands, mean, strict=True) if not np.isfinite(m)]
        raise InputError(f"band(s) {bad} are NaN over the whole labelled area; drop them")
    mean = mean.astype("float32")
    std = np.where(std > 1e-6, std, 1.0).astype("float32")
    norm = ((series - mean[:, None, None]) / std[:, None, None]).astype("float32")
    reference = pd.Timestamp(reference_date if reference_date is not None else lay.dates[0])
    return norm, lay, mean, std, torch.from_numpy(lay.days(reference)), reference


class SeriesSegmentationModel(SegmentationModel):
    """A trained series patch network (U-TAE): bands x dates read as ``(time, band, y, x)``.

    :func:`eoai.ml.classify` applies it tile by tile with :attr:`halo` pixels of overlap, like the
    U-Net. Its inputs are normalised per band; NaN observations (clouds) are masked by the network,
    not filled; pixels with every feature NaN are nodata in the map. The network encodes the
    acquisition days, so :meth:`for_cube` (called by classify) maps a cube with other dates.

    Examples
    --------
    >>> import numpy as np
    >>> from eoai.ml.models import UTAE
    >>> net = UTAE(in_channels=1, n_classes=2, encoder=(4, 4), n_head=2, d_model=4)
    >>> feats = ["ndvi_2021-05-01", "ndvi_2021-06-01", "ndvi_2021-07-01"]
    >>> m = SeriesSegmentationModel(net, feats, [0, 1], mean=[0.5], std=[0.2])
    >>> m.predict_proba_image(np.full((6, 5, 3), 0.4, "float32")).shape, m.halo, m.days.tolist()
    ((6, 5, 2), 18, [0.0, 31.0, 61.0])
    """

    def _init_layout(self) -> None:
        self.layout = parse_layout(self.features)

    def _n_channels(self) -> int:
        return len(self.layout.bands)

    @property
    def uses_days(self) -> bool:
        return True

    def for_cube(self, cube: Any, *, reference_date: Any = None) -> DeepModel:
        """This model set up for the dates of ``cube`` (its bands, its own dates as days).

        Examples
        --------
        >>> out = eoai.ml.classify(cube_2022, model.for_cube(cube_2022, reference_date="2022-01-01"))  # doctest: +SKIP
        """
        return DeepModel.for_cube(self, cube, reference_date=reference_date)

    def predict_proba_image(self, block: np.ndarray) -> np.ndarray:
        """Class probabilities ``(y, x, class)`` of an image ``(y, x, feature)`` of :attr:`features`.

        Examples
        --------
        >>> proba = model.predict_proba_image(block)  # doctest: +SKIP
        """
        import torch

        block = self._image(block)
        dev = self._device()
        ny, nx = block.shape[:2]
        t, c = len(self.layout.dates), len(self.layout.bands)
        x = (block[..., self.layout.perm].reshape(ny, nx, t, c) - self.mean) / self.std
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 3, 0, 1)))[None].to(dev)
        days = torch.from_numpy(self.days).to(dev)
        with torch.no_grad():
            logits = self._logits(xt, days).float()
            proba = torch.softmax(logits, dim=1)[0].permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(proba, dtype="float32")
