"""Markdown and self-contained HTML report of the defence experiments, derived from ``defences.sqlite``."""

from __future__ import annotations

import html
import math
import os
from typing import Any

from .store import DefenceStore

Section = tuple[str, list[str], list[str], list[list[str]]]  # title, notes, header, rows


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _squeeze(t: dict[str, Any]) -> Section:
    units = t["units"]
    header = ["squeezers", "threshold", "benign FPR"] + [f"{u} (n={t['n'][u]})" for u in units]
    rows = [[r["label"], _f(r["threshold"], 4), _f(r["fpr"])] + [_f(r[u]) for u in units] for r in t["rows"]]
    b = t["best_for_adv2"]
    rows.append([f"{b['combo']} ({b['label']})", _f(b["threshold"], 4), _f(b["fpr"])] + [_f(b[u]) for u in units])
    notes = [
        "Feature squeezing (Xu et al.), design from the authors' code (spec §9). Score = max over the squeezers of "
        "‖p(x) − p(squeeze(x))‖₁; threshold = the "
        f"{t['percentile']:.0f}th percentile of {t['n_benign']['threshold']} held-out benign scores; benign FPR on "
        f"{t['n_benign']['test']} other held-out benign images. Detection rate over successful adversarial inputs.",
        "NLM via scikit-image `denoise_nl_means` (fast mode); search window S → patch_distance S//2, strength H → "
        "h = H/255 on [0, 1] images [our decision: the mapping from OpenCV's parameters].",
        f"All {t['n_combinations']} combinations are stored (`squeeze/all-combinations`); "
        "shown: singles, families, all.",
    ]
    return "Detection: feature squeezing", notes, header, rows


def _lid(t: dict[str, Any]) -> Section:
    header = ["trained on", "tested on", "k (CV)", "CV AUC", "test AUC", "adv. train / test"]
    rows = [
        [
            r["trained_on"],
            r["tested_on"],
            str(r["k"]),
            _f(r["cv_auc"]),
            _f(r["test_auc"]),
            f"{r['n_train_adv']} / {r['n_test_adv']}",
        ]
        for r in t["rows"]
    ]
    notes = [
        "LID (Ma et al.), spec §9: one MLE LID per hooked layer against a batch of "
        f"{t['n_ref']} held-out benign references; negatives = benign + U(±ε) noisy (ε = the sample's adversarial "
        "L∞), positives = successful adversarial inputs; min-max scaling + logistic regression; k ∈ "
        f"{t['ks']} by grouped 5-fold CV on a train half of the images (seed {t['seed']}), AUC on the other half.",
        f"Layers ({len(t['layers'])}): {', '.join(t['layers'])}.",
    ]
    return "Detection: LID", notes, header, rows


def _ensemble(name: str, t: dict[str, Any]) -> Section:
    members = t["members"]
    header = ["inputs", "n", "success", "detection", "inconsistency"]
    header += [f"L1 {m}" for m in members] + [f"IoU20 {m}" for m in members]
    rows = []
    for r in t["rows"]:
        rows.append(
            [r["method"], str(r["n"]), _f(r["success"]), _f(r.get("detection")), _f(r.get("inconsistency"))]
            + [_f(r.get(f"l1_{m}")) for m in members]
            + [_f(r.get(f"iou20_{m}")) for m in members]
        )
    c = t["adaptive_config"]
    notes = [
        "**[our decision]** (the paper gives no design). Ensemble interpretation over "
        f"{', '.join(members)}: inconsistency = mean pairwise (1 − IoU₂₀) of the members' maps for the predicted "
        f"class; threshold = {t['percentile']:.0f}th percentile of {t['n_benign']['threshold']} held-out benign "
        f"scores ({_f(t['threshold'])}); benign FPR {_f(t['fpr'])} on {t['n_benign']['test']} others; mean benign "
        f"inconsistency {_f(t['benign_inconsistency'])}.",
        "Adaptive ADV²: CE + Σ_A λ_A·ℓint^A (+ member terms) through the one ADV² loop, λ_A = "
        f"{t['weights']}, extra {c['extra']}, n_warm {c['n_warm']}, n_total {c['n_total']}; "
        f"{_f(t['seconds'], 0)} s at {t['threads']} thread(s) on a shared machine.",
        "Detection and distances over successful inputs; distances: member map for t vs the member's benign map.",
    ]
    title = name.replace("@steps", ", attack steps ×")
    return f"Countermeasure: ensemble interpretation ({title})", notes, header, rows


