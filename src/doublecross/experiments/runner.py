"""The main job: baseline and ADV² attacks against each interpreter on a set of images, stored and reported.

Flow: resolve the config -> load model and data -> attack set (correctly classified images,
class-balanced seeded draw, ``selection.py``)
-> seeded target classes -> per batch and threat: one baseline unit (PGD or
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

from .. import __version__
from ..attacks import ATTACKS
from ..attacks.base import check_extra_terms
from ..attacks.presets import load_attack_preset
from ..config import ConfigError
from ..data import create_dataset
from ..data.pairing import pair_farthest
from ..data.targets import random_target_classes, shape_maps
from ..interpreters import create_interpreter
from ..interpreters.faithfulness import topk_mask_iou
from ..metrics import map_metrics, target_confidence
from ..metrics.maps import is_degenerate
from .chunking import attack_in_chunks, explain_in_chunks, image_bytes, plan_chunk
from .executors import create_executor
from .exemplars import exemplar_pool
from .history import history_arrays
from .job import JobConfig
from .progress_bars import JobProgress
from .provenance import resolve_provenance
from .rundir import check_out_dir, check_threads, open_run_dir
from .selection import select_attack_set
from .store import ResultStore
from .threads import choose_threads
from .units import AttackData, Batch, Unit, UnitContext, build_job_model, plan_units
from .validate import check_device

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


def attack_set(
    cfg: JobConfig, model: Any, dataset: Any = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[str]]:
    """``limit`` correctly classified images, class-balanced and seeded (spec §1.4; ``selection.py``).

    Returns (x, y, object masks or None, class names). ``dataset`` (items ``(x, y[, mask])``)
    replaces ``cfg.images``/``cfg.dataset``.
    """
    return attack_set_with_indices(cfg, model, dataset)[:4]  # type: ignore[return-value]


def job_dataset(cfg: JobConfig, model: Any, dataset: Any = None) -> Any:
    """The dataset the attack set is drawn from: ``dataset``, the ``--images`` folder or the test split."""
    if dataset is not None:
        return dataset
    if cfg.images:
        size = (model.input_size or (224, 224))[0]
        classes = list(model.classes) if model.classes else None
        return create_dataset("folder", root=cfg.images, image_size=size, class_names=classes, labels=cfg.labels)
    size = {"image_size": model.input_size[0]} if model.input_size is not None else {}  # fashion-mnist: 32 px
    return create_dataset(cfg.dataset, split="test", **size)


def attack_set_with_indices(
    cfg: JobConfig, model: Any, dataset: Any = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[str], list[int]]:
    """:func:`attack_set` plus the dataset indices of the chosen images (unreadable files skipped)."""
    ds = job_dataset(cfg, model, dataset)
    chosen = select_attack_set(ds, model, cfg.limit, cfg.seed, cfg.selection, batch_size=cfg.batch_size)
    items = [ds[i] for i, _ in chosen]
    ms = [it[2] if len(it) > 2 else None for it in items]
    masks = torch.stack(ms) if all(m is not None for m in ms) else None
    names = list(model.classes) if model.classes else [str(i) for i in range(_num_classes(model, items[0][0]))]
    ds_classes = list(getattr(ds, "classes", None) or [])
    if not model.classes and len(ds_classes) == len(names):
        names = ds_classes  # a model without class names, on a labelled folder: the folder's names
    indices = [i for i, _ in chosen]
    return torch.stack([it[0] for it in items]), torch.tensor([y for _, y in chosen]), masks, names, indices


def target_maps(
    mode: str,
    interp: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor,
    pool: tuple[torch.Tensor, torch.Tensor],
    gen: torch.Generator,
    benign: torch.Tensor | None = None,
    chunk: int = 0,
) -> torch.Tensor:
    """m_t for a batch in the given mode (benign / class-exemplar / shape); ``benign``: g(x; y) if known.

    ``chunk``: images per explain call (0: the whole batch), as the attack's ``--max-memory`` chunks.
    """
    chunk = chunk or len(x)
    if mode == "benign":
        return benign if benign is not None else explain_in_chunks(interp, x, y, chunk).map
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
    return explain_in_chunks(interp, px[picks].to(x.device), t, chunk).map


def run_job(
    cfg: JobConfig,
    out: str,
    resume: bool = False,
    progress: bool | None = None,
    model: Any = None,
    dataset: Any = None,
    targets: Any = None,
    threads: int | str | None = None,
    max_memory: float | None = None,
    executor: str | Any = "local",
) -> dict[str, Any]:
    """Run (or resume) the attack job into ``out``; return the manifest.

    Everything that can be checked is checked before the run directory is created (device,
    preset, interpreters); a fresh run that fails before its first unit leaves no directory.
    The directory is locked while the job runs (a second process refuses), and a resume is
    refused when the configuration, the preset's contents, the weights or the images changed.

    Args:
        cfg: the job (``cfg.model`` is only a label when ``model`` is given).
        out: the run directory.
        resume: continue an interrupted run in ``out``.
        progress: show progress bars (default: when stderr is a terminal).
        model: a ready :class:`Classifier` to attack instead of building ``cfg.model``.
        dataset: a dataset of ``(x (3, H, W) in [0, 1], label[, mask])`` to draw the attack set
            from instead of ``cfg.images``/``cfg.dataset`` (label -1: use the prediction).
        targets: target classes: ``None`` (seeded uniform over the other classes, spec §1.4), one
            class index for every image, or a callable ``(y, num_classes, generator) -> t``.
        threads: torch threads for the run: ``None`` keeps the caller's ``torch.get_num_threads()``;
            a count, or ``"auto"`` for ``experiments.threads.choose_threads`` (the CLI's default:
            ``$OMP_NUM_THREADS``, else min(cores, 2)); restored after the run.
        max_memory: GB the process may use; larger batches run in chunks (``experiments.chunking``).
            Neither changes the results, so neither is part of ``cfg``.
        executor: where units run: ``"local"`` (this process, in order), ``"ray"`` (a local Ray
            cluster, one task per unit) or an executor object from
            :func:`doublecross.experiments.executors.create_executor` (e.g. Ray at an address), which
            the caller closes. Same numbers for the same seed and thread count; not part of ``cfg``.
    """
    show = sys.stderr.isatty() if progress is None else progress
    t_start = time.time()
    if threads is None:  # the caller's torch setting, untouched
        n_threads, threads_source = torch.get_num_threads(), "caller"
    else:
        n_threads, threads_source = choose_threads(None if threads == "auto" else threads)
    if max_memory is not None and not max_memory > 0:
        raise ValueError(f"max_memory must be a positive number of GB, got {max_memory!r}")
    check_out_dir(out)  # a file as --out, before anything slower
    device = check_device(cfg.device)
    preset = load_attack_preset(cfg.preset, cfg.overrides, cfg.steps_scale)
    if not cfg.threats or not cfg.interpreters:
        raise ConfigError("the attack job needs at least one threat and one interpreter")
    for name in cfg.threats:
        preset.for_threat(name)  # every requested threat is covered before any work starts
        for iname in cfg.interpreters:
            preset.for_threat(name).for_interpreter(iname)
    rts_weights = cfg.rts_weights or preset.interpreter_options.get("rts", {}).get("weights")
    owned = isinstance(executor, str)
    executor = create_executor(executor) if owned else executor  # Ray missing: a ConfigError before any work
    threads_before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with open_run_dir(out, cfg, resume, resolve_provenance(cfg, rts_weights)):
            return _run_locked(
                cfg, out, preset, device, show, t_start, model, dataset, targets, max_memory, threads_source, executor
            )
    finally:
        torch.set_num_threads(threads_before)
        if owned:
            executor.close()


def _run_locked(
    cfg: JobConfig,
    out: str,
    preset: Any,
    device: torch.device,
    show: bool,
    t_start: float,
    model: Any = None,
    dataset: Any = None,
    targets: Any = None,
    max_memory: float | None = None,
    threads_source: str = "",
    executor: Any = None,
) -> dict[str, Any]:
    executor = executor if executor is not None else create_executor("local")
    torch.manual_seed(cfg.seed)
    model_given = model is not None
    if model is None:
        model = build_job_model(cfg)
    model = model.to(device)
    x_all, y_all, m_all, names, indices = attack_set_with_indices(cfg, model, dataset)
    gen = torch.Generator().manual_seed(cfg.seed)
    t_all = _targets(targets, y_all, _num_classes(model, x_all[0]), gen)
    options = {n: dict(preset.interpreter_options.get(n, {})) for n in cfg.interpreters}
    if cfg.rts_weights and "rts" in options:
        options["rts"]["weights"] = cfg.rts_weights
    interps = {n: create_interpreter(n, model, **options[n]) for n in cfg.interpreters}
    for tname in cfg.threats:
        for iname, interp in interps.items():
            try:
                check_extra_terms(preset.for_threat(tname).for_interpreter(iname), interp)
            except ValueError as e:
                raise ConfigError(f"preset {cfg.preset}.{tname}.{iname}.{e}") from None
    pool = (x_all, y_all)
    if cfg.target_map == "class-exemplar":  # exemplars from outside the attack set (spec §9, Q4)
        pool = exemplar_pool(job_dataset(cfg, model, dataset), model, exclude=set(indices))
    store = ResultStore(os.path.join(out, "results.sqlite"))
    bars, units_run = None, 0
    try:
        done_threads = [i["threads"] for i in store.unit_infos().values() if "threads" in i]
        check_threads(done_threads, executor.unit_threads(), out)
        per_image = {}  # bytes one image's graph needs, per interpreter (None: the baseline), for max_memory
        if max_memory is not None:
            x1, t1 = x_all[:1].to(device), t_all[:1].to(device)
            per_image = {n: image_bytes(model, interps.get(n), x1, t1) for n in [None, *interps]}
        ctx = UnitContext(cfg, preset, device, model, interps, options, pool, per_image, max_memory, model_given)
        data = AttackData(x_all, y_all, t_all, m_all, cfg.batch_size)
        units = plan_units(cfg, preset, list(interps), data.n_batches)
        bars = JobProgress(len(units), sum(store.done(u.batch, u.name) for u in units), show)
        units_run = executor.run(ctx, data, [u for u in units if not store.done(u.batch, u.name)], store, bars)
    finally:
        if bars is not None:
            bars.close()
        seconds = store.unit_seconds()
        threads = sorted({i["threads"] for i in store.unit_infos().values() if "threads" in i})
        store.close()
    manifest = {
        "seed": cfg.seed,
        "doublecross": __version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_revision": git_revision(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "threads_source": threads_source,
        "unit_threads": threads,
        "executor": executor.describe(),
        "units_run": units_run,
        "images": len(x_all),
        "model": getattr(model, "name", cfg.model),
        "attack_indices": indices,
        "selection": cfg.selection,
        "classes": names,
        "wall_time_s": round(time.time() - t_start, 2),
        "unit_seconds": seconds,
        "preset": cfg.preset,
        "threats": {n: preset.for_threat(n).create_threat().config() for n in cfg.threats},
    }
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    return manifest


def run_unit(store: Any, ctx: UnitContext, unit: Unit, batch: Batch, benign_maps: dict[Any, torch.Tensor]) -> None:
    """Compute ``unit`` on ``batch`` and write it to ``store``: the one code path of every executor.

    ``store`` is the run's :class:`ResultStore` (local executor) or a :class:`~.units.UnitSink` on a
    Ray worker: the unit reads its baseline with ``store.array`` and writes with ``store.write_unit``.
    ``benign_maps`` caches g(x; y) by interpreter for the batch's threats (filled on first use).
    """
    cfg, b = ctx.cfg, unit.batch
    x, y, t = (v.to(ctx.device) for v in batch[:3])
    masks = batch[3]
    settings = ctx.preset.for_threat(unit.threat)
    if unit.interpreter is None:
        chunk = plan_chunk(len(x), ctx.max_memory, ctx.per_image.get(None, 1), ctx.device)
        base_cfg = replace(settings.baseline, early_stop=cfg.early_stop)
        _baseline_unit(store, b, ctx.model, settings.create_threat(), base_cfg, x, y, t, cfg, chunk)
        return
    name = unit.interpreter
    unit_gen = torch.Generator().manual_seed(cfg.seed * 1000 + b)  # per unit: independent of execution order
    acfg = replace(settings.for_interpreter(name), early_stop=cfg.early_stop)
    chunk = plan_chunk(len(x), ctx.max_memory, ctx.per_image.get(name, 1), ctx.device)
    threat, interp, model, pool = settings.create_threat(acfg), ctx.interps[name], ctx.model, ctx.pool
    maps = benign_maps
    _adv2_unit(store, b, unit.name, model, interp, threat, acfg, x, y, t, masks, pool, cfg, unit_gen, maps, chunk)


def _num_classes(model: Any, x: torch.Tensor) -> int:
    """C of the model: its own count, else the width of its logits on one image ``x`` (3, H, W)."""
    if model.num_classes is not None:
        return int(model.num_classes)
    with torch.no_grad():
        return int(model(x[None].to(model.mean.device)).shape[1])


def _targets(targets: Any, y: torch.Tensor, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """Target classes: seeded uniform over the others (§1.4), one fixed class, or a user callable."""
    if targets is None:
        return random_target_classes(y, num_classes, gen)
    if callable(targets):
        t = torch.as_tensor(targets(y, num_classes, gen), dtype=torch.long)
    else:
        t = torch.full_like(y, int(targets))
    if t.shape != y.shape or (t < 0).any() or (t >= num_classes).any() or (t == y).any():
        raise ValueError(
            f"targets must be (N,) = {tuple(y.shape)} classes in [0, {num_classes}) different from the labels"
        )
    return t


def _unit_info(x: torch.Tensor) -> dict[str, Any]:
    """What a unit's numbers depend on beyond the config: the thread count (MASK/RTS images change with it)."""
    return {"threads": torch.get_num_threads(), "device": str(x.device)}


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
    store.write_unit(
        b, threat.baseline, time.time() - t0, rows, {k: v.float().cpu() for k, v in arrays.items()}, _unit_info(x)
    )


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
    m_t = target_maps(cfg.target_map, interp, x, y, t, pool, gen, benign=benign_map, chunk=chunk)
    pick = torch.arange(len(x))
    if cfg.target_map == "shape":  # each shape takes the farthest benign map, each image ≤ 3 times (spec §1.6)
        pick = pair_farthest(benign_map.cpu(), m_t.cpu(), max_uses=3)
        x, y, t = x[pick.to(x.device)], y[pick.to(x.device)], t[pick.to(x.device)]
        masks = masks[pick] if masks is not None else None
        benign_map = benign_map[pick.to(benign_map.device)]
    attack = ATTACKS.create(
        interp.attack_kind, threat=threat, config=acfg, history_every=cfg.history_every, seed=cfg.seed
    )
    res = attack_in_chunks(attack, model, x, t, chunk, interp, m_t)
    x_base = store.array(b, threat.baseline, "x")[pick].to(x.device)
    base_size = {k: store.array(b, threat.baseline, f"size_{k}")[pick] for k in res.size}
    base_ev = explain_in_chunks(interp, x_base, t, chunk)
    base_success = attack.is_success(base_ev.logits, t)
    deg_benign, deg_target = is_degenerate(benign_map), is_degenerate(m_t)
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
        deg = is_degenerate(amap)
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
                    "degenerate": bool(deg[i]),
                    "benign_degenerate": bool(deg_benign[i]),
                    "target_degenerate": bool(deg_target[i]),
                }
            )
            if gt is not None:
                m["gt_iou"] = float(gt[i])
            if cfg.target_map == "shape":
                m["image"] = b * cfg.batch_size + int(pick[i])
            rows.append({"idx": b * cfg.batch_size + i, "interpreter": interp.name, "method": method, "metrics": m})
    arrays = {
        "x": x,
        "benign_map": benign_map,
        "target_map": m_t,
        "base_map": base_ev.map,
        "adv_map": res.map,
        "adv_x": res.x_adv,
        "adv_magnitude": threat.magnitude(res.perturbation),
        **history_arrays(res.history),
    }
    if cfg.target_map == "shape":  # images repeat in shape pairing: the baseline's input and |δ| in this order
        arrays["base_x"] = x_base
        arrays["base_magnitude"] = store.array(b, threat.baseline, "magnitude")[pick]
    store.write_unit(b, unit, time.time() - t0, rows, {k: v.float().cpu() for k, v in arrays.items()}, _unit_info(x))
