"""Checks of run-time settings made before any work starts (one-line ConfigErrors)."""

from __future__ import annotations

import torch

from ..config import ConfigError


def check_device(name: str) -> torch.device:
    """``torch.device(name)``, refusing a malformed name or a CUDA/MPS device this machine lacks."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"--device {name!r} is not a device name (cpu, cuda, cuda:1, mps): {e}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(f"--device {name}: CUDA is not available ({why}); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) visible")
    elif device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {name}: unsupported device type {device.type!r}; use cpu or cuda")
    return device
