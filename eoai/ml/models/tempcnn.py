"""TempCNN: temporal convolutions for pixel time-series classification.

Pelletier, C., Webb, G. I., Petitjean, F. (2019). *Temporal Convolutional Neural Network for the
Classification of Satellite Image Time Series.* Remote Sensing 11(5), 523.
https://doi.org/10.3390/rs11050523

Three 1-D convolutions (kernel 5, batch norm, ReLU, dropout) over time, a dense layer and a linear
classifier. It reads the series on a fixed grid of dates, so a model trained on one date layout must
be applied to cubes gap-filled onto the same grid.

The widths are eoai's, chosen on real series (issue #16, ``benchmarks/README.md``), not the paper's
64 filters and 256 dense units: the filters follow the series length (:func:`default_hidden`: the
flattened features ``hidden x n_times`` stay near 1,536, the paper's 64 filters at 24 dates, so a long
series does not multiply the dense layer's weights) and the dense layer has 64 units.
"""

from __future__ import annotations

import math
from types import MappingProxyType

import torch
from torch import nn

#: Flattened features (``hidden x n_times``) that :func:`default_hidden` aims at.
FLAT_FEATURES = 1536
#: The widths of Pelletier et al. (2019), TempCNN's defaults until issue #16 (fusion branches keep them).
PAPER_WIDTHS = MappingProxyType({"hidden": 64, "dense": 256})


def default_hidden(n_times: int) -> int:
    """Filters of each convolution for a series of ``n_times`` dates when none are given.

    The power of two nearest ``FLAT_FEATURES / n_times`` (in log scale), between 16 and 64: 64 up
    to 33 dates (16-day composites of a year, monthly series), 32 for 34-67 dates (a 10-day grid
    of one year), 16 beyond (5-day Sentinel-2 series, multi-year 10-day grids).
    Measured (issue #16, 5-fold grouped CV x 5 fold draws): Slovenia NDVI on 90 10-day dates, 16
    filters OA 0.789 against 0.768 with 64 (the forest 0.791); Mato Grosso MODIS NDVI on 23
    16-day composites, 64 filters 0.858 against 0.837 with 16 (3 draws; the forest 0.846).

    Examples
    --------
    >>> default_hidden(23), default_hidden(45), default_hidden(90)
    (64, 32, 16)
    """
    if int(n_times) < 1:
        from ...errors import InputError

        raise InputError(f"n_times must be >= 1, got {n_times}: a TempCNN reads at least one date")
    return int(min(64, max(16, 2 ** round(math.log2(FLAT_FEATURES / int(n_times))))))


class TempCNN(nn.Module):
    """Temporal CNN of Pelletier et al. (2019).

    Parameters
    ----------
    in_channels : int
        Number of spectral features per date (bands / indices).
    n_times : int
        Number of dates of the (regular) series.
    n_classes : int
        Number of output classes.
    hidden : int, optional
        Filters of each convolution; default :func:`default_hidden` of ``n_times`` (64 in the
        paper).
    kernel_size : int
        Temporal kernel size (5 in the paper).
    dense : int
        Units of the dense layer (256 in the paper; 64 measured better on Slovenia and Mato
        Grosso, issue #16).
    dropout : float
        Dropout rate (0.2 in the paper).

    Examples
    --------
    >>> import torch
    >>> net = TempCNN(in_channels=4, n_times=12, n_classes=3)
    >>> net(torch.zeros(8, 12, 4)).shape      # (batch, time, channels) -> logits
    torch.Size([8, 3])
    >>> net.config["hidden"], TempCNN(4, 90, 3).config["hidden"]   # filters follow the series length
    (64, 16)
    """

    def __init__(
        self,
        in_channels: int,
        n_times: int,
        n_classes: int,
        hidden: int | None = None,
        kernel_size: int = 5,
        dense: int = 64,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        hidden = default_hidden(n_times) if hidden is None else int(hidden)
        self.config = dict(
            in_channels=in_channels,
            n_times=n_times,
            n_classes=n_classes,
            hidden=hidden,
            kernel_size=kernel_size,
            dense=dense,
            dropout=dropout,
        )
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(3):
            layers += [
                nn.Conv1d(channels, hidden, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm1d(hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            channels = hidden
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(hidden * n_times, dense),
            nn.BatchNorm1d(dense),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dense, n_classes),
        )

    def forward(self, x: torch.Tensor, days: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for ``x`` of shape (batch, time, channels); ``days`` is ignored (fixed grid)."""
        return self.head(self.convs(x.transpose(1, 2)))
