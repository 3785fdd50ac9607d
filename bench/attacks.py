"""Attack step costs, measured side by side in one run on the same model and batch.

Each step cost is differential: (time of an attack with 2k stage-2 steps - time with k) / k, so
set-up and final evaluation cancel; medians over repeats. Prints the ratios the issue asks for:

    our PGD step / torchattacks PGD step          ADV²-CAM step / PGD step
    ADV²-StAdv-X step / StAdv step, X in CAM, GRAD, RTS, MASK (no target in the issue)
    ADV²-GRAD step / bare double-backprop step    ADV²-RTS step / PGD step
    ADV²-MASK iteration / PGD step, resets included, at the paper's counts and the preset's, for the
        spec's algorithm, the bracketed step search + warm resets and the ``paper-fast`` cost preset
        (``attacks/mask_cost.py``), from interleaved rounds (``bench/_mask_cost.py``)
    per-image cost at batch 16 / batch 1 (ADV²-CAM)
    whole-unit efficiency: attack-loop passes / all classifier passes of one main-job adv2-mask unit
        (counted with a forward hook: load-independent; --no-unit skips it, it runs a full unit)
    peak memory of the GRAD attack, ResNet-50 224² batch 8 (random weights, --resnet50)
    wall time of the main job (--main-job)

Rows print as they are measured. The MASK rows time the loop with resets off and a 5-step MASK
for the start-up and final evaluations (they cancel in the differential) and add the reset cost
per iteration from the inner step measured in the same round: every full run (S inner steps + 1
forward: start-up, final, resets, re-check) and warm reset (reset_steps + 1) over n_total.
``--repeats`` is the number of interleaved rounds there; ``--only-mask`` prints only those rows
and the whole-unit figure.

    python bench/attacks.py [--batch 16] [--k 10] [--repeats 3] [--resnet50] [--main-job] [--no-unit] [--only-mask]
    python bench/attacks.py --interpreters gradcam,gradcam++,input-x-grad,smoothgrad,ig   (only ADV²-X / PGD)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import _timing
import torch
import torch.nn.functional as F
from _mask_cost import mask_rows
from _timing import median_time

from doublecross.attacks import ATTACKS, AttackConfig
from doublecross.attacks.config import COST_PRESETS
from doublecross.attacks.presets import interpreter_defaults, load_attack_preset
from doublecross.interpreters import create_interpreter
from doublecross.models import create_model, smooth_relu
from doublecross.threats import THREATS


def _per_step(run, k: int, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """Differential cost of one step: (time of ``run(2k)`` - time of ``run(k)``) / k, medians, no warm-up."""
    return (median_time(lambda: run(2 * k), repeats, False) - median_time(lambda: run(k), repeats, False)) / k


def step_cost(model, interp, x, t, m_t, kind: str, k: int, repeats: int, threat="linf", **cfg) -> float:  # type: ignore[no-untyped-def]
    th = THREATS.create(threat)

    def run(n: int) -> None:
        c = AttackConfig(n_warm=0, n_total=n, **cfg)
        attack = ATTACKS.create(kind, threat=th, config=c)
        attack(model, x, t, interp, m_t) if interp is not None else attack(model, x, t)

    return _per_step(run, k, repeats)


def torchattacks_step(model, x, t, k: int, repeats: int) -> float:  # type: ignore[no-untyped-def]
    import torchattacks

    def run(n: int) -> None:
        a = torchattacks.PGD(model, eps=0.031, alpha=1 / 255, steps=n, random_start=False)
        a.set_mode_targeted_by_label(quiet=True)
        a(x, t)

    return _per_step(run, k, repeats)


def bare_double_backprop(model, x, t, k: int, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """The reference GRAD step: surrogate forward, create-graph gradient, backward of a loss on it."""

    def one() -> None:
        xi = x.clone().requires_grad_(True)
        with smooth_relu():
            z = model(xi)
            (g,) = torch.autograd.grad(F.cross_entropy(z, t, reduction="sum"), xi, create_graph=True)
            loss = F.cross_entropy(z, t) + g.abs().mean()
            loss.backward()

    def run(n: int) -> None:
        for _ in range(n):
            one()

    return _per_step(run, k, repeats)


RESNET50_PEAK = """
import resource, torch
from doublecross.models import Classifier
from doublecross.interpreters import create_interpreter
from doublecross.attacks import ATTACKS, AttackConfig
from doublecross.attacks.config import COST_PRESETS
from doublecross.attacks.presets import interpreter_defaults
from doublecross.threats import THREATS
import torchvision
torch.manual_seed(0)
m = Classifier(torchvision.models.resnet50())
g = create_interpreter("grad", m)
x = torch.rand(8, 3, 224, 224)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ATTACKS.create("adv2", threat=THREATS.create("linf"), config=AttackConfig(n_warm=0, n_total=1, lam=1.0,
               check_every=100))(m, x, 1, g, torch.zeros(8, 1, 56, 56))
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _adv2_over_pgd(model, x, t, names: list[str], opts: dict, k: int, r: int) -> None:  # type: ignore[no-untyped-def]
    """ADV²-X step / PGD step for interpreters with ``attack_kind == "adv2"`` (L∞, λ = 1, checks every 10)."""
    print(f"batch {len(x)}, threads {torch.get_num_threads()}, k={k}, median of {r}", flush=True)
    pgd = step_cost(model, None, x, t, None, "pgd", k, r)
    print(f"{'ratio':<40} {'measured':>9}", flush=True)
    for name in names:
        interp = create_interpreter(name, model, **opts.get(name, {}))
        m_t = interp.explain(x, t).map
        cost = step_cost(model, interp, x, t, m_t, interp.attack_kind, k, r, lam=1.0, check_every=10)
        print(f"{'ADV²-' + name + ' step / PGD step':<40} {cost / pgd:>9.2f}", flush=True)
    print(f"(PGD step {pgd * 1e3:.1f} ms at batch {len(x)})", flush=True)


