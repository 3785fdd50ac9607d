"""The reproduction's image figures: the Fig.-17 grid, Q4 target grids and the transfer matrix.

Maps are upsampled bilinearly to the input size for display and share one [0, 1] colour scale
(one colourbar); captions give the predicted class and its confidence.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def _img(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).clamp(0, 1).numpy()


def _up(m: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    return F.interpolate(m[None].float(), size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def _clean(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def fig17_grid(
    path: str, images: list[dict[str, Any]], interps: list[str], titles: tuple[str, str], title: str = ""
) -> None:
    """Rows benign / baseline / ADV² (and flow or |δ| magnitude when given) per image; columns input, then maps.

    Each ADV² cell shows the map of the input crafted against that column's interpreter; the ADV²
    row's input cell shows the input crafted against the first interpreter.

    Args:
        images: per image ``x``, ``x_base`` (3, H, W); ``benign``, ``base``, ``adv`` dicts interpreter ->
            map (1, h, w); ``adv_x`` interpreter -> (3, H, W); captions ``cap_benign``, ``cap_base`` (str) and
            ``cap_adv`` interpreter -> str; optional ``mag_base`` (1, H, W) and ``mag_adv`` interpreter -> (1, H, W).
        titles: display names of the baseline and ADV² (``PGD``, ``ADV²``).
    """
    has_mag = all("mag_base" in im for im in images)
    per = 4 if has_mag else 3
    n_rows, n_cols = per * len(images), 1 + len(interps)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols + 0.8, 1.95 * n_rows + 0.5), squeeze=False)
    vmag = (
        max((float(torch.stack([im["mag_base"], *im["mag_adv"].values()]).max()) for im in images), default=1.0)
        if has_mag
        else 1.0
    )
    mappable = None
    for g, im in enumerate(images):
        size = tuple(im["x"].shape[-2:])
        r0 = per * g
        rows = [
            ("benign", im["x"], im["cap_benign"], im["benign"]),
            (titles[0], im["x_base"], im["cap_base"], im["base"]),
            (titles[1], im["adv_x"][interps[0]], f"vs {interps[0].upper()}: {im['cap_adv'][interps[0]]}", im["adv"]),
        ]
        for r, (name, x_in, cap, maps) in enumerate(rows):
            ax = axes[r0 + r, 0]
            ax.imshow(_img(x_in))
            ax.set_ylabel(name, fontsize=9)
            ax.set_xlabel(cap, fontsize=7)
            for c, interp in enumerate(interps, start=1):
                ax = axes[r0 + r, c]
                mappable = ax.imshow(_up(maps[interp], size), cmap="jet", vmin=0.0, vmax=1.0)
                if r == 2:
                    ax.set_xlabel(im["cap_adv"][interp], fontsize=7)
                elif r == 1:
                    ax.set_xlabel(im.get("cap_base_map", {}).get(interp, ""), fontsize=7)
                if g == 0 and r == 0:
                    ax.set_title(interp.upper(), fontsize=10)
        if has_mag:
            ax = axes[r0 + 3, 0]
            ax.imshow(im["mag_base"][0].numpy(), cmap="magma", vmin=0, vmax=max(vmag, 1e-12))
            ax.set_ylabel("magnitude", fontsize=9)
            ax.set_xlabel(f"{titles[0]}: max {float(im['mag_base'].max()):.3g}", fontsize=7)
            for c, interp in enumerate(interps, start=1):
                ax = axes[r0 + 3, c]
                ax.imshow(im["mag_adv"][interp][0].numpy(), cmap="magma", vmin=0, vmax=max(vmag, 1e-12))
                ax.set_xlabel(f"{titles[1]}: max {float(im['mag_adv'][interp].max()):.3g}", fontsize=7)
        axes[r0, 0].set_title("input", fontsize=10) if g == 0 else None
    for ax in axes.ravel():
        _clean(ax)
    if title:
        fig.suptitle(title + (f" (magnitude rows share [0, {vmag:.3g}])" if has_mag else ""), fontsize=10)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.5, pad=0.01, label="map value (shared [0, 1])")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def target_grid(path: str, rows: list[dict[str, Any]], title: str = "") -> None:
    """Q4: one row per (interpreter, image); columns input, target map m_t, benign map, PGD map, ADV² map.

    Args:
        rows: per row ``interp``, ``x`` (3, H, W), maps ``target``, ``benign``, ``pgd``, ``adv`` (1, h, w) and
            captions ``cap_pgd``, ``cap_adv`` plus the distances ``d_benign``, ``d_pgd``, ``d_adv`` (L1 to m_t).
    """
    cols = [
        ("input", None),
        ("target m_t", "target"),
        ("benign map", "benign"),
        ("PGD map", "pgd"),
        ("ADV² map", "adv"),
    ]
    fig, axes = plt.subplots(
        len(rows), len(cols), figsize=(2.3 * len(cols) + 0.8, 1.95 * len(rows) + 0.5), squeeze=False
    )
    mappable = None
    for i, r in enumerate(rows):
        size = tuple(r["x"].shape[-2:])
        for j, (name, key) in enumerate(cols):
            ax = axes[i, j]
            if key is None:
                ax.imshow(_img(r["x"]))
                ax.set_ylabel(r["interp"].upper(), fontsize=9)
                ax.set_xlabel(r.get("cap_x", ""), fontsize=7)
            else:
                mappable = ax.imshow(_up(r[key], size), cmap="jet", vmin=0.0, vmax=1.0)
                if key != "target":
                    cap = {"benign": "", "pgd": r.get("cap_pgd", ""), "adv": r.get("cap_adv", "")}[key]
                    ax.set_xlabel(f"L1→m_t {r[f'd_{key}']:.3f} {cap}", fontsize=7)
            if i == 0:
                ax.set_title(name, fontsize=10)
            _clean(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.5, pad=0.01, label="map value (shared [0, 1])")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def matrix_figure(
    path: str,
    rows: list[str],
    cols: list[str],
    panels: dict[str, tuple[np.ndarray, np.ndarray, str, float]],
    title: str = "",
) -> None:
    """Heatmaps of transfer matrices: per panel ``(colour values, printed values, colormap, vmax)``.

    Cells are coloured by the first array and annotated with the second (e.g. coloured by the ratio
    to the PGD row of the column, annotated with the raw L1).
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels) + 0.5, 0.45 * len(rows) + 1.6), squeeze=False)
    for ax, (name, (colour, text, cmap, vmax)) in zip(axes[0], panels.items(), strict=True):
        im = ax.imshow(colour, cmap=cmap, vmin=0, vmax=vmax)
        ax.set_xticks(range(len(cols)), [c.upper() for c in cols])
        ax.set_yticks(range(len(rows)), [r.upper() for r in rows])
        ax.set_xlabel("evaluated interpreter B")
        ax.set_ylabel("attacked A")
        ax.set_title(name, fontsize=9)
        for i in range(len(rows)):
            for j in range(len(cols)):
                if text[i, j] == text[i, j]:
                    level = colour[i, j] / vmax if colour[i, j] == colour[i, j] else 0.0
                    light = level < 0.5 if cmap.endswith("_r") else level > 0.5
                    ax.text(
                        j, i, f"{text[i, j]:.3f}", ha="center", va="center", fontsize=7, color="k" if light else "w"
                    )
        fig.colorbar(im, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
