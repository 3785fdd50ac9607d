"""Tables, figures, claims and the HTML report of ``doublecross reproduce``, derived from stored runs.

Table and figure builders are registered by the names experiment specs use (``tables: [q1]``,
``figures: [iou-curves]``); each reads the summaries of the runs its experiment names.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..experiments.claims import CLAIMS, Claim
from ..experiments.results import Summary, load_summary, run_methods
from ..experiments.store import ResultStore
from ..metrics import IOU_KS
from .paper_grids import fig17_grid, matrix_figure, target_grid
from .paper_tables import Table, pm
from .tables import method_label

TABLES: dict[str, Callable[..., list[Table]]] = {}
FIGURES: dict[str, Callable[..., list[tuple[str, str]]]] = {}


def _register(registry: dict, name: str) -> Callable:
    def deco(fn: Callable) -> Callable:
        registry[name] = fn
        return fn

    return deco


@dataclass
class Context:
    """What the builders read: the config, the output folder and cached run summaries."""

    cfg: Any
    out: str
    _cache: dict[tuple[str, str], Summary] = field(default_factory=dict)

    @property
    def interpreters(self) -> list[str]:
        return list(self.cfg.interpreters)

    @property
    def models(self) -> list[str]:
        return list(self.cfg.models)

    def run(self, model: str, run: str) -> str:
        from ..experiments.reproduce import run_dir

        return run_dir(self.out, model, run)

    def summary(self, model: str, run: str) -> Summary:
        if (model, run) not in self._cache:
            self._cache[(model, run)] = load_summary(self.run(model, run))
        return self._cache[(model, run)]

    def transfer(self, model: str) -> dict[tuple[str, str], dict[str, Any]]:
        from ..experiments.passes import transfer_store
        from ..experiments.transfer import transfer_matrix

        key = (model, "transfer")
        if key not in self._cache:
            self._cache[key] = transfer_matrix(transfer_store(self.out, model))
        return self._cache[key]

    def notes(self, exp: Any, run: str | None = None) -> list[str]:
        run = run or exp.runs[0]
        sizes = []
        for model in self.models:
            s = self.summary(model, run)
            n = max((r["n"] for r in s.values()), default=0)
            sizes.append(f"{model}: n = {n} attacked images")
        presets = ", ".join(f"{m}: {self.cfg.preset_for(m)}" for m in self.models)
        return [
            "Sample size: " + "; ".join(sizes) + " (statistics are mean ± sample std over each attack's successful "
            "inputs; map distances at the interpreter's native resolution; L2 = ‖a − b‖₂ / √cells).",
            f"Seed {self.cfg.seed}; preset {presets}; run {run}; dataset {self.cfg.images or self.cfg.dataset}.",
            "Tests spec §12 claim(s): " + ", ".join(str(c) for c in exp.claims) + ".",
        ]


def _iname(i: str) -> str:
    return i.upper()


@_register(TABLES, "q1")
def table_q1(ctx: Context, exp: Any) -> list[Table]:
    run = exp.runs[0]
    base, adv = run_methods(ctx.run(ctx.models[0], run))
    header = ["interpreter", "attack"] + [f"{m} {c}" for m in ctx.models for c in ("success", "confidence")]
    rows, nums = [], []
    for i in ctx.interpreters:
        for meth in (base, adv):
            cells = [_iname(i), method_label(meth)]
            for m in ctx.models:
                r = ctx.summary(m, run).get((i, meth))
                cells += [
                    f"{r['successes']}/{r['n']} ({100 * r['success_rate']:.0f} %)" if r else "–",
                    pm(r, "confidence"),
                ]
                if r:
                    nums.append(
                        {
                            "model": m,
                            "interpreter": i,
                            "method": meth,
                            "n": r["n"],
                            "successes": r["successes"],
                            "success_rate": r["success_rate"],
                            "confidence": r["confidence"],
                            "confidence_std": r["confidence_std"],
                        }
                    )
            rows.append(cells)
    return [
        Table(
            f"{exp.name}_q1",
            f"{exp.title} — success rate and confidence ({method_label(base)} vs {method_label(adv)})",
            header,
            rows,
            ctx.notes(exp),
            nums,
        )
    ]


@_register(TABLES, "q2-distance")
def table_q2_distance(ctx: Context, exp: Any) -> list[Table]:
    run = exp.runs[0]
    base, adv = run_methods(ctx.run(ctx.models[0], run))
    tag = {base: "P", adv: "A"}
    header = ["interpreter", ""] + [f"{m} {c}" for m in ctx.models for c in ("L1", "L2")]
    rows, nums = [], []
    for i in ctx.interpreters:
        for meth in (base, adv):
            cells = [_iname(i), tag[meth]]
            for m in ctx.models:
                r = ctx.summary(m, run).get((i, meth))
                cells += [pm(r, "l1"), pm(r, "l2")]
                if r:
                    nums.append(
                        {
                            "model": m,
                            "interpreter": i,
                            "method": meth,
                            "successes": r["successes"],
                            **{k: r[k] for k in ("l1", "l1_std", "l2", "l2_std")},
                        }
                    )
            rows.append(cells)
    notes = [f"P = {method_label(base)}, A = {method_label(adv)} (Table-12 layout)."] + ctx.notes(exp)
    return [Table(f"{exp.name}_distance", f"{exp.title} — L1 / L2 to the benign map", header, rows, notes, nums)]


@_register(TABLES, "q2-iou")
def table_q2_iou(ctx: Context, exp: Any) -> list[Table]:
    run = exp.runs[0]
    base, adv = run_methods(ctx.run(ctx.models[0], run))
    multi = len(ctx.models) > 1
    header = (["model"] if multi else []) + ["interpreter", "attack"] + [f"IoU@{k}" for k in IOU_KS] + ["mean"]
    rows, nums = [], []
    for m in ctx.models:
        for i in ctx.interpreters:
            for meth in (base, adv):
                r = ctx.summary(m, run).get((i, meth))
                cells = ([m] if multi else []) + [_iname(i), method_label(meth)]
                cells += [f"{r[f'iou{k}']:.3f}" if r else "–" for k in IOU_KS] + [pm(r, "iou")]
                rows.append(cells)
                if r:
                    nums.append(
                        {
                            "model": m,
                            "interpreter": i,
                            "method": meth,
                            "successes": r["successes"],
                            **{f"iou{k}": r[f"iou{k}"] for k in IOU_KS},
                            "iou": r["iou"],
                            "iou_std": r["iou_std"],
                        }
                    )
    return [
        Table(
            f"{exp.name}_iou",
            f"{exp.title} — IoU_k with the benign map (top-k % cells)",
            header,
            rows,
            ctx.notes(exp),
            nums,
        )
    ]


@_register(TABLES, "q4")
def table_q4(ctx: Context, exp: Any) -> list[Table]:
    header = [
        "model",
        "target",
        "interpreter",
        "ADV² success",
        "L1→m_t ADV²",
        "L1→m_t benign",
        "L1→m_t PGD",
        "IoU→m_t ADV²",
        "IoU→m_t benign",
        "IoU→m_t PGD",
        "L1 to benign (ADV²)",
    ]
    rows, nums = [], []
    for m in ctx.models:
        for run in exp.runs:
            mode = run.split("-", 1)[1]
            s = ctx.summary(m, run)
            for i in ctx.interpreters:
                a, r, p = s.get((i, "adv2")), s.get((i, "benign-ref")), s.get((i, "pgd"))
                rows.append(
                    [
                        m,
                        mode,
                        _iname(i),
                        f"{a['successes']}/{a['n']}" if a else "–",
                        pm(a, "l1"),
                        pm(r, "l1"),
                        pm(p, "l1"),
                        pm(a, "iou"),
                        pm(r, "iou"),
                        pm(p, "iou"),
                        pm(a, "benign_l1"),
                    ]
                )
                if a and r and p:
                    nums.append(
                        {
                            "model": m,
                            "target": mode,
                            "interpreter": i,
                            "n": a["n"],
                            "successes": a["successes"],
                            "adv_l1": a["l1"],
                            "benign_l1": r["l1"],
                            "pgd_l1": p["l1"],
                            "adv_iou": a["iou"],
                            "benign_iou": r["iou"],
                            "pgd_iou": p["iou"],
                            "adv_l1_to_benign": a.get("benign_l1", float("nan")),
                        }
                    )
    notes = [
        "m_t: class-exemplar = the map for t of a correctly classified image of class t from outside the attack "
        "set; shape = a random circle/rectangle, each paired with the farthest benign map, each image ≤ 3 "
        "times. 'benign' = d(g(x°; y), m_t) over ADV²'s successes; 'PGD' = d(g(x_PGD; t), m_t) over PGD's."
    ]
    notes += ctx.notes(exp, exp.runs[0])
    return [
        Table(f"{exp.name}_targets", f"{exp.title} — distance of g(x*; t) to the target map", header, rows, notes, nums)
    ]


@_register(TABLES, "transfer")
def table_transfer(ctx: Context, exp: Any) -> list[Table]:
    out = []
    attackers = ["pgd", *ctx.interpreters]
    for m in ctx.models:
        mat = ctx.transfer(m)
        header = ["attacked A \\ evaluated B"] + [_iname(b) for b in ctx.interpreters] + ["n (successes)"]
        rows, nums = [], []
        for a in attackers:
            cells = [method_label(a) if a == "pgd" else f"ADV²-{_iname(a)}"]
            n = ""
            for b in ctx.interpreters:
                r = mat.get((a, b))
                cells.append(f"{r['l1']:.3f} / {r['iou']:.3f}" if r and r["successes"] else "–")
                if r:
                    n = f"{r['successes']}/{r['n']}"
                    nums.append(
                        {
                            "model": m,
                            "attacked": a,
                            "evaluated": b,
                            "n": r["n"],
                            "successes": r["successes"],
                            "l1": r["l1"],
                            "l1_std": r["l1_std"],
                            "iou": r["iou"],
                            "iou_std": r["iou_std"],
                        }
                    )
            rows.append(cells + [n])
        notes = [
            "Cells: mean L1 / mean IoU (k = 10 … 90 %) between B's map of A's x* (for t) and B's benign map, over "
            "A's successful inputs; the diagonal is the attacked interpreter itself."
        ] + ctx.notes(exp)
        out.append(Table(f"{exp.name}_{m}", f"{exp.title} — {m}", header, rows, notes, nums))
    return out


@_register(TABLES, "transfer-models")
def table_transfer_models(ctx: Context, exp: Any) -> list[Table]:
    """Across classifiers: inputs crafted on model M1, explained by model M2's interpreters (needs ≥ 2 models)."""
    from ..experiments.passes import cross_store
    from ..experiments.transfer import transfer_matrix

    out = []
    attackers = ["pgd", *ctx.interpreters]
    for m1 in ctx.models:
        for m2 in ctx.models:
            if m1 == m2:
                continue
            mat = transfer_matrix(cross_store(ctx.out, m1, m2))
            header = ["crafted on " + m1 + " \\ explained by " + m2] + [_iname(b) for b in ctx.interpreters]
            header += [f"{m2} predicts t"]
            rows, nums = [], []
            for a in attackers:
                cells = [method_label(a) if a == "pgd" else f"ADV²-{_iname(a)}"]
                fooled = ""
                for b in ctx.interpreters:
                    r = mat.get((a, b))
                    cells.append(f"{r['l1']:.3f} / {r['iou']:.3f}" if r and r["successes"] else "–")
                    if r:
                        fooled = f"{100 * r.get('fooled', float('nan')):.0f} %"
                        nums.append(
                            {
                                "from": m1,
                                "to": m2,
                                "attacked": a,
                                "evaluated": b,
                                "successes": r["successes"],
                                "l1": r["l1"],
                                "iou": r["iou"],
                                "fooled": r.get("fooled", float("nan")),
                            }
                        )
                rows.append(cells + [fooled])
            notes = [
                f"Cells: mean L1 / IoU between {m2}'s map of x* (crafted on {m1}) for t and {m2}'s map of x° for "
                f"y, over the inputs that succeeded on {m1}; last column: how many of them {m2} also classifies "
                "as t."
            ] + ctx.notes(exp)
            out.append(
                Table(
                    f"{exp.name}_{m1}_to_{m2}",
                    f"{exp.title} — across classifiers, {m1} → {m2}",
                    header,
                    rows,
                    notes,
                    nums,
                )
            )
    return out


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
        path = os.path.join(folder, f"{exp.name}_iou_curves_{m}.png")
        iou_curve_figure(path, rows, f"IoU_k with the benign map, {m} (mean ± std over successes)")
        out.append((f"IoU_k against k, {m} (Fig. 20 style)", path))
    return out


