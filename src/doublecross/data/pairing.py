"""Pairing shape target maps with attack images (spec §1.6).

Visit the shapes in order; each takes the image whose benign map is **farthest** from it in L2,
among the images used fewer than ``max_uses`` times (ties: the lowest index).
"""

from __future__ import annotations

import torch


def pair_farthest(benign: torch.Tensor, targets: torch.Tensor, max_uses: int = 3) -> torch.Tensor:
    """Index of the image paired with each target map.

    d(s, i) = ‖m_s − g(x_i°)‖₂ over cells; shape s takes argmax_i d(s, i) among images with uses < max_uses.

    Shape:
        benign: (B, 1, h, w) benign maps; targets: (S, 1, h, w) with S ≤ max_uses·B -> (S,) int64 in [0, B).

    Raises:
        ValueError: shapes differ, or more targets than ``max_uses·B``.
    """
    if benign.shape[1:] != targets.shape[1:]:
        raise ValueError(f"maps must share a size, got {tuple(benign.shape)} and {tuple(targets.shape)}")
    if max_uses < 1 or targets.shape[0] > max_uses * benign.shape[0]:
        raise ValueError(
            f"{targets.shape[0]} targets cannot pair with {benign.shape[0]} images used ≤ {max_uses} times"
        )
    d = torch.cdist(targets.flatten(1).double(), benign.flatten(1).double())  # (S, B)
    uses = torch.zeros(benign.shape[0], dtype=torch.int64)
    out = []
    for s in range(targets.shape[0]):
        row = d[s].clone()
        row[uses >= max_uses] = -1.0
        i = int(row.argmax())
        uses[i] += 1
        out.append(i)
    return torch.tensor(out, dtype=torch.int64)
