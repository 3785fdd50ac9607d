"""Metrics: map distances and attack statistics."""

from .attack import Accumulator, map_metrics, target_confidence
from .maps import IOU_KS, iou_sweep, iou_topk, is_degenerate, l1_distance, l2_distance

__all__ = [
    "IOU_KS",
    "Accumulator",
    "iou_sweep",
    "iou_topk",
    "is_degenerate",
    "l1_distance",
    "l2_distance",
    "map_metrics",
    "target_confidence",
]
