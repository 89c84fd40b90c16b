"""Super-resolution of Sentinel-2: 20 m bands to 10 m guided by the 10 m bands, 10 m to 5 m.

:func:`superres` (also ``cube.eoai.superres(...)``) sharpens a cube's bands with a DSen2-style
network trained on the cube itself by Wald's protocol, or with bicubic / Lanczos baselines.
Submodules: :mod:`.net` (network), :mod:`.wald` (degradation, self-supervised training,
evaluation pairs), :mod:`.tiling` (lazy tiled inference), :mod:`.weights` (saving / loading),
:mod:`.baselines`, :mod:`.metrics` (RMSE, PSNR, SSIM), :mod:`.io` (band files at native
resolution), :mod:`.bands`. torch is imported only when a network is built.

Examples
--------
>>> from eoai.superres import superres
>>> callable(superres)
True
"""

from __future__ import annotations

from .api import superres

__all__ = ["superres"]
