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

import torch
import yaml

from ..config import to_dict
from ..experiments.job import JobConfig
from ..experiments.runner import attack_set
from ..experiments.store import ResultStore
from ..models.zoo import create_model


@dataclass
class RunData:
    """A run's model, attack set and stored adversarial images.

    Attributes:
        cfg: the run's resolved job config.
        model: the attacked classifier.
        x, y, t: benign images (N, 3, H, W), labels (N,), targets (N,) of the stored samples.
        masks: ground-truth object masks (N, 1, H, W) where the dataset has them, else ``None``.
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
        """The ``n`` correctly classified images after the attack set (fewer if the source runs out).

        Shapes: -> (n', 3, H, W), (n',).
        """
        wider = dataclasses.replace(self.cfg, limit=self.cfg.limit + n)
        x, y, _, _ = attack_set(wider, self.model)
        if len(x) <= self.cfg.limit:
            raise ValueError(f"no held-out benign image: the source has only {len(x)} correctly classified images")
        if not torch.equal(x[: len(self.x)], self.x):
            raise ValueError("the run's attack set no longer matches its data source (images changed?)")
        return x[self.cfg.limit :], y[self.cfg.limit :]

    def successful(self, unit: str) -> torch.Tensor:
        """Successful adversarial images of ``unit``. -> (n_succ, 3, H, W)."""
        return self.adversarial[unit][self.success[unit]]


def _units(path: str) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[0] for r in db.execute("SELECT DISTINCT unit FROM units ORDER BY unit")]
    finally:
        db.close()


def load_run(run: str) -> RunData:
    """Load a finished (or partly finished: complete batches only) attack run directory."""
    cfg_path, db_path = os.path.join(run, "config.yaml"), os.path.join(run, "results.sqlite")
    if not (os.path.isfile(cfg_path) and os.path.isfile(db_path)):
        raise FileNotFoundError(f"{run} is not a doublecross attack run directory (config.yaml, results.sqlite)")
    with open(cfg_path) as fh:
        saved = yaml.safe_load(fh) or {}
    known = {f.name for f in dataclasses.fields(JobConfig)}
    cfg = JobConfig.from_dict({**to_dict(JobConfig()), **{k: v for k, v in saved.items() if k in known}})
    model = create_model(cfg.model, weights=cfg.weights).to(cfg.device)
    model.eval()
    x_all, y_all, m_all, _ = attack_set(cfg, model)
    store = ResultStore(db_path)
    try:
        units = _units(db_path)
        n_batches = -(-len(x_all) // cfg.batch_size)
        complete = [b for b in range(n_batches) if all(store.done(b, u) for u in units)]
        if not units or not complete:
            raise ValueError(f"{run} holds no finished batch")
        targets: dict[int, int] = {}
        for row in store.samples():
            targets[row["idx"]] = row["target"]
        adv: dict[str, list[torch.Tensor]] = {u: [] for u in units}
        idx: list[int] = []
        for b in complete:
            lo = b * cfg.batch_size
            n = min(cfg.batch_size, len(x_all) - lo)
            idx.extend(range(lo, lo + n))
            for u in units:
                name = "adv_x" if store.has_array(b, u, "adv_x") else "x"
                adv[u].append(store.array(b, u, name))
    finally:
        store.close()
    sel = torch.tensor(idx)
    t = torch.tensor([targets[i] for i in idx])
    adversarial = {u: torch.cat(v).float() for u, v in adv.items()}
    success = {}
    with torch.no_grad():
        for u, xa in adversarial.items():
            success[u] = model(xa).argmax(1) == t
    masks = m_all[sel] if m_all is not None else None
    return RunData(run, cfg, model, x_all[sel], y_all[sel], t, masks, adversarial, success)


def baseline_units(data: RunData) -> list[str]:
    """The run's baseline units (PGD / regular StAdv)."""
    return [u for u in data.adversarial if not u.startswith("adv2-")]


def adv2_units(data: RunData) -> list[str]:
    """The run's ADV² units (``adv2-<interp>``, ``adv2-stadv-<interp>``)."""
    return [u for u in data.adversarial if u.startswith("adv2-")]
