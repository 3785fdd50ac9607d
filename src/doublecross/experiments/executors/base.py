"""What every executor provides (``executors/__init__.py``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class ExecutorError(RuntimeError):
    """A unit failed where it ran (a Ray worker); the units finished before it are stored."""


class Executor(ABC):
    """Runs a job's pending units; a context manager that releases what it started (a Ray cluster)."""

    name = ""

    @abstractmethod
    def run(self, ctx: Any, data: Any, units: list[Any], store: Any, bars: Any) -> int:
        """Compute ``units`` (``units.Unit``, not yet in ``store``) and write each to ``store`` as it finishes.

        Args:
            ctx: the run's :class:`~doublecross.experiments.units.UnitContext` (model, interpreters, preset).
            data: the attack set (:class:`~doublecross.experiments.units.AttackData`).
            units: the units to compute, in the local order (a baseline before the units that read it).
            store: the run's :class:`ResultStore`; only this process writes it.
            bars: the job's :class:`JobProgress`.

        Returns:
            How many units were computed and stored.
        """

    @abstractmethod
    def unit_threads(self) -> int:
        """Torch threads each unit runs with (recorded per unit; MASK/RTS results depend on it)."""

    def describe(self) -> dict[str, Any]:
        """The executor's settings, for the run's manifest."""
        return {"name": self.name}

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the executor started (nothing for ``local``)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
