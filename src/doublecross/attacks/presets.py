"""Attack presets: the paper's Table 10 and calibrated presets for our models (YAML, ``kind: attack``).

A preset names the model it was set for, the threat (ε, α), the PGD baseline's counts and one
:class:`AttackConfig` per interpreter, plus the ℓint reduction its λ assume (spec §6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, load_preset_dict, preset_names
from .config import AttackConfig


@dataclass(frozen=True)
class AttackPreset:
    name: str
    description: str
    model: str
    reduction: str
    threat: dict[str, Any]
    pgd: AttackConfig
    interpreters: dict[str, AttackConfig] = field(default_factory=dict)
    interpreter_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: str = ""

    def for_interpreter(self, name: str) -> AttackConfig:
        if name not in self.interpreters:
            raise ConfigError(
                f"preset {self.name} has no settings for interpreter {name!r}; "
                f"it covers: {', '.join(self.interpreters)}"
            )
        return self.interpreters[name]


def interpreter_defaults(model_name: str) -> dict[str, dict[str, Any]]:
    """Interpreter options of the calibrated preset named after ``model_name`` (empty if none)."""
    if model_name not in attack_preset_names():
        return {}
    return load_attack_preset(model_name).interpreter_options


def attack_preset_names() -> list[str]:
    return [n for n in preset_names() if load_preset_dict(n)["kind"] == "attack"]


def load_attack_preset(name: str) -> AttackPreset:
    """Load and validate attack preset ``name``."""
    data = dict(load_preset_dict(name))
    if data.pop("kind") != "attack":
        raise ConfigError(f"preset {name} is not an attack preset")
    allowed = {
        "description",
        "model",
        "int_loss_reduction",
        "threat",
        "pgd",
        "interpreters",
        "interpreter_options",
        "notes",
        "map_sizes",
    }
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"preset {name}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    reduction = data.get("int_loss_reduction", "mean")
    if reduction not in ("mean", "sum"):
        raise ConfigError(f"preset {name}: int_loss_reduction must be 'mean' or 'sum', got {reduction!r}")
    from ..interpreters import INTERPRETERS

    interps = {}
    for iname, cfg in (data.get("interpreters") or {}).items():
        INTERPRETERS.check(iname)
        interps[iname] = AttackConfig.from_dict({"reduction": reduction, **cfg}, source=f"preset {name}.{iname}")
    return AttackPreset(
        name=name,
        description=data.get("description", ""),
        model=data.get("model", ""),
        reduction=reduction,
        threat=dict(data.get("threat") or {}),
        pgd=AttackConfig.from_dict(data.get("pgd") or {}, f"preset {name}.pgd"),
        interpreters=interps,
        interpreter_options=dict(data.get("interpreter_options") or {}),
        notes=data.get("notes", ""),
    )
