"""The main job: baseline and ADV² attacks against each interpreter on a set of images, stored and reported.

Flow: resolve the config -> load model and data -> attack set (correctly classified images,
in dataset order) -> seeded target classes -> per batch and threat: one baseline unit (PGD or
regular StAdv; its image serves every interpreter) and one ADV² unit per interpreter -> result
store -> summary, table, grids, HTML. Units are named ``<baseline>`` and ``<adv2_name>-<interp>``
(``pgd``, ``adv2-cam``, ``stadv``, ``adv2-stadv-cam``).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import torch
import yaml
from tqdm import tqdm

from .. import __version__
from ..attacks import ATTACKS
from ..attacks.presets import load_attack_preset
from ..config import ConfigError, to_dict
from ..data import create_dataset
from ..data.targets import random_target_classes, shape_maps
from ..interpreters import create_interpreter
from ..interpreters.faithfulness import topk_mask_iou
from ..metrics import map_metrics, target_confidence
from ..models.zoo import create_model
from .chunking import attack_in_chunks, explain_in_chunks, image_bytes, plan_chunk
from .device import resolve_device
from .job import JobConfig
from .store import ResultStore
from .threads import choose_threads

log = logging.getLogger(__name__)


def git_revision() -> str:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def prepare_run_dir(out: str, cfg: JobConfig, resume: bool) -> None:
    """Create ``out`` (refusing to reuse one silently) or check it matches ``cfg`` on resume."""
    cfg_path = os.path.join(out, "config.yaml")
    if os.path.exists(out) and os.listdir(out):
        if not resume:
            raise FileExistsError(f"run directory {out} exists; pass --resume to continue it or choose another --out")
        if not os.path.isfile(cfg_path):
            raise FileExistsError(f"{out} is not a doublecross run directory (no config.yaml)")
        with open(cfg_path) as fh:
            saved = {**to_dict(JobConfig()), **yaml.safe_load(fh)}  # fields added since the run: defaults
        if saved != to_dict(cfg):
            diff = sorted(k for k in set(saved) | set(to_dict(cfg)) if saved.get(k) != to_dict(cfg).get(k))
            raise ConfigError(f"cannot resume {out}: the configuration differs in {diff}")
        return
    os.makedirs(out, exist_ok=True)
    with open(cfg_path, "w") as fh:
        yaml.safe_dump(to_dict(cfg), fh, sort_keys=False)


def attack_set(cfg: JobConfig, model: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[str]]:
    """The first ``limit`` correctly classified images: (x, y, object masks or None, class names)."""
    if cfg.images:
        ds = create_dataset("folder", root=cfg.images, image_size=(model.input_size or (224, 224))[0])
    else:
        ds = create_dataset(cfg.dataset, split="test")
    xs, ys, ms = [], [], []
    for i in range(len(ds)):
        item = ds[i]
        x = item[0][None]
        with torch.no_grad():
            pred = int(model(x.to(model.mean.device)).argmax(1))
        y = int(item[1]) if int(item[1]) >= 0 else pred  # unlabelled images: the prediction is the label
        if pred == y:
            xs.append(item[0])
            ys.append(y)
            ms.append(item[2] if len(item) > 2 else None)
        if len(xs) == cfg.limit:
            break
    if not xs:
        raise ValueError("no correctly classified image to attack")
    masks = torch.stack(ms) if all(m is not None for m in ms) else None
    names = list(model.classes) if model.classes else [str(i) for i in range(model.num_classes)]
    return torch.stack(xs), torch.tensor(ys), masks, names


def target_maps(
    mode: str,
    interp: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor,
    pool: tuple[torch.Tensor, torch.Tensor],
    gen: torch.Generator,
    benign: torch.Tensor | None = None,
) -> torch.Tensor:
    """m_t for a batch in the given mode (benign / class-exemplar / shape); ``benign``: g(x; y) if known."""
    if mode == "benign":
        return benign if benign is not None else interp.explain(x, y).map
    h, w = interp.native_size(*x.shape[-2:])
    if mode == "shape":
        return shape_maps(len(x), (h, w), x.shape[-1], gen).to(x.device)
    px, py = pool
    picks = []
    for c in t.tolist():
        idx = (py == c).nonzero().flatten()
        if len(idx) == 0:
            raise ValueError(f"class-exemplar targets need a correctly classified image of class {c}")
        picks.append(int(idx[torch.randint(len(idx), (), generator=gen)]))
    return interp.explain(px[picks].to(x.device), t).map


def run_job(
    cfg: JobConfig,
    out: str,
    resume: bool = False,
    progress: bool | None = None,
    threads: int | None = None,
    max_memory: float | None = None,
) -> dict[str, Any]:
    """Run (or resume) the attack job into ``out``; return the manifest.

    ``threads``: torch threads for the run (``experiments.threads.choose_threads``; restored after).
    ``max_memory``: GB a batch may use; larger batches run in chunks (``experiments.chunking``).
    Neither changes the results, so neither is part of ``cfg``.
    """
    n_threads, threads_source = choose_threads(threads)
    device = resolve_device(cfg.device)  # before the run directory is created
    if max_memory is not None and not max_memory > 0:
        raise ValueError(f"max_memory must be a positive number of GB, got {max_memory!r}")
    prepare_run_dir(out, cfg, resume)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    show = sys.stderr.isatty() if progress is None else progress
    t_start = time.time()
    torch.manual_seed(cfg.seed)
    preset = load_attack_preset(cfg.preset)
    if not cfg.threats or not cfg.interpreters:
        raise ConfigError("the attack job needs at least one threat and one interpreter")
    for name in cfg.threats:
        preset.for_threat(name)  # every requested threat is covered before any work starts
        for iname in cfg.interpreters:
            preset.for_threat(name).for_interpreter(iname)
    model = create_model(cfg.model, weights=cfg.weights).to(device)
    x_all, y_all, m_all, names = attack_set(cfg, model)
    gen = torch.Generator().manual_seed(cfg.seed)
    t_all = random_target_classes(y_all, model.num_classes, gen)
    interps = {n: create_interpreter(n, model, **preset.interpreter_options.get(n, {})) for n in cfg.interpreters}
    store = ResultStore(os.path.join(out, "results.sqlite"))
    per_image = {}  # bytes one image's graph needs, per interpreter (None: the baseline), for max_memory
    if max_memory is not None:
        x1, t1 = x_all[:1].to(device), t_all[:1].to(device)
        per_image = {n: image_bytes(model, interps.get(n), x1, t1) for n in [None, *interps]}
    n_batches = -(-len(x_all) // cfg.batch_size)
    bar = tqdm(total=n_batches * len(cfg.threats) * (1 + len(interps)), disable=not show, desc="attack")
    try:
        for b in range(n_batches):
            sl = slice(b * cfg.batch_size, (b + 1) * cfg.batch_size)
            x, y, t = x_all[sl].to(device), y_all[sl].to(device), t_all[sl].to(device)
            masks = m_all[sl] if m_all is not None else None
            benign_maps: dict[Any, torch.Tensor] = {}  # g(x; y) per interpreter, shared by the threats
            for tname in cfg.threats:
                settings = preset.for_threat(tname)
                threat = settings.create_threat()
                if not store.done(b, threat.baseline):
                    bar.set_postfix(unit=threat.baseline, batch=b)
                    chunk = plan_chunk(len(x), max_memory, per_image.get(None, 1), device)
                    base_cfg = replace(settings.baseline, early_stop=cfg.early_stop)
                    _baseline_unit(store, b, model, threat, base_cfg, x, y, t, cfg, chunk)
                bar.update(1)
                bar.update(1)
                for name, interp in interps.items():
                    unit = f"{threat.adv2_name}-{name}"
                    if not store.done(b, unit):
                        bar.set_postfix(unit=unit, batch=b)
                        unit_gen = torch.Generator().manual_seed(cfg.seed * 1000 + b)
                        acfg = replace(settings.for_interpreter(name), early_stop=cfg.early_stop)
                        _adv2_unit(
                            store,
                            b,
                            unit,
                            model,
                            interp,
                            settings.create_threat(acfg),
                            acfg,
                            x,
                            y,
                            t,
                            masks,
                            (x_all, y_all),
                            cfg,
                            unit_gen,
                            benign_maps,
                            plan_chunk(len(x), max_memory, per_image.get(name, 1), device),
                        )
                    bar.update(1)
    finally:
        bar.close()
        seconds = store.unit_seconds()
        store.close()
        torch.set_num_threads(threads_before)
    manifest = {
        "seed": cfg.seed,
        "doublecross": __version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_revision": git_revision(),
        "device": str(device),
        "threads": n_threads,
        "threads_source": threads_source,
        "images": len(x_all),
        "classes": names,
        "wall_time_s": round(time.time() - t_start, 2),
        "unit_seconds": seconds,
        "preset": cfg.preset,
        "threats": {n: preset.for_threat(n).create_threat().config() for n in cfg.threats},
    }
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    return manifest


def _size_metrics(size: dict[str, torch.Tensor], i: int) -> dict[str, float]:
    """Per-sample perturbation sizes; the image L2 is stored as ``l2_pert`` (``l2`` is the map distance)."""
    return {("l2_pert" if k == "l2" else k): float(v[i]) for k, v in size.items()}


def _baseline_unit(
    store: ResultStore,
    b: int,
    model: Any,
    threat: Any,
    acfg: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor,
    cfg: JobConfig,
    chunk: int = 0,
) -> None:
    """The threat's baseline (PGD / regular StAdv) on one batch; its image serves every interpreter."""
    t0 = time.time()
    res = attack_in_chunks(ATTACKS.create("pgd", threat=threat, config=acfg), model, x, t, chunk or len(x))
    conf = target_confidence(res.logits, t)
    rows = [
        {
            "idx": b * cfg.batch_size + i,
            "interpreter": "",
            "method": threat.baseline,
            "metrics": {
                "success": bool(res.success[i]),
                "confidence": float(conf[i]),
                "label": int(y[i]),
                "target": int(t[i]),
                "pred": int(res.logits[i].argmax()),
                **_size_metrics(res.size, i),
            },
        }
        for i in range(len(x))
    ]
    arrays = {"x": res.x_adv, "magnitude": threat.magnitude(res.perturbation)}
    arrays.update({f"size_{k}": v for k, v in res.size.items()})
    store.write_unit(b, threat.baseline, time.time() - t0, rows, {k: v.float().cpu() for k, v in arrays.items()})


