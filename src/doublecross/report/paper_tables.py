"""Tables in the paper's layout, rendered as Markdown, CSV, LaTeX and HTML from one object.

A :class:`Table` holds display cells (strings) and the numbers behind them, plus the notes every
reproduction table states: sample size, seed, preset and the spec-§12 claims it tests.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field


@dataclass
class Table:
    """A titled table: ``header`` and ``rows`` of display strings; ``notes`` are printed under it."""

    name: str
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    numbers: list[dict[str, object]] = field(default_factory=list)  # machine-readable rows for the CSV

    def markdown(self) -> str:
        out = [
            f"**{self.title}**",
            "",
            "| " + " | ".join(self.header) + " |",
            "|" + "|".join("---" for _ in self.header) + "|",
        ]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        out += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"

    def csv(self) -> str:
        buf = io.StringIO()
        if self.numbers:
            cols = list(dict.fromkeys(k for r in self.numbers for k in r))
            w = csv.DictWriter(buf, fieldnames=cols)
            w.writeheader()
            for r in self.numbers:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        else:
            w2 = csv.writer(buf)
            w2.writerow(self.header)
            w2.writerows(self.rows)
        return buf.getvalue()

    def latex(self) -> str:
        def esc(s: str) -> str:
            s = s.replace("\\", "\\textbackslash{}")
            for c in "&%$#_{}":
                s = s.replace(c, "\\" + c)
            return s.replace("±", "$\\pm$").replace("²", "$^2$").replace("→", "$\\to$").replace("@", "@")

        lines = [
            "\\begin{table}[t]",
            "\\centering",
            f"\\caption{{{esc(self.title)}}}",
            f"\\label{{tab:{self.name}}}",
            "\\begin{tabular}{" + "l" * 1 + "r" * (len(self.header) - 1) + "}",
            "\\hline",
            " & ".join(esc(h) for h in self.header) + " \\\\",
            "\\hline",
        ]
        lines += [" & ".join(esc(c) for c in r) + " \\\\" for r in self.rows]
        lines += ["\\hline", "\\end{tabular}"]
        lines += [f"\\par\\footnotesize {esc(n)}" for n in self.notes]
        lines.append("\\end{table}")
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        out = [f"<table id='table-{html.escape(self.name)}'><caption>{html.escape(self.title)}</caption><tr>"]
        out.append("".join(f"<th>{html.escape(h)}</th>" for h in self.header) + "</tr>")
        for r in self.rows:
            out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
        out.append("</table><ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.notes) + "</ul>")
        return "".join(out)

    def write(self, folder: str) -> dict[str, str]:
        """Write ``<name>.md``, ``.csv`` and ``.tex`` into ``folder``; return the paths by format."""
        import os

        paths = {}
        for ext, text in (("md", self.markdown()), ("csv", self.csv()), ("tex", self.latex())):
            paths[ext] = os.path.join(folder, f"{self.name}.{ext}")
            with open(paths[ext], "w") as fh:
                fh.write(text)
        return paths


def pm(row: dict[str, object] | None, key: str, digits: int = 3) -> str:
    """``mean ± std`` of ``row[key]`` (``–`` when missing or NaN)."""
    if not row:
        return "–"
    v, s = row.get(key), row.get(f"{key}_std")
    if not isinstance(v, (int, float)) or v != v:
        return "–"
    if isinstance(s, (int, float)) and s == s:
        return f"{v:.{digits}f} ± {s:.{digits}f}"
    return f"{v:.{digits}f}"
