"""The Ray executor: every unit is a Ray task; the driver alone writes the run's store (issue 15).

``pip install "doublecross[ray]"``; ``doublecross attack ... --executor ray`` starts a local Ray
instance, ``--ray-address auto`` (or ``ray://head:10001``) joins a running cluster.

* **Tasks.** One task per pending unit, with ``cpus_per_task`` CPUs (and one GPU when the run's
  device is CUDA); the task pins torch to that many threads. The job's dependencies are task
  arguments, so Ray orders them: an ADV² unit receives its baseline task's result (or the stored
  baseline when that unit is already done), and when several threats of a batch attack the same
  interpreter, its benign map is one extra task whose result they share (as the local executor
  computes it once per batch).
* **Workers build what they need** (model, interpreters) from the run's configuration once per
  worker process and run (cached by a run token); only a model passed in by the caller is shipped
  (pickled once into the object store). Weights load as in the local run (``weights_only``).
* **Storing.** Tasks return their unit (rows, arrays, info); the driver writes each one to the
  SQLite store as it finishes (``ray.wait``), so an interrupted run resumes after the stored units.
* **Failures.** A killed worker (OOM killer, lost node) is retried by Ray (``max_retries``); an
  exception in a unit cancels the rest and is raised on the driver as :class:`ExecutorError`
  naming the unit and the cause, with every unit finished before it stored.
* **Same numbers** as the local executor for the same seed when ``cpus_per_task`` equals the local
  run's torch threads: each unit seeds its own randomness (``experiments/units.py``).
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch

from ...config import ConfigError
from ..units import UnitContext, UnitOutput, UnitSink, benign_map, build_job_model
from . import EXECUTORS
from .base import Executor, ExecutorError

log = logging.getLogger(__name__)

INSTALL = 'pip install "doublecross[ray]"'


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`ConfigError` naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray (ray>=2.9), which is not installed: {INSTALL}") from None
    return ray


@dataclass(frozen=True)
class BenignJob:
    """The benign map of one batch and interpreter, shared by that interpreter's units of several threats."""

    batch: int
    interpreter: str

    @property
    def label(self) -> str:
        return f"batch {self.batch} benign map ({self.interpreter})"


@dataclass
class WorkerSpec:
    """What a worker needs to rebuild the run's :class:`UnitContext` (sent once per run, cached per process)."""

    cfg: Any
    preset: Any
    device: str
    options: dict[str, dict[str, Any]]
    pool: tuple[torch.Tensor, torch.Tensor]
    per_image: dict[Any, int]
    max_memory: float | None
    threads: int
    model: Any = None  # only a model the caller passed in (it cannot be rebuilt from cfg)


_CONTEXTS: dict[str, UnitContext] = {}  # per worker process: the context of the current run's token


def worker_context(token: str, spec_box: list[Any]) -> UnitContext:
    """The run's context in this worker process, built on its first task (model, interpreters)."""
    ctx = _CONTEXTS.get(token)
    if ctx is None:
        from ...interpreters import create_interpreter

        spec: WorkerSpec = import_ray().get(spec_box[0])
        _CONTEXTS.clear()  # one run at a time per worker: drop an earlier run's model
        torch.set_num_threads(spec.threads)
        torch.manual_seed(spec.cfg.seed)  # as the local run before it builds the model
        device = torch.device("cuda" if spec.device.startswith("cuda") else spec.device)  # Ray's GPU for the task
        model = (spec.model if spec.model is not None else build_job_model(spec.cfg)).to(device)
        interps = {n: create_interpreter(n, model, **spec.options[n]) for n in spec.cfg.interpreters}
        ctx = UnitContext(
            spec.cfg, spec.preset, device, model, interps, spec.options, spec.pool, spec.per_image, spec.max_memory
        )
        _CONTEXTS[token] = ctx
    return ctx


