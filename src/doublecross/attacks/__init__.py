"""Attacks, registered by name: ``pgd``, ``adv2`` (GRAD, CAM, RTS), ``adv2-bilevel`` (MASK)."""

from ..registry import Registry

ATTACKS: Registry = Registry("attack")

from . import adv2, adv2_bilevel  # noqa: E402,F401  (register)
from .base import Attack, AttackResult  # noqa: E402
from .config import AttackConfig  # noqa: E402

__all__ = ["ATTACKS", "Attack", "AttackConfig", "AttackResult"]
