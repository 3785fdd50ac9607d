"""The attack report's figures: stored per-iteration history, IoU_k curves, target-map column, perturbation sizes."""

import os

import torch
import yaml
from PIL import Image

from doublecross.experiments.job import JobConfig
from doublecross.experiments.runner import run_job
from doublecross.experiments.store import ResultStore
from doublecross.report import build_report

PRESET = {
    "kind": "attack",
    "model": "scenes-resnet",
    "linf": {
        "threat": {"eps": 0.0784313725490196, "alpha": 0.00784313725490196},
        "baseline": {"n_warm": 0, "n_total": 10},
        "interpreters": {"cam": {"n_warm": 10, "n_total": 12, "lam": 10.0}},
    },
}


def test_history_is_stored_and_the_report_plots_it(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump(PRESET))
    out = str(tmp_path / "run")
    cfg = JobConfig.from_dict(
        {"limit": 2, "interpreters": ("cam",), "preset": str(preset), "target_map": "shape", "history_every": 4}
    )
    run_job(cfg, out, progress=False)
    store = ResultStore(os.path.join(out, "results.sqlite"))
    try:
        steps = store.array(0, "adv2-cam", "history_step")
        loss = store.array(0, "adv2-cam", "history_loss")
        success = store.array(0, "adv2-cam", "history_success")
    finally:
        store.close()
    assert steps.tolist() == [0, 4, 8] and torch.isfinite(loss).all() and ((success >= 0) & (success <= 1)).all()
    table, rows = build_report(out)
    assert "Linf pert" in table and all(0 < r["linf"] <= 0.0785 for r in rows if r["successes"])
    for name in ("history.png", "iou_curves.png", "grid_cam.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    html = open(os.path.join(out, "report.html")).read()
    assert html.count("data:image/png;base64,") == 3  # grid, IoU_k curves, history
    # shape targets: the grid gains a target-map column (7 panels per row instead of 6)
    w_shape = Image.open(os.path.join(out, "grid_cam.png")).size[0]
    cfg_b = JobConfig.from_dict({"limit": 2, "interpreters": ("cam",), "preset": str(preset)})
    run_job(cfg_b, str(tmp_path / "b"), progress=False)
    build_report(str(tmp_path / "b"))
    assert w_shape > Image.open(str(tmp_path / "b" / "grid_cam.png")).size[0]
