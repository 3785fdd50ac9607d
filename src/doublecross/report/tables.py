"""Tables derived from the result store: the paper's layout, per interpreter baseline vs ADV², per threat."""

from __future__ import annotations

import csv
from collections import defaultdict
from typing import Any

from ..metrics import IOU_KS, Accumulator

COLUMNS = (
    [
        "interpreter",
        "method",
        "n",
        "successes",
        "success_rate",
        "confidence",
        "confidence_std",
        "l1",
        "l1_std",
        "l2",
        "l2_std",
        "iou",
        "iou_std",
    ]
    + [f"iou{k}" for k in IOU_KS]
    + ["gt_iou", "linf", "l2_pert", "flow_loss", "flow_mean", "flow_max"]
)
METHOD_LABELS = {"pgd": "PGD", "adv2": "ADV²", "stadv": "StAdv", "adv2-stadv": "ADV²-StAdv"}
METHOD_ORDER = tuple(METHOD_LABELS)


def method_label(method: str) -> str:
    """Display name of a stored method (``adv2-stadv`` -> ``ADV²-StAdv``)."""
    return METHOD_LABELS.get(method, method)


def _method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def summarise(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (interpreter, method), statistics over each method's successful samples."""
    groups: dict[tuple[str, str], Accumulator] = defaultdict(Accumulator)
    import torch

    for s in samples:
        if not s["interpreter"]:
            continue
        keys = [
            k
            for k in s
            if k not in ("batch", "idx", "unit", "interpreter", "method", "success", "label", "target", "pred", "image")
        ]
        groups[(s["interpreter"], s["method"])].add(
            torch.tensor([s["success"]]), **{k: torch.tensor([float(s[k])]) for k in keys}
        )
    rows = []
    for (interp, method), acc in sorted(groups.items(), key=lambda kv: (kv[0][0], _method_rank(kv[0][1]))):
        rows.append({"interpreter": interp, "method": method, **acc.summary()})
    return rows


def write_csv(rows: list[dict[str, Any]], path: str) -> None:
    cols = COLUMNS + sorted({k for r in rows for k in r} - set(COLUMNS))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: interpreter, method, success, confidence, L1, L2, mean IoU (± std), and the mean
    perturbation size ‖Q(x*) − x°‖∞ and ‖Q(x*) − x°‖₂ (pixel space) over successful inputs."""

    def pm(r: dict[str, Any], k: str) -> str:
        v, s = r.get(k, float("nan")), r.get(f"{k}_std", float("nan"))
        return f"{v:.3f}±{s:.3f}" if s == s else f"{v:.3f}"

    head = (
        f"{'interp.':<8} {'attack':<10} {'success':>12} {'confidence':>13} {'L1':>13} {'L2':>13} {'IoU':>13}"
        f" {'Linf pert':>9} {'L2 pert':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        succ = f"{r['successes']}/{r['n']} {100 * r['success_rate']:.0f}%"
        lines.append(
            f"{r['interpreter']:<8} {method_label(r['method']):<10} {succ:>12} "
            f"{pm(r, 'confidence'):>13} {pm(r, 'l1'):>13} {pm(r, 'l2'):>13} {pm(r, 'iou'):>13}"
            f" {r.get('linf', float('nan')):>9.4f} {r.get('l2_pert', float('nan')):>8.3f}"
        )
    return "\n".join(lines)
