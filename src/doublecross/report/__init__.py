"""Reports derived from a run directory: summary.csv, the printed table, PNG grids, report.html."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from ..experiments.store import ResultStore
from ..safe_yaml import load_yaml_file
from .completeness import incomplete_html
from .degenerate import degenerate_html, degenerate_report
from .grids import draw_unit_grids, grid_units
from .html import write_report
from .per_image import class_name, per_image_html
from .safe_paths import output_path
from .settings import settings_html
from .tables import format_table, method_label, summarise, write_csv

log = logging.getLogger(__name__)

_grid_units = grid_units  # the former private name


def run_class_names(config: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """Class names of a run: the manifest's, else the model's (a run killed before its manifest), else none."""
    if manifest.get("classes"):
        return list(manifest["classes"])
    try:
        from ..models.zoo import create_model

        model = create_model(config["model"], weights=config.get("weights"))
        return list(model.classes or [])
    except Exception as e:  # noqa: BLE001 -- the report still renders, with class numbers
        log.warning("report: no class names (%s)", e)
        return []


def build_report(out: str, class_names: list[str] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(Re)generate summary.csv, grid_<interp>[_<threat>][-p<k>].png and report.html from ``out``; return the table."""
    manifest: dict[str, Any] = {}
    if os.path.isfile(os.path.join(out, "manifest.json")):
        with open(os.path.join(out, "manifest.json")) as fh:
            manifest = json.load(fh)
    if not os.path.isfile(os.path.join(out, "results.sqlite")):
        raise FileNotFoundError(f"{out} is not a run directory (no results.sqlite)")
    config = load_yaml_file(os.path.join(out, "config.yaml"))
    names = list(class_names or run_class_names(config, manifest))

    def cap(pred: int, conf: float | None) -> str:
        return f"{class_name(names, pred)} ({'true' if conf is None else f'{conf:.2f}'})"

    store = ResultStore(os.path.join(out, "results.sqlite"))
    try:
        samples = list(store.samples())
        rows = summarise(samples)
        for warning in degenerate_report(rows)[1]:
            log.warning("%s: %s", out, warning.removeprefix("WARNING: "))
        write_csv(rows, output_path(out, "summary.csv"))
        table = format_table(rows)
        figures: dict[str, list[str]] = {}
        drawn: dict[str, int] = {}
        for key, png in grid_units(samples, out).items():
            interp, _, adv, _ = key
            pages, n = draw_unit_grids(store, samples, key, png, cap)
            if pages:
                figures[f"{interp.upper()} — {method_label(adv)}"] = pages
                drawn[f"{interp.upper()} — {method_label(adv)}"] = n
        done = store.finished_units()
    finally:
        store.close()
    n_images = len({s["idx"] for s in samples})
    lead_sections = [("Hyper-parameters", settings_html(config, manifest))]
    if degenerate_html(rows):
        lead_sections.insert(0, ("Degenerate maps", degenerate_html(rows)))
    sections = [("Per image", per_image_html(samples, names))]
    note = ""
    if any(n < n_images for n in drawn.values()):
        shown = min(drawn.values())
        note = f"<p>The grids draw the first {shown} of {n_images} images; the per-image table has all.</p>"
    write_report(
        output_path(out, "report.html"),
        "doublecross: ADV² against interpreters",
        table,
        rows,
        figures,
        config,
        manifest,
        sections=sections,
        lead_sections=lead_sections,
        warning=incomplete_html(config, manifest, done, out),
        figures_note=note,
    )
    return table, rows
