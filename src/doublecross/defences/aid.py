"""AID for RTS: adversarial interpretation distillation (spec §9 "Countermeasures", [our decision]).

The paper names AID and gives no design; this one follows the spec's sketch. Starting from a
trained RTS, fine-tune its selector and decoder (the encoder is the frozen classifier) on batches
that mix

* benign images with their labels (L_RTS as in ``rts_train``, real/fake selector classes), and
* adversarial inputs, regenerated against the *current* RTS at the start of every round: ADV²-RTS
  (benign target maps) on half of the round's images and PGD on the other half; successful inputs
  only, added to a growing pool. On them L_RTS uses the class f predicts (t): the preserved region
  must keep t and the destroyed region must lose it, so the map must show what f really uses.

The spec regenerates "every few hundred steps"; ``steps_per_round`` sets the spacing (default 100,
a shorter schedule that fits a shared CPU). The optional distillation toward a MASK teacher is not
implemented. ``evaluate_aid`` then attacks the original and the hardened RTS with the same ADV²-RTS
settings and measures benign fidelity (L_RTS on test images and ground-truth localisation IoU).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..attacks import ATTACKS, AttackConfig
from ..attacks.presets import load_attack_preset
from ..interpreters.faithfulness import topk_mask_iou
from ..interpreters.rts import RtsInterpreter, RTSNet, save_rts
from ..interpreters.rts_train import RtsTrainConfig, rts_loss
from ..metrics.maps import iou_topk, l1_distance, l2_distance
from ..models.wrapper import Classifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AidConfig:
    """AID fine-tuning schedule.

    Attributes:
        rounds: regeneration rounds (adversarial inputs regenerated against the current RTS each round).
        steps_per_round: optimiser steps between regenerations.
        batch_size: images per step; ``adv_fraction`` of them come from the adversarial pool.
        adv_per_round: training images attacked per round (half ADV²-RTS, half PGD).
        attack_scale: multiplies the preset's ADV²-RTS and PGD step counts during training.
        lr, weight_decay: Adam on the selector and decoder.
        preset: the attack preset whose ``linf`` settings generate the adversarial inputs.
    """

    rounds: int = 3
    steps_per_round: int = 100
    batch_size: int = 32
    adv_fraction: float = 0.5
    adv_per_round: int = 32
    attack_scale: float = 0.5
    lr: float = 1e-4
    weight_decay: float = 1e-4
    preset: str = "scenes-resnet"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rounds", "steps_per_round", "batch_size", "adv_per_round"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.adv_fraction < 1:
            raise ValueError(f"adv_fraction must lie in [0, 1), got {self.adv_fraction}")
        if self.attack_scale <= 0:
            raise ValueError(f"attack_scale must be positive, got {self.attack_scale}")


def scaled(cfg: AttackConfig, scale: float) -> AttackConfig:
    """The attack config with its step counts multiplied by ``scale`` (at least 1 each)."""
    return dataclasses.replace(
        cfg, n_warm=max(1, round(cfg.n_warm * scale)) if cfg.n_warm else 0, n_total=max(1, round(cfg.n_total * scale))
    )


def generate(
    model: Classifier,
    interp: RtsInterpreter,
    x: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor,
    preset: str,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """ADV²-RTS on the first half of ``x``, PGD on the second; successful inputs and f's predictions."""
    settings = load_attack_preset(preset).for_threat("linf")
    h = len(x) // 2
    acfg = scaled(settings.for_interpreter("rts"), scale)
    adv = ATTACKS.create("adv2", threat=settings.create_threat(acfg), config=acfg)
    ra = adv(model, x[:h], t[:h], interp, interp.explain(x[:h], y[:h]).map)
    bcfg = scaled(settings.baseline, scale)
    rp = ATTACKS.create("pgd", threat=settings.create_threat(bcfg), config=bcfg)(model, x[h:], t[h:])
    xs = torch.cat([ra.x_adv[ra.success], rp.x_adv[rp.success]])
    with torch.no_grad():
        pred = model(xs).argmax(1) if len(xs) else torch.zeros(0, dtype=torch.int64)
    stats = {"adv2_success": float(ra.success.float().mean()), "pgd_success": float(rp.success.float().mean())}
    return xs, pred, stats


def _selector(y: torch.Tensor, c: int, fake_prob: float, gen: torch.Generator) -> torch.Tensor:
    fake = torch.rand(len(y), generator=gen) < fake_prob
    wrong = (y + torch.randint(1, c, y.shape, generator=gen)) % c
    return torch.where(fake, wrong, y)


