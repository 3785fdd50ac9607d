"""A self-contained HTML report (images embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from .tables import method_label

STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:0 8px}pre{background:#f4f4f4;padding:8px}"
    "table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px}"
    "td.ok{color:#060}td.fail{color:#a00}.warn{background:#fff3cd;border:1px solid #e0b000;padding:8px;margin:8px 0}"
    "img{max-width:100%}details{margin:8px 0}"
)


def _pm(r: dict[str, Any], k: str) -> str:
    v, s = r.get(k), r.get(f"{k}_std")
    if not isinstance(v, float) or v != v:
        return "—"
    return f"{v:.3f} ± {s:.3f}" if isinstance(s, float) and s == s else f"{v:.3f}"


def summary_html(rows: list[dict[str, Any]]) -> str:
    """The summary table, once: success, and mean ± sample std over each attack's successful inputs."""
    has_gt = any(isinstance(r.get("gt_iou"), float) for r in rows)
    cols = ["interpreter", "attack", "success", "p<sub>target</sub>", "L1", "L2", "IoU"]
    cols += ["IoU with object mask"] if has_gt else []
    cols += ["L∞ / mean flow"]
    parts = ["<table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"]
    for r in rows:
        size = _pm(r, "linf") if isinstance(r.get("linf"), float) else _pm(r, "flow_mean")
        cells = [
            r["interpreter"],
            method_label(r["method"]),
            f"{r['successes']}/{r['n']} ({100 * r['success_rate']:.0f} %)",
            _pm(r, "confidence"),
            _pm(r, "l1"),
            _pm(r, "l2"),
            _pm(r, "iou"),
        ]
        cells += [_pm(r, "gt_iou")] if has_gt else []
        cells += [size]
        parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def write_report(
    path: str,
    title: str,
    table: str,
    rows: list[dict[str, Any]],
    figures: dict[str, str | list[str]],
    config: dict[str, Any],
    manifest: dict[str, Any],
    sections: list[tuple[str, str]] | None = None,
    warning: str = "",
    figures_note: str = "",
    lead_sections: list[tuple[str, str]] | None = None,
) -> None:
    """Write the report: warning, summary table, ``lead_sections``, figures, ``sections`` and the raw config.

    Sections are ``(title, HTML body)`` pairs.

    ``table`` (the plain-text table the CLI prints) is not repeated here: the HTML table holds the
    same numbers. Each entry of ``figures`` is one PNG or the pages of one grid.
    """
    del table
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        warning,
        "<p>Statistics over each attack's successful inputs (mean ± sample std); map distances at the "
        "interpreter's native resolution against the target map m<sub>t</sub> (L1, L2: mean absolute / "
        "root-mean-square difference; IoU: mean IoU<sub>k</sub> of the top-k % cells, k = 10…90 %).</p>",
        summary_html(rows) if rows else "<p>No finished unit yet.</p>",
    ]
    for sec_title, body in lead_sections or []:
        parts.append(f"<h2>{html.escape(sec_title)}</h2>{body}")
    parts.append(figures_note)
    for name, pngs in figures.items():
        pngs = [pngs] if isinstance(pngs, str) else pngs
        parts.append(f"<h2>{html.escape(name)}</h2>")
        for png in pngs:
            with open(png, "rb") as fh:
                data = base64.b64encode(fh.read()).decode()
            parts.append(f"<img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
    for sec_title, body in sections or []:
        parts.append(f"<h2>{html.escape(sec_title)}</h2>{body}")
    parts.append(
        "<details><summary>Configuration (config.yaml)</summary><pre>"
        + html.escape(json.dumps(config, indent=2))
        + "</pre></details>"
    )
    parts.append(
        "<details><summary>Manifest</summary><pre>"
        + html.escape(json.dumps(manifest, indent=2))
        + "</pre></details></body></html>"
    )
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
