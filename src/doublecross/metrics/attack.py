"""Attack statistics: success, confidence, perturbation size, and an accumulator over batches."""

from __future__ import annotations

import math
from collections import defaultdict

import torch

from .maps import IOU_KS, iou_sweep, l1_distance, l2_distance


def target_confidence(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """p_t per sample. Shapes: (B, C), (B,) -> (B,)."""
    return torch.softmax(logits, 1).gather(1, t[:, None])[:, 0]


def map_metrics(adv_map: torch.Tensor, ref_map: torch.Tensor) -> dict[str, torch.Tensor]:
    """L1, L2, IoU_k for each k and the mean IoU between two map batches. Each value (B,)."""
    ious = iou_sweep(adv_map, ref_map)
    out = {"l1": l1_distance(adv_map, ref_map), "l2": l2_distance(adv_map, ref_map), "iou": ious.mean(1)}
    out.update({f"iou{k}": ious[:, i] for i, k in enumerate(IOU_KS)})
    return out


class Accumulator:
    """Collects per-sample rows and summarises over successful samples (mean ± sample std)."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = defaultdict(list)
        self.success: list[bool] = []

    def add(self, success: torch.Tensor, **metrics: torch.Tensor) -> None:
        self.success += [bool(s) for s in success.tolist()]
        for k, v in metrics.items():
            self.values[k] += [float(x) for x in v.tolist()]

    def summary(self) -> dict[str, float]:
        n = len(self.success)
        ok = [i for i, s in enumerate(self.success) if s]
        out: dict[str, float] = {
            "n": n,
            "successes": len(ok),
            "failures": n - len(ok),
            "success_rate": len(ok) / n if n else float("nan"),
        }
        for k, vals in self.values.items():
            sel = [vals[i] for i in ok]
            mean = sum(sel) / len(sel) if sel else float("nan")
            var = sum((v - mean) ** 2 for v in sel) / (len(sel) - 1) if len(sel) > 1 else float("nan")
            out[k], out[f"{k}_std"] = mean, math.sqrt(var) if var == var else float("nan")
        return out
