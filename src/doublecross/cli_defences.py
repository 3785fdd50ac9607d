"""CLI commands of the defences (issue 13): ``detect``, ``defend ensemble|aid|report``, ``train-rts --aid``.

Kept out of ``cli.py`` so that file only registers them; library code never sees argparse.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys


def _out(args: argparse.Namespace) -> str:
    out = args.out or os.path.join(args.run, "defences")
    os.makedirs(out, exist_ok=True)
    return out


def _load_locked(run: str):
    """The run's data, read while holding the run's lock: an attack still writing it is refused, not half-read."""
    from .defences.rundata import load_run
    from .experiments.lock import RunLock

    if not os.path.isdir(run):
        raise ValueError(f"run directory {run} does not exist (give the --out of a finished `doublecross attack`)")
    with RunLock(run):
        return load_run(run)


def _finish(out: str) -> int:
    from .defences.report import write_report

    print(write_report(out))
    print(f"results in {out}/ (defences.sqlite, report.md, report.html)")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from .defences.detect import run_lid, run_squeeze
    from .defences.store import DefenceStore
    from .experiments.lock import RunLock

    data = _load_locked(args.run)
    out = _out(args)
    with RunLock(out), DefenceStore(os.path.join(out, "defences.sqlite")) as store:
        if args.detector == "squeeze":
            run_squeeze(data, store, n_heldout=args.heldout or 200)
        else:
            layers = [n for n in args.layers.split(",") if n] if args.layers else None
            run_lid(data, store, layers=layers, n_ref=args.heldout or 100, seed=args.seed)
    return _finish(out)


def cmd_defend(args: argparse.Namespace) -> int:
    from .defences.store import DefenceStore
    from .experiments.lock import RunLock

    if args.what == "report":
        return _finish(_out(args))
    data = _load_locked(args.run)
    out = _out(args)
    with RunLock(out), DefenceStore(os.path.join(out, "defences.sqlite")) as store:
        if args.what == "ensemble":
            from .defences.ensemble import run_ensemble
            from .interpreters.ensemble import parse_members

            run_ensemble(data, store, parse_members(args.members), n_heldout=args.heldout, steps_scale=args.steps_scale)
        else:
            from .defences.aid import run_aid
            from .models.checkpoint import load_checkpoint

            if not args.rts:
                raise ValueError("defend aid needs --rts HARDENED.pt (from `doublecross train-rts --aid`)")
            _, meta = load_checkpoint(args.rts)
            store.put(
                "aid",
                "training",
                {
                    "weights": args.rts,
                    "rounds": meta.get("aid_rounds"),
                    "aid": meta.get("aid"),
                    "train_time_s": meta.get("train_time_s"),
                    "threads": meta.get("threads"),
                },
            )
            run_aid(data, store, args.rts, args.original, n_fidelity=args.fidelity, steps_scale=args.steps_scale)
    return _finish(out)


def add_aid_arguments(s: argparse.ArgumentParser) -> None:
    """``train-rts`` flags of AID (fine-tuning an existing RTS)."""
    s.add_argument(
        "--aid", action="store_true", help="AID: harden an RTS by fine-tuning on regenerated ADV²/PGD inputs"
    )
    s.add_argument("--init-rts", help="AID: the RTS checkpoint to harden (default: the embedded one)")
    s.add_argument("--aid-rounds", type=int, default=3, help="AID: regeneration rounds")
    s.add_argument("--aid-images", type=int, default=32, help="AID: training images attacked per round")
    s.add_argument("--aid-scale", type=float, default=0.5, help="AID: scale of the preset's attack step counts")
    s.add_argument("--aid-preset", help="AID: attack preset generating the inputs (default: the model's)")
    s.add_argument("--aid-lr", type=float, default=1e-4, help="AID: Adam learning rate of the fine-tuning")


def cmd_train_rts_aid(args: argparse.Namespace) -> int:
    from .data import create_dataset
    from .defences.aid import AidConfig, train_aid
    from .interpreters.rts import load_rts_net
    from .models.train import stack_dataset
    from .models.zoo import create_model, embedded_checkpoint

    model = create_model(args.model, weights=args.weights)
    init = args.init_rts or embedded_checkpoint(f"rts-{model.name}")
    net, meta = load_rts_net(init, model)
    ds = create_dataset(args.dataset, split="train", root=args.root)
    x, y = stack_dataset(ds, args.limit or 2000)
    cfg = AidConfig(
        rounds=args.aid_rounds,
        steps_per_round=args.steps or 100,
        batch_size=args.batch_size or 32,
        adv_per_round=args.aid_images,
        attack_scale=args.aid_scale,
        lr=args.aid_lr,
        preset=args.aid_preset or model.name,
        seed=args.seed or 0,
    )
    command = "doublecross " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    meta = train_aid(
        model,
        net,
        x,
        y,
        args.out,
        cfg,
        overwrite=args.force,
        base_meta={"path": init, "command": meta.get("command")},
        command=command,
    )
    for r in meta["aid_rounds"]:
        print(r)
    print(f"wrote {args.out}: AID, {cfg.rounds} rounds x {cfg.steps_per_round} steps, {meta['train_time_s']:.0f} s")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``detect`` and ``defend`` on the main parser."""
    s = sub.add_parser("detect", help="detectors on a run's adversarial inputs: feature squeezing or LID")
    s.add_argument("--detector", required=True, choices=["squeeze", "lid"])
    s.add_argument("--run", required=True, help="run directory of `doublecross attack`")
    s.add_argument("--out", help="results folder (default RUN/defences)")
    s.add_argument("--heldout", type=int, help="held-out benign images (squeeze, default 200) / LID references (100)")
    s.add_argument("--layers", help="LID: comma-separated module names (default: every block + the last linear)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_detect)

    s = sub.add_parser("defend", help="countermeasures: ensemble interpretation (+ adaptive ADV²), AID evaluation")
    s.add_argument("what", choices=["ensemble", "aid", "report"])
    s.add_argument("--run", required=True, help="run directory of `doublecross attack`")
    s.add_argument("--out", help="results folder (default RUN/defences)")
    s.add_argument("--members", default="grad,cam,rts", help="ensemble: registered interpreters, comma-separated")
    s.add_argument("--heldout", type=int, default=200, help="ensemble: held-out benign images")
    s.add_argument("--steps-scale", type=float, default=1.0, help="scale of the attacks' step counts")
    s.add_argument("--rts", help="aid: the hardened RTS checkpoint")
    s.add_argument("--original", help="aid: the RTS before hardening (default: the embedded one)")
    s.add_argument("--fidelity", type=int, default=200, help="aid: scenes test images for benign fidelity")
    s.set_defaults(func=cmd_defend)
