"""Lazy tiled inference: ``dask.array.map_overlap`` with a halo at least the receptive field.

Each tile is read with a halo of ``depth >= receptive radius`` pixels on every side (mirrored at
the image edges, ``boundary="reflect"``), the network runs on the padded tile, and the halo is
cropped. Because no output pixel inside the crop sees the tile edge, the tiled result equals the
whole-image result (up to float rounding) and there are no seams: this is the "cropped" blending.
The runner enters the graph once, as one key read by every tile task (:mod:`eoai._graph`; with a
``dask.distributed`` client it is scattered to the workers once).

A *runner* is any picklable callable ``runner(guide, low_rep) -> out`` on numpy arrays
``(N, ng, H, W)`` / ``(N, nl, H, W)`` returning ``(N, nl, H, W)``; :class:`TorchRunner` wraps a
:class:`~eoai.superres.net.DSen2Net`, :class:`eoai.superres.weights.OnnxRunner` an ONNX model.

Examples
--------
>>> import dask.array as da, numpy as np
>>> from eoai.superres.net import DSen2Net
>>> from eoai.superres.tiling import TorchRunner, predict
>>> runner = TorchRunner(DSen2Net(1, 1, width=4, blocks=1))
>>> x = da.random.random((1, 2, 64, 64), chunks=(1, 2, 32, 32)).astype("f4")
>>> predict(runner, x, n_guide=1, depth=8).chunks[2:]
((32, 32), (32, 32))
"""

from __future__ import annotations

from typing import Any

import numpy as np


class TorchRunner:
    """Run a :class:`~eoai.superres.net.DSen2Net` on numpy tiles (no gradients).

    Parameters
    ----------
    net : DSen2Net
        The network (kept on the CPU; copied to ``device`` on first use in each process).
    device : str
        ``"auto"`` (GPU when present), ``"cpu"``, ``"cuda"``...
    threads : int, optional
        torch CPU threads per tile (``torch.set_num_threads``, process-wide); default unchanged.

    Examples
    --------
    >>> from eoai.superres.net import DSen2Net
    >>> r = TorchRunner(DSen2Net(1, 0, width=4, blocks=1))
    >>> r(None, np.ones((1, 1, 8, 8), "f4")).shape
    (1, 1, 8, 8)
    """

    def __init__(self, net, device: str | None = "auto", threads: int | None = None) -> None:
        self.net = net.cpu().eval()
        self.device = device
        self.threads = threads
        self._on: tuple[Any, Any] | None = None  # (torch device, the net on it)

    def __getstate__(self):
        return {"net": self.net, "device": self.device, "threads": self.threads}

    def __setstate__(self, state):
        self.__init__(state["net"], state["device"], state.get("threads"))

    @property
    def receptive_radius(self) -> int:
        return self.net.receptive_radius

    def __call__(self, guide: np.ndarray | None, low_rep: np.ndarray) -> np.ndarray:
        import torch

        from ._common import resolve_device

        dev = resolve_device(self.device)
        if self._on is None or self._on[0] != dev:
            net = self.net if dev.type == "cpu" else _copy_to(self.net, dev)
            self._on = (dev, net)
        net = self._on[1]
        if self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(int(self.threads))
        with torch.no_grad():
            low = torch.from_numpy(np.ascontiguousarray(low_rep, dtype=np.float32)).to(dev)
            g = None
            if guide is not None and guide.shape[1]:
                g = torch.from_numpy(np.ascontiguousarray(guide, dtype=np.float32)).to(dev)
            out = net(g, net.upsample_base(low))
        return out.cpu().numpy()


def _copy_to(net, dev):
    import copy

    return copy.deepcopy(net).to(dev)


