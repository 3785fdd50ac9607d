"""`doublecross reproduce detect|ensemble|aid`: the defences in the reproduction (spec §9), resumable."""

import dataclasses
import os
import sqlite3

import pytest
import yaml

from doublecross.config import ConfigError
from doublecross.experiments import reproduce as R
from doublecross.experiments.defence_passes import _options
from doublecross.experiments.reproduce import ReproduceConfig, reproduce
from doublecross.experiments.spec import DEFENCE_EXPERIMENTS, EXPERIMENTS, load_experiment, resolve
from test_reproduce import TINY

TINY_OPTIONS = {
    "detect": {"squeeze_heldout": 20, "lid_refs": 12, "lid_ks": [3, 5], "seed": 0},
    "ensemble": {"members": ["cam", "rts"], "heldout": 20, "steps_scale": 0.05},
    "aid": {"rounds": 1, "steps_per_round": 2, "batch_size": 4, "adv_per_round": 4, "attack_scale": 0.02,
            "train_images": 64, "fidelity": 20, "steps_scale": 0.05},
}  # fmt: skip


def _tiny_specs(monkeypatch):
    def tiny(name):
        return [dataclasses.replace(s, options={**s.options, **TINY_OPTIONS[s.name]}) for s in resolve(name)]

    monkeypatch.setattr(R, "resolve", tiny)


def _rows(path):
    with sqlite3.connect(path) as db:
        return sorted(db.execute("SELECT experiment, key, finished FROM steps").fetchall())


def test_defence_specs_are_outside_all_and_read_linf_benign():
    assert [s.name for s in resolve("all")] == list(EXPERIMENTS)
    assert not set(DEFENCE_EXPERIMENTS) & set(EXPERIMENTS)
    for name in DEFENCE_EXPERIMENTS:
        spec = load_experiment(name)
        assert spec.runs == ("linf-benign",) and spec.passes and spec.tables
        for p in spec.passes:  # the shipped options and the tiny ones are all known to the passes
            assert _options(p, spec.options) and _options(p, TINY_OPTIONS[name])
    with pytest.raises(ConfigError, match="heldot"):
        _options("ensemble", {"heldot": 3})


def test_reproduce_detect_writes_tables_and_resumes_without_recomputing(tmp_path, monkeypatch):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(TINY))
    _tiny_specs(monkeypatch)
    out = str(tmp_path / "rep")
    cfg = ReproduceConfig.from_dict(
        {"experiments": ("detect",), "limit": 4, "batch_size": 4, "interpreters": ("cam",), "preset": str(preset)}
    )
    reproduce(cfg, out, progress=False)
    store = os.path.join(out, "scenes-resnet", "defences.sqlite")
    rows = _rows(store)
    keys = {(e, k) for e, k, _ in rows}
    assert {("squeeze", "table"), ("lid", "table"), ("squeeze", "scores:heldout20")} <= keys
    md = open(os.path.join(out, "tables", "all.md")).read()
    assert "Detection: feature squeezing [scenes-resnet]" in md and "Detection: LID [scenes-resnet]" in md
    assert "[our decision" in md and "linf-benign" in md and "not computed" not in md
    for name in ("detect_squeeze_scenes-resnet", "detect_lid_scenes-resnet"):
        assert os.path.isfile(os.path.join(out, "tables", f"{name}.csv"))
    html = open(os.path.join(out, "report.html")).read()
    assert "id='detect'" in html and "table-detect_squeeze_scenes-resnet" in html
    # squeezing rows: every single squeezer, the families and `all`; PGD and ADV²-CAM columns
    sq = open(os.path.join(out, "tables", "detect_squeeze_scenes-resnet.md")).read()
    assert "bit-1" in sq and "nlm-*" in sq and "pgd" in sq and "adv2-cam" in sq
    # a second invocation recomputes nothing: no store row is rewritten
    reproduce(cfg, out, resume=True, progress=False)
    assert _rows(store) == rows
    # the report alone, from the stored rows
    reproduce(cfg, out, compute=False)
    assert _rows(store) == rows
    assert "Detection: LID [scenes-resnet]" in open(os.path.join(out, "tables", "all.md")).read()


def test_reproduce_ensemble_and_aid_on_a_tiny_run(tmp_path, monkeypatch):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(TINY))
    _tiny_specs(monkeypatch)
    out = str(tmp_path / "rep")
    base = {"limit": 4, "batch_size": 4, "interpreters": ("cam", "rts"), "preset": str(preset)}
    cfg = ReproduceConfig.from_dict({**base, "experiments": ("ensemble", "aid")})
    reproduce(cfg, out, progress=False)
    assert os.path.isfile(os.path.join(out, "scenes-resnet", "aid-rts.pt"))
    md = open(os.path.join(out, "tables", "all.md")).read()
    assert "ensemble interpretation (cam+rts, attack steps ×0.05) [scenes-resnet]" in md
    assert "AID for RTS [scenes-resnet]" in md and md.count("[our decision]") >= 2
    store = os.path.join(out, "scenes-resnet", "defences.sqlite")
    rows = _rows(store)
    mtime = os.path.getmtime(os.path.join(out, "scenes-resnet", "aid-rts.pt"))
    reproduce(cfg, out, resume=True, progress=False)
    assert _rows(store) == rows and os.path.getmtime(os.path.join(out, "scenes-resnet", "aid-rts.pt")) == mtime
