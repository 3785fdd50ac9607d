"""Acceptance of ADV²-PGD against the issue-14 interpreters on the embedded scenes-resnet (calibrated preset).

16 correctly classified test images, one batch: ADV² success ≥ 90 %, ADV² mean L1 to the benign map
≤ 0.5 × PGD's, ADV² IoU_k above PGD's at every k (10..90 %). Slow (tens of minutes on 2 shared
cores, SmoothGrad and IG dominating): ``python -m pytest -m slow tests/test_acceptance_extra_interpreters.py``.
"""

import pytest

from doublecross.experiments.job import JobConfig
from doublecross.experiments.runner import run_job
from doublecross.metrics import IOU_KS
from doublecross.report import build_report

NEW = ("gradcam", "gradcam++", "input-x-grad", "smoothgrad", "ig")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("acceptance-extra") / "run")
    run_job(JobConfig(limit=16, batch_size=16, interpreters=NEW), out, progress=False)
    _, report_rows = build_report(out)
    return {(r["interpreter"], r["method"]): r for r in report_rows}


@pytest.mark.slow
@pytest.mark.parametrize("interp", NEW)
def test_adv2_acceptance_new_interpreters_on_scenes_resnet(rows, interp):
    adv, pgd = rows[(interp, "adv2")], rows[(interp, "pgd")]
    assert adv["n"] == 16
    assert adv["success_rate"] >= 0.90, (interp, adv["success_rate"])
    assert adv["l1"] <= 0.5 * pgd["l1"], (interp, adv["l1"], pgd["l1"])
    for k in IOU_KS:
        assert adv[f"iou{k}"] > pgd[f"iou{k}"], (interp, k, adv[f"iou{k}"], pgd[f"iou{k}"])