def _aid(t: dict[str, Any], meta: dict[str, Any] | None) -> Section:
    header = [
        "RTS",
        "ADV² success",
        "L1",
        "L2",
        "IoU20",
        "final ℓint",
        "iterations to 'before' level",
        "L_RTS (benign)",
        "GT IoU",
    ]
    rows = [
        [
            r["rts"],
            _f(r["success"]),
            _f(r["l1"]),
            _f(r["l2"]),
            _f(r["iou20"]),
            _f(r["final_int"], 5),
            _f(r["iterations_to_before_level"]),
            _f(r["rts_loss"]),
            f"{_f(r['gt_iou'])} ± {_f(r['gt_iou_sem'])}",
        ]
        for r in t["rows"]
    ]
    c = t["attack_config"]
    notes = [
        "**[our decision]** AID for RTS (the paper gives no design): fine-tuned selector + decoder on batches "
        "mixing benign images and ADV²-RTS / PGD inputs regenerated against the current RTS each round (L_RTS with "
        "f's predicted class on adversarial inputs).",
        f"ADV²-RTS on {t['n_attack']} attack-set images (n_warm {c['n_warm']}, n_total {c['n_total']}, λ "
        f"{c['lam']}, {c['extra']}); distances to the attacked RTS's own benign map over successful inputs; "
        "'iterations' = first recorded stage-2 step (every 10) at which the batch-mean ℓint reaches the level the "
        f"attack on the original RTS ended at ({_f(t['level'], 5)}); '–' = never.",
        f"Benign fidelity on the first {t['n_fidelity']} scenes test images: GT IoU change {t['gt_iou_change']:+.3f}.",
    ]
    if meta:
        a = meta.get("aid") or {}
        rounds = "; ".join(
            f"round {r['round']}: ADV²-RTS {r['adv2_success']:.2f} / PGD {r['pgd_success']:.2f} success against the "
            f"current RTS, pool {r['pool']}, L_RTS benign {r['loss_benign']:.2f} / adversarial "
            f"{_f(r['loss_adversarial'], 2)}, {r['round_s']:.0f} s"
            for r in meta.get("rounds") or []
        )
        notes.append(
            f"Training ({meta['weights']}): {a.get('rounds')} rounds × {a.get('steps_per_round')} steps, batch "
            f"{a.get('batch_size')} ({a.get('adv_fraction')} adversarial), {a.get('adv_per_round')} images attacked "
            f"per round at {a.get('attack_scale')}× the preset's counts, lr {a.get('lr')}; "
            f"{_f(meta.get('train_time_s'), 0)} s at {meta.get('threads')} thread(s) on a shared machine. {rounds}."
        )
    return "Countermeasure: AID for RTS", notes, header, rows


def sections(store: DefenceStore) -> list[Section]:
    out: list[Section] = []
    if store.done("squeeze", "table"):
        out.append(_squeeze(store.get("squeeze", "table")))
    if store.done("lid", "table"):
        out.append(_lid(store.get("lid", "table")))
    for (exp,) in store.db.execute("SELECT DISTINCT experiment FROM steps WHERE experiment LIKE 'ensemble-%'"):
        if store.done(exp, "table"):
            out.append(_ensemble(exp.removeprefix("ensemble-"), store.get(exp, "table")))
    if store.done("aid", "table"):
        meta = store.get("aid", "training") if store.done("aid", "training") else None
        out.append(_aid(store.get("aid", "table"), meta))
    return out


def markdown(secs: list[Section]) -> str:
    lines = ["# doublecross: defences", ""]
    for title, notes, header, rows in secs:
        lines += [f"## {title}", ""] + [f"- {n}" for n in notes] + [""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    return "\n".join(lines)


def to_html(secs: list[Section]) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>doublecross defences</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #bbb;"
        "padding:3px 8px;text-align:right}td:first-child{text-align:left}</style></head><body>",
        "<h1>doublecross: defences</h1>",
    ]
    for title, notes, header, rows in secs:
        parts.append(f"<h2>{e(title)}</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out_dir: str) -> str:
    """Regenerate ``report.md`` and ``report.html`` in ``out_dir`` from its store; return the Markdown."""
    with DefenceStore(os.path.join(out_dir, "defences.sqlite")) as store:
        secs = sections(store)
    md = markdown(secs)
    with open(os.path.join(out_dir, "report.md"), "w") as fh:
        fh.write(md)
    with open(os.path.join(out_dir, "report.html"), "w") as fh:
        fh.write(to_html(secs))
    return md
