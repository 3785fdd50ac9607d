"""Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391) and Grad-CAM++ (Chattopadhay et al. 2018,
arXiv:1710.11063), differentiable.

With ``A`` (B, K, h, w) a feature map of the classifier and ``g = ∂z_c/∂A`` (z_c the class logit):

    Grad-CAM:    α_k = mean_ij g_k(i, j)
    Grad-CAM++:  α_k = Σ_ij a_k(i, j) · ReLU(g_k(i, j)),
                 a_k(i, j) = g² / (2 g² + Σ_ab A_k(a, b) · g³ + 1e-6)   (g = g_k(i, j); 0 where g ≤ 0)
    map = 𝒩(ReLU(Σ_k α_k A_k))    at the feature map's resolution, no upsampling

(Grad-CAM++'s closed form with the exponential's derivatives replaced by powers of ``g``, as the
paper's eq. 19 and pytorch-grad-cam; ``a`` is only ever multiplied by ReLU(g), so it is set to 0
where g ≤ 0, which keeps its gradient finite.) ``layer`` indexes the classifier's per-resolution
feature maps (``Classifier.stages_and_logits``, fine -> coarse); the default ``-1`` is the last
feature map ``A`` that CAM reads (``Classifier.features_and_logits``). There, with the GAP + linear
head, g = W[c] / (h·w) is constant, so Grad-CAM = 𝒩(ReLU(CAM_c)): CAM up to scale, clipped at 0.
At an earlier layer, or at the last one behind a head that is not GAP + one linear layer (the
automatic feature split of any CNN), ``g`` passes through activations: with a graph it is taken under
the smoothed surrogate with ``create_graph=True`` (spec §2.4), and candidates are judged on the true map.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ..models.smooth import DEFAULT_TAU, check_double_backward, smooth_relu
from ..models.wrapper import Classifier
from . import INTERPRETERS
from .base import Interpretation, Interpreter, minmax_normalise

GRADCAM_PP_EPS = 1e-6


def gradcam_weights(feats: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM channel weights ``α_k = mean_ij g_k(i, j)``. Shape: (B, K, h, w) -> (B, K)."""
    return grads.mean(dim=(2, 3))


def gradcam_pp_weights(feats: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights ``α_k = Σ_ij a_k(i, j) ReLU(g_k(i, j))``. Shape: (B, K, h, w) -> (B, K)."""
    g2 = grads * grads
    s = feats.sum(dim=(2, 3), keepdim=True)
    pos = grads > 0
    denom = torch.where(pos, 2 * g2 + s * g2 * grads + GRADCAM_PP_EPS, torch.ones_like(grads))
    a = torch.where(pos, g2 / denom, torch.zeros_like(grads))
    return (a * torch.relu(grads)).sum(dim=(2, 3))


WEIGHTS = {"gradcam": gradcam_weights, "gradcam++": gradcam_pp_weights}


class GradCamInterpreter(Interpreter):
    """Grad-CAM / Grad-CAM++ map at a feature map's resolution.

    Args:
        model: the wrapped classifier (needs feature access, as CAM).
        variant: ``"gradcam"`` or ``"gradcam++"``.
        layer: index into the per-resolution feature maps (fine -> coarse); -1 = the last one (CAM's).
        tau: smoothed-ReLU constant used when a graph is kept at an earlier layer.

    Shape:
        x: (B, 3, H, W) -> map (B, 1, h, w) with (h, w) the chosen feature map's size, logits (B, C).
    """

    def __init__(self, model: Classifier, variant: str = "gradcam", layer: int = -1, tau: float = DEFAULT_TAU) -> None:
        super().__init__(model)
        if variant not in WEIGHTS:
            raise ValueError(f"variant must be one of {tuple(WEIGHTS)}, got {variant!r}")
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise TypeError(f"layer must be an integer index into the feature maps, got {layer!r}")
        if not model.supports_features:
            model.feature_split()  # raises the FeatureAccessError naming what was searched
        self.name, self.variant, self.layer, self.tau = variant, variant, layer, tau
        self.last = layer == -1
        # at the last layer of a GAP + linear head g is constant and the graph map exact; elsewhere the surrogate
        self.selection = "cheap" if self._exact() else "exact"
        self._double_backward_checked = False

    def _exact(self, size: tuple[int, int] | None = None) -> bool:
        return self.last and self.model.has_linear_head(*(size or (None, None)))

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.last:
            return self.model.features_and_logits(x)
        stages, logits = self.model.stages_and_logits(x)
        if not -len(stages) <= self.layer < len(stages):
            raise ValueError(
                f"layer {self.layer} is out of range: {type(self.model.net).__name__} has {len(stages)} "
                f"feature maps (indices {-len(stages)} .. {len(stages) - 1})"
            )
        return stages[self.layer], logits

    def native_size(self, height: int, width: int) -> tuple[int, int]:
        with torch.no_grad():
            feats, _ = self._features(torch.zeros(1, 3, height, width, device=self.model.mean.device))
        return tuple(feats.shape[-2:])  # type: ignore[return-value]

    def interpret(self, x: torch.Tensor, t: torch.Tensor, state: Any, graph: bool) -> Interpretation:
        graph = graph and x.requires_grad
        xi = x if graph else x.detach().requires_grad_(True)
        smooth = graph and not self._exact(tuple(x.shape[-2:]))
        surrogate = smooth_relu(self.tau) if smooth else contextlib.nullcontext()
        with torch.enable_grad(), surrogate:
            feats, logits = self._features(xi)
            (grads,) = torch.autograd.grad(logits.gather(1, t[:, None]).sum(), feats, create_graph=graph)
        if smooth and not self._double_backward_checked:
            check_double_backward(grads, f"{self.variant}'s map on {self.model.name} (an ADV² attack)")
            self._double_backward_checked = True
        if not graph:
            feats, logits = feats.detach(), logits.detach()
        alpha = WEIGHTS[self.variant](feats, grads)  # (B, K)
        cam = torch.relu(torch.einsum("bkhw,bk->bhw", feats, alpha))[:, None]
        return Interpretation(logits, minmax_normalise(cam))


@INTERPRETERS.register("gradcam")
def create_gradcam(model: Classifier, layer: int = -1, tau: float = DEFAULT_TAU) -> GradCamInterpreter:
    """Grad-CAM: ReLU of the feature maps weighted by their mean logit gradient (default: CAM's layer)."""
    return GradCamInterpreter(model, "gradcam", layer=layer, tau=tau)


@INTERPRETERS.register("gradcam++")
def create_gradcam_pp(model: Classifier, layer: int = -1, tau: float = DEFAULT_TAU) -> GradCamInterpreter:
    """Grad-CAM++: ReLU of the feature maps weighted by positive gradients with per-cell weights."""
    return GradCamInterpreter(model, "gradcam++", layer=layer, tau=tau)
