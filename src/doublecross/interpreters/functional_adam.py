"""A functional, differentiable Adam step (MASK's inner optimisation and its unrolling; StAdv's flow).

    μ' = β1·μ + (1-β1)·G        ν' = β2·ν + (1-β2)·G²        k' = k + 1
    m' = clamp(m - lr · (μ'/(1-β1^k')) / (√(ν'/(1-β2^k') + δ) + eps), lo, hi)

With ``amsgrad`` the denominator uses ν̂' = max(ν̂, ν') instead of ν' (kept in the state).
Numerically equal to ``torch.optim.Adam`` (δ = 1e-30 only guards the infinite derivative of √
at ν = 0, spec §10), and differentiable in ``G``, ``m`` and the state when built with a graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AdamState:
    """Adam moments ``mu``, ``nu`` (shaped like the variable), the step count ``step`` and, for
    amsgrad, the running maximum ``nu_max`` of ``nu``."""

    mu: torch.Tensor
    nu: torch.Tensor
    step: int = 0
    nu_max: torch.Tensor | None = None

    @classmethod
    def zeros_like(cls, m: torch.Tensor) -> AdamState:
        return cls(torch.zeros_like(m), torch.zeros_like(m), 0)

    def detach(self) -> AdamState:
        nu_max = self.nu_max.detach() if self.nu_max is not None else None
        return AdamState(self.mu.detach(), self.nu.detach(), self.step, nu_max)

    def index(self, idx: torch.Tensor) -> AdamState:
        nu_max = self.nu_max[idx] if self.nu_max is not None else None
        return AdamState(self.mu[idx], self.nu[idx], self.step, nu_max)


def adam_step(
    m: torch.Tensor,
    grad: torch.Tensor,
    state: AdamState,
    lr: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    delta: float = 1e-30,
    amsgrad: bool = False,
) -> tuple[torch.Tensor, AdamState]:
    """One Adam update of ``m`` given ``grad``; returns the new variable and state (out of place).

    ``m' = clamp(m - lr·μ̂'/(√(ν̂' + δ) + eps))`` (module docstring). Shapes: ``m``, ``grad`` and the
    state's moments alike (any shape), same out.
    """
    b1, b2 = betas
    step = state.step + 1
    mu = b1 * state.mu + (1 - b1) * grad
    nu = b2 * state.nu + (1 - b2) * grad * grad
    nu_max = None
    if amsgrad:
        nu_max = nu if state.nu_max is None else torch.maximum(state.nu_max, nu)
    denom = torch.sqrt((nu if nu_max is None else nu_max) / (1 - b2**step) + delta) + eps
    m = m - lr * (mu / (1 - b1**step)) / denom
    if clamp is not None:
        m = m.clamp(*clamp)
    return m, AdamState(mu, nu, step, nu_max)
