"""TempCNN: temporal convolutions for pixel time-series classification.

Pelletier, C., Webb, G. I., Petitjean, F. (2019). *Temporal Convolutional Neural Network for the
Classification of Satellite Image Time Series.* Remote Sensing 11(5), 523.
https://doi.org/10.3390/rs11050523

Three 1-D convolutions (kernel 5, batch norm, ReLU, dropout) over time, a dense layer of 256 units and
a linear classifier. It reads the series on a fixed grid of dates, so a model trained on one date
layout must be applied to cubes gap-filled onto the same grid.
"""

from __future__ import annotations

import torch
from torch import nn


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
    hidden : int
        Filters of each convolution (64 in the paper).
    kernel_size : int
        Temporal kernel size (5 in the paper).
    dense : int
        Units of the dense layer (256 in the paper).
    dropout : float
        Dropout rate (0.2 in the paper).

    Examples
    --------
    >>> import torch
    >>> net = TempCNN(in_channels=4, n_times=12, n_classes=3)
    >>> net(torch.zeros(8, 12, 4)).shape      # (batch, time, channels) -> logits
    torch.Size([8, 3])
    """

    def __init__(
        self,
        in_channels: int,
        n_times: int,
        n_classes: int,
        hidden: int = 64,
        kernel_size: int = 5,
        dense: int = 256,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
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
