"""The JSON sidecar of a saved model (``<model file>.json``): its path and a checked read (private).

Shared by :mod:`eoai.ml.persist` and the model families that write their own files (Presto), so
that none of them imports another to find a sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError


def sidecar_path(path: str | Path) -> Path:
    """The JSON metadata file of a model file: ``<path>.json``.

    Examples
    --------
    >>> str(sidecar_path("models/rf.skops"))
    'models/rf.skops.json'
    """
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_sidecar(path: str | Path, required: tuple[str, ...] = ("loader", "features")) -> dict:
    """The JSON metadata of a model file, checked: a dict with the ``required`` keys.

    Parameters
    ----------
    path
        The model file (its sidecar is ``<path>.json``).
    required
        Keys the metadata must have.

    Returns
    -------
    dict

    Raises
    ------
    eoai.errors.InputError
        The sidecar is missing, not JSON (corrupt or truncated), not an object or lacks a key.

    Examples
    --------
    >>> read_sidecar("rf.skops")["loader"]  # doctest: +SKIP
    'eoai.ml.persist:load_sklearn'
    """
    path = Path(path)
    meta = sidecar_path(path)
    fix = (
        f"restore {meta.name} from where the model came from, or save the model again with "
        "eoai.ml.save_model (both files are written together)"
    )
    if not meta.exists():
        raise InputError(
            f"the metadata file {meta} is missing: eoai models are saved as two files "
            "(weights + JSON); save again with eoai.ml.save_model"
        )
    try:
        description = json.loads(meta.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(f"the metadata file {meta} is not text (corrupt: {err}); {fix}") from None
    except ValueError as err:
        raise InputError(
            f"the metadata file {meta} is not valid JSON ({err}): it is corrupt or truncated; {fix}"
        ) from None
    except OSError as err:
        raise InputError(f"cannot read the metadata file {meta}: {err}") from None
    if not isinstance(description, dict):
        raise InputError(
            f"the metadata file {meta} holds a JSON {type(description).__name__}, not the object "
            f"eoai writes; {fix}"
        )
    missing = [k for k in required if k not in description]
    if missing:
        raise InputError(
            f"the metadata file {meta} lacks {', '.join(map(repr, missing))}: it was not written "
            f"by eoai.ml.save_model or was edited; {fix}"
        )
    return description
