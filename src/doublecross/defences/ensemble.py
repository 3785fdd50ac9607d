"""Ensemble interpretation as a detector, and the adaptive ADV² against it (spec §9, [our decision]).

Detector: the inconsistency score of the ensemble's members for the predicted class c = argmax z(x),
``s(x) = mean_{A<B} (1 - IoU_20(g_A(x; c), g_B(x; c)))``, flagged above the 95th percentile of
held-out benign scores (first half of the held-out images; the second half measures false positives).

Adaptive attack: the one ADV² loop (``attacks/adv2.py``) with the ensemble interpreter, so
``L = CE(z, t) + Σ_A λ_A · mean_cells(g_A(x; t) - g_A(x°; y))² + Σ member terms`` (benign targets).
λ_A defaults to the run preset's λ for each member, and RTS's encoder term keeps the preset's λ2.
The step counts are the largest of the members' preset counts [our decision].
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from ..attacks import ATTACKS, AttackConfig
from ..attacks.presets import load_attack_preset
from ..interpreters import create_interpreter
from ..interpreters.ensemble import EnsembleInterpreter
from ..metrics.maps import iou_topk, l1_distance
from .rundata import RunData
from .squeeze import benign_threshold, detection_rate
from .store import DefenceStore


def build_ensemble(data: RunData, members: Sequence[str], threat: str = "linf") -> tuple[EnsembleInterpreter, Any]:
    """The ensemble over ``members`` with the run preset's interpreter options and λ's, and the threat settings."""
    preset = load_attack_preset(data.cfg.preset)
    settings = preset.for_threat(threat)
    weights = {m: settings.for_interpreter(m).lam for m in members}
    opts = {m: preset.interpreter_options.get(m, {}) for m in members}
    ens = create_interpreter("ensemble", data.model, members=list(members), weights=weights, options=opts)
    return ens, settings


def adaptive_config(settings: Any, members: Sequence[str], steps_scale: float = 1.0) -> AttackConfig:
    """Largest member counts (scaled), λ = 1 (λ_A live in the ensemble), members' extra terms prefixed."""
    cfgs = {m: settings.for_interpreter(m) for m in members}
    extra = {f"{m}.{k}": v for m, c in cfgs.items() for k, v in c.extra.items()}
    return AttackConfig(
        n_warm=max(1, round(max(c.n_warm for c in cfgs.values()) * steps_scale)),
        n_total=max(1, round(max(c.n_total for c in cfgs.values()) * steps_scale)),
        lam=1.0,
        reduction=next(iter(cfgs.values())).reduction,
        extra=extra,
        check_every=min(c.check_every for c in cfgs.values()),
    )


@torch.no_grad()
def scores_and_maps(ens: EnsembleInterpreter, x: torch.Tensor, batch_size: int = 32) -> tuple[torch.Tensor, dict]:
    """Inconsistency for the predicted class and member maps. -> (N,), {member: (N, 1, h, w)}."""
    scores, maps = [], {n: [] for n in ens.names}
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        pred = ens.model(xb).argmax(1)
        out = ens.explain(xb, pred)
        scores.append(ens.inconsistency(out))
        for n, m in ens.members_of(out.map).items():
            maps[n].append(m)
    return torch.cat(scores), {n: torch.cat(v) for n, v in maps.items()}


def run_ensemble(
    data: RunData,
    store: DefenceStore,
    members: Sequence[str] = ("grad", "cam", "rts"),
    n_heldout: int = 200,
    steps_scale: float = 1.0,
    percentile: float = 95.0,
) -> dict[str, Any]:
    """Detection rates of PGD, single-interpreter ADV² and the adaptive ADV²; adaptive success and distances."""
    exp = "ensemble-" + "+".join(members) + (f"@steps{steps_scale:g}" if steps_scale != 1 else "")
    ens, settings = build_ensemble(data, members)
    bkey = f"benign:{n_heldout}"
    if not store.done(exp, bkey):
        t0 = time.time()
        xb, _ = data.heldout(n_heldout)
        s, _ = scores_and_maps(ens, xb)
        store.put(exp, bkey, {"n": len(xb)}, time.time() - t0, {"scores": s})
    with torch.no_grad():
        out = ens.explain(data.x, data.y)
    benign_maps = {n: m for n, m in ens.members_of(out.map).items()}
    acfg = adaptive_config(settings, members, steps_scale)
    bs = data.cfg.batch_size
    for b in range(0, len(data.x), bs):
        key = f"adaptive:{b // bs}"
        if store.done(exp, key):
            continue
        t0 = time.time()
        xb, tb = data.x[b : b + bs], data.t[b : b + bs]
        attack = ATTACKS.create("adv2", threat=settings.create_threat(acfg), config=acfg)
        res = attack(data.model, xb, tb, ens, out.map[b : b + bs])
        store.put(exp, key, {"config": acfg.__dict__}, time.time() - t0, {"x_adv": res.x_adv, "success": res.success})
    chunks = [k for k in store.keys(exp) if k.startswith("adaptive:")]
    chunks.sort(key=lambda k: int(k.split(":")[1]))
    adv_x = torch.cat([store.array(exp, k, "x_adv") for k in chunks])
    adv_ok = torch.cat([store.array(exp, k, "success") for k in chunks])
    attack_seconds = store.seconds(exp, prefix="adaptive:")
    sets = {u: (data.adversarial[u], data.success[u]) for u in data.adversarial}
    sets["adaptive"] = (adv_x, adv_ok)
    bscores = store.array(exp, bkey, "scores")
    half = len(bscores) // 2
    thr = benign_threshold(bscores[:half], percentile)
    rows = []
    for name, (xa, ok) in sets.items():
        idx = ok.nonzero().flatten()
        row: dict[str, Any] = {"method": name, "n": len(ok), "success": float(ok.float().mean())}
        if len(idx):
            s, _ = scores_and_maps(ens, xa[idx])
            with torch.no_grad():
                adv_out = ens.explain(xa[idx], data.t[idx])
            row["detection"] = detection_rate(s, thr)
            row["inconsistency"] = float(s.mean())
            for n, m in ens.members_of(adv_out.map).items():
                row[f"l1_{n}"] = float(l1_distance(m, benign_maps[n][idx]).mean())
                row[f"iou20_{n}"] = float(iou_topk(m, benign_maps[n][idx], 20).mean())
        rows.append(row)
    table = {
        "members": list(members),
        "weights": ens.weights,
        "threshold": thr,
        "fpr": detection_rate(bscores[half:], thr),
        "benign_inconsistency": float(bscores.mean()),
        "n_benign": {"threshold": half, "test": len(bscores) - half},
        "rows": rows,
        "adaptive_config": {k: v for k, v in acfg.__dict__.items() if k in ("n_warm", "n_total", "extra", "lam")},
        "seconds": attack_seconds,
        "percentile": percentile,
        "threads": torch.get_num_threads(),
        "benign_maps_note": "distances: member map for t of the input vs the member's benign map g_A(x°; y)",
    }
    store.put(exp, "table", table)
    return table
