"""Class-exemplar pool for Q4 (spec §1.6, §9): correctly classified images OUTSIDE the attack set.

The attack set is the first ``limit`` correctly classified images of the dataset in order
(:func:`doublecross.experiments.runner.attack_set`); the pool continues the same scan after it and
keeps up to ``per_class`` correctly classified images of every class, with the attack set's
preprocessing, so an exemplar is never one of the attacked images.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from ..data.safe_image import readable_items


def exemplar_pool(
    dataset: Any, model: Any, skip: int, per_class: int = 8, batch_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Correctly classified images after the first ``skip`` correct ones: ``(x (P, 3, H, W), y (P,))``.

    Args:
        dataset: the attack set's dataset (items ``(x, y, ...)``; unlabelled images (y < 0) are skipped).
        model: the classifier.
        skip: number of correctly classified images at the start that form the attack set.
        per_class: at most this many exemplars per class.

    Raises:
        ValueError: no correctly classified image is left outside the attack set.
    """
    device = model.mean.device
    seen, xs, ys = 0, [], []
    counts: dict[int, int] = {}
    n_classes = int(model.num_classes)
    items_iter = (item for _, item in readable_items(dataset))  # unreadable files skipped, as in the attack set
    while True:
        items = list(itertools.islice(items_iter, batch_size))
        if not items:
            break
        x = torch.stack([it[0] for it in items])
        y = torch.tensor([int(it[1]) for it in items])
        with torch.no_grad():
            pred = model(x.to(device)).argmax(1).cpu()
        for i in range(len(items)):
            if int(y[i]) < 0 or int(pred[i]) != int(y[i]):
                continue
            seen += 1
            if seen <= skip:
                continue
            c = int(y[i])
            if counts.get(c, 0) < per_class:
                counts[c] = counts.get(c, 0) + 1
                xs.append(x[i])
                ys.append(c)
        if seen > skip and len(counts) == n_classes and all(v >= per_class for v in counts.values()):
            break
    if not xs:
        raise ValueError("class-exemplar targets need correctly classified images outside the attack set; none left")
    return torch.stack(xs), torch.tensor(ys)
