"""A self-contained HTML report (images embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import json
from typing import Any


def write_report(
    path: str,
    title: str,
    table: str,
    rows: list[dict[str, Any]],
    figures: dict[str, str],
    config: dict[str, Any],
    manifest: dict[str, Any],
) -> None:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}pre{background:#f4f4f4;padding:8px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px}</style>",
        f"</head><body><h1>{html.escape(title)}</h1>",
        "<p>Statistics over each attack's successful inputs (mean ± sample std); map distances at the "
        "interpreter's native resolution against the target map.</p>",
        f"<pre>{html.escape(table)}</pre>",
    ]
    if rows:
        cols = ["interpreter", "method", "n", "successes", "success_rate", "confidence", "l1", "l2", "iou", "gt_iou"]
        cols += ["linf", "l2_pert"]  # perturbation sizes ‖Q(x*) − x°‖∞, ‖·‖₂
        parts.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>")
        for r in rows:
            cells = [f"{r.get(c):.4g}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols]
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    for name, png in figures.items():
        with open(png, "rb") as fh:
            data = base64.b64encode(fh.read()).decode()
        parts.append(
            f"<h2>{html.escape(name.upper())}</h2><img style='max-width:100%' src='data:image/png;base64,{data}'>"
        )
    parts.append("<h2>Configuration</h2><pre>" + html.escape(json.dumps(config, indent=2)) + "</pre>")
    parts.append("<h2>Manifest</h2><pre>" + html.escape(json.dumps(manifest, indent=2)) + "</pre></body></html>")
    with open(path, "w") as fh:
        fh.write("\n".join(parts))
