"""Attack configuration: one frozen dataclass per (interpreter, threat) attack."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import ConfigError, from_dict

SCHEDULES = ("constant", "ramp", "piecewise")
OUTER_STEPS = ("bisect", "joint")
BISECTIONS = ("full", "bracket")
WARM_LOSSES = ("ce", "margin")
#: Named ADV²-MASK cost presets (issue 15): the fields each sets, replacing the preset's values
#: (``attacks/mask_cost.py``; measured cost and quality in the README). ``spec`` changes nothing.
COST_PRESETS: dict[str, dict] = {
    "spec": {},
    "paper-fast": {"bisection": "bracket", "reset_steps": 20, "n_plain": 0},
}


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
        w_prd: weight of the prediction loss ℓprd (StAdv-CAM: 2).
        warm_loss: the stage-1 loss, ``ce`` or ``margin`` (MASK under L∞).
        outer: MASK's outer update: ``bisect`` (margin step + step-size bisection, §4.7) or
            ``joint`` (one threat step on λ·mean_j D_j + Σ max(M, margin_floor) + penalty, §5).
        margin_floor: the hinge of the margin term in the ``joint`` update (-5).
        inner_lr: MASK's inner Adam learning rate in the attack (``None``: the interpreter's own).
        threat_options: per-interpreter overrides of the threat's parameters (StAdv-MASK: lr 0.005).
        bisection: MASK's step-size search: ``full`` (spec §4.7: n_bs halvings of [0, α_max]) or
            ``bracket`` (labelled deviation, spec §11: start from twice the sample's previous step,
            ``n_bracket`` tests, forwarding only the undecided samples; ``attacks/mask_cost.py``).
        n_bracket: tests of the ``bracket`` search (the first one at the bracket's top).
        reset_steps: MASK's resets inside the loop: ``None`` = full runs from m = 0.5 (spec), or
            warm resets of this many inner steps from the running mask on Q(x) (labelled deviation;
            the start-up and final resets stay full, and the selected candidate is re-checked with a
            full run against the last iterate's -- ``attacks/mask_cost.py``).
        early_stop: stage 1 and the baseline stop each sample at its first successful iterate
            (off: the paper's fixed step counts; ``attacks/early_stop.py``).
        cost: a named MASK cost preset (``COST_PRESETS``): ``spec`` (default, spec §4.7 as written) or
            ``paper-fast`` (``bisection: bracket``, ``reset_steps: 20``, ``n_plain: 0``: labelled
            deviations, spec §11). Its fields replace the preset's own values when the config is read
            (``from_dict``), so ``--set linf.mask.cost=paper-fast`` switches a preset to it.
    """

    n_warm: int = field(default=300, metadata={"min": 0})
    n_total: int = field(default=1000, metadata={"min": 0})
    lam: float = field(default=0.0, metadata={"min": 0.0})
    schedule: str = field(default="constant", metadata={"choices": SCHEDULES})
    phases: tuple = ()
    reduction: str = field(default="mean", metadata={"choices": ("mean", "sum")})
    extra: dict = field(default_factory=dict)
    kappa_sel: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    check_every: int = field(default=10, metadata={"min": 1})
    n_step: int = field(default=4, metadata={"min": 0})
    n_plain: int = field(default=4, metadata={"min": 0})
    n_reset: int = field(default=50, metadata={"min": 1})
    alpha_max: float = field(default=0.08, metadata={"min": 0.0})
    n_bs: int = field(default=12, metadata={"min": 0})
    kappa_bs: float = 10.0
    beta: float = field(default=0.05, metadata={"min": 0.0})
    w_prd: float = field(default=1.0, metadata={"min": 0.0})
    warm_loss: str = field(default="ce", metadata={"choices": WARM_LOSSES})
    outer: str = field(default="bisect", metadata={"choices": OUTER_STEPS})
    margin_floor: float = -5.0
    inner_lr: float | None = None
    threat_options: dict = field(default_factory=dict)
    bisection: str = field(default="full", metadata={"choices": BISECTIONS})
    n_bracket: int = field(default=3, metadata={"min": 1})
    reset_steps: int | None = field(default=None, metadata={"min": 1})
    early_stop: bool = False
    cost: str = field(default="spec", metadata={"choices": tuple(COST_PRESETS)})

    def __post_init__(self) -> None:
        for name, w in self.extra.items():
            if not isinstance(name, str) or isinstance(w, bool) or not isinstance(w, (int, float)):
                raise ConfigError(f"AttackConfig.extra: expected {{term name: weight}}, got {name!r}: {w!r}")
        for i, phase in enumerate(self.phases):
            ok = isinstance(phase, (list, tuple)) and len(phase) == 2
            lam, n = (phase if ok else (None, None))
            if not (ok and isinstance(lam, (int, float)) and not isinstance(lam, bool) and lam >= 0):
                raise ConfigError(f"AttackConfig.phases[{i}]: expected [lambda >= 0, steps], got {phase!r}")
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ConfigError(f"AttackConfig.phases[{i}]: the step count must be an integer >= 0, got {n!r}")
        if self.schedule == "piecewise" and not self.phases:
            raise ConfigError("AttackConfig.phases: the piecewise schedule needs [[lambda, steps], ...]")

    @classmethod
    def from_dict(cls, data: dict, source: str = "attack config") -> AttackConfig:
        named = COST_PRESETS.get(data.get("cost", "spec")) if isinstance(data, dict) else None
        if named:
            data = {**data, **named}
        try:
            return from_dict(cls, data, source=source)
        except ConfigError as e:
            msg = str(e)
            raise ConfigError(msg if msg.startswith(source) else f"{source}: {msg}") from None

    def phase_start(self, k: int) -> bool:
        """Whether stage-2 step ``k`` opens a λ phase (a fresh optimiser starts there)."""
        if k == 0:
            return True
        if self.schedule != "piecewise":
            return False
        done = 0
        for _, n in self.phases[:-1]:
            done += int(n)
            if k == done:
                return True
        return False

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
