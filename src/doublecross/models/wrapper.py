"""The classifier wrapper: any ``nn.Module`` classifier becomes an attack target.

Inputs are ``(B, 3, H, W)`` floats in [0, 1] pixel space; mean/std normalisation happens inside
(``normalise=False`` for a network that normalises itself), so budgets, clipping and quantisation
live in pixel space (spec §2.1). The wrapper is in eval mode with frozen parameters, and every
module with an ``inplace`` flag (ReLU, ReLU6, Hardswish, SiLU, ...) is switched out of in-place
mode (in-place activations break forward hooks and double backward, spec §10).

Feature access (the last feature map ``A``, the per-resolution stages, the head) comes from a
registered :class:`~doublecross.models.adapters.Adapter` when one accepts the network (the fast
path), else from the automatic probe of :mod:`doublecross.models.features`, cached per input size.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .adapters import Adapter, find_adapter
from .features import FeatureAccessError, FeatureSplit, capture, probe_split
from .normalisation import find_input_normalisation

#: Input size of the feature probe when neither the call nor ``input_size`` gives one.
DEFAULT_PROBE_SIZE = (64, 64)

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
    """A frozen, eval-mode classifier on [0, 1] inputs with access to its features (CAM, RTS, Grad-CAM).

    Args:
        net: the raw network, taking normalised inputs (or [0, 1] inputs with ``normalise=False``).
        mean: per-channel mean used for normalisation.
        std: per-channel std used for normalisation.
        classes: class names (defaults to ``"0" .. "C-1"`` once known).
        input_size: the (H, W) the network was trained on, if fixed (also the feature probe's size).
        name: a display name.
        normalise: ``None`` (default): normalise with ``mean``/``std`` and warn when ``net`` looks
            like it normalises its inputs itself (it would be normalised twice); ``True``: normalise,
            no check; ``False``: feed ``net`` the [0, 1] pixels unchanged (mean/std ignored).

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
        normalise: bool | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be an nn.Module, got {type(net).__name__}")
        if normalise not in (None, True, False):
            raise TypeError(f"normalise must be None, True or False, got {normalise!r}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need 3 entries with std > 0, got mean={mean}, std={std}")
        if normalise is False:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.classes = list(classes) if classes is not None else None
        self.input_size = input_size
        self.name = name
        self.adapter: Adapter | None = find_adapter(net)
        self._splits: dict[tuple[int, int], FeatureSplit] = {}
        for m in net.modules():
            if isinstance(getattr(m, "inplace", None), bool):
                m.inplace = False
            if hasattr(m, "memory_efficient"):  # torchvision DenseNet checkpointing
                m.memory_efficient = False
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()
        if normalise is None:
            where = find_input_normalisation(net)
            if where is not None:
                warnings.warn(
                    f"{name}: the network seems to normalise its inputs itself (module {where!r} holds a mean and "
                    f"a std), and Classifier normalises them too with mean={tuple(mean)}, std={tuple(std)}: they "
                    "would be normalised twice. Pass normalise=False if the network expects [0, 1] pixels, or "
                    "normalise=True to silence this warning.",
                    UserWarning,
                    stacklevel=2,
                )

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

    # ---- feature access ---------------------------------------------------------------------

    def feature_split(self, height: int | None = None, width: int | None = None) -> FeatureSplit:
        """The automatic split (feature map, stages, head) at input size ``height × width``.

        Probed once per size (one forward with hooks on every submodule) and cached; the size
        defaults to ``input_size``, else 64×64. Used when no adapter accepts the network, and by
        anyone who wants to know where the features are.

        Raises:
            FeatureAccessError: no spatial feature map feeds the logits (the message says what was searched).
        """
        if height is None or width is None:
            height, width = self.input_size or DEFAULT_PROBE_SIZE
        key = (int(height), int(width))
        if key not in self._splits:
            x = torch.rand(1, 3, *key, generator=torch.Generator().manual_seed(0)).to(self.mean.device)
            try:
                split = probe_split(self.net, self.normalise(x))
            except FeatureAccessError:
                raise
            except (RuntimeError, ValueError) as e:
                raise FeatureAccessError(
                    f"cannot reach the last feature map of {type(self.net).__name__}: probing it with a "
                    f"(1, 3, {key[0]}, {key[1]}) input failed ({e}); pass input_size=(H, W) to Classifier"
                ) from e
            self._splits[key] = split
        return self._splits[key]

    @property
    def supports_features(self) -> bool:
        """Whether the last feature map is reachable (CAM, RTS and Grad-CAM apply)."""
        if self.adapter is not None:
            return True
        try:
            self.feature_split()
        except FeatureAccessError:
            return False
        return True

    def has_linear_head(self, height: int | None = None, width: int | None = None) -> bool:
        """Whether the logits are exactly ``linear(mean_hw(A))`` (CAM is then exact)."""
        return self.adapter is not None or self.feature_split(height, width).linear_head

    @property
    def linear(self) -> nn.Linear:
        """The final linear layer (weights ``(C, K)``) reading ``mean_hw(A)``.

        Raises:
            TypeError: the head is not global pooling -> one ``nn.Linear`` (the message names it).
        """
        if self.adapter is not None:
            return self.adapter.linear(self.net)
        split = self.feature_split()
        if split.head is None:
            raise TypeError(
                f"{type(self.net).__name__} has no single linear layer reading the pooled last feature map "
                f"(searched: {split.describe()}); exact CAM needs global average pooling -> optional flatten/"
                "dropout -> one nn.Linear"
            )
        return dict(self.net.named_modules())[split.head]  # type: ignore[return-value]

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass giving the last feature map ``A`` (B, K, h, w) and the logits (B, C).

        The logits depend on ``A`` through the autograd graph (Grad-CAM can differentiate them
        w.r.t. ``A``). Adapters compute them as ``fc(mean_hw A)``; the automatic path returns the
        network's own output.
        """
        if self.adapter is not None:
            feats = self.adapter.features(self.net, self.normalise(x))
            return feats, self.adapter.linear(self.net)(feats.mean(dim=(2, 3)))
        split = self.feature_split(*x.shape[-2:])
        (feats,), logits = capture(self.net, self.normalise(x), [split.feature])
        return feats, logits

    def stages_and_logits(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """One pass giving the per-resolution feature maps (fine -> coarse, last = ``A``) and logits."""
        if self.adapter is not None:
            stages = self.adapter.stages(self.net, self.normalise(x))
            return stages, self.adapter.linear(self.net)(stages[-1].mean(dim=(2, 3)))
        split = self.feature_split(*x.shape[-2:])
        return capture(self.net, self.normalise(x), list(split.stages))

    def class_weights(
        self,
        feats: torch.Tensor,
        logits: torch.Tensor,
        t: torch.Tensor,
        size: tuple[int, int] | None = None,
        create_graph: bool = False,
    ) -> torch.Tensor:
        """CAM's class weights ``w_{t,k}`` for the feature map ``feats`` of ``features_and_logits``.

        Exact ``W[t, k]`` of the linear head when there is one; otherwise the head linearised at
        ``A``: ``w_{t,k} = Σ_ij ∂z_t/∂A_k(i, j)``, which equals ``W[t, k]`` for a linear head
        (then ``∂z_t/∂A_k(i,j) = W[t,k]/(hw)``) and is Grad-CAM's channel weight (×hw) otherwise.

        Args:
            size: the input's (H, W) (the head is probed at that size; default ``input_size``).
            create_graph: keep the graph of the linearised weights (for an attack).

        Shapes: feats (B, K, h, w), logits (B, C), t (B,) -> (B, K).
        """
        if self.has_linear_head(*(size or (None, None))):
            return self.linear.weight[t]
        if not feats.requires_grad:
            raise ValueError("class_weights needs the graph from feats to logits (call features_and_logits with grad)")
        (g,) = torch.autograd.grad(
            logits.gather(1, t[:, None]).sum(), feats, create_graph=create_graph, retain_graph=True
        )
        return g.sum(dim=(2, 3))

    @property
    def num_classes(self) -> int | None:
        if self.adapter is not None:
            return self.linear.out_features
        if self.classes is not None:
            return len(self.classes)
        for split in self._splits.values():
            return split.num_classes
        return None

    def class_name(self, index: int) -> str:
        if self.classes is not None and 0 <= index < len(self.classes):
            return self.classes[index]
        return str(index)
