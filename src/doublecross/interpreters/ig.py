"""Integrated Gradients (Sundararajan et al. 2017, arXiv:1703.01365), differentiable.

    IG(x) = (x - x') ⊙ ∫_0^1 ∂z_c(x' + α(x - x'))/∂x dα  ≈  (x - x') ⊙ Σ_k w_k ∂z_c(x' + α_k(x - x'))/∂x
    a(i, j) = max_ch |IG(ch, i, j)|        g = 𝒩(AvgPool_p(a))

with ``x`` in [0, 1] pixel space, ``z_c`` the class logit (``signal="ce"``: the cross-entropy), GRAD's
pool factor ``p`` and the baseline ``x'`` black (zeros) or ``x`` blurred (Gaussian, σ ``blur_sigma``
px; a function of ``x``, differentiated through). Quadrature on n steps, as captum names them:
``riemann_left`` α_k = k/n (k = 0..n-1), ``riemann_right`` α_k = k/n (k = 1..n), ``riemann_middle``
α_k = (k + ½)/n, all with w_k = 1/n; ``riemann_trapezoid`` α_k = k/(n-1) (k = 0..n-1) with end
weights 1/(2(n-1)) and inner ones 1/(n-1). With a graph the gradients are taken under the
smoothed-ReLU surrogate with ``create_graph=True`` (spec §2.4).
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.smooth import DEFAULT_TAU
from ..models.wrapper import Classifier
from . import INTERPRETERS
from .base import Interpretation, Interpreter
from .grad import grad_pool_factor
from .mask import gaussian_blur, gaussian_kernel_size
from .saliency import check_signal, input_gradient, saliency_map

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
BASELINES = ("black", "blur")


def ig_alphas_and_weights(steps: int, method: str) -> tuple[list[float], list[float]]:
    """Quadrature nodes α_k in [0, 1] and weights w_k (Σ w_k = 1) of ``method`` on ``steps`` points."""
    if method == "riemann_trapezoid":
        if steps < 2:
            raise ValueError(f"riemann_trapezoid needs at least 2 steps, got {steps}")
        inner = 1.0 / (steps - 1)
        return [k * inner for k in range(steps)], [inner / 2] + [inner] * (steps - 2) + [inner / 2]
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return [(k + offset) / steps for k in range(steps)], [1.0 / steps] * steps


class IntegratedGradientsInterpreter(Interpreter):
    """Integrated Gradients map.

    Args:
        model: the wrapped classifier.
        steps: quadrature points n.
        method: one of ``riemann_left``, ``riemann_right``, ``riemann_middle``, ``riemann_trapezoid``.
        baseline: ``"black"`` (x' = 0) or ``"blur"`` (x' = GaussBlur(x; σ = blur_sigma)).
        blur_sigma: the blurred baseline's σ in pixels.
        signal: ``"logit"`` (z_c, the method's) or ``"ce"``.
        tau: smoothed-ReLU constant used when a graph is kept.
        chunk: quadrature points per batched pass (memory bound; does not change the map).
        graph_steps: quadrature points (same method) when a graph is kept, i.e. the attack's loss
            map (``None``: ``steps``). The evaluation map always uses ``steps``.

    Shape:
        x: (B, 3, H, W) -> map (B, 1, H/p, W/p), logits (B, C) at ``x``.
    """

    name = "ig"
    selection = "exact"

    def __init__(
        self,
        model: Classifier,
        steps: int = 16,
        method: str = "riemann_trapezoid",
        baseline: str = "black",
        blur_sigma: float = 5.0,
        signal: str = "logit",
        tau: float = DEFAULT_TAU,
        chunk: int = 16,
        graph_steps: int | None = None,
    ) -> None:
        super().__init__(model)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
        if not (isinstance(blur_sigma, (int, float)) and blur_sigma > 0):
            raise ValueError(f"blur_sigma must be a positive number, got {blur_sigma!r}")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
        if graph_steps is not None and (
            isinstance(graph_steps, bool) or not isinstance(graph_steps, int) or graph_steps < 1
        ):
            raise ValueError(f"graph_steps must be a positive integer, got {graph_steps!r}")
        self.nodes = {False: ig_alphas_and_weights(steps, method)}
        self.nodes[True] = self.nodes[False] if graph_steps is None else ig_alphas_and_weights(graph_steps, method)
        self.steps, self.method, self.baseline, self.blur_sigma = steps, method, baseline, float(blur_sigma)
        self.signal, self.tau, self.chunk = check_signal(signal), tau, chunk

    def _check(self) -> str:
        """Who needs second derivatives, on the first graph pass only (then ``""``: no check)."""
        if getattr(self, "_double_backward_checked", False):
            return ""
        self._double_backward_checked = True
        return f"IG's map on {self.model.name} (an ADV² attack)"

    def native_size(self, height: int, width: int) -> tuple[int, int]:
        p = grad_pool_factor(height)
        return height // p, width // p

    def baseline_of(self, x: torch.Tensor) -> torch.Tensor:
        """The baseline x' (B, 3, H, W): zeros, or ``x`` blurred (differentiable in ``x``)."""
        if self.baseline == "black":
            return torch.zeros_like(x)
        return gaussian_blur(x, gaussian_kernel_size(self.blur_sigma), self.blur_sigma)

    def interpret(self, x: torch.Tensor, t: torch.Tensor, state: Any, graph: bool) -> Interpretation:
        graph = graph and x.requires_grad
        xb = x if graph else x.detach()
        b, shape = x.shape[0], x.shape[1:]
        base = self.baseline_of(xb)
        diff = xb - base
        avg = torch.zeros_like(xb)
        alphas, weights = self.nodes[graph]
        for i in range(0, len(alphas), self.chunk):
            a = torch.tensor(alphas[i : i + self.chunk], dtype=x.dtype, device=x.device).view(-1, 1, 1, 1, 1)
            w = torch.tensor(weights[i : i + self.chunk], dtype=x.dtype, device=x.device).view(-1, 1, 1, 1, 1)
            m = a.shape[0]
            pts = (base[None] + a * diff[None]).reshape(m * b, *shape)  # node-major: (m·B, 3, H, W)
            _, s = input_gradient(
                self.model, pts, t.repeat(m), self.signal, graph, self.tau, self._check() if graph else ""
            )
            avg = avg + (w * s.view(m, b, *shape)).sum(0)
        logits = self.model.net(self.model.normalise(xb))
        if not graph:
            logits = logits.detach()
        return Interpretation(logits, saliency_map(diff * avg))


# The class is the factory: one signature (the options ``--set`` / presets validate against), no copy of it.
create_ig = INTERPRETERS.register(
    "ig", summary="Integrated Gradients: (x - x') ⊙ path-averaged ∂z_c/∂x (black/blurred x'), pooled as GRAD."
)(IntegratedGradientsInterpreter)
