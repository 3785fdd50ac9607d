"""Class-exemplar pool for Q4 (spec §1.6, §9): correctly classified images OUTSIDE the attack set.

The attack set is drawn by the runner (:func:`doublecross.experiments.runner.attack_set_with_indices`,
class-balanced and seeded); the pool scans the same dataset in order, skips the attack set's indices
and keeps up to ``per_class`` correctly classified images of every class, with the attack set's
preprocessing, so an exemplar is never one of the attacked images.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from ..data.safe_image import readable_items


def exemplar_pool(
    dataset: Any, model: Any, exclude: set[int], per_class: int = 8, batch_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Correctly classified images whose dataset index is not in ``exclude``: ``(x (P, 3, H, W), y (P,))``.

    Args:
        dataset: the attack set's dataset (items ``(x, y, ...)``; unlabelled images (y < 0) are skipped).
        model: the classifier.
        exclude: dataset indices of the attack set.
        per_class: at most this many exemplars per class, the first in dataset order.

    Raises:
        ValueError: no correctly classified image is left outside the attack set.
    """
    device = model.mean.device
    xs, ys = [], []
    counts: dict[int, int] = {}
    n_classes = int(model.num_classes) if model.num_classes else None
    items_iter = ((i, item) for i, item in readable_items(dataset) if i not in exclude)
    while True:
        items = [it for _, it in itertools.islice(items_iter, batch_size)]
        if not items:
            break
        x = torch.stack([it[0] for it in items])
        y = torch.tensor([int(it[1]) for it in items])
        with torch.no_grad():
            pred = model(x.to(device)).argmax(1).cpu()
        for i in range(len(items)):
            c = int(y[i])
            if c < 0 or int(pred[i]) != c or counts.get(c, 0) >= per_class:
                continue
            counts[c] = counts.get(c, 0) + 1
            xs.append(x[i])
            ys.append(c)
        if n_classes and len(counts) == n_classes and all(v >= per_class for v in counts.values()):
            break
    if not xs:
        raise ValueError("class-exemplar targets need correctly classified images outside the attack set; none left")
    return torch.stack(xs), torch.tensor(ys)
