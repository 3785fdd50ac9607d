"""Training of our own classifiers (``doublecross train``): seeded, with progress, checkpointed.

SGD with Nesterov momentum and a one-cycle learning-rate schedule, random horizontal flips,
optional Gaussian-noise augmentation (per-image σ ~ U(0, noise_std)), cross-entropy; the test
accuracy is measured at the end and stored in the checkpoint metadata.

Optional input-gradient regularisation (double backpropagation, Drucker & LeCun 1992; Ross &
Doshi-Velez 2018), on the [0, 1] input x of a batch of B:

    L = mean_b CE(f(x_b), y_b) + μ · mean_b ‖∂CE(f(x_b), y_b)/∂x_b‖²        (μ = ``grad_penalty``)

``init`` starts from an existing checkpoint (a fine-tune) instead of a fresh network;
``init_weights`` from a pretrained torchvision state dict with a fresh K-way head (``finetune.py``).
``dataset: folder`` trains on a labelled folder (``root``) at ``image_size``, holding out a seeded,
stratified ``val_fraction`` of each class as the test set.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from .. import __version__
from ..config import from_dict, load_preset
from ..data import DATASETS, create_dataset
from .checkpoint import save_checkpoint
from .wrapper import IMAGENET_MEAN, IMAGENET_STD, Classifier
from .zoo import ARCHITECTURES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """What ``doublecross train`` trains (presets ``train-*``; CLI flags override)."""

    arch: str = field(metadata={"choices": ARCHITECTURES})
    dataset: str = field(metadata={"choices": DATASETS})
    epochs: int = field(default=15, metadata={"min": 1})
    batch_size: int = field(default=128, metadata={"min": 1})
    lr: float = field(default=0.1, metadata={"min": 0.0})
    weight_decay: float = field(default=5e-4, metadata={"min": 0.0})
    noise_std: float = field(default=0.0, metadata={"min": 0.0})
    grad_penalty: float = field(default=0.0, metadata={"min": 0.0})
    init: str | None = None
    seed: int = 0
    root: str | None = None
    train_count: int | None = None
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    arch_kwargs: dict = field(default_factory=dict)
    init_weights: str | None = None
    num_classes: int | None = field(default=None, metadata={"min": 2})
    image_size: int | None = field(default=None, metadata={"min": 8})
    val_fraction: float = field(default=0.2, metadata={"min": 0.0})

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TrainConfig:
        return load_preset(cls, name, "train", overrides)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return from_dict(cls, data, source="train config")


def stack_dataset(ds: Dataset, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All (or the first ``limit``) items of ``ds`` as ``X (N, 3, H, W)`` and ``y (N,)`` int64."""
    from ..data.safe_image import readable_items

    items = [item for _, item in readable_items(ds, limit)]  # unreadable folder images are skipped
    if not items:
        raise ValueError("no readable image in the dataset")
    return torch.stack([it[0] for it in items]), torch.tensor([int(it[1]) for it in items], dtype=torch.int64)


