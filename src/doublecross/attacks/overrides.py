"""Shorten or adjust an attack preset without retyping it: ``--steps-scale F`` and ``--set PATH=VALUE``.

Both act on the preset's raw mapping before it is validated, so every value still goes through
the preset's own checks. ``--steps-scale F`` multiplies every iteration count of every attack
(baseline and ADV², each threat): ``n_warm``, ``n_total`` and the lengths of ``piecewise``
phases, as ``n -> max(1, round(F·n))`` (0 stays 0). Cadences (``check_every``, ``n_reset``,
MASK's inner ``n_step``/``n_plain``/``n_bs``) and the interpreters' own settings are left alone:
they define the attack and the interpreter under audit, not the run's length.

``--set`` paths (``VALUE`` is parsed as YAML: ``50``, ``0.1``, ``true``, ``[1, 2]``, ``{a: 1}``):

- ``<threat>.<interpreter>.<field>``: an ADV² setting, e.g. ``linf.grad.n_total=50``
  (also ``<threat>.interpreters.<interpreter>.<field>``);
- ``<threat>.baseline.<field>``: the baseline (PGD / regular StAdv), e.g. ``linf.baseline.n_total=20``;
- ``<threat>.threat.<param>``: the threat's parameters, e.g. ``linf.threat.eps=0.0157``;
- a dict field's key, e.g. ``linf.rts.extra.encoder=0.2``;
- ``interpreter_options.<interpreter>.<option>``, e.g. ``interpreter_options.mask.steps=50``;
- ``int_loss_reduction``.

``--set`` is applied after ``--steps-scale``. An unknown threat, interpreter or field is a
:class:`ConfigError` naming the allowed ones.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Sequence
from typing import Any

import yaml

from ..config import ConfigError
from .config import AttackConfig

COUNT_FIELDS = ("n_warm", "n_total")
_TOP_LEVEL = ("int_loss_reduction",)


def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(AttackConfig)}


def scale_count(n: int, factor: float) -> int:
    """``max(1, round(factor·n))`` for n > 0; 0 stays 0."""
    return 0 if int(n) == 0 else max(1, round(factor * int(n)))


def _scale_attack(cfg: dict[str, Any], factor: float) -> dict[str, Any]:
    fields = _fields()
    out = dict(cfg)
    for name in COUNT_FIELDS:
        out[name] = scale_count(out.get(name, fields[name].default), factor)
    phases = cfg.get("phases")
    if phases:
        old_total = cfg.get("n_total", fields["n_total"].default)
        new = [[lam, scale_count(n, factor)] for lam, n in phases]
        out["phases"] = new
        if sum(int(n) for _, n in phases) == old_total:
            out["n_total"] = sum(n for _, n in new)
    return out


def scale_steps(data: dict[str, Any], factor: float, threats: Sequence[str]) -> dict[str, Any]:
    """A copy of the raw preset ``data`` with every attack's counts scaled by ``factor`` (> 0)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
        raise ConfigError(f"steps scale must be a number > 0, got {factor!r}")
    out = copy.deepcopy(data)
    for th in threats:
        block = out.get(th)
        if not isinstance(block, dict):
            continue
        block["baseline"] = _scale_attack(block.get("baseline") or {}, factor)
        interps = block.get("interpreters") or {}
        block["interpreters"] = {n: _scale_attack(c or {}, factor) for n, c in interps.items()}
    return out


def parse_set(item: str) -> tuple[list[str], Any]:
    """``"linf.grad.n_total=50"`` -> (``["linf", "grad", "n_total"]``, 50) (value parsed as YAML)."""
    if not isinstance(item, str) or "=" not in item:
        raise ConfigError(f"--set expects PATH=VALUE (e.g. linf.grad.n_total=50), got {item!r}")
    path, _, raw = item.partition("=")
    keys = [k.strip() for k in path.strip().split(".")]
    if not all(keys):
        raise ConfigError(f"--set {item!r}: empty path component")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: cannot parse the value: {e}") from e
    return keys, value


def _is_dict_field(f: dataclasses.Field) -> bool:
    return f.default_factory is not dataclasses.MISSING and isinstance(f.default_factory(), dict)


