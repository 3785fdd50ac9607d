"""Executors of the attack job's units (issue 15): ``local`` (this process) and ``ray`` (a Ray cluster).

An executor takes the units still to do (``experiments/units.py``) and makes each one be computed
by :func:`doublecross.experiments.runner.run_unit` and written to the run's store; how and where
is its business. Both give the same numbers for the same seed and torch thread count.

Example:
    >>> from doublecross.experiments.executors import create_executor
    >>> with create_executor("ray", address="auto", cpus_per_task=2) as ex:
    ...     run_job(cfg, "runs/x", executor=ex)
"""

from __future__ import annotations

from typing import Any

from ...registry import Registry
from .base import Executor, ExecutorError

EXECUTORS: Registry[Executor] = Registry("executor")

from . import local, ray  # noqa: E402,F401  (register the executors)


def create_executor(name: str, **options: Any) -> Executor:
    """The executor ``name`` (``local`` or ``ray``) with its options (``None`` values: defaults).

    Raises:
        ValueError: an unknown name (the message lists the registered ones).
        ConfigError: ``ray`` without Ray installed (names the ``doublecross[ray]`` extra), or a bad option.
    """
    return EXECUTORS.create(name, **options)


__all__ = ["EXECUTORS", "Executor", "ExecutorError", "create_executor"]
