"""Table builders of ``doublecross reproduce``, registered by the names experiment specs use (``tables: [q1]``).

Each returns :class:`Table` objects in the paper's layout (Q1, Table 12, IoU_k, Q4, transfer matrices).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..experiments.results import run_methods
from ..metrics import IOU_KS
from .paper_tables import Table, pm
from .reproduce_context import Context, _iname, _register
from .tables import method_label

TABLES: dict[str, Callable[..., list[Table]]] = {}


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


def _matrix_rows(
    mat: dict[tuple[str, str], dict[str, Any]],
    attackers: list[str],
    evaluators: list[str],
    last: Callable[[dict[str, Any]], str],
) -> tuple[list[list[str]], list[tuple[str, str, dict[str, Any]]]]:
    """Rows of a transfer matrix (attacker A × evaluator B): "L1 / IoU" cells, then ``last(r)`` of A's last found
    cell; also every found (A, B, cell) in row order, for the table's numbers."""
    rows, found = [], []
    for a in attackers:
        cells = [method_label(a) if a == "pgd" else f"ADV²-{_iname(a)}"]
        tail = ""
        for b in evaluators:
            r = mat.get((a, b))
            cells.append(f"{r['l1']:.3f} / {r['iou']:.3f}" if r and r["successes"] else "–")
            if r:
                tail = last(r)
                found.append((a, b, r))
        rows.append(cells + [tail])
    return rows, found


@_register(TABLES, "transfer")
def table_transfer(ctx: Context, exp: Any) -> list[Table]:
    out = []
    attackers = ["pgd", *ctx.interpreters]
    for m in ctx.models:
        mat = ctx.transfer(m)
        header = ["attacked A \\ evaluated B"] + [_iname(b) for b in ctx.interpreters] + ["n (successes)"]
        rows, found = _matrix_rows(mat, attackers, ctx.interpreters, lambda r: f"{r['successes']}/{r['n']}")
        nums = [
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
            for a, b, r in found
        ]
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
            rows, found = _matrix_rows(
                mat, attackers, ctx.interpreters, lambda r: f"{100 * r.get('fooled', float('nan')):.0f} %"
            )
            nums = [
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
                for a, b, r in found
            ]
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
