"""CAM: class activation mapping (Zhou et al. 2016, arXiv:1512.04150), differentiable.

    CAM_c(i, j) = Σ_k W[c, k] · A_k(i, j)        g = 𝒩(CAM_c)

with ``A`` the last post-ReLU feature map and ``W`` the final linear layer; no bias, no ReLU, no
upsampling (spec §3.2). The same forward gives the logits ``W · mean_hw(A) + b``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.wrapper import Classifier
from . import INTERPRETERS
from .base import Interpretation, Interpreter, minmax_normalise


class CamInterpreter(Interpreter):
    """Class activation map at the last feature map's resolution.

    Shape:
        x: (B, 3, H, W) -> map (B, 1, h, w) with (h, w) the feature map size, logits (B, C).
    """

    name = "cam"

    def __init__(self, model: Classifier) -> None:
        super().__init__(model)
        model.linear  # noqa: B018 - raises a clear TypeError for models CAM cannot adapt

    def native_size(self, height: int, width: int) -> tuple[int, int]:
        with torch.no_grad():
            feats, _ = self.model.features_and_logits(torch.zeros(1, 3, height, width, device=self.model.mean.device))
        return tuple(feats.shape[-2:])  # type: ignore[return-value]

    def interpret(self, x: torch.Tensor, t: torch.Tensor, state: Any, graph: bool) -> Interpretation:
        feats, logits = self.model.features_and_logits(x)
        weights = self.model.linear.weight[t]  # (B, K)
        cam = torch.einsum("bkhw,bk->bhw", feats, weights)[:, None]
        return Interpretation(logits, minmax_normalise(cam))


@INTERPRETERS.register("cam")
def create_cam(model: Classifier) -> CamInterpreter:
    """CAM: final-layer weights of the class applied to the last feature map, normalised."""
    return CamInterpreter(model)
