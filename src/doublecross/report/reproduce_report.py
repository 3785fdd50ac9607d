"""Tables, figures, claims and the HTML report of ``doublecross reproduce``, derived from stored runs.

Table and figure builders are registered by the names experiment specs use (``tables: [q1]``,
``figures: [iou-curves]``); each reads the summaries of the runs its experiment names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..experiments.claims import CLAIMS, Claim
from . import reproduce_defences  # noqa: F401  (registers the defence tables)
from .paper_tables import Table
from .reproduce_context import Context
from .reproduce_figures import FIGURES
from .reproduce_tables import TABLES

__all__ = ["FIGURES", "TABLES", "Context", "write_outputs"]


@dataclass
class Section:
    """One experiment's rendered outputs."""

    spec: Any
    tables: list[Table]
    figures: list[tuple[str, str]]
    claims: list[Claim]


def write_outputs(
    cfg: Any, specs: list[Any], out: str, manifests: dict[str, Any], done: dict[str, tuple[int, int]] | None = None
) -> dict[str, Any]:
    """Write every experiment's tables (md/csv/tex) and figures, then ``report.html``; return a summary."""
    from .reproduce_html import write_reproduce_html

    ctx = Context(cfg, out)
    tdir, fdir = os.path.join(out, "tables"), os.path.join(out, "figures")
    os.makedirs(tdir, exist_ok=True)
    os.makedirs(fdir, exist_ok=True)
    sections, files, verdicts = [], [], {}
    for spec in specs:
        tables = [t for name in spec.tables for t in TABLES[name](ctx, spec)]
        claims = [CLAIMS[c](ctx, m) for c in spec.claims for m in ctx.models]
        for t in tables:
            t.notes += [c.line() for c in claims]
            files += list(t.write(tdir).values())
        figures = [f for name in spec.figures for f in FIGURES[name](ctx, spec, fdir)]
        files += [p for _, p in figures]
        for c in claims:
            verdicts[f"{spec.name}: claim {c.number} [{c.model}]"] = c.verdict
        sections.append(Section(spec, tables, figures, claims))
    with open(os.path.join(out, "tables", "all.md"), "w") as fh:
        fh.write("\n".join(t.markdown() for s in sections for t in s.tables))
    html_path = os.path.join(out, "report.html")
    write_reproduce_html(html_path, cfg, sections, manifests, done or {})
    return {"files": [os.path.relpath(p, out) for p in files] + ["report.html"], "claims": verdicts}
