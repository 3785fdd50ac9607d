"""ADV² (Zhang et al. 2020, arXiv:1812.00891, spec §4.1-4.6, §5) and its baseline, for any threat.

    stage 1 (n_warm):  v ← project(step(v, ∇_v Σ_b [w_prd·CE(z, t) + penalty(v)]))
    stage 2 (n_total): (z, map, aux) ← g(x, t) with graph     (one pass: logits and map)
                       L = Σ_b [w_prd·CE(z, t) + λ_k·ℓint(map, m_t) + Σ_i w_i·term_i + penalty(v)]
                       select(v);  v ← project(step(v, ∇_v L))

The threat decides what ``v``, ``step`` and ``penalty`` are: L∞ sign steps with an ε-ball (ADV²-PGD)
or a flow field with Adam and τ·L_flow (ADV²-StAdv); the threat's step rule restarts at each stage
and λ phase. The baseline (PGD / regular StAdv) is the same loop with λ = 0 and no interpreter
(``n_warm`` steps, then ``n_total``): it returns the last iterate. ADV² keeps, per sample, the
successful candidate whose evaluation map is closest to m_t: checked from the step's own forward
(``selection = "cheap"``: CAM, RTS) or by re-evaluating Q(x) every ``check_every`` steps
(``"exact"``: GRAD's true-ReLU map).
"""

from __future__ import annotations

from typing import Any

import torch

from .. import progress
from ..interpreters.base import Interpreter
from ..models.wrapper import Classifier
from . import ATTACKS
from .base import Attack
from .config import AttackConfig
from .early_stop import prediction_steps
from .losses import ce_loss, map_loss


