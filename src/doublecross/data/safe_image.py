"""Opening untrusted image files within limits: header checks first, decoding only when asked.

A 190 KB PNG can declare 30 000 × 30 000 pixels and decode to 2.7 GB (a decompression bomb);
PIL raises :class:`PIL.Image.DecompressionBombError` for those, which is not an ``OSError``. Here
every way a single file can fail (unidentified, corrupt, truncated, too many pixels, bomb) becomes
:class:`UnreadableImage`, so a folder reader can skip that file with a warning and go on.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from PIL import Image, UnidentifiedImageError

#: Largest image accepted (width × height), PIL's own default bomb threshold (~ 0.27 GB as 8-bit RGB).
MAX_PIXELS = 89_478_485

_FILE_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


class UnreadableImage(ValueError):
    """One image file cannot be used (the reason says why); the others are unaffected."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _too_large(path: str, size: tuple[int, int], max_pixels: int) -> UnreadableImage | None:
    w, h = size
    if w * h > max_pixels:
        return UnreadableImage(
            path, f"{w}×{h} = {w * h} pixels is over the limit of {max_pixels} (a decompression bomb?)"
        )
    return None


def check_header(path: str, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Read only ``path``'s header; return its ``(width, height)``.

    Raises:
        UnreadableImage: not an image PIL knows, a corrupt header, or more than ``max_pixels`` pixels.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                size = im.size
    except Image.DecompressionBombWarning as e:
        raise UnreadableImage(path, f"DecompressionBombWarning: {e}") from None
    except _FILE_ERRORS as e:
        raise UnreadableImage(path, f"{type(e).__name__}: {e}") from None
    err = _too_large(path, size, max_pixels)
    if err is not None:
        raise err
    return size


def decode_image(path: str, convert: Any, max_pixels: int = MAX_PIXELS) -> Any:
    """Open, check the size of, fully decode ``path`` and return ``convert(image)``.

    Raises:
        UnreadableImage: any per-file failure (see module doc), including a truncated file.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                err = _too_large(path, im.size, max_pixels)
                if err is not None:
                    raise err
                im.load()
                return convert(im)
    except UnreadableImage:
        raise
    except Image.DecompressionBombWarning as e:
        raise UnreadableImage(path, f"DecompressionBombWarning: {e}") from None
    except _FILE_ERRORS as e:
        raise UnreadableImage(path, f"{type(e).__name__}: {e}") from None


def readable_items(ds: Any, limit: int | None = None) -> Iterator[tuple[int, Any]]:
    """``(index, item)`` of ``ds`` in order, skipping items that raise :class:`UnreadableImage`.

    Stops after ``limit`` readable items; nothing past them is decoded.
    """
    taken = 0
    for i in range(len(ds)):
        if limit is not None and taken >= limit:
            return
        try:
            item = ds[i]
        except UnreadableImage:
            continue  # the dataset logged it and recorded it in its ``errors``
        taken += 1
        yield i, item
