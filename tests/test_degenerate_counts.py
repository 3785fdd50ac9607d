"""Constant / all-zero maps are counted, warned about and excluded from map metrics, never a perfect match."""

import csv
import logging
import os

import pytest
import torch
import yaml
from torch import nn

from doublecross.experiments.job import JobConfig
from doublecross.experiments.runner import run_job
from doublecross.models import Classifier
from doublecross.report import build_report
from doublecross.report.tables import format_table, summarise

PRESET = {
    "kind": "attack",
    "linf": {
        "threat": {"eps": 0.031, "alpha": 0.0078},
        "baseline": {"n_warm": 0, "n_total": 2},
        "interpreters": {"grad": {"n_warm": 1, "n_total": 2, "lam": 10.0, "check_every": 1}},
    },
}


def _sample(method, l1, deg=False, tdeg=False, success=True):
    return {"batch": 0, "idx": 0, "unit": "u", "interpreter": "grad", "method": method, "success": success,
            "label": 0, "target": 1, "pred": 1, "confidence": 0.9, "l1": l1, "iou": 1.0 - l1, "linf": 0.03,
            "degenerate": deg, "benign_degenerate": tdeg, "target_degenerate": tdeg}  # fmt: skip


def test_summary_excludes_flagged_samples_from_map_means():
    samples = [
        _sample("adv2", 0.2),
        _sample("adv2", 0.4),
        _sample("adv2", 0.0, deg=True),
        _sample("adv2", 0.0, tdeg=True),
    ]
    (row,) = summarise(samples)
    assert row["n"] == 4 and row["successes"] == 4 and row["confidence"] == pytest.approx(0.9)
    assert row["l1"] == pytest.approx(0.3) and row["iou"] == pytest.approx(0.7)  # not pulled to 0 / 1
    assert (row["degenerate"], row["target_degenerate"], row["excluded"], row["map_n"]) == (1, 1, 2, 2)
    assert row["linf"] == pytest.approx(0.03)  # non-map metrics keep every successful sample
    table = format_table([row])
    assert "1/4" in table and "WARNING: grad: 1 of 4 ADV² maps" in table and "1 of 4 benign maps" in table
    (ok,) = summarise([_sample("adv2", 0.2)] * 10)
    assert "WARNING" not in format_table([ok])


def test_run_with_a_constant_model_flags_and_warns(tmp_path, caplog):
    """A ready Classifier (library path) whose output ignores its input: every GRAD map is all-zero."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.fill_(1.0)
    model = Classifier(net, input_size=(16, 16), name="constant")
    data = [(torch.rand(3, 16, 16), -1) for _ in range(4)]  # unlabelled: the prediction is the label
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump(PRESET))
    cfg = JobConfig.from_dict({"model": "constant", "preset": str(preset), "limit": 4, "batch_size": 4,
                               "interpreters": ("grad",)})  # fmt: skip
    out = str(tmp_path / "run")
    pred = int(model(data[0][0][None]).argmax())
    manifest = run_job(cfg, out, progress=False, model=model, dataset=data, targets=(pred + 1) % 3)
    assert manifest["model"] == "constant" and manifest["images"] == 4
    with caplog.at_level(logging.WARNING):
        table, rows = build_report(out)
    assert "4 of 4 benign maps are constant or all-zero" in caplog.text
    assert "WARNING: grad: 4 of 4 ADV² maps" in table and "4/4" in table
    summary = list(csv.DictReader(open(os.path.join(out, "summary.csv"))))
    for r in summary:
        assert r["degenerate"] == "4" and r["benign_degenerate"] == "4" and r["excluded"] == "4"
        assert r["l1"] in ("nan", "")  # no mean over meaningless maps (was 0.0: a "perfect" match)
    assert "report.html" in os.listdir(out) and "WARNING" in open(os.path.join(out, "report.html")).read()
