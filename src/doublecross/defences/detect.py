"""The detection experiments on a run directory: feature squeezing and LID, PGD vs ADV² (spec §9).

Both read the run's stored adversarial images (successful ones only) and held-out benign images
(correctly classified, never attacked), and store each finished step in ``defences.sqlite``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from . import lid, squeeze
from .rundata import RunData, adv2_units, baseline_units
from .store import DefenceStore

log = logging.getLogger(__name__)


def _families(names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    fam: dict[str, tuple[str, ...]] = {}
    for prefix in ("bit", "median", "nlm"):
        members = tuple(n for n in names if n.startswith(prefix + "-"))
        if members:
            fam[f"{prefix}-*"] = members
    fam["all"] = tuple(names)
    return fam


def run_squeeze(data: RunData, store: DefenceStore, n_heldout: int = 200, percentile: float = 95.0) -> dict[str, Any]:
    """Feature-squeezing detection rates per squeezer combination; stored as ``squeeze/table``.

    The held-out benign images split in two halves: the first sets the threshold (its
    ``percentile``-th score), the second measures the false-positive rate.
    """
    names = list(squeeze.squeezers())
    key = f"scores:heldout{n_heldout}"
    if not store.done("squeeze", key):
        t0 = time.time()
        xb, _ = data.heldout(n_heldout)
        half = len(xb) // 2
        if half < 10:
            raise ValueError(f"feature squeezing needs at least 20 held-out benign images, got {len(xb)}")
        sets = {"benign-threshold": xb[:half], "benign-test": xb[half:]}
        sets.update({u: data.successful(u) for u in data.adversarial})
        arrays = {}
        for s, x in sets.items():
            for n, v in squeeze.squeeze_scores(data.model, x, names).items():
                arrays[f"{s}|{n}"] = v
        store.put("squeeze", key, {"sets": {s: len(x) for s, x in sets.items()}}, time.time() - t0, arrays)
    info = store.get("squeeze", key)
    scores = {s: {n: store.array("squeeze", key, f"{s}|{n}") for n in names} for s in info["sets"]}
    units = [u for u in info["sets"] if not u.startswith("benign-")]
    combos = squeeze.all_combinations(names)
    rows = []
    for combo in combos:
        thr = squeeze.benign_threshold(squeeze.combination_scores(scores["benign-threshold"], combo), percentile)
        row = {
            "combo": "+".join(combo),
            "threshold": thr,
            "fpr": squeeze.detection_rate(squeeze.combination_scores(scores["benign-test"], combo), thr),
        }
        for u in units:
            row[u] = squeeze.detection_rate(squeeze.combination_scores(scores[u], combo), thr)
        rows.append(row)
    shown = [("+".join((n,)), n) for n in names] + [("+".join(c), k) for k, c in _families(names).items()]
    by_combo = {r["combo"]: r for r in rows}
    adv = [u for u in units if u.startswith("adv2-")]
    best = max(rows, key=lambda r: np.nanmean([r[u] for u in adv]) if adv else 0.0)
    table = {
        "units": units,
        "n": {u: info["sets"][u] for u in units},
        "n_benign": {"threshold": info["sets"]["benign-threshold"], "test": info["sets"]["benign-test"]},
        "percentile": percentile,
        "rows": [{**by_combo[c], "label": label} for c, label in shown],
        "best_for_adv2": {**best, "label": "best combination for ADV² (selected on these data: optimistic)"},
        "n_combinations": len(rows),
    }
    store.put("squeeze", "table", table)
    store.put("squeeze", "all-combinations", {"rows": rows})
    return table


def _split_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def run_lid(
    data: RunData,
    store: DefenceStore,
    layers: Sequence[str] | None = None,
    n_ref: int = 100,
    ks: Sequence[int] = lid.K_CHOICES,
    seed: int = 0,
) -> dict[str, Any]:
    """LID detector per adversarial unit: k by grouped CV on a train half of the images, test AUC on the other.

    Every unit uses one split of the attack set's images into train/test halves (seeded), so the
    transfer rows (a detector trained on the baseline, tested on ADV²) never test on training images.
    """
    layers = list(layers) if layers else lid.default_layers(data.model)
    ref_x, _ = data.heldout(n_ref)
    if len(ref_x) <= max(ks):
        raise ValueError(f"LID needs more than k = {max(ks)} reference images, got {len(ref_x)}")
    ref_acts = lid.activations(data.model, ref_x, layers)
    train_img, test_img = _split_images(len(data.x), seed)
    setting = f"ref{len(ref_x)}:seed{seed}:" + ",".join(layers)  # features depend on these
    for u in data.adversarial:
        key = f"features:{u}:{setting}"
        if store.done("lid", key):
            continue
        t0 = time.time()
        ok = data.success[u]
        idx = ok.nonzero().flatten()
        if len(idx) < 4:
            log.warning("LID: unit %s has only %d successful inputs; skipped", u, len(idx))
            store.put("lid", key, {"skipped": True, "n": len(idx)})
            continue
        xb, xa = data.x[idx], data.adversarial[u][idx]
        eps = (xa - xb).abs().flatten(1).amax(1)
        xn = lid.uniform_noise(xb, eps, seed)
        pts = torch.cat([xb, xn, xa])
        acts = lid.activations(data.model, pts, layers)
        arrays = {f"k{k}": torch.from_numpy(lid.lid_features(acts, ref_acts, k)) for k in ks}
        arrays["labels"] = torch.tensor([0] * (2 * len(idx)) + [1] * len(idx))
        arrays["images"] = idx.repeat(3)
        store.put("lid", key, {"n": len(idx), "layers": layers}, time.time() - t0, arrays)
    feats: dict[str, dict[str, np.ndarray]] = {}
    for u in data.adversarial:
        if store.get("lid", f"features:{u}:{setting}").get("skipped"):
            continue
        feats[u] = {
            name: store.array("lid", f"features:{u}:{setting}", name).numpy()
            for name in [*(f"k{k}" for k in ks), "labels", "images"]
        }
    rows, detectors = [], {}
    for u, f in feats.items():
        tr, te = np.isin(f["images"], train_img), np.isin(f["images"], test_img)
        cv = {k: lid.cv_auc(f[f"k{k}"][tr], f["labels"][tr], f["images"][tr]) for k in ks}
        k_best = max(ks, key=lambda k: -1 if np.isnan(cv[k]) else cv[k])
        det = lid.fit_detector(f[f"k{k_best}"][tr], f["labels"][tr])
        detectors[u] = (det, k_best)
        auc = lid.detector_auc(det, f[f"k{k_best}"][te], f["labels"][te])
        rows.append(
            {
                "trained_on": u,
                "tested_on": u,
                "k": k_best,
                "cv_auc": cv[k_best],
                "test_auc": auc,
                "n_train_adv": int(f["labels"][tr].sum()),
                "n_test_adv": int(f["labels"][te].sum()),
            }
        )
    for base in [b for b in baseline_units(data) if b in detectors]:
        det, k = detectors[base]
        for u in [a for a in adv2_units(data) if a in feats]:
            f = feats[u]
            te = np.isin(f["images"], test_img)
            rows.append(
                {
                    "trained_on": base,
                    "tested_on": u,
                    "k": k,
                    "cv_auc": float("nan"),
                    "test_auc": lid.detector_auc(det, f[f"k{k}"][te], f["labels"][te]),
                    "n_train_adv": int(feats[base]["labels"][np.isin(feats[base]["images"], train_img)].sum()),
                    "n_test_adv": int(f["labels"][te].sum()),
                }
            )
    table = {"rows": rows, "layers": layers, "n_ref": len(ref_x), "ks": list(ks), "seed": seed}
    store.put("lid", "table", table)
    return table
