"""Shared pieces of the gradient-based interpreters (SmoothGrad, Integrated Gradients, Input×Gradient).

All of them turn a per-pixel attribution ``r`` (B, 3, H, W) into a map as GRAD does (spec §3.1)::

    a(i, j) = max_ch |r(ch, i, j)|        g = 𝒩(AvgPool_p(a))        p = grad_pool_factor(H)

and take their gradient with respect to the [0, 1] pixel-space input. With a graph, the gradient is
taken under the smoothed-ReLU backward surrogate (spec §2.4) with ``create_graph=True``, so the map
is twice differentiable (its forward, hence the logits, is exact); without a graph it is the
true-ReLU gradient.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from ..models.smooth import check_double_backward, smooth_relu
from ..models.wrapper import Classifier
from .base import minmax_normalise
from .grad import grad_pool_factor

SIGNALS = ("ce", "logit")


def check_signal(signal: str) -> str:
    """``signal`` if it is ``"ce"`` or ``"logit"``, else a ValueError naming it."""
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
    return signal


def net_logits(model: Classifier, x: torch.Tensor) -> torch.Tensor:
    """The network's own forward on ``x`` without the [0, 1] range check.

    SmoothGrad's noisy copies leave [0, 1] (the method adds unclipped Gaussian noise), which the
    classifier's input check would refuse; the network itself takes any real input.

    Shape:
        x: (B, 3, H, W) -> logits (B, C).
    """
    return model.net(model.normalise(x))


def class_score(logits: torch.Tensor, t: torch.Tensor, signal: str) -> torch.Tensor:
    """``Σ_b CE(z_b, t_b)`` (``"ce"``) or ``Σ_b z_b[t_b]`` (``"logit"``): the scalar differentiated."""
    if signal == "ce":
        return F.cross_entropy(logits, t, reduction="sum")
    return logits.gather(1, t[:, None]).sum()


def input_gradient(
    model: Classifier, x: torch.Tensor, t: torch.Tensor, signal: str, graph: bool, tau: float, check: str = ""
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and ``∂score/∂x`` at ``x``; under the surrogate with ``create_graph`` when ``graph``.

    ``x`` must require grad (or be a function of a tensor that does) when ``graph`` is true. With
    ``check`` (who needs the second derivative) and a graph, raise ``DoubleBackwardError`` naming
    an op of the network that has no double backward.

    Shape:
        x: (N, 3, H, W), t: (N,) -> logits (N, C), gradient (N, 3, H, W).
    """
    xi = x if graph else x.detach().requires_grad_(True)
    surrogate = smooth_relu(tau) if graph else contextlib.nullcontext()
    with torch.enable_grad(), surrogate:
        logits = net_logits(model, xi)
        (s,) = torch.autograd.grad(class_score(logits, t, signal), xi, create_graph=graph)
    if graph and check:
        check_double_backward(s, check)
    return (logits if graph else logits.detach()), s


def saliency_map(r: torch.Tensor) -> torch.Tensor:
    """``𝒩(AvgPool_p(max_ch |r|))`` with GRAD's pool factor.

    Shape:
        r: (B, 3, H, W) -> (B, 1, H/p, W/p) in [0, 1].
    """
    a = r.abs().amax(dim=1, keepdim=True)
    p = grad_pool_factor(r.shape[-2])
    return minmax_normalise(F.avg_pool2d(a, p) if p > 1 else a)
