"""How many torch threads a local run uses (issue 15), chosen once per run and recorded in its manifest.

``doublecross attack`` applies this rule; ``run_job`` called from Python keeps the caller's
``torch.get_num_threads()`` unless given ``threads`` (a count or ``"auto"`` for this rule).

Order: an explicit request (``--threads N``) wins; else ``OMP_NUM_THREADS`` when set (the user's
machine-wide choice, which torch reads at start-up); else ``min(usable cores, DEFAULT_MAX)``, where
the usable cores are the process's CPU affinity (taskset / cpuset aware). Small models at 64×64 gain
little past a few threads, and on a shared or loaded machine threads beyond the idle cores
oversubscribe: on a loaded 2-core machine 2 threads ran ~10× slower than 1 (README, "Threads").
"""

from __future__ import annotations

import os

DEFAULT_MAX = 2


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def choose_threads(requested: int | None = None) -> tuple[int, str]:
    """``(threads, source)``: source is ``"--threads"``, ``"OMP_NUM_THREADS"`` or ``"default"``.

    Raises:
        ValueError: a requested count below 1, or an ``OMP_NUM_THREADS`` that is not a positive integer.
    """
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"threads must be a positive integer, got {requested!r}")
        return requested, "--threads"
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"OMP_NUM_THREADS must be a positive integer, got {env!r}")
        return int(env), "OMP_NUM_THREADS"
    return min(usable_cores(), DEFAULT_MAX), "default"
