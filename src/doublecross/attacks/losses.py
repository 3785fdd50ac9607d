"""Per-sample attack losses (shape (B,); the attack minimises their sum over the batch).

CE(z, t) = -log softmax(z)_t          M(z, t) = max_{j≠t} z_j - z_t   (margin; < 0 when t wins)
ℓint(a, m_t) = mean_cells (a - m_t)²  (``reduction="mean"``, ours)  or  Σ_cells (``"sum"``, paper)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REDUCTIONS = ("mean", "sum")


def ce_loss(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per sample. Shapes: (B, C), (B,) -> (B,)."""
    return F.cross_entropy(logits, t, reduction="none")


def margin_loss(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``max_{j≠t} z_j - z_t`` per sample (negative when ``t`` is predicted). -> (B,)."""
    zt = logits.gather(1, t[:, None])[:, 0]
    others = logits.masked_fill(F.one_hot(t, logits.shape[1]).bool(), float("-inf")).amax(1)
    return others - zt


def map_loss(a: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Squared L2 distance between maps per sample, mean or sum over cells. (B,1,h,w)² -> (B,)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if a.shape != target.shape:
        raise ValueError(f"map shapes differ: {tuple(a.shape)} vs target {tuple(target.shape)}")
    d = (a - target).pow(2).flatten(1)
    return d.mean(1) if reduction == "mean" else d.sum(1)
