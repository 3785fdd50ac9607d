"""CAM: class activation mapping (Zhou et al. 2016, arXiv:1512.04150), differentiable.

    CAM_c(i, j) = Σ_k W[c, k] · A_k(i, j)        g = 𝒩(CAM_c)

with ``A`` the last post-ReLU feature map and ``W`` the final linear layer; no bias, no ReLU, no
upsampling (spec §3.2). The same forward gives the logits ``W · mean_hw(A) + b``.

``A`` and the head come from the classifier's adapter or its automatic split
(:mod:`doublecross.models.features`). When the head is not global pooling -> one ``nn.Linear``
(MobileNetV3's MLP, VGG's 7×7 pooling + MLP, ConvNeXt's LayerNorm after pooling) there is no ``W``;
with ``head="auto"`` (default) CAM then uses the head linearised at ``A`` [our decision]:

    W[c, k] := Σ_ij ∂z_c/∂A_k(i, j)

which is exactly ``W`` for a linear head and Grad-CAM's channel weight (up to the factor hw, which
𝒩 removes) otherwise; ``head="linear"`` refuses such models instead. With a graph the linearised
weights keep theirs (second order through the head only).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ..models.wrapper import Classifier
from . import INTERPRETERS
from .base import Interpretation, Interpreter, minmax_normalise

logger = logging.getLogger(__name__)
HEADS = ("auto", "linear")


class CamInterpreter(Interpreter):
    """Class activation map at the last feature map's resolution.

    Shape:
        x: (B, 3, H, W) -> map (B, 1, h, w) with (h, w) the feature map size, logits (B, C).
    """

    name = "cam"

    def __init__(self, model: Classifier, head: str = "auto") -> None:
        super().__init__(model)
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.head = head
        if head == "linear":
            model.linear  # noqa: B018 - raises a clear TypeError for models without a linear head
        elif not model.supports_features:
            model.feature_split()  # raises the FeatureAccessError naming what was searched
        elif not model.has_linear_head():
            logger.warning(
                "CAM on %s: the head is not global pooling -> one nn.Linear (%s); using the head linearised "
                "at the feature map (Grad-CAM's weights)",
                model.name,
                model.feature_split().describe(),
            )

    def native_size(self, height: int, width: int) -> tuple[int, int]:
        with torch.no_grad():
            feats, _ = self.model.features_and_logits(torch.zeros(1, 3, height, width, device=self.model.mean.device))
        return tuple(feats.shape[-2:])  # type: ignore[return-value]

    def interpret(self, x: torch.Tensor, t: torch.Tensor, state: Any, graph: bool) -> Interpretation:
        size = tuple(x.shape[-2:])
        if self.model.has_linear_head(*size):
            feats, logits = self.model.features_and_logits(x)
            weights = self.model.linear.weight[t]  # (B, K)
        else:
            if self.head == "linear":
                self.model.linear  # noqa: B018 - the clear TypeError
            with torch.enable_grad():
                xi = x if (graph and x.requires_grad) else x.detach().requires_grad_(True)
                feats, logits = self.model.features_and_logits(xi)
                weights = self.model.class_weights(feats, logits, t, size, create_graph=graph and x.requires_grad)
            if not (graph and x.requires_grad):
                feats, logits, weights = feats.detach(), logits.detach(), weights.detach()
        cam = torch.einsum("bkhw,bk->bhw", feats, weights)[:, None]
        return Interpretation(logits, minmax_normalise(cam))


@INTERPRETERS.register("cam")
def create_cam(model: Classifier, head: str = "auto") -> CamInterpreter:
    """CAM: final-layer weights of the class applied to the last feature map, normalised."""
    return CamInterpreter(model, head=head)
