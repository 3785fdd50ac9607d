"""The classifier wrapper: any ``nn.Module`` classifier becomes an attack target.

Inputs are ``(B, 3, H, W)`` floats in [0, 1] pixel space; mean/std normalisation happens inside,
so budgets, clipping and quantisation live in pixel space (spec §2.1). The wrapper is in eval
mode with frozen parameters, and every ``nn.ReLU`` is switched out of in-place mode (in-place
ReLUs break forward hooks and double backward, spec §10).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .adapters import Adapter, adapter_names, find_adapter

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_images(x: Any, name: str = "x") -> torch.Tensor:
    """Validate a batch of images: a floating tensor ``(B, 3, H, W)`` with values in [0, 1].

    Raises:
        TypeError: not a floating-point tensor.
        ValueError: wrong shape, empty, non-finite or out of [0, 1].
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    with torch.no_grad():
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must lie in [0, 1] (pixel space, unnormalised); got range [{lo:.4g}, {hi:.4g}]")
    return x


class Classifier(nn.Module):
    """A frozen, eval-mode classifier on [0, 1] inputs with feature/head access for CAM.

    Args:
        net: the raw network, taking normalised inputs.
        mean: per-channel mean used for normalisation.
        std: per-channel std used for normalisation.
        classes: class names (defaults to ``"0" .. "C-1"`` once known).
        input_size: the (H, W) the network was trained on, if fixed (informational).
        name: a display name.

    Shape:
        x: (B, 3, H, W) in [0, 1] -> logits (B, C).
    """

    def __init__(
        self,
        net: nn.Module,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        classes: Sequence[str] | None = None,
        input_size: tuple[int, int] | None = None,
        name: str = "classifier",
    ) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be an nn.Module, got {type(net).__name__}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need 3 entries with std > 0, got mean={mean}, std={std}")
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.classes = list(classes) if classes is not None else None
        self.input_size = input_size
        self.name = name
        self.adapter: Adapter | None = find_adapter(net)
        for m in net.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False
            if hasattr(m, "memory_efficient"):  # torchvision DenseNet checkpointing
                m.memory_efficient = False
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Classifier:
        """The wrapped classifier always stays in eval mode (BatchNorm must not couple samples)."""
        return super().train(False)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` per channel."""
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x)
        if self.adapter is None:
            return self.net(self.normalise(x))
        return self.features_and_logits(x)[1]

    @property
    def supports_features(self) -> bool:
        """Whether the last feature map and linear head are reachable (CAM applies)."""
        return self.adapter is not None

    def _require_adapter(self) -> Adapter:
        if self.adapter is None:
            raise TypeError(
                f"cannot reach the last feature map and linear head of {type(self.net).__name__}: "
                f"supported families are {', '.join(adapter_names())} (any network ending "
                "conv -> global average pool -> nn.Linear can be adapted by adding an Adapter)"
            )
        return self.adapter

    @property
    def linear(self) -> nn.Linear:
        """The final linear layer (weights ``(C, K)``)."""
        return self._require_adapter().linear(self.net)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass giving the last feature map ``A`` (B, K, h, w) and logits ``fc(mean_hw A)``."""
        adapter = self._require_adapter()
        feats = adapter.features(self.net, self.normalise(x))
        return feats, adapter.linear(self.net)(feats.mean(dim=(2, 3)))

    def stages_and_logits(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """One pass giving the per-resolution feature maps (fine -> coarse, last = ``A``) and logits."""
        adapter = self._require_adapter()
        stages = adapter.stages(self.net, self.normalise(x))
        return stages, adapter.linear(self.net)(stages[-1].mean(dim=(2, 3)))

    @property
    def num_classes(self) -> int | None:
        if self.adapter is not None:
            return self.linear.out_features
        return len(self.classes) if self.classes is not None else None

    def class_name(self, index: int) -> str:
        if self.classes is not None and 0 <= index < len(self.classes):
            return self.classes[index]
        return str(index)
