"""Figures: one PNG grid per interpreter and threat (benign / baseline / ADV² input, map, perturbation)."""

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
    x_base: torch.Tensor,
    x_adv: torch.Tensor,
    maps: dict[str, torch.Tensor],
    labels: dict[str, list[str]],
    titles: tuple[str, str] = ("PGD", "ADV²"),
    magnitudes: tuple[torch.Tensor, torch.Tensor] | None = None,
    rows: int = 4,
    target: torch.Tensor | None = None,
) -> None:
    """Save a grid: one row per image; columns benign / baseline / ADV² input and map (maps in [0, 1]).

    Args:
        x, x_base, x_adv: images (B, 3, H, W).
        maps: ``benign``, ``base``, ``adv2`` maps (B, 1, h, w), upsampled for display.
        labels: per column group, the caption under each image (prediction and confidence).
        titles: display names of the baseline and the ADV² attack (``StAdv``, ``ADV²-StAdv``).
        magnitudes: per-pixel perturbation magnitude (B, 1, H, W) of baseline and ADV² (|δ| for
            L∞, flow length in pixels for StAdv), drawn as two extra columns on one shared scale.
        target: the target maps m_t (B, 1, h, w), drawn as a last column on the maps' scale (None: benign
            targets, where m_t is the benign map already shown).
    """
    n = min(rows, x.shape[0])
    extra = (0 if magnitudes is None else 2) + (0 if target is None else 1)
    fig, axes = plt.subplots(n, 6 + extra, figsize=(2 * (6 + extra), 2.1 * n + 0.6), squeeze=False)
    size = x.shape[-2:]
    cols = [("benign", x), (titles[0], x_base), (titles[1], x_adv)]
    keys = ["benign", "base", "adv2"]
    vmax = max(float(m[:n].max()) for m in magnitudes) if magnitudes is not None else 1.0
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
        for j, mag in enumerate(magnitudes or ()):
            ax = axes[i, 6 + j]
            ax.imshow(mag[i, 0].float().numpy(), cmap="magma", vmin=0.0, vmax=max(vmax, 1e-12))
            if i == 0:
                ax.set_title(f"{titles[j]} |pert.|", fontsize=8)
            ax.set_xlabel(f"max {float(mag[i].max()):.3g}", fontsize=7)
        if target is not None:
            ax = axes[i, -1]
            up = F.interpolate(target[i : i + 1].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
            ax.imshow(up.numpy(), cmap="jet", vmin=0.0, vmax=1.0)
            if i == 0:
                ax.set_title("target map m_t", fontsize=9)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(
        f"{titles[1]} vs {titles[0]} against {interpreter.upper()} (maps share one [0, 1] colour scale; "
        f"perturbation magnitudes share [0, {vmax:.3g}])",
        fontsize=10,
    )
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, pad=0.01)
    fig.savefig(path, dpi=90)
    plt.close(fig)
