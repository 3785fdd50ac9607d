"""Degenerate maps: a constant or all-zero map explains nothing, so a match against it is no match.

Every run flags, per sample, whether the benign map, the target map and each method's map is
degenerate. Map distances (L1, L2, IoU, ground-truth IoU) over a sample whose attacked map or
target map is degenerate are **excluded** from the means (``map_n`` says over how many samples
the means are taken, ``excluded`` how many were left out), never counted as a perfect match; the
counts appear in ``summary.csv`` and the printed table, and above ``WARN_FRACTION`` of a group a
warning is logged and written into the report.
"""

from __future__ import annotations

import torch

WARN_FRACTION = 0.10
ATOL = 1e-6


def is_degenerate(maps: torch.Tensor, atol: float = ATOL) -> torch.Tensor:
    """Per sample: the map is constant (max − min ≤ atol) or all-zero (max |m| ≤ atol).

    Local stand-in for ``metrics.maps.is_degenerate`` (issue 11, model side); the one place to
    swap at merge.

    Shape: (B, ...) -> bool (B,).
    """
    flat = maps.detach().flatten(1).float()
    hi, lo = flat.max(1).values, flat.min(1).values
    return ((hi - lo) <= atol) | (flat.abs().max(1).values <= atol)
