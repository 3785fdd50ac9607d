"""Input × Gradient (Shrikumar et al. 2016, arXiv:1605.01713), differentiable.

    r = x ⊙ ∂z_c(x)/∂x        a(i, j) = max_ch |r(ch, i, j)|        g = 𝒩(AvgPool_p(a))

with ``x`` in [0, 1] pixel space, ``z_c`` the class logit (``signal="ce"``: the cross-entropy, as
GRAD) and GRAD's pool factor ``p``. With a graph the gradient is taken under the smoothed-ReLU
surrogate with ``create_graph=True`` (spec §2.4); without one it is the true-ReLU map (what
``captum.attr.InputXGradient`` computes).
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.smooth import DEFAULT_TAU
from ..models.wrapper import Classifier
from . import INTERPRETERS
from .base import Interpretation, Interpreter
from .grad import grad_pool_factor
from .saliency import check_signal, input_gradient, saliency_map


class InputXGradInterpreter(Interpreter):
    """Input × Gradient map.

    Args:
        model: the wrapped classifier.
        signal: ``"logit"`` (∂z_c/∂x, the method's) or ``"ce"`` (∂CE/∂x).
        tau: smoothed-ReLU constant used when a graph is kept.

    Shape:
        x: (B, 3, H, W) -> map (B, 1, H/p, W/p), logits (B, C).
    """

    name = "input-x-grad"
    selection = "exact"  # the graph map uses the surrogate; candidates are judged on the true map

    def __init__(self, model: Classifier, signal: str = "logit", tau: float = DEFAULT_TAU) -> None:
        super().__init__(model)
        self.signal, self.tau = check_signal(signal), tau

    def _check(self) -> str:
        """Who needs second derivatives, on the first graph pass only (then ``""``: no check)."""
        if getattr(self, "_double_backward_checked", False):
            return ""
        self._double_backward_checked = True
        return f"Input×Gradient's map on {self.model.name} (an ADV² attack)"

    def native_size(self, height: int, width: int) -> tuple[int, int]:
        p = grad_pool_factor(height)
        return height // p, width // p

    def interpret(self, x: torch.Tensor, t: torch.Tensor, state: Any, graph: bool) -> Interpretation:
        graph = graph and x.requires_grad
        logits, s = input_gradient(self.model, x, t, self.signal, graph, self.tau, self._check() if graph else "")
        return Interpretation(logits, saliency_map(x * s))


@INTERPRETERS.register("input-x-grad")
def create_input_x_grad(model: Classifier, signal: str = "logit", tau: float = DEFAULT_TAU) -> InputXGradInterpreter:
    """Input×Gradient: |x ⊙ ∂z_c/∂x|, max over channels, pooled as GRAD, min-max normalised."""
    return InputXGradInterpreter(model, signal=signal, tau=tau)
