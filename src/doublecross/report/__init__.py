"""Reports derived from a run directory: summary.csv, the printed table, PNG grids, report.html."""

from __future__ import annotations

import json
import os
from typing import Any

from ..experiments.store import ResultStore
from ..safe_yaml import load_yaml_file
from .figures import grid_figure
from .html import write_report
from .safe_paths import output_path, safe_name
from .tables import format_table, method_label, summarise, write_csv


def _grid_units(samples: list[dict[str, Any]], out: str) -> dict[tuple[str, str, str, str], str]:
    """(interpreter, baseline method, ADV² method, ADV² unit) -> PNG path, for every ADV² unit of batch 0.

    The baseline's unit carries its method's name (``pgd``, ``stadv``); L∞ grids are
    ``grid_<interp>.png``, other threats ``grid_<interp>_<threat>.png``.
    """
    found: dict[tuple[str, str, str, str], str] = {}
    methods: dict[tuple[str, str], set[str]] = {}
    for s in samples:
        if s["interpreter"] and s["batch"] == 0:
            methods.setdefault((s["interpreter"], s["unit"]), set()).add(s["method"])
    for (interp, unit), ms in sorted(methods.items()):
        adv = unit[: -len(interp) - 1]
        base = next(iter(ms - {adv}), None)
        if base is None:
            continue
        suffix = "" if adv == "adv2" else "_" + adv.removeprefix("adv2-")
        found[(interp, base, adv, unit)] = output_path(out, safe_name(f"grid_{interp}{suffix}.png"))
    return found


def build_report(out: str, class_names: list[str] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(Re)generate summary.csv, grid_<interp>[_<threat>].png and report.html from ``out``; return the table."""
    manifest: dict[str, Any] = {}
    if os.path.isfile(os.path.join(out, "manifest.json")):
        with open(os.path.join(out, "manifest.json")) as fh:
            manifest = json.load(fh)
    if not os.path.isfile(os.path.join(out, "results.sqlite")):
        raise FileNotFoundError(f"{out} is not a run directory (no results.sqlite)")
    store = ResultStore(os.path.join(out, "results.sqlite"))
    try:
        samples = list(store.samples())
        rows = summarise(samples)
        write_csv(rows, output_path(out, "summary.csv"))
        table = format_table(rows)
        figures = {}
        names = class_names or manifest.get("classes") or []

        def cap(pred: int, conf: float) -> str:
            return f"{names[pred] if pred < len(names) else pred} ({conf:.2f})"

        for (interp, base, adv, unit), png in _grid_units(samples, out).items():
            by: dict[str, list[dict[str, Any]]] = {}
            for s in samples:
                if s["unit"] == unit and s["batch"] == 0:
                    by.setdefault(s["method"], []).append(s)
            grid_figure(
                png,
                interp,
                store.array(0, unit, "x"),
                store.array(0, base, "x"),
                store.array(0, unit, "adv_x"),
                {
                    "benign": store.array(0, unit, "benign_map"),
                    # runs written before StAdv existed stored the baseline's map as ``pgd_map``
                    "base": store.array(0, unit, "base_map" if store.has_array(0, unit, "base_map") else "pgd_map"),
                    "adv2": store.array(0, unit, "adv_map"),
                },
                {
                    "benign": [cap(s["label"], 1.0).replace(" (1.00)", " (true)") for s in by.get(adv, [])],
                    "base": [cap(s["pred"], s["confidence"]) for s in by.get(base, [])],
                    "adv2": [cap(s["pred"], s["confidence"]) for s in by.get(adv, [])],
                },
                titles=(method_label(base), method_label(adv)),
                magnitudes=(store.array(0, base, "magnitude"), store.array(0, unit, "adv_magnitude"))
                if store.has_array(0, unit, "adv_magnitude")
                else None,
            )
            figures[f"{interp} — {method_label(adv)}"] = png
    finally:
        store.close()
    config = load_yaml_file(os.path.join(out, "config.yaml"))
    write_report(
        output_path(out, "report.html"),
        "doublecross: ADV² against interpreters",
        table,
        rows,
        figures,
        config,
        manifest,
    )
    return table, rows
