"""L∞ threat: ``x = Π(x° + δ)``, sign-gradient steps (Madry et al. 2018, arXiv:1706.06083).

    Π(x) = clip(clip(x, x° - ε, x° + ε), 0, 1)        δ ← Π(x° + δ - α·sign(∂L/∂δ)) - x°
    Q(x) = clip(x° + clip(round(255·(x - x°)), -k, k)/255, 0, 1),   k = ⌊255·ε⌋   (spec §1.5)

Defaults ε = 0.031, α = 1/255 (pixel space, before normalisation).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from . import THREATS
from .base import ThreatModel


def quantise_linf(x0: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """``Q(x)``: the 8-bit grid point nearest ``x`` that stays in the ε-ball and in [0, 1].

    Assumes ``x0`` is itself on the 8-bit grid. Shape: any, same for both.
    """
    k = math.floor(255 * eps + 1e-6)
    steps = torch.clamp(torch.round(255 * (x - x0)), -k, k)
    return torch.clamp((torch.round(255 * x0) + steps) / 255, 0, 1)  # exactly n/255


class LinfThreat(ThreatModel):
    """Additive L∞-bounded perturbation with sign-gradient descent.

    Args:
        eps: budget ε in [0, 1] pixel units (0.031 ≈ 8/255).
        alpha: step size α (1/255).
    """

    name = "linf"
    baseline = "pgd"
    label = "PGD"
    adv2_name = "adv2"

    def __init__(self, eps: float = 0.031, alpha: float = 1 / 255) -> None:
        if not (0 < eps <= 1) or not (0 < alpha <= 1):
            raise ValueError(f"eps and alpha must lie in (0, 1], got eps={eps}, alpha={alpha}")
        self.eps, self.alpha = float(eps), float(alpha)

    def init(self, x0: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x0)

    def apply(self, x0: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # no clamp here: ``project`` keeps x0 + v in [0, 1], and a clamp would zero the gradient
        # of pixels sitting exactly at 0 or 1 (they could never move inwards)
        return x0 + v

    def step(self, v: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
        return v - self.alpha * grad.sign()

    def project(self, x0: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x0 + v.clamp(-self.eps, self.eps), 0, 1) - x0

    def quantise(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return quantise_linf(x0, x, self.eps)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "eps": self.eps, "alpha": self.alpha}


@THREATS.register("linf")
def create_linf(eps: float = 0.031, alpha: float = 1 / 255) -> LinfThreat:
    """L∞ ball (ε = 0.031), sign-gradient steps α = 1/255, clip to [0, 1]."""
    return LinfThreat(eps=eps, alpha=alpha)
