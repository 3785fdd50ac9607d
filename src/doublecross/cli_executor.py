"""``--executor local|ray`` and the Ray options of ``attack`` and ``reproduce`` (issue 15); free of torch imports."""

from __future__ import annotations

import argparse
from typing import Any

from .config import ConfigError


def _count(low: int) -> Any:
    """argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


def add_executor_options(s: argparse.ArgumentParser) -> None:
    """``--executor --ray-address --ray-cpus-per-task --ray-max-retries``."""
    g = s.add_argument_group('where the units run (pip install "doublecross[ray]" for ray)')
    g.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: one unit after another in this process (default); ray: one Ray task per unit "
        "(same numbers for the same seed when --ray-cpus-per-task equals the local thread count)",
    )
    g.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="a running Ray cluster: auto, ray://HEAD:10001 or HEAD:6379 (default: start a local Ray instance)",
    )
    g.add_argument(
        "--ray-cpus-per-task",
        type=_count(1),
        metavar="N",
        help="CPUs reserved per unit, and its torch threads (default 1); with --device cuda each unit also gets a GPU",
    )
    g.add_argument(
        "--ray-max-retries", type=_count(0), metavar="N", help="reruns of a unit whose worker died (default 3)"
    )


def executor_from_args(args: argparse.Namespace) -> Any:
    """The executor the flags ask for (a context manager: a Ray instance it starts is shut down on exit)."""
    from .experiments.executors import create_executor

    ray_flags = [f for f in ("ray_address", "ray_cpus_per_task", "ray_max_retries") if getattr(args, f) is not None]
    if args.executor != "ray":
        if ray_flags:
            raise ConfigError(f"--{ray_flags[0].replace('_', '-')} needs --executor ray")
        return create_executor(args.executor)
    return create_executor(
        "ray", address=args.ray_address, cpus_per_task=args.ray_cpus_per_task, max_retries=args.ray_max_retries
    )
