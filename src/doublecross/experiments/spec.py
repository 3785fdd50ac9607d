"""Experiment specs for ``doublecross reproduce`` (spec §9): YAML data shipped in ``experiments/specs``.

An experiment names the attack *runs* it reads (``runs.yaml``: threats and target-map mode per
run), the cheap *passes* over stored results (``transfer``), and the tables, figures and spec-§12
claims it reports. ``all`` is the union of every experiment; each run is computed once.

The defence experiments (``detect``, ``ensemble``, ``aid``: spec §9 "Detection" and "Countermeasures")
read the shared ``linf-benign`` run; their ``options`` (held-out sizes, ensemble members, AID schedule)
are given in their YAML. ``all`` leaves them out: the adaptive ensemble attack and AID training cost
more than the paper's attack experiments together; name them explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from ..config import ConfigError, from_dict
from ..data.targets import TARGET_MAP_MODES

EXPERIMENTS = ("q1", "q2", "q4", "stadv", "transfer")
DEFENCE_EXPERIMENTS = ("detect", "ensemble", "aid")  # not part of ``all`` (see module doc)
KNOWN = (*EXPERIMENTS, *DEFENCE_EXPERIMENTS)


@dataclass(frozen=True)
class RunSpec:
    """One attack job shared by experiments: its threats and target-map mode.

    ``preset_variant``: the run uses preset ``<preset>-<variant>`` where one is shipped (``q4``:
    ``scenes-resnet-q4``, ``table10-resnet50-q4``, the λ calibrated for arbitrary targets), else ``<preset>``.
    """

    name: str
    threats: tuple[str, ...]
    target_map: str = "benign"
    share_baseline: str | None = None
    preset_variant: str | None = None

    def __post_init__(self) -> None:
        if self.target_map not in TARGET_MAP_MODES:
            raise ConfigError(f"run {self.name}: target_map {self.target_map!r} not in {TARGET_MAP_MODES}")


@dataclass(frozen=True)
class ExperimentSpec:
    """One of the paper's questions: runs, passes, tables, figures and the claims it tests."""

    name: str
    title: str
    question: str
    runs: tuple[str, ...]
    tables: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    claims: tuple[int, ...] = ()
    passes: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)  # keyword options of the passes (defences)


def _read(name: str) -> dict:
    path = resources.files("doublecross") / "experiments" / "specs" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown experiment {name!r}; choose one of: {', '.join(KNOWN)}, all")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ConfigError(f"experiment spec {name}: expected a mapping")
    return data


def load_runs() -> dict[str, RunSpec]:
    """The shared runs of ``runs.yaml``, by name."""
    data = _read("runs")
    if data.pop("kind", None) != "runs":
        raise ConfigError("runs.yaml: expected kind: runs")
    return {n: from_dict(RunSpec, {"name": n, **d}, source=f"run {n}") for n, d in data["runs"].items()}


def load_experiment(name: str) -> ExperimentSpec:
    """Load and validate the experiment spec ``name`` (its runs must exist in ``runs.yaml``)."""
    if name not in KNOWN:
        raise ConfigError(f"unknown experiment {name!r}; choose one of: {', '.join(KNOWN)}, all")
    data = _read(name)
    if data.pop("kind", None) != "experiment":
        raise ConfigError(f"experiment spec {name}: expected kind: experiment")
    spec = from_dict(ExperimentSpec, data, source=f"experiment {name}")
    runs = load_runs()
    missing = [r for r in spec.runs if r not in runs]
    if missing:
        raise ConfigError(f"experiment {name}: unknown run(s) {missing}; runs.yaml has {sorted(runs)}")
    return spec


def resolve(name: str) -> list[ExperimentSpec]:
    """``all`` -> every experiment in order; otherwise the one named."""
    return [load_experiment(n) for n in (EXPERIMENTS if name == "all" else (name,))]