def _fill_nan(arr: np.ndarray, fill: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(arr)
    if bad.any():
        arr = np.where(bad, fill.reshape(1, -1, 1, 1).astype(arr.dtype), arr)
    return arr


def _predict_block(
    block: np.ndarray,
    *,
    runner,
    n_guide: int,
    halo: int,
    upscale: bool,
    guide_fill: np.ndarray,
    low_fill: np.ndarray,
) -> np.ndarray:
    block = np.asarray(block, dtype=np.float32)
    guide = block[:, :n_guide]
    low = block[:, n_guide:]
    if upscale:
        low = np.repeat(np.repeat(low, 2, axis=-2), 2, axis=-1)
    bad = ~np.all(np.isfinite(block), axis=1)  # NaN in any input band -> NaN out
    if upscale:
        bad = np.repeat(np.repeat(bad, 2, axis=-2), 2, axis=-1)
    out = runner(
        _fill_nan(guide, guide_fill) if n_guide else None,
        _fill_nan(low, low_fill),
    )
    out = np.where(bad[:, None], np.float32(np.nan), out).astype(np.float32)
    d = halo * (2 if upscale else 1)
    return out[..., d : out.shape[-2] - d, d : out.shape[-1] - d]


def predict(
    runner,
    stack,
    *,
    n_guide: int,
    depth: int,
    upscale: bool = False,
    guide_fill=None,
    low_fill=None,
):
    """Lazy tiled inference over a dask array ``(T, ng + nl, H, W)`` (guide channels first).

    Parameters
    ----------
    runner : callable
        ``runner(guide, low_rep) -> out`` on numpy tiles (see module docstring); one graph key
        shared by all tiles (:func:`eoai._graph.graph_constant`).
    stack : dask.array.Array
        Guide then coarse bands; one chunk along the channel axis (rechunked if not).
    n_guide : int
        Number of guide channels at the start of ``stack``.
    depth : int
        Halo in input pixels; must be at least the runner's receptive radius (in output pixels,
        halved when ``upscale``).
    upscale : bool
        x2 mode: the output grid is twice as fine (tiles replicated 2 x 2 before the network).
    guide_fill, low_fill : array-like
        Per-band values put in place of NaN *inside the network input only*; the output is NaN
        wherever an input band is NaN.

    Returns
    -------
    dask.array.Array
        ``(T, nl, H, W)``, or ``(T, nl, 2H, 2W)`` when ``upscale``; same spatial chunking
        (doubled when ``upscale``).

    Examples
    --------
    >>> import dask.array as da
    >>> from eoai.superres.net import DSen2Net
    >>> x = da.zeros((1, 1, 40, 40), chunks=(1, 1, 20, 20), dtype="f4")
    >>> predict(TorchRunner(DSen2Net(1, 0, 4, 1)), x, n_guide=0, depth=4, upscale=True).shape
    (1, 1, 80, 80)
    """
    import dask.array as da

    nl = stack.shape[1] - n_guide
    stack = stack.rechunk({1: -1})
    if min(min(stack.chunks[2]), min(stack.chunks[3])) < depth:
        raise ValueError("spatial chunks must be at least the halo depth")
    f = 2 if upscale else 1
    out_chunks = (
        stack.chunks[0],
        (nl,),
        tuple(c * f for c in stack.chunks[2]),
        tuple(c * f for c in stack.chunks[3]),
    )
    gfill = (
        np.zeros(n_guide, np.float32) if guide_fill is None else np.asarray(guide_fill, np.float32)
    )
    lfill = np.zeros(nl, np.float32) if low_fill is None else np.asarray(low_fill, np.float32)
    from .._graph import graph_constant

    return da.map_overlap(
        _predict_block,
        stack,
        depth={0: 0, 1: 0, 2: depth, 3: depth},
        boundary={0: "none", 1: "none", 2: "reflect", 3: "reflect"},
        trim=False,
        chunks=out_chunks,
        dtype=np.float32,
        meta=np.array((), dtype=np.float32),
        runner=graph_constant(runner),  # one key shared by every tile, not a copy per task
        n_guide=n_guide,
        halo=depth,
        upscale=upscale,
        guide_fill=gfill,
        low_fill=lfill,
    )
