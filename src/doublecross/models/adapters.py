"""Per-architecture adapters: how to reach a classifier's last feature map and its linear head.

CAM needs ``A`` (the last post-ReLU convolutional feature map) and the final ``nn.Linear``; an
adapter computes ``A`` and the logits ``fc(mean_hw(A))`` in one pass that reproduces the
network's own forward exactly. Adapters are registered and tried in order; a model none of them
accepts gets the automatic split of :mod:`doublecross.models.features` (slower: a hook per call).

Registering your own (the fast path, or for a network the probe cannot split)::

    from doublecross.models import Adapter, register_adapter

    register_adapter(Adapter(
        name="mynet",
        accepts=lambda net: isinstance(net, MyNet),
        features=lambda net, x: net.body(x),                  # A: (B, K, h, w)
        linear=lambda net: net.fc,                             # logits = fc(mean_hw(A))
        stages=lambda net, x: [net.stage1(x), ...],           # fine -> coarse, last = A
    ))

Register before wrapping the network in ``Classifier`` (the adapter is picked at construction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .small import SmallDenseNet, SmallResNet


@dataclass(frozen=True)
class Adapter:
    """Feature access for one family of architectures.

    Attributes:
        name: family name (shown in errors and ``list models``).
        accepts: predicate on the raw network.
        features: ``(net, x_normalised) -> A`` with ``A`` of shape (B, K, h, w), post-ReLU.
        linear: ``net -> nn.Linear`` mapping the pooled K features to the logits.
        stages: ``(net, x_normalised) -> [F_1, ..., F_n]``, the last feature map of each
            resolution from fine to coarse; ``F_n`` is ``A`` (what RTS's decoder reads).
    """

    name: str
    accepts: Callable[[nn.Module], bool]
    features: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    linear: Callable[[nn.Module], nn.Linear]
    stages: Callable[[nn.Module, torch.Tensor], list[torch.Tensor]]


def _per_resolution(x: torch.Tensor, modules: list[nn.Module]) -> list[torch.Tensor]:
    """Run ``modules`` in order, keeping the last output at each spatial resolution."""
    outs: list[torch.Tensor] = []
    for m in modules:
        x = m(x)
        if outs and outs[-1].shape[-2:] == x.shape[-2:]:
            outs[-1] = x
        else:
            outs.append(x)
    return outs


def _resnet_stages(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return _per_resolution(x, [net.layer1, net.layer2, net.layer3, net.layer4])


def _small_stages(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    first = [net.stem] if hasattr(net, "stem") else []
    outs = _per_resolution(x, first + list(net.body))
    outs[-1] = F.relu(outs[-1]) if isinstance(net, SmallDenseNet) else outs[-1]
    return outs


def _densenet_stages(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    outs = _per_resolution(x, list(net.features))
    outs[-1] = F.relu(outs[-1])
    return outs


def _is_torchvision(cls_name: str) -> Callable[[nn.Module], bool]:
    def accepts(net: nn.Module) -> bool:
        return type(net).__name__ == cls_name and type(net).__module__.startswith("torchvision")

    return accepts


ADAPTERS: list[Adapter] = [
    Adapter(
        "small",
        lambda n: isinstance(n, (SmallResNet, SmallDenseNet)),
        lambda n, x: n.features(x),
        lambda n: n.fc,
        _small_stages,
    ),
    Adapter(
        "torchvision-resnet",
        _is_torchvision("ResNet"),
        lambda n, x: _resnet_stages(n, x)[-1],
        lambda n: n.fc,
        _resnet_stages,
    ),
    # torchvision's DenseNet applies F.relu(..., inplace=True) after `features`; we apply it
    # ourselves, out of place (spec §2.3).
    Adapter(
        "torchvision-densenet",
        _is_torchvision("DenseNet"),
        lambda n, x: F.relu(n.features(x)),
        lambda n: n.classifier,
        _densenet_stages,
    ),
]


def register_adapter(adapter: Adapter, first: bool = True) -> Adapter:
    """Add ``adapter`` to the registry (tried before the built-in ones unless ``first=False``).

    Raises:
        TypeError: not an :class:`Adapter`.
        ValueError: an adapter of that name is already registered.
    """
    if not isinstance(adapter, Adapter):
        raise TypeError(f"register_adapter takes an Adapter, got {type(adapter).__name__}")
    if adapter.name in adapter_names():
        raise ValueError(f"an adapter named {adapter.name!r} is already registered ({', '.join(adapter_names())})")
    ADAPTERS.insert(0, adapter) if first else ADAPTERS.append(adapter)
    return adapter


def unregister_adapter(name: str) -> None:
    """Remove the adapter called ``name``. Raises ValueError if there is none."""
    for i, adapter in enumerate(ADAPTERS):
        if adapter.name == name:
            del ADAPTERS[i]
            return
    raise ValueError(f"no adapter named {name!r} (registered: {', '.join(adapter_names())})")


def find_adapter(net: nn.Module) -> Adapter | None:
    """The first registered adapter that accepts ``net``, or ``None``."""
    for adapter in ADAPTERS:
        if adapter.accepts(net) and isinstance(adapter.linear(net), nn.Linear):
            return adapter
    return None


def adapter_names() -> list[str]:
    return [a.name for a in ADAPTERS]
