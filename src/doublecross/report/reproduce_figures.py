"""Figure builders of ``doublecross reproduce``, registered by name (``figures: [iou-curves, fig17]``).

Each reads batch 0 of the stored runs (or the summaries) and returns ``(caption, png path)`` pairs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..experiments.results import run_methods
from ..experiments.store import ResultStore
from .paper_grids import fig17_grid, matrix_figure, target_grid
from .reproduce_context import Context, _register
from .tables import method_label

FIGURES: dict[str, Callable[..., list[tuple[str, str]]]] = {}


def _caps(samples: list[dict[str, Any]], names: list[str]) -> dict[tuple[str, str, int], str]:
    def nm(c: int) -> str:
        return names[c] if 0 <= c < len(names) else str(c)

    def cap(s: dict[str, Any]) -> str:
        if s["pred"] == s["target"]:
            return f"{nm(s['pred'])} ({s['confidence']:.2f})"
        return f"{nm(s['pred'])} (missed {nm(s['target'])})"

    return {(s["unit"], s["method"], s["idx"]): cap(s) for s in samples}


def _class_names(run: str) -> list[str]:
    import json

    try:
        with open(os.path.join(run, "manifest.json")) as fh:
            return list(json.load(fh).get("classes") or [])
    except OSError:
        return []


@_register(FIGURES, "iou-curves")
def figure_iou_curves(ctx: Context, exp: Any, folder: str) -> list[tuple[str, str]]:
    from .curves import iou_curve_figure

    out = []
    for m in ctx.models:
        rows = [r for (i, _), r in ctx.summary(m, exp.runs[0]).items() if i in ctx.interpreters]
        rows.sort(key=lambda r: (ctx.interpreters.index(r["interpreter"]), r["method"].startswith("adv2")))
        if not rows:
            continue
        path = os.path.join(folder, f"{exp.name}_iou_curves_{m}.png")
        iou_curve_figure(path, rows, f"IoU_k with the benign map, {m} (mean ± std over successes)")
        out.append((f"IoU_k against k, {m} (Fig. 20 style)", path))
    return out


def _grid_images(ctx: Context, run: str, n_images: int) -> tuple[list[dict[str, Any]], list[str]] | None:
    """Batch 0's first ``n_images`` of ``run`` for the Fig.-17 grids (inputs, maps, captions), and its interpreters.

    None while the run has not reached batch 0's units.
    """
    base, adv = run_methods(run)
    names = _class_names(run)
    if not os.path.isfile(os.path.join(run, "results.sqlite")):
        return None
    store = ResultStore(os.path.join(run, "results.sqlite"))
    try:
        interps = [i for i in ctx.interpreters if store.done(0, f"{adv}-{i}")]
        if not store.done(0, base) or not interps:
            return None  # the run has not reached batch 0's units yet
        samples = [s for s in store.samples() if s["batch"] == 0]
        caps = _caps(samples, names)
        x = store.array(0, base, "x")
        label = {s["idx"]: s["label"] for s in samples if s["unit"] == base}
        images = []
        for j in range(min(n_images, x.shape[0])):
            u = {i: f"{adv}-{i}" for i in interps}
            im: dict[str, Any] = {
                "x": store.array(0, u[interps[0]], "x")[j],
                "x_base": x[j],
                "cap_benign": f"{names[label[j]] if label[j] < len(names) else label[j]} (true)",
                "cap_base": caps.get((base, base, j), ""),
                "cap_base_map": {i: caps.get((u[i], base, j), "") for i in interps},
                "benign": {i: store.array(0, u[i], "benign_map")[j] for i in interps},
                "base": {i: store.array(0, u[i], "base_map")[j] for i in interps},
                "adv": {i: store.array(0, u[i], "adv_map")[j] for i in interps},
                "adv_x": {i: store.array(0, u[i], "adv_x")[j] for i in interps},
                "cap_adv": {i: caps.get((u[i], adv, j), "") for i in interps},
            }
            if base == "stadv":
                im["mag_base"] = store.array(0, base, "magnitude")[j]
                im["mag_adv"] = {i: store.array(0, u[i], "adv_magnitude")[j] for i in interps}
            images.append(im)
    finally:
        store.close()
    return images, interps


@_register(FIGURES, "fig17")
def figure_fig17(ctx: Context, exp: Any, folder: str, n_images: int = 2) -> list[tuple[str, str]]:
    out = []
    for m in ctx.models:
        run = ctx.run(m, exp.runs[0])
        base, adv = run_methods(run)
        got = _grid_images(ctx, run, n_images)
        if got is None:
            continue
        images, interps = got
        path = os.path.join(folder, f"{exp.name}_grid_{m}.png")
        extra = "; last row: flow magnitude in pixels" if base == "stadv" else ""
        fig17_grid(
            path,
            images,
            interps,
            (method_label(base), method_label(adv)),
            f"{m}: benign / {method_label(base)} / {method_label(adv)} maps{extra}",
        )
        out.append(
            (
                f"Fig.-17 grid, {m}: rows benign / {method_label(base)} / {method_label(adv)}, each "
                f"{method_label(adv)} column from the input crafted against that interpreter{extra}",
                path,
            )
        )
    return out


@_register(FIGURES, "fig17-overlay")
def figure_fig17_overlay(ctx: Context, exp: Any, folder: str, n_images: int = 2) -> list[tuple[str, str]]:
    from .overlay_grid import overlay_grid

    out = []
    for m in ctx.models:
        run = ctx.run(m, exp.runs[0])
        base, adv = run_methods(run)
        got = _grid_images(ctx, run, n_images)
        if got is None:
            continue
        images, interps = got
        path = os.path.join(folder, f"{exp.name}_overlay_{m}.png")
        b, a = method_label(base), method_label(adv)
        overlay_grid(path, images, interps, (b, a), f"{m}: benign / {b} / {a} maps over their inputs")
        out.append(
            (
                f"Fig.-17 grid as overlays, {m}: each interpreter's map over the input it explains, rows benign / "
                f"{b} / {a} ({a} cells: the input crafted against that column's interpreter)",
                path,
            )
        )
    return out


@_register(FIGURES, "q4-grids")
def figure_q4(ctx: Context, exp: Any, folder: str, per_interp: int = 2) -> list[tuple[str, str]]:
    from ..metrics import l1_distance

    out = []
    for m in ctx.models:
        for run_name in exp.runs:
            run = ctx.run(m, run_name)
            names = _class_names(run)
            if not os.path.isfile(os.path.join(run, "results.sqlite")):
                continue
            store = ResultStore(os.path.join(run, "results.sqlite"))
            try:
                samples = [s for s in store.samples() if s["batch"] == 0]
                caps = _caps(samples, names)
                rows = []
                for i in ctx.interpreters:
                    u = f"adv2-{i}"
                    if not store.done(0, u):
                        continue
                    x, tgt = store.array(0, u, "x"), store.array(0, u, "target_map")
                    maps = {
                        "benign": store.array(0, u, "benign_map"),
                        "pgd": store.array(0, u, "base_map"),
                        "adv": store.array(0, u, "adv_map"),
                    }
                    for j in range(min(per_interp, x.shape[0])):
                        r = {
                            "interp": i,
                            "x": x[j],
                            "target": tgt[j],
                            "cap_pgd": caps.get((u, "pgd", j), ""),
                            "cap_adv": caps.get((u, "adv2", j), ""),
                        }
                        for k, v in maps.items():
                            r[k] = v[j]
                            r[f"d_{k}"] = float(l1_distance(v[j : j + 1], tgt[j : j + 1])[0])
                        rows.append(r)
            finally:
                store.close()
            if not rows:
                continue
            mode = run_name.split("-", 1)[1]
            path = os.path.join(folder, f"{exp.name}_{mode}_{m}.png")
            target_grid(path, rows, f"{m}, {mode} targets: target / benign / PGD / ADV² maps (L1 to m_t below)")
            out.append((f"Q4 {mode} targets, {m}: target map, benign map, PGD map, ADV² map", path))
    return out


@_register(FIGURES, "transfer-matrix")
def figure_transfer(ctx: Context, exp: Any, folder: str) -> list[tuple[str, str]]:
    out = []
    attackers = ["pgd", *ctx.interpreters]
    for m in ctx.models:
        mat = ctx.transfer(m)
        if not mat:
            continue
        vals = {
            k: np.array([[mat[(a, b)][k] if (a, b) in mat else np.nan for b in ctx.interpreters] for a in attackers])
            for k in ("l1", "iou")
        }
        path = os.path.join(folder, f"{exp.name}_matrix_{m}.png")
        matrix_figure(
            path,
            ["PGD", *[f"ADV²-{a.upper()}" for a in ctx.interpreters]],
            ctx.interpreters,
            {
                "mean L1 to B's benign map\n(colour: ÷ the PGD row of the column)": (
                    vals["l1"] / vals["l1"][:1],
                    vals["l1"],
                    "viridis_r",
                    1.2,
                ),
                "mean IoU with B's benign map": (vals["iou"], vals["iou"], "viridis", 1.0),
            },
            f"Transferability, {m}",
        )
        out.append((f"Transfer matrix, {m} (rows: the input's attack; columns: the interpreter explaining it)", path))
    return out
