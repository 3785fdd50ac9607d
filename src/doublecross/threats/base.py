"""The perturbation-model interface (foolbox's geometry hooks): the attack loop never knows
which threat it holds.

A threat keeps a per-sample variable ``v`` (L∞: the additive offset; StAdv: a flow field) and
supplies ``init / apply / step / project / penalty / size``. A threat with a stateful step rule
(StAdv's Adam) keeps that state itself; the loop calls ``reset`` where a fresh optimiser starts
(each stage, each λ phase).
"""

from __future__ import annotations

from typing import Any

import torch


class ThreatModel:
    """Base class of perturbation models.

    ``init(x0) -> v``; ``apply(x0, v) -> x`` in [0, 1]; ``step(v, grad, k) -> v`` (one descent
    step given ∂L/∂v); ``project(x0, v) -> v`` (back into the feasible set); ``penalty(v) -> (B,)``
    (a loss term, zero for L∞); ``size(x0, x, v) -> {name: (B,)}``; ``quantise(x0, x) -> x`` on
    the 8-bit grid inside the feasible set.
    """

    name = "threat"
    baseline = "baseline"  # the name of the attack without interpreter term under this threat
    label = "threat"  # display name of that baseline (PGD, StAdv)
    adv2_name = "adv2-threat"  # the ADV² method under this threat (units are named <adv2_name>-<interpreter>)

    def reset(self) -> None:
        """Start a fresh step rule (no-op for stateless steps)."""

    def init(self, x0: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def apply(self, x0: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def step(self, v: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
        raise NotImplementedError

    def project(self, x0: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return v

    def penalty(self, v: torch.Tensor) -> torch.Tensor:
        return torch.zeros(v.shape[0], device=v.device, dtype=v.dtype)

    def magnitude(self, v: torch.Tensor) -> torch.Tensor:
        """Per-pixel perturbation magnitude (B, 1, H, W) for figures."""
        return v.abs().amax(1, keepdim=True)

    def size(self, x0: torch.Tensor, x: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
        d = (x - x0).flatten(1)
        return {"linf": d.abs().amax(1), "l2": d.norm(dim=1)}

    def quantise(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 255) / 255

    def config(self) -> dict[str, Any]:
        return {"name": self.name}
