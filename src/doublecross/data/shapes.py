"""The ten shape classes of the ``scenes`` dataset, as membership tests in a local frame.

Each shape is a function ``inside(u, v) -> bool array`` on coordinates of the shape's own frame,
where the shape fits in the unit disc (|u|, |v| ≤ 1); the renderer places, scales and rotates it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.path import Path

Inside = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _polygon(vertices: list[tuple[float, float]]) -> Inside:
    path = Path(np.asarray(vertices, dtype=np.float64))

    def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        pts = np.stack([u.ravel(), v.ravel()], axis=1)
        return path.contains_points(pts).reshape(u.shape)

    return inside


def _regular(n: int, r: float = 0.95, phase: float = -np.pi / 2) -> list[tuple[float, float]]:
    a = phase + 2 * np.pi * np.arange(n) / n
    return [(r * np.cos(t), r * np.sin(t)) for t in a]


def _star(n: int = 5, r_out: float = 1.0, r_in: float = 0.42) -> list[tuple[float, float]]:
    a = -np.pi / 2 + np.pi * np.arange(2 * n) / n
    r = np.where(np.arange(2 * n) % 2 == 0, r_out, r_in)
    return [(ri * np.cos(t), ri * np.sin(t)) for ri, t in zip(r, a, strict=True)]


def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v < 0.9**2


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r2 = u * u + v * v
    return (r2 < 0.95**2) & (r2 > 0.55**2)


def _crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u * u + v * v < 0.95**2) & ((u - 0.5) ** 2 + v * v > 0.75**2)


def _ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u / 0.95) ** 2 + (v / 0.42) ** 2 < 1


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au < 0.28) & (av < 0.9)) | ((av < 0.28) & (au < 0.9))


def _tee(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    bar = (np.abs(u) < 0.9) & (v > -0.9) & (v < -0.45)
    stem = (np.abs(u) < 0.24) & (v >= -0.9) & (v < 0.9)
    return bar | stem


SHAPES: dict[str, Inside] = {
    "circle": _circle,
    "square": _polygon([(-0.7, -0.7), (0.7, -0.7), (0.7, 0.7), (-0.7, 0.7)]),
    "triangle": _polygon(_regular(3, r=1.0)),
    "star": _polygon(_star()),
    "cross": _cross,
    "ring": _ring,
    "crescent": _crescent,
    "arrow": _polygon([(-0.9, -0.22), (0.2, -0.22), (0.2, -0.6), (0.95, 0.0), (0.2, 0.6), (0.2, 0.22), (-0.9, 0.22)]),
    "ellipse": _ellipse,
    "tee": _tee,
}
"""Class name -> membership test; the order defines the class indices."""
