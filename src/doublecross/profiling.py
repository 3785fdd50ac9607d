"""Counting classifier passes: a load-independent measure of an attack's cost (spec §11).

Wall times on a shared machine move with the load; the number of images pushed through the
classifier does not. ``count_forwards(model)`` registers a forward hook on the classifier for the
duration of a ``with`` block and counts calls and images (the batch sizes summed); the hook is
removed on exit, also on error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ForwardCounter:
    """Classifier passes seen by :func:`count_forwards`.

    Attributes:
        calls: forward calls (one per batch, whatever its size).
        images: images forwarded, ``Σ_calls B`` (the unit F of spec §11 times the batch size).
    """

    calls: int = 0
    images: int = 0

    def passes(self, batch: int) -> float:
        """Images forwarded in units of full-batch passes: ``images / batch``."""
        return self.images / batch


@contextmanager
def count_forwards(module: nn.Module) -> Iterator[ForwardCounter]:
    """Count the forward calls of ``module`` (and images through it) inside the block.

    Shape: each call's first input (B, ...) adds B to ``images``.
    """
    counter = ForwardCounter()

    def hook(_mod: nn.Module, args: tuple, _out: torch.Tensor) -> None:
        counter.calls += 1
        counter.images += int(args[0].shape[0]) if args and isinstance(args[0], torch.Tensor) else 1

    handle = module.register_forward_hook(hook)
    try:
        yield counter
    finally:
        handle.remove()
