"""Checkpoints of models we train: state dict + JSON-able metadata, loaded with weights_only.

Metadata keys: ``arch`` (a registered architecture), ``arch_kwargs``, ``classes``, ``mean``,
``std``, ``input_size``, ``accuracy``, ``seed``, ``command``, plus anything else JSON-able.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import torch

from .weights import WeightsError, load_weights_file

REQUIRED_META = ("arch", "classes", "mean", "std", "input_size")


def save_checkpoint(
    path: str, state_dict: dict[str, torch.Tensor], meta: dict[str, Any], overwrite: bool = False
) -> None:
    """Write ``{"state_dict", "meta"}`` to ``path`` atomically; refuse to overwrite unless asked.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        ValueError: metadata lacks a required key or is not JSON-able.
    """
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"checkpoint metadata lacks {missing}")
    meta = json.loads(json.dumps(meta))  # plain types only (TypeError otherwise): weights_only-safe
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    # a fresh, unpredictable temp file created with O_EXCL in the target folder: a symlink planted
    # at a guessable name (the old ``<path>.tmp-<pid>``) is never followed
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"state_dict": state, "meta": meta}, fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_checkpoint(path: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint` (safely, ``weights_only=True``)."""
    obj = load_weights_file(path)
    if not (isinstance(obj, dict) and "state_dict" in obj and "meta" in obj):
        raise WeightsError(f"{path} is not a doublecross checkpoint (needs 'state_dict' and 'meta')")
    meta = obj["meta"]
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise WeightsError(f"{path}: checkpoint metadata lacks {missing}")
    return obj["state_dict"], meta
