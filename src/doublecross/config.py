"""Configuration as data: YAML presets shipped in the package, loaded into frozen dataclasses.

Validation errors name the bad field and the allowed values. Fields whose metadata names a
registry (``metadata={"choices": REGISTRY}``) are checked against it, so new registered names
are accepted without touching this file.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from importlib import resources
from typing import Any, TypeVar

from .safe_yaml import YamlError, load_yaml

C = TypeVar("C")


class ConfigError(ValueError):
    """A configuration field is unknown, missing or has a bad value."""


def check_finite(where: str, value: Any) -> None:
    """Reject NaN/inf anywhere in a value (floats, and inside lists/tuples/dicts)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value!r}")
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_finite(f"{where}[{i}]", v)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            check_finite(f"{where}.{k}", v)


def _check_type(cls_name: str, field: dataclasses.Field, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    bad = ConfigError(f"{cls_name}.{field.name}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        inner = args[0] if args else Any
        if inner is float:
            return tuple(float(v) for v in value)
        return tuple(value)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise bad
        return dict(value)
    return value


def from_dict(cls: type[C], data: Mapping[str, Any], source: str = "config") -> C:
    """Build the frozen dataclass ``cls`` from ``data``, validating every field.

    Raises:
        ConfigError: unknown or missing fields, wrong types, or values outside a field's
            ``choices`` (a Registry or a tuple), named in the message with the allowed values.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of fields, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {unknown}; allowed fields: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: missing required field {cls.__name__}.{name}")
            continue
        value = _check_type(cls.__name__, field, data[name], hints[name])
        check_finite(f"{cls.__name__}.{name}", value)
        choices = field.metadata.get("choices")
        if choices is not None and value is not None:
            allowed = list(choices)
            if value not in allowed:
                raise ConfigError(
                    f"{cls.__name__}.{name}: {value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}"
                )
        minimum = field.metadata.get("min")
        if minimum is not None and value is not None and value < minimum:
            raise ConfigError(f"{cls.__name__}.{name}: must be >= {minimum}, got {value!r}")
        maximum = field.metadata.get("max")
        if maximum is not None and value is not None and value > maximum:
            raise ConfigError(f"{cls.__name__}.{name}: must be <= {maximum}, got {value!r}")
        values[name] = value
    return cls(**values)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A YAML/JSON-friendly dict of a config dataclass (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


def preset_names() -> list[str]:
    """Names of the YAML presets shipped in ``doublecross/presets``."""
    folder = resources.files("doublecross") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> bytes:
    """The bytes of a shipped preset, or of a YAML file when ``name`` is a path to one."""
    import os

    if name.endswith((".yaml", ".yml")) and os.path.isfile(name):
        with open(name, "rb") as fh:
            return fh.read()
    names = preset_names()
    if name not in names:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(names)} (or a .yaml file)")
    return (resources.files("doublecross") / "presets" / f"{name}.yaml").read_bytes()


def preset_chain_text(name: str) -> bytes:
    """The bytes of ``name`` and of every preset it extends (its text alone when it extends none)."""
    return b"".join(preset_text(n) for n in preset_chain(name))


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``child`` over ``base``: mappings merge key by key (recursively), any other value replaces."""
    out = dict(base)
    for k, v in child.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _raw_preset(name: str) -> dict[str, Any]:
    try:
        data = load_yaml(preset_text(name), source=f"preset {name}")
    except YamlError as e:
        raise ConfigError(str(e)) from None
    if not isinstance(data, dict) or "kind" not in data:
        raise ConfigError(f"preset {name}: expected a mapping with a 'kind' field")
    return data


def preset_chain(name: str) -> list[str]:
    """``name`` and the presets it extends (``base: OTHER``), child first; a cycle is a ConfigError."""
    chain = [name]
    while (base := _raw_preset(chain[-1]).get("base")) is not None:
        if not isinstance(base, str):
            raise ConfigError(f"preset {chain[-1]}: base must be a preset name, got {base!r}")
        if base in chain:
            raise ConfigError(f"preset {name}: its bases form a cycle ({' -> '.join([*chain, base])})")
        chain.append(base)
    return chain


def load_preset_dict(name: str) -> dict[str, Any]:
    """The mapping of a shipped preset, or of a YAML file when ``name`` is a path to one.

    A preset with ``base: OTHER`` holds only what differs from preset ``OTHER``: its mappings are
    merged into OTHER's key by key (``linf: {interpreters: {grad: {lam: 300}}}`` changes one λ and
    keeps every other field), its other values replace OTHER's. The result has no ``base`` key.
    """
    data: dict[str, Any] = {}
    for n in reversed(preset_chain(name)):
        data = _merge(data, _raw_preset(n))
    data.pop("base", None)
    return data


def load_preset(cls: type[C], name: str, kind: str, overrides: Mapping[str, Any] | None = None) -> C:
    """Load preset ``name`` of ``kind`` into ``cls``, applying non-``None`` ``overrides``."""
    data = load_preset_dict(name)
    if data.pop("kind") != kind:
        raise ConfigError(f"preset {name} is not a {kind} preset")
    data.pop("description", None)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_dict(cls, data, source=f"preset {name}")
