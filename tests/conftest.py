"""Shared, seeded fixtures: tiny models and scene batches (no downloads)."""

from __future__ import annotations

import pytest
import torch

from doublecross.data.scenes import ScenesDataset
from doublecross.models import Classifier, create_model
from doublecross.models.small import SmallDenseNet, SmallResNet

torch.set_num_threads(min(2, torch.get_num_threads()))  # OMP_NUM_THREADS=1 respected


@pytest.fixture(scope="session")
def scenes_resnet() -> Classifier:
    return create_model("scenes-resnet")


@pytest.fixture(scope="session")
def scenes_densenet() -> Classifier:
    return create_model("scenes-densenet")


@pytest.fixture(scope="session")
def tiny_resnet() -> Classifier:
    torch.manual_seed(0)
    return Classifier(SmallResNet(num_classes=10, width=8, depth=1), name="tiny-resnet", input_size=(64, 64))


@pytest.fixture(scope="session")
def tiny_densenet() -> Classifier:
    torch.manual_seed(0)
    return Classifier(SmallDenseNet(num_classes=10, growth=6, layers=2), name="tiny-densenet", input_size=(64, 64))


@pytest.fixture(scope="session")
def scene_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """8 test scenes: images (8, 3, 64, 64), labels (8,), masks (8, 1, 64, 64)."""
    ds = ScenesDataset("test", size=8)
    items = [ds[i] for i in range(8)]
    return (torch.stack([i[0] for i in items]), torch.tensor([i[1] for i in items]), torch.stack([i[2] for i in items]))
