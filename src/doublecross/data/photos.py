"""Background photographs: the CC0 / public-domain images that ship inside scikit-image.

Read straight from the installed ``skimage/data`` folder (no pooch download). Licences, from
scikit-image's own docstrings: astronaut, rocket, hubble_deep_field (public domain, NASA /
SpaceX); chelsea, coffee, camera, retina (CC0); grass, gravel, brick (CC0 textures).
"""

from __future__ import annotations

import functools
import os

import numpy as np
from PIL import Image

PHOTO_FILES: tuple[str, ...] = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "grass.png",
    "gravel.png",
    "brick.png",
    "camera.png",
    "retina.jpg",
)


def photo_dir() -> str:
    """Folder of scikit-image's bundled sample images."""
    import skimage

    return os.path.join(os.path.dirname(skimage.__file__), "data")


@functools.lru_cache(maxsize=1)
def load_photos() -> tuple[np.ndarray, ...]:
    """The background photographs as ``(H, W, 3)`` float32 arrays in [0, 1] (grey -> RGB).

    Raises:
        FileNotFoundError: when scikit-image's bundled images are missing.
    """
    root = photo_dir()
    out = []
    for name in PHOTO_FILES:
        path = os.path.join(root, name)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"background photo {path} is missing; reinstall scikit-image (pip install scikit-image)"
            )
        with Image.open(path) as im:
            out.append(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
    return tuple(out)
