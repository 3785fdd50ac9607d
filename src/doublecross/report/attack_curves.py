"""The attack report's line plots: IoU_k curves per threat and the ADV² per-iteration histories."""

from __future__ import annotations

import os
from typing import Any

from ..experiments.history import load_history
from .curves import history_figure, iou_curve_figure
from .tables import method_label


def attack_curves(out: str, store: Any, samples: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, str]:
    """Write ``iou_curves[_<threat>].png`` and ``history[_<threat>].png`` into ``out``; return title -> path.

    The IoU_k curve is drawn per threat (baseline vs ADV², one panel per interpreter); the history
    plot from the records the ADV² units of batch 0 stored (``history_every``; none for old runs).
    """
    figures: dict[str, str] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        threat = "stadv" if r["method"] in ("stadv", "adv2-stadv") else "linf"
        groups.setdefault(threat, []).append(r)
    for threat, rs in groups.items():
        suffix = "" if threat == "linf" else f"_{threat}"
        path = os.path.join(out, f"iou_curves{suffix}.png")
        adv = "adv2" if threat == "linf" else "adv2-stadv"
        iou_curve_figure(path, rs, f"IoU_k with the benign map: {method_label(adv)} vs baseline (mean ± std)")
        figures[f"IoU_k curves — {method_label(adv)}"] = path
        histories = {}
        for interp in dict.fromkeys(r["interpreter"] for r in rs):
            unit = f"{adv}-{interp}"
            h = load_history(lambda n, u=unit: store.has_array(0, u, n), lambda n, u=unit: store.array(0, u, n))
            if "step" in h:
                histories[interp] = h
        if histories:
            path = os.path.join(out, f"history{suffix}.png")
            history_figure(path, histories, f"{method_label(adv)}: per-iteration batch means (batch 0)")
            figures[f"history — {method_label(adv)}"] = path
    return figures
