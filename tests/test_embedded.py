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
    assert os.path.getsize(path) <= 5 * 2**20
    model = create_model(name)
    acc = accuracy(model, *test_split)
    assert acc >= bar, f"{name}: {acc:.4f} < {bar}"
    assert acc == pytest.approx(model.meta["accuracy"], abs=1e-9)  # the recorded figure is reproduced


def test_list_models_shows_embedded(capsys):
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "scenes-resnet" in out and "scenes-densenet" in out and out.count("[embedded]") == 2


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


@pytest.mark.parametrize("name", ["scenes-resnet", "scenes-densenet"])
def test_mask_beats_the_centred_blob(name):
    rows, blob = _faithfulness(name, ("mask",), 200)  # the preset's options: noise deletion, 100 steps
    assert rows["mask"]["iou"] > blob["iou"] and rows["mask"]["pointing"] >= blob["pointing"], (rows, blob)
