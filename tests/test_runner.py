"""The main job: run directory, resume without redoing work, no silent overwrite, report."""

import csv
import os
import sqlite3

import pytest
import yaml

from doublecross.attacks import ATTACKS
from doublecross.cli import main
from doublecross.experiments.job import JobConfig
from doublecross.experiments.runner import run_job
from doublecross.report import build_report

PRESET = {
    "kind": "attack",
    "description": "tiny test preset",
    "model": "scenes-resnet",
    "int_loss_reduction": "mean",
    "linf": {
        "threat": {"eps": 0.031, "alpha": 0.0078},
        "baseline": {"n_warm": 0, "n_total": 6},
        "interpreters": {
            "cam": {"n_warm": 3, "n_total": 3, "lam": 10.0},
            "grad": {"n_warm": 3, "n_total": 2, "lam": 10.0, "check_every": 1},
        },
    },
    "stadv": {
        "threat": {"tau": 0.0005, "lr": 0.05},
        "baseline": {"n_warm": 0, "n_total": 40},
        "interpreters": {
            "cam": {"n_warm": 40, "n_total": 3, "lam": 10.0},
            "grad": {"n_warm": 40, "n_total": 2, "lam": 10.0, "check_every": 1},
        },
    },
}


@pytest.fixture
def preset(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(PRESET))
    return str(path)


def _cfg(preset, **kw):
    return JobConfig.from_dict({"limit": 4, "batch_size": 2, "interpreters": ("cam", "grad"), "preset": preset, **kw})


def test_run_resume_and_report(tmp_path, preset, monkeypatch):
    out = str(tmp_path / "run")
    calls = []
    real_create = ATTACKS.create

    def counting_create(name, **kw):
        attack = real_create(name, **kw)
        original = attack.run

        def run(*a, **k):
            calls.append(name)
            if len(calls) == 4 and os.environ.get("DC_TEST_CRASH"):
                raise KeyboardInterrupt  # killed in the middle of batch 1
            return original(*a, **k)

        attack.run = run
        return attack

    monkeypatch.setattr(ATTACKS, "create", counting_create)
    monkeypatch.setenv("DC_TEST_CRASH", "1")
    with pytest.raises(KeyboardInterrupt):
        run_job(_cfg(preset), out, progress=False)
    db = sqlite3.connect(os.path.join(out, "results.sqlite"))
    assert db.execute("SELECT COUNT(*) FROM units").fetchone()[0] == 3  # batch 0 (pgd, cam, grad) kept
    db.close()
    with pytest.raises(FileExistsError, match="--resume"):
        run_job(_cfg(preset), out, progress=False)
    with pytest.raises(ValueError, match="differs"):
        run_job(_cfg(preset, seed=1), out, resume=True, progress=False)
    monkeypatch.delenv("DC_TEST_CRASH")
    calls.clear()
    manifest = run_job(_cfg(preset), out, resume=True, progress=False)
    assert calls == ["pgd", "adv2", "adv2"]  # only batch 1's units: nothing redone
    assert manifest["images"] == 4 and manifest["git_revision"]
    table, rows = build_report(out, None)
    assert {(r["interpreter"], r["method"]) for r in rows} == {(i, m) for i in ("cam", "grad") for m in ("pgd", "adv2")}
    assert all(r["n"] == 4 for r in rows)
    for name in ("config.yaml", "manifest.json", "summary.csv", "grid_cam.png", "grid_grad.png", "report.html"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    with open(os.path.join(out, "summary.csv")) as fh:
        assert len(list(csv.DictReader(fh))) == 4
    html = open(os.path.join(out, "report.html")).read()
    assert "data:image/png;base64," in html and "ADV²" in html


def test_cli_attack_writes_a_run(tmp_path, preset, capsys):
    out = str(tmp_path / "cli")
    assert main(["attack", "--interpreter", "cam", "--limit", "2", "--preset", preset, "--out", out, "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "cam" in text and "PGD" in text and "ADV²" in text
    assert main(["attack", "--interpreter", "cam", "--limit", "2", "--preset", preset, "--out", out, "--quiet"]) == 2
    assert "exists" in capsys.readouterr().err


def test_cli_attack_takes_the_model_from_the_preset_unless_given(tmp_path, capsys):
    path = tmp_path / "dense.yaml"
    path.write_text(yaml.safe_dump({**PRESET, "model": "scenes-densenet"}))
    argv = ["attack", "--interpreter", "cam", "--limit", "1", "--batch-size", "1", "--preset", str(path), "--quiet"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    assert "scenes-densenet, 1 images" in capsys.readouterr().out
    assert yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["model"] == "scenes-densenet"
    assert main(argv + ["--model", "scenes-resnet", "--out", str(tmp_path / "b")]) == 0  # --model wins
    assert yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())["model"] == "scenes-resnet"


def test_cli_attack_both_threats(tmp_path, preset, capsys):
    out = str(tmp_path / "both")
    argv = ["attack", "--interpreter", "cam", "--threat", "linf,stadv", "--limit", "2", "--preset", preset]
    assert main(argv + ["--out", out, "--quiet"]) == 0
    text = capsys.readouterr().out
    for label in ("PGD", "ADV²", "StAdv", "ADV²-StAdv"):
        assert f" {label} " in text
    for name in ("grid_cam.png", "grid_cam_stadv.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    with open(os.path.join(out, "summary.csv")) as fh:
        rows = {r["method"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"pgd", "adv2", "stadv", "adv2-stadv"}
    assert int(rows["stadv"]["successes"]) > 0 and int(rows["adv2-stadv"]["successes"]) > 0
    assert float(rows["stadv"]["flow_mean"]) > 0 and rows["pgd"]["flow_mean"] == ""
