"""StAdv threat: a per-pixel flow field warps the image (Xiao et al. 2018, arXiv:1801.02612; spec §5).

The flow ``w`` (B, 2, H, W) is in pixels, channel 0 = Δrow, channel 1 = Δcol (the authors' order).

    x_w(i, j) = bilinear(x°; i + Δrow, j + Δcol), positions clamped to the image border
    L_flow(w) = Σ_p Σ_{q ∈ N(p)} √(‖w(p) - w(q)‖² + 1e-8)      (replicate padding; each edge twice)

``N`` is the 4-neighbourhood of the StAdv paper, or the (±1, ±1) diagonal neighbours that the ADV²
authors' code computed (``neighbourhood="diagonal"``). The flow starts at zero, takes Adam steps
(lr 0.01, betas 0.9/0.999, optional amsgrad) and has no ε-ball: the penalty τ·L_flow keeps it
small. The warp is ``grid_sample(mode="bilinear", padding_mode="border", align_corners=True)``, so
zero flow reproduces x° (up to float rounding of the grid) and x_w stays in [0, 1].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..interpreters.functional_adam import AdamState, adam_step
from . import THREATS
from .base import ThreatModel

NEIGHBOURHOODS = ("4", "diagonal")
_OFFSETS = {"4": ((1, 0), (-1, 0), (0, 1), (0, -1)), "diagonal": ((1, 1), (1, -1), (-1, 1), (-1, -1))}


def identity_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates (1, 2, H, W): channel 0 = row i, channel 1 = column j."""
    i = torch.arange(height, dtype=like.dtype, device=like.device)
    j = torch.arange(width, dtype=like.dtype, device=like.device)
    ii, jj = torch.meshgrid(i, j, indexing="ij")
    return torch.stack([ii, jj])[None]


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``x_w = bilinear(x; (i + Δrow, j + Δcol))`` with border clamping. (B,3,H,W), (B,2,H,W) -> (B,3,H,W).

    Normalised grid ``u = 2(j + Δcol)/(W - 1) - 1``, ``v = 2(i + Δrow)/(H - 1) - 1``. The grid and
    the sampling run in float64 so that zero flow returns x to 1e-6 (in float32 the grid's
    normalise/unnormalise round trip is off by up to ~2e-6 at 64 px); the result has x's dtype.
    """
    if flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[0] != x.shape[0] or flow.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"flow must have shape {(x.shape[0], 2, *x.shape[-2:])}, got {tuple(flow.shape)}")
    h, w = x.shape[-2:]
    xd = x.double()
    pos = identity_grid(h, w, xd) + flow.double()
    u = 2 * pos[:, 1] / max(w - 1, 1) - 1
    v = 2 * pos[:, 0] / max(h - 1, 1) - 1
    out = F.grid_sample(xd, torch.stack([u, v], dim=-1), mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(x.dtype)


def flow_loss(flow: torch.Tensor, neighbourhood: str = "4") -> torch.Tensor:
    """``Σ_p Σ_{q∈N(p)} √(‖w(p) - w(q)‖² + 1e-8)`` per sample, replicate padding. (B,2,H,W) -> (B,)."""
    if neighbourhood not in _OFFSETS:
        raise ValueError(f"neighbourhood must be one of {NEIGHBOURHOODS}, got {neighbourhood!r}")
    h, w = flow.shape[-2:]
    padded = F.pad(flow, (1, 1, 1, 1), mode="replicate")
    total = flow.new_zeros(flow.shape[0])
    for di, dj in _OFFSETS[neighbourhood]:
        q = padded[..., 1 + di : 1 + di + h, 1 + dj : 1 + dj + w]
        total = total + ((flow - q).pow(2).sum(1) + 1e-8).sqrt().flatten(1).sum(1)
    return total


class StAdvThreat(ThreatModel):
    """Spatial flow perturbation with an Adam step rule and a flow-smoothness penalty.

    Args:
        tau: weight τ of L_flow in every attack loss (regular StAdv: 0.0005).
        lr, betas, amsgrad: the flow's Adam (paper: 0.01, (0.9, 0.999); the authors used amsgrad).
        neighbourhood: ``"4"`` (StAdv paper, default) or ``"diagonal"`` (the authors' code).
    """

    name = "stadv"
    baseline = "stadv"
    label = "StAdv"
    adv2_name = "adv2-stadv"

    def __init__(
        self,
        tau: float = 0.0005,
        lr: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.999),
        amsgrad: bool = False,
        neighbourhood: str = "4",
        eps: float = 1e-8,
    ) -> None:
        if tau < 0 or lr <= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"need tau >= 0, lr > 0 and betas in [0, 1); got tau={tau}, lr={lr}, betas={betas}")
        if neighbourhood not in NEIGHBOURHOODS:
            raise ValueError(f"neighbourhood must be one of {NEIGHBOURHOODS}, got {neighbourhood!r}")
        self.tau, self.lr, self.betas, self.amsgrad = float(tau), float(lr), tuple(map(float, betas)), bool(amsgrad)
        self.neighbourhood, self.eps = neighbourhood, float(eps)
        self.reset()

    def reset(self) -> None:
        """Forget the Adam moments: the next ``step`` starts a fresh optimiser."""
        self._adam: AdamState | None = None

    def init(self, x0: torch.Tensor) -> torch.Tensor:
        """Zero flow (B, 2, H, W) [our decision; the authors drew U(-0.1, 0.1) unseeded]."""
        self.reset()
        return x0.new_zeros(x0.shape[0], 2, *x0.shape[-2:])

    def apply(self, x0: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return warp(x0, v)

    def step(self, v: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
        """One Adam step on the flow (element-wise, so per sample): ``w ← w - lr·m̂/(√v̂ + ε)``."""
        if self._adam is None or self._adam.mu.shape != grad.shape:
            self._adam = AdamState.zeros_like(grad)
        v, self._adam = adam_step(
            v, grad, self._adam, lr=self.lr, betas=self.betas, eps=self.eps, clamp=None, amsgrad=self.amsgrad
        )
        return v

    def penalty(self, v: torch.Tensor) -> torch.Tensor:
        """τ·L_flow(w) per sample (B,)."""
        return self.tau * flow_loss(v, self.neighbourhood)

    def magnitude(self, v: torch.Tensor) -> torch.Tensor:
        """Displacement length ‖w(p)‖₂ in pixels (B, 1, H, W)."""
        return v.pow(2).sum(1, keepdim=True).sqrt()

    def size(self, x0: torch.Tensor, x: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
        mag = self.magnitude(v).flatten(1)
        return {
            **super().size(x0, x, v),
            "flow_loss": flow_loss(v, self.neighbourhood),
            "flow_mean": mag.mean(1),
            "flow_max": mag.amax(1),
        }

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tau": self.tau,
            "lr": self.lr,
            "betas": list(self.betas),
            "amsgrad": self.amsgrad,
            "neighbourhood": self.neighbourhood,
        }


@THREATS.register("stadv")
def create_stadv(
    tau: float = 0.0005,
    lr: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    amsgrad: bool = False,
    neighbourhood: str = "4",
) -> StAdvThreat:
    """StAdv flow field: bilinear warp, τ·L_flow (4-neighbourhood), Adam (0.01, 0.9, 0.999), no ε."""
    return StAdvThreat(tau=tau, lr=lr, betas=betas, amsgrad=amsgrad, neighbourhood=neighbourhood)
