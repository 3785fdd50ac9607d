"""Safe weight loading: never unpickle untrusted code.

``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)`` (tensors and plain
containers only; a pickle that would run code is refused); ``.safetensors`` files with the
``safetensors`` package when it is installed. Nothing here touches the network.
"""

from __future__ import annotations

import os
import pickle
import re
from typing import Any

import torch


class WeightsError(ValueError):
    """A weights file is missing, unreadable, untrusted or does not fit the model."""


def _file_kind(path: str) -> str | None:
    """``None`` for a file that may be a torch file (zip archive or pickle); else what it looks like."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "it is empty"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # torch.save zip / legacy pickle protocol 2+
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"unknown binary content starting with {head[:8]!r}"
    first = text.strip().splitlines()[0][:60] if text.strip() else ""
    return f"it is a text file starting with {first!r}"


def load_weights_file(path: str | os.PathLike[str]) -> Any:
    """Load a weights/checkpoint file safely (CPU tensors).

    Raises:
        WeightsError: missing file, corrupt file, or a pickle that needs arbitrary code.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise WeightsError(f"{path}: reading .safetensors needs `pip install safetensors`") from e
        return load_file(path, device="cpu")
    kind = _file_kind(path)
    if kind is not None:
        raise WeightsError(
            f"{path} is not a weights file ({kind}); expected a PyTorch .pt/.pth (torch.save) or a .safetensors file"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsError(
            f"refusing to load {path}: it is not a plain weights file (weights_only=True rejected "
            f"it, it may contain code). Re-save it as a state dict or .safetensors. Details: {e}"
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise WeightsError(f"cannot read weights file {path}: {e}") from e


def extract_state_dict(obj: Any, path: str = "<weights>") -> dict[str, torch.Tensor]:
    """The state dict inside a loaded object: itself, or its ``state_dict``/``model`` entry."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return {k.removeprefix("module."): v for k, v in obj.items()}
    raise WeightsError(f"{path} does not hold a state dict of tensors")


_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def remap_densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the old ``norm.1.weight`` keys of torchvision's DenseNet files to ``norm1.weight``."""
    out = {}
    for key, value in state.items():
        m = _DENSENET_OLD_KEY.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out


def hub_checkpoint_dir() -> str:
    """Where torch hub caches downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def resolve_hub_file(file_names: list[str], what: str) -> str:
    """The first of ``file_names`` present in the torch hub cache; else a clear, immediate error."""
    folder = hub_checkpoint_dir()
    for name in file_names:
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    raise WeightsError(
        f"no ImageNet weights for {what}: expected {' or '.join(file_names)} in {folder} "
        f"(torch hub cache; set TORCH_HOME to move it), or pass --weights PATH. "
        "doublecross never downloads weights; fetch the file on a machine with a network."
    )


def load_state_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str) -> None:
    """``load_state_dict(strict=True)`` with an error naming the file and the mismatch."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"weights in {path} do not fit {type(module).__name__}: {e}") from e
