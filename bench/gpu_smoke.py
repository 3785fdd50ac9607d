"""GPU smoke test: one ResNet-50 224² ADV² unit per interpreter (random weights) on CUDA.

Per interpreter: the benign map (m_t), an ADV² attack at a few steps of the paper's kind (MASK:
n_step 4, n_plain 4, n_bs 12, resets every 2 iterations), its per-step time (differential:
attack with 2k stage-2 steps minus k, so set-up and evaluation cancel), the peak GPU memory of
the unit, and a check that every returned tensor lives on the model's device; then a two-image
``run_job`` on CUDA with the embedded scenes model (result store on the CPU). Exits 0 with a
``SKIP`` line where CUDA is not available.

    bash bench/gpu_smoke.sh [--batch 8] [--k 4] [--interpreters grad,cam,rts,mask]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--k", type=int, default=4, help="stage-2 steps of the short attack (the long one has 2k)")
    p.add_argument("--interpreters", default="grad,cam,rts,mask")
    p.add_argument("--device", default="cuda", help="cuda (default); cpu only to check this script's logic")
    a = p.parse_args()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("SKIP: CUDA is not available (torch.cuda.is_available() is False); nothing to measure")
        return 0
    import torchvision

    from doublecross.attacks import ATTACKS, AttackConfig
    from doublecross.experiments.job import JobConfig
    from doublecross.experiments.runner import run_job
    from doublecross.interpreters import create_interpreter
    from doublecross.interpreters.rts import RtsInterpreter, build_rts_net
    from doublecross.models import Classifier
    from doublecross.threats import THREATS

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    torch.manual_seed(0)
    model = Classifier(torchvision.models.resnet50(), input_size=(224, 224), name="resnet50-random").to(dev).eval()
    x = torch.rand(a.batch, 3, 224, 224, device=dev)
    t = torch.randint(0, 1000, (a.batch,), device=dev)
    configs = {
        "grad": ("adv2", {"n_warm": 2, "lam": 1.0, "check_every": 10}),
        "cam": ("adv2", {"n_warm": 2, "lam": 1.0}),
        "rts": ("adv2", {"n_warm": 2, "lam": 1.0, "extra": {"encoder": 0.1}}),
        "mask": ("adv2-bilevel", {"n_warm": 2, "warm_loss": "margin", "n_reset": 2, "n_step": 4, "n_plain": 4}),
    }
    print(
        f"{torch.cuda.get_device_name(dev) if cuda else 'cpu'}, torch {torch.__version__}, "
        f"ResNet-50 random weights, batch {a.batch}"
    )
    print(f"{'interpreter':<12} {'benign map s':>12} {'step ms':>9} {'peak GB':>8}", flush=True)
    for name in a.interpreters.split(","):
        kind, cfg = configs[name]
        interp = (
            RtsInterpreter(model, build_rts_net(model).to(dev).eval())
            if name == "rts"
            else create_interpreter(name, model)
        )
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        m_t = interp.explain(x, t).map
        sync()
        benign_s = time.perf_counter() - t0
        times = {}
        for n in (a.k, 2 * a.k):
            attack = ATTACKS.create(kind, threat=THREATS.create("linf"), config=AttackConfig(n_total=n, **cfg))
            sync()
            t0 = time.perf_counter()
            res = attack(model, x, t, interp, m_t)
            sync()
            times[n] = time.perf_counter() - t0
            for field in ("x_adv", "success", "logits", "map", "perturbation", "last"):
                value = getattr(res, field)
                if value.device != x.device:
                    raise AssertionError(f"{name}: result.{field} is on {value.device}, the model on {x.device}")
        step_ms = (times[2 * a.k] - times[a.k]) / a.k * 1e3
        peak = torch.cuda.max_memory_allocated(dev) / 2**30 if cuda else float("nan")
        print(f"{name:<12} {benign_s:>12.2f} {step_ms:>9.1f} {peak:>8.2f}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        cfg = JobConfig(limit=2, batch_size=2, device=a.device, interpreters=("grad", "cam", "rts"))
        manifest = run_job(cfg, f"{d}/run", progress=False)
        print(
            f"run_job on {a.device} (scenes-resnet, 2 images, grad/cam/rts): {time.perf_counter() - t0:.1f} s, "
            f"device {manifest['device']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