@torch.no_grad()
def accuracy(model: Classifier, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on images ``x (N, 3, H, W)`` in [0, 1] and labels ``y (N,)``."""
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    return correct / max(1, len(x))


@torch.no_grad()
def predicted_labels(model: Classifier, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``y`` with every unknown label (< 0) replaced by the model's prediction. Shapes: (N, 3, H, W), (N,) -> (N,)."""
    unknown = (y < 0).nonzero().flatten()
    if len(unknown) == 0:
        return y
    y = y.clone()
    for i in range(0, len(unknown), batch_size):
        idx = unknown[i : i + batch_size]
        y[idx] = model(x[idx].to(model.mean.device)).argmax(1).cpu()
    log.info("%d unlabelled images take the model's predicted class as their label", len(unknown))
    return y


def check_label_space(model: Classifier, classes: list[str] | tuple[str, ...] | None, source: str) -> None:
    """Refuse labels from a dataset whose classes are not the model's (they would mean other classes).

    A model with unnamed classes (``"0" .. "C-1"``) accepts any dataset with C classes.

    Raises:
        ValueError: the class counts differ, or both sides name their classes differently.
    """
    if not classes:
        return
    mine = list(model.classes or [])
    k = len(mine) if mine else model.num_classes
    unnamed = mine == [str(i) for i in range(len(mine))]
    if (k is not None and k != len(classes)) or (mine and not unnamed and list(classes) != mine):
        raise ValueError(
            f"{source} has classes {list(classes)[:5]}{'...' if len(classes) > 5 else ''} ({len(classes)}), "
            f"{model.name} has {k}: the labels would mean other classes; use --images DIR (unlabelled "
            "images take the model's predicted class)"
        )


_PROVENANCE = ("command", "accuracy", "epochs", "train_time_s", "init", "init_meta")


def initial_network(cfg: TrainConfig, classes: list[str]) -> tuple[torch.nn.Module, dict[str, Any] | None]:
    """A fresh ``cfg.arch``, or the network of the checkpoint ``cfg.init`` (checked to match).

    Returns the network and, for a fine-tune, the init checkpoint's provenance (its command,
    accuracy, epochs, training time and its own ``init`` chain), recorded as ``init_meta``.
    """
    if cfg.init is not None and cfg.init_weights is not None:
        raise ValueError("init (a doublecross checkpoint) and init_weights (a pretrained state dict) are exclusive")
    if cfg.init_weights is not None:
        from .finetune import load_backbone

        net = ARCHITECTURES.create(cfg.arch, num_classes=len(classes), **cfg.arch_kwargs)
        head = load_backbone(net, cfg.init_weights)
        log.info("fine-tune %s from %s with a fresh %d-way head %r", cfg.arch, cfg.init_weights, len(classes), head)
        return net, None
    if cfg.init is None:
        return ARCHITECTURES.create(cfg.arch, num_classes=len(classes), **cfg.arch_kwargs), None
    from .zoo import create_model

    clf = create_model(cfg.init)
    if list(clf.classes or []) != list(classes):
        raise ValueError(f"init {cfg.init!r} has classes {clf.classes}, the dataset has {classes}")
    meta = getattr(clf, "meta", None) or {}  # written by `doublecross train` (classifier_from_checkpoint)
    arch = meta.get("arch")
    if arch != cfg.arch:
        raise ValueError(f"init {cfg.init!r} is a {arch or type(clf.net).__name__!r}, not a {cfg.arch!r}")
    provenance = {k: meta[k] for k in _PROVENANCE if k in meta}
    return clf.net.requires_grad_(True), provenance  # loaded models come frozen


def training_loss(
    net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, mu: float
) -> torch.Tensor:
    """mean_b CE + μ·mean_b ‖∂CE_b/∂x_b‖² on the [0, 1] input. Shapes: x (B, 3, H, W), y (B,) -> scalar."""
    if mu == 0:
        return F.cross_entropy(net((x - mean) / std), y)
    x = x.detach().requires_grad_(True)
    ce = F.cross_entropy(net((x - mean) / std), y, reduction="none")
    (g,) = torch.autograd.grad(ce.sum(), x, create_graph=True)  # row b holds ∂CE_b/∂x_b
    return ce.mean() + mu * g.pow(2).flatten(1).sum(1).mean()


def _folder_split(cfg: TrainConfig) -> tuple[list[str], tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """(classes, (x, y) train, (x, y) test) of a labelled folder, split per class (``finetune.py``)."""
    from .finetune import stratified_split

    if cfg.root is None:
        raise ValueError("training on a folder needs its path (--images DIR)")
    ds = create_dataset("folder", root=cfg.root, image_size=cfg.image_size or 224)
    x, y = stack_dataset(ds, cfg.train_count)
    if (y < 0).any() or len(ds.classes) < 2:
        raise ValueError(f"training needs labelled images: one sub-folder per class (at least 2) under {cfg.root}")
    tr, te = stratified_split(y, cfg.val_fraction, cfg.seed)
    if len(te) == 0:
        raise ValueError(f"{cfg.root}: too few images to hold out a test set (need 2 per class)")
    return list(ds.classes), (x[tr], y[tr]), (x[te], y[te])


def train(
    cfg: TrainConfig, out: str, overwrite: bool = False, progress: bool | None = None, command: str | None = None
) -> dict[str, Any]:
    """Train ``cfg.arch`` on ``cfg.dataset`` and write a checkpoint to ``out``.

    Returns:
        The checkpoint metadata (accuracy, training time, ...).

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is false (checked before training).
    """
    import os

    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.dataset == "folder":
        classes, (x_train, y_train), (x_test, y_test) = _folder_split(cfg)
    else:
        kw: dict[str, Any] = {"split": "train", "root": cfg.root, "seed": 0}
        if cfg.train_count is not None:
            kw["count"] = cfg.train_count
        size = {"image_size": cfg.image_size} if cfg.image_size is not None else {}
        train_ds = create_dataset(cfg.dataset, **kw, **size)
        test_ds = create_dataset(cfg.dataset, split="test", root=cfg.root, seed=0, **size)
        classes = list(train_ds.classes)
        x_train, y_train = stack_dataset(train_ds)
        x_test, y_test = stack_dataset(test_ds)
    if cfg.num_classes is not None and cfg.num_classes != len(classes):
        raise ValueError(f"num_classes is {cfg.num_classes} but the {cfg.dataset} data has {len(classes)} classes")
    net, init_meta = initial_network(cfg, classes)
    mean = torch.tensor(cfg.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std).view(1, 3, 1, 1)
    steps_per_epoch = -(-len(x_train) // cfg.batch_size)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    show = sys.stderr.isatty() if progress is None else progress
    t0 = time.time()
    net.train()
    bar = tqdm(total=cfg.epochs * steps_per_epoch, disable=not show, desc=f"train {cfg.arch}")
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(x_train), generator=gen)
        total, seen = 0.0, 0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            x, y = x_train[idx], y_train[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            if cfg.noise_std > 0:  # per-image sigma ~ U(0, noise_std): smoother, more local gradients
                sigma = torch.rand(len(idx), 1, 1, 1, generator=gen) * cfg.noise_std
                x = (x + sigma * torch.randn(x.shape, generator=gen)).clamp(0, 1)
            loss = training_loss(net, x, y, mean, std, cfg.grad_penalty)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, seen = total + loss.item() * len(idx), seen + len(idx)
            bar.update(1)
        bar.set_postfix(epoch=epoch + 1, loss=f"{total / seen:.3f}")
        log.info("epoch %d/%d loss %.4f", epoch + 1, cfg.epochs, total / seen)
    bar.close()
    train_time = time.time() - t0
    input_size = list(x_train.shape[-2:])
    clf = Classifier(net, cfg.mean, cfg.std, classes=classes)
    acc = accuracy(clf, x_test, y_test)
    meta = {
        "arch": cfg.arch,
        "arch_kwargs": dict(cfg.arch_kwargs),
        "classes": classes,
        "mean": list(cfg.mean),
        "std": list(cfg.std),
        "input_size": input_size,
        "dataset": cfg.dataset,
        "accuracy": acc,
        "test_size": len(x_test),
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "lr": cfg.lr,
        "noise_std": cfg.noise_std,
        "grad_penalty": cfg.grad_penalty,
        "init": cfg.init,
        "init_meta": init_meta,
        "init_weights": cfg.init_weights,
        "val_fraction": cfg.val_fraction if cfg.dataset == "folder" else None,
        "train_count": len(x_train),
        "train_time_s": round(train_time, 1),
        "threads": torch.get_num_threads(),
        "command": command or "",
        "torch": str(torch.__version__),
        "doublecross": __version__,
    }
    save_checkpoint(out, net.state_dict(), meta, overwrite=overwrite)
    return meta