def _set_attack_field(cfg: dict[str, Any], rest: list[str], value: Any, where: str, item: str) -> None:
    fields = _fields()
    name = rest[0]
    if name not in fields:
        raise ConfigError(f"--set {item!r}: {where} has no field {name!r}; fields: {', '.join(sorted(fields))}")
    if len(rest) == 1:
        cfg[name] = value
    elif len(rest) == 2 and _is_dict_field(fields[name]):
        sub = dict(cfg.get(name) or {})
        sub[rest[1]] = value
        cfg[name] = sub
    else:
        raise ConfigError(f"--set {item!r}: {where}.{name} takes no sub-key {'.'.join(rest[1:])!r}")


def _interpreter_option_names(interp: str) -> set[str] | None:
    from ..interpreters import INTERPRETERS

    try:
        params = inspect.signature(INTERPRETERS.get(interp)).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params} - {"model"}


def apply_set(data: dict[str, Any], item: str, threats: Sequence[str]) -> dict[str, Any]:
    """A copy of raw preset ``data`` with one ``--set PATH=VALUE`` applied (module doc)."""
    from ..interpreters import INTERPRETERS

    keys, value = parse_set(item)
    out = copy.deepcopy(data)
    head = keys[0]
    if head in _TOP_LEVEL and len(keys) == 1:
        out[head] = value
        return out
    if head == "interpreter_options":
        if len(keys) != 3:
            raise ConfigError(f"--set {item!r}: expected interpreter_options.<interpreter>.<option>=VALUE")
        interp, opt = keys[1], keys[2]
        INTERPRETERS.check(interp)
        allowed = _interpreter_option_names(interp)
        if allowed is not None and opt not in allowed:
            raise ConfigError(f"--set {item!r}: interpreter {interp} has no option {opt!r}; options: {sorted(allowed)}")
        opts = dict(out.get("interpreter_options") or {})
        opts[interp] = {**(opts.get(interp) or {}), opt: value}
        out["interpreter_options"] = opts
        return out
    if head not in threats:
        raise ConfigError(
            f"--set {item!r}: unknown first component {head!r}; use a threat ({', '.join(threats)}), "
            f"interpreter_options or {', '.join(_TOP_LEVEL)}"
        )
    block = out.get(head)
    if not isinstance(block, dict):
        present = [t for t in threats if isinstance(out.get(t), dict)]
        raise ConfigError(f"--set {item!r}: this preset has no {head} block; it has: {', '.join(present)}")
    if len(keys) < 3:
        raise ConfigError(f"--set {item!r}: expected {head}.<interpreter|baseline|threat>.<field>=VALUE")
    section, rest = keys[1], keys[2:]
    if section == "interpreters":
        if len(rest) < 2:
            raise ConfigError(f"--set {item!r}: expected {head}.interpreters.<interpreter>.<field>=VALUE")
        section, rest = rest[0], rest[1:]
    if section == "threat":
        if len(rest) != 1:
            raise ConfigError(f"--set {item!r}: expected {head}.threat.<parameter>=VALUE")
        block["threat"] = {**(block.get("threat") or {}), rest[0]: value}  # checked by the threat itself
    elif section == "baseline":
        cfg = dict(block.get("baseline") or {})
        _set_attack_field(cfg, rest, value, f"{head}.baseline", item)
        block["baseline"] = cfg
    else:
        interps = dict(block.get("interpreters") or {})
        if section not in interps:
            raise ConfigError(
                f"--set {item!r}: the preset's {head} block has no interpreter {section!r}; "
                f"it has: {', '.join(interps)} (or use baseline / threat)"
            )
        cfg = dict(interps[section] or {})
        _set_attack_field(cfg, rest, value, f"{head}.{section}", item)
        interps[section] = cfg
        block["interpreters"] = interps
    return out


def apply_overrides(
    data: dict[str, Any], sets: Sequence[str] = (), steps_scale: float = 1.0, threats: Sequence[str] = ()
) -> dict[str, Any]:
    """Raw preset ``data`` with ``steps_scale`` then every ``--set`` applied (a copy; ``data`` is untouched)."""
    out = scale_steps(data, steps_scale, threats) if steps_scale != 1.0 else copy.deepcopy(data)
    for item in sets:
        out = apply_set(out, item, threats)
    return out
