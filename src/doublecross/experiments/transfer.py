"""Transferability pass (spec §9): every interpreter's map of every interpreter's adversarial input.

From a finished ``linf-benign`` run: for each batch and each attacked interpreter A (plus PGD),
the stored x* is explained by every evaluated interpreter B for the target class t, and compared
with B's stored benign map. The diagonal (A = B) and the PGD row reuse the maps the run already
stored; only the off-diagonal maps are computed. Results go to their own store, one unit per
(batch, A), so a killed pass resumes.

    cell(A, B) = mean over A's successful inputs of  L1(g_B(x*_A; t), g_B(x°; y)),  IoU likewise
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from ..attacks.presets import load_attack_preset
from ..interpreters import create_interpreter
from ..metrics import map_metrics
from ..models.zoo import create_model
from .store import ResultStore


def _rows(src: ResultStore, batch: int, unit: str, method: str) -> list[dict[str, Any]]:
    return sorted(
        (s for s in src.samples() if s["batch"] == batch and s["unit"] == unit and s["method"] == method),
        key=lambda s: s["idx"],
    )


def _metric_rows(
    base_rows: list[dict[str, Any]],
    interpreter: str,
    method: str,
    mets: dict[str, torch.Tensor],
    extra: dict[str, list[Any]],
) -> list[dict[str, Any]]:
    """One store row per input i of ``base_rows``: its success, then the i-th entry of each ``extra`` list and of
    each metric in ``mets``."""
    return [
        {
            "idx": r["idx"],
            "interpreter": interpreter,
            "method": method,
            "metrics": {
                "success": bool(r["success"]),
                **{k: vals[i] for k, vals in extra.items()},
                **{k: float(v[i]) for k, v in mets.items()},
            },
        }
        for i, r in enumerate(base_rows)
    ]


def transfer_pass(run: str, dest: str, job: Any, progress: bool | None = None) -> None:
    """Compute the cross maps of ``run`` (a run directory) into the store ``dest``.

    Args:
        run: a finished run directory with threat ``linf`` and target map ``benign``.
        dest: path of the transfer store (created or resumed).
        job: the run's :class:`JobConfig` (model, preset, interpreters).
    """
    src = ResultStore(os.path.join(run, "results.sqlite"))
    dst = ResultStore(dest)
    model = interps = None
    try:
        batches = sorted({b for (b,) in src.db.execute("SELECT DISTINCT batch FROM units")})
        names = list(job.interpreters)
        attackers = ["pgd", *names]
        for b in batches:
            for a in attackers:
                unit = f"transfer-{a}"
                if dst.done(b, unit):
                    continue
                if model is None:
                    preset = load_attack_preset(job.preset)
                    model = create_model(job.model, weights=job.weights).to(job.device)
                    interps = {n: create_interpreter(n, model, **preset.interpreter_options.get(n, {})) for n in names}
                t0 = time.time()
                src_unit = "pgd" if a == "pgd" else f"adv2-{a}"
                base_rows = _rows(src, b, "pgd", "pgd") if a == "pgd" else _rows(src, b, src_unit, "adv2")
                x_adv = src.array(b, "pgd", "x") if a == "pgd" else src.array(b, src_unit, "adv_x")
                t = torch.tensor([r["target"] for r in base_rows])
                rows = []
                for bname, interp in interps.items():
                    benign = src.array(b, f"adv2-{bname}", "benign_map")
                    if a == "pgd":
                        amap = src.array(b, f"adv2-{bname}", "base_map")
                    elif a == bname:
                        amap = src.array(b, src_unit, "adv_map")
                    else:
                        amap = interp.explain(x_adv.to(job.device), t.to(job.device)).map.cpu()
                    mets = map_metrics(amap.float(), benign.float())
                    rows += _metric_rows(base_rows, bname, a, mets, {"target": [int(v) for v in t]})
                dst.write_unit(b, unit, time.time() - t0, rows, {})
    finally:
        src.close()
        dst.close()


def transfer_matrix(dest: str) -> dict[tuple[str, str], dict[str, float]]:
    """(attacker A, evaluator B) -> {"n", "successes", "l1", "l1_std", "iou", "iou_std", ...} over A's successes."""
    from ..report.tables import summarise

    if not os.path.isfile(dest):
        return {}
    store = ResultStore(dest)
    try:
        samples = list(store.samples())
    finally:
        store.close()
    return {(r["method"], r["interpreter"]): r for r in summarise(samples)}


def cross_model_pass(run: str, dest: str, src_job: Any, dst_job: Any) -> None:
    """Inputs crafted on ``src_job.model`` explained by ``dst_job.model``'s interpreters (spec §9, optional).

    For every batch of the source run and every attacker A (PGD and ADV² per interpreter), each
    interpreter B of the destination model explains x* for t and the benign image x° for its label;
    rows hold L1 / L2 / IoU between the two maps, A's success on the source model, and ``fooled``:
    whether the destination model also predicts t.
    """
    src = ResultStore(os.path.join(run, "results.sqlite"))
    dst = ResultStore(dest)
    model = interps = None
    try:
        batches = sorted({b for (b,) in src.db.execute("SELECT DISTINCT batch FROM units")})
        names = list(src_job.interpreters)
        for b in batches:
            benign: dict[str, torch.Tensor] = {}
            for a in ["pgd", *names]:
                unit = f"xmodel-{a}"
                if dst.done(b, unit):
                    continue
                if model is None:
                    preset = load_attack_preset(dst_job.preset)
                    model = create_model(dst_job.model, weights=dst_job.weights).to(dst_job.device)
                    interps = {
                        n: create_interpreter(n, model, **preset.interpreter_options.get(n, {}))
                        for n in dst_job.interpreters
                    }
                t0 = time.time()
                src_unit = "pgd" if a == "pgd" else f"adv2-{a}"
                rows_a = _rows(src, b, "pgd", "pgd") if a == "pgd" else _rows(src, b, src_unit, "adv2")
                x_adv = (src.array(b, "pgd", "x") if a == "pgd" else src.array(b, src_unit, "adv_x")).to(dst_job.device)
                t = torch.tensor([r["target"] for r in rows_a], device=dst_job.device)
                y = torch.tensor([r["label"] for r in rows_a], device=dst_job.device)
                x0 = src.array(b, f"adv2-{names[0]}", "x").to(dst_job.device)
                with torch.no_grad():
                    fooled = model(x_adv).argmax(1) == t
                rows = []
                for bname, interp in interps.items():
                    if bname not in benign:
                        benign[bname] = interp.explain(x0, y).map
                    mets = map_metrics(interp.explain(x_adv, t).map, benign[bname])
                    rows += _metric_rows(rows_a, bname, a, mets, {"fooled": [float(v) for v in fooled]})
                dst.write_unit(b, unit, time.time() - t0, rows, {})
    finally:
        src.close()
        dst.close()
