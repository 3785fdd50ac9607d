"""Per-iteration attack history as stored arrays (``history_step``, ``history_<field>``) and back.

An attack records batch means every ``history_every`` steps (``AttackResult.history``: a list of
dicts such as ``{"step": k, "loss": ..., "int": ..., "success": ..., "zero_grad": ...}``); the
runner stores them with its unit so reports can plot them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

PREFIX = "history_"


def history_arrays(history: list[dict[str, float]]) -> dict[str, torch.Tensor]:
    """``{"history_step": (T,), "history_<field>": (T,)}`` from the records (empty dict without records)."""
    if not history:
        return {}
    fields = sorted({k for rec in history for k in rec})
    return {
        f"{PREFIX}{k}": torch.tensor([float(rec.get(k, float("nan"))) for rec in history], dtype=torch.float64)
        for k in fields
    }


def load_history(
    has: Callable[[str], bool],
    get: Callable[[str], torch.Tensor],
    fields: tuple[str, ...] = ("step", "loss", "int", "success", "zero_grad"),
) -> dict[str, torch.Tensor]:
    """The stored history of one unit (fields that exist), via ``has(name)`` / ``get(name)`` on its arrays."""
    return {k: get(PREFIX + k) for k in fields if has(PREFIX + k)}
