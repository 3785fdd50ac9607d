"""λ sweep behind the calibrated presets of the embedded scene models (spec §6: recalibrate λ).

For each interpreter and each λ in the sweep, run ADV² with the preset's counts on the first N
correctly classified test images (seeded random targets, benign target maps) and print success
rate and mean L1 / IoU to the benign map over successful samples. The preset takes the λ with
the smallest L1 among those keeping success ≥ 95 %.

    python bench/calibrate.py --preset scenes-resnet --interpreter cam --lams 1,3,10,30 [--limit 16]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from doublecross.attacks import ATTACKS
from doublecross.attacks.presets import load_attack_preset
from doublecross.data.targets import random_target_classes
from doublecross.experiments.job import JobConfig
from doublecross.experiments.runner import attack_set
from doublecross.interpreters import create_interpreter
from doublecross.metrics import iou_sweep, l1_distance
from doublecross.models import create_model
from doublecross.threats import THREATS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="scenes-resnet")
    p.add_argument("--interpreter", required=True)
    p.add_argument("--lams", required=True, help="comma-separated λ values (MASK: kappa_bs values)")
    p.add_argument("--limit", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    preset = load_attack_preset(a.preset)
    model = create_model(preset.model)
    x, y, _, _ = attack_set(JobConfig(model=preset.model, limit=a.limit, preset=a.preset), model)
    t = random_target_classes(y, model.num_classes, torch.Generator().manual_seed(a.seed))
    interp = create_interpreter(a.interpreter, model, **preset.interpreter_options.get(a.interpreter, {}))
    m_t = interp.explain(x, y).map
    base = preset.for_interpreter(a.interpreter)
    field = "kappa_bs" if interp.attack_kind == "adv2-bilevel" else "lam"
    print(f"{a.preset} / {a.interpreter}: {len(x)} images, sweeping {field}")
    for v in (float(s) for s in a.lams.split(",")):
        cfg = dataclasses.replace(base, **{field: v})
        t0 = time.time()
        res = ATTACKS.create(interp.attack_kind, threat=THREATS.create("linf", **preset.threat), config=cfg)(
            model, x, t, interp, m_t
        )
        ok = res.success
        l1 = float(l1_distance(res.map, m_t)[ok].mean()) if ok.any() else float("nan")
        iou = float(iou_sweep(res.map, m_t).mean(1)[ok].mean()) if ok.any() else float("nan")
        print(
            f"{field}={v:<8g} success {float(ok.float().mean()):.3f}  L1 {l1:.4f}  IoU {iou:.3f}  "
            f"({time.time() - t0:.0f} s)"
        )


if __name__ == "__main__":
    main()
