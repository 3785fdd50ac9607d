"""Timing helper shared by the benchmark scripts (run as ``python bench/<script>.py``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

#: The clock of every timing: wall time (``time.perf_counter``, default) or this process's CPU time
#: (``time.process_time``: ``--clock cpu``, robust to other processes on a shared machine at 1 thread).
CLOCK: Callable[[], float] = time.perf_counter


def median_time(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """Median time of ``fn()`` in seconds (``CLOCK``) over ``repeats`` calls (after one untimed call if ``warmup``)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t = CLOCK()
        fn()
        times.append(CLOCK() - t)
    return statistics.median(times)
