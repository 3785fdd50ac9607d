"""Classifier passes of one ADV² unit of the main job, split into attack-loop passes and the rest.

Works on any checkout whose runner has ``_baseline_unit`` / ``_adv2_unit`` (so before/after
comparisons can run the same script with another PYTHONPATH). The classifier's forward hook counts
images; passes = images / batch size (spec §11's unit F).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch

from doublecross.attacks import ATTACKS
from doublecross.attacks.presets import load_attack_preset
from doublecross.data.targets import random_target_classes
from doublecross.experiments import runner
from doublecross.experiments.job import JobConfig
from doublecross.experiments.store import ResultStore
from doublecross.interpreters import create_interpreter
from doublecross.models.zoo import create_model


def _hook_counter(model: torch.nn.Module, box: dict[str, int]):  # type: ignore[no-untyped-def]
    def hook(_m, args, _o):  # type: ignore[no-untyped-def]
        box["images"] += int(args[0].shape[0])

    return model.register_forward_hook(hook)


def unit_passes(interpreter: str = "mask", threat: str = "linf", **job: Any) -> dict[str, float]:
    """Passes of the first batch's ``adv2-<interpreter>`` unit: ``{"unit", "attack_loop", "efficiency"}``.

    ``attack_loop`` counts the passes inside ``Attack.run`` (warm start, stage 2, resets and
    selection checks); ``unit`` everything the runner does for the unit (benign and target maps,
    the attack, its final evaluation, the baseline's map). efficiency = attack_loop / unit.
    """
    cfg = JobConfig.from_dict({"interpreters": (interpreter,), "threats": (threat,), **job})
    torch.manual_seed(cfg.seed)
    preset = load_attack_preset(cfg.preset)
    model = create_model(cfg.model, weights=cfg.weights)
    x_all, y_all, m_all, _ = runner.attack_set(cfg, model)
    gen = torch.Generator().manual_seed(cfg.seed)
    t_all = random_target_classes(y_all, model.num_classes, gen)
    interp = create_interpreter(interpreter, model, **preset.interpreter_options.get(interpreter, {}))
    sl = slice(0, cfg.batch_size)
    x, y, t = x_all[sl], y_all[sl], t_all[sl]
    masks = m_all[sl] if m_all is not None else None
    settings = preset.for_threat(threat)
    acfg = settings.for_interpreter(interpreter)
    th = settings.create_threat()
    box = {"images": 0}
    loop = {"images": 0}
    real_create = ATTACKS.create

    def create(name, **kw):  # type: ignore[no-untyped-def]
        attack = real_create(name, **kw)
        run = attack.run

        def counted(*a, **k):  # type: ignore[no-untyped-def]
            before = box["images"]
            try:
                return run(*a, **k)
            finally:
                loop["images"] += box["images"] - before

        attack.run = counted
        return attack

    with tempfile.TemporaryDirectory() as d:
        store = ResultStore(os.path.join(d, "r.sqlite"))
        try:
            runner._baseline_unit(store, 0, model, th, settings.baseline, x, y, t, cfg)
            handle = _hook_counter(model, box)
            ATTACKS.create = create  # type: ignore[method-assign]
            try:
                runner._adv2_unit(
                    store,
                    0,
                    f"{th.adv2_name}-{interpreter}",
                    model,
                    interp,
                    settings.create_threat(acfg),
                    acfg,
                    x,
                    y,
                    t,
                    masks,
                    (x_all, y_all),
                    cfg,
                    torch.Generator().manual_seed(cfg.seed * 1000),
                )
            finally:
                ATTACKS.create = real_create  # type: ignore[method-assign]
                handle.remove()
        finally:
            store.close()
    b = len(x)
    unit, attack_loop = box["images"] / b, loop["images"] / b
    return {"unit": unit, "attack_loop": attack_loop, "efficiency": attack_loop / unit}
