"""Where the time-series kernels run: numba on the CPU, or torch on the CPU or a CUDA GPU.

Shared by :func:`eoai.timeseries.gapfill.gapfill` and :func:`eoai.timeseries.change.detect_breaks`.
torch is imported only when a torch device is asked for.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InputError


def resolve_device(
    device: Any, func: str = "eoai", *, unsupported: str | None = None
) -> str | None:
    """The torch device for ``device``, or None for the numba CPU kernels.

    ``"cpu"``: numba; ``"torch"``: torch on the CPU; ``"cuda"`` / ``"cuda:N"``: torch on that GPU
    (an error if there is none); ``"auto"``: CUDA when torch sees a GPU (and the work is supported
    there), else numba. ``unsupported`` says why this call cannot run on torch (None if it can).

    Examples
    --------
    >>> resolve_device("cpu", "gapfill") is None
    True
    >>> resolve_device("torch", "gapfill")
    'cpu'
    """
    if not isinstance(device, str) or not (
        device in ("cpu", "auto", "torch", "cuda") or re.fullmatch(r"cuda:\d+", device)
    ):
        raise InputError(
            f"{func}: device={device!r} is unknown; use 'cpu' (numba), 'torch' (torch on the "
            "CPU), 'cuda' or 'cuda:N' (torch on a GPU) or 'auto' (a GPU when present)"
        )
    if device == "cpu":
        return None
    try:
        import torch
    except ImportError as err:
        if device == "auto":
            return None
        raise InputError(
            f"{func}: device={device!r} needs torch, which is not installed; install it "
            "(pip install torch) or use device='cpu'"
        ) from err
    if device == "auto":
        return "cuda" if unsupported is None and torch.cuda.is_available() else None
    if unsupported is not None:
        raise InputError(f"{func}: device={device!r} {unsupported}; use device='cpu'")
    if device == "torch":
        return "cpu"
    if not torch.cuda.is_available():
        raise InputError(
            f"{func}: device={device!r} but torch sees no CUDA GPU (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda}); use device='torch' or 'cpu', or 'auto' to pick a "
            "GPU only when present"
        )
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise InputError(
            f"{func}: device={device!r} does not exist; torch sees {torch.cuda.device_count()} "
            "GPU(s) (cuda:0 ...)"
        )
    return device
