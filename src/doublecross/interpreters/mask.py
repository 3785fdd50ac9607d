"""MASK: meaningful perturbation (Fong & Vedaldi 2017, arXiv:1704.03296), the ADV² "v2" setting.

A mask ``m ∈ [0,1]^{h×w}`` (h = H/8, m = 1 keeps a pixel) is optimised per sample with Adam:

    x↑ = resize(x, H+J);  b = Φ(x↑)                               (once per run)
    each step: offset o ~ U{0..J-1}²;  x_o, b_o = H×W crops at o
    Mup = GaussBlur(resize(m, H); k_m, σ_m);  x̃ = Mup ⊙ x_o + (1 - Mup) ⊙ b_o
    L(m) = λ_l1·Σ|1 - m| + λ_tv·Σ(Δ_v² + Δ_h² + 1e-8)^{β/2} + softmax(z(x̃))_c

Constants at 224 (spec §3.3): blurs (21, 3.5) and (11, 2.0), λ_l1 = 1e-4, λ_tv = 1e-2, β = 3,
m⁰ = 0.5, Adam (0.1, 0.9/0.999) for 300 steps; σ scales with H/224, kernels 2⌈3σ⌉-1 (≥ 3),
J = max(2, round(4H/224)), λ's × 784/N. The map is ``1 - m`` (the deleted, salient region).

The deletion baseline ``b = Φ(x↑)`` is one of Fong & Vedaldi's three (their §3, "blur", "constant",
"noise"); ``perturbation`` picks it:

* ``"blur"`` (spec default): ``b = GaussBlur(x↑; k_in, σ_in)``.
* ``"constant"``: ``b = μ(x↑)``, the image's mean colour (per sample and channel) everywhere.
* ``"noise"``: ``b = clamp(μ(x↑) + σ_η·ε, 0, 1)`` with ``ε ~ N(0, 1)`` per pixel and channel,
  one fixed draw from a generator seeded with the interpreter's ``seed`` (so every run on an
  image -- evaluation, and the attack's inner steps -- deletes with the same noise) shared by the
  batch; σ_η = ``noise_std`` = 0.2 in [0, 1] pixel units (≈ 51/255), so the noise hides shape
  without saturating much (results change little for σ_η in 0.2-0.5 on ``scenes``).

Blur cannot delete a flat-colour shape much wider than σ_in (a blurred 20 px disc is still a
disc), so the 64 px ``scenes`` presets use ``"noise"``.

``"auto"`` (the default) is ``"blur"``: with the spec's σ_in = 3.5·H/224 where that is at least
``MIN_BLUR_SIGMA`` = 1 px (H ≥ 64, so every size the spec covers keeps its blur), and with σ_in =
``SMALL_BLUR_SIGMA`` = 2 px below [our decision]: at 32 px the spec's σ_in = 0.5 px deletes nothing
-- MASK then keeps the whole image and its map is all zeros (issue 11). On Fashion-MNIST (32 px,
black background) the noise and constant baselines paint the background grey and MASK "deletes"
the background (maps at chance level, README); a 2-3 px blur removes the garment's detail.

The jitter offsets come from a generator seeded afresh each call (one offset per step, shared by
the batch), so a batch equals its singles and a call is deterministic.

With a graph (grad enabled and ``x`` requiring grad) the last ``unroll`` steps are unrolled with
``create_graph=True`` through the functional Adam, so the map is differentiable w.r.t. ``x``. Those
steps run under ``exact_double_backward`` (Hardsigmoid, e.g. in MobileNetV3, gets an exact,
twice-differentiable backward; ReLU networks are unaffected) and ``lean_double_backward``
(frozen convolutions and eval-mode batch norm skip their weight terms in the double backward;
``models/lean_backward.py``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..models.lean_backward import lean_double_backward
from ..models.smooth import check_double_backward, exact_double_backward
from ..models.wrapper import Classifier
from ..numerics import flush_denormal
from . import INTERPRETERS
from .base import Interpretation, Interpreter, minmax_normalise
from .functional_adam import AdamState, adam_step

PERTURBATIONS = ("auto", "blur", "constant", "noise")
#: Narrowest blur (pixels) that ``perturbation="auto"`` accepts as a deletion ...
MIN_BLUR_SIGMA = 1.0
#: ... and the blur it uses instead where the spec's σ_in is narrower (H < 64).
SMALL_BLUR_SIGMA = 2.0


def gaussian_kernel_size(sigma: float) -> int:
    """``2⌈3σ⌉ - 1``, at least 3 (21 for σ = 3.5, 11 for σ = 2)."""
    return max(3, 2 * math.ceil(3 * sigma) - 1)


def gaussian_blur(x: torch.Tensor, kernel: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding, differentiable. Shape: (B, C, H, W)."""
    r = kernel // 2
    coords = torch.arange(kernel, dtype=x.dtype, device=x.device) - r
    k = torch.exp(-(coords**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    pad_mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    x = F.pad(x, (r, r, r, r), mode=pad_mode)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, kernel), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, kernel, 1), groups=c)


