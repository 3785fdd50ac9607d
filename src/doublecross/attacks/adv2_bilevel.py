"""ADV² against MASK: the bilevel approximation (spec §4.7).

The map solves an inner problem m*(x) = argmin_m L_MASK(m; x, t). ADV² keeps a running mask m
with its Adam state S and, per iteration i:

    reset (i > 0, i mod n_reset = 0): x_q ← Q(x); (m, S) ← full MASK run on x_q; select(x_q)
    (a) margin step:   r ← Π(r - β·d/‖d‖₂),  d = ∇_r Σ_b M(z(x° + r), t)
    (b) n_plain inner Adam steps on m (no graph)
    (c) n_step unrolled inner steps (functional Adam, create_graph): D_j = mean((1 - m_j) - m_t)²
        ĥ = ∇_r Σ_b mean_j D_j, normalised per sample to unit L2
    (d) per-sample bisection on the step size a ∈ [0, α_max] (n_bs halvings): the largest tested a
        with z_t - max_{j≠t} z_j > κ_bs at Π(r - a·ĥ);   r ← Π(r - a*·ĥ)

With ``outer = "joint"`` (ADV²-StAdv, spec §5) steps (a) and (d) become one threat step (Adam on
the flow) on   λ·mean_j D_j + Σ_b max(M(z(x_r), t), margin_floor) + penalty(r),
computed through the unrolled steps, with no bisection.

Stage 1 is ``n_warm`` threat steps on ``warm_loss`` (margin under L∞, CE under StAdv) plus the
threat's penalty. Decisions are per sample (the authors' batch-summed bisection is a bug, spec
§10). The interpreter supplies the inner machinery (``MaskInterpreter.run``); the threat supplies
the step rule, projection and quantisation.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import progress
from ..interpreters.base import Interpreter
from ..models.wrapper import Classifier
from . import ATTACKS
from .adv2 import Selector, _grad
from .base import Attack
from .config import AttackConfig
from .early_stop import prediction_steps
from .losses import ce_loss, map_loss, margin_loss
from .mask_cost import bracket_step_size, recheck, warm_reset

WARM_LOSSES = {"ce": ce_loss, "margin": margin_loss}


def _unit(d: torch.Tensor) -> torch.Tensor:
    return d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)


class Adv2Bilevel(Attack):
    """ADV²-PGD against an interpreter defined by an inner optimisation (MASK)."""

    name = "adv2-bilevel"

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
        gen = torch.Generator().manual_seed(self.seed)
        r = prediction_steps(self, model, x0, t, th.init(x0), cfg.n_warm, WARM_LOSSES[cfg.warm_loss], cfg.early_stop)
        th.reset()
        exact = cfg.reset_steps is None  # full resets: every candidate is a full MASK run on Q(x)
        sel = Selector(r, self, keep_eval=exact)
        state = self._reset(interpreter, sel, x0, r, t, target_map, gen)
        self._a_prev: torch.Tensor | None = None
        history: list[dict[str, Any]] = []
        for i in range(cfg.n_total):
            if i > 0 and i % cfg.n_reset == 0:
                state = self._reset(interpreter, sel, x0, r, t, target_map, gen, state=None if exact else state)
            if cfg.outer == "bisect":  # (a) normalised margin step
                rg = r.requires_grad_(True)
                d = _grad(margin_loss(model(th.apply(x0, rg)), t).sum(), rg)
                r = th.project(x0, r.detach() - cfg.beta * _unit(d))
            # (b) plain inner steps
            x = th.apply(x0, r)
            state = interpreter.run(x, t, state, cfg.n_plain, 0, gen, lr=cfg.inner_lr)
            # (c) unrolled inner steps, meta-gradient to r
            rg = r.detach().requires_grad_(True)
            xg = th.apply(x0, rg)
            dists: list[torch.Tensor] = []
            st = interpreter.run(
                xg, t, state, 0, cfg.n_step, gen, lr=cfg.inner_lr,
                on_step=lambda s, acc=dists: acc.append(map_loss(1 - s.m, target_map, cfg.reduction)),
            )  # fmt: skip
            dist = torch.stack(dists).mean(0) if dists else None
            if cfg.outer == "joint":  # (a + d) one threat step on the joint loss
                loss = th.penalty(rg) + margin_loss(model(xg), t).clamp_min(cfg.margin_floor)
                if dist is not None:
                    loss = loss + cfg.lam_at(i) * dist
                r = th.project(x0, th.step(r.detach(), _grad(loss.sum(), rg), i))
                state = st.detach()
            elif dist is not None:  # (d) bisection along the normalised meta-gradient
                h = _unit(_grad(dist.sum(), rg))
                state = st.detach()
                r = self._bisect(model, x0, r.detach(), h, t)
            r = r.detach()
            if self.history_every and i % self.history_every == 0:
                history.append({"step": i, "int": float(dist.detach().mean()) if dist is not None else 0.0})
            progress.step()
        self._reset(interpreter, sel, x0, r, t, target_map, gen)
        if exact:
            self.evaluated = sel.evaluation(r)
            return sel.result(r), r, history
        assert self._last_eval is not None
        best, self.evaluated = recheck(self, interpreter, x0, sel.result(r), r, self._last_eval, t, target_map)
        return best, r, history

    def _reset(
        self,
        interpreter: Any,
        sel: Selector,
        x0: torch.Tensor,
        r: torch.Tensor,
        t: torch.Tensor,
        target_map: torch.Tensor,
        gen: torch.Generator,
        state: Any = None,
    ) -> Any:
        """Full MASK run on the quantised image (a warm one from ``state`` if given); offer it; return its state."""
        xq = self.threat.quantise(x0, self.threat.apply(x0, r.detach()))
        if state is not None:
            state, logits, amap = warm_reset(
                interpreter, xq, t, state, self.config.reset_steps, gen, self.config.inner_lr
            )
            sel.offer(r, logits, amap, t, target_map)
            return state
        ev = interpreter.explain(xq, t)
        sel.offer(r, ev.logits, ev.map, t, target_map)
        self._last_eval = (ev.logits, ev.map)
        return ev.state

    @torch.no_grad()
    def _bisect(
        self, model: Classifier, x0: torch.Tensor, r: torch.Tensor, h: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Per-sample bisection of the step along -h keeping the margin above κ_bs."""
        cfg, th = self.config, self.threat
        if cfg.bisection == "bracket":
            a = bracket_step_size(model, th, x0, r, h, t, self._a_prev, cfg.alpha_max, cfg.kappa_bs, cfg.n_bracket)
            self._a_prev = a
            return th.project(x0, r - a.view(-1, 1, 1, 1) * h)
        b = r.shape[0]
        lo = torch.zeros(b, device=r.device)
        hi = torch.full((b,), cfg.alpha_max, device=r.device)
        best = torch.zeros(b, device=r.device)
        for _ in range(cfg.n_bs):
            mid = (lo + hi) / 2
            cand = th.project(x0, r - mid.view(-1, 1, 1, 1) * h)
            keep = -margin_loss(model(th.apply(x0, cand)), t) > cfg.kappa_bs
            lo, best = torch.where(keep, mid, lo), torch.where(keep, mid, best)
            hi = torch.where(keep, hi, mid)
        return th.project(x0, r - best.view(-1, 1, 1, 1) * h)


@ATTACKS.register("adv2-bilevel")
def create_adv2_bilevel(threat, config: AttackConfig, **kw: Any) -> Adv2Bilevel:  # type: ignore[no-untyped-def]
    """ADV² against MASK: margin steps, unrolled inner Adam, per-sample step bisection."""
    return Adv2Bilevel(threat, config, **kw)