def run_task(
    token: str,
    spec_box: list[Any],
    threads: int,
    job: Any,
    batch: Any,
    baseline: Any = None,
    benign: Any = None,
    charge_benign: bool = False,
) -> Any:
    """The body of every task: a unit (-> :class:`UnitOutput`) or a shared benign map (-> (map, seconds)).

    ``baseline``: the baseline unit's :class:`UnitOutput` or stored arrays; ``benign``: a shared
    benign map and its seconds (``charge_benign``: this unit counts them, as the local run's first threat).
    """
    from ..runner import run_unit

    torch.set_num_threads(threads)
    ctx = worker_context(token, spec_box)
    t0 = time.time()
    if isinstance(job, BenignJob):
        return benign_map(ctx, job.interpreter, batch), time.time() - t0
    arrays = baseline.arrays if isinstance(baseline, UnitOutput) else baseline
    sink = UnitSink(arrays, job.baseline)
    maps = {ctx.interps[job.interpreter]: benign[0].to(ctx.device)} if benign is not None else {}
    run_unit(sink, ctx, job, batch, maps)
    assert sink.output is not None, f"{job.label} wrote nothing"
    if charge_benign:
        sink.output.seconds += benign[1]
    return sink.output


def _execute(fn: Any, *args: Any) -> Any:
    """The remote function: ``fn(*args)`` (``RayExecutor.task_fn``, :func:`run_task` unless replaced)."""
    return fn(*args)


