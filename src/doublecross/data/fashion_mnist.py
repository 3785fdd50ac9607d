"""Fashion-MNIST read from its IDX files (no download).

Debian's ``dataset-fashion-mnist`` package installs them in ``/usr/share/datasets/fashion-mnist``
(``apt-get install dataset-fashion-mnist``); any folder holding the four files (``.gz`` or not)
works. Images are 28×28 grey, padded by 2 to 32×32 and replicated to 3 channels.
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import torch
from torch.utils.data import Dataset

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_DTYPES = {0x08: np.uint8}


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array.

    Raises:
        ValueError: bad magic number, unsupported dtype or truncated data.
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = data[2], data[3]
    if dtype not in _DTYPES:
        raise ValueError(f"{path}: unsupported IDX dtype 0x{dtype:02x}")
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape))
    if len(data) - header < count:
        raise ValueError(f"{path} is truncated: expected {count} values for shape {shape}")
    return np.frombuffer(data, dtype=_DTYPES[dtype], count=count, offset=header).reshape(shape)


def _find(root: str, stem: str) -> str:
    for name in (stem, stem + ".gz"):
        if os.path.isfile(os.path.join(root, name)):
            return os.path.join(root, name)
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {root}. Install Debian's package "
        f"(`apt-get install dataset-fashion-mnist`, files in {DEFAULT_ROOT}) or pass the folder "
        "holding the four IDX files as the dataset root."
    )


class FashionMNIST(Dataset):
    """Fashion-MNIST as ``(image (3, 32, 32) float in [0, 1], label)`` items.

    Args:
        split: ``"train"`` or ``"test"``.
        root: folder with the IDX files (default: Debian's install location).
    """

    classes: tuple[str, ...] = CLASSES

    def __init__(self, split: str = "train", root: str | None = None) -> None:
        if split not in FILES:
            raise ValueError(f"split must be one of {sorted(FILES)}, got {split!r}")
        root = root or DEFAULT_ROOT
        img_path, lab_path = (_find(root, s) for s in FILES[split])
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{root}: images {images.shape} and labels {labels.shape} do not match")
        if labels.size and int(labels.max()) >= len(CLASSES):
            raise ValueError(f"{lab_path}: label {int(labels.max())} outside 0..{len(CLASSES) - 1}")
        self.images = torch.from_numpy(images.copy())
        self.labels = torch.from_numpy(labels.astype(np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.images[index].float().div(255.0)
        x = torch.nn.functional.pad(x, (2, 2, 2, 2))
        return x.unsqueeze(0).expand(3, -1, -1).clone(), int(self.labels[index])
