"""The interpreter contract (spec §3.0): a differentiable ``nn.Module`` over a wrapped classifier.

``forward(x, target, state=None)`` returns an :class:`Interpretation`: the classifier's logits,
the map ``(B, 1, h, w)`` in [0, 1] at the interpreter's native resolution, optional state (MASK's
running mask and Adam moments) and auxiliary outputs (RTS's encoder logits). Whenever grad is
enabled the map keeps the autograd graph back to ``x``. ``explain(x, target)`` is the no-grad
evaluation call (detached outputs). Interpreters register no hooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..models.wrapper import Classifier, check_images

Target = int | Sequence[int] | torch.Tensor
MINMAX_EPS = 1e-8


def minmax_normalise(a: torch.Tensor, eps: float = MINMAX_EPS) -> torch.Tensor:
    """Per-sample ``𝒩(a) = (a - min a) / max(max a - min a, eps)``; a constant map gives zeros.

    Shape:
        a: (B, ...) -> same shape, each sample in [0, 1].
    """
    flat = a.flatten(1)
    lo = flat.min(dim=1).values.view(-1, *([1] * (a.dim() - 1)))
    hi = flat.max(dim=1).values.view(-1, *([1] * (a.dim() - 1)))
    return (a - lo) / torch.clamp(hi - lo, min=eps)


def as_targets(target: Target, batch: int, num_classes: int | None, device: torch.device) -> torch.Tensor:
    """Turn an int, a sequence or a tensor into a ``(B,)`` int64 tensor of valid class indices.

    Raises:
        TypeError: a non-integer target.
        ValueError: wrong length or a class outside ``[0, num_classes)``.
    """
    if isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.is_complex():
            raise TypeError(f"target must hold integers, got dtype {target.dtype}")
        t = target.to(device=device, dtype=torch.int64).reshape(-1)
        if t.numel() == 1 and batch != 1:
            t = t.expand(batch)
    elif isinstance(target, (int,)) and not isinstance(target, bool):
        t = torch.full((batch,), int(target), dtype=torch.int64, device=device)
    elif isinstance(target, Sequence) and all(isinstance(v, int) and not isinstance(v, bool) for v in target):
        t = torch.tensor(list(target), dtype=torch.int64, device=device)
    else:
        raise TypeError(f"target must be an int, a sequence of ints or an integer tensor, got {target!r}")
    if t.shape != (batch,):
        raise ValueError(f"target must give one class per image: expected {batch}, got {tuple(t.shape)}")
    if num_classes is not None and ((t < 0) | (t >= num_classes)).any():
        raise ValueError(f"target classes must lie in [0, {num_classes}), got {t.tolist()}")
    return t


@dataclass
class Interpretation:
    """One interpreter pass.

    Attributes:
        logits: classifier logits ``(B, C)`` at ``x``.
        map: attribution map ``(B, 1, h, w)`` in [0, 1] (high = important).
        state: interpreter state to warm-start the next call (MASK), else ``None``.
        aux: auxiliary outputs, e.g. ``{"encoder_logits": (B, C)}`` for RTS.
    """

    logits: torch.Tensor
    map: torch.Tensor
    state: Any = None
    aux: dict[str, torch.Tensor] = field(default_factory=dict)

    def detach(self) -> Interpretation:
        st = self.state.detach() if hasattr(self.state, "detach") else self.state
        return Interpretation(self.logits.detach(), self.map.detach(), st, {k: v.detach() for k, v in self.aux.items()})


class Interpreter(nn.Module):
    """Base class: validation, target handling and the ``forward``/``explain`` split.

    Subclasses implement ``interpret(x, t, state, graph)`` and ``native_size(h, w)``.
    """

    name: str = "interpreter"
    #: How ADV² checks candidates: ``"cheap"`` from the step's own forward at x, or ``"exact"``
    #: by re-evaluating Q(x) with the evaluation interpreter every ``check_every`` steps.
    selection: str = "cheap"
    #: Which ADV² attack fits this interpreter (a key of ``attacks.ATTACKS``).
    attack_kind: str = "adv2"
    #: Whether ADV²'s loop feeds each step's returned state into the next call (a warm start).
    carries_state: bool = False
    #: Names of the terms :meth:`attack_terms` returns (the keys an attack config's ``extra`` may weight).
    attack_term_names: tuple[str, ...] = ()

    def __init__(self, model: Classifier) -> None:
        super().__init__()
        if not isinstance(model, Classifier):
            raise TypeError(f"interpreters take a doublecross Classifier, got {type(model).__name__}")
        self.model = model

    def train(self, mode: bool = True) -> Interpreter:
        """Interpreters always run in eval mode (their networks are frozen)."""
        return super().train(False)

    def native_size(self, height: int, width: int) -> tuple[int, int]:
        """Map size ``(h, w)`` for an input of ``height × width``."""
        raise NotImplementedError

    def interpret(self, x: torch.Tensor, t: torch.Tensor, state: Any, graph: bool) -> Interpretation:
        """Compute logits and map; keep the graph to ``x`` when ``graph`` is true."""
        raise NotImplementedError

    def attack_terms(self, out: Interpretation, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Interpreter-specific ADV² loss terms ``{name: (B,)}``, weighted by the attack config."""
        return {}

    def map_distance(self, amap: torch.Tensor, target_map: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """ADV²'s ℓint: ``mean`` or ``sum`` over cells of ``(amap - target_map)²``. Shapes: (B, 1, h, w)² -> (B,)."""
        if amap.shape != target_map.shape:
            raise ValueError(f"map shapes differ: {tuple(amap.shape)} vs target {tuple(target_map.shape)}")
        d = (amap - target_map).pow(2).flatten(1)
        return d.mean(1) if reduction == "mean" else d.sum(1)

    def forward(self, x: torch.Tensor, target: Target, state: Any = None) -> Interpretation:
        """Logits, map (B, 1, h, w) in [0, 1] and state; differentiable whenever grad is enabled."""
        check_images(x)
        t = as_targets(target, x.shape[0], self.model.num_classes, x.device)
        return self.interpret(x, t, state, graph=torch.is_grad_enabled())

    def explain(self, x: torch.Tensor, target: Target, state: Any = None) -> Interpretation:
        """Evaluation map without a graph (the true-ReLU GRAD map, a full MASK run, ...)."""
        check_images(x)
        t = as_targets(target, x.shape[0], self.model.num_classes, x.device)
        return self.interpret(x.detach(), t, state, graph=False).detach()
