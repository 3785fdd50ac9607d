"""The attack set (spec §1.4): correctly classified images, drawn class-balanced with a seeded generator.

Each class's images are visited in a seeded random order; classes take turns (sorted by index),
each turn accepting that class's next correctly classified image, until ``limit`` images are
accepted or every class is exhausted. So per-class counts differ by at most one, unless a class
runs out of correctly classified images (its share then goes to the others). The accepted
images are returned in dataset order. Unlabelled images (label < 0) take the model's prediction
as their label: they are all "correct", balanced over the predicted classes.

``selection="first"`` keeps the old rule: the first ``limit`` correct images in dataset order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from ..data.safe_image import UnreadableImage

SELECTIONS = ("balanced", "first")


def _label(ds: Dataset, i: int) -> int:
    try:
        return int(ds[i][1])
    except UnreadableImage:
        return -2  # never chosen


def dataset_labels(ds: Dataset) -> list[int] | None:
    """Every item's label without decoding images when the dataset exposes them, else ``None``.

    Looks for ``labels`` / ``targets`` (a sequence or tensor), torchvision's ``samples``
    (``(path, label)`` pairs), or an :class:`ImageFolderDataset`'s ``paths`` + ``label_of(path)``.
    """
    for attr in ("labels", "targets"):
        v = getattr(ds, attr, None)
        if v is not None and not callable(v) and len(v) == len(ds):
            return [int(x) for x in (v.tolist() if isinstance(v, torch.Tensor) else v)]
    samples = getattr(ds, "samples", None)
    if isinstance(samples, list) and len(samples) == len(ds) and all(isinstance(s, tuple) for s in samples[:1]):
        return [int(s[1]) for s in samples]
    paths, label_of = getattr(ds, "paths", None), getattr(ds, "label_of", None)
    if isinstance(paths, list) and callable(label_of) and len(paths) == len(ds):
        return [int(label_of(p)) for p in paths]
    return None


def balanced_order(labels: list[int], seed: int) -> list[list[int]]:
    """Per class (sorted class ids), the indices of its images in a seeded random order.

    Shape: labels (N,) -> one list per distinct label; the lists partition range(N).
    """
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(len(labels), generator=gen).tolist()
    by_class: dict[int, list[int]] = {}
    for i in perm:
        by_class.setdefault(labels[i], []).append(i)
    return [by_class[c] for c in sorted(by_class)]


def select_balanced(labels: list[int], is_correct: Callable[[int], bool], limit: int, seed: int) -> list[int]:
    """Indices of up to ``limit`` correct images, classes taking turns (see module doc), in index order.

    Args:
        labels: the label of every image (N,).
        is_correct: whether image ``i`` is classified correctly (called lazily, at most once per image).
        limit: how many to accept (≥ 1).
        seed: the draw's seed.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    queues = balanced_order(labels, seed)
    pos = [0] * len(queues)
    chosen: list[int] = []
    active = list(range(len(queues)))
    while active and len(chosen) < limit:
        still = []
        for q in active:
            if len(chosen) == limit:
                still.append(q)
                continue
            queue = queues[q]
            while pos[q] < len(queue):
                i = queue[pos[q]]
                pos[q] += 1
                if is_correct(i):
                    chosen.append(i)
                    break
            if pos[q] < len(queue):
                still.append(q)
        active = still
    return sorted(chosen)


@torch.no_grad()
def select_attack_set(
    ds: Dataset, model: Any, limit: int, seed: int, selection: str = "balanced", batch_size: int = 64
) -> list[tuple[int, int]]:
    """``(dataset index, label)`` of the attack set of ``model`` on ``ds`` (module doc).

    Raises:
        ValueError: unknown ``selection``, or no correctly classified image.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    device = model.mean.device
    unreadable: set[int] = set()

    def image(i: int) -> torch.Tensor | None:
        try:
            return ds[i][0]
        except UnreadableImage:  # logged and recorded by the dataset; never attacked
            unreadable.add(i)
            return None

    def predict(idx: list[int]) -> list[int]:
        """Predicted class per index (-2 for an unreadable file)."""
        out: list[int] = []
        for s in range(0, len(idx), batch_size):
            xs = {i: image(i) for i in idx[s : s + batch_size]}
            ok = [i for i, x in xs.items() if x is not None]
            preds = model(torch.stack([xs[i] for i in ok]).to(device)).argmax(1).tolist() if ok else []
            got = dict(zip(ok, preds, strict=True))
            out += [got.get(i, -2) for i in idx[s : s + batch_size]]
        return out

    labels = dataset_labels(ds)
    if selection == "first":
        chosen: list[tuple[int, int]] = []
        for i in range(len(ds)):
            pred = predict([i])[0]
            if pred == -2:
                continue
            y = labels[i] if labels is not None else int(ds[i][1])
            if pred == y or y < 0:
                chosen.append((i, pred if y < 0 else y))
            if len(chosen) == limit:
                break
    else:
        if labels is None:
            labels = [_label(ds, i) for i in range(len(ds))]
        unlabelled = [i for i, y in enumerate(labels) if y < 0]
        if unlabelled:  # the prediction is the label; balance over predicted classes
            labels = list(labels)
            for i, p in zip(unlabelled, predict(unlabelled), strict=True):
                labels[i] = p
        cache: dict[int, bool] = {i: labels[i] >= 0 for i in unlabelled}  # -2: unreadable

        def correct(i: int) -> bool:
            if i not in cache:
                cache[i] = predict([i])[0] == labels[i]
            return cache[i]

        chosen = [(i, labels[i]) for i in select_balanced(labels, correct, limit, seed)]
    if not chosen:
        raise ValueError(f"no correctly classified image to attack among {len(ds)} images")
    return chosen