def _adv2_unit(
    store: ResultStore,
    b: int,
    unit: str,
    model: Any,
    interp: Any,
    threat: Any,
    acfg: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor,
    masks: torch.Tensor | None,
    pool: tuple[torch.Tensor, torch.Tensor],
    cfg: JobConfig,
    gen: torch.Generator,
    benign_maps: dict[Any, torch.Tensor] | None = None,
    chunk: int = 0,
) -> None:
    """ADV² against one interpreter on one batch, with the baseline's image re-evaluated beside it.

    ``benign_maps`` caches g(x; y) by interpreter across the batch's threats (computed once);
    ``chunk``: images per attack/explain call (0: the whole batch).
    """
    t0 = time.time()
    chunk = chunk or len(x)
    benign_maps = {} if benign_maps is None else benign_maps
    if interp not in benign_maps:
        benign_maps[interp] = explain_in_chunks(interp, x, y, chunk).map
    benign_map = benign_maps[interp]
    m_t = target_maps(cfg.target_map, interp, x, y, t, pool, gen, benign=benign_map)
    attack = ATTACKS.create(
        interp.attack_kind, threat=threat, config=acfg, history_every=cfg.history_every, seed=cfg.seed
    )
    res = attack_in_chunks(attack, model, x, t, chunk, interp, m_t)
    x_base = store.array(b, threat.baseline, "x").to(x.device)
    base_size = {k: store.array(b, threat.baseline, f"size_{k}") for k in res.size}
    base_ev = explain_in_chunks(interp, x_base, t, chunk)
    base_success = attack.is_success(base_ev.logits, t)
    rows = []
    for method, amap, logits, success, size in (
        (threat.baseline, base_ev.map, base_ev.logits, base_success, base_size),
        (threat.adv2_name, res.map, res.logits, res.success, res.size),
    ):
        mets = map_metrics(amap, m_t)
        if cfg.target_map != "benign":
            mets.update(
                {f"benign_{k}": v for k, v in map_metrics(amap, benign_map).items() if k in ("l1", "l2", "iou")}
            )
        conf = target_confidence(logits, t)
        gt = topk_mask_iou(amap.cpu(), masks) if masks is not None else None  # masks stay on the CPU
        for i in range(len(x)):
            m = {k: float(v[i]) for k, v in mets.items()}
            m.update(
                {
                    "success": bool(success[i]),
                    "confidence": float(conf[i]),
                    "label": int(y[i]),
                    "target": int(t[i]),
                    "pred": int(logits[i].argmax()),
                    **_size_metrics(size, i),
                }
            )
            if gt is not None:
                m["gt_iou"] = float(gt[i])
            rows.append({"idx": b * cfg.batch_size + i, "interpreter": interp.name, "method": method, "metrics": m})
    arrays = {
        "x": x,
        "benign_map": benign_map,
        "target_map": m_t,
        "base_map": base_ev.map,
        "adv_map": res.map,
        "adv_x": res.x_adv,
        "adv_magnitude": threat.magnitude(res.perturbation),
    }
    store.write_unit(b, unit, time.time() - t0, rows, {k: v.float().cpu() for k, v in arrays.items()})
