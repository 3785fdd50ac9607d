"""Batches larger than memory allows run in chunks (issue 15), with the results of the whole batch.

Every attack and interpreter decides per sample (a batch equals its singles: per-sample losses,
steps, selection; MASK's jitter and noise are seeded per call, shared by whatever batch the call
gets), so splitting a batch into chunks and concatenating the outputs gives the batch's result up to
float order: a convolution over a smaller batch may sum in another order, and sign steps (PGD) can
turn such a difference into one 8-bit level on a few pixels (< 1 % of them in the tests).

Chunk size:

* ``max_memory`` (GB for the whole process) given: ``chunk = ⌊(max_memory - resident) / (2·per_image)⌋``
  (at least 1), where ``per_image`` is the bytes autograd saves for one image's differentiable
  interpreter pass and its backward (:func:`image_bytes`, measured once per interpreter with
  saved-tensor hooks) and ``resident`` the process's memory before the unit (RSS on CPU,
  allocated memory on CUDA); the factor 2 covers the backward's transient buffers.
* progress: each chunk runs all the attack's steps on part of the batch, so a chunk's steps are
  reported to the step bar weighted by its share of the batch (the bar ends at the unit's step
  count, not at chunks × steps); a chunk retried after an out-of-memory error takes back what it
  reported.
* history: the per-step records of the chunks are merged into the whole batch's
  (:func:`merge_histories`).
* always: a chunk that fails with an out-of-memory error (CUDA OOM, or the CPU allocator's
  "can't allocate memory") is retried in halves down to one image. (On Linux an over-committed
  process may be killed by the OOM killer instead of seeing an error: use ``max_memory`` there.)
"""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Callable
from typing import Any

import torch

from .. import progress
from ..attacks.base import AttackResult
from ..interpreters.base import Interpretation

log = logging.getLogger(__name__)

GB = 2**30