def tv_beta(m: torch.Tensor, beta: float = 3.0) -> torch.Tensor:
    """``Σ_{i<h-1, j<w-1} ((m[i+1,j]-m[i,j])² + (m[i,j+1]-m[i,j])² + 1e-8)^{β/2}`` per sample (B,)."""
    dv = m[..., 1:, :-1] - m[..., :-1, :-1]
    dh = m[..., :-1, 1:] - m[..., :-1, :-1]
    return ((dv**2 + dh**2 + 1e-8) ** (beta / 2)).flatten(1).sum(1)


@dataclass
class MaskState:
    """MASK's running mask ``m`` (B, 1, h, w) in [0, 1] and its Adam state."""

    m: torch.Tensor
    adam: AdamState

    def detach(self) -> MaskState:
        return MaskState(self.m.detach(), self.adam.detach())


class MaskInterpreter(Interpreter):
    """Meaningful-perturbation mask, batched, per-sample.

    Args:
        model: the wrapped classifier.
        steps: Adam steps of a full run (paper: 300).
        lr: Adam learning rate (0.1).
        unroll: steps unrolled with a graph when grad is enabled (ADV²'s n_step = 4).
        seed: jitter seed of each call (the evaluation seed).
        normalise: ``"none"`` (raw 1 - m, default) or ``"minmax"``.
        l1, tv, beta: λ_l1 and λ_tv at 224 (scaled by 784/N) and the TV exponent β.
        blur_sigma: σ_in of the blur baseline in pixels (default 3.5·H/224).
        perturbation: deletion baseline Φ, ``"auto"`` (default: blur, at σ_in ≥ 2 px below 64 px),
            ``"blur"``, ``"constant"`` or ``"noise"``.
        noise_std: σ_η of the ``"noise"`` baseline in [0, 1] pixel units.

    Shape:
        x: (B, 3, H, W) -> map (B, 1, H/8, W/8) (at least 8×8), logits (B, C).
    """

    name = "mask"
    attack_kind = "adv2-bilevel"  # the map solves an inner problem (spec §4.7)
    #: Unrolled steps differentiate frozen convolutions and eval-mode batch norm without their weight
    #: terms (``models/lean_backward.py``: same values up to float rounding, ~1/3 less time on CPU).
    lean_backward = True

    def __init__(
        self,
        model: Classifier,
        steps: int = 300,
        lr: float = 0.1,
        unroll: int = 4,
        seed: int = 0,
        normalise: str = "none",
        l1: float = 1e-4,
        tv: float = 1e-2,
        beta: float = 3.0,
        blur_sigma: float | None = None,
        perturbation: str = "auto",
        noise_std: float = 0.2,
    ) -> None:
        super().__init__(model)
        if blur_sigma is not None and blur_sigma <= 0:
            raise ValueError(f"blur_sigma must be positive, got {blur_sigma}")
        if perturbation not in PERTURBATIONS:
            raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {perturbation!r}")
        if blur_sigma is not None and perturbation not in ("blur", "auto"):
            raise ValueError(f"blur_sigma applies to perturbation='blur' only, got {perturbation!r}")
        if noise_std <= 0:
            raise ValueError(f"noise_std must be positive, got {noise_std}")
        self.blur_sigma, self.perturbation, self.noise_std = blur_sigma, perturbation, noise_std
        if normalise not in ("none", "minmax"):
            raise ValueError(f"normalise must be 'none' or 'minmax', got {normalise!r}")
        if steps < 0 or unroll < 0:
            raise ValueError(f"steps and unroll must be >= 0, got {steps}, {unroll}")
        self.steps, self.lr, self.unroll, self.seed = steps, lr, unroll, seed
        self.normalise, self.l1, self.tv, self.beta = normalise, l1, tv, beta
        self._noise: dict[tuple, torch.Tensor] = {}  # the "noise" baseline's draw per (shape, device, dtype, seed)
        self._double_backward_checked = False

    def native_size(self, height: int, width: int) -> tuple[int, int]:
        return max(8, height // 8), max(8, width // 8)

    def perturbation_at(self, height: int) -> str:
        """The deletion baseline used at input height ``height`` (``"auto"`` is a blur)."""
        return "blur" if self.perturbation == "auto" else self.perturbation

    def blur_sigma_at(self, height: int) -> float:
        """σ_in of the blur baseline: ``blur_sigma``, else 3.5·H/224, raised to 2 px below 1 px under ``"auto"``."""
        if self.blur_sigma is not None:
            return self.blur_sigma
        sigma = 3.5 * height / 224
        return SMALL_BLUR_SIGMA if self.perturbation == "auto" and sigma < MIN_BLUR_SIGMA else sigma

    def constants(self, height: int, width: int) -> dict[str, float]:
        """The size-scaled constants (spec §3.3, "other sizes"); ``"baseline"`` indexes ``PERTURBATIONS``."""
        s = height / 224
        h, w = self.native_size(height, width)
        n = h * w
        sigma_in = self.blur_sigma_at(height)
        return {
            "sigma_in": sigma_in,
            "k_in": gaussian_kernel_size(sigma_in),
            "sigma_m": 2.0 * s,
            "k_m": gaussian_kernel_size(2.0 * s),
            "jitter": max(2, round(4 * height / 224)),
            "l1": self.l1 * 784 / n,
            "tv": self.tv * 784 / n,
            "baseline": float(PERTURBATIONS.index(self.perturbation_at(height))),
        }

    def prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """The jittered image ``x↑``, its deletion baseline ``b`` (both differentiable in x), the constants.

        Shapes: x (B, 3, H, W) -> x↑ and b (B, 3, H+J, W+J) (bilinear upsampling by the jitter J).
        """
        h, w = x.shape[-2:]
        c = self.constants(h, w)
        j = int(c["jitter"])
        up = F.interpolate(x, size=(h + j, w + j), mode="bilinear", align_corners=False)
        return up, self.baseline(up, c), c

    def baseline(self, up: torch.Tensor, c: dict[str, float]) -> torch.Tensor:
        """The deletion baseline ``b = Φ(x↑)`` (module docstring). Shape: (B, 3, H+J, W+J), same out.

        The ``"noise"`` draw comes from a generator seeded with ``seed``, never from a run's jitter
        generator: an attack's inner steps must delete with the noise the evaluation uses.
        """
        kind = PERTURBATIONS[int(c["baseline"])]
        if kind == "blur":
            return gaussian_blur(up, int(c["k_in"]), c["sigma_in"])
        mean = up.mean(dim=(2, 3), keepdim=True).expand_as(up)
        if kind == "constant":
            return mean
        key = (tuple(up.shape[1:]), up.device, up.dtype, self.seed)
        eps = self._noise.get(key)
        if eps is None:  # drawn on the CPU generator once per size and device, not in every step
            gen = torch.Generator().manual_seed(self.seed)
            eps = self._noise[key] = torch.randn((1, *up.shape[1:]), generator=gen).to(device=up.device, dtype=up.dtype)
        return (mean + self.noise_std * eps).clamp(0, 1)

    def composite(
        self,
        m: torch.Tensor,
        up: torch.Tensor,
        baseline: torch.Tensor,
        offset: tuple[int, int],
        c: dict[str, float],
    ) -> torch.Tensor:
        """The perturbed image ``x̃ = Mup ⊙ x_o + (1 - Mup) ⊙ b_o`` at one jitter offset, clamped to [0, 1].

        Shape: m (B, 1, h, w), up and baseline (B, 3, H+J, W+J) -> (B, 3, H, W).
        """
        h, w = up.shape[-2] - int(c["jitter"]), up.shape[-1] - int(c["jitter"])
        oy, ox = offset
        x_o = up[..., oy : oy + h, ox : ox + w]
        b_o = baseline[..., oy : oy + h, ox : ox + w]
        mup = gaussian_blur(
            F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False), int(c["k_m"]), c["sigma_m"]
        )
        return (mup * x_o + (1 - mup) * b_o).clamp(0, 1)

    def loss(
        self,
        m: torch.Tensor,
        up: torch.Tensor,
        baseline: torch.Tensor,
        t: torch.Tensor,
        offset: tuple[int, int],
        c: dict[str, float],
    ) -> torch.Tensor:
        """Per-sample MASK objective L(m; x, t) at one jitter offset. Shape: (B,)."""
        mixed = self.composite(m, up, baseline, offset, c)
        prob = F.softmax(self.model(mixed), dim=1).gather(1, t[:, None])[:, 0]
        return c["l1"] * (1 - m).abs().flatten(1).sum(1) + c["tv"] * tv_beta(m, self.beta) + prob

    def run(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        state: MaskState | None,
        steps: int,
        unroll: int,
        generator: torch.Generator,
        keep_state_graph: bool = False,
        lr: float | None = None,
        on_step: Callable[[MaskState], None] | None = None,
    ) -> MaskState:
        """``steps`` plain Adam steps then ``unroll`` steps with a graph to ``x``, from ``state``.

        Each step: m ← Adam(m, ∂L(m; x, t, offset)/∂m) with L = ``loss`` at a fresh jitter offset;
        ``state`` None starts from m = 0.5 (a warm start continues the given mask and Adam moments).
        Shapes: x (B, 3, H, W), t (B,), state.m (B, 1, h, w) -> the new state.

        ``generator`` draws the jitter offsets (one per step). ``keep_state_graph`` continues the
        graph of an incoming (unrolled) state instead of detaching it, so successive calls chain
        their unrolled steps. ``lr`` overrides the Adam learning rate (the StAdv-MASK attack's
        inner steps use 0.01). ``on_step`` receives the state after each unrolled step (with its
        graph): the attack's per-step map distances D_j, from one ``prepare`` of ``x`` for all steps.
        """
        if state is None:
            m0 = torch.full((x.shape[0], 1, *self.native_size(*x.shape[-2:])), 0.5, device=x.device, dtype=x.dtype)
            state = MaskState(m0, AdamState.zeros_like(m0))
        if not keep_state_graph:
            state = state.detach()
        if steps + unroll == 0:  # nothing to do (e.g. the attack's plain steps switched off): no prepare
            return state
        m, adam = state.m, state.adam
        up, baseline, c = self.prepare(x)
        j = int(c["jitter"])
        up_plain, baseline_plain = up.detach(), baseline.detach()
        for k in range(steps + unroll):
            graph = k >= steps
            offset = tuple(int(v) for v in torch.randint(0, j, (2,), generator=generator))
            with torch.enable_grad(), self._graph_context() if graph else contextlib.nullcontext():
                mv = m if (graph and m.requires_grad) else m.detach().requires_grad_(True)
                loss = self.loss(mv, up if graph else up_plain, baseline if graph else baseline_plain, t, offset, c)
                (g,) = torch.autograd.grad(loss.sum(), mv, create_graph=graph)
            if graph and not self._double_backward_checked:
                check_double_backward(g, f"MASK's unrolled steps on {self.model.name} (an ADV² attack)")
                self._double_backward_checked = True
            m, adam = adam_step(mv if graph else m.detach(), g, adam, lr=self.lr if lr is None else lr)
            if graph and on_step is not None:
                on_step(MaskState(m, adam))
        return MaskState(m, adam)

    def _graph_context(self) -> contextlib.ExitStack:
        """The unrolled steps' context: exact double backward (hardsigmoid), lean when ``lean_backward``."""
        stack = contextlib.ExitStack()
        stack.enter_context(exact_double_backward())
        if self.lean_backward:
            stack.enter_context(lean_double_backward())
        return stack

    def interpret(self, x: torch.Tensor, t: torch.Tensor, state: Any, graph: bool) -> Interpretation:
        graph = graph and x.requires_grad
        gen = torch.Generator().manual_seed(self.seed)
        unroll = min(self.unroll, self.steps) if graph else 0
        with flush_denormal():  # saturated masks drive the Adam moments into denormals
            new_state = self.run(x, t, state, self.steps - unroll, unroll, gen)
        sal = 1 - new_state.m
        logits = self.model(x) if graph else self.model(x.detach())
        return Interpretation(logits, minmax_normalise(sal) if self.normalise == "minmax" else sal, new_state)


@INTERPRETERS.register("mask")
def create_mask(
    model: Classifier,
    steps: int = 300,
    lr: float = 0.1,
    unroll: int = 4,
    seed: int = 0,
    normalise: str = "none",
    blur_sigma: float | None = None,
    tv: float = 1e-2,
    l1: float = 1e-4,
    perturbation: str = "auto",
    noise_std: float = 0.2,
) -> MaskInterpreter:
    """MASK: meaningful perturbation, Adam 300 steps, map = 1 - mask at H/8."""
    return MaskInterpreter(
        model,
        steps=steps,
        lr=lr,
        unroll=unroll,
        seed=seed,
        normalise=normalise,
        blur_sigma=blur_sigma,
        tv=tv,
        l1=l1,
        perturbation=perturbation,
        noise_std=noise_std,
    )
