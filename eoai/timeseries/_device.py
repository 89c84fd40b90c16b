"""Where the time-series kernels run: numba on the CPU, or torch on a CUDA GPU.

Shared by :func:`eoai.timeseries.gapfill.gapfill` and :func:`eoai.timeseries.breaks.detect_breaks`.
``device`` has the package's one meaning (:mod:`eoai._device`): ``"cpu"`` runs the numba kernels,
``"cuda"`` / ``"cuda:N"`` the torch kernels on that GPU, ``"auto"`` a GPU when present. One extra
value exists here only: ``"torch"`` runs the torch kernels on the CPU (to compare the two
implementations). torch is imported only when a torch device is asked for.
"""

from __future__ import annotations

from typing import Any

from .._device import resolve_device as _resolve


def resolve_device(
    device: Any, func: str = "eoai", *, unsupported: str | None = None
) -> str | None:
    """The torch device for ``device``, or None for the numba CPU kernels.

    Examples
    --------
    >>> resolve_device("cpu", "gapfill") is None
    True
    >>> resolve_device("torch", "gapfill")
    'cpu'
    """
    dev = _resolve(device, func, unsupported=unsupported, extra=("torch",))
    if dev == "torch":
        if unsupported is not None:
            from ..errors import InputError

            raise InputError(f"{func}: device='torch' {unsupported}; use device='cpu'")
        return "cpu"
    return None if dev == "cpu" else dev
