"""The Fig.-17 grid as overlays: each interpreter's map drawn over the input it explains.

Same data as :func:`doublecross.report.paper_grids.fig17_grid` (rows benign / baseline / ADV² per
image, one column per interpreter), but every cell shows the input image under its map, so where the
map points can be read against the image: the benign row overlays g(x°; y) on x°, the baseline row
the baseline's map on the baseline's input, and each ADV² cell the map of the input crafted against
that column's interpreter on that input. Maps are upsampled bilinearly to the input size and share
one [0, 1] colour scale.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .paper_grids import _clean, _img, _up  # noqa: E402

ALPHA = 0.5  # opacity of the map over the image


def overlay_cells(im: dict[str, Any], interps: list[str], titles: tuple[str, str]) -> list[list[tuple]]:
    """Per row (benign, baseline, ADV²): ``(row name, [(input (3, H, W), map (1, h, w) or None, caption), ...])``.

    The first cell of each row is the input alone (``map`` None); then one cell per interpreter.
    """
    rows = [
        ("benign", im["x"], im["cap_benign"], {i: im["x"] for i in interps}, im["benign"], {}),
        (
            titles[0],
            im["x_base"],
            im["cap_base"],
            {i: im["x_base"] for i in interps},
            im["base"],
            im.get("cap_base_map", {}),
        ),
        (titles[1], im["adv_x"][interps[0]], f"vs {interps[0].upper()}", im["adv_x"], im["adv"], im["cap_adv"]),
    ]
    out = []
    for name, x0, cap0, inputs, maps, caps in rows:
        cells = [(x0, None, cap0)] + [(inputs[i], maps[i], caps.get(i, "")) for i in interps]
        out.append((name, cells))
    return out


def overlay_grid(
    path: str, images: list[dict[str, Any]], interps: list[str], titles: tuple[str, str], title: str = ""
) -> None:
    """Rows benign / baseline / ADV² per image; columns the input, then each interpreter's map over its input.

    Args:
        images: as :func:`~doublecross.report.paper_grids.fig17_grid` (``x``, ``x_base``, ``adv_x``,
            ``benign``, ``base``, ``adv``, captions); magnitude entries are ignored.
        titles: display names of the baseline and ADV² (``PGD``, ``ADV²``).
    """
    n_rows, n_cols = 3 * len(images), 1 + len(interps)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols + 0.8, 1.95 * n_rows + 0.5), squeeze=False)
    mappable = None
    for g, im in enumerate(images):
        for r, (name, cells) in enumerate(overlay_cells(im, interps, titles)):
            for c, (x, m, cap) in enumerate(cells):
                ax = axes[3 * g + r, c]
                ax.imshow(_img(x))
                if m is not None:
                    mappable = ax.imshow(_up(m, tuple(x.shape[-2:])), cmap="jet", vmin=0.0, vmax=1.0, alpha=ALPHA)
                ax.set_xlabel(cap, fontsize=7)
                if c == 0:
                    ax.set_ylabel(name, fontsize=9)
                if g == 0 and r == 0:
                    ax.set_title("input" if c == 0 else interps[c - 1].upper(), fontsize=10)
                _clean(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    if mappable is not None:
        fig.colorbar(
            mappable, ax=axes.ravel().tolist(), shrink=0.5, pad=0.01, label=f"map value (shared [0, 1], α {ALPHA})"
        )
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
