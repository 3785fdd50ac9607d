"""GRAD: vanilla gradient saliency (Simonyan et al. 2014, arXiv:1312.6034), differentiable.

    s = ∂CE(z(x), c)/∂x        a(i, j) = max_ch |s(ch, i, j)|        g = 𝒩(AvgPool_p(a))

with ``x`` in [0, 1] pixel space and ``p = 4`` for H ≥ 64, else ``max(1, H/16)`` (spec §3.1).
With a graph (grad enabled) the gradient is taken under the smoothed backward surrogate of every
piecewise-linear activation (ReLU, ReLU6, LeakyReLU, PReLU, Hardtanh, Hardsigmoid, Hardswish) with
``create_graph=True``, so the map is twice differentiable (an op with no double backward at all is
named in a ``DoubleBackwardError`` on the first graph pass); the surrogate's forward is exact, so
its logits serve the prediction loss. Without a graph it is the true-ReLU gradient map.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F

from ..models.smooth import DEFAULT_TAU, check_double_backward, smooth_relu
from ..models.wrapper import Classifier
from . import INTERPRETERS
from .base import Interpretation, Interpreter, minmax_normalise

SIGNALS = ("ce", "logit")


def grad_pool_factor(height: int) -> int:
    """Average-pool factor of the GRAD map: 4 at H ≥ 64, else ``max(1, H // 16)``."""
    return 4 if height >= 64 else max(1, height // 16)


class GradInterpreter(Interpreter):
    """Gradient saliency map.

    Args:
        model: the wrapped classifier.
        signal: ``"ce"`` (∂CE/∂x, the authors') or ``"logit"`` (∂z_c/∂x).
        tau: smoothed-ReLU constant used when a graph is kept.

    Shape:
        x: (B, 3, H, W) -> map (B, 1, H/p, W/p), logits (B, C).
    """

    name = "grad"
    selection = "exact"  # the graph map uses the surrogate; candidates are judged on the true map

    def __init__(self, model: Classifier, signal: str = "ce", tau: float = DEFAULT_TAU) -> None:
        super().__init__(model)
        if signal not in SIGNALS:
            raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
        self.signal, self.tau = signal, tau
        self._double_backward_checked = False  # once per interpreter: the graph walk costs a few ms

    def native_size(self, height: int, width: int) -> tuple[int, int]:
        p = grad_pool_factor(height)
        return height // p, width // p

    def interpret(self, x: torch.Tensor, t: torch.Tensor, state: Any, graph: bool) -> Interpretation:
        graph = graph and x.requires_grad
        xi = x if graph else x.detach().requires_grad_(True)
        surrogate = smooth_relu(self.tau) if graph else contextlib.nullcontext()
        with torch.enable_grad(), surrogate:
            logits = self.model(xi)
            if self.signal == "ce":
                score = F.cross_entropy(logits, t, reduction="sum")
            else:
                score = logits.gather(1, t[:, None]).sum()
            (s,) = torch.autograd.grad(score, xi, create_graph=graph)
        if graph and not self._double_backward_checked:
            check_double_backward(s, f"GRAD's map on {self.model.name} (an ADV² attack)")
            self._double_backward_checked = True
        a = s.abs().amax(dim=1, keepdim=True)
        p = grad_pool_factor(x.shape[-2])
        a = F.avg_pool2d(a, p) if p > 1 else a
        if not graph:
            logits = logits.detach()
        return Interpretation(logits, minmax_normalise(a))


@INTERPRETERS.register("grad")
def create_grad(model: Classifier, signal: str = "ce", tau: float = DEFAULT_TAU) -> GradInterpreter:
    """GRAD: |∂CE/∂x| saliency, max over channels, pooled to H/4, min-max normalised."""
    return GradInterpreter(model, signal=signal, tau=tau)
