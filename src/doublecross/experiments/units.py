"""The attack job's units and what computing one needs, shared by every executor (``executors/``).

A *unit* is one (batch, threat, attack) of the main job: the threat's baseline (``pgd`` /
``stadv``) or ADV² against one interpreter (``adv2-cam``...). Units are enumerated by
:func:`plan_units` in the local executor's order (batch, threat, baseline first, then the
interpreters) and computed by :func:`doublecross.experiments.runner.run_unit`, which reads its
dependencies from and writes its result to a *store*: the run's :class:`ResultStore` in the local
executor; on a Ray worker a :class:`UnitSink` holding the dependencies the driver sent and
recording the write, which the driver then replays into the run's store (the only writer).

Dependencies between units:

* an ADV² unit reads its threat's baseline unit of the same batch (the baseline image it
  re-evaluates, its perturbation size and magnitude);
* the benign map g(x; y) of a batch and interpreter is computed once and shared by that
  interpreter's units of every threat (a deterministic function of the batch: recomputing it in
  another process gives the same map).

Every unit seeds its own randomness (``torch.Generator().manual_seed(seed·1000 + batch)`` for the
target maps, the attack's and the interpreters' own seeded generators), so its numbers do not depend
on which units ran before it, in which process or in which order; they do depend on the torch
thread count (MASK/RTS), which is recorded with each unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .job import JobConfig

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None"]  # x, y, t, object masks


@dataclass(frozen=True)
class Unit:
    """One unit of the job: ``name`` is the stored unit (``pgd``, ``adv2-cam``); ``interpreter`` None: a baseline."""

    batch: int
    threat: str
    name: str
    interpreter: str | None
    baseline: str  # the stored name of the threat's baseline unit (this unit's dependency, or itself)
    steps: int  # optimisation steps, for the progress bar

    @property
    def label(self) -> str:
        return f"batch {self.batch} {self.name}"


@dataclass
class UnitContext:
    """What computing a unit needs besides its batch: built once per run (per worker process on Ray)."""

    cfg: JobConfig
    preset: Any  # AttackPreset
    device: torch.device
    model: Any
    interps: dict[str, Any]
    options: dict[str, dict[str, Any]]  # interpreter options as created (preset + --rts-weights)
    pool: tuple[torch.Tensor, torch.Tensor]  # exemplar pool for class-exemplar target maps
    per_image: dict[Any, int] = field(default_factory=dict)  # bytes per image, for max_memory chunking
    max_memory: float | None = None
    model_given: bool = False  # the caller passed a ready model (it cannot be rebuilt from cfg)


@dataclass
class AttackData:
    """The attack set of a run, split into batches of ``batch_size`` (CPU tensors)."""

    x: torch.Tensor
    y: torch.Tensor
    t: torch.Tensor
    masks: torch.Tensor | None
    batch_size: int

    def batch(self, b: int) -> Batch:
        sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
        return self.x[sl], self.y[sl], self.t[sl], self.masks[sl] if self.masks is not None else None

    @property
    def n_batches(self) -> int:
        return -(-len(self.x) // self.batch_size)


@dataclass
class UnitOutput:
    """A finished unit as :meth:`ResultStore.write_unit` takes it (computed on a worker, stored by the driver)."""

    batch: int
    unit: str
    seconds: float
    rows: list[dict[str, Any]]
    arrays: dict[str, torch.Tensor]
    info: dict[str, Any] | None = None

    def write_to(self, store: Any) -> None:
        store.write_unit(self.batch, self.unit, self.seconds, self.rows, self.arrays, self.info)


class UnitSink:
    """A store stand-in for one unit on a worker: serves the baseline's arrays, records the unit's write.

    Args:
        baseline: the arrays of the unit's baseline (name -> tensor), for an ADV² unit.
        baseline_name: the baseline unit's stored name; reading another unit is an error.
    """

    def __init__(self, baseline: dict[str, torch.Tensor] | None = None, baseline_name: str = "") -> None:
        self.baseline, self.baseline_name = baseline or {}, baseline_name
        self.output: UnitOutput | None = None

    def array(self, batch: int, unit: str, name: str) -> torch.Tensor:
        if unit != self.baseline_name or name not in self.baseline:
            raise KeyError(f"no array {name!r} for batch {batch} unit {unit!r} was sent to this worker")
        return self.baseline[name]

    def write_unit(
        self,
        batch: int,
        unit: str,
        seconds: float,
        rows: list[dict[str, Any]],
        arrays: dict[str, torch.Tensor],
        info: dict[str, Any] | None = None,
    ) -> None:
        self.output = UnitOutput(batch, unit, seconds, rows, arrays, info)


def plan_units(cfg: JobConfig, preset: Any, interpreters: list[str], n_batches: int) -> list[Unit]:
    """Every unit of the job, in the local executor's order: per batch and threat, the baseline, then ADV² units."""
    units = []
    for b in range(n_batches):
        for tname in cfg.threats:
            settings = preset.for_threat(tname)
            threat = settings.create_threat()
            base = settings.baseline
            units.append(Unit(b, tname, threat.baseline, None, threat.baseline, base.n_warm + base.n_total))
            for name in interpreters:
                acfg = settings.for_interpreter(name)
                unit = f"{threat.adv2_name}-{name}"
                units.append(Unit(b, tname, unit, name, threat.baseline, acfg.n_warm + acfg.n_total))
    return units


def benign_map(ctx: UnitContext, interpreter: str, batch: Batch) -> torch.Tensor:
    """g(x; y) of one batch for one interpreter, as an ADV² unit computes it (same chunking), on the CPU.

    Shape: x (B, 3, H, W), y (B,) -> (B, 1, h, w).
    """
    from .chunking import explain_in_chunks, plan_chunk

    x, y = batch[0].to(ctx.device), batch[1].to(ctx.device)
    chunk = plan_chunk(len(x), ctx.max_memory, ctx.per_image.get(interpreter, 1), ctx.device)
    return explain_in_chunks(ctx.interps[interpreter], x, y, chunk).map.cpu()


def build_job_model(cfg: JobConfig) -> Any:
    """The model ``cfg`` names (registered name, checkpoint or user spec), as the runner builds it."""
    from ..models.user import ModelOptions, build_model

    options = ModelOptions(cfg.num_classes, cfg.input_size, cfg.mean, cfg.std, cfg.normalise)
    return build_model(cfg.model, weights=cfg.weights, options=options)
