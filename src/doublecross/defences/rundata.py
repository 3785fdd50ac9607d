"""What the defences read from a ``doublecross attack`` run directory.

* the model, the attack set (benign x, labels y, targets t) exactly as the run built them;
* the stored adversarial images per unit: ``pgd`` / ``stadv`` (baselines, array ``x``) and
  ``adv2-<interp>`` / ``adv2-stadv-<interp>`` (array ``adv_x``), with success re-checked on the
  stored 8-bit image (argmax = t);
* held-out benign images: the next correctly classified images of the same source, after the attack
  set (never attacked).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

import torch
import yaml

from ..config import to_dict
from ..data import create_dataset
from ..experiments.job import JobConfig
from ..experiments.store import ResultStore
from ..models.zoo import create_model


@dataclass
class RunData:
    """A run's model, attack set and stored adversarial images.

    Attributes:
        cfg: the run's resolved job config.
        model: the attacked classifier.
        x, y, t: benign images (N, 3, H, W), labels (N,), targets (N,) of the stored samples.
        masks: ground-truth object masks (N, 1, H, W), or ``None`` (not read back from a run).
        adversarial: unit -> images (N, 3, H, W).
        success: unit -> (N,) bool, argmax z(x_adv) = t.
    """

    run: str
    cfg: JobConfig
    model: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor
    t: torch.Tensor
    masks: torch.Tensor | None
    adversarial: dict[str, torch.Tensor]
    success: dict[str, torch.Tensor]

    def heldout(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` correctly classified images of the run's source that are not in its attack set.

        Attack-set images are recognised by content, so this holds for any attack-set selection
        (first-correct or class-balanced). Shapes: -> (n', 3, H, W), (n',).
        """
        seen = {_digest(xi) for xi in self.x}
        ds = _source(self.cfg, self.model)
        xs, ys = [], []
        for i in range(len(ds)):
            item = ds[i]
            if _digest(item[0]) in seen or int(item[1]) < 0:
                continue
            with torch.no_grad():
                pred = int(self.model(item[0][None]).argmax(1))
            if pred == int(item[1]):
                xs.append(item[0])
                ys.append(int(item[1]))
            if len(xs) == n:
                break
        if not xs:
            raise ValueError("no held-out benign image: every correctly classified image is in the attack set")
        return torch.stack(xs), torch.tensor(ys)

    def successful(self, unit: str) -> torch.Tensor:
        """Successful adversarial images of ``unit``. -> (n_succ, 3, H, W)."""
        return self.adversarial[unit][self.success[unit]]


def _units(path: str) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[0] for r in db.execute("SELECT DISTINCT unit FROM units ORDER BY unit")]
    finally:
        db.close()


def _digest(x: torch.Tensor) -> bytes:
    """Content key of an image on the 8-bit grid."""
    return torch.round(x.float() * 255).to(torch.uint8).numpy().tobytes()


def _source(cfg: JobConfig, model: Any) -> Any:
    """The dataset the run drew its attack set from (test split, or the user's folder)."""
    size = (model.input_size or (224, 224))[0]
    if cfg.images:
        classes = list(model.classes) if model.classes else None
        return create_dataset("folder", root=cfg.images, image_size=size, class_names=classes)
    return create_dataset(cfg.dataset, split="test", image_size=size)


def load_run(run: str) -> RunData:
    """Load a finished (or partly finished: complete batches only) attack run directory.

    The benign images come from the store (each ADV² unit keeps its batch's ``x``), labels and
    targets from its sample rows, so nothing depends on re-drawing the attack set.
    """
    cfg_path, db_path = os.path.join(run, "config.yaml"), os.path.join(run, "results.sqlite")
    if not (os.path.isfile(cfg_path) and os.path.isfile(db_path)):
        raise FileNotFoundError(f"{run} is not a doublecross attack run directory (config.yaml, results.sqlite)")
    with open(cfg_path) as fh:
        saved = yaml.safe_load(fh) or {}
    known = {f.name for f in dataclasses.fields(JobConfig)}
    cfg = JobConfig.from_dict({**to_dict(JobConfig()), **{k: v for k, v in saved.items() if k in known}})
    model = create_model(cfg.model, weights=cfg.weights).to(cfg.device)
    model.eval()
    store = ResultStore(db_path)
    try:
        units = _units(db_path)
        batches = sorted({b for b, _ in store.db.execute("SELECT batch, unit FROM units")})
        complete = [b for b in batches if all(store.done(b, u) for u in units)]
        benign_unit = next((u for u in units if u.startswith("adv2-")), None)
        if not complete or benign_unit is None:
            raise ValueError(f"{run} holds no finished batch with an ADV² unit")
        rows: dict[int, dict[str, Any]] = {}
        for row in store.samples():
            rows[row["idx"]] = row
        xs, idx = [], []
        adv: dict[str, list[torch.Tensor]] = {u: [] for u in units}
        for b in complete:
            xb = store.array(b, benign_unit, "x")
            xs.append(xb)
            idx.extend(range(b * cfg.batch_size, b * cfg.batch_size + len(xb)))
            for u in units:
                adv[u].append(store.array(b, u, "adv_x" if store.has_array(b, u, "adv_x") else "x"))
    finally:
        store.close()
    y = torch.tensor([rows[i]["label"] for i in idx])
    t = torch.tensor([rows[i]["target"] for i in idx])
    adversarial = {u: torch.cat(v).float() for u, v in adv.items()}
    success = {}
    with torch.no_grad():
        for u, xa in adversarial.items():
            success[u] = model(xa).argmax(1) == t
    return RunData(run, cfg, model, torch.cat(xs).float(), y, t, None, adversarial, success)


def baseline_units(data: RunData) -> list[str]:
    """The run's baseline units (PGD / regular StAdv)."""
    return [u for u in data.adversarial if not u.startswith("adv2-")]


def adv2_units(data: RunData) -> list[str]:
    """The run's ADV² units (``adv2-<interp>``, ``adv2-stadv-<interp>``)."""
    return [u for u in data.adversarial if u.startswith("adv2-")]
