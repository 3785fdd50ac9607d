"""The embedded checkpoints: loadable with no argument, accurate, interpretable."""

import os

import pytest
import torch

from doublecross.cli import main
from doublecross.data.scenes import ScenesDataset
from doublecross.interpreters import create_interpreter
from doublecross.interpreters.faithfulness import evaluate_interpreters
from doublecross.models import create_model
from doublecross.models.train import accuracy, stack_dataset
from doublecross.models.zoo import embedded_checkpoint


@pytest.fixture(scope="module")
def test_split():
    return stack_dataset(ScenesDataset("test"))


@pytest.mark.parametrize("name, bar", [("scenes-resnet", 0.95), ("scenes-densenet", 0.90)])
def test_embedded_accuracy_meets_the_bar(name, bar, test_split):
    path = embedded_checkpoint(name)
    assert os.path.getsize(path) <= 5 * 2**20 and os.path.getsize(embedded_checkpoint(f"rts-{name}")) <= 5 * 2**20
    model = create_model(name)
    acc = accuracy(model, *test_split)
    assert acc >= bar, f"{name}: {acc:.4f} < {bar}"
    assert acc == pytest.approx(model.meta["accuracy"], abs=1e-9)  # the recorded figure is reproduced


def test_list_models_shows_embedded(capsys):
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "scenes-resnet" in out and "scenes-densenet" in out and out.count("[embedded]") == 2


def test_cli_lists_interpreters_trains_rts_and_prints_the_ground_truth_table(tmp_path, capsys):
    assert main(["list", "interpreters"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{n}  " in listed for n in ("grad", "cam", "mask", "rts"))
    out = str(tmp_path / "rts.pt")
    argv = ["train-rts", "--model", "scenes-resnet", "--limit", "16", "--steps", "2", "--batch-size", "4"]
    assert main(argv + ["--out", out, "--quiet"]) == 0
    assert "in 2 steps" in capsys.readouterr().out
    rts = create_interpreter("rts", create_model("scenes-resnet"), weights=out)
    assert rts.explain(torch.rand(1, 3, 64, 64), 0).map.shape == (1, 1, 16, 16)
    assert main(argv + ["--out", out, "--quiet"]) == 2  # no silent overwrite
    capsys.readouterr()
    assert (
        main(["evaluate-interpreters", "--models", "scenes-resnet", "--interpreters", "grad,cam", "--limit", "4"]) == 0
    )
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [r[1] for r in rows] == ["grad", "cam", "centre-blob"]
    assert all(0 <= float(r[2]) <= 1 and 0 <= float(r[-1]) <= 1 for r in rows)


def _faithfulness(name, interpreters, n):
    from doublecross.attacks.presets import interpreter_defaults

    ds = ScenesDataset("test", size=n)
    items = [ds[i] for i in range(n)]
    x = torch.stack([i[0] for i in items])
    y = torch.tensor([i[1] for i in items])
    masks = torch.stack([i[2] for i in items])
    model = create_model(name)
    opts = interpreter_defaults(name)
    interps = {n: create_interpreter(n, model, **opts.get(n, {})) for n in interpreters}
    rows = {r["interpreter"]: r for r in evaluate_interpreters(model, interps, x, y, masks, batch_size=50)}
    return rows, rows.pop("centre-blob")


@pytest.mark.parametrize(
    "name, interpreter", [(m, i) for m in ("scenes-resnet", "scenes-densenet") for i in ("grad", "cam", "rts")]
)
def test_interpreter_beats_the_centred_blob(name, interpreter):
    rows, blob = _faithfulness(name, (interpreter,), 200)
    r = rows[interpreter]
    assert r["iou"] > blob["iou"] and r["pointing"] >= blob["pointing"], (r, blob)


def test_mask_beats_the_centred_blob_iou_on_16_images():
    """The default run's cheaper MASK check (the 200-image one above is ``slow``): top-k IoU on 16 images.

    Measured: MASK 0.394 against the blob's 0.290 (pointing, 0.81 vs 0.94 on 16 images, is too noisy
    at this size; the slow test checks it on 200).
    """
    rows, blob = _faithfulness("scenes-resnet", ("mask",), 16)
    assert rows["mask"]["iou"] > blob["iou"] + 0.05, (rows, blob)


@pytest.mark.slow  # 200 images × 100 MASK steps: 4–25 min per model on 2 shared cores
@pytest.mark.parametrize("name", ["scenes-resnet", "scenes-densenet"])
def test_mask_beats_the_centred_blob(name):
    rows, blob = _faithfulness(name, ("mask",), 200)  # the preset's options: noise deletion, 100 steps
    assert rows["mask"]["iou"] > blob["iou"] and rows["mask"]["pointing"] >= blob["pointing"], (rows, blob)
