"""The ``doublecross`` command line: list, train, evaluate (library code never sees argparse)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sqlite3
import sys
from collections.abc import Callable, Sequence

from .cli_errors import error_text, interrupted_message
from .cli_executor import add_executor_options, executor_from_args
from .cli_options import add_model_options, add_preset_options, model_options
from .config import ConfigError, load_preset_dict, preset_names
from .lazy import LazyChoices

log = logging.getLogger("doublecross")


# Registries load torch: the parser names them lazily so that ``doublecross --help`` stays fast.
DATASET_NAMES = LazyChoices("doublecross.data", "DATASETS")
ARCHITECTURE_NAMES = LazyChoices("doublecross.models.zoo", "ARCHITECTURES")
TARGET_MAP_NAMES = LazyChoices("doublecross.data.targets", "TARGET_MAP_MODES")
MODEL_HELP = (
    "a model name (`doublecross list models`), a checkpoint path, or your own path/to/file.py:factory or "
    "package.module:factory (loading it runs that code)"
)


def _registries() -> dict[str, Callable[[], list[tuple[str, str]]]]:
    def models() -> list[tuple[str, str]]:
        from .models.zoo import MODELS, embedded_checkpoint

        rows = []
        for e in MODELS.entries():
            tag = " [embedded]" if os.path.isfile(embedded_checkpoint(e.name)) else ""
            rows.append((e.name, e.summary + tag))
        return rows

    def presets() -> list[tuple[str, str]]:
        rows = []
        for name in preset_names():
            d = load_preset_dict(name)
            rows.append((name, f"[{d['kind']}] {d.get('description', '')}"))
        return rows

    return {
        "models": models,
        "architectures": lambda: _entries("doublecross.models.zoo", "ARCHITECTURES"),
        "datasets": lambda: _entries("doublecross.data", "DATASETS"),
        "interpreters": lambda: _entries("doublecross.interpreters", "INTERPRETERS"),
        "attacks": lambda: _entries("doublecross.attacks", "ATTACKS"),
        "threats": lambda: _entries("doublecross.threats", "THREATS"),
        "presets": presets,
    }


def _entries(module: str, registry: str) -> list[tuple[str, str]]:
    import importlib

    return [(e.name, e.summary) for e in getattr(importlib.import_module(module), registry).entries()]


def cmd_list(args: argparse.Namespace) -> int:
    rows = _registries()[args.what]()
    if not rows:
        print(f"no {args.what} registered yet")
    width = max((len(n) for n, _ in rows), default=0)
    for name, summary in rows:
        print(f"{name:<{width}}  {summary}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .models.train import TrainConfig, train

    overrides = {
        "arch": args.model,
        "dataset": args.dataset,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "root": args.images or args.root,
        "init": args.init,
        "train_count": args.train_count,
        "init_weights": args.init_weights,
        "num_classes": args.num_classes,
        "image_size": args.image_size,
        "val_fraction": args.val_fraction,
    }
    if args.images:
        if args.dataset not in (None, "folder"):
            raise ConfigError(f"--images trains on a folder; drop --dataset {args.dataset}")
        overrides["dataset"] = "folder"
    if args.preset:
        cfg = TrainConfig.from_preset(args.preset, **overrides)
    else:
        if not (args.model and overrides["dataset"]):
            raise ConfigError("train needs --preset, or --model and --dataset (or --images DIR)")
        cfg = TrainConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    command = "doublecross " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    meta = train(cfg, args.out, overwrite=args.force, progress=None if not args.quiet else False, command=command)
    print(
        f"wrote {args.out}: test accuracy {meta['accuracy']:.4f} on {meta['test_size']} images, "
        f"trained in {meta['train_time_s']:.0f} s"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import create_dataset
    from .models.train import accuracy, stack_dataset
    from .models.user import build_model

    model = build_model(args.model, weights=args.weights, options=model_options(args))
    root = args.images if args.images else args.root
    dataset = "folder" if args.images else args.dataset
    classes = list(model.classes) if model.classes else None
    size = (model.input_size or (224, 224))[0]  # folder images at the model's input size (as the attack does)
    extra = {"class_names": classes, "labels": args.labels, "image_size": size} if args.images else {}
    if dataset == "scenes" and model.input_size:
        extra = {"image_size": size}  # scenes rendered at the model's size
    ds = create_dataset(dataset, split=args.split, root=root, **extra)
    x, y = stack_dataset(ds, args.limit)
    if (y < 0).any():
        raise ConfigError("evaluate needs labelled images (one sub-folder per class)")
    acc = accuracy(model, x, y, batch_size=args.batch_size)
    print(f"{model.name} on {dataset}/{args.split}: top-1 accuracy {acc:.4f} ({len(y)} images)")
    return 0


def cmd_train_rts(args: argparse.Namespace) -> int:
    if args.aid:  # AID: harden an existing RTS (issue 13)
        from .cli_defences import cmd_train_rts_aid

        return cmd_train_rts_aid(args)
    from .data import create_dataset
    from .interpreters.rts_train import RtsTrainConfig, train_rts
    from .models.train import check_label_space, predicted_labels, stack_dataset
    from .models.user import build_model

    model = build_model(args.model, weights=args.weights, options=model_options(args))
    size = (model.input_size or (224, 224))[0]  # RTS trains at the model's input size
    if args.images:  # sub-folders labelled by the model's class names (folder.py), else unlabelled
        classes = list(model.classes) if model.classes else None
        ds = create_dataset("folder", root=args.images, image_size=size, class_names=classes)
    else:
        ds = create_dataset(args.dataset, split="train", root=args.root, image_size=size)
    x, y = stack_dataset(ds, args.limit)
    if not args.images and (y >= 0).any():
        check_label_space(model, getattr(ds, "classes", None), args.dataset)
    y = predicted_labels(model, x, y)  # unlabelled images (-1): RTS learns the model's predicted class
    defaults = RtsTrainConfig()
    cfg = RtsTrainConfig(
        steps=args.steps or defaults.steps,
        batch_size=args.batch_size or defaults.batch_size,
        seed=args.seed if args.seed is not None else defaults.seed,
    )
    command = "doublecross " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    meta = train_rts(
        model, x, y, args.out, cfg, overwrite=args.force, progress=False if args.quiet else None, command=command
    )
    print(
        f"wrote {args.out}: loss {meta['loss_first']:.3f} -> {meta['loss_last']:.3f} "
        f"in {meta['steps']} steps, {meta['train_time_s']:.0f} s"
    )
    return 0


def cmd_evaluate_interpreters(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from .attacks.presets import interpreter_defaults
    from .data import create_dataset
    from .interpreters import create_interpreter
    from .interpreters.faithfulness import evaluate_interpreters, foreground_masks
    from .models.train import stack_dataset
    from .models.zoo import create_model
    from .progress import step_reporter

    show = sys.stderr.isatty() and not args.quiet
    if args.dataset == "scenes":
        ds = create_dataset("scenes", split="test")
        n = min(args.limit, len(ds))
        items = [ds[i] for i in range(n)]
        x = torch.stack([it[0] for it in items])
        y = torch.tensor([it[1] for it in items])
        masks = torch.stack([it[2] for it in items])
        what = "ground-truth object masks, scenes test split"
    else:  # no object masks: the garment is the non-black pixels
        x, y = stack_dataset(create_dataset(args.dataset, split="test", root=args.root), args.limit)
        masks, n = foreground_masks(x), len(y)
        what = f"the garment (non-black pixels), {args.dataset} test split"
    print(
        f"Benign maps vs {what}, first {n} images "
        "(IoU of the top-k% map pixels, k = object area; pointing game; share of constant maps)"
    )
    print(f"{'model':<16} {'interpreter':<12} {'IoU':>14} {'pointing':>9} {'constant':>9}")
    for model_name in args.models.split(","):
        model = create_model(model_name)
        interps = {}
        options = interpreter_defaults(model_name)  # e.g. MASK's blur for 64 px models
        for name in args.interpreters.split(","):
            kw = dict(options.get(name, {}))
            if name == "mask":
                kw["steps"] = args.mask_steps
            if name == "rts" and args.rts_weights:
                kw["weights"] = args.rts_weights
            interps[name] = create_interpreter(name, model, **kw)
        with tqdm(total=n * len(interps), desc=model_name, unit="img", leave=False, disable=not show) as bar:
            with step_reporter(bar.update):
                rows = evaluate_interpreters(
                    model, interps, x, y, masks, batch_size=args.batch_size, random_baseline=args.dataset != "scenes"
                )
        for row in rows:
            print(
                f"{model_name:<16} {row['interpreter']:<12} {row['iou']:>7.3f} ± {row['iou_sem']:.3f} "
                f"{row['pointing']:>9.3f} {row['degenerate']:>9.3f}"
            )
    return 0


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def cmd_attack(args: argparse.Namespace) -> int:
    import time

    from .experiments.job import JobConfig
    from .experiments.runner import run_job
    from .report import build_report

    overrides = {
        "model": args.model,
        "weights": args.weights,
        "dataset": args.dataset,
        "images": args.images,
        "labels": args.labels,
        "limit": args.limit,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "preset": args.preset,
        "target_map": args.target_map,
        "device": args.device,
        "early_stop": True if args.early_stop else None,
        "rts_weights": args.rts_weights,
        "steps_scale": args.steps_scale,
        "selection": args.selection,
        "overrides": tuple(args.overrides) if args.overrides else None,
        **_user_model_fields(args),
    }
    if args.interpreter:
        overrides["interpreters"] = tuple(n for part in args.interpreter for n in part.split(",") if n)
    if args.threat:
        from .threats import THREATS

        overrides["threats"] = tuple(THREATS.check(n) for part in args.threat for n in part.split(",") if n)
    if args.model and not args.preset:  # a preset named after the model, else a generic one (attacks/generic.py)
        from .attacks.generic import default_preset
        from .models.user import declared_input_side

        side = declared_input_side(args.model, args.weights, model_options(args))
        overrides["preset"] = default_preset(args.model, side)
        log.info("no --preset: using %s for %s", overrides["preset"], args.model)
    if args.preset and not args.model:
        from .attacks.presets import load_attack_preset

        # the model the preset was calibrated for (generic presets name none: the default model)
        overrides["model"] = load_attack_preset(args.preset).model or None
    cfg = JobConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    out = args.out or os.path.join("runs", time.strftime("attack-%Y%m%d-%H%M%S"))
    args.run_dir = out  # for the Ctrl-C message
    with executor_from_args(args) as executor:
        manifest = run_job(
            cfg,
            out,
            resume=args.resume,
            progress=False if args.quiet else None,
            threads=args.threads or "auto",
            max_memory=args.max_memory,
            executor=executor,
        )
    table, _ = build_report(out)  # class names come from the run's manifest
    print(
        f"doublecross attack: {cfg.model}, {manifest['images']} images, preset {cfg.preset}, "
        f"target map {cfg.target_map}, {manifest['wall_time_s']:.0f} s"
    )
    print(table)
    print(f"results in {out}/ (summary.csv, grid_*.png, report.html, results.sqlite)")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    import time

    from .experiments.reproduce import ReproduceConfig, reproduce
    from .experiments.spec import EXPERIMENTS

    overrides = {
        "experiments": EXPERIMENTS if args.experiment == "all" else (args.experiment,),
        "models": tuple(m for m in (args.model or "").split(",") if m) or None,
        "weights": args.weights,
        "dataset": args.dataset,
        "images": args.images,
        "preset": args.preset,
        "limit": args.limit,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "device": args.device,
    }
    if args.interpreter:
        overrides["interpreters"] = tuple(n for part in args.interpreter for n in part.split(",") if n)
    if args.report_only:  # the saved configuration, restricted to the experiment asked for
        import yaml

        if not args.out or not os.path.isfile(os.path.join(args.out, "reproduce.yaml")):
            raise ConfigError("--report-only needs --out DIR of an earlier reproduction")
        with open(os.path.join(args.out, "reproduce.yaml")) as fh:
            saved = yaml.safe_load(fh)
        cfg = ReproduceConfig.from_dict({**saved, "experiments": overrides["experiments"]})
    else:
        cfg = ReproduceConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    out = args.out or os.path.join("runs", time.strftime("reproduce-%Y%m%d-%H%M%S"))
    with executor_from_args(args) as executor:
        manifest = reproduce(
            cfg,
            out,
            resume=args.resume,
            progress=False if args.quiet else None,
            compute=not args.report_only,
            threads=args.threads or "auto",
            executor=executor,
        )
    with open(os.path.join(out, "tables", "all.md")) as fh:
        print(fh.read())
    for name, verdict in manifest["claims"].items():
        print(f"{verdict:<8} {name}")
    print(f"doublecross reproduce {args.experiment}: {manifest['wall_time_s']:.0f} s; report in {out}/report.html")
    return 0


def _user_model_fields(args: argparse.Namespace) -> dict[str, object]:
    """JobConfig fields of the ``--num-classes --input-size --mean --std --no-normalise`` flags."""
    o = model_options(args)
    return {
        "num_classes": o.num_classes,
        "input_size": o.input_size,
        "mean": o.mean,
        "std": o.std,
        "normalise": False if not o.normalise else None,
    }


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    table, _ = build_report(args.run)
    print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="doublecross", description="ADV²: attack a classifier and its interpreter at once."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list registered models, datasets, interpreters, attacks or presets")
    s.add_argument("what", choices=list(_registries()))
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("train", help="train a classifier of ours and write a checkpoint")
    s.add_argument("--preset", choices=[n for n in preset_names() if n.startswith("train-")])
    s.add_argument("--model", choices=ARCHITECTURE_NAMES, metavar="ARCH", help="architecture: %(choices)s")
    s.add_argument("--dataset", choices=DATASET_NAMES, metavar="NAME", help="%(choices)s")
    s.add_argument("--root", help="dataset folder (fashion-mnist: the IDX files)")
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--seed", type=int)
    s.add_argument("--init", help="fine-tune: start from this checkpoint (a path or an embedded model name)")
    s.add_argument("--train-count", type=int, help="train on the first N training images only (a quick model)")
    s.add_argument(
        "--init-weights",
        help="fine-tune a pretrained torchvision state dict (e.g. resnet50-*.pth, weights_only) of --model "
        "with a fresh K-way head",
    )
    s.add_argument("--images", help="train on a labelled folder (one sub-folder per class); holds out --val-fraction")
    s.add_argument("--num-classes", type=int, help="K, checked against the data's classes")
    s.add_argument("--image-size", type=int, help="input side in pixels (folder default 224)")
    s.add_argument("--val-fraction", type=float, help="folder: seeded per-class test share (default 0.2)")
    s.add_argument("--out", required=True, help="checkpoint path to write")
    s.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="test accuracy of a model on a dataset")
    s.add_argument("--model", default="scenes-resnet", help=MODEL_HELP)
    s.add_argument("--weights", help="weights file for the model")
    s.add_argument("--dataset", default="scenes", choices=DATASET_NAMES, metavar="NAME", help="%(choices)s")
    s.add_argument("--root", help="dataset folder")
    s.add_argument("--images", help="folder of labelled images (one sub-folder per class, named as the class)")
    s.add_argument("--labels", help="label map for --images: YAML/JSON 'sub-folder: class name or index' per line")
    s.add_argument("--split", default="test", choices=["train", "test"])
    s.add_argument("--limit", type=int)
    s.add_argument("--batch-size", type=int, default=256)
    add_model_options(s)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("attack", help="PGD/StAdv and ADV² against interpreters; writes a run directory with a report")
    s.add_argument("--model", help=MODEL_HELP + " (default scenes-resnet)")
    s.add_argument("--weights", help="weights file for the model")
    s.add_argument("--dataset", choices=DATASET_NAMES, metavar="NAME", help="%(choices)s (default scenes, test split)")
    s.add_argument("--images", help="a folder of your images to attack instead of a dataset")
    s.add_argument("--labels", help="label map for --images: YAML/JSON 'sub-folder: class name or index' per line")
    s.add_argument(
        "--interpreter",
        action="append",
        help="grad, cam, mask, rts, gradcam, gradcam++, smoothgrad, ig, input-x-grad (repeat or comma-separate)",
    )
    s.add_argument("--threat", action="append", help="linf (PGD, default), stadv (spatial flow), or both: linf,stadv")
    s.add_argument(
        "--preset",
        help="attack preset or .yaml file (default: the one named after --model, else generic / generic-small "
        "by input size)",
    )
    s.add_argument("--rts-weights", help="RTS checkpoint from `doublecross train-rts` for this model")
    add_preset_options(s)
    s.add_argument("--limit", type=int, help="number of correctly classified images, class-balanced (default 8)")
    s.add_argument(
        "--selection",
        choices=["balanced", "first"],
        help="attack set: balanced seeded draw (default) or the first correct images in dataset order",
    )
    s.add_argument("--batch-size", type=int)
    s.add_argument("--seed", type=int)
    s.add_argument("--device", help="cpu (default) or cuda")
    s.add_argument(
        "--threads", type=_positive_int, help="torch threads (default: $OMP_NUM_THREADS, else min(cores, 2))"
    )
    s.add_argument(
        "--max-memory", type=float, metavar="GB", help="memory for the whole process; larger batches run in chunks"
    )
    s.add_argument(
        "--early-stop",
        action="store_true",
        help="stop each image's warm start and baseline at its first success (off: the paper's fixed steps)",
    )
    s.add_argument("--target-map", choices=TARGET_MAP_NAMES, metavar="MODE", help="%(choices)s")
    s.add_argument("--out", help="run directory (default runs/attack-<time>)")
    s.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    add_model_options(s)
    add_executor_options(s)
    s.set_defaults(func=cmd_attack)

    s = sub.add_parser(
        "reproduce", help="the paper's experiments (Q1, Q2, Q4, StAdv, transfer; defences): tables, figures, HTML"
    )
    s.add_argument(
        "experiment",
        choices=["q1", "q2", "q4", "stadv", "transfer", "all", "detect", "ensemble", "aid"],
        help="all = q1 q2 q4 stadv transfer; the defences (detect: squeezing + LID, ensemble: ensemble "
        "interpretation + adaptive ADV², aid: trains a hardened RTS, then evaluates) are not in all (costly): "
        "name each, e.g. `reproduce detect --out DIR --resume` on an existing reproduction",
    )
    s.add_argument("--model", help="model name(s), comma-separated (default scenes-resnet)")
    s.add_argument("--weights", help="weights file for the model")
    s.add_argument("--dataset", choices=DATASET_NAMES, metavar="NAME", help="%(choices)s (default scenes, test split)")
    s.add_argument("--images", help="a folder of your images to attack instead of a dataset")
    s.add_argument("--preset", help="attack preset (default: the preset named after each model)")
    s.add_argument("--interpreter", action="append", help="grad, cam, mask, rts (repeat or comma-separate)")
    s.add_argument("--limit", type=int, help="correctly classified images per model (default 16)")
    s.add_argument("--batch-size", type=int)
    s.add_argument("--seed", type=int)
    s.add_argument("--device", help="cpu (default) or cuda")
    s.add_argument(
        "--threads", type=_positive_int, help="torch threads (default: $OMP_NUM_THREADS, else min(cores, 2))"
    )
    s.add_argument("--out", help="output directory (default runs/reproduce-<time>)")
    s.add_argument("--resume", action="store_true", help="continue an interrupted reproduction in --out")
    s.add_argument(
        "--report-only", action="store_true", help="regenerate tables/figures/report from --out, run nothing"
    )
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    add_executor_options(s)
    s.set_defaults(func=cmd_reproduce)

    s = sub.add_parser("report", help="regenerate summary.csv, grids and report.html of a run directory")
    s.add_argument("run")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("train-rts", help="train the RTS masking network for a classifier")
    s.add_argument("--model", default="scenes-resnet", help=MODEL_HELP)
    s.add_argument("--weights", help="weights file for the model")
    s.add_argument("--dataset", default="scenes", choices=DATASET_NAMES, metavar="NAME", help="%(choices)s")
    s.add_argument("--root", help="dataset folder")
    s.add_argument(
        "--images", help="train on your folder of images (labelled by sub-folder, else by the model's prediction)"
    )
    s.add_argument("--limit", type=int, help="use only the first N training images")
    s.add_argument("--steps", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--seed", type=int)
    s.add_argument("--out", required=True, help="RTS checkpoint path to write")
    s.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(s)
    from .cli_defences import add_aid_arguments, add_commands

    add_aid_arguments(s)
    s.set_defaults(func=cmd_train_rts)

    s = sub.add_parser("evaluate-interpreters", help="localisation of benign maps vs ground-truth masks (scenes)")
    s.add_argument(
        "--models",
        "--model",
        dest="models",
        default="scenes-resnet,scenes-densenet",
        help="comma-separated model names or checkpoint paths",
    )
    s.add_argument(
        "--dataset",
        default="scenes",
        choices=["scenes", "fashion-mnist"],
        help="fashion-mnist: the garment (non-black pixels) is the object",
    )
    s.add_argument("--root", help="dataset folder (fashion-mnist: the IDX files)")
    s.add_argument("--rts-weights", help="RTS checkpoint for the model (default: the embedded one)")
    s.add_argument("--interpreters", default="grad,cam,mask,rts")
    s.add_argument("--limit", type=int, default=200)
    s.add_argument("--mask-steps", type=int, default=300)
    s.add_argument("--batch-size", type=int, default=50)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_evaluate_interpreters)
    add_commands(sub)  # detect, defend (issue 13)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(interrupted_message(args, sys.argv[1:] if argv is None else list(argv)), file=sys.stderr)
        return 130
    except (ConfigError, FileExistsError, FileNotFoundError, ValueError, TypeError) as e:  # WeightsError: a ValueError
        print(f"doublecross: error: {e}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as e:  # permissions, full disk, a corrupt results.sqlite: no traceback
        print(f"doublecross: error: {error_text(e)}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        from .experiments.executors import ExecutorError

        if not isinstance(e, ExecutorError):
            raise
        print(f"doublecross: error: {e}", file=sys.stderr)  # a unit failed on a Ray worker; the others are stored
        return 1


if __name__ == "__main__":
    sys.exit(main())
