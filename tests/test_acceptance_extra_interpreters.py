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


_SG_MISS = pytest.mark.xfail(
    strict=True,
    reason="known shortfall (README, presets/scenes-resnet.yaml): SmoothGrad L1 ratio 0.53 > 0.5 -- the attack's loss "
    "map uses 4 of the 16 noise draws; success 16/16 and IoU_k above PGD's at every k",
)


@pytest.mark.slow
@pytest.mark.parametrize("interp", [n if n != "smoothgrad" else pytest.param(n, marks=_SG_MISS) for n in NEW])
def test_adv2_acceptance_new_interpreters_on_scenes_resnet(rows, interp):
    adv, pgd = rows[(interp, "adv2")], rows[(interp, "pgd")]
    assert adv["n"] == 16
    assert adv["success_rate"] >= 0.90, (interp, adv["success_rate"])
    assert adv["l1"] <= 0.5 * pgd["l1"], (interp, adv["l1"], pgd["l1"])
    for k in IOU_KS:
        assert adv[f"iou{k}"] > pgd[f"iou{k}"], (interp, k, adv[f"iou{k}"], pgd[f"iou{k}"])


@pytest.mark.slow
def test_new_interpreters_beat_the_centred_blob_on_scenes_resnet():
    """Faithfulness on 200 test scenes (README): every new map's top-k IoU beats the blob's; pointing too,
    except SmoothGrad's (0.805 against 0.825: a documented shortfall, its maximum drifts onto the background)."""
    import torch

    from doublecross.attacks.presets import interpreter_defaults
    from doublecross.data.scenes import ScenesDataset
    from doublecross.interpreters import create_interpreter
    from doublecross.interpreters.faithfulness import evaluate_interpreters
    from doublecross.models import create_model

    ds = ScenesDataset("test", size=200)
    items = [ds[i] for i in range(200)]
    x, y = torch.stack([i[0] for i in items]), torch.tensor([i[1] for i in items])
    masks = torch.stack([i[2] for i in items])
    model = create_model("scenes-resnet")
    opts = interpreter_defaults("scenes-resnet")
    interps = {n: create_interpreter(n, model, **opts.get(n, {})) for n in NEW}
    rows = {r["interpreter"]: r for r in evaluate_interpreters(model, interps, x, y, masks, batch_size=50)}
    blob = rows.pop("centre-blob")
    for name, r in rows.items():
        assert r["iou"] > blob["iou"], (name, r, blob)
        if name != "smoothgrad":
            assert r["pointing"] >= blob["pointing"], (name, r, blob)
