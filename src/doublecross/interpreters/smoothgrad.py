"""SmoothGrad (Smilkov et al. 2017, arXiv:1706.03825), differentiable.

    S = (1/n) Σ_{k=1..n} |∂CE(z(x + ε_k), c)/∂x (x + ε_k)|      ε_k ~ N(0, σ² I)  (seeded)
    a(i, j) = max_ch S(ch, i, j)        g = 𝒩(AvgPool_p(a))

with ``x`` in [0, 1] pixel space (so σ is the noise level as a fraction of the input range, the
paper's 10-20 %), noise not clipped (as the paper and captum's ``NoiseTunnel``), and GRAD's pool
factor ``p``. The absolute gradient is averaged per channel (captum's ``NoiseTunnel(Saliency)`` with
``abs=True``). The n noise draws come from a generator seeded with ``seed`` at every call and are
shared by all images of the batch, so the map is a deterministic function of ``x`` (batch = singles)
and the attack differentiates the same estimator it is judged on. With a graph the gradients are
taken under the smoothed-ReLU surrogate with ``create_graph=True`` (spec §2.4).
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.smooth import DEFAULT_TAU
from ..models.wrapper import Classifier
from . import INTERPRETERS
from .base import Interpretation, Interpreter
from .grad import grad_pool_factor
from .saliency import check_signal, input_gradient, saliency_map


def smoothgrad_noise(n: int, shape: tuple[int, ...], sigma: float, seed: int, device: torch.device) -> torch.Tensor:
    """The ``n`` seeded noise draws ``σ·N(0, I)`` of one image's shape, (n, *shape), on ``device``."""
    g = torch.Generator().manual_seed(seed)
    return (sigma * torch.randn((n, *shape), generator=g)).to(device)


class SmoothGradInterpreter(Interpreter):
    """SmoothGrad map of the absolute input gradient.

    Args:
        model: the wrapped classifier.
        samples: number of noisy copies n (≥ 1).
        sigma: noise standard deviation σ in [0, 1] pixel units (> 0).
        seed: seed of the noise draws.
        signal: ``"ce"`` (∂CE/∂x, as GRAD) or ``"logit"`` (∂z_c/∂x).
        tau: smoothed-ReLU constant used when a graph is kept.
        chunk: noisy copies per batched pass (memory bound; does not change the map).
        graph_samples: copies used when a graph is kept (the attack's loss map): the first
            ``graph_samples`` of the n draws (``None``: all n). The evaluation map always uses all n.

    Shape:
        x: (B, 3, H, W) -> map (B, 1, H/p, W/p), logits (B, C) at the clean ``x``.
    """

    name = "smoothgrad"
    selection = "exact"

    def __init__(
        self,
        model: Classifier,
        samples: int = 16,
        sigma: float = 0.15,
        seed: int = 0,
        signal: str = "ce",
        tau: float = DEFAULT_TAU,
        chunk: int = 16,
        graph_samples: int | None = None,
    ) -> None:
        super().__init__(model)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        if not (isinstance(sigma, (int, float)) and sigma > 0):
            raise ValueError(f"sigma must be a positive number, got {sigma!r}")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
        if graph_samples is not None and (
            isinstance(graph_samples, bool) or not isinstance(graph_samples, int) or not 1 <= graph_samples <= samples
        ):
            raise ValueError(f"graph_samples must be an integer in [1, samples={samples}], got {graph_samples!r}")
        self.samples, self.sigma, self.seed, self.chunk = samples, float(sigma), int(seed), chunk
        self.graph_samples = samples if graph_samples is None else graph_samples
        self.signal, self.tau = check_signal(signal), tau

    def _check(self) -> str:
        """Who needs second derivatives, on the first graph pass only (then ``""``: no check)."""
        if getattr(self, "_double_backward_checked", False):
            return ""
        self._double_backward_checked = True
        return f"SmoothGrad's map on {self.model.name} (an ADV² attack)"

    def native_size(self, height: int, width: int) -> tuple[int, int]:
        p = grad_pool_factor(height)
        return height // p, width // p

    def interpret(self, x: torch.Tensor, t: torch.Tensor, state: Any, graph: bool) -> Interpretation:
        graph = graph and x.requires_grad
        b = x.shape[0]
        n = self.graph_samples if graph else self.samples
        noise = smoothgrad_noise(self.samples, tuple(x.shape[1:]), self.sigma, self.seed, x.device).to(x.dtype)[:n]
        total = torch.zeros_like(x)
        for i in range(0, n, self.chunk):
            eps = noise[i : i + self.chunk]  # (m, 3, H, W)
            m = eps.shape[0]
            xn = (x[None] + eps[:, None]).reshape(m * b, *x.shape[1:])  # sample-major: (m·B, 3, H, W)
            _, s = input_gradient(
                self.model, xn, t.repeat(m), self.signal, graph, self.tau, self._check() if graph else ""
            )
            total = total + s.abs().view(m, b, *x.shape[1:]).sum(0)
        logits = self.model.net(self.model.normalise(x))
        if not graph:
            logits = logits.detach()
        return Interpretation(logits, saliency_map(total / n))


# The class is the factory: one signature (the options ``--set`` / presets validate against), no copy of it.
create_smoothgrad = INTERPRETERS.register(
    "smoothgrad", summary="SmoothGrad: |∂CE/∂x| averaged over n seeded noisy copies, max over channels, pooled as GRAD."
)(SmoothGradInterpreter)
