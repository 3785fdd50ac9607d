"""Fine-tuning: a pretrained torchvision network with a fresh K-way head, and a labelled folder split.

``--init-weights FILE`` is a plain state dict of the architecture (e.g. torchvision's
``resnet50-*.pth``), read with ``weights_only=True`` (or ``.safetensors``). Every tensor but the
last ``nn.Linear``'s (the classification head, found in module order: ``fc`` for ResNets,
``classifier`` for DenseNets) is loaded strictly; the head is replaced by a freshly initialised
``nn.Linear(in_features, K)`` (seeded by the training seed), whatever K the file's head had.

A labelled folder (one sub-folder per class) has no split: :func:`stratified_split` holds out a
seeded ``val_fraction`` of every class (at least one image of each class with two or more) as
the test set the checkpoint's accuracy is measured on.
"""

from __future__ import annotations

import torch
from torch import nn

from .weights import WeightsError, extract_state_dict, load_weights_file, remap_densenet_keys


def last_linear_name(net: nn.Module) -> str:
    """Qualified name of the last ``nn.Linear`` in module order (the classification head).

    Raises:
        WeightsError: the network has no ``nn.Linear``.
    """
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise WeightsError(f"{type(net).__name__} has no nn.Linear head to replace")
    return names[-1]


def load_backbone(net: nn.Module, path: str) -> str:
    """Load every weight of ``path`` into ``net`` except its head's; return the head's name.

    The head of ``net`` (already built with K outputs) keeps its fresh initialisation; the file's
    head tensors (any K) are ignored. Any other missing or unexpected key is an error.

    Raises:
        WeightsError: unreadable/unsafe file, or keys/shapes that do not fit the backbone.
    """
    state = extract_state_dict(load_weights_file(path), path)
    state = remap_densenet_keys(state)
    head = last_linear_name(net)
    head_keys = {f"{head}.weight", f"{head}.bias"}
    backbone = {k: v for k, v in state.items() if k not in head_keys}
    try:
        missing, unexpected = net.load_state_dict(backbone, strict=False)
    except RuntimeError as e:  # shape mismatch
        raise WeightsError(f"weights in {path} do not fit {type(net).__name__}: {e}") from e
    missing = sorted(set(missing) - head_keys)
    if missing or unexpected:
        raise WeightsError(
            f"weights in {path} do not fit {type(net).__name__}'s backbone: missing {missing[:8]}, "
            f"unexpected {sorted(unexpected)[:8]}"
        )
    return head


def reset_head(net: nn.Module, num_classes: int) -> nn.Linear:
    """Replace the last ``nn.Linear`` of ``net`` by a fresh ``nn.Linear(in_features, num_classes)``."""
    name = last_linear_name(net)
    parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
    old = net.get_submodule(name)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    setattr(parent, name.rpartition(".")[2], new)
    return new


def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, test indices): a seeded ``val_fraction`` of every class held out.

    Shape: labels (N,) -> two index tensors that partition range(N). A class with n ≥ 2 images
    gives ``max(1, round(val_fraction·n))`` (at most n − 1) to the test set, one with a single
    image gives none.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    gen = torch.Generator().manual_seed(int(seed))
    train, test = [], []
    for c in sorted(set(labels.tolist())):
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        k = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(val_fraction * len(idx))))
        test += idx[:k].tolist()
        train += idx[k:].tolist()
    return torch.tensor(sorted(train), dtype=torch.long), torch.tensor(sorted(test), dtype=torch.long)
