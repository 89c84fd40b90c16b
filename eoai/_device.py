"""The one meaning of ``device=`` in eoai, and its one resolver.

``device`` names hardware, everywhere in the package:

- ``"cpu"``: the CPU. Networks run torch on the CPU; the time-series kernels of ``gapfill`` and
  ``detect_breaks`` run their numba kernels there (the fastest CPU code eoai has for them).
- ``"cuda"`` / ``"cuda:N"``: that GPU (an error naming what torch sees when there is none).
- ``"auto"`` (the default of every function): the ``device`` option of
  :func:`eoai.set_options` when set, else a CUDA GPU when torch sees one, else the CPU. A call
  that cannot run on a GPU (a method without a GPU kernel) runs on the CPU under ``"auto"``,
  whatever the option; asked for a GPU explicitly, it raises.

:func:`resolve_device` returns a plain string (``"cpu"``, ``"cuda"``, ``"cuda:1"``), resolved on the
client when a function is called, so the same value goes into the dask graph and workers never
read global options.

Examples
--------
>>> from eoai._device import resolve_device
>>> resolve_device("cpu")
'cpu'
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from .errors import InputError

_VALID = "'auto' (a GPU when present), 'cpu', 'cuda' or 'cuda:N'"


def _torch_or_none() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


# device files an NVIDIA driver creates on Linux (bare metal, containers with GPUs, WSL2)
_NVIDIA_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")


def _gpu_available() -> bool:
    """Whether torch sees a CUDA GPU, without importing torch where no GPU can exist.

    On Linux without an NVIDIA driver (or with ``CUDA_VISIBLE_DEVICES`` empty) the answer is no
    and torch is not imported: ``device="auto"`` costs a CPU-only user nothing.
    """
    if "torch" not in sys.modules:
        if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
            return False
        if sys.platform.startswith("linux") and not any(map(os.path.exists, _NVIDIA_FILES)):
            return False
    torch = _torch_or_none()
    return torch is not None and bool(torch.cuda.is_available())


def resolve_device(
    device: Any = "auto",
    func: str = "eoai",
    *,
    unsupported: str | None = None,
    extra: tuple[str, ...] = (),
) -> str:
    """The device a call runs on: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Parameters
    ----------
    device
        ``"auto"`` / ``None``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
    func
        Name of the calling function, for the messages.
    unsupported
        Why this call cannot run on a GPU (``None`` if it can): ``"auto"`` then picks the CPU and
        an explicit GPU is an error with this reason.
    extra
        Further values the caller accepts and handles itself (returned unchanged).

    Raises
    ------
    eoai.errors.InputError
        An unknown device, a GPU asked for where torch sees none or where the call cannot run.

    Examples
    --------
    >>> resolve_device("auto", unsupported="has no GPU kernel")
    'cpu'
    >>> resolve_device("gpu")
    Traceback (most recent call last):
    ...
    eoai.errors.InputError: eoai: device='gpu' is unknown; use 'auto' (a GPU when present), 'cpu', 'cuda' or 'cuda:N'
    """
    if device is not None and not isinstance(device, str) and type(device).__name__ == "device":
        device = str(device)  # a torch.device
    if device is None:
        device = "auto"
    if isinstance(device, str) and device in extra:
        return device
    if not isinstance(device, str) or not (
        device in ("cpu", "auto", "cuda") or re.fullmatch(r"cuda:\d+", device)
    ):
        raise InputError(f"{func}: device={device!r} is unknown; use {_VALID}")
    if device == "auto":
        from ._options import OPTIONS

        device = OPTIONS["device"]
        if unsupported is not None:  # no GPU kernel: the CPU, whatever the option (torch unused)
            return "cpu"
        if device == "auto":
            return "cuda" if _gpu_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if unsupported is not None:
        raise InputError(f"{func}: device={device!r} {unsupported}; use device='cpu'")
    torch = _torch_or_none()
    if torch is None:
        raise InputError(
            f"{func}: device={device!r} needs torch, which is not installed; install it "
            "(pip install torch) or use device='cpu'"
        )
    if not torch.cuda.is_available():
        raise InputError(
            f"{func}: device={device!r} but torch sees no CUDA GPU (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda}); use device='cpu', or 'auto' to pick a GPU only "
            "when present"
        )
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise InputError(
            f"{func}: device={device!r} does not exist; torch sees {torch.cuda.device_count()} "
            "GPU(s) (cuda:0 ...)"
        )
    return device
