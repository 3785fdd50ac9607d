"""Cheap passes over stored runs, named by experiment specs (``passes: [transfer]``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..registry import Registry

PASSES: Registry[Callable[..., None]] = Registry("pass")


@PASSES.register("transfer")
def transfer(cfg: Any, out: str, model: str, progress: bool | None = None) -> None:
    """Cross maps of the ``linf-benign`` run into ``<out>/<model>/transfer.sqlite``."""
    from .reproduce import run_dir
    from .spec import load_runs
    from .transfer import transfer_pass

    run = load_runs()["linf-benign"]
    transfer_pass(run_dir(out, model, run.name), transfer_store(out, model), cfg.job(model, run), progress)


@PASSES.register("transfer-models")
def transfer_models(cfg: Any, out: str, model: str, progress: bool | None = None) -> None:
    """With several models: ``model``'s ``linf-benign`` inputs explained by every other model's interpreters."""
    from .reproduce import run_dir
    from .spec import load_runs
    from .transfer import cross_model_pass

    run = load_runs()["linf-benign"]
    for other in cfg.models:
        if other != model:
            cross_model_pass(
                run_dir(out, model, run.name), cross_store(out, model, other), cfg.job(model, run), cfg.job(other, run)
            )


def cross_store(out: str, model: str, other: str) -> str:
    return os.path.join(out, model.replace(os.sep, "_"), f"transfer-to-{other.replace(os.sep, '_')}.sqlite")


def transfer_store(out: str, model: str) -> str:
    return os.path.join(out, model.replace(os.sep, "_"), "transfer.sqlite")


def run_passes(cfg: Any, specs: list[Any], out: str, models: list[str], progress: bool | None = None) -> None:
    """Run every pass the experiments name, once each, for every model (after all models' runs).

    A spec's ``options`` (the defence experiments') go to its passes as ``options=``.
    """
    from . import defence_passes  # noqa: F401  (registers squeeze, lid, ensemble, aid)

    options = {p: s.options for s in specs for p in s.passes if s.options}
    for name in dict.fromkeys(p for s in specs for p in s.passes):
        for model in models:
            extra = {"options": options[name]} if name in options else {}
            PASSES.create(name, cfg=cfg, out=out, model=model, progress=progress, **extra)
