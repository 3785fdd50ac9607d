"""Attack presets: the paper's Table 10 and calibrated presets for our models (YAML, ``kind: attack``).

A preset names the model it was set for and the ℓint reduction its λ assume (spec §6), and has one
block per threat (``linf``: ε, α; ``stadv``: τ, Adam) with the baseline's counts (PGD / regular
StAdv) and one :class:`AttackConfig` per interpreter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, check_finite, load_preset_dict, preset_names
from ..threats import THREATS, ThreatModel
from .config import AttackConfig


@dataclass(frozen=True)
class ThreatSettings:
    """One threat's block of a preset: its parameters, the baseline attack and ADV² per interpreter."""

    threat: str
    params: dict[str, Any]
    baseline: AttackConfig
    interpreters: dict[str, AttackConfig] = field(default_factory=dict)

    def for_interpreter(self, name: str) -> AttackConfig:
        if name not in self.interpreters:
            raise ConfigError(
                f"this preset's {self.threat} block has no settings for interpreter {name!r}; "
                f"it covers: {', '.join(self.interpreters)}"
            )
        return self.interpreters[name]

    def create_threat(self, config: AttackConfig | None = None) -> ThreatModel:
        """The threat with the block's parameters, updated by ``config.threat_options`` if given."""
        extra = config.threat_options if config is not None else {}
        return THREATS.create(self.threat, **{**self.params, **extra})


@dataclass(frozen=True)
class AttackPreset:
    """A named attack preset: one :class:`ThreatSettings` per threat it covers (``linf``, ``stadv``)."""

    name: str
    description: str
    model: str
    reduction: str
    threats: dict[str, ThreatSettings]
    interpreter_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: str = ""

    def for_threat(self, threat: str) -> ThreatSettings:
        THREATS.check(threat)
        if threat not in self.threats:
            raise ConfigError(f"preset {self.name} has no {threat!r} block; it covers: {', '.join(self.threats)}")
        return self.threats[threat]


def interpreter_defaults(model_name: str) -> dict[str, dict[str, Any]]:
    """Interpreter options of the calibrated preset named after ``model_name`` (empty if none)."""
    if model_name not in attack_preset_names():
        return {}
    return load_attack_preset(model_name).interpreter_options


def attack_preset_names() -> list[str]:
    return [n for n in preset_names() if load_preset_dict(n)["kind"] == "attack"]


def load_attack_preset(name: str, overrides: Sequence[str] = (), steps_scale: float = 1.0) -> AttackPreset:
    """Load and validate attack preset ``name``, after ``--steps-scale``/``--set`` (:mod:`.overrides`)."""
    data = dict(load_preset_dict(name))
    if overrides or steps_scale != 1.0:
        from .overrides import apply_overrides

        data = apply_overrides(data, overrides, steps_scale, THREATS.names())
    if data.pop("kind") != "attack":
        raise ConfigError(f"preset {name} is not an attack preset")
    allowed = {"description", "model", "int_loss_reduction", "interpreter_options", "notes", "map_sizes"}
    unknown = sorted(set(data) - allowed - set(THREATS.names()))
    if unknown:
        raise ConfigError(
            f"preset {name}: unknown field(s) {unknown}; allowed: {sorted(allowed)} and threat blocks {THREATS.names()}"
        )
    reduction = data.get("int_loss_reduction", "mean")
    if reduction not in ("mean", "sum"):
        raise ConfigError(f"preset {name}: int_loss_reduction must be 'mean' or 'sum', got {reduction!r}")
    options = data.get("interpreter_options") or {}
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ConfigError(f"preset {name}.interpreter_options: expected {{interpreter: {{option: value}}}}")
    check_finite(f"preset {name}.interpreter_options", options)
    threats = {
        th: _threat_settings(name, th, data[th], reduction) for th in THREATS.names() if data.get(th) is not None
    }
    if not threats:
        raise ConfigError(f"preset {name} has no threat block (one of {THREATS.names()})")
    return AttackPreset(
        name=name,
        description=data.get("description", ""),
        model=data.get("model", ""),
        reduction=reduction,
        threats=threats,
        interpreter_options=dict(data.get("interpreter_options") or {}),
        notes=data.get("notes", ""),
    )


def _threat_settings(preset: str, threat: str, block: dict[str, Any], reduction: str) -> ThreatSettings:
    from ..interpreters import INTERPRETERS

    if not isinstance(block, dict):
        raise ConfigError(f"preset {preset}.{threat}: expected a mapping (threat, baseline, interpreters)")
    unknown = sorted(set(block) - {"threat", "baseline", "interpreters"})
    if unknown:
        raise ConfigError(
            f"preset {preset}.{threat}: unknown field(s) {unknown}; allowed: threat, baseline, interpreters"
        )
    for key in ("threat", "interpreters"):
        if block.get(key) is not None and not isinstance(block[key], dict):
            raise ConfigError(f"preset {preset}.{threat}.{key}: expected a mapping, got {block[key]!r}")
    params = dict(block.get("threat") or {})
    check_finite(f"preset {preset}.{threat}.threat", params)
    try:
        THREATS.create(threat, **params)  # validate now, with the threat's own message
    except (TypeError, ValueError) as e:
        raise ConfigError(f"preset {preset}.{threat}.threat: {e}") from e
    interps = {}
    for iname, cfg in (block.get("interpreters") or {}).items():
        INTERPRETERS.check(iname)
        if not isinstance(cfg, dict):
            raise ConfigError(f"preset {preset}.{threat}.interpreters.{iname}: expected a mapping, got {cfg!r}")
        interps[iname] = AttackConfig.from_dict(
            {"reduction": reduction, **cfg}, source=f"preset {preset}.{threat}.{iname}"
        )
    if not isinstance(block.get("baseline"), dict):
        raise ConfigError(
            f"preset {preset}.{threat}: missing 'baseline' block (the baseline attack's n_warm, n_total, ...)"
        )
    baseline = AttackConfig.from_dict(block["baseline"], f"preset {preset}.{threat}.baseline")
    settings = ThreatSettings(threat, params, baseline, interps)
    for iname, cfg in interps.items():
        try:
            settings.create_threat(cfg)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"preset {preset}.{threat}.{iname}.threat_options: {e}") from e
    return settings
