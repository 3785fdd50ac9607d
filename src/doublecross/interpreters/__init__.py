"""Differentiable interpreters, registered by name (GRAD, CAM, MASK, RTS)."""

from ..registry import Registry

INTERPRETERS: Registry = Registry("interpreter")

from . import cam, ensemble, grad, mask, rts  # noqa: E402,F401  (register)
from .base import Interpretation, Interpreter, minmax_normalise  # noqa: E402


def create_interpreter(name: str, model, **kwargs):  # type: ignore[no-untyped-def]
    """Build interpreter ``name`` over a wrapped classifier (``None`` kwargs take defaults)."""
    return INTERPRETERS.create(name, model=model, **kwargs)


__all__ = ["INTERPRETERS", "Interpretation", "Interpreter", "create_interpreter", "minmax_normalise"]
