"""Perturbation models (threats), registered by name."""

from ..registry import Registry

THREATS: Registry = Registry("threat")

from . import linf, stadv  # noqa: E402,F401  (register)
from .base import ThreatModel  # noqa: E402

__all__ = ["THREATS", "ThreatModel"]
