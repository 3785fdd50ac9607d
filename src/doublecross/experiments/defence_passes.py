"""The defence experiments of ``doublecross reproduce`` (``detect``, ``ensemble``, ``aid``) as passes.

Each pass reads the shared ``linf-benign`` run of a model and calls the defence functions of
:mod:`doublecross.defences` (no second copy of their logic) with a :class:`DefenceStore` at
``<out>/<model>/defences.sqlite``. A pass whose ``table`` step is stored is skipped outright; an
interrupted one resumes at the step it was in (each run_* function skips its finished steps). The
``aid`` pass first trains the hardened RTS into ``<out>/<model>/aid-rts.pt`` if that file is absent.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..config import ConfigError
from .passes import PASSES

log = logging.getLogger(__name__)

DEFAULTS: dict[str, dict[str, Any]] = {
    "squeeze": {"squeeze_heldout": 200},
    "lid": {"lid_refs": 100, "lid_ks": [10, 20, 30, 40, 50], "lid_layers": None, "seed": 0},
    "ensemble": {"members": ["grad", "cam", "rts"], "heldout": 200, "steps_scale": 1.0},
    "aid": {
        "rounds": 3,
        "steps_per_round": 100,
        "batch_size": 32,
        "adv_per_round": 32,
        "attack_scale": 0.5,
        "lr": 1e-4,
        "train_images": 2000,
        "fidelity": 200,
        "steps_scale": 1.0,
        "seed": 0,
    },
}
SHARED = {"squeeze": DEFAULTS["lid"], "lid": DEFAULTS["squeeze"]}  # detect's options serve both passes


def _options(name: str, options: dict[str, Any] | None) -> dict[str, Any]:
    known = {**DEFAULTS[name], **SHARED.get(name, {})}
    unknown = sorted(set(options or {}) - set(known))
    if unknown:
        raise ConfigError(f"pass {name}: unknown option(s) {unknown}; allowed: {sorted(known)}")
    return {**DEFAULTS[name], **{k: v for k, v in (options or {}).items() if k in DEFAULTS[name]}}


def model_dir(out: str, model: str) -> str:
    return os.path.join(out, model.replace(os.sep, "_"))


def defence_store(out: str, model: str) -> str:
    """``<out>/<model>/defences.sqlite``: the defence steps of one model's reproduction."""
    return os.path.join(model_dir(out, model), "defences.sqlite")


def ensemble_key(members: list[str], steps_scale: float) -> str:
    """The store experiment name ``run_ensemble`` uses for these options."""
    return "ensemble-" + "+".join(members) + (f"@steps{steps_scale:g}" if steps_scale != 1 else "")


def _data(out: str, model: str) -> Any:
    from ..defences.rundata import load_run
    from .reproduce import run_dir

    return load_run(run_dir(out, model, "linf-benign"))


@PASSES.register("squeeze")
def squeeze_pass(cfg: Any, out: str, model: str, progress: bool | None = None, options: dict | None = None) -> None:
    """Feature squeezing on the ``linf-benign`` run (``detect`` experiment)."""
    from ..defences.detect import run_squeeze
    from ..defences.store import DefenceStore

    o = _options("squeeze", options)
    with DefenceStore(defence_store(out, model)) as store:
        if store.done("squeeze", "table"):
            return
        run_squeeze(_data(out, model), store, n_heldout=o["squeeze_heldout"])


@PASSES.register("lid")
def lid_pass(cfg: Any, out: str, model: str, progress: bool | None = None, options: dict | None = None) -> None:
    """LID detection on the ``linf-benign`` run (``detect`` experiment)."""
    from ..defences.detect import run_lid
    from ..defences.store import DefenceStore

    o = _options("lid", options)
    with DefenceStore(defence_store(out, model)) as store:
        if store.done("lid", "table"):
            return
        run_lid(_data(out, model), store, o["lid_layers"], o["lid_refs"], tuple(o["lid_ks"]), o["seed"])


@PASSES.register("ensemble")
def ensemble_pass(cfg: Any, out: str, model: str, progress: bool | None = None, options: dict | None = None) -> None:
    """Ensemble interpretation + adaptive ADV² on the ``linf-benign`` run (``ensemble`` experiment)."""
    from ..defences.ensemble import run_ensemble
    from ..defences.store import DefenceStore

    o = _options("ensemble", options)
    with DefenceStore(defence_store(out, model)) as store:
        if store.done(ensemble_key(list(o["members"]), o["steps_scale"]), "table"):
            return
        run_ensemble(_data(out, model), store, list(o["members"]), o["heldout"], o["steps_scale"])


def hardened_rts(out: str, model: str) -> str:
    return os.path.join(model_dir(out, model), "aid-rts.pt")


def _train_hardened(cfg: Any, model: str, data: Any, path: str, o: dict[str, Any]) -> None:
    """Train the AID-hardened RTS of ``data.model`` into ``path`` (as ``train-rts --aid`` does)."""
    from ..data import create_dataset
    from ..defences.aid import AidConfig, train_aid
    from ..interpreters.rts import load_rts_net
    from ..models.train import stack_dataset
    from ..models.zoo import embedded_checkpoint

    if cfg.images:
        raise ConfigError("the aid experiment trains on a dataset's train split; it cannot run on --images")
    init = embedded_checkpoint(f"rts-{data.model.name}")
    net, meta = load_rts_net(init, data.model)
    x, y = stack_dataset(create_dataset(cfg.dataset, split="train"), o["train_images"])
    keys = ("rounds", "steps_per_round", "batch_size", "adv_per_round", "attack_scale", "lr", "seed")
    acfg = AidConfig(**{k: o[k] for k in keys}, preset=cfg.preset_for(model))
    log.info("aid: training the hardened RTS into %s", path)
    train_aid(
        data.model,
        net,
        x,
        y,
        path,
        acfg,
        base_meta={"path": init, "command": meta.get("command")},
        command="doublecross reproduce aid",
    )


@PASSES.register("aid")
def aid_pass(cfg: Any, out: str, model: str, progress: bool | None = None, options: dict | None = None) -> None:
    """AID: train the hardened RTS if absent, then ADV²-RTS before/after (``aid`` experiment)."""
    from ..defences.aid import run_aid
    from ..defences.store import DefenceStore
    from ..models.checkpoint import load_checkpoint

    o = _options("aid", options)
    with DefenceStore(defence_store(out, model)) as store:
        if store.done("aid", "table"):
            return
        data = _data(out, model)
        path = hardened_rts(out, model)
        if not os.path.isfile(path):
            _train_hardened(cfg, model, data, path, o)
        _, meta = load_checkpoint(path)
        training = {
            "weights": os.path.relpath(path, out),
            "rounds": meta.get("aid_rounds"),
            "aid": meta.get("aid"),
            "train_time_s": meta.get("train_time_s"),
            "threads": meta.get("threads"),
        }
        store.put("aid", "training", training)
        run_aid(data, store, path, None, n_fidelity=o["fidelity"], steps_scale=o["steps_scale"])
