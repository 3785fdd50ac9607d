"""Summaries of stored runs for the reproduction: statistics per (interpreter, method).

Methods are the stored ones (``pgd``, ``adv2``, ``stadv``, ``adv2-stadv``). For runs whose target
map is not the benign map, a pseudo-method ``benign-ref`` holds the reference distance
d(g(x°; y), m_t) per interpreter, over the ADV² run's successful inputs (spec §8: "the distance
from m_t to the benign map").
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from ..metrics import map_metrics
from ..report.tables import summarise
from .store import ResultStore

Summary = dict[tuple[str, str], dict[str, Any]]


def run_methods(run: str) -> tuple[str, str]:
    """(baseline method, ADV² method) of a single-threat run directory (by its name before it exists)."""
    if not os.path.isfile(os.path.join(run, "config.yaml")):
        return ("stadv", "adv2-stadv") if "stadv" in os.path.basename(run) else ("pgd", "adv2")
    with open(os.path.join(run, "config.yaml")) as fh:
        threats = yaml.safe_load(fh).get("threats", ["linf"])
    return ("stadv", "adv2-stadv") if threats[0] == "stadv" else ("pgd", "adv2")


def run_samples(run: str) -> list[dict[str, Any]]:
    store = ResultStore(os.path.join(run, "results.sqlite"))
    try:
        return list(store.samples())
    finally:
        store.close()


def load_summary(run: str) -> Summary:
    """(interpreter, method) -> summary row (n, successes, success_rate, confidence, l1, l2, iou, iou<k>, ...).

    A run that has not started gives an empty summary (its tables show dashes, its claims UNCLEAR).
    """
    if not os.path.isfile(os.path.join(run, "results.sqlite")):
        return {}
    samples = run_samples(run)
    out: Summary = {(r["interpreter"], r["method"]): r for r in summarise(samples)}
    with open(os.path.join(run, "config.yaml")) as fh:
        mode = yaml.safe_load(fh).get("target_map", "benign")
    if mode == "benign":
        return out
    _, adv = run_methods(run)
    store = ResultStore(os.path.join(run, "results.sqlite"))
    try:
        ref_samples = []
        for batch, unit in store.db.execute("SELECT batch, unit FROM units ORDER BY batch"):
            rows = sorted(
                (s for s in samples if s["batch"] == batch and s["unit"] == unit and s["method"] == adv),
                key=lambda s: s["idx"],
            )
            if not rows:
                continue
            mets = map_metrics(store.array(batch, unit, "benign_map"), store.array(batch, unit, "target_map"))
            for i, s in enumerate(rows):
                ref_samples.append(
                    {
                        "interpreter": s["interpreter"],
                        "method": "benign-ref",
                        "success": s["success"],
                        **{k: float(v[i]) for k, v in mets.items()},
                    }
                )
    finally:
        store.close()
    out.update({(r["interpreter"], r["method"]): r for r in summarise(ref_samples)})
    return out


def run_progress(run: str, job: Any) -> tuple[int, int]:
    """(finished units, expected units) of a run: batches × threats × (baseline + one ADV² unit per interpreter).

    The batches come from the run's manifest once it finished (a dataset may hold fewer correctly
    classified images than ``limit``), else from ``job.limit``.
    """
    import json

    images = job.limit
    if os.path.isfile(os.path.join(run, "manifest.json")):
        with open(os.path.join(run, "manifest.json")) as fh:
            images = int(json.load(fh).get("images", images))
    expected = -(-images // job.batch_size) * len(job.threats) * (1 + len(job.interpreters))
    if not os.path.isfile(os.path.join(run, "results.sqlite")):
        return 0, expected
    store = ResultStore(os.path.join(run, "results.sqlite"))
    try:
        return int(store.db.execute("SELECT COUNT(*) FROM units").fetchone()[0]), expected
    finally:
        store.close()
