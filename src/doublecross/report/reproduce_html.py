"""One self-contained HTML page for a whole reproduction: every table, claim verdict and figure.

Figures are embedded as base64 PNG (no external file, script or stylesheet); in-page links are
only to anchors that exist on the page.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from ..config import to_dict

STYLE = (
    "body{font-family:sans-serif;max-width:1250px;margin:auto;padding:0 12px}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px}"
    "caption{font-weight:bold;text-align:left;padding:4px 0}ul.notes{font-size:12px;color:#333}"
    ".PASS{color:#0a7a0a;font-weight:bold}.FAIL{color:#b00;font-weight:bold}.UNCLEAR{color:#a60;font-weight:bold}"
    "figure{margin:12px 0}figcaption{font-size:12px;color:#333}img{max-width:100%}pre{background:#f4f4f4;padding:8px}"
)


def _embed(path: str) -> str:
    with open(path, "rb") as fh:
        return "data:image/png;base64," + base64.b64encode(fh.read()).decode()


def write_reproduce_html(
    path: str, cfg: Any, sections: list[Any], manifests: dict[str, Any], done: dict[str, tuple[int, int]] | None = None
) -> None:
    """Write the report: a contents list, one section per experiment (question, tables, claims, figures)."""
    e = html.escape
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>doublecross reproduction</title>"
        f"<style>{STYLE}</style></head><body>",
        "<h1>doublecross: reproduction of ADV² (Zhang et al., USENIX Security 2020)</h1>",
        f"<p>Models: {e(', '.join(cfg.models))}; {cfg.limit} images per model (correctly classified, drawn as "
        f"the attack job draws them); seed {cfg.seed}; interpreters {e(', '.join(cfg.interpreters))}.</p>",
    ]
    missing = {k: v for k, v in (done or {}).items() if v[0] < v[1] or v[1] == 0}
    if missing:
        parts.append(
            "<p class='FAIL'>Incomplete reproduction: "
            + e("; ".join(f"{k}: {a}/{b} units" for k, (a, b) in missing.items()))
            + " — missing numbers show as dashes and their claims as UNCLEAR; continue with --resume.</p>"
        )
    parts.append("<h2 id='contents'>Contents</h2><ul>")
    parts += [f"<li><a href='#{e(s.spec.name)}'>{e(s.spec.title)}</a></li>" for s in sections]
    parts += ["<li><a href='#claims'>Claims of spec §12</a></li><li><a href='#config'>Configuration</a></li></ul>"]
    all_claims = []
    for s in sections:
        parts.append(f"<section id='{e(s.spec.name)}'><h2>{e(s.spec.title)}</h2><p>{e(s.spec.question)}</p>")
        for c in s.claims:
            all_claims.append(c)
            parts.append(
                f"<p>Claim {c.number} [{e(c.model)}]: <span class='{c.verdict}'>{c.verdict}</span> — "
                f"{e(c.statement)}<br><small>{e('; '.join(c.evidence))}</small></p>"
            )
        parts += [t.html() for t in s.tables]
        for caption, png in s.figures:
            parts.append(
                f"<figure><img alt='{e(caption)}' src='{_embed(png)}'><figcaption>{e(caption)}</figcaption></figure>"
            )
        parts.append("<p><a href='#contents'>back to contents</a></p></section>")
    parts.append(
        "<section id='claims'><h2>Claims of spec §12</h2><table><tr><th>claim</th><th>model</th>"
        "<th>verdict</th><th>statement</th></tr>"
    )
    for c in all_claims:
        parts.append(
            f"<tr><td>{c.number}</td><td>{e(c.model)}</td><td class='{c.verdict}'>{c.verdict}</td>"
            f"<td>{e(c.statement)}</td></tr>"
        )
    from ..experiments import claims

    parts.append(
        "</table><p>Each verdict is computed from the numbers above with these fixed rules "
        "(<code>doublecross.experiments.claims</code>):</p><pre>" + e(claims.__doc__ or "") + "</pre></section>"
    )
    parts.append(
        "<section id='config'><h2>Configuration</h2><pre>"
        + e(json.dumps(to_dict(cfg), indent=2))
        + "</pre><h3>Runs</h3><pre>"
        + e(json.dumps(manifests, indent=2, default=str))
        + "</pre></section>"
    )
    parts.append("</body></html>")
    with open(path, "w") as fh:
        fh.write("\n".join(parts))