W = 88


def _row(name: str, val: float, target: float | None, op: str = "<=") -> None:
    print(f"{name:<{W}} {val:>9.2f} {(op + ' ' + str(target)) if target is not None else '':>8}", flush=True)


def _mask_block(a, model, short_mask, x, t, m_t, preset_steps: int) -> None:  # type: ignore[no-untyped-def]
    scene = load_attack_preset(a.model).for_threat("linf").for_interpreter("mask")
    print(
        f"ADV²-MASK iteration / PGD step, resets included (bench/_mask_cost.py: {a.repeats} interleaved rounds, "
        f"load {os.getloadavg()[0]:.1f}):",
        flush=True,
    )
    fast = COST_PRESETS["paper-fast"]
    print(f"  paper-fast = {fast}; clock: {a.clock}", flush=True)
    mask_rows(model, short_mask, x, t, m_t, scene, a.k, a.repeats, a.mask_steps, preset_steps, fast, step_cost, _row)


def _unit_row(a) -> None:  # type: ignore[no-untyped-def]
    if a.no_unit:
        return
    from _passes import unit_passes

    u = unit_passes("mask")
    _row("whole unit: attack-loop passes / all passes (main job's first adv2-mask unit)", u["efficiency"], 0.9, ">=")
    print(f"    {u['attack_loop']:.0f} of {u['unit']:.0f} batch passes (counted with a forward hook)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="scenes-resnet")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--mask-steps", type=int, default=300, help="MASK steps of a full run at the paper's counts")
    p.add_argument("--resnet50", action="store_true", help="also measure peak memory of GRAD on ResNet-50 224²")
    p.add_argument("--main-job", action="store_true", help="also time `doublecross attack` (the main job)")
    p.add_argument("--no-unit", action="store_true", help="skip the whole-unit pass count (one main-job MASK unit)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall time or this process's CPU time")
    p.add_argument("--only-mask", action="store_true", help="only the PGD reference and the ADV²-MASK rows")
    p.add_argument("--interpreters", help="only ADV²-X step / PGD step for these (comma-separated, preset options)")
    a = p.parse_args()
    if a.clock == "cpu":
        _timing.CLOCK = time.process_time
    torch.manual_seed(0)
    model = create_model(a.model)
    x = torch.round(torch.rand(a.batch, 3, 64, 64) * 255) / 255
    t = torch.randint(0, model.num_classes, (a.batch,))
    k, r = a.k, a.repeats
    opts = interpreter_defaults(a.model)  # the calibrated preset's settings (MASK noise and steps)
    if a.interpreters:
        _adv2_over_pgd(model, x, t, a.interpreters.split(","), opts, k, r)
        return
    interps = {n: create_interpreter(n, model, **opts.get(n, {})) for n in ("cam", "grad", "rts")}
    maps = {n: i.explain(x, t).map for n, i in interps.items()}
    mask = create_interpreter("mask", model, **opts.get("mask", {}))
    maps["mask"] = torch.full((a.batch, 1, 8, 8), 0.5)
    # the stage-2 rows: evaluation runs (start-up, final) cancel in the differential, so a short run will do
    short_mask = create_interpreter("mask", model, **{**opts.get("mask", {}), "steps": 5})
    interps["mask"] = short_mask
    print(f"model {a.model}, batch {a.batch}, threads {torch.get_num_threads()}, k={k}, median of {r}", flush=True)
    print(f"{'ratio':<{W}} {'measured':>9} {'target':>8}", flush=True)
    if a.only_mask:
        _mask_block(a, model, short_mask, x, t, maps["mask"], mask.steps)
        _unit_row(a)
        return
    pgd = step_cost(model, None, x, t, None, "pgd", k, r)
    _row("our PGD step / torchattacks PGD step", pgd / torchattacks_step(model, x, t, k, r), 1.0)
    _row(
        "ADV²-CAM step / PGD step",
        step_cost(model, interps["cam"], x, t, maps["cam"], "adv2", k, r, lam=1.0) / pgd,
        1.1,
    )
    _row(
        "ADV²-GRAD step / bare double-backprop step",
        step_cost(model, interps["grad"], x, t, maps["grad"], "adv2", k, r, lam=1.0, check_every=10)
        / bare_double_backprop(model, x, t, k, r),
        1.1,
    )
    _row(
        "ADV²-RTS step / PGD step",
        step_cost(model, interps["rts"], x, t, maps["rts"], "adv2", k, r, lam=1.0, extra={"encoder": 0.1}) / pgd,
        2.3,
    )
    _mask_block(a, model, short_mask, x, t, maps["mask"], mask.steps)
    st = step_cost(model, None, x, t, None, "pgd", k, r, threat="stadv")
    stadv_cfg = {
        "cam": ("adv2", {"lam": 1.0}),
        "grad": ("adv2", {"lam": 1.0, "check_every": 10}),
        "rts": ("adv2", {"lam": 1.0, "extra": {"encoder": 0.1}}),
        "mask": ("adv2-bilevel", {"outer": "joint", "lam": 1.0, "n_reset": 10**6}),
    }
    for name, (kind, cfg) in stadv_cfg.items():
        kk = max(2, k // 5) if name == "mask" else k
        cost = step_cost(model, interps[name], x, t, maps[name], kind, kk, 1 if name == "mask" else r, "stadv", **cfg)
        _row(f"ADV²-StAdv-{name.upper()} step / StAdv step (no resets)", cost / st, None)
    cam1 = step_cost(model, interps["cam"], x[:1], t[:1], maps["cam"][:1], "adv2", k, r, lam=1.0)
    cam16 = step_cost(model, interps["cam"], x, t, maps["cam"], "adv2", k, r, lam=1.0)
    _row(f"per-image ADV²-CAM cost, batch {a.batch} / batch 1", cam16 / a.batch / cam1, 0.5)
    print(f"(PGD step {pgd * 1e3:.1f} ms, StAdv step {st * 1e3:.1f} ms at batch {a.batch})", flush=True)
    _unit_row(a)
    if a.resnet50:
        out = subprocess.run([sys.executable, "-c", RESNET50_PEAK], capture_output=True, text=True, check=True).stdout
        before, after = (int(v) for v in out.split())
        print(
            f"peak RSS of one ADV²-GRAD step, ResNet-50 224² batch 8: {after / 2**20:.2f} GB "
            f"(process before the attack: {before / 2**20:.2f} GB; target <= 3.5 GB)",
            flush=True,
        )
    if a.main_job:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            subprocess.run(["doublecross", "attack", "--out", f"{d}/run", "--quiet"], check=True, capture_output=True)
            print(f"main job wall time: {(time.perf_counter() - t0) / 60:.2f} min (target <= 5 min)", flush=True)


if __name__ == "__main__":
    main()
