"""Figures: one PNG grid per interpreter (benign / PGD / ADV² input and map, shared colour scale)."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def _img(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).clamp(0, 1).numpy()


def grid_figure(
    path: str,
    interpreter: str,
    x: torch.Tensor,
    x_pgd: torch.Tensor,
    x_adv: torch.Tensor,
    maps: dict[str, torch.Tensor],
    labels: dict[str, list[str]],
    rows: int = 4,
) -> None:
    """Save a grid: one row per image; columns benign/PGD/ADV² input and map (maps in [0, 1]).

    Args:
        x, x_pgd, x_adv: images (B, 3, H, W).
        maps: ``benign``, ``pgd``, ``adv2`` maps (B, 1, h, w), upsampled for display.
        labels: per column group, the caption under each image (prediction and confidence).
    """
    n = min(rows, x.shape[0])
    fig, axes = plt.subplots(n, 6, figsize=(12, 2.1 * n + 0.6), squeeze=False)
    size = x.shape[-2:]
    cols = [("benign", x), ("PGD", x_pgd), ("ADV²", x_adv)]
    keys = ["benign", "pgd", "adv2"]
    im = None
    for i in range(n):
        for j, ((title, imgs), key) in enumerate(zip(cols, keys, strict=True)):
            ax_in, ax_map = axes[i, 2 * j], axes[i, 2 * j + 1]
            ax_in.imshow(_img(imgs[i]))
            up = F.interpolate(maps[key][i : i + 1].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
            im = ax_map.imshow(up.numpy(), cmap="jet", vmin=0.0, vmax=1.0)
            ax_in.set_xlabel(labels[key][i], fontsize=7)
            if i == 0:
                ax_in.set_title(f"{title} input", fontsize=9)
                ax_map.set_title(f"{title} {interpreter.upper()} map", fontsize=9)
            for ax in (ax_in, ax_map):
                ax.set_xticks([])
                ax.set_yticks([])
    fig.suptitle(f"ADV² vs PGD against {interpreter.upper()} (maps share one [0, 1] colour scale)", fontsize=10)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, pad=0.01)
    fig.savefig(path, dpi=90)
    plt.close(fig)
