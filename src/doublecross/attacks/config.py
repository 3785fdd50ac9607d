"""Attack configuration: one frozen dataclass per (interpreter, threat) attack."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import from_dict

SCHEDULES = ("constant", "ramp", "piecewise")


@dataclass(frozen=True)
class AttackConfig:
    """Parameters of ADV²-PGD (spec §4) and of the PGD baseline (λ = 0).

    Attributes:
        n_warm: stage-1 steps on the prediction loss alone.
        n_total: stage-2 steps (ADV²) or PGD steps.
        lam: λ, the weight of ℓint (0 = PGD).
        schedule: ``constant``, ``ramp`` (λ → 2λ over the run) or ``piecewise`` (``phases``).
        phases: ``[[λ1, n1], [λ2, n2], ...]`` for ``piecewise``.
        reduction: ℓint over cells, ``mean`` (ours) or ``sum`` (the paper's λ).
        extra: weights of interpreter-specific terms, e.g. ``{"encoder": 0.1}`` (RTS λ2).
        kappa_sel: success also needs p_t ≥ κ_sel.
        check_every: selection cadence for interpreters whose candidates need an exact check.
        n_step, n_plain, n_reset, alpha_max, n_bs, kappa_bs, beta: MASK's bilevel attack (§4.7).
    """

    n_warm: int = field(default=300, metadata={"min": 0})
    n_total: int = field(default=1000, metadata={"min": 0})
    lam: float = field(default=0.0, metadata={"min": 0.0})
    schedule: str = field(default="constant", metadata={"choices": SCHEDULES})
    phases: tuple = ()
    reduction: str = field(default="mean", metadata={"choices": ("mean", "sum")})
    extra: dict = field(default_factory=dict)
    kappa_sel: float = field(default=0.0, metadata={"min": 0.0})
    check_every: int = field(default=10, metadata={"min": 1})
    n_step: int = field(default=4, metadata={"min": 0})
    n_plain: int = field(default=4, metadata={"min": 0})
    n_reset: int = field(default=50, metadata={"min": 1})
    alpha_max: float = field(default=0.08, metadata={"min": 0.0})
    n_bs: int = field(default=12, metadata={"min": 0})
    kappa_bs: float = 10.0
    beta: float = field(default=0.05, metadata={"min": 0.0})

    @classmethod
    def from_dict(cls, data: dict, source: str = "attack config") -> AttackConfig:
        return from_dict(cls, data, source=source)

    def lam_at(self, k: int) -> float:
        """λ_k for stage-2 step ``k`` (0-based)."""
        if self.schedule == "constant":
            return self.lam
        if self.schedule == "ramp":
            return self.lam * (1 + k / max(1, self.n_total))
        done = 0
        for lam, n in self.phases:
            done += int(n)
            if k < done:
                return float(lam)
        return float(self.phases[-1][0]) if self.phases else self.lam
