"""Which units of a run are missing: the report's "incomplete run" warning."""

from __future__ import annotations

import html
import math
from typing import Any


def expected_units(config: dict[str, Any], images: int) -> set[tuple[int, str]]:
    """Every ``(batch, unit)`` a finished run over ``images`` images holds (baseline + ADV² per interpreter)."""
    from ..threats import THREATS

    units = set()
    for b in range(math.ceil(images / max(1, int(config.get("batch_size", 8))))):
        for tname in config.get("threats", ["linf"]):
            threat = THREATS.create(tname)
            units.add((b, threat.baseline))
            units.update((b, f"{threat.adv2_name}-{i}") for i in config.get("interpreters", []))
    return units


def missing_units(
    config: dict[str, Any], manifest: dict[str, Any], done: set[tuple[int, str]]
) -> tuple[list[tuple[int, str]], int, bool]:
    """``(missing units, expected count, finished)``: ``finished`` is whether the run wrote its manifest.

    Without a manifest the number of attacked images is unknown; ``limit`` from the config is used
    (the attack set holds at most that many).
    """
    finished = "images" in manifest
    images = int(manifest["images"]) if finished else int(config.get("limit", 0))
    expected = expected_units(config, images)
    return sorted(expected - done), len(expected), finished


def incomplete_html(config: dict[str, Any], manifest: dict[str, Any], done: set[tuple[int, str]], out: str) -> str:
    """A warning paragraph when units are missing or the run never finished, else ``""``."""
    missing, expected, finished = missing_units(config, manifest, done)
    if not missing and finished:
        return ""
    lines = []
    if not finished:
        lines.append("the run did not finish (no manifest.json)")
    if missing:
        shown = ", ".join(f"batch {b} {u}" for b, u in missing[:12])
        more = f" and {len(missing) - 12} more" if len(missing) > 12 else ""
        lines.append(f"{len(missing)} of {expected} units are missing: {shown}{more}")
    hint = f"doublecross attack --resume --out {out} (with the run's other options)"
    return (
        "<div class='warn'><b>Incomplete run:</b> "
        + html.escape("; ".join(lines))
        + f". The figures below cover only the finished units. Continue it with <code>{html.escape(hint)}</code>.</div>"
    )
