"""The local executor: units one after another in this process, in the plan's order (the default)."""

from __future__ import annotations

from typing import Any

import torch

from . import EXECUTORS
from .base import Executor


@EXECUTORS.register("local", "units one after another in this process (default)")
class LocalExecutor(Executor):
    """Computes each unit in this process with the run's torch threads and writes it to the store."""

    name = "local"

    def run(self, ctx: Any, data: Any, units: list[Any], store: Any, bars: Any) -> int:
        from ..runner import run_unit

        benign: dict[Any, torch.Tensor] = {}  # g(x; y) per interpreter of the current batch, shared by its threats
        current = None
        for unit in units:
            if unit.batch != current:
                benign, current = {}, unit.batch
            with bars.unit(unit.label, unit.steps):
                run_unit(store, ctx, unit, data.batch(unit.batch), benign)
        return len(units)

    def unit_threads(self) -> int:
        return torch.get_num_threads()
