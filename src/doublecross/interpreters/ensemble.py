"""Ensemble interpretation (spec §9 "Countermeasures", [our decision]): several interpreters on one input.

The paper names the idea (low transferability between interpreters) and gives no design; this one is ours.

Map: the members' maps, each resized bilinearly to the largest member's native size (h, w), side by
side in member order -- a montage ``(B, 1, h, K·w)`` in [0, 1]. ``members_of`` splits it back.

Inconsistency (a detection score):

    s(x) = mean over member pairs (A, B) of (1 - IoU_k(g_A(x; c), g_B(x; c))),   k = 20 %

with c the class the classifier predicts (see ``doublecross.defences.ensemble``).

Adaptive attack distance (``map_distance``), the ℓint of the ADV² loop:

    ℓint = Σ_A λ_A · ℓ(g_A(x; t), m_t^A)      (ℓ = mean or sum over cells of the squared difference)

with λ_A the member's ``weights`` entry (default 1) and m_t^A the member's tile of the target
montage. Member-specific attack terms (RTS's encoder CE) are forwarded as ``"<member>.<term>"``.
ADV²'s per-sample selection of the best successful candidate compares whole montages (the unweighted
mean of the members' squared distances).

MASK as a member: with a graph, the first call runs MASK's own differentiable forward (a full run
whose last ``unroll`` steps are unrolled); the ensemble then carries MASK's running mask and Adam
state (``carries_state``) so that later calls take ``mask_plain`` plain and ``unroll`` unrolled inner
steps from it -- the bilevel machinery of spec §4.7 (b)+(c) inside the one ADV² loop. Candidates are
judged on the evaluation maps (a fresh full MASK run), so such an ensemble selects in exact mode.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..metrics.maps import iou_topk
from ..models.wrapper import Classifier
from . import INTERPRETERS
from .base import Interpretation, Interpreter
from .mask import MaskInterpreter, MaskState

DEFAULT_MEMBERS = ("grad", "cam", "rts")
INCONSISTENCY_K = 20


@dataclass
class EnsembleState:
    """Per-member warm-start states (MASK's running mask and Adam moments)."""

    members: dict[str, Any]

    def detach(self) -> EnsembleState:
        return EnsembleState({k: v.detach() if hasattr(v, "detach") else v for k, v in self.members.items()})


def _sq_distance(a: torch.Tensor, b: torch.Tensor, reduction: str) -> torch.Tensor:
    d = (a - b).pow(2).flatten(1)
    return d.mean(1) if reduction == "mean" else d.sum(1)


def inconsistency(maps: Sequence[torch.Tensor], k: int = INCONSISTENCY_K) -> torch.Tensor:
    """Mean pairwise ``1 - IoU_k`` between maps of one size.

    Args:
        maps: K ≥ 2 maps, each (B, 1, h, w).
        k: top-k percentage of the IoU test (20 %).

    Returns:
        (B,) scores in [0, 1]: 0 when every pair's top-k cells agree.
    """
    if len(maps) < 2:
        raise ValueError(f"inconsistency needs at least two maps, got {len(maps)}")
    pairs = [1 - iou_topk(a, b, k) for a, b in itertools.combinations(maps, 2)]
    return torch.stack(pairs, 0).mean(0)


class EnsembleInterpreter(Interpreter):
    """Several interpreters at once; the map is their montage (module docstring).

    Args:
        model: the wrapped classifier (shared by every member).
        members: name -> member interpreter (built on ``model``), at least two.
        weights: λ_A per member for the adaptive attack's ℓint (default 1 each).
        mask_plain: plain inner MASK steps per warm-started call (spec §4.7 (b)).

    Shape:
        x: (B, 3, H, W) -> map (B, 1, h, K·w) with (h, w) the largest member size, logits (B, C).
    """

    name = "ensemble"

    def __init__(
        self,
        model: Classifier,
        members: Mapping[str, Interpreter],
        weights: Mapping[str, float] | None = None,
        mask_plain: int = 2,
    ) -> None:
        super().__init__(model)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {list(members)}")
        for name, m in members.items():
            if not isinstance(m, Interpreter) or m.model is not model:
                raise ValueError(f"ensemble member {name!r} must be an interpreter built on the same model")
            if isinstance(m, EnsembleInterpreter):
                raise ValueError(f"ensemble member {name!r} is itself an ensemble")
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(members))
        if unknown:
            raise ValueError(f"weights name unknown members {unknown}; members are {list(members)}")
        if any(float(v) < 0 for v in weights.values()):
            raise ValueError(f"member weights must be >= 0, got {weights}")
        if mask_plain < 0:
            raise ValueError(f"mask_plain must be >= 0, got {mask_plain}")
        self.members = nn.ModuleDict(dict(members))
        self.weights = {n: float(weights.get(n, 1.0)) for n in members}
        self.mask_plain = mask_plain
        has_mask = any(isinstance(m, MaskInterpreter) for m in members.values())
        exact = any(m.selection == "exact" for m in members.values())
        self.selection = "exact" if (has_mask or exact) else "cheap"
        self.carries_state = has_mask
        self.attack_term_names = tuple(
            f"{n}.{term}" for n, m in members.items() for term in getattr(m, "attack_term_names", ())
        )
        self.eval()

    @property
    def names(self) -> list[str]:
        return list(self.members.keys())

    def tile_size(self, height: int, width: int) -> tuple[int, int]:
        """The common member size (h, w): the largest member's native size."""
        sizes = [m.native_size(height, width) for m in self.members.values()]
        return max(sizes, key=lambda s: (s[0] * s[1], s))

    def native_size(self, height: int, width: int) -> tuple[int, int]:
        h, w = self.tile_size(height, width)
        return h, w * len(self.members)

    def members_of(self, montage: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a montage (B, 1, h, K·w) into the members' tiles ``{name: (B, 1, h, w)}``."""
        k = len(self.members)
        if montage.dim() != 4 or montage.shape[-1] % k:
            raise ValueError(f"a montage of {k} members has shape (B, 1, h, {k}·w), got {tuple(montage.shape)}")
        return dict(zip(self.names, montage.chunk(k, dim=-1), strict=True))

    def montage(self, maps: Mapping[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Resize each member map to ``size`` and put them side by side. -> (B, 1, h, K·w)."""
        tiles = []
        for n in self.names:
            a = maps[n]
            if tuple(a.shape[-2:]) != tuple(size):
                a = F.interpolate(a, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
            tiles.append(a)
        return torch.cat(tiles, dim=-1)

    def interpret(self, x: torch.Tensor, t: torch.Tensor, state: Any, graph: bool) -> Interpretation:
        states = state.members if isinstance(state, EnsembleState) else {}
        maps: dict[str, torch.Tensor] = {}
        aux: dict[str, torch.Tensor] = {}
        new_states: dict[str, Any] = {}
        logits = None
        for n, member in self.members.items():
            st = states.get(n)
            if isinstance(member, MaskInterpreter) and graph and x.requires_grad and isinstance(st, MaskState):
                gen = torch.Generator().manual_seed(member.seed)
                new = member.run(x, t, st, self.mask_plain, member.unroll, gen)
                out = Interpretation(self.model(x), 1 - new.m, new)
            else:
                out = member.interpret(x, t, st, graph)
            if logits is None:
                logits = out.logits
            maps[n] = out.map
            aux[f"{n}.map"] = out.map
            aux.update({f"{n}.{k}": v for k, v in out.aux.items()})
            if out.state is not None:
                new_states[n] = out.state
        size = self.tile_size(*x.shape[-2:])
        assert logits is not None
        return Interpretation(logits, self.montage(maps, size), EnsembleState(new_states) if new_states else None, aux)

    def member_maps(self, out: Interpretation) -> dict[str, torch.Tensor]:
        """The members' maps at their native sizes, from an ensemble interpretation."""
        return {n: out.aux[f"{n}.map"] for n in self.names}

    def map_distance(self, amap: torch.Tensor, target_map: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """``Σ_A λ_A · ℓ(tile_A(amap), tile_A(target))`` per sample. Shapes: montages -> (B,)."""
        a, b = self.members_of(amap), self.members_of(target_map)
        return sum(self.weights[n] * _sq_distance(a[n], b[n], reduction) for n in self.names)  # type: ignore[return-value]

    def attack_terms(self, out: Interpretation, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """The members' own terms, named ``"<member>.<term>"`` (e.g. ``rts.encoder``)."""
        terms: dict[str, torch.Tensor] = {}
        for n, member in self.members.items():
            prefix = f"{n}."
            sub = {k[len(prefix) :]: v for k, v in out.aux.items() if k.startswith(prefix)}
            mine = Interpretation(out.logits, sub.pop("map"), None, sub)
            terms.update({f"{n}.{k}": v for k, v in member.attack_terms(mine, t).items()})
        return terms

    def inconsistency(self, out: Interpretation, k: int = INCONSISTENCY_K) -> torch.Tensor:
        """Mean pairwise ``1 - IoU_k`` of the members' tiles. -> (B,)."""
        return inconsistency(list(self.members_of(out.map).values()), k)


def parse_members(members: str | Sequence[str]) -> list[str]:
    """``"grad,cam"`` or ``["grad", "cam"]`` -> a list of distinct registered names."""
    names = [n.strip() for n in members.split(",")] if isinstance(members, str) else [str(n) for n in members]
    names = [n for n in names if n]
    for n in names:
        INTERPRETERS.check(n)
        if n == "ensemble":
            raise ValueError("an ensemble cannot contain an ensemble")
    if len(set(names)) != len(names):
        raise ValueError(f"ensemble members repeat: {names}")
    return names


@INTERPRETERS.register("ensemble")
def create_ensemble(
    model: Classifier,
    members: str | Sequence[str] | Mapping[str, Interpreter] = DEFAULT_MEMBERS,
    weights: Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    mask_plain: int = 2,
) -> EnsembleInterpreter:
    """Ensemble over registered interpreters (default grad,cam,rts); map = the members' montage [our decision]."""
    if isinstance(members, Mapping):
        built = dict(members)
    else:
        options = dict(options or {})
        built = {n: INTERPRETERS.create(n, model=model, **dict(options.get(n, {}))) for n in parse_members(members)}
    return EnsembleInterpreter(model, built, weights=weights, mask_plain=mask_plain)
