"""λ sweep behind the calibrated presets of the embedded scene models (spec §6: recalibrate λ).

For each interpreter and each value in the sweep, run ADV² with the preset's counts (under the
chosen threat) on N correctly classified test images drawn as the runner draws them (class-balanced
and seeded by default, ``--selection first``: the first N; targets seeded by the same ``--seed``,
benign target maps) and print success rate and mean L1 / IoU to the benign map over successful
samples whose attacked map is not degenerate (as the report counts them; ``const``: how many
attacked maps are constant), beside the threat's baseline (PGD / regular StAdv) on the same images,
and the L1 ratio to it. The preset takes the value with the smallest L1 among those keeping success
≥ 95 %. ``--seed S`` reproduces ``doublecross attack --seed S`` on the same images and targets.

    python bench/calibrate.py --preset scenes-resnet --interpreter cam --lams 1,3,10,30 [--limit 16]
    python bench/calibrate.py --threat stadv --interpreter grad --field n_total --lams 200,400
    python bench/calibrate.py --threat stadv --interpreter mask --lams 5e4,1e5 --selection first --seed 1
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
import yaml

from doublecross.attacks import ATTACKS, AttackConfig
from doublecross.attacks.presets import load_attack_preset
from doublecross.data.targets import random_target_classes
from doublecross.experiments.job import JobConfig
from doublecross.experiments.runner import attack_set
from doublecross.interpreters import create_interpreter
from doublecross.metrics import iou_sweep, l1_distance
from doublecross.metrics.maps import is_degenerate
from doublecross.models import create_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="scenes-resnet")
    p.add_argument("--interpreter", required=True)
    p.add_argument("--lams", required=True, help="comma-separated values of --field")
    p.add_argument("--field", help="AttackConfig field to sweep (default lam; MASK under L∞: kappa_bs)")
    p.add_argument("--threat", default="linf", help="linf or stadv")
    p.add_argument("--set", action="append", default=[], help="override a config field, e.g. n_total=600")
    p.add_argument("--limit", type=int, default=16)
    p.add_argument("--seed", type=int, default=0, help="draw, targets and attack seed (as the runner's --seed)")
    p.add_argument("--selection", default="balanced", help="balanced (the runner's default) or first")
    a = p.parse_args()
    preset = load_attack_preset(a.preset)
    model = create_model(preset.model)
    job = JobConfig(model=preset.model, limit=a.limit, preset=a.preset, seed=a.seed, selection=a.selection)
    x, y, _, _ = attack_set(job, model)
    t = random_target_classes(y, model.num_classes, torch.Generator().manual_seed(a.seed))
    interp = create_interpreter(a.interpreter, model, **preset.interpreter_options.get(a.interpreter, {}))
    m_t = interp.explain(x, y).map
    settings = preset.for_threat(a.threat)
    base = settings.for_interpreter(a.interpreter)
    if a.set:
        overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in a.set)}
        base = AttackConfig.from_dict({**dataclasses.asdict(base), **overrides}, source="--set")
    field = a.field or ("kappa_bs" if base.outer == "bisect" and interp.attack_kind == "adv2-bilevel" else "lam")
    t0 = time.time()
    ref = ATTACKS.create("pgd", threat=settings.create_threat(), config=settings.baseline)(model, x, t)
    ref_ev = interp.explain(ref.x_adv, t)
    ref_ok = ref_ev.logits.argmax(1) == t  # the runner re-evaluates the baseline's image with the interpreter
    print(
        f"{a.preset} / {a.threat} / {a.interpreter}: {len(x)} images ({a.selection}, seed {a.seed}), sweeping {field}"
    )
    ref_l1 = _report(f"baseline {settings.threat}", ref_ok, ref_ev.map, m_t, t0)
    for v in (float(s) for s in a.lams.split(",")):
        cfg = dataclasses.replace(base, **{field: int(v) if isinstance(getattr(base, field), int) else v})
        t0 = time.time()
        res = ATTACKS.create(interp.attack_kind, threat=settings.create_threat(cfg), config=cfg, seed=a.seed)(
            model, x, t, interp, m_t
        )
        _report(f"{field}={v:<8g}", res.success, res.map, m_t, t0, ref_l1)


def _report(
    name: str, ok: torch.Tensor, amap: torch.Tensor, m_t: torch.Tensor, t0: float, ref_l1: float | None = None
) -> float:
    """Print success, L1 / IoU over successful samples with non-degenerate maps (as the report), L1 ratio."""
    deg = is_degenerate(amap).cpu() | is_degenerate(m_t).cpu()
    ok = ok.cpu()
    use = ok & ~deg
    l1 = float(l1_distance(amap, m_t).cpu()[use].mean()) if use.any() else float("nan")
    iou = float(iou_sweep(amap, m_t).mean(1).cpu()[use].mean()) if use.any() else float("nan")
    ratio = f"  ratio {l1 / ref_l1:.2f}" if ref_l1 else ""
    print(
        f"{name:<18} success {int(ok.sum())}/{len(ok)}  const {int(is_degenerate(amap).sum())}  L1 {l1:.4f}"
        f"  IoU {iou:.3f}{ratio}  ({time.time() - t0:.0f} s)",
        flush=True,
    )
    return l1


if __name__ == "__main__":
    main()
