"""Datasets available offline, registered by name."""

from __future__ import annotations

from torch.utils.data import Dataset

from ..registry import Registry
from .fashion_mnist import FashionMNIST
from .folder import ImageFolderDataset
from .scenes import ScenesDataset

DATASETS: Registry[Dataset] = Registry("dataset")


@DATASETS.register("scenes")
def scenes(
    split: str = "test", root: str | None = None, seed: int = 0, image_size: int = 64, count: int | None = None
) -> Dataset:
    """Generated 64x64 shapes on CC0 photos, 10 classes, with object masks."""
    if root is not None:
        raise ValueError("the scenes dataset is generated; it takes no root folder")
    return ScenesDataset(split=split, seed=seed, size=count, image_size=image_size)


@DATASETS.register("fashion-mnist")
def fashion_mnist(
    split: str = "test", root: str | None = None, seed: int = 0, image_size: int = 32, count: int | None = None
) -> Dataset:
    """Fashion-MNIST from IDX files (Debian dataset-fashion-mnist), 3x32x32 (``count``: the first N only)."""
    if image_size != 32:
        raise ValueError(f"fashion-mnist images are 32x32, got image_size={image_size}")
    if count is not None and count < 1:
        raise ValueError(f"count must be positive, got {count}")
    ds = FashionMNIST(split=split, root=root)
    if count is not None:
        ds.images, ds.labels = ds.images[:count], ds.labels[:count]
    return ds


@DATASETS.register("folder")
def folder(
    split: str = "test",
    root: str | None = None,
    seed: int = 0,
    image_size: int = 224,
    class_names: list[str] | None = None,
    labels: str | None = None,
) -> Dataset:
    """A folder of your images (--images DIR): shorter side S*256/224, centre-crop S; sub-folders = classes."""
    if root is None:
        raise ValueError("the folder dataset needs a root folder (--images DIR)")
    return ImageFolderDataset(root, size=image_size, class_names=class_names, labels=labels)


def create_dataset(name: str, **kwargs: object) -> Dataset:
    """Build a registered dataset (``None`` keyword values take the factory defaults)."""
    return DATASETS.create(name, **kwargs)


__all__ = ["DATASETS", "FashionMNIST", "ImageFolderDataset", "ScenesDataset", "create_dataset"]