@_register(FIGURES, "fig17")
def figure_fig17(ctx: Context, exp: Any, folder: str, n_images: int = 2) -> list[tuple[str, str]]:
    out = []
    for m in ctx.models:
        run = ctx.run(m, exp.runs[0])
        base, adv = run_methods(run)
        names = _class_names(run)
        store = ResultStore(os.path.join(run, "results.sqlite"))
        try:
            samples = [s for s in store.samples() if s["batch"] == 0]
            caps = _caps(samples, names)
            x = store.array(0, base, "x")
            label = {s["idx"]: s["label"] for s in samples if s["unit"] == base}
            images = []
            for j in range(min(n_images, x.shape[0])):
                u = {i: f"{adv}-{i}" for i in ctx.interpreters}
                im: dict[str, Any] = {
                    "x": store.array(0, u[ctx.interpreters[0]], "x")[j],
                    "x_base": x[j],
                    "cap_benign": f"{names[label[j]] if label[j] < len(names) else label[j]} (true)",
                    "cap_base": caps.get((base, base, j), ""),
                    "cap_base_map": {i: caps.get((u[i], base, j), "") for i in ctx.interpreters},
                    "benign": {i: store.array(0, u[i], "benign_map")[j] for i in ctx.interpreters},
                    "base": {i: store.array(0, u[i], "base_map")[j] for i in ctx.interpreters},
                    "adv": {i: store.array(0, u[i], "adv_map")[j] for i in ctx.interpreters},
                    "adv_x": {i: store.array(0, u[i], "adv_x")[j] for i in ctx.interpreters},
                    "cap_adv": {i: caps.get((u[i], adv, j), "") for i in ctx.interpreters},
                }
                if base == "stadv":
                    im["mag_base"] = store.array(0, base, "magnitude")[j]
                    im["mag_adv"] = {i: store.array(0, u[i], "adv_magnitude")[j] for i in ctx.interpreters}
                images.append(im)
        finally:
            store.close()
        path = os.path.join(folder, f"{exp.name}_grid_{m}.png")
        extra = "; last row: flow magnitude in pixels" if base == "stadv" else ""
        fig17_grid(
            path,
            images,
            ctx.interpreters,
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


@_register(FIGURES, "q4-grids")
def figure_q4(ctx: Context, exp: Any, folder: str, per_interp: int = 2) -> list[tuple[str, str]]:
    from ..metrics import l1_distance

    out = []
    for m in ctx.models:
        for run_name in exp.runs:
            run = ctx.run(m, run_name)
            names = _class_names(run)
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
        vals = {
            k: np.array([[mat[(a, b)][k] if (a, b) in mat else np.nan for b in ctx.interpreters] for a in attackers])
            for k in ("l1", "iou")
        }
        path = os.path.join(folder, f"{exp.name}_matrix_{m}.png")
        matrix_figure(
            path,
            ["PGD", *[f"ADV²-{a.upper()}" for a in ctx.interpreters]],
            ctx.interpreters,
            {"mean L1 to B's benign map": vals["l1"], "mean IoU with B's benign map": vals["iou"]},
            f"Transferability, {m}",
        )
        out.append((f"Transfer matrix, {m}", path))
    return out


@dataclass
class Section:
    """One experiment's rendered outputs."""

    spec: Any
    tables: list[Table]
    figures: list[tuple[str, str]]
    claims: list[Claim]


def write_outputs(cfg: Any, specs: list[Any], out: str, manifests: dict[str, Any]) -> dict[str, Any]:
    """Write every experiment's tables (md/csv/tex) and figures, then ``report.html``; return a summary."""
    from .reproduce_html import write_reproduce_html

    ctx = Context(cfg, out)
    tdir, fdir = os.path.join(out, "tables"), os.path.join(out, "figures")
    os.makedirs(tdir, exist_ok=True)
    os.makedirs(fdir, exist_ok=True)
    sections, files, verdicts = [], [], {}
    for spec in specs:
        tables = [t for name in spec.tables for t in TABLES[name](ctx, spec)]
        claims = [CLAIMS[c](ctx, m) for c in spec.claims for m in ctx.models]
        for t in tables:
            t.notes += [c.line() for c in claims]
            files += list(t.write(tdir).values())
        figures = [f for name in spec.figures for f in FIGURES[name](ctx, spec, fdir)]
        files += [p for _, p in figures]
        for c in claims:
            verdicts[f"{spec.name}: claim {c.number} [{c.model}]"] = c.verdict
        sections.append(Section(spec, tables, figures, claims))
    with open(os.path.join(out, "tables", "all.md"), "w") as fh:
        fh.write("\n".join(t.markdown() for s in sections for t in s.tables))
    html_path = os.path.join(out, "report.html")
    write_reproduce_html(html_path, cfg, sections, manifests)
    return {"files": [os.path.relpath(p, out) for p in files] + ["report.html"], "claims": verdicts}
