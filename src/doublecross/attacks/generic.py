"""Which attack preset a run uses when none is named (``doublecross attack --model X`` without ``--preset``).

1. a preset named after the model (the calibrated ``scenes-resnet``, ``scenes-densenet``);
2. else the paper's Table 10 preset for a model it was written for (``resnet50``, ``densenet169``);
3. else a generic preset chosen by input size: ``generic-small`` for inputs of at most
   ``SMALL_INPUT`` px (CIFAR/MNIST-like), ``generic`` above (ImageNet-like). Neither is calibrated
   for your model: they are starting points (paper ε, counts and λ from our calibrations or the
   authors' code) to shorten with ``--steps-scale`` and adjust with ``--set``.
"""

from __future__ import annotations

from .presets import attack_preset_names

SMALL_INPUT = 96


def generic_preset(input_side: int) -> str:
    """``generic-small`` for ``input_side <= SMALL_INPUT`` px, else ``generic``."""
    return "generic-small" if int(input_side) <= SMALL_INPUT else "generic"


def default_preset(model_name: str, input_side: int | None) -> str:
    """The preset for ``model_name`` (a registered name, checkpoint path or user spec), see module doc."""
    names = attack_preset_names()
    if model_name in names:
        return model_name
    if f"table10-{model_name}" in names:
        return f"table10-{model_name}"
    return generic_preset(input_side or 224)
