"""Degenerate-map counts in reports: which metrics they poison, the table's footer and its warnings.

See :mod:`doublecross.metrics.degenerate` for the rule (map metrics over a sample whose attacked
or target map is constant / all-zero are excluded from the means and counted instead).
"""

from __future__ import annotations

import logging
from typing import Any

from ..metrics.degenerate import WARN_FRACTION

log = logging.getLogger(__name__)

FLAGS = ("degenerate", "benign_degenerate", "target_degenerate")


def is_map_metric(key: str) -> bool:
    """Whether a per-sample metric compares maps (L1, L2, IoU_k, ground-truth IoU, benign_*)."""
    base = key.removeprefix("benign_")
    return base in ("l1", "l2", "iou", "gt_iou") or (base.startswith("iou") and base[3:].isdigit())


def is_flagged(sample: dict[str, Any]) -> bool:
    """The sample's attacked map or its target map is degenerate: its map metrics mean nothing."""
    return bool(sample.get("degenerate")) or bool(sample.get("target_degenerate"))


def degenerate_report(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(footer lines, warnings) for the summary ``rows`` (one per interpreter and method).

    Footer: per interpreter, the degenerate counts of the benign maps and of each method's maps.
    Warnings: every (interpreter, benign / method) whose count exceeds ``WARN_FRACTION`` of n.
    """
    by_interp: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if "degenerate" in r:
            by_interp.setdefault(r["interpreter"], []).append(r)
    if not by_interp:
        return [], []
    from .tables import method_label

    parts, warnings = [], []
    for interp, rs in by_interp.items():
        n = max(int(r["n"]) for r in rs)
        counts = [("benign", max(int(r.get("benign_degenerate", 0)) for r in rs), n)]
        counts += [(method_label(r["method"]), int(r["degenerate"]), int(r["n"])) for r in rs]
        parts.append(f"{interp} " + ", ".join(f"{m} {c}/{k}" for m, c, k in counts))
        for m, c, k in counts:
            if k and c / k > WARN_FRACTION:
                warnings.append(
                    f"WARNING: {interp}: {c} of {k} {m} maps are constant or all-zero "
                    f"(> {100 * WARN_FRACTION:.0f} %); their map metrics are excluded from the means, "
                    "the interpreter does not explain this model at these settings"
                )
    footer = ["degenerate maps (constant or all-zero; map metrics exclude them): " + "; ".join(parts)]
    return footer, warnings


def degenerate_html(rows: list[dict[str, Any]]) -> str:
    """The counts and warnings of :func:`degenerate_report` as an HTML section body (empty if none)."""
    import html

    footer, warnings = degenerate_report(rows)
    parts = [f"<p>{html.escape(line)}</p>" for line in footer]
    parts += [f'<div class="warn">{html.escape(w)}</div>' for w in warnings]
    return "\n".join(parts)
