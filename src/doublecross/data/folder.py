"""A folder of user images (ImageNet-style preprocessing) with per-file errors.

Images are found recursively (sorted paths). With one sub-folder per class the sub-folder names
are the labels (``torchvision.datasets.ImageFolder`` convention); otherwise labels are -1
(unknown). Grey, grey+alpha, RGBA, palette, CMYK and 16-bit images are converted to 8-bit RGB
(transparency composited on white). A corrupt or truncated file is reported and skipped; it
never stops the others.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
PREPROCESSING = ("resize-crop", "direct-resize")


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any PIL image to 8-bit RGB (16-bit scaled down, alpha composited on white)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(np.round(arr / hi * 255.0), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def preprocess(im: Image.Image, size: int = 224, mode: str = "resize-crop") -> torch.Tensor:
    """PIL image -> ``(3, size, size)`` float tensor in [0, 1] on the 8-bit grid.

    ``resize-crop``: shorter side to ``round(size·256/224)`` then centre crop (ImageNet's
    256 -> 224); ``direct-resize``: straight to size×size.
    """
    if mode not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {mode!r}")
    im = to_rgb(im)
    if mode == "direct-resize":
        im = im.resize((size, size), Image.BILINEAR)
    else:
        short = round(size * 256 / 224)
        w, h = im.size
        scale = short / min(w, h)
        im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        im = im.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255.0)


@dataclass(frozen=True)
class FileError:
    """A file that could not be read, and why."""

    path: str
    reason: str


class ImageFolderDataset(Dataset):
    """Images under ``root`` as ``(image (3, S, S) in [0, 1], label)``; unreadable files skipped.

    Args:
        root: folder of images (optionally one sub-folder per class).
        size: output side S (default 224).
        preprocessing: ``"resize-crop"`` (default) or ``"direct-resize"``.

    Attributes:
        errors: the files that could not be read, with the reason (also logged).
    """

    def __init__(self, root: str, size: int = 224, preprocessing: str = "resize-crop") -> None:
        if not os.path.isdir(root):
            raise FileNotFoundError(f"image folder not found: {root}")
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
        subdirs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        self.classes: tuple[str, ...] = tuple(subdirs)
        self.paths: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            self.paths += [os.path.join(dirpath, f) for f in sorted(filenames) if f.lower().endswith(IMAGE_EXTENSIONS)]
        if not self.paths:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}")
        self.size, self.preprocessing, self.root = size, preprocessing, root
        self.items: list[tuple[torch.Tensor, int]] = []
        self.errors: list[FileError] = []
        self.kept_paths: list[str] = []
        for path in self.paths:
            try:
                with Image.open(path) as im:
                    im.load()
                    x = preprocess(im, size, preprocessing)
            except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
                self.errors.append(FileError(path, f"{type(e).__name__}: {e}"))
                log.warning("skipping unreadable image %s: %s", path, e)
                continue
            rel = os.path.relpath(path, root).split(os.sep)
            label = self.classes.index(rel[0]) if len(rel) > 1 and rel[0] in self.classes else -1
            self.items.append((x, label))
            self.kept_paths.append(path)
        if not self.items:
            raise ValueError(f"none of the {len(self.paths)} images under {root} could be read: {self.errors[0]}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.items[index]
