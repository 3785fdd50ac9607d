"""Differentiable interpreters, registered by name.

The paper's four (GRAD, CAM, MASK, RTS), then Grad-CAM, Grad-CAM++, SmoothGrad, IG and Input×Gradient.
"""

from ..registry import Registry

INTERPRETERS: Registry = Registry("interpreter")

from . import cam, grad, mask, rts  # noqa: E402,F401  (register)

# isort: split
from . import gradcam, ig, input_x_grad, smoothgrad  # noqa: E402,F401  (register, after the paper's four)

# isort: split
from . import ensemble  # noqa: E402,F401  (register: an ensemble over any of the above, issue 13)

# isort: split
from .base import Interpretation, Interpreter, minmax_normalise  # noqa: E402


def create_interpreter(name: str, model, **kwargs):  # type: ignore[no-untyped-def]
    """Build interpreter ``name`` over a wrapped classifier (``None`` kwargs take defaults)."""
    return INTERPRETERS.create(name, model=model, **kwargs)


__all__ = ["INTERPRETERS", "Interpretation", "Interpreter", "create_interpreter", "minmax_normalise"]
