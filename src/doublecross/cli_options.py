"""Command-line options shared by several sub-commands: your own model, and preset adjustments.

Kept apart from ``cli.py`` (and, like it, free of torch imports) so the sub-commands only call
:func:`add_model_options` / :func:`model_options` and :func:`add_preset_options`.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_model_options(s: argparse.ArgumentParser) -> None:
    """``--num-classes --input-size --mean --std --no-normalise`` (for ``--model file.py:factory``)."""
    g = s.add_argument_group(
        "your own model (--model path/to/file.py:factory or package.module:factory; loading it RUNS that code)"
    )
    g.add_argument("--num-classes", type=int, help="K: passed to the factory as num_classes=K and checked")
    g.add_argument("--input-size", type=int, help="side of the square input in pixels (default 224)")
    g.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"), help="normalisation mean (default ImageNet)")
    g.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), help="normalisation std (default ImageNet)")
    g.add_argument(
        "--no-normalise", action="store_true", help="the network normalises its input itself: pass [0, 1] pixels"
    )


def model_options(args: argparse.Namespace) -> Any:
    """The :class:`~doublecross.models.user.ModelOptions` of parsed :func:`add_model_options` flags."""
    from .models.user import ModelOptions  # lazily: `doublecross --help` must not load torch

    return ModelOptions(
        num_classes=args.num_classes,
        input_size=args.input_size,
        mean=tuple(args.mean) if args.mean else None,
        std=tuple(args.std) if args.std else None,
        normalise=not args.no_normalise,
    )


def add_preset_options(s: argparse.ArgumentParser) -> None:
    """``--steps-scale F`` and repeatable ``--set PATH=VALUE`` (attacks/overrides.py)."""
    s.add_argument(
        "--steps-scale",
        type=float,
        help="multiply every attack's iteration counts (n_warm, n_total, phases) by F, e.g. 0.05 for a smoke run",
    )
    s.add_argument(
        "--set",
        action="append",
        dest="overrides",
        metavar="PATH=VALUE",
        help="change one preset field, e.g. linf.grad.n_total=50, linf.threat.eps=0.0157, "
        "linf.baseline.n_total=20, interpreter_options.mask.steps=50 (repeatable)",
    )
