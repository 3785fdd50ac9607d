"""Per-call cost of each interpreter relative to one classifier forward+backward.

Measured side by side in one run on the same model and batch; medians of several repeats.
Columns: ``explain`` (evaluation map, no graph) and ``graph`` (forward with the graph kept
plus a backward of the map to the input), each divided by the time of one classifier
forward + backward (loss.backward to the input) on the same batch.

    python bench/interpreters.py [--model scenes-resnet] [--batch 16] [--repeats 5] [--interpreters grad,ig]

Interpreters other than MASK take the options of the model's calibrated preset (SmoothGrad's, IG's samples).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from _timing import median_time

from doublecross.attacks.presets import interpreter_defaults
from doublecross.interpreters import INTERPRETERS, create_interpreter
from doublecross.models import create_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="scenes-resnet")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--mask-steps", type=int, default=300)
    p.add_argument("--interpreters", default=",".join(INTERPRETERS.names()), help="comma-separated (default: all)")
    args = p.parse_args()
    torch.manual_seed(0)
    model = create_model(args.model)
    x = torch.rand(args.batch, 3, args.size, args.size)
    t = torch.randint(0, model.num_classes, (args.batch,))

    def fwd_bwd() -> None:
        xi = x.clone().requires_grad_(True)
        F.cross_entropy(model(xi), t).backward()

    base = median_time(fwd_bwd, args.repeats)
    print(f"model {args.model}, batch {args.batch}, {args.size}x{args.size}, threads {torch.get_num_threads()}")
    print(f"unit: one classifier forward+backward = {base * 1e3:.1f} ms (median of {args.repeats})")
    print(f"{'interpreter':<12} {'explain':>10} {'graph':>10}   (ratios to the unit)")
    opts = interpreter_defaults(args.model)
    for name in args.interpreters.split(","):
        kw = {"steps": args.mask_steps} if name == "mask" else opts.get(name, {})  # MASK: defaults, as before
        interp = create_interpreter(name, model, **kw)
        reps = max(1, args.repeats // 3) if name == "mask" else args.repeats
        ex = median_time(lambda interp=interp: interp.explain(x, t), reps)

        def graph(interp=interp) -> None:  # type: ignore[no-untyped-def]
            xi = x.clone().requires_grad_(True)
            interp(xi, t).map.sum().backward()

        gr = median_time(graph, reps)
        print(f"{name:<12} {ex / base:>10.2f} {gr / base:>10.2f}")


if __name__ == "__main__":
    main()
