"""Distances between maps, pure functions ``(a, b) -> (B,)`` at native resolution (spec §8).

L1 = (1/N)·Σ|a - b|        L2 = √(Σ(a - b)²)/√N
IoU_k = |A_k(a) ∩ A_k(b)| / |A_k(a) ∪ A_k(b)|,  A_k = the ⌈kN/100⌉ largest cells (ties by flat index)
"""

from __future__ import annotations

import math

import torch

IOU_KS: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.dim() < 2:
        raise ValueError(f"maps must share a shape (B, ...), got {tuple(a.shape)} and {tuple(b.shape)}")


def l1_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per sample. Shapes: (B, ...) twice -> (B,)."""
    _check(a, b)
    return (a - b).abs().flatten(1).mean(1)


def l2_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance divided by √N per sample. -> (B,)."""
    _check(a, b)
    d = (a - b).flatten(1)
    return d.norm(dim=1) / math.sqrt(d.shape[1])


def top_cells(a: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean (B, N) mask of the ⌈kN/100⌉ largest cells per sample, ties broken by flat index."""
    flat = a.flatten(1)
    n = flat.shape[1]
    count = math.ceil(k * n / 100)
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices[:, :count]
    out = torch.zeros_like(flat, dtype=torch.bool)
    return out.scatter_(1, order, True)


def iou_topk(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """IoU of the top-k% cells of ``a`` and ``b``. -> (B,)."""
    _check(a, b)
    if not 0 < k <= 100:
        raise ValueError(f"k must be a percentage in (0, 100], got {k}")
    ta, tb = top_cells(a, k), top_cells(b, k)
    return (ta & tb).sum(1).float() / (ta | tb).sum(1).float()


def iou_sweep(a: torch.Tensor, b: torch.Tensor, ks: tuple[int, ...] = IOU_KS) -> torch.Tensor:
    """IoU_k for every k of the sweep. -> (B, len(ks))."""
    return torch.stack([iou_topk(a, b, k) for k in ks], dim=1)


def is_degenerate(maps: torch.Tensor, atol: float = 1e-6) -> torch.Tensor:
    """Which maps are constant (all-zero included): ``max - min ≤ atol`` per sample, or non-finite.

    A constant map carries no localisation: distances between two such maps (L1 = 0, IoU by flat
    index) must be flagged, never counted as a perfect match.

    Shape:
        maps: (B, ...) -> (B,) bool.
    """
    if maps.dim() < 2:
        raise ValueError(f"maps must have shape (B, ...), got {tuple(maps.shape)}")
    flat = maps.detach().flatten(1).float()
    finite = torch.isfinite(flat).all(dim=1)
    spread = flat.nan_to_num(0.0).amax(dim=1) - flat.nan_to_num(0.0).amin(dim=1)
    return (spread <= atol) | ~finite
