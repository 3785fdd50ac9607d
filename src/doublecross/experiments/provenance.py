"""What a run was made from, by content: the resolved preset, and SHA-256 of preset, weights and images.

Stored as ``provenance.json`` when a run starts and compared on ``--resume``: a preset edited
between a kill and a resume (batch 0 at ε 20/255, batch 1 at 0.5), retrained weights or changed
images would otherwise mix two experiments in one run under one manifest. Only the path was
compared before (``config.yaml``); the contents are compared here, and the refusal names what
changed (preset fields with old -> new values, the weights file, the image files).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any

from ..config import ConfigError, load_preset_dict, preset_chain_text
from ..data.folder import IMAGE_EXTENSIONS
from ..models.zoo import embedded_checkpoint
from .job import JobConfig

log = logging.getLogger(__name__)

FILE_NAME = "provenance.json"
_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def image_files(root: str) -> list[str]:
    """Image files under ``root`` (sorted, recursive), as paths relative to it, '/'-separated."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            if f.lower().endswith(IMAGE_EXTENSIONS):
                out.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
    return out


def _weights_path(cfg: JobConfig) -> str | None:
    if cfg.weights:
        return cfg.weights
    if os.path.isfile(cfg.model):
        return cfg.model
    path = embedded_checkpoint(cfg.model)
    return path if os.path.isfile(path) else None


def _model_code_path(model: str) -> str | None:
    """The source file of a user model spec (``file.py:factory`` or ``package.module:factory``), if any."""
    from ..models.user import is_model_spec

    if not is_model_spec(model):
        return None
    module = model.rpartition(":")[0]
    if module.endswith(".py"):
        return module
    import importlib.util

    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return found.origin if found is not None and found.origin and os.path.isfile(found.origin) else None


def _file_entry(path: str | None) -> dict[str, Any] | None:
    if path is None or not os.path.isfile(path):
        return None
    return {"path": path, "sha256": sha256_file(path)}


def resolve_provenance(cfg: JobConfig, rts_weights: str | None = None) -> dict[str, Any]:
    """The run's inputs by content (see module doc); cheap next to any attack (one read of each file)."""
    prov: dict[str, Any] = {
        "preset": {
            "name": cfg.preset,
            "sha256": sha256_bytes(preset_chain_text(cfg.preset)),  # with its bases' text
            "contents": load_preset_dict(cfg.preset),
        },
        "weights": _file_entry(_weights_path(cfg)),
        "model_code": _file_entry(_model_code_path(cfg.model)),
        "rts_weights": _file_entry(rts_weights or embedded_checkpoint(f"rts-{cfg.model}"))
        if "rts" in cfg.interpreters
        else None,
    }
    if cfg.images:
        files = image_files(cfg.images)
        prov["images"] = {
            "root": cfg.images,
            "files": {rel: sha256_file(os.path.join(cfg.images, rel)) for rel in files},
        }
    labels = getattr(cfg, "labels", None)
    if labels:
        prov["labels"] = _file_entry(labels)
    return json.loads(json.dumps(prov))  # plain JSON types, as they will be read back


def _dict_diff(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            p = f"{path}.{k}" if path else str(k)
            if k not in old:
                out.append(f"{p} added ({new[k]!r})")
            elif k not in new:
                out.append(f"{p} removed (was {old[k]!r})")
            else:
                out += _dict_diff(old[k], new[k], p)
        return out
    return [] if old == new else [f"{path or 'value'} {old!r} -> {new!r}"]


def _short(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def provenance_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences between a run's stored provenance and the current inputs (empty: same)."""
    changes: list[str] = []
    sp, cp = saved.get("preset") or {}, current.get("preset") or {}
    if sp.get("sha256") != cp.get("sha256"):
        diff = _dict_diff(sp.get("contents"), cp.get("contents"))
        detail = ": " + _short(diff, 4) if diff else " (same values, different text)"
        changes.append(f"the preset {cp.get('name')} changed since the run started{detail}")
    files = (
        ("weights", "weights file"),
        ("model_code", "model source file"),
        ("rts_weights", "RTS weights file"),
        ("labels", "label map"),
    )
    for key, what in files:
        if key == "model_code" and key not in saved:  # a run written before the source file was recorded
            continue
        s, c = saved.get(key), current.get(key)
        if (s or {}).get("sha256") != (c or {}).get("sha256"):
            path = (c or s or {}).get("path", "?")
            if s is None or c is None:
                changes.append(f"the {what} {path} {'appeared' if s is None else 'is gone'} since the run started")
            else:
                changes.append(
                    f"the {what} {path} changed since the run started "
                    f"(sha256 {s['sha256'][:12]}… -> {c['sha256'][:12]}…)"
                )
    si, ci = (saved.get("images") or {}).get("files"), (current.get("images") or {}).get("files")
    if si is not None and ci is not None and si != ci:
        added = sorted(set(ci) - set(si))
        removed = sorted(set(si) - set(ci))
        modified = sorted(k for k in set(si) & set(ci) if si[k] != ci[k])
        kinds = (("added", added), ("removed", removed), ("modified", modified))
        parts = "; ".join(f"{label} {_short(v)}" for label, v in kinds if v)
        changes.append(f"the images under {current['images']['root']} changed since the run started: {parts}")
    return changes


def check_provenance(run_dir: str, current: dict[str, Any]) -> None:
    """Compare the stored provenance of ``run_dir`` with ``current``; store it when the run has none.

    Raises:
        ConfigError: naming each changed input (preset fields, weights, images).
    """
    path = os.path.join(run_dir, FILE_NAME)
    if not os.path.isfile(path):
        log.warning("%s has no %s (an older run): its preset, weights and images cannot be checked", run_dir, FILE_NAME)
        write_provenance(run_dir, current)
        return
    try:
        with open(path) as fh:
            saved = json.load(fh)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot resume {run_dir}: {FILE_NAME} is unreadable ({e})") from None
    changes = provenance_changes(saved if isinstance(saved, dict) else {}, current)
    if changes:
        raise ConfigError(f"cannot resume {run_dir}: " + "; ".join(changes) + " (start a new run with another --out)")


def write_provenance(run_dir: str, prov: dict[str, Any]) -> None:
    with open(os.path.join(run_dir, FILE_NAME), "w") as fh:
        json.dump(prov, fh, indent=1)
