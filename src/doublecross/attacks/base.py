"""The attack skeleton (foolbox's ``attacks/base.py``): a final ``__call__`` that validates,
never mutates its input, restores model modes and packages the result; ``run`` in subclasses.

Every returned image is re-checked after 8-bit quantisation: success and map are recomputed on
the image a user would save.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, final

import torch

from ..interpreters.base import Interpreter, Target, as_targets
from ..models.wrapper import Classifier, check_images
from ..numerics import flush_denormal
from ..threats.base import ThreatModel
from .config import AttackConfig


@dataclass
class AttackResult:
    """Outcome of an attack on a batch.

    Attributes:
        x_adv: quantised adversarial images (B, 3, H, W) on the 8-bit grid.
        success: (B,) bool, argmax z(x_adv) = t and p_t ≥ κ_sel.
        logits: (B, C) at ``x_adv``.
        target: (B,) target classes.
        map: evaluation map of ``x_adv`` for ``t`` (B, 1, h, w), or ``None`` without interpreter.
        size: perturbation sizes, e.g. ``{"linf": (B,), "l2": (B,)}`` (StAdv adds flow measures).
        perturbation: the threat's variable of the selected iterate (L∞ offset (B, 3, H, W),
            StAdv flow (B, 2, H, W) in pixels).
        last: the last iterate before selection (unquantised), for tests and diagnostics.
        history: optional records every ``history_every`` steps.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    logits: torch.Tensor
    target: torch.Tensor
    map: torch.Tensor | None = None
    size: dict[str, torch.Tensor] = field(default_factory=dict)
    perturbation: torch.Tensor | None = None
    last: torch.Tensor | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def check_extra_terms(config: AttackConfig, interpreter: Interpreter) -> None:
    """Refuse ``config.extra`` weights for terms the interpreter does not have (they would be ignored)."""
    unknown = sorted(set(config.extra) - set(getattr(interpreter, "attack_term_names", ())))
    if unknown:
        have = ", ".join(interpreter.attack_term_names) or "none"
        raise ValueError(f"extra: unknown term(s) {unknown} for interpreter {interpreter.name!r} (its terms: {have})")


class Attack:
    """Base class: subclasses implement :meth:`run`.

    Args:
        threat: the perturbation model.
        config: attack parameters.
        history_every: record (loss, success, distance) every N steps (0 = off).
        seed: seed of the attack's own randomness (MASK jitter).
    """

    name = "attack"
    uses_interpreter = True

    def __init__(self, threat: ThreatModel, config: AttackConfig, history_every: int = 0, seed: int = 0) -> None:
        self.threat, self.config, self.history_every, self.seed = threat, config, history_every, seed
        #: Set by ``run`` when it already evaluated the interpreter on the returned selection's
        #: quantised image: ``(logits (B, C), map (B, 1, h, w))``; ``__call__`` then reuses it.
        self.evaluated: tuple[torch.Tensor, torch.Tensor] | None = None

    def run(
        self,
        model: Classifier,
        interpreter: Interpreter | None,
        x0: torch.Tensor,
        t: torch.Tensor,
        target_map: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, Any]]]:
        """Return ``(best, last, history)`` in the threat's variable: the selected iterate and the last one.

        May set ``self.evaluated`` to the interpreter's ``(logits, map)`` at ``Q(apply(x0, best))``
        (exact selection evaluates every candidate anyway), sparing ``__call__`` that evaluation.
        """
        raise NotImplementedError

    @final
    def __call__(
        self,
        model: Classifier,
        x: torch.Tensor,
        target: Target,
        interpreter: Interpreter | None = None,
        target_map: torch.Tensor | None = None,
    ) -> AttackResult:
        """Attack ``x`` (B, 3, H, W) in [0, 1] towards ``target``; ``target_map`` (B, 1, h, w) for ADV²."""
        check_images(x)
        if self.uses_interpreter and interpreter is None:
            raise ValueError(f"{self.name} needs an interpreter")
        if interpreter is not None and interpreter.model is not model:
            raise ValueError("the interpreter must be built on the attacked model")
        t = as_targets(target, x.shape[0], model.num_classes, x.device)
        if self.uses_interpreter:
            if target_map is None:
                raise ValueError(f"{self.name} needs a target map (B, 1, h, w)")
            expected = (x.shape[0], 1, *interpreter.native_size(*x.shape[-2:]))
            if tuple(target_map.shape) != expected:
                raise ValueError(f"target_map must have shape {expected}, got {tuple(target_map.shape)}")
            if not bool(torch.isfinite(target_map).all()):
                bad = (~torch.isfinite(target_map)).flatten(1).any(1).nonzero().flatten().tolist()
                raise ValueError(f"target_map has NaN/inf values (samples {bad}); it would turn ADV² into PGD")
            if float(target_map.min()) < 0 or float(target_map.max()) > 1:
                raise ValueError("target_map values must lie in [0, 1]")
            check_extra_terms(self.config, interpreter)
            target_map = target_map.detach().to(x.dtype)
        modes = [(m, m.training) for m in ([model] + ([interpreter] if interpreter is not None else []))]
        x0 = (torch.round(x.detach() * 255) / 255).clone()  # the benign image, on the 8-bit grid
        self.evaluated = None
        try:
            with flush_denormal(), torch.enable_grad():
                best, last, history = self.run(model, interpreter, x0, t, target_map)
            best, last = best.detach(), last.detach()
            x_adv = self.threat.quantise(x0, self.threat.apply(x0, best))
            if interpreter is not None and self.evaluated is not None:
                logits, amap = self.evaluated  # the selection already evaluated Q(x(best))
            elif interpreter is not None:
                ev = interpreter.explain(x_adv, t)
                logits, amap = ev.logits, ev.map
            else:
                with torch.no_grad():
                    logits, amap = model(x_adv), None
            success = self.is_success(logits, t)
            size = self.threat.size(x0, x_adv, best)
            return AttackResult(x_adv, success, logits, t, amap, size, best, self.threat.apply(x0, last), history)
        finally:
            for m, mode in modes:
                m.train(mode)

    def is_success(self, logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(B,) bool: argmax = t and p_t ≥ κ_sel."""
        p_t = torch.softmax(logits, 1).gather(1, t[:, None])[:, 0]
        return (logits.argmax(1) == t) & (p_t >= self.config.kappa_sel)
