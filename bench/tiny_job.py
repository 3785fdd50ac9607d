"""Classifier passes per unit of a scaled-down main job, for before/after comparisons of the runner.

Runs ``run_job`` with the scene preset scaled down (10 warm + 20 stage-2 steps, MASK 20 inner
steps and 10 iterations, baselines 30 steps), both threats, all four interpreters, 4 images, and
counts classifier forwards per unit with a forward hook (load-independent). Works on any checkout
whose runner has ``_baseline_unit`` / ``_adv2_unit``; with ``--compare OTHER_RUN`` it also checks
that the stored arrays and metrics equal another run's bit for bit.

    PYTHONPATH=src python bench/tiny_job.py OUT [--compare OTHER_OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import tempfile
import time

import yaml

from doublecross.experiments import runner
from doublecross.experiments.job import JobConfig
from doublecross.report import build_report


def scaled_preset() -> str:
    src = os.path.join(os.path.dirname(runner.__file__), "..", "presets", "scenes-resnet.yaml")
    p = yaml.safe_load(open(src))
    p["interpreter_options"]["mask"]["steps"] = 20
    for threat in ("linf", "stadv"):
        p[threat]["baseline"].update(n_total=30)
        for name, c in p[threat]["interpreters"].items():
            c.update(n_warm=10, n_total=20 if name != "mask" else 10)
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(p, fh)
    return path


def compare(a: str, b: str) -> dict[str, object]:
    """Arrays and metric rows of two runs: how many are bit-identical."""
    da, db = (sqlite3.connect(os.path.join(r, "results.sqlite")) for r in (a, b))
    qa = {r[:3]: r[3] for r in da.execute("SELECT batch, unit, name, data FROM arrays")}
    qb = {r[:3]: r[3] for r in db.execute("SELECT batch, unit, name, data FROM arrays")}
    q = "SELECT batch, idx, unit, interpreter, method, metrics FROM samples"
    sa, sb = sorted(da.execute(q).fetchall()), sorted(db.execute(q).fetchall())
    return {
        "arrays": len(qa),
        "arrays_identical": sum(qa[k] == qb.get(k) for k in qa),
        "rows": len(sa),
        "rows_identical": sa == sb,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--compare", help="another run directory of this script to compare with")
    a = p.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    box = {"images": 0}
    attr = "build_model" if hasattr(runner, "build_model") else "create_model"  # the runner's model factory
    real_create = getattr(runner, attr)

    def create(*args, **kw):  # type: ignore[no-untyped-def]
        m = real_create(*args, **kw)
        m.register_forward_hook(lambda _m, inp, _o: box.__setitem__("images", box["images"] + int(inp[0].shape[0])))
        return m

    setattr(runner, attr, create)
    units: dict[str, int] = {}
    for fname in ("_adv2_unit", "_baseline_unit"):
        real = getattr(runner, fname)

        def wrap(*args, _real=real, _f=fname, **kw):  # type: ignore[no-untyped-def]
            before = box["images"]
            out = _real(*args, **kw)
            name = args[2] if _f == "_adv2_unit" else args[3].baseline
            units[name] = units.get(name, 0) + box["images"] - before
            return out

        setattr(runner, fname, wrap)
    t0 = time.time()
    cfg = JobConfig(limit=4, batch_size=4, threats=("linf", "stadv"), preset=scaled_preset())
    runner.run_job(cfg, a.out, progress=False)
    table, _ = build_report(a.out)
    result = {
        "runner": runner.__file__,
        "wall_s": round(time.time() - t0, 1),
        "passes_total": box["images"] / 4,
        "passes_per_unit": {k: v / 4 for k, v in units.items()},
    }
    if a.compare:
        result["compare"] = compare(a.compare, a.out)
    print(json.dumps(result))
    print(table)


if __name__ == "__main__":
    main()