class Selector:
    """Per-sample best successful candidate (smallest ℓint to the target map), kept as the threat's variable.

    With ``keep_eval`` (exact selection: every candidate is offered with the evaluation of its
    quantised image) the selector also keeps each sample's logits and map -- of its best
    candidate and of the latest offer -- so the attack's final evaluation of the selected image
    need not be recomputed (:meth:`evaluation`).
    """

    def __init__(self, v0: torch.Tensor, attack: Attack, keep_eval: bool = False) -> None:
        self.best = v0.detach().clone()
        self.dist = torch.full((v0.shape[0],), float("inf"), device=v0.device)
        self.found = torch.zeros(v0.shape[0], dtype=torch.bool, device=v0.device)
        self.taken = torch.zeros_like(self.found)  # samples whose best was set (NaN distances never are)
        self.attack = attack
        self.keep_eval = keep_eval
        self.best_eval: tuple[torch.Tensor, torch.Tensor] | None = None
        self.last_eval: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def offer(
        self, v: torch.Tensor, logits: torch.Tensor, amap: torch.Tensor, t: torch.Tensor, target_map: torch.Tensor
    ) -> None:
        ok = self.attack.is_success(logits.detach(), t)
        d = map_loss(amap.detach(), target_map, "mean")
        better = ok & (d < self.dist)
        self.best[better] = v.detach()[better]
        self.dist[better] = d[better]
        self.found |= ok
        self.taken |= better
        if self.keep_eval:
            if self.best_eval is None:
                self.best_eval = (logits.detach().clone(), amap.detach().clone())
            self.best_eval[0][better] = logits.detach()[better]
            self.best_eval[1][better] = amap.detach()[better]
            self.last_eval = (v.detach(), logits.detach(), amap.detach())

    def evaluation(self, last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(logits, map) of Q(x(``result(last)``)), or ``None`` when not all of it was evaluated.

        Valid when every offer evaluated the quantised candidate (exact selection) and the latest
        offer was ``last`` itself (the final check), which serves the samples with no success.
        """
        if not self.keep_eval or self.best_eval is None or self.last_eval is None:
            return None
        v, logits, amap = self.last_eval
        if v.shape != last.shape or not torch.equal(v, last.detach()) or bool((self.found & ~self.taken).any()):
            return None
        lg = torch.where(self.found.view(-1, 1), self.best_eval[0], logits)
        mp = torch.where(self.found.view((-1,) + (1,) * (amap.dim() - 1)), self.best_eval[1], amap)
        return lg, mp

    def result(self, last: torch.Tensor) -> torch.Tensor:
        """The best successful candidate, or the last iterate where none succeeded."""
        shape = (-1,) + (1,) * (last.dim() - 1)
        return torch.where(self.found.view(shape), self.best, last.detach())


def _grad(loss: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss, v)
    return g


class Adv2PGD(Attack):
    """ADV²-PGD against GRAD, CAM and RTS (and any interpreter with ``attack_kind = "adv2"``)."""

    name = "adv2"

    def warm_start(
        self, model: Classifier, x0: torch.Tensor, t: torch.Tensor, v: torch.Tensor, steps: int
    ) -> torch.Tensor:
        """``steps`` threat steps on the prediction loss (+ the threat's penalty) alone; a fresh step rule.

        With ``config.early_stop`` each sample stops at its first successful iterate (``early_stop.py``).
        """
        return prediction_steps(self, model, x0, t, v, steps, ce_loss, self.config.early_stop)

    def run(
        self,
        model: Classifier,
        interpreter: Interpreter | None,
        x0: torch.Tensor,
        t: torch.Tensor,
        target_map: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, Any]]]:
        cfg, th = self.config, self.threat
        assert interpreter is not None and target_map is not None
        v = self.warm_start(model, x0, t, th.init(x0), cfg.n_warm)
        sel = Selector(v, self, keep_eval=interpreter.selection == "exact")
        history: list[dict[str, Any]] = []
        state = None  # an interpreter's warm start, for those that carry one (an ensemble with MASK)
        for k in range(cfg.n_total):
            if cfg.phase_start(k):
                th.reset()  # a fresh optimiser for stage 2 and for each λ phase (StAdv's Adam)
            v = v.detach().requires_grad_(True)
            x = th.apply(x0, v)
            out = interpreter(x, t, state)
            if interpreter.carries_state and out.state is not None:
                state = out.state.detach()
            dist = interpreter.map_distance(out.map, target_map, cfg.reduction)
            loss = cfg.w_prd * ce_loss(out.logits, t) + cfg.lam_at(k) * dist + th.penalty(v)
            for name, term in interpreter.attack_terms(out, t).items():
                loss = loss + float(cfg.extra.get(name, 0.0)) * term
            g = _grad(loss.sum(), v)
            if interpreter.selection == "cheap":
                sel.offer(v, out.logits, out.map, t, target_map)
            elif k % cfg.check_every == 0:
                self._exact_check(sel, interpreter, x0, v, t, target_map)
            if self.history_every and k % self.history_every == 0:
                history.append(
                    {
                        "step": k,
                        "loss": float(loss.detach().sum()),
                        "int": float(dist.detach().mean()),
                        "success": float(self.is_success(out.logits.detach(), t).float().mean()),
                        "zero_grad": float((g == 0).float().mean()),
                    }
                )
            v = th.project(x0, th.step(v.detach(), g, k))
            progress.step()
        v = v.detach()
        self._exact_check(sel, interpreter, x0, v, t, target_map)
        self.evaluated = sel.evaluation(v)
        return sel.result(v), v, history

    def _exact_check(
        self,
        sel: Selector,
        interpreter: Interpreter,
        x0: torch.Tensor,
        v: torch.Tensor,
        t: torch.Tensor,
        target_map: torch.Tensor,
    ) -> None:
        xq = self.threat.quantise(x0, self.threat.apply(x0, v.detach()))
        ev = interpreter.explain(xq, t)
        sel.offer(v, ev.logits, ev.map, t, target_map)


class PGD(Adv2PGD):
    """The baseline: prediction loss (+ the threat's penalty) only, last iterate -- ADV² with λ = 0.

    Under L∞ this is targeted PGD; under StAdv it is regular StAdv (CE + τ·L_flow, Adam).
    """

    name = "pgd"
    uses_interpreter = False

    def run(
        self,
        model: Classifier,
        interpreter: Interpreter | None,
        x0: torch.Tensor,
        t: torch.Tensor,
        target_map: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, Any]]]:
        v = self.warm_start(model, x0, t, self.threat.init(x0), self.config.n_warm + self.config.n_total)
        return v, v, []


@ATTACKS.register("pgd")
def create_pgd(threat, config: AttackConfig, **kw: Any) -> PGD:  # type: ignore[no-untyped-def]
    """Baseline without interpreter: targeted PGD (L∞) or regular StAdv; CE (+ penalty), last iterate."""
    return PGD(threat, config, **kw)


@ATTACKS.register("adv2")
def create_adv2(threat, config: AttackConfig, **kw: Any) -> Adv2PGD:  # type: ignore[no-untyped-def]
    """ADV²: warm start on CE, then CE + λ·ℓint (+ interpreter terms), best-map selection."""
    return Adv2PGD(threat, config, **kw)
