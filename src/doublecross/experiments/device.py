"""The run's device (``--device``), checked before any work starts.

Placement on an accelerator: the classifier and interpreters live on the device; the attack set
and its object masks, the target classes and the result store stay on the CPU; each batch (images,
labels, targets) is moved once per batch, the baseline's stored image once per ADV² unit, and
everything written to the store comes back once per unit (``.cpu()``). Inside the attack loops no
tensor crosses: constants are built on ``x.device`` and MASK's noise baseline is drawn once per
size and device.
"""

from __future__ import annotations

import torch

from ..config import ConfigError


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)`` after checking it exists here.

    Raises:
        ConfigError: an unknown device string, or CUDA (or an index past the GPUs) not available.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"--device {name!r} is not a device torch knows (try cpu or cuda)") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name!r}: CUDA is not available here (torch.cuda.is_available() is False)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type not in ("cpu", "mps"):
        raise ConfigError(f"--device {name!r}: doublecross runs on cpu or cuda")
    return device
