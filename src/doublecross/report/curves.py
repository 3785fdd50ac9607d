"""Line plots: IoU_k against k (the paper's Fig. 20) and per-iteration attack histories."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..metrics import IOU_KS  # noqa: E402
from .tables import method_label  # noqa: E402


def iou_curve_figure(path: str, rows: list[dict[str, Any]], title: str = "") -> None:
    """One panel per interpreter: mean IoU_k (± sample std over successes) against k, one line per method.

    Args:
        rows: summary rows with ``interpreter``, ``method``, ``iou<k>`` and ``iou<k>_std``, ``successes``.
    """
    interps = list(dict.fromkeys(r["interpreter"] for r in rows if r.get("interpreter")))
    if not interps:
        raise ValueError("no interpreter rows to plot")
    fig, axes = plt.subplots(1, len(interps), figsize=(3.2 * len(interps), 3.0), squeeze=False, sharey=True)
    for ax, interp in zip(axes[0], interps, strict=True):
        for r in (r for r in rows if r["interpreter"] == interp):
            ys = [float(r.get(f"iou{k}", float("nan"))) for k in IOU_KS]
            sd = [float(r.get(f"iou{k}_std", float("nan"))) for k in IOU_KS]
            style = "--" if r["method"] in ("pgd", "stadv") else "-"
            (line,) = ax.plot(
                IOU_KS, ys, style, marker="o", ms=3, label=f"{method_label(r['method'])} (n={r.get('successes', '?')})"
            )
            lo = [y - s if s == s else y for y, s in zip(ys, sd, strict=True)]
            hi = [y + s if s == s else y for y, s in zip(ys, sd, strict=True)]
            ax.fill_between(IOU_KS, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_title(interp.upper(), fontsize=10)
        ax.set_xlabel("k (% of cells)")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0, 0].set_ylabel("IoU_k with the benign map")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def history_figure(path: str, histories: dict[str, dict[str, Any]], title: str = "") -> None:
    """Per-iteration records of ADV² (batch means): total loss, interpretation distance, success rate.

    Args:
        histories: interpreter -> ``{"step": (T,), "loss": (T,), "int": (T,), "success": (T,)}`` (fields optional).
    """
    fields = [
        ("loss", "total loss (sum over batch)"),
        ("int", "ℓint: map distance to m_t"),
        ("success", "fraction predicted as t"),
    ]
    present = [f for f in fields if any(f[0] in h for h in histories.values())]
    if not present:
        raise ValueError("no history records to plot")
    fig, axes = plt.subplots(1, len(present), figsize=(3.6 * len(present), 3.0), squeeze=False)
    for ax, (key, label) in zip(axes[0], present, strict=True):
        for name, h in histories.items():
            if key in h and "step" in h:
                ax.plot(h["step"].numpy(), h[key].numpy(), marker=".", ms=3, label=name.upper())
        ax.set_xlabel("stage-2 iteration")
        ax.set_title(label, fontsize=9)
        if key in ("loss", "int"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
