"""Save and load super-resolution weights: torch ``state_dict`` + JSON metadata, or ONNX.

A weights file made by :func:`save_weights` is a ``torch.save`` of
``{"state_dict": ..., "metadata": "<json>"}``; it is read back with
``torch.load(weights_only=True)`` (no unpickling of code). A plain ``state_dict`` file is also
accepted, with its metadata in a JSON sidecar ``<file>.json``. ONNX models (``.onnx``) run through
onnxruntime when it is installed, with the metadata in the model's ``metadata_props["eoai"]`` or
in the sidecar. Paths may be URLs (``http(s)://``, ``file://``): they are downloaded once into
``$EOAI_CACHE_DIR`` (default ``~/.cache/eoai/superres``).

The metadata records the band order (Sentinel-2 band ids of the coarse bands and of the guide
bands), the mode (``"20m"``: 20 m bands guided by 10 m bands; ``"x2"``: 10 m -> 5 m), the
network configuration and the per-band normalisation (mean / std, reflectance units); all are
checked against the cube and the state_dict on loading.

Examples
--------
>>> import tempfile, pathlib
>>> from eoai.superres.net import DSen2Net
>>> net = DSen2Net(1, 1, width=4, blocks=1)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "w.pt"
>>> _ = save_weights(net, path, bands=["B05"], guide=["B02"], mode="20m")
>>> runner, meta = load_weights(path)
>>> meta["bands"], meta["guide"]
(['B05'], ['B02'])
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Literal, overload

import numpy as np

from ..errors import ModelError

FORMAT = "eoai-superres"
VERSION = 1


def _metadata(net, bands, guide, mode, extra=None) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "mode": mode,
        "bands": list(bands),
        "guide": list(guide),
        "units": "reflectance",
        "config": net.config(),
        "normalisation": {
            "low_mean": net.low_mean.tolist(),
            "low_std": net.low_std.tolist(),
            "guide_mean": net.guide_mean.tolist(),
            "guide_std": net.guide_std.tolist(),
        },
        **(extra or {}),
    }


def save_weights(net, path, *, bands, guide, mode: str = "20m", extra: dict | None = None) -> Path:
    """Write a network's weights and metadata to ``path`` (torch file readable with weights_only).

    Parameters
    ----------
    net : DSen2Net
        Trained network.
    path : str or Path
        Output file (``.pt``).
    bands, guide : list of str
        Sentinel-2 band ids of the coarse (output) bands and of the guide bands, in the network's
        channel order.
    mode : {"20m", "x2"}
        What the network does.
    extra : dict, optional
        More JSON-serialisable metadata (training report...).

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile
    >>> from eoai.superres.net import DSen2Net
    >>> p = save_weights(DSen2Net(1, 0, 4, 1), tempfile.mkdtemp() + "/x2.pt", bands=["B02"],
    ...                  guide=[], mode="x2")
    >>> p.suffix
    '.pt'
    """
    import torch

    if len(bands) != net.n_low or len(guide) != net.n_guide:
        raise ModelError(
            f"network has {net.n_low} coarse and {net.n_guide} guide channels but "
            f"{len(bands)} bands and {len(guide)} guide bands were named"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = _metadata(net, bands, guide, mode, extra)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "metadata": json.dumps(meta)}, path)
    return path


def _cache_dir() -> Path:
    d = os.environ.get("EOAI_CACHE_DIR")
    return Path(d) if d else Path.home() / ".cache" / "eoai" / "superres"


@overload
def fetch(source: str | Path, *, sidecar: Literal[False] = False) -> Path: ...
@overload
def fetch(source: str | Path, *, sidecar: bool) -> Path | None: ...
def fetch(source: str | Path, *, sidecar: bool = False) -> Path | None:
    """Local path of ``source``: a path as is, a URL downloaded once into the cache.

    With ``sidecar=True`` a missing file/URL gives None instead of an error.

    Examples
    --------
    >>> fetch(__file__).name
    'weights.py'
    """
    s = str(source)
    scheme = urllib.parse.urlparse(s).scheme
    if scheme in ("http", "https", "file"):
        name = Path(urllib.parse.urlparse(s).path).name or "weights"
        dest = _cache_dir() / f"{hashlib.sha256(s.encode()).hexdigest()[:16]}-{name}"
        if dest.exists():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(s, timeout=60) as r:  # noqa: S310 (user-given URL)
                data = r.read()
        except Exception as err:
            if sidecar:
                return None
            raise ModelError(f"could not download weights from {s}: {err}") from err
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(dest)
        return dest
    p = Path(s).expanduser()
    if not p.exists():
        if sidecar:
            return None
        raise ModelError(f"weights file {p} does not exist; pass a path or an http(s) URL")
    return p


def _sidecar(source) -> dict | None:
    p = fetch(str(source) + ".json", sidecar=True)
    return json.loads(Path(p).read_text()) if p is not None else None


def _check_meta(meta: dict | None, source) -> dict:
    if not meta:
        raise ModelError(
            f"weights {source} carry no eoai metadata (band order, normalisation): save them with "
            "eoai.superres.weights.save_weights or put a JSON sidecar next to them"
        )
    if meta.get("format") != FORMAT:
        raise ModelError(
            f"weights {source} are not {FORMAT!r} weights (format={meta.get('format')!r})"
        )
    for key in ("mode", "bands", "guide", "config", "normalisation"):
        if key not in meta:
            raise ModelError(f"metadata of {source} lacks {key!r}")
    if meta["mode"] not in ("20m", "x2"):
        raise ModelError(f"metadata of {source}: unknown mode {meta['mode']!r}")
    return meta


def load_weights(source, device: str | None = "auto", threads: int | None = None):
    """Load weights from a path or URL; returns ``(runner, metadata)``.

    Parameters
    ----------
    source : str or Path
        ``.pt``/``.pth`` torch file (see module docstring) or ``.onnx`` model; path or URL.
    device : str
        Device of the returned runner (``"auto"``: GPU when present).
    threads : int, optional
        torch CPU threads of the runner (see :class:`~eoai.superres.tiling.TorchRunner`).

    Returns
    -------
    (runner, dict)
        A picklable runner for :func:`eoai.superres.tiling.predict` and the checked metadata.

    Raises
    ------
    eoai.errors.ModelError
        Missing or inconsistent metadata, a state_dict that does not fit the configuration, a
        normalisation that disagrees with the stored buffers, no onnxruntime for ONNX.

    Examples
    --------
    >>> import tempfile
    >>> from eoai.superres.net import DSen2Net
    >>> p = save_weights(DSen2Net(2, 1, 4, 1), tempfile.mkdtemp() + "/w.pt",
    ...                  bands=["B05", "B11"], guide=["B08"])
    >>> runner, meta = load_weights(p)
    >>> meta["mode"], meta["bands"], runner(np.ones((1, 1, 8, 8)), np.ones((1, 2, 8, 8))).shape
    ('20m', ['B05', 'B11'], (1, 2, 8, 8))
    """
    import torch

    from .net import DSen2Net
    from .tiling import TorchRunner

    path = fetch(source)
    if path.suffix.lower() == ".onnx":
        return _load_onnx(source, path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(
            f"could not read {source} as torch weights with weights_only=True ({err}); eoai "
            "never unpickles code: save a state_dict"
        ) from err
    if isinstance(obj, dict) and "state_dict" in obj:
        state = obj["state_dict"]
        meta = json.loads(obj["metadata"]) if obj.get("metadata") else _sidecar(source)
    else:
        state, meta = obj, _sidecar(source)
    meta = _check_meta(meta, source)
    cfg = dict(meta["config"])
    if "features" in cfg and "width" not in cfg:  # written before eoai issue #14
        cfg["width"] = cfg.pop("features")
    try:
        net = DSen2Net(**cfg)
        net.load_state_dict(state, strict=True)
    except Exception as err:
        raise ModelError(f"weights {source} do not fit the network {cfg}: {err}") from err
    if net.n_low != len(meta["bands"]) or net.n_guide != len(meta["guide"]):
        raise ModelError(
            f"weights {source}: network has {net.n_low}+{net.n_guide} channels but metadata "
            f"names bands {meta['bands']} and guide {meta['guide']}"
        )
    norm = meta["normalisation"]
    for key in ("low_mean", "low_std", "guide_mean", "guide_std"):
        stored = getattr(net, key).numpy()
        if key in norm and not np.allclose(
            np.asarray(norm[key], dtype=np.float32), stored, rtol=1e-5, atol=1e-7
        ):
            raise ModelError(
                f"weights {source}: normalisation {key} in the metadata {norm[key]} disagrees "
                f"with the network's {stored.tolist()}"
            )
    return TorchRunner(net, device, threads), meta


class OnnxRunner:
    """Run an exported eoai super-resolution ONNX model with onnxruntime (CPU or CUDA provider).

    The model takes ``guide`` (absent when the network has no guide) and ``low_rep``, both
    float32 ``(N, C, H, W)``, and returns the sharpened bands.

    Examples
    --------
    >>> OnnxRunner(b"...", {"config": {"blocks": 1}})  # doctest: +SKIP
    """

    def __init__(self, model_bytes: bytes, meta: dict) -> None:
        self.model_bytes = model_bytes
        self.meta = meta
        self._sess = None

    def __getstate__(self):
        return {"model_bytes": self.model_bytes, "meta": self.meta}

    def __setstate__(self, state):
        self.__init__(state["model_bytes"], state["meta"])

    @property
    def receptive_radius(self) -> int:
        return 3 + 2 + 2 * int(self.meta["config"]["blocks"])

    def __call__(self, guide, low_rep):
        import onnxruntime as ort

        if self._sess is None:
            prov = [
                p
                for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                if p in ort.get_available_providers()
            ]
            self._sess = ort.InferenceSession(self.model_bytes, providers=prov)
        feeds = {"low_rep": np.ascontiguousarray(low_rep, dtype=np.float32)}
        if guide is not None and len(self.meta["guide"]):
            feeds["guide"] = np.ascontiguousarray(guide, dtype=np.float32)
        return self._sess.run(None, feeds)[0]


def _load_onnx(source, path: Path):
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ModelError(
            f"{source} is an ONNX model but onnxruntime is not installed: pip install onnxruntime"
        ) from err
    data = path.read_bytes()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    props = sess.get_modelmeta().custom_metadata_map
    meta = json.loads(props["eoai"]) if "eoai" in props else _sidecar(source)
    meta = _check_meta(meta, source)
    names = {i.name for i in sess.get_inputs()}
    need = {"low_rep"} | ({"guide"} if meta["guide"] else set())
    if names != need:
        raise ModelError(f"ONNX model {source} has inputs {sorted(names)}, expected {sorted(need)}")
    return OnnxRunner(data, meta), meta


def export_onnx(net, path, *, bands, guide, mode: str = "20m", extra: dict | None = None) -> Path:
    """Export a network (bicubic base included) to ONNX with the eoai metadata embedded.

    Needs the ``onnx`` package (torch's exporter). Inputs ``guide`` and ``low_rep`` have dynamic
    batch, height and width.

    Examples
    --------
    >>> export_onnx(net, "w.onnx", bands=["B05"], guide=["B02"])  # doctest: +SKIP
    """
    import torch

    try:
        import onnx
    except ImportError as err:
        raise ModelError("exporting to ONNX needs the onnx package: pip install onnx") from err

    class _Full(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            if self.inner.n_guide:
                guide, low = args
            else:
                guide, low = None, args[0]
            return self.inner(guide, self.inner.upsample_base(low))

    net = net.cpu().eval()
    low = torch.zeros(1, net.n_low, 32, 32)
    args = (torch.zeros(1, net.n_guide, 32, 32), low) if net.n_guide else (low,)
    names = ["guide", "low_rep"] if net.n_guide else ["low_rep"]
    dyn = {n: {0: "n", 2: "h", 3: "w"} for n in names}
    path = Path(path)
    kw = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False  # the TorchScript exporter (torch >= 2.5 defaults to dynamo)
    torch.onnx.export(
        _Full(net),
        args,
        str(path),
        input_names=names,
        output_names=["out"],
        dynamic_axes={**dyn, "out": {0: "n", 2: "h", 3: "w"}},
        opset_version=17,
        **kw,
    )
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key = "eoai"
    entry.value = json.dumps(_metadata(net, bands, guide, mode, extra))
    onnx.save(model, str(path))
    return path
