"""doublecross: ADV² -- adversarial inputs that fool a classifier and its interpreter at once.

Zhang et al., "Interpretable Deep Learning under Fire", USENIX Security 2020.

The names below are imported on first use (PEP 562), so ``import doublecross`` and
``doublecross --help`` do not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .registry import Registry  # noqa: E402  (no torch)

_LAZY = {
    "MODELS": ".models",
    "Classifier": ".models",
    "create_model": ".models",
    "smooth_relu": ".models",
    "attack": ".api",
    "AttackOutcome": ".api",
}

__all__ = ["MODELS", "AttackOutcome", "Classifier", "Registry", "__version__", "attack", "create_model", "smooth_relu"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
