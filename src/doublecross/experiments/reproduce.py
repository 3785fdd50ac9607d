"""``doublecross reproduce``: the paper's questions (spec §9) compiled to runner jobs, then reported.

Layout of ``out``::

    reproduce.yaml             the resolved ReproduceConfig (checked on --resume)
    <model>/<run>/             one ``doublecross attack`` run directory per shared run (runs.yaml)
    <model>/transfer.sqlite    the transferability pass (cross maps of stored inputs)
    tables/<exp>_<table>.{md,csv,tex}, figures/*.png, report.html, manifest.json

Every run is resumable on its own (the runner skips finished (batch, unit) pairs), runs shared by
several experiments are computed once, and a run with ``share_baseline`` copies the finished
PGD/StAdv units of the run it names instead of recomputing them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from ..attacks.presets import attack_preset_names, load_attack_preset
from ..config import ConfigError, from_dict, to_dict
from ..report import build_report
from .job import JobConfig
from .lock import LOCK_NAME, RunLock
from .provenance import FILE_NAME as PROVENANCE
from .provenance import provenance_changes, resolve_provenance
from .results import run_progress
from .runner import run_job
from .spec import EXPERIMENTS, ExperimentSpec, RunSpec, load_runs, resolve
from .store import ResultStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReproduceConfig:
    """What ``doublecross reproduce`` runs (CLI flags override these defaults)."""

    experiments: tuple[str, ...] = EXPERIMENTS
    models: tuple[str, ...] = ("scenes-resnet",)
    weights: str | None = None
    dataset: str = "scenes"
    images: str | None = None
    preset: str | None = None  # default: the attack preset named after each model
    limit: int = field(default=16, metadata={"min": 1})
    batch_size: int = field(default=16, metadata={"min": 1})
    seed: int = 0
    interpreters: tuple[str, ...] = ("grad", "cam", "mask", "rts")
    device: str = "cpu"
    history_every: int = 10

    @classmethod
    def from_dict(cls, data: dict) -> ReproduceConfig:
        return from_dict(cls, data, source="reproduce")

    def preset_for(self, model: str, variant: str | None = None) -> str:
        """The attack preset of ``model``: ``preset`` if given, else the preset named after the model.

        With ``variant`` (a run's ``preset_variant``, e.g. ``q4``): ``<that preset>-<variant>`` if it is shipped.
        """
        if self.preset:
            base = self.preset
        elif model in attack_preset_names():
            base = model
        else:
            raise ConfigError(f"no attack preset is named after model {model!r}; pass --preset")
        if variant and f"{base}-{variant}" in attack_preset_names():
            return f"{base}-{variant}"
        return base

    def job(self, model: str, run: RunSpec) -> JobConfig:
        return JobConfig(
            model=model,
            weights=self.weights,
            dataset=self.dataset,
            images=self.images,
            limit=self.limit,
            batch_size=min(self.batch_size, self.limit),
            seed=self.seed,
            interpreters=self.interpreters,
            threats=run.threats,
            preset=self.preset_for(model, run.preset_variant),
            target_map=run.target_map,
            device=self.device,
            history_every=self.history_every,
        )


def _prepare(out: str, cfg: ReproduceConfig, resume: bool) -> None:
    """Create ``out`` or, on resume, check that everything but the experiment list matches."""
    path = os.path.join(out, "reproduce.yaml")
    if os.path.isdir(out) and [e for e in os.listdir(out) if e != LOCK_NAME]:
        if not resume:
            raise FileExistsError(f"{out} exists; pass --resume to continue it or choose another --out")
        if not os.path.isfile(path):
            raise FileExistsError(f"{out} is not a doublecross reproduce directory (no reproduce.yaml)")
        with open(path) as fh:
            saved = {**to_dict(ReproduceConfig()), **(yaml.safe_load(fh) or {})}
        now = to_dict(cfg)
        diff = sorted(k for k in set(saved) | set(now) if k != "experiments" and saved.get(k) != now.get(k))
        if diff:
            raise ConfigError(f"cannot resume {out}: the configuration differs in {diff}")
        merged = list(dict.fromkeys([*saved.get("experiments", []), *now["experiments"]]))
        now["experiments"] = merged
    else:
        os.makedirs(out, exist_ok=True)
        now = to_dict(cfg)
    with open(path, "w") as fh:
        yaml.safe_dump(now, fh, sort_keys=False)


def _copy_baseline(src_dir: str, dst_dir: str, src_cfg: JobConfig, dst_cfg: JobConfig) -> int:
    """Copy finished baseline units (PGD / StAdv) of ``src_dir`` into ``dst_dir``'s store; return how many.

    Only when both runs share everything but the target-map mode and the preset (same attack set, seed,
    targets), both presets give every threat of ``dst_cfg`` the same threat parameters and baseline
    settings (a Q4 preset changes ADV²'s λ only), and the source run's ``provenance.json`` matches its
    current inputs (preset, weights, model source, images): a source made from other inputs is not
    mixed in, its baselines are recomputed.
    """
    if not os.path.isfile(os.path.join(src_dir, "results.sqlite")):
        return 0
    if replace(src_cfg, target_map=dst_cfg.target_map, preset=dst_cfg.preset) != dst_cfg:
        return 0
    src_preset = load_attack_preset(src_cfg.preset, src_cfg.overrides, src_cfg.steps_scale)
    dst_preset = load_attack_preset(dst_cfg.preset, dst_cfg.overrides, dst_cfg.steps_scale)
    for t in dst_cfg.threats:
        a, b = src_preset.threats.get(t), dst_preset.threats.get(t)
        if a is None or b is None or (a.params, a.baseline) != (b.params, b.baseline):
            log.info(
                "baseline units of %s not reused: presets %s and %s differ in %s's baseline",
                src_dir,
                src_cfg.preset,
                dst_cfg.preset,
                t,
            )
            return 0
    saved = os.path.join(src_dir, PROVENANCE)
    if not os.path.isfile(saved):
        log.warning("%s has no %s: its baseline units are not reused", src_dir, PROVENANCE)
        return 0
    with open(saved) as fh:
        saved_prov = json.load(fh)
    rts_weights = src_cfg.rts_weights or src_preset.interpreter_options.get("rts", {}).get("weights")
    changes = provenance_changes(saved_prov, resolve_provenance(src_cfg, rts_weights))
    if changes:  # the source run was made from other inputs: recompute rather than mix
        log.warning("baseline units of %s not reused: %s", src_dir, "; ".join(changes))
        return 0
    baselines = {dst_preset.for_threat(t).create_threat().baseline for t in dst_cfg.threats}
    src = ResultStore(os.path.join(src_dir, "results.sqlite"))
    dst = ResultStore(os.path.join(dst_dir, "results.sqlite"))
    copied = 0
    try:
        units = src.db.execute("SELECT batch, unit, finished FROM units").fetchall()
        with dst.db:
            for batch, unit, finished in units:
                if unit not in baselines or dst.done(batch, unit):
                    continue
                for row in src.db.execute("SELECT * FROM samples WHERE batch=? AND unit=?", (batch, unit)):
                    dst.db.execute("INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?, ?)", row)
                for row in src.db.execute("SELECT * FROM arrays WHERE batch=? AND unit=?", (batch, unit)):
                    dst.db.execute("INSERT OR REPLACE INTO arrays VALUES (?, ?, ?, ?)", row)
                for row in src.db.execute("SELECT * FROM unit_info WHERE batch=? AND unit=?", (batch, unit)):
                    dst.db.execute("INSERT OR REPLACE INTO unit_info VALUES (?, ?, ?)", row)
                dst.db.execute("INSERT INTO units VALUES (?, ?, ?, ?)", (batch, unit, 0.0, finished))
                copied += 1
    finally:
        src.close()
        dst.close()
    return copied


def _new_run_dir(d: str, job: JobConfig) -> Any:
    """Create run directory ``d`` for ``job`` (config, provenance, lock) as the runner would, to seed it."""
    from .provenance import resolve_provenance
    from .rundir import open_run_dir

    rts_weights = load_attack_preset(job.preset).interpreter_options.get("rts", {}).get("weights")
    return open_run_dir(d, job, False, resolve_provenance(job, rts_weights))


def run_dir(out: str, model: str, run: str) -> str:
    return os.path.join(out, model.replace(os.sep, "_"), run)


def needed_runs(specs: list[ExperimentSpec]) -> list[RunSpec]:
    """The runs the experiments read, in ``runs.yaml`` order (baseline sources first)."""
    runs = load_runs()
    names = {r for s in specs for r in s.runs}
    return [r for n, r in runs.items() if n in names]


def reproduce(
    cfg: ReproduceConfig,
    out: str,
    resume: bool = False,
    progress: bool | None = None,
    compute: bool = True,
    threads: int | str | None = None,
    executor: str | Any = "local",
) -> dict[str, Any]:
    """Run (or resume) the experiments of ``cfg`` into ``out``; write tables, figures and report.html.

    With ``compute=False`` nothing is attacked: the outputs are regenerated from what ``out`` stores
    (an unfinished run shows as incomplete, its missing numbers as dashes and its claims as UNCLEAR).
    While it computes, ``out`` is locked (``.lock``, as a run directory): a second ``reproduce`` on the
    same directory stops instead of rewriting ``reproduce.yaml`` and the shared stores beside it.

    Args:
        threads: torch threads for every run and pass: ``None`` keeps the caller's setting, a count or
            ``"auto"`` (the CLI's default) as :func:`doublecross.experiments.threads.choose_threads`.
        executor: where the runs' units run (``"local"``, ``"ray"`` or an executor object, see
            :func:`doublecross.experiments.runner.run_job`); one executor serves every run. The
            passes after the runs (transfer, defences) run in this process.

    Returns:
        The manifest: wall time, per-run manifests, the files written and every claim's verdict.
    """
    import torch

    from .executors import create_executor
    from .threads import choose_threads

    owned = isinstance(executor, str)
    executor = create_executor(executor) if owned else executor
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(choose_threads(None if threads == "auto" else int(threads))[0])
    lock = None
    try:
        if compute:
            os.makedirs(out, exist_ok=True)
            lock = RunLock(out).acquire()
        return _reproduce(cfg, out, resume, progress, compute, executor)
    finally:
        if lock is not None:
            lock.release()
        torch.set_num_threads(before)
        if owned:
            executor.close()


def _reproduce(
    cfg: ReproduceConfig, out: str, resume: bool, progress: bool | None, compute: bool, executor: Any = "local"
) -> dict[str, Any]:
    """:func:`reproduce`'s body, with the directory locked and the threads set."""
    from ..report.reproduce_report import write_outputs
    from .passes import run_passes

    specs = [s for name in cfg.experiments for s in resolve(name)]
    specs = list({s.name: s for s in specs}.values())
    for model in cfg.models:  # every model has an attack preset before anything is written
        load_attack_preset(cfg.preset_for(model))
    if compute:
        _prepare(out, cfg, resume)
    elif not os.path.isfile(os.path.join(out, "reproduce.yaml")):
        raise FileNotFoundError(f"{out} is not a doublecross reproduce directory (no reproduce.yaml)")
    t0 = time.time()
    runs = needed_runs(specs)
    all_runs = load_runs()
    manifests: dict[str, dict[str, Any]] = {}
    for model in cfg.models if compute else ():
        for run in runs:
            d = run_dir(out, model, run.name)
            job = cfg.job(model, run)
            exists = os.path.isfile(os.path.join(d, "config.yaml"))
            if not exists and run.share_baseline in all_runs:  # the source run may come from an earlier command
                src = all_runs[run.share_baseline]
                with _new_run_dir(d, job):
                    n = _copy_baseline(run_dir(out, model, src.name), d, cfg.job(model, src), job)
                log.info("%s/%s: %d baseline unit(s) copied from %s", model, run.name, n, src.name)
                exists = True
            log.info("run %s/%s", model, run.name)
            manifests[f"{model}/{run.name}"] = run_job(job, d, resume=exists, progress=progress, executor=executor)
            build_report(d)  # each run directory keeps its own attack report (grids per interpreter, curves)
    if compute:
        run_passes(cfg, specs, out, list(cfg.models), progress=progress)
    attack_s = time.time() - t0
    done = {f"{m}/{r.name}": run_progress(run_dir(out, m, r.name), cfg.job(m, r)) for m in cfg.models for r in runs}
    result = write_outputs(cfg, specs, out, manifests, done)
    manifest = {
        "experiments": [s.name for s in specs],
        "models": list(cfg.models),
        "wall_time_s": round(time.time() - t0, 1),
        "compute_time_s": round(attack_s, 1),
        "runs": {k: {"wall_time_s": m["wall_time_s"], "images": m["images"]} for k, m in manifests.items()},
        "units_done": {k: f"{a}/{b}" for k, (a, b) in done.items()},
        **result,
    }
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    return manifest
