"""Is the network normalising its inputs itself? (So that ``Classifier`` would normalise twice.)

``Classifier`` feeds the network ``(x - mean) / std``. A network that already subtracts a mean and
divides by a std inside its forward (a ``torchvision.transforms.Normalize`` module, or any module
holding 3-element tensors named ``*mean`` and ``*std``) then sees inputs normalised twice, and
its accuracy collapses without any error. ``find_input_normalisation`` spots such modules
statically; ``normalisation_check`` compares the accuracy with and without our normalisation on
a labelled batch (what a CLI can run on the first batch of a user model).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _three_numbers(v: object) -> bool:
    if isinstance(v, torch.Tensor):
        return v.numel() == 3 and v.is_floating_point()
    return isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 3 and all(
        isinstance(e, (int, float)) for e in v
    )


def find_input_normalisation(net: nn.Module) -> str | None:
    """Name of a submodule that looks like an input normaliser (``"<root>"`` for ``net`` itself), or ``None``.

    Looks for ``torchvision.transforms.Normalize`` modules and for modules whose buffers, parameters
    or plain attributes include 3-element values named ``*mean`` and ``*std`` (BatchNorm's
    ``running_mean`` / ``running_var`` never match: they are not paired with a ``*std``).
    """
    try:
        from torchvision.transforms import Normalize
    except ImportError:  # pragma: no cover - torchvision is a dependency
        Normalize = ()  # type: ignore[assignment,misc]  # noqa: N806
    for name, module in net.named_modules():
        if Normalize and isinstance(module, Normalize):
            return name or "<root>"
        values = {k: v for k, v in vars(module).items() if not k.startswith("_")}
        values.update(module.named_buffers(recurse=False))
        values.update(module.named_parameters(recurse=False))
        values = {k.lower(): v for k, v in values.items()}
        means = [k for k, v in values.items() if k.endswith("mean") and "running" not in k and _three_numbers(v)]
        stds = [k for k, v in values.items() if k.endswith("std") and _three_numbers(v)]
        if means and stds:
            return name or "<root>"
    return None


@torch.no_grad()
def normalisation_check(model: nn.Module, x: torch.Tensor, y: torch.Tensor, margin: float = 0.2) -> str | None:
    """A warning text when ``model`` classifies ``x`` clearly better *without* its normalisation, else ``None``.

    Args:
        model: a :class:`~doublecross.models.wrapper.Classifier`.
        x: images (B, 3, H, W) in [0, 1]; y: labels (B,).
        margin: accuracy gain (absolute) without normalisation that triggers the warning.

    Compares ``acc(net((x - mean)/std))`` with ``acc(net(x))``.
    """
    with_norm = float((model(x).argmax(1) == y).float().mean())
    without = float((model.net(x).argmax(1) == y).float().mean())
    if without >= with_norm + margin:
        return (
            f"{model.name}: accuracy {with_norm:.1%} with doublecross's mean/std normalisation but {without:.1%} "
            f"without it on {len(y)} images: the network probably normalises its inputs itself; "
            "use Classifier(net, normalise=False) (CLI: --no-normalise)"
        )
    return None
