"""RTS: real-time saliency (Dabkowski & Gal 2017, arXiv:1705.07857), a trained masking network.

Encoder: the target classifier itself (frozen; the spec's "frozen copy of the target classifier,
same label space"), read through ``Classifier.stages_and_logits`` -- so the encoder logits z_E
equal the classifier logits and one forward serves both (spec §4.6). Selector: an embedding
``e ∈ R^{C×K}`` (std 1/√K); with ``a = Σ_k s_k·e_{c,k}`` the coarsest features become
``s ⊙ σ(a - κ)`` and the "exists" logits are ``(-ā/2, ā/2)``. Decoder: one block per encoder stage
down to stride 4 -- conv 3×3 to 4·C_out, BN, ReLU, pixel-shuffle ×2, ReLU, concat skip, residual
bottleneck to C_out -- then a 1×1 conv to (u, v) and ``mask = |u| / (|u| + |v| + 1e-8)``.

Shallow encoders [our decision]: when only one stage is at stride ≥ 4 (a small ``nn.Sequential``,
or a 32 px input) the decoder gets one residual bottleneck at that stage's resolution instead of no
layer at all (a bare 1×1 head had 1.5 k parameters and gave near-empty maps); when no stage
reaches stride 4 the coarsest stage is used. Either way the mask is resized to H/4.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..models.arch_check import build_checked
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.weights import WeightsError, load_state_into
from ..models.wrapper import Classifier
from ..models.zoo import embedded_checkpoint
from . import INTERPRETERS
from .base import Interpretation, Interpreter, minmax_normalise

RTS_STRIDE = 4


class Bottleneck(nn.Module):
    """Residual bottleneck ``cin -> cout`` (1×1, 3×3, 1×1 convs with BN, projected shortcut)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = max(8, cout // 2)
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class UpBlock(nn.Module):
    """conv3×3 -> 4·cout, BN, ReLU, pixel-shuffle ×2, ReLU, concat skip, bottleneck -> cout."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, 4 * cout, 3, padding=1, bias=False), nn.BatchNorm2d(4 * cout), nn.ReLU()
        )
        self.merge = Bottleneck(cout + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.pixel_shuffle(self.conv(x), 2))
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.merge(torch.cat([x, skip], dim=1))


class RTSNet(nn.Module):
    """Selector + decoder over the encoder's stages at strides ≥ 4 (fine -> coarse).

    Args:
        channels: channels of the used encoder stages, fine (stride 4) to coarse.
        num_classes: size of the selector embedding's label space.
        widths: decoder widths per block (coarse -> fine); default ``max(32, skip/4)``.
    """

    def __init__(self, channels: list[int], num_classes: int, widths: list[int] | None = None) -> None:
        super().__init__()
        if not channels:
            raise ValueError("RTS needs at least one encoder stage at stride >= 4")
        k = channels[-1]
        self.channels, self.num_classes = list(channels), num_classes
        self.embedding = nn.Parameter(torch.randn(num_classes, k) / k**0.5)
        skips = list(reversed(channels[:-1]))
        if widths is not None:
            self.widths = list(widths)
        else:
            self.widths = [max(32, c // 4) for c in skips] if skips else [max(32, k // 4)]
        blocks, cin = [], k
        for cskip, cout in zip(skips, self.widths if skips else [], strict=True):
            blocks.append(UpBlock(cin, cskip, cout))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        # one encoder stage: a residual bottleneck refines it (a checkpoint with widths [] has none)
        self.refine = Bottleneck(k, self.widths[0]) if not skips and self.widths else None
        cin = self.widths[0] if self.refine is not None else cin
        self.head = nn.Conv2d(cin, 2, 1)

    def forward(
        self, stages: list[torch.Tensor], t: torch.Tensor, kappa: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask (B, 1, h, w) at stride 4 in [0, 1] and exists logits (B, 2)."""
        s = stages[-1]
        a = torch.einsum("bkhw,bk->bhw", s, self.embedding[t])[:, None]
        x = s * torch.sigmoid(a - kappa)
        abar = a.mean(dim=(1, 2, 3))
        exists = torch.stack([-abar / 2, abar / 2], dim=1)
        for block, skip in zip(self.blocks, reversed(stages[:-1]), strict=True):
            x = block(x, skip)
        if self.refine is not None:
            x = self.refine(x)
        uv = self.head(x)
        u, v = uv[:, :1].abs(), uv[:, 1:].abs()
        return u / (u + v + 1e-8), exists


def encoder_stages(model: Classifier, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The classifier's stages at strides ≥ 4 (fine -> coarse) and its logits, from one pass.

    When no stage reaches stride 4 (a shallow network), the coarsest stage alone.

    Shapes: x (B, 3, H, W) -> [(B, C_i, H/s_i, W/s_i) for s_i ≥ 4], logits (B, num_classes).
    """
    stages, logits = model.stages_and_logits(x)
    h = x.shape[-2]
    used = [s for s in stages if h // s.shape[-2] >= RTS_STRIDE]
    return (used or stages[-1:]), logits


def build_rts_net(model: Classifier, widths: list[int] | None = None) -> RTSNet:
    """A fresh RTSNet fitted to ``model``'s encoder stages (probed at its input size)."""
    size = model.input_size or (224, 224)
    with torch.no_grad():
        stages, logits = encoder_stages(model, torch.zeros(1, 3, *size, device=model.mean.device))
    return RTSNet([s.shape[1] for s in stages], logits.shape[1], widths)


class RtsInterpreter(Interpreter):
    """Real-time saliency map from one pass of classifier + selector + decoder.

    Args:
        model: the wrapped classifier (also the encoder).
        net: the trained selector/decoder (:class:`RTSNet`).
        kappa: model confidence κ of the selector (0 for models we train).
        normalise: ``"none"`` (raw mask, default) or ``"minmax"``.

    Shape:
        x: (B, 3, H, W) -> map (B, 1, H/4, W/4), logits (B, C),
        aux ``encoder_logits`` (B, C) (= logits) and ``exists_logits`` (B, 2).
    """

    name = "rts"
    attack_term_names = ("encoder",)

    def __init__(self, model: Classifier, net: RTSNet, kappa: float = 0.0, normalise: str = "none") -> None:
        super().__init__(model)
        if normalise not in ("none", "minmax"):
            raise ValueError(f"normalise must be 'none' or 'minmax', got {normalise!r}")
        self.net, self.kappa, self.normalise = net, kappa, normalise
        self.eval()  # BatchNorm in eval mode: samples never interact

    def native_size(self, height: int, width: int) -> tuple[int, int]:
        return height // RTS_STRIDE, width // RTS_STRIDE

    def attack_terms(self, out: Interpretation, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """``encoder``: CE of the encoder logits (λ2 in the paper; z_E = z here, spec §4.6)."""
        return {"encoder": F.cross_entropy(out.aux["encoder_logits"], t, reduction="none")}

    def interpret(self, x: torch.Tensor, t: torch.Tensor, state: Any, graph: bool) -> Interpretation:
        stages, logits = encoder_stages(self.model, x)
        mask, exists = self.net(stages, t, self.kappa)
        h, w = self.native_size(*x.shape[-2:])
        if mask.shape[-2:] != (h, w):
            mask = F.interpolate(mask, size=(h, w), mode="bilinear", align_corners=False)
        out = minmax_normalise(mask) if self.normalise == "minmax" else mask
        return Interpretation(logits, out, None, {"encoder_logits": logits, "exists_logits": exists})


def save_rts(path: str, net: RTSNet, model: Classifier, meta: dict[str, Any], overwrite: bool = False) -> None:
    """Write an RTS checkpoint (selector + decoder weights, encoder description)."""
    full = {
        "arch": "rts",
        "classes": model.classes or [str(i) for i in range(net.num_classes)],
        "mean": model.mean.flatten().tolist(),
        "std": model.std.flatten().tolist(),
        "input_size": list(model.input_size or (224, 224)),
        "channels": net.channels,
        "widths": net.widths,
        "encoder": model.name,
        **meta,
    }
    save_checkpoint(path, net.state_dict(), full, overwrite=overwrite)


def load_rts_net(path: str, model: Classifier) -> tuple[RTSNet, dict[str, Any]]:
    """Load an RTS checkpoint for ``model``, checking that it fits the classifier's encoder."""
    state, meta = load_checkpoint(path)
    if meta.get("arch") != "rts":
        raise WeightsError(f"{path} is not an RTS checkpoint (arch {meta.get('arch')!r})")
    probe = build_rts_net(model)
    if probe.channels != meta["channels"] or probe.num_classes != len(meta["classes"]):
        raise WeightsError(
            f"{path} was trained for encoder stages {meta['channels']} / {len(meta['classes'])} "
            f"classes, but {model.name} has {probe.channels} / {probe.num_classes}"
        )
    # shapes checked on the meta device first: a crafted file's "widths" cannot allocate gigabytes
    net = build_checked(lambda: RTSNet(meta["channels"], len(meta["classes"]), meta["widths"]), {}, state, path)
    load_state_into(net, state, path)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, meta


@INTERPRETERS.register("rts")
def create_rts(
    model: Classifier, weights: str | None = None, kappa: float = 0.0, normalise: str = "none"
) -> RtsInterpreter:
    """RTS: trained masking network (encoder = classifier), map at H/4."""
    path = weights or embedded_checkpoint(f"rts-{model.name}")
    if not os.path.isfile(path):
        raise WeightsError(
            f"no RTS weights for {model.name!r} ({path} not found); train them with "
            f"`doublecross train-rts --model {model.name} --out rts.pt` and pass `--rts-weights rts.pt` "
            "(library: create_interpreter('rts', model, weights='rts.pt'))"
        )
    net, _ = load_rts_net(path, model)
    return RtsInterpreter(model, net, kappa=kappa, normalise=normalise).to(model.mean.device)
