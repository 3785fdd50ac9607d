"""A folder of user images (ImageNet-style preprocessing) with per-file errors.

Images are found recursively (sorted paths) and decoded only when indexed. With one sub-folder
per class, each sub-folder is labelled by matching its *name* to the model's class names (or by
an explicit label map), never by its alphabetical position; images directly under the root are
unlabelled (-1). Grey, grey+alpha, RGBA, palette, CMYK and 16-bit images are converted to 8-bit RGB
(transparency composited on white). A corrupt, truncated or oversized file (decompression bomb)
is reported and skipped; it never stops the others.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..config import ConfigError
from ..safe_yaml import YamlError, load_yaml_file
from .safe_image import MAX_PIXELS, UnreadableImage, check_header, decode_image

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


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def _class_index(value: object, class_names: Sequence[str] | None, where: str) -> int | None:
    """A class given by name (exact, then ignoring case, '_', '-') or by index; ``None`` if it matches nothing."""
    n = len(class_names) if class_names else None
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a class name or index, got {value!r}")
    if isinstance(value, int):
        if n is not None and not 0 <= value < n:
            raise ConfigError(f"{where}: class index {value} is out of range (the model has {n} classes)")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a class name or index, got {value!r}")
    if class_names:
        if value in class_names:
            return list(class_names).index(value)
        normed = [_norm(c) for c in class_names]
        if _norm(value) in normed:
            return normed.index(_norm(value))
    if value.isdigit() and (n is None or int(value) < n):
        return int(value)
    return None


def load_label_map(labels: str | Mapping[str, object]) -> dict[str, object]:
    """A label map ``{sub-folder: class name or index}`` from a mapping or a YAML/JSON file."""
    if isinstance(labels, Mapping):
        return dict(labels)
    if not os.path.isfile(labels):
        raise FileNotFoundError(f"label map not found: {labels}")
    try:
        data = load_yaml_file(labels)
    except YamlError as e:
        raise ConfigError(f"label map {e}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(f"label map {labels}: expected a mapping 'sub-folder: class name or index' per line")
    return data


def folder_labels(
    folders: Sequence[str],
    class_names: Sequence[str] | None = None,
    labels: str | Mapping[str, object] | None = None,
) -> dict[str, int]:
    """Class index of each sub-folder: by the label map if given, else by class *name* (not folder order).

    A sub-folder matches a class whose name equals it, ignoring case, ``_`` and ``-``
    (``great_white_shark`` -> "great white shark"), or a class index written as digits. Without
    class names (a model that has none) the alphabetical folder index is used, with a warning.

    Raises:
        ConfigError: a sub-folder matching no class, or a label-map entry naming none.
    """
    if labels is not None:
        table = load_label_map(labels)
        src = labels if isinstance(labels, str) else "label map"
        missing = [f for f in folders if f not in table]
        if missing:
            raise ConfigError(f"label map {src} has no entry for sub-folder(s) {missing}")
        out = {}
        for f in folders:
            idx = _class_index(table[f], class_names, f"label map {src}, {f!r}")
            if idx is None:
                raise ConfigError(f"label map {src}: {f!r} -> {table[f]!r} is not one of the model's class names")
            out[f] = idx
        return out
    if not class_names:
        if folders:
            log.warning("the model has no class names: sub-folders are labelled by alphabetical index %s", folders)
        return {f: i for i, f in enumerate(folders)}
    out, unmatched = {}, []
    for f in folders:
        idx = _class_index(f, class_names, f"sub-folder {f!r}")
        if idx is None:
            unmatched.append(f)
        else:
            out[f] = idx
    if unmatched:
        examples = ", ".join(list(class_names)[:5])
        raise ConfigError(
            f"sub-folder(s) {unmatched} match none of the model's {len(class_names)} class names "
            f"(e.g. {examples}); rename them or pass a label map (--labels FILE: 'folder: class name' per line)"
        )
    return out


class ImageFolderDataset(Dataset):
    """Images under ``root`` as ``(image (3, S, S) in [0, 1], label)``, decoded when indexed.

    Construction only lists the files and reads their headers (cheap): files PIL cannot identify
    or with more than ``max_pixels`` pixels are skipped with a warning. Pixels are decoded by
    ``ds[i]``; a file that fails then (truncated, corrupt data, a decompression bomb) raises
    :class:`UnreadableImage` (a ``ValueError``), is logged and recorded in ``errors``: iterate with
    :func:`~doublecross.data.safe_image.readable_items` to skip such files.

    Args:
        root: folder of images (optionally one sub-folder per class).
        size: output side S (default 224).
        preprocessing: ``"resize-crop"`` (default) or ``"direct-resize"``.
        class_names: the model's class names: sub-folders are labelled by matching these names
            (see :func:`folder_labels`); without them, by alphabetical index.
        labels: a label map ``{sub-folder: class name or index}`` or a YAML/JSON file of one.
        max_pixels: largest accepted width × height.

    Attributes:
        classes: the sub-folder names; ``folder_labels`` their class indices.
        errors: the files that could not be read so far, with the reason (also logged).
    """

    def __init__(
        self,
        root: str,
        size: int = 224,
        preprocessing: str = "resize-crop",
        class_names: Sequence[str] | None = None,
        labels: str | Mapping[str, object] | None = None,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        if not os.path.isdir(root):
            raise FileNotFoundError(f"image folder not found: {root}")
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
        subdirs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        candidates: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            candidates += [os.path.join(dirpath, f) for f in sorted(filenames) if f.lower().endswith(IMAGE_EXTENSIONS)]
        if not candidates:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}")
        self.size, self.preprocessing, self.root, self.max_pixels = size, preprocessing, root, max_pixels
        used = sorted({os.path.relpath(p, root).split(os.sep)[0] for p in candidates} & set(subdirs))
        self.classes: tuple[str, ...] = tuple(used)
        self.folder_labels = folder_labels(used, class_names, labels)
        self.errors: list[FileError] = []
        self.paths: list[str] = []
        for path in candidates:
            try:
                check_header(path, max_pixels)
            except UnreadableImage as e:
                self._skip(e)
                continue
            self.paths.append(path)
        if not self.paths:
            first = self.errors[0]
            n = len(candidates)
            raise ValueError(f"none of the {n} images under {root} could be read ({first.path}: {first.reason})")

    def _skip(self, e: UnreadableImage) -> None:
        self.errors.append(FileError(e.path, e.reason))
        log.warning("skipping unreadable image %s", e)

    @property
    def kept_paths(self) -> list[str]:
        """The listed files not (yet) found unreadable."""
        bad = {e.path for e in self.errors}
        return [p for p in self.paths if p not in bad]

    def label_of(self, path: str) -> int:
        rel = os.path.relpath(path, self.root).split(os.sep)
        return self.folder_labels.get(rel[0], -1) if len(rel) > 1 else -1

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.paths[index]
        try:
            x = decode_image(path, lambda im: preprocess(im, self.size, self.preprocessing), self.max_pixels)
        except UnreadableImage as e:
            if all(err.path != path for err in self.errors):
                self._skip(e)
            raise
        return x, self.label_of(path)
