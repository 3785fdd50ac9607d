"""The per-image table of the attack report: each image's class, target and every method's outcome."""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

from .tables import _method_rank, method_label


def class_name(names: list[str], c: int) -> str:
    """``names[c]`` or the number when the name is unknown."""
    return names[c] if 0 <= c < len(names) else str(c)


def per_image_tables(samples: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows per ADV² unit (one interpreter under one threat): image, label, target and each method's metrics.

    Returns:
        ``{unit: [{"idx", "label", "target", "methods": {method: sample}}, ...]}`` in image order;
        the baseline's rows are its image re-evaluated by that unit's interpreter.
    """
    by_unit: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for s in samples:
        if not s["interpreter"]:
            continue
        row = by_unit[s["unit"]].setdefault(
            s["idx"],
            # shape targets pair each target with a source image: show that image's index, not the pair's
            {
                "idx": s["idx"],
                "image": s.get("image", s["idx"]),
                "label": s["label"],
                "target": s["target"],
                "methods": {},
            },
        )
        row["methods"][s["method"]] = s
    return {u: [rows[i] for i in sorted(rows)] for u, rows in sorted(by_unit.items())}


def per_image_html(samples: list[dict[str, Any]], names: list[str]) -> str:
    """HTML tables, one per interpreter and threat: success ✓/✗, p_target, prediction, L1 and IoU per method."""
    parts = []
    for unit, rows in per_image_tables(samples).items():
        methods = sorted({m for r in rows for m in r["methods"]}, key=_method_rank)
        interp = next(iter(rows[0]["methods"].values()))["interpreter"] if rows else unit
        head = "".join(
            f"<th colspan='4'>{html.escape(method_label(m))}</th>" for m in methods
        )
        sub = "".join("<th>success</th><th>p<sub>target</sub></th><th>L1</th><th>IoU</th>" for _ in methods)
        parts.append(
            f"<h3>{html.escape(interp.upper())} — {html.escape(' vs '.join(method_label(m) for m in methods))}</h3>"
            "<table class='per-image'><tr><th rowspan='2'>image</th><th rowspan='2'>true class</th>"
            f"<th rowspan='2'>target</th>{head}</tr><tr>{sub}</tr>"
        )
        for r in rows:
            cells = [str(r["image"]), class_name(names, r["label"]), class_name(names, r["target"])]
            tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells)
            for m in methods:
                s = r["methods"].get(m)
                if s is None:
                    tds += "<td colspan='4'>—</td>"
                    continue
                ok = bool(s["success"])
                mark = "✓" if ok else f"✗ ({html.escape(class_name(names, s['pred']))})"
                tds += (
                    f"<td class='{'ok' if ok else 'fail'}'>{mark}</td><td>{s['confidence']:.3f}</td>"
                    f"<td>{s.get('l1', float('nan')):.3f}</td><td>{s.get('iou', float('nan')):.3f}</td>"
                )
            parts.append(f"<tr>{tds}</tr>")
        parts.append("</table>")
    note = (
        "<p>One row per attacked image (index in the attack set). ✗ shows the class predicted instead. "
        "p<sub>target</sub>: softmax probability of the target class; L1 and IoU (mean IoU<sub>k</sub>, "
        "k = 10…90 %) compare the method's map with the target map m<sub>t</sub>.</p>"
    )
    return note + "\n".join(parts)
