"""ADV²-MASK iteration cost in PGD steps, resets included, from interleaved rounds (issue 15, item 4).

Each round times, in this order and in the same process: a PGD step, MASK's inner step and one
classifier forward, every configuration's loop (resets off, start-up/final evaluations cancel in the
differential: (time of 2k iterations - time of k) / k), and a PGD step again. Per configuration and
round, the cost of one iteration is

    loop + resets,   resets = (full · (S·inner + fwd) + warm · (K·inner + fwd)) / n_total

where a full MASK run costs S inner steps plus the logits' forward, and, over the n_total iterations,
``full`` counts the start-up and final evaluations, every reset inside the loop for the spec's full
resets, and the final re-check (``attacks/mask_cost.py``) for warm resets of K steps (``warm`` = the
resets inside the loop). The ratio to the round's PGD step (mean of the two timings around it) is
printed per round as it is measured; the rows give the medians over rounds.
"""

from __future__ import annotations

import statistics
from typing import Any

import _timing
import torch

#: The paper's counts (spec §4.7): n_total 1000, n_step 4, n_plain 4, n_bs 12, resets every 50 of 300 steps.
PAPER = {"n_total": 1000, "n_step": 4, "n_plain": 4, "n_bs": 12, "n_reset": 50}


def configurations(scene: Any, paper_steps: int, preset_steps: int, fast: dict) -> list[tuple[str, dict, int]]:
    """(label, attack config fields, S) per row: spec algorithm / cost options at paper and preset counts."""
    preset = {f: getattr(scene, f) for f in ("n_total", "n_step", "n_plain", "n_bs", "n_reset")}
    bracket_warm = {"bisection": "bracket", "reset_steps": 20}
    rows = []
    for counts_label, counts, s in (("paper", PAPER, paper_steps), ("preset", preset, preset_steps)):
        rows.append((f"{counts_label}, spec algorithm", dict(counts), s))
        rows.append((f"{counts_label}, bracket + warm resets 20", {**counts, **bracket_warm}, s))
        rows.append((f"{counts_label}, cost preset paper-fast", {**counts, **fast}, s))
    return rows


def reset_cost(cfg: dict, s_full: int, inner: float, fwd: float) -> float:
    """Seconds of reset work per iteration, amortised over n_total (module docstring)."""
    n_total, n_reset = cfg["n_total"], cfg["n_reset"]
    inside = len([i for i in range(1, n_total) if i % n_reset == 0])
    k = cfg.get("reset_steps")
    full = 2 + (inside if k is None else 1)
    warm = 0 if k is None else inside
    return (full * (s_full * inner + fwd) + warm * ((k or 0) * inner + fwd)) / n_total


def _time(fn) -> float:  # type: ignore[no-untyped-def]
    t = _timing.CLOCK()
    fn()
    return _timing.CLOCK() - t


def mask_rows(
    model, short_mask, x, t, m_t, scene, k: int, rounds: int, paper_steps: int, preset_steps: int, fast: dict,
    step_cost, row,
) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """Print the per-round ratios, then one row per configuration (median over rounds, target ≤ 15)."""
    rows = configurations(scene, paper_steps, preset_steps, fast)
    common = {"alpha_max": scene.alpha_max, "kappa_bs": scene.kappa_bs, "beta": scene.beta}
    ratios: dict[str, list[float]] = {label: [] for label, _, _ in rows}
    parts: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in rows}
    keep = short_mask.steps
    for rnd in range(rounds):
        pgd_a = step_cost(model, None, x, t, None, "pgd", k, 1)
        short_mask.steps = 10
        a = _time(lambda: short_mask.explain(x, t))
        short_mask.steps = 20
        b = _time(lambda: short_mask.explain(x, t))
        short_mask.steps = keep
        inner = max(b - a, 1e-9) / 10
        with torch.no_grad():
            fwd = statistics.median(_time(lambda: model(x)) for _ in range(3))
        loops = {}
        for label, cfg, _ in rows:
            loop_cfg = {**cfg, **common, "n_reset": 10**6}
            loop_cfg.pop("n_total")
            loops[label] = step_cost(model, short_mask, x, t, m_t, "adv2-bilevel", 2, 1, **loop_cfg)
        pgd = (pgd_a + step_cost(model, None, x, t, None, "pgd", k, 1)) / 2
        line = []
        for label, cfg, s in rows:
            reset = reset_cost(cfg, s, inner, fwd)
            ratios[label].append((loops[label] + reset) / pgd)
            parts[label].append((loops[label] / pgd, reset / pgd))
            line.append(f"{ratios[label][-1]:.1f}")
        print(
            f"  round {rnd + 1}: PGD step {pgd * 1e3:.0f} ms, inner step {inner / pgd:.2f}, forward {fwd / pgd:.2f} "
            f"PGD steps; MASK it./PGD: {' / '.join(line)}",
            flush=True,
        )
    for label, _, s in rows:
        loop = statistics.median(p[0] for p in parts[label])
        reset = statistics.median(p[1] for p in parts[label])
        row(f"ADV²-MASK it./PGD step, resets incl., {label} [S {s}]", statistics.median(ratios[label]), 15.0)
        print(f"    loop {loop:.2f} + resets {reset:.2f} PGD steps (medians of {rounds} rounds)", flush=True)
