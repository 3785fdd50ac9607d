"""Differentiable interpreters, registered by name."""

from ..registry import Registry

INTERPRETERS: Registry = Registry("interpreter")

__all__ = ["INTERPRETERS"]
