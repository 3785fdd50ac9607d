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
    magnitude_max: float | None = None,
    first_index: int = 0,
) -> None:
    """Save a grid: one row per image; columns benign / baseline / ADV² input and map (maps in [0, 1]).

    Args:
        x, x_base, x_adv: images (B, 3, H, W).
        maps: ``benign``, ``base``, ``adv2`` maps (B, 1, h, w), upsampled for display.
        labels: per column group, the caption under each image (prediction and confidence).
        titles: display names of the baseline and the ADV² attack (``StAdv``, ``ADV²-StAdv``).
        magnitudes: per-pixel perturbation magnitude (B, 1, H, W) of baseline and ADV² (|δ| for
            L∞, flow length in pixels for StAdv), drawn as two extra columns on one shared scale,
            with its own colourbar.
        rows: images drawn (the first ``rows``).
        magnitude_max: top of the magnitudes' colour scale (default: their maximum here), so that
            several pages of one grid share it.
        first_index: index of the first image, written beside each row.
    """
    n = min(rows, x.shape[0])
    extra = 0 if magnitudes is None else 2
    fig, axes = plt.subplots(n, 6 + extra, figsize=(2 * (6 + extra), 2.1 * n + 0.9), squeeze=False)
    size = x.shape[-2:]
    cols = [("benign", x), (titles[0], x_base), (titles[1], x_adv)]
    keys = ["benign", "base", "adv2"]
    vmax = max(float(m[:n].max()) for m in magnitudes) if magnitudes is not None else 1.0
    if magnitude_max is not None:
        vmax = magnitude_max
    im = im_mag = None
    for i in range(n):
        for j, ((title, imgs), key) in enumerate(zip(cols, keys, strict=True)):
            ax_in, ax_map = axes[i, 2 * j], axes[i, 2 * j + 1]
            ax_in.imshow(_img(imgs[i]))
            up = F.interpolate(maps[key][i : i + 1].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
            im = ax_map.imshow(up.numpy(), cmap="jet", vmin=0.0, vmax=1.0)
            ax_in.set_xlabel(labels[key][i], fontsize=7)
            if j == 0:
                ax_in.set_ylabel(f"image {first_index + i}", fontsize=7)
            if i == 0:
                ax_in.set_title(f"{title} input", fontsize=9)
                ax_map.set_title(f"{title} {interpreter.upper()} map", fontsize=9)
        for j, mag in enumerate(magnitudes or ()):
            ax = axes[i, 6 + j]
            im_mag = ax.imshow(mag[i, 0].float().numpy(), cmap="magma", vmin=0.0, vmax=max(vmax, 1e-12))
            if i == 0:
                ax.set_title(f"{titles[j]} |pert.|", fontsize=8)
            ax.set_xlabel(f"max {float(mag[i].max()):.3g}", fontsize=7)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(
        f"{titles[1]} vs {titles[0]} against {interpreter.upper()} (maps share one [0, 1] colour scale; "
        f"perturbation magnitudes share [0, {vmax:.3g}])",
        fontsize=10,
    )
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.03, right=0.9, bottom=0.3 / height, top=1 - 0.8 / height, wspace=0.1, hspace=0.35)
    bars = [(im, "map value")]
    if im_mag is not None:
        bars.append((im_mag, "flow length ‖w‖ (px)" if titles[0] == "StAdv" else "perturbation |δ|"))
    for k, (mappable, label) in enumerate(bars):  # colourbars at the right: maps on top, magnitudes below
        if mappable is None:
            continue
        h = 0.8 / len(bars)
        cax = fig.add_axes((0.92, 0.9 - (k + 1) * h + 0.04, 0.012, h - 0.08), label=f"colourbar: {label}")
        fig.colorbar(mappable, cax=cax).set_label(label, fontsize=8)
    for ax in fig.axes:  # nearest-neighbour upscaling: true pixels, and a PNG about 3× smaller
        for img in ax.images:
            img.set_interpolation("nearest")
    fig.savefig(path, dpi=72)
    plt.close(fig)
