"""Torch network architectures used by :mod:`eoai.ml` (plain ``torch.nn.Module`` s).

- :class:`~eoai.ml.models.tempcnn.TempCNN` — pixel time series, Pelletier et al. (2019);
- :class:`~eoai.ml.models.ltae.LTAE` — pixel time series with acquisition days, Garnot & Landrieu (2020);
- :class:`~eoai.ml.models.fusion.FusionNet` — one temporal encoder per source, auxiliary heads
  (TWINNS, Ienco et al. 2019);
- :class:`~eoai.ml.models.patchfusion.PatchFusionNet` — those branches plus a CNN on a
  very-high-resolution patch around the pixel (M3Fusion, Benedetti et al. 2018);
- :class:`~eoai.ml.models.unet.UNet` — patch segmentation, Ronneberger et al. (2015);
  :class:`~eoai.ml.models.unet.EncoderUNet` — its decoder on any encoder honouring timm's
  ``features_only`` contract (rebuilt with the encoder, not by ``build_model``);
- :class:`~eoai.ml.models.utae.UTAE` — patch segmentation of a series, Garnot & Landrieu (2021);
- :class:`~eoai.ml.models.utt.UTT` — U-T&T: a U-Net on a fine image fused with a U-TAE on a
  coarser series, Garioud et al. (2023, FLAIR #2);
- :class:`~eoai.ml.models.ensemble.Ensemble` / :class:`~eoai.ml.models.ensemble.GridEnsemble` — the
  mean probability of several of these (e.g. one architecture trained from several seeds).

``build_model(name, **config)`` creates one from its JSON-serialisable config, which is how saved
models are rebuilt before their ``state_dict`` is loaded. Importing this package imports torch.
"""

from __future__ import annotations

from typing import Any

from .ensemble import Ensemble, GridEnsemble
from .fusion import FusionNet
from .ltae import LTAE
from .patchfusion import PatchFusionNet
from .tempcnn import TempCNN
from .unet import EncoderUNet, UNet
from .utae import UTAE
from .utt import UTT

ARCHITECTURES = {
    "tempcnn": TempCNN,
    "ltae": LTAE,
    "unet": UNet,
    "encoder_unet": EncoderUNet,
    "fusion": FusionNet,
    "m3fusion": PatchFusionNet,
    "utae": UTAE,
    "utt": UTT,
    "ensemble": Ensemble,
    "grid_ensemble": GridEnsemble,
}

__all__ = [
    "ARCHITECTURES",
    "LTAE",
    "EncoderUNet",
    "Ensemble",
    "FusionNet",
    "GridEnsemble",
    "PatchFusionNet",
    "TempCNN",
    "UNet",
    "UTAE",
    "UTT",
    "build_model",
]


def build_model(name: str, **config: Any):
    """Instantiate the architecture ``name`` (``"tempcnn"``, ``"ltae"`` or ``"unet"``) from its config.

    Examples
    --------
    >>> net = build_model("tempcnn", in_channels=4, n_times=12, n_classes=3)
    >>> type(net).__name__
    'TempCNN'
    """
    from ...errors import InputError

    try:
        cls = ARCHITECTURES[name.lower()]
    except KeyError:
        raise InputError(
            f"unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)} "
            "or pass your own torch.nn.Module"
        ) from None
    return cls(**config)
