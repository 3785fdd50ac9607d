"""Degenerate maps: a constant or all-zero map explains nothing, so a match against it is no match.

Every run flags, per sample, whether the benign map, the target map and each method's map is
degenerate (:func:`doublecross.metrics.maps.is_degenerate`: constant, all-zero included, or
non-finite). Map distances (L1, L2, IoU, ground-truth IoU) over a sample whose attacked map or
target map is degenerate are **excluded** from the means (``map_n`` says over how many samples
the means are taken, ``excluded`` how many were left out), never counted as a perfect match; the
counts appear in ``summary.csv`` and the printed table, and above ``WARN_FRACTION`` of a group a
warning is logged and written into the report.
"""

from __future__ import annotations

from .maps import is_degenerate

WARN_FRACTION = 0.10

__all__ = ["WARN_FRACTION", "is_degenerate"]