@EXECUTORS.register("ray", "one Ray task per unit on a local or existing Ray cluster (doublecross[ray])")
class RayExecutor(Executor):
    """Units as Ray tasks (module doc).

    Args:
        address: a running cluster (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``); ``None``:
            start a local Ray instance for the run (or use the one this process already started).
        cpus_per_task: CPUs Ray reserves per task, and the task's torch threads.
        max_retries: times Ray reruns a task whose worker died (not one that raised).
        num_cpus: CPUs of a local instance started here (default: all).
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, cpus_per_task: int = 1, max_retries: int = 3, num_cpus: int | None = None
    ) -> None:
        for key, value, low in (("cpus_per_task", cpus_per_task, 1), ("max_retries", max_retries, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"ray {key} must be an integer >= {low}, got {value!r}")
        self.ray = import_ray()
        self.address, self.cpus_per_task, self.max_retries = address, cpus_per_task, max_retries
        self.num_cpus = num_cpus
        self.task_fn = run_task  # what each task runs (tests replace it to inject faults)
        self._started = False

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        kw: dict[str, Any] = {"address": self.address}
        if self.address is None:  # a local instance for this run: no dashboard, quick start
            kw.update(include_dashboard=False, num_cpus=self.num_cpus, logging_level=logging.WARNING)
        log.info("connecting to Ray at %s", self.address or "a new local instance")
        ray.init(**kw)
        self._started = True

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False

    def unit_threads(self) -> int:
        return self.cpus_per_task

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address or "local",
            "cpus_per_task": self.cpus_per_task,
            "max_retries": self.max_retries,
        }

    def run(self, ctx: UnitContext, data: Any, units: list[Any], store: Any, bars: Any) -> int:
        if not units:
            return 0
        self._connect()
        ray = self.ray
        self._check_resources(ctx.device.type == "cuda")
        model = None
        if ctx.model_given:  # a caller's model object: shipped once, on the CPU
            model = copy.deepcopy(ctx.model).cpu() if ctx.device.type != "cpu" else ctx.model
        spec = WorkerSpec(
            ctx.cfg,
            ctx.preset,
            str(ctx.device),
            ctx.options,
            ctx.pool,
            ctx.per_image,
            ctx.max_memory,
            self.cpus_per_task,
            model,
        )
        token, spec_box = uuid.uuid4().hex, [ray.put(spec)]  # nested in a list: workers fetch it only when needed
        remote = ray.remote(_execute).options(
            num_cpus=self.cpus_per_task,
            num_gpus=1 if ctx.device.type == "cuda" else 0,
            max_retries=self.max_retries,
            retry_exceptions=False,
        )

        def submit(job: Any, *deps: Any) -> Any:
            return remote.remote(self.task_fn, token, spec_box, self.cpus_per_task, job, batches(job.batch), *deps)

        batch_refs: dict[int, Any] = {}

        def batches(b: int) -> Any:
            if b not in batch_refs:
                batch_refs[b] = ray.put(data.batch(b))
            return batch_refs[b]

        sharers = Counter((u.batch, u.interpreter) for u in units if u.interpreter is not None)
        bases: dict[tuple[int, str], Any] = {}
        benign: dict[tuple[int, str], Any] = {}
        pending: dict[Any, Any] = {}
        for unit in units:
            if unit.interpreter is None:
                ref = bases[unit.batch, unit.name] = submit(unit)
                pending[ref] = unit
                continue
            if (unit.batch, unit.baseline) not in bases:  # finished in an earlier run: its stored arrays
                bases[unit.batch, unit.baseline] = ray.put(store.unit_arrays(unit.batch, unit.baseline))
            key = (unit.batch, unit.interpreter)
            shared, first = None, False
            if sharers[key] > 1:
                first = key not in benign
                if first:
                    job = BenignJob(*key)
                    benign[key] = submit(job)
                    pending[benign[key]] = job
                shared = benign[key]
            pending[submit(unit, bases[unit.batch, unit.baseline], shared, first)] = unit
        return self._collect(pending, store, bars)

    def _check_resources(self, gpu: bool) -> None:
        """Refuse tasks no node of a local instance can hold (they would wait forever); warn on a cluster."""
        need = {"CPU": float(self.cpus_per_task), "GPU": 1.0 if gpu else 0.0}
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive", True)]
        if any(all(r.get(k, 0.0) >= v for k, v in need.items()) for r in nodes):
            return
        best = {k: max((r.get(k, 0.0) for r in nodes), default=0.0) for k in need}
        msg = (
            f"no Ray node can run a unit: each needs {self.cpus_per_task} CPU(s)"
            + (" and 1 GPU" if gpu else "")
            + f", the largest node has {best['CPU']:g} CPU(s) and {best['GPU']:g} GPU(s)"
        )
        if self.address is None:
            raise ConfigError(f"{msg}; lower --ray-cpus-per-task")
        log.warning("%s: the tasks wait until the cluster gets such a node", msg)

    def _collect(self, pending: dict[Any, Any], store: Any, bars: Any) -> int:
        """Store each unit as its task finishes; on a failure cancel the rest and raise :class:`ExecutorError`."""
        ray, stored = self.ray, 0
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(ready[0])
                try:
                    out = ray.get(ready[0])
                except ray.exceptions.RayError as e:
                    raise self._failure(job, e, stored) from e
                if isinstance(job, BenignJob):
                    continue
                out.write_to(store)
                stored += 1
                bars.stored(job.label)
        finally:
            for ref in pending:  # an error or Ctrl-C: nothing keeps running for this run
                try:
                    ray.cancel(ref)
                except Exception as e:  # noqa: BLE001 - already finished or gone
                    log.debug("cancel %s: %s", ref, e)
        return stored

    def _failure(self, job: Any, err: Exception, stored: int) -> ExecutorError:
        cause = getattr(err, "cause", None)
        if isinstance(err, self.ray.exceptions.RayTaskError) and cause is not None:
            what = f"{type(cause).__name__}: {cause}"
            log.error("%s failed on a Ray worker:\n%s", job.label, err)  # the remote traceback
        else:  # the worker died more often than max_retries, or the task could not run
            what = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        return ExecutorError(
            f"{job.label} failed on a Ray worker ({what}); the {stored} unit(s) finished by this run are stored: "
            "fix the cause and rerun with --resume"
        )
