"""Attack targets: target classes and target maps (spec §1.4, §1.6).

Target class: ``t = (y + U{1..C-1}) mod C`` from a seeded generator, or given.
Target maps: ``benign`` (g(x°; y), the default), ``class-exemplar`` (g(x_e; t) of another
correctly classified image of class t), ``shape`` (a random filled circle or rotated rectangle at
native resolution; values U(0.9, 1) inside, U(0, 0.1) outside).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TARGET_MAP_MODES = ("benign", "class-exemplar", "shape")


def random_target_classes(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """``(y + U{1..C-1}) mod C`` per sample: uniform over the other classes. (B,) -> (B,)."""
    if num_classes < 2:
        raise ValueError("a targeted attack needs at least 2 classes")
    shift = torch.randint(1, num_classes, y.shape, generator=generator)
    return (y.cpu() + shift) % num_classes


def shape_maps(batch: int, size: tuple[int, int], canvas: int, generator: torch.Generator) -> torch.Tensor:
    """Random shape target maps (B, 1, h, w) in [0, 1], drawn on a canvas of side ``canvas``.

    With S = canvas and s = S/224: a filled circle (radius U{30..59}·s) or a rotated rectangle
    (half-sides U(30, 60)·s, angle U(-30°, 30°)) with equal probability, centred in [40, 184)·s,
    then resized bilinearly to ``size``.
    """
    s = canvas / 224
    coords = torch.arange(canvas, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    out = []
    for _ in range(batch):
        u = lambda lo, hi: float(lo + (hi - lo) * torch.rand((), generator=generator))  # noqa: E731
        cy, cx = u(40 * s, 184 * s), u(40 * s, 184 * s)
        if torch.rand((), generator=generator) < 0.5:
            r = int(torch.randint(30, 60, (), generator=generator)) * s
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:
            hy, hx, ang = u(30 * s, 60 * s), u(30 * s, 60 * s), math.radians(u(-30, 30))
            dy, dx = yy - cy, xx - cx
            ry, rx = math.cos(ang) * dy - math.sin(ang) * dx, math.sin(ang) * dy + math.cos(ang) * dx
            inside = (ry.abs() <= hy) & (rx.abs() <= hx)
        hi = 0.9 + 0.1 * torch.rand(canvas, canvas, generator=generator)
        lo = 0.1 * torch.rand(canvas, canvas, generator=generator)
        out.append(torch.where(inside, hi, lo))
    maps = torch.stack(out)[:, None]
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