def train_aid(
    model: Classifier,
    net: RTSNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    out: str,
    cfg: AidConfig | None = None,
    rts_cfg: RtsTrainConfig | None = None,
    overwrite: bool = False,
    base_meta: dict[str, Any] | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Fine-tune a copy of ``net`` with AID on training ``images`` (N, 3, H, W), ``labels`` (N,); save it.

    Returns:
        The checkpoint metadata: per round, the attack success against the current RTS, the pool
        size and the mean loss on benign and adversarial parts.
    """
    import os

    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    cfg = cfg or AidConfig()
    rts_cfg = rts_cfg or RtsTrainConfig()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = copy.deepcopy(net)
    for p in net.parameters():
        p.requires_grad_(True)
    interp = RtsInterpreter(model, net)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    c = model.num_classes or int(labels.max()) + 1
    pool_x, pool_y = images[:0], labels[:0]
    rounds, t0 = [], time.time()
    n_adv = round(cfg.batch_size * cfg.adv_fraction)
    for r in range(cfg.rounds):
        tr = time.time()
        idx = torch.randperm(len(images), generator=gen)[: cfg.adv_per_round]
        x, y = images[idx], labels[idx]
        with torch.no_grad():
            keep = model(x).argmax(1) == y
        x, y = x[keep], y[keep]
        t = (y + torch.randint(1, c, y.shape, generator=gen)) % c
        xs, pred, stats = generate(model, interp, x, y, t, cfg.preset, cfg.attack_scale)
        pool_x, pool_y = torch.cat([pool_x, xs]), torch.cat([pool_y, pred])
        gen_s = time.time() - tr
        net.train()
        losses_b, losses_a = [], []
        for _ in range(cfg.steps_per_round):
            bi = torch.randint(0, len(images), (cfg.batch_size - (n_adv if len(pool_x) else 0),), generator=gen)
            xb, yb = images[bi], labels[bi]
            flip = torch.rand(len(bi), generator=gen) < 0.5
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
            loss, parts = rts_loss(model, net, xb, yb, _selector(yb, c, rts_cfg.fake_prob, gen), gen, rts_cfg)
            w_b = len(bi) / cfg.batch_size
            total = w_b * loss
            losses_b.append(parts["loss"])
            if len(pool_x) and n_adv:
                ai = torch.randint(0, len(pool_x), (n_adv,), generator=gen)
                xa, ya = pool_x[ai], pool_y[ai]
                la, pa = rts_loss(model, net, xa, ya, _selector(ya, c, rts_cfg.fake_prob, gen), gen, rts_cfg)
                total = total + (1 - w_b) * la
                losses_a.append(pa["loss"])
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
        net.eval()
        rounds.append(
            {
                "round": r,
                **stats,
                "new_adversarial": len(xs),
                "pool": len(pool_x),
                "loss_benign": sum(losses_b) / len(losses_b),
                "loss_adversarial": sum(losses_a) / len(losses_a) if losses_a else None,
                "generate_s": round(gen_s, 1),
                "round_s": round(time.time() - tr, 1),
            }
        )
        log.info("AID round %d: %s", r, rounds[-1])
    for p in net.parameters():
        p.requires_grad_(False)
    meta = {
        "aid": dataclasses.asdict(cfg),
        "aid_rounds": rounds,
        "kappa": 0.0,
        "train_time_s": round(time.time() - t0, 1),
        "threads": torch.get_num_threads(),
        "command": command,
        "init_meta": base_meta or {},
        "steps": cfg.rounds * cfg.steps_per_round,
        "config": dataclasses.asdict(rts_cfg),
    }
    save_rts(out, net, model, meta, overwrite=overwrite)
    return meta


@torch.no_grad()
def benign_fidelity(
    model: Classifier, interp: RtsInterpreter, x: torch.Tensor, y: torch.Tensor, masks: torch.Tensor, seed: int = 0
) -> dict[str, float]:
    """L_RTS on (x, y) (seeded real/fake selectors and replacements) and top-k localisation IoU of maps for y."""
    gen = torch.Generator().manual_seed(seed)
    c = model.num_classes or int(y.max()) + 1
    cfg = RtsTrainConfig()
    losses, ious = [], []
    for i in range(0, len(x), 50):
        xb, yb = x[i : i + 50], y[i : i + 50]
        loss, _ = rts_loss(model, interp.net, xb, yb, _selector(yb, c, cfg.fake_prob, gen), gen, cfg)
        losses.append(float(loss) * len(xb))
        ious.append(topk_mask_iou(interp.explain(xb, yb).map, masks[i : i + 50]))
    iou = torch.cat(ious)
    return {
        "rts_loss": sum(losses) / len(x),
        "gt_iou": float(iou.mean()),
        "gt_iou_sem": float(iou.std() / len(iou) ** 0.5),
        "n": len(x),
    }


def attack_rts(
    model: Classifier,
    interp: RtsInterpreter,
    x: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor,
    acfg: AttackConfig,
    settings: Any,
    history_every: int = 10,
) -> dict[str, Any]:
    """ADV²-RTS (benign targets) against ``interp``: success, distances to the benign map, ℓint history."""
    benign = interp.explain(x, y).map
    attack = ATTACKS.create("adv2", threat=settings.create_threat(acfg), config=acfg, history_every=history_every)
    res = attack(model, x, t, interp, benign)
    ok = res.success
    out: dict[str, Any] = {"n": len(x), "success": float(ok.float().mean())}
    if ok.any():
        a, b = res.map[ok], benign[ok]
        out.update(
            {
                "l1": float(l1_distance(a, b).mean()),
                "l2": float(l2_distance(a, b).mean()),
                "iou20": float(iou_topk(a, b, 20).mean()),
            }
        )
    out["history"] = [{"step": h["step"], "int": h["int"], "success": h["success"]} for h in res.history]
    return out


def iterations_to_reach(history: list[dict[str, Any]], level: float) -> int | None:
    """The first recorded stage-2 step whose batch-mean ℓint is ≤ ``level`` (None if never)."""
    for h in history:
        if h["int"] <= level:
            return int(h["step"])
    return None


def run_aid(
    data: Any,
    store: Any,
    hardened: str,
    original: str | None = None,
    n_fidelity: int = 200,
    steps_scale: float = 1.0,
) -> dict[str, Any]:
    """Before/after table: ADV²-RTS against the original and the hardened RTS on the run's attack set
    (its targets, its preset's ``linf`` RTS settings scaled by ``steps_scale``), and benign fidelity
    on the first ``n_fidelity`` scenes test images. Stored under ``aid``.
    """
    from ..data import create_dataset
    from ..interpreters import create_interpreter

    settings = load_attack_preset(data.cfg.preset).for_threat("linf")
    acfg = scaled(settings.for_interpreter("rts"), steps_scale)
    variants = {"before": original, "after": hardened}
    ds = create_dataset("scenes", split="test")
    items = [ds[i] for i in range(min(n_fidelity, len(ds)))]
    fx = torch.stack([it[0] for it in items])
    fy = torch.tensor([it[1] for it in items])
    fm = torch.stack([it[2] for it in items])
    keys = {name: f"{name}:{path or 'embedded'}:steps{steps_scale:g}:fid{len(fx)}" for name, path in variants.items()}
    for name, path in variants.items():
        if store.done("aid", keys[name]):
            continue
        t0 = time.time()
        interp = create_interpreter("rts", data.model, weights=path)
        rec = {"weights": path or "embedded", **benign_fidelity(data.model, interp, fx, fy, fm)}
        rec["attack"] = attack_rts(data.model, interp, data.x, data.y, data.t, acfg, settings)
        store.put("aid", keys[name], rec, time.time() - t0)
    before, after = store.get("aid", keys["before"]), store.get("aid", keys["after"])
    level = before["attack"]["history"][-1]["int"] if before["attack"]["history"] else float("nan")
    rows = []
    for name, rec in (("before", before), ("after", after)):
        a = rec["attack"]
        rows.append(
            {
                "rts": name,
                "weights": rec["weights"],
                "success": a["success"],
                "l1": a.get("l1"),
                "l2": a.get("l2"),
                "iou20": a.get("iou20"),
                "final_int": a["history"][-1]["int"] if a["history"] else None,
                "iterations_to_before_level": iterations_to_reach(a["history"], level),
                "rts_loss": rec["rts_loss"],
                "gt_iou": rec["gt_iou"],
                "gt_iou_sem": rec["gt_iou_sem"],
            }
        )
    table = {
        "rows": rows,
        "n_attack": before["attack"]["n"],
        "n_fidelity": before["n"],
        "attack_config": {"n_warm": acfg.n_warm, "n_total": acfg.n_total, "lam": acfg.lam, "extra": acfg.extra},
        "level": level,
        "gt_iou_change": after["gt_iou"] - before["gt_iou"],
        "steps_scale": steps_scale,
    }
    store.put("aid", "table", table)
    return table