def resident_bytes(device: torch.device) -> int:
    """Memory the process holds now: CUDA allocated bytes on a GPU, else the resident set size."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def image_bytes(model: Any, interpreter: Any | None, x1: torch.Tensor, t1: torch.Tensor) -> int:
    """Bytes autograd saves for one image: a differentiable interpreter pass (or a classifier forward) and its backward.

    Shape: x1 (1, 3, H, W), t1 (1,).
    """
    saved = [0]

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved[0] += tensor.numel() * tensor.element_size()
        return tensor

    xg = x1.detach().clone().requires_grad_(True)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        if interpreter is None:
            loss = model(xg).sum()
        else:
            out = interpreter(xg, t1)
            loss = out.logits.sum() + out.map.sum()
        torch.autograd.grad(loss, xg, allow_unused=True)
    return max(saved[0], 1)


def plan_chunk(batch: int, max_memory: float | None, per_image: int, device: torch.device) -> int:
    """Images per chunk for a batch of ``batch`` under ``max_memory`` GB (module docstring); ``batch`` if None."""
    if max_memory is None:
        return batch
    if max_memory <= 0:
        raise ValueError(f"max_memory must be positive (GB), got {max_memory}")
    free = max_memory * GB - resident_bytes(device)
    chunk = max(1, min(batch, int(free // (2 * per_image))))
    if chunk < batch:
        log.info("batch %d in chunks of %d (%.2f GB per image, %.2f GB free)", batch, chunk, per_image / GB, free / GB)
    return chunk


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` is an out-of-memory failure worth retrying in smaller chunks."""
    if isinstance(err, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _weighted_steps(fn: Callable[[slice], Any], sl: slice, batch: int, reported: list[float]) -> Any:
    """``fn(sl)`` with its :func:`progress.step` calls scaled by the chunk's share of the batch."""
    outer = progress._REPORTER.get()
    if outer is None:
        return fn(sl)
    share = (min(sl.stop, batch) - sl.start) / batch

    def scaled(n: int) -> None:
        reported[0] += n * share
        outer(n * share)

    with progress.step_reporter(scaled):
        return fn(sl)


def run_chunked(fn: Callable[[slice], Any], batch: int, chunk: int, merge: Callable[[list[Any]], Any]) -> Any:
    """``merge([fn(slice) for each chunk])``, halving the chunk and retrying on out-of-memory errors.

    With more than one chunk, each chunk's progress steps count by its share of the batch (module docstring).
    """
    chunk = max(1, min(chunk, batch))
    while True:
        reported = [0.0]
        try:
            parts = [_weighted_steps(fn, slice(i, i + chunk), batch, reported) for i in range(0, batch, chunk)]
            return merge(parts) if len(parts) > 1 else parts[0]
        except Exception as err:  # noqa: BLE001 - re-raised unless it is an OOM we can split
            if not is_oom(err) or chunk == 1:
                raise
            outer = progress._REPORTER.get()
            if outer is not None and reported[0]:
                outer(-reported[0])  # the retry reports these steps again
            chunk = max(1, chunk // 2)
            log.warning("out of memory: retrying in chunks of %d images", chunk)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def _cat(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if parts[0] is None else torch.cat(parts)  # type: ignore[arg-type]


def merge_histories(histories: list[list[dict[str, Any]]], sizes: list[int]) -> list[dict[str, Any]]:
    """The whole batch's history from its chunks' histories, record by record (matched on ``step``).

    A record's ``loss`` is a sum over its chunk, so chunks add; every other value is a mean over the
    chunk, so it is averaged weighted by chunk size: ``v = Σ_c n_c·v_c / Σ_c n_c`` over the chunks
    that recorded that step (all of them, unless a chunk stopped early).
    """
    by_step: dict[Any, list[tuple[dict[str, Any], int]]] = {}
    for hist, n in zip(histories, sizes, strict=True):
        for rec in hist:
            by_step.setdefault(rec.get("step"), []).append((rec, n))
    merged = []
    for step, recs in by_step.items():
        out: dict[str, Any] = {"step": step}
        for key in recs[0][0]:
            if key == "step":
                continue
            vals = [(float(r[key]), n) for r, n in recs if key in r]
            weighted = sum(v * n for v, n in vals) / sum(n for _, n in vals)
            out[key] = sum(v for v, _ in vals) if key == "loss" else weighted
        merged.append(out)
    return merged


def merge_results(parts: list[AttackResult]) -> AttackResult:
    """Concatenate chunked attack results along the batch; histories merge (:func:`merge_histories`)."""
    return AttackResult(
        x_adv=torch.cat([p.x_adv for p in parts]),
        success=torch.cat([p.success for p in parts]),
        logits=torch.cat([p.logits for p in parts]),
        target=torch.cat([p.target for p in parts]),
        map=_cat([p.map for p in parts]),
        size={k: torch.cat([p.size[k] for p in parts]) for k in parts[0].size},
        perturbation=_cat([p.perturbation for p in parts]),
        last=_cat([p.last for p in parts]),
        history=merge_histories([p.history for p in parts], [len(p.x_adv) for p in parts]),
    )


def merge_interpretations(parts: list[Interpretation]) -> Interpretation:
    """Concatenate chunked interpretations (logits, map, aux); the state is dropped."""
    return Interpretation(
        torch.cat([p.logits for p in parts]),
        torch.cat([p.map for p in parts]),
        None,
        {k: torch.cat([p.aux[k] for p in parts]) for k in parts[0].aux},
    )


def attack_in_chunks(attack: Any, model: Any, x: torch.Tensor, t: torch.Tensor, chunk: int, *rest: Any) -> AttackResult:
    """``attack(model, x, t, *rest)`` chunk by chunk (``rest``: interpreter and target map, sliced alike)."""

    def one(sl: slice) -> AttackResult:
        args = [a[sl] if isinstance(a, torch.Tensor) else a for a in rest]
        return attack(model, x[sl], t[sl], *args)

    return run_chunked(one, len(x), chunk, merge_results)


def explain_in_chunks(interpreter: Any, x: torch.Tensor, t: torch.Tensor, chunk: int) -> Interpretation:
    """``interpreter.explain(x, t)`` chunk by chunk."""
    return run_chunked(lambda sl: interpreter.explain(x[sl], t[sl]), len(x), chunk, merge_interpretations)
