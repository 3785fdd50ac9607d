"""Stage 1 / the baseline: threat steps on the prediction loss, with an optional per-sample early stop.

    v ← project(step(v, ∇_v Σ_b [w_prd·loss(z(x(v)), t) + penalty(v)]))     for ``steps`` steps

With ``early_stop`` (issue 15, off by default so the paper protocol keeps its fixed step counts) a
sample stops at the first iterate that already succeeds (argmax z = t and p_t ≥ κ_sel, judged on
that iterate's forward, before its step): it keeps that iterate, and later steps forward only the
samples still running (a stopped sample costs nothing more). The threat steps the whole batch with
zero gradient for stopped samples, whose variable is then restored, so stateful step rules
(StAdv's Adam) keep their shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import progress


def prediction_steps(
    attack: Any,
    model: Any,
    x0: torch.Tensor,
    t: torch.Tensor,
    v: torch.Tensor,
    steps: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    early_stop: bool = False,
) -> torch.Tensor:
    """``steps`` threat steps on ``w_prd·loss_fn + penalty`` from ``v``; a fresh step rule.

    Shapes: x0 (B, 3, H, W), t (B,), v (B, ...) the threat's variable -> the same as v.
    """
    th, w = attack.threat, attack.config.w_prd
    th.reset()
    if not early_stop:
        for k in range(steps):
            v = v.detach().requires_grad_(True)
            loss = (w * loss_fn(model(th.apply(x0, v)), t) + th.penalty(v)).sum()
            (g,) = torch.autograd.grad(loss, v)
            v = th.project(x0, th.step(v.detach(), g, k))
            progress.step()
        return v.detach()
    active = torch.ones(len(x0), dtype=torch.bool, device=x0.device)
    shape = (-1,) + (1,) * (v.dim() - 1)
    v = v.detach()
    for k in range(steps):
        idx = active.nonzero().flatten()
        if len(idx) == 0:
            progress.step(steps - k)  # the skipped steps still count for the progress bar
            break
        vs = v[idx].requires_grad_(True)
        logits = model(th.apply(x0[idx], vs))
        (gs,) = torch.autograd.grad((w * loss_fn(logits, t[idx]) + th.penalty(vs)).sum(), vs)
        done = attack.is_success(logits.detach(), t[idx])
        g = torch.zeros_like(v)
        g[idx] = gs
        moving = active.clone()
        moving[idx] = ~done
        v = torch.where(moving.view(shape), th.project(x0, th.step(v, g, k)), v)
        active = moving
        progress.step()
    return v.detach()
