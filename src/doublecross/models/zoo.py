"""The model zoo: architectures and ready-to-attack classifiers, registered by name.

``ARCHITECTURES`` builds raw, untrained networks (used by ``doublecross train``); ``MODELS``
builds wrapped :class:`Classifier` objects with weights: the embedded scene checkpoints shipped
in the package (no argument needed), checkpoints of ours given by path, and torchvision
ResNet-50 / DenseNet-169 with ImageNet weights from ``--weights PATH`` or the torch hub cache.
"""

from __future__ import annotations

import os
from importlib import resources

import torchvision
from torch import nn

from ..registry import Registry
from .arch_check import build_checked, check_arch_kwargs, check_meta
from .checkpoint import load_checkpoint
from .small import SmallDenseNet, SmallResNet
from .weights import (
    WeightsError,
    extract_state_dict,
    load_state_into,
    load_weights_file,
    remap_densenet_keys,
    resolve_hub_file,
)
from .wrapper import IMAGENET_MEAN, IMAGENET_STD, Classifier

ARCHITECTURES: Registry[nn.Module] = Registry("architecture")
MODELS: Registry[Classifier] = Registry("model")


@ARCHITECTURES.register("small-resnet")
def small_resnet(num_classes: int = 10, width: int = 16, depth: int = 3) -> nn.Module:
    """ResNet-20-like CNN for 32-64 px inputs (stride-2 stem, 3 stages)."""
    return SmallResNet(num_classes=num_classes, width=width, depth=depth)


@ARCHITECTURES.register("small-densenet")
def small_densenet(num_classes: int = 10, growth: int = 12, layers: int = 4) -> nn.Module:
    """DenseNet-BC-like CNN for 32-64 px inputs (stride-2 stem, 3 dense blocks)."""
    return SmallDenseNet(num_classes=num_classes, growth=growth, layers=layers)


@ARCHITECTURES.register("resnet18")
def resnet18_arch(num_classes: int = 1000) -> nn.Module:
    """torchvision ResNet-18 (fine-tune one with ``train --init-weights``)."""
    return torchvision.models.resnet18(weights=None, num_classes=num_classes)


@ARCHITECTURES.register("resnet50")
def resnet50_arch(num_classes: int = 1000) -> nn.Module:
    """torchvision ResNet-50."""
    return torchvision.models.resnet50(weights=None, num_classes=num_classes)


@ARCHITECTURES.register("densenet169")
def densenet169_arch(num_classes: int = 1000) -> nn.Module:
    """torchvision DenseNet-169."""
    return torchvision.models.densenet169(weights=None, num_classes=num_classes)


def embedded_checkpoint(name: str) -> str:
    """Path of an embedded checkpoint shipped in ``doublecross/checkpoints``."""
    return str(resources.files("doublecross") / "checkpoints" / f"{name}.pt")


def classifier_from_checkpoint(path: str, name: str | None = None) -> Classifier:
    """Build a :class:`Classifier` from a checkpoint written by ``doublecross train``."""
    state, meta = load_checkpoint(path)
    arch = meta["arch"]
    if arch not in ARCHITECTURES:
        raise WeightsError(f"{path}: unknown architecture {arch!r}; known: {ARCHITECTURES.names()}")
    check_meta(meta, path)
    factory = ARCHITECTURES.get(arch)
    kwargs = {"num_classes": len(meta["classes"]), **check_arch_kwargs(factory, meta.get("arch_kwargs"), arch, path)}
    net = build_checked(factory, kwargs, state, path)  # shapes checked on the meta device first
    load_state_into(net, state, path)
    clf = Classifier(
        net,
        meta["mean"],
        meta["std"],
        classes=meta["classes"],
        input_size=tuple(meta["input_size"]),
        name=name or os.path.basename(path),
    )
    clf.meta = meta
    return clf


def _embedded(name: str, weights: str | None) -> Classifier:
    path = weights or embedded_checkpoint(name)
    if not os.path.isfile(path):
        raise WeightsError(
            f"embedded checkpoint {path} is missing; retrain it with "
            f"`doublecross train --preset train-{name} --out {path}`"
        )
    return classifier_from_checkpoint(path, name=name)


@MODELS.register("scenes-resnet")
def scenes_resnet(weights: str | None = None) -> Classifier:
    """Embedded default: ResNet-20-like trained on `scenes` (64x64, 10 shapes)."""
    return _embedded("scenes-resnet", weights)


@MODELS.register("scenes-densenet")
def scenes_densenet(weights: str | None = None) -> Classifier:
    """Embedded: DenseNet-BC-like trained on `scenes` (64x64, 10 shapes)."""
    return _embedded("scenes-densenet", weights)


def _checkpoint_model(arch: str, weights: str | None) -> Classifier:
    if weights is None:
        raise WeightsError(f"model {arch!r} needs --weights PATH (a checkpoint from `doublecross train`)")
    clf = classifier_from_checkpoint(weights)
    if clf.meta["arch"] != arch:
        raise WeightsError(f"{weights} holds a {clf.meta['arch']!r} model, not {arch!r}")
    return clf


@MODELS.register("small-resnet")
def small_resnet_model(weights: str | None = None) -> Classifier:
    """ResNet-20-like from a `doublecross train` checkpoint (--weights)."""
    return _checkpoint_model("small-resnet", weights)


@MODELS.register("small-densenet")
def small_densenet_model(weights: str | None = None) -> Classifier:
    """DenseNet-BC-like from a `doublecross train` checkpoint (--weights)."""
    return _checkpoint_model("small-densenet", weights)


def _imagenet(arch: str, weights_enum: list, weights: str | None) -> Classifier:
    path = weights or resolve_hub_file([w.url.rsplit("/", 1)[-1] for w in weights_enum], arch)
    net = ARCHITECTURES.create(arch)
    state = extract_state_dict(load_weights_file(path), path)
    if arch.startswith("densenet"):
        state = remap_densenet_keys(state)
    load_state_into(net, state, path)
    return Classifier(
        net,
        IMAGENET_MEAN,
        IMAGENET_STD,
        classes=weights_enum[0].meta["categories"],
        input_size=(224, 224),
        name=arch,
    )


@MODELS.register("resnet50")
def resnet50(weights: str | None = None) -> Classifier:
    """torchvision ResNet-50, ImageNet weights (--weights or torch hub cache)."""
    w = torchvision.models.ResNet50_Weights
    return _imagenet("resnet50", [w.IMAGENET1K_V1, w.IMAGENET1K_V2], weights)


@MODELS.register("densenet169")
def densenet169(weights: str | None = None) -> Classifier:
    """torchvision DenseNet-169, ImageNet weights (--weights or torch hub cache)."""
    return _imagenet("densenet169", [torchvision.models.DenseNet169_Weights.IMAGENET1K_V1], weights)


def create_model(name: str, weights: str | None = None) -> Classifier:
    """Build a registered model, or load a checkpoint when ``name`` is a path to one."""
    if name not in MODELS and os.path.isfile(name):
        return classifier_from_checkpoint(name)
    return MODELS.create(name, weights=weights)
