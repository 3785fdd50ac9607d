"""``scenes``: a deterministic generated dataset of 10 shape classes on real photographs.

Each 64×64 RGB image shows one shape (``shapes.SHAPES``) at a random position, scale, rotation
and colour, composited (4× supersampled anti-aliasing) onto a random crop of a CC0 /
public-domain photograph (``photos.PHOTO_FILES``), plus a ground-truth object mask. Image ``i``
of a split is drawn from its own generator ``default_rng([seed, split, i])``: the same seed gives
byte-identical images, in any order, and the train and test splits never share a draw.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .photos import load_photos
from .shapes import SHAPES

CLASSES: tuple[str, ...] = tuple(SHAPES)
SPLITS: dict[str, int] = {"train": 0, "test": 1}
DEFAULT_SIZES: dict[str, int] = {"train": 10000, "test": 1000}
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Scene:
    """One rendered scene: ``image`` (H, W, 3) uint8, ``label``, ``mask`` (H, W) bool."""

    image: np.ndarray
    label: int
    mask: np.ndarray


@functools.lru_cache(maxsize=1)
def _photos_uint8() -> tuple[Image.Image, ...]:
    return tuple(Image.fromarray((p * 255).round().astype(np.uint8)) for p in load_photos())


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    photos = _photos_uint8()
    photo = photos[int(rng.integers(len(photos)))]
    w, h = photo.size
    side = int(rng.integers(size, max(size + 1, min(w, h) // 3)))
    x0 = int(rng.integers(0, w - side + 1))
    y0 = int(rng.integers(0, h - side + 1))
    crop = photo.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.BILINEAR)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(crop, dtype=np.float32) / 255.0


def _alpha(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    radius = rng.uniform(0.22, 0.38) * size
    cx, cy = rng.uniform(radius, size - radius, size=2)
    theta = rng.uniform(0.0, 2 * np.pi)
    ss = SUPERSAMPLE
    sub = (np.arange(size * ss) + 0.5) / ss
    x, y = np.meshgrid(sub, sub)
    dx, dy = (x - cx) / radius, (y - cy) / radius
    c, s = np.cos(theta), np.sin(theta)
    u, v = c * dx + s * dy, -s * dx + c * dy
    box = (np.abs(dx) <= 1.05) & (np.abs(dy) <= 1.05)
    inside = np.zeros_like(box)
    inside[box] = SHAPES[CLASSES[label]](u[box], v[box])
    return inside.reshape(size, ss, size, ss).mean(axis=(1, 3)).astype(np.float32)


def _colour(rng: np.random.Generator, reference: np.ndarray, tries: int = 20) -> np.ndarray:
    """A random RGB colour far (Euclidean ≥ 0.5) from ``reference``, else the farthest tried."""
    best, best_d = None, -1.0
    for _ in range(tries):
        col = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
        d = float(np.linalg.norm(col - reference))
        if d >= 0.5:
            return col
        if d > best_d:
            best, best_d = col, d
    assert best is not None
    return best


def render_scene(seed: int, split: str, index: int, size: int = 64) -> Scene:
    """Render scene ``index`` of ``split`` (label ``index % 10``, so splits are class-balanced).

    Args:
        seed: dataset seed.
        split: ``"train"`` or ``"test"``.
        index: image index (≥ 0).
        size: output side in pixels.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    rng = np.random.default_rng([seed, SPLITS[split], index])
    label = index % len(CLASSES)
    bg = _background(rng, size)
    alpha = _alpha(label, rng, size)
    mask = alpha >= 0.5
    ref = bg[mask].mean(axis=0) if mask.any() else bg.reshape(-1, 3).mean(axis=0)
    colour = _colour(rng, ref)
    img = alpha[..., None] * colour + (1.0 - alpha[..., None]) * bg
    img = img + rng.normal(0.0, 0.02, size=img.shape).astype(np.float32)
    img8 = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    return Scene(img8, label, mask)


class ScenesDataset(Dataset):
    """The ``scenes`` dataset: items ``(image (3,S,S) float in [0,1], label, mask (1,S,S) float)``.

    Args:
        split: ``"train"`` or ``"test"``.
        size: number of images (default 10000 train, 1000 test).
        seed: dataset seed (default 0: the split the embedded models were trained and tested on).
        image_size: side in pixels (default 64).
        cache: keep rendered images in memory (rendering takes a few ms each).
    """

    classes: tuple[str, ...] = CLASSES

    def __init__(
        self,
        split: str = "train",
        size: int | None = None,
        seed: int = 0,
        image_size: int = 64,
        cache: bool = True,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        n = DEFAULT_SIZES[split] if size is None else int(size)
        if n <= 0:
            raise ValueError(f"size must be positive, got {size!r}")
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16, got {image_size!r}")
        self.split, self.n, self.seed, self.image_size = split, n, seed, image_size
        self._cache: dict[int, tuple[torch.Tensor, int, torch.Tensor]] | None = {} if cache else None

    def __len__(self) -> int:
        return self.n

    @property
    def labels(self) -> list[int]:
        """Every image's label without rendering it (image ``i`` shows class ``i % 10``)."""
        return [i % len(CLASSES) for i in range(self.n)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} images")
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        sc = render_scene(self.seed, self.split, index, self.image_size)
        item = (
            torch.from_numpy(sc.image).permute(2, 0, 1).float().div(255.0),
            sc.label,
            torch.from_numpy(sc.mask)[None].float(),
        )
        if self._cache is not None:
            self._cache[index] = item
        return item
