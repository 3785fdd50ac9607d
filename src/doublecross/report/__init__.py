"""Reports derived from a run directory: summary.csv, the printed table, PNG grids, report.html."""

from __future__ import annotations

import json
import os
from typing import Any

import yaml

from ..experiments.store import ResultStore
from .figures import grid_figure
from .html import write_report
from .tables import format_table, summarise, write_csv


def build_report(out: str, class_names: list[str] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(Re)generate summary.csv, grid_<interp>.png and report.html from ``out``; return the table."""
    manifest: dict[str, Any] = {}
    if os.path.isfile(os.path.join(out, "manifest.json")):
        with open(os.path.join(out, "manifest.json")) as fh:
            manifest = json.load(fh)
    store = ResultStore(os.path.join(out, "results.sqlite"))
    try:
        samples = list(store.samples())
        rows = summarise(samples)
        write_csv(rows, os.path.join(out, "summary.csv"))
        table = format_table(rows)
        figures = {}
        names = class_names or manifest.get("classes") or []

        def cap(pred: int, conf: float) -> str:
            return f"{names[pred] if pred < len(names) else pred} ({conf:.2f})"

        for interp in sorted({s["interpreter"] for s in samples if s["interpreter"]}):
            unit = f"adv2-{interp}"
            by: dict[str, list[dict[str, Any]]] = {}
            for s in samples:
                if s["unit"] == unit and s["batch"] == 0:
                    by.setdefault(s["method"], []).append(s)
            x = store.array(0, unit, "x")
            labels = {
                "benign": [cap(s["label"], 1.0).replace(" (1.00)", " (true)") for s in by.get("adv2", [])],
                "pgd": [cap(s["pred"], s["confidence"]) for s in by.get("pgd", [])],
                "adv2": [cap(s["pred"], s["confidence"]) for s in by.get("adv2", [])],
            }
            png = os.path.join(out, f"grid_{interp}.png")
            grid_figure(
                png,
                interp,
                x,
                store.array(0, "pgd", "x"),
                store.array(0, unit, "adv_x"),
                {
                    "benign": store.array(0, unit, "benign_map"),
                    "pgd": store.array(0, unit, "pgd_map"),
                    "adv2": store.array(0, unit, "adv_map"),
                },
                labels,
            )
            figures[interp] = png
    finally:
        store.close()
    with open(os.path.join(out, "config.yaml")) as fh:
        config = yaml.safe_load(fh)
    write_report(os.path.join(out, "report.html"), "doublecross: ADV² vs PGD", table, rows, figures, config, manifest)
    return table, rows
