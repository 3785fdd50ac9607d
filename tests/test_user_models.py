"""Your own model from the CLI and the library: file.py:factory, weights, folders, fine-tuning, RTS."""

import csv
import json
import os

import numpy as np
import pytest
import torch
import torchvision
import yaml
from PIL import Image

from doublecross.cli import main
from doublecross.config import ConfigError
from doublecross.data.folder import ImageFolderDataset
from doublecross.models import Classifier
from doublecross.models.user import ModelOptions, build_model, is_model_spec, load_user_model
from doublecross.models.weights import WeightsError

MODEL_FILE = """
import torchvision
from torch import nn

def resnet(num_classes=10):
    return torchvision.models.resnet18(weights=None, num_classes=num_classes)

def not_a_model():
    return 3

def self_normalising(num_classes=10):
    import torch

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("pixel_mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1))
            self.register_buffer("pixel_std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1))
            self.body = torchvision.models.resnet18(weights=None, num_classes=num_classes)

        def forward(self, x):
            return self.body((x - self.pixel_mean) / self.pixel_std)

    return Net()
"""


def _images(n, size, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.uniform(0, 255, size=(1, 1, 3))
        img = np.clip(base + rng.normal(0, 40, size=(size, size, 3)), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(img))
    return out


@pytest.fixture(scope="module")
def user_model(tmp_path_factory):
    """A model file, its weights (seeded resnet18, 3 classes) and a folder labelled by its predictions."""
    root = tmp_path_factory.mktemp("user")
    (root / "mynet.py").write_text(MODEL_FILE)
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=3)
    torch.save(net.state_dict(), root / "w.pt")
    flat = root / "flat"
    flat.mkdir()
    for i, im in enumerate(_images(9, 40, 0)):
        im.save(flat / f"img{i}.png")
    clf = Classifier(net, input_size=(32, 32))
    ds = ImageFolderDataset(str(flat), size=32)
    with torch.no_grad():
        preds = clf(torch.stack([ds[i][0] for i in range(len(ds))])).argmax(1).tolist()
    folder = root / "images"
    for c in range(3):
        (folder / f"c{c}").mkdir(parents=True)
    for path, p in zip(ds.paths, preds, strict=True):
        os.replace(path, folder / f"c{p}" / os.path.basename(path))  # labels = the model's predictions
    # an unnamed model labels sub-folders by alphabetical index of the non-empty ones: a label map keeps
    # c<k> -> k when a class has no image
    (root / "labels.yaml").write_text("".join(f"c{p}: {p}\n" for p in sorted(set(preds))))
    return root


def test_model_spec_parsing():
    assert is_model_spec("nets/mine.py:build") and is_model_spec("torchvision.models:resnet18")
    assert not is_model_spec("scenes-resnet") and not is_model_spec("C:model.pt") and not is_model_spec("a.py:1x")


def test_load_user_model_options_and_errors(user_model):
    spec = f"{user_model}/mynet.py:resnet"
    clf = load_user_model(spec, str(user_model / "w.pt"), ModelOptions(num_classes=3, input_size=32))
    assert clf.num_classes == 3 and clf.input_size == (32, 32) and clf.name == "mynet-resnet"
    assert torch.allclose(clf.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    raw = load_user_model(spec, None, ModelOptions(num_classes=3, input_size=32, normalise=False))
    assert raw.mean.abs().max() == 0 and (raw.std == 1).all()
    same = load_user_model("torchvision.models:resnet18", str(user_model / "w.pt"), ModelOptions(num_classes=3))
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(same(x), clf(x))  # package.module:factory loads the same weights
    with pytest.raises(ConfigError, match="has no attribute 'nope'"):
        load_user_model(f"{user_model}/mynet.py:nope")
    with pytest.raises(ConfigError, match="not a torch.nn.Module"):
        load_user_model(f"{user_model}/mynet.py:not_a_model")
    with pytest.raises(FileNotFoundError):
        load_user_model(f"{user_model}/missing.py:resnet")
    with pytest.raises(WeightsError, match="do not fit"):
        load_user_model(spec, str(user_model / "w.pt"), ModelOptions(num_classes=5, input_size=32))
    with pytest.raises(ConfigError, match="only apply to your own model"):
        build_model("scenes-resnet", options=ModelOptions(num_classes=3))


def test_user_model_that_normalises_itself_is_warned_about_unless_told(user_model, caplog, recwarn):
    """No --mean/--std/--no-normalise: a self-normalising network is flagged (it would be normalised twice)."""
    spec = f"{user_model}/mynet.py:self_normalising"
    load_user_model(spec, None, ModelOptions(num_classes=3, input_size=32))
    said = [str(w.message) for w in recwarn] + [r.getMessage() for r in caplog.records]
    assert any("normalised twice" in m for m in said), said
    recwarn.clear()
    caplog.clear()
    raw = load_user_model(spec, None, ModelOptions(num_classes=3, input_size=32, normalise=False))
    explicit = load_user_model(spec, None, ModelOptions(num_classes=3, input_size=32, mean=(0.5,) * 3, std=(0.2,) * 3))
    said = [str(w.message) for w in recwarn] + [r.getMessage() for r in caplog.records]
    assert not any("normalised twice" in m for m in said), said
    assert raw.mean.abs().max() == 0 and torch.allclose(explicit.std.flatten(), torch.full((3,), 0.2))


def test_cli_attacks_user_model_on_user_folder(user_model, tmp_path, capsys):
    out = str(tmp_path / "run")
    argv = [
        "attack",
        "--model", f"{user_model}/mynet.py:resnet", "--weights", str(user_model / "w.pt"),
        "--num-classes", "3", "--input-size", "32", "--images", str(user_model / "images"),
        "--labels", str(user_model / "labels.yaml"), "--interpreter", "grad,cam", "--limit", "2",
        "--steps-scale", "0.05", "--set", "linf.grad.n_total=4",
        "--out", out, "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "preset generic-small" in printed and "degen." in printed and "degenerate maps" in printed
    cfg = yaml.safe_load(open(os.path.join(out, "config.yaml")))
    assert cfg["preset"] == "generic-small" and cfg["steps_scale"] == 0.05 and cfg["input_size"] == 32
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["images"] == 2 and manifest["model"] == "mynet-resnet"
    assert manifest["classes"] == ["0", "1", "2"]  # an unnamed model's classes
    rows = list(csv.DictReader(open(os.path.join(out, "summary.csv"))))
    assert {(r["interpreter"], r["method"]) for r in rows} == {(i, m) for i in ("grad", "cam") for m in ("pgd", "adv2")}
    for r in rows:
        assert int(r["n"]) == 2 and r["degenerate"] != "" and r["map_n"] != ""
    assert os.path.isfile(os.path.join(out, "report.html"))


def test_cli_errors_for_user_models(user_model, tmp_path, capsys):
    base = ["attack", "--out", str(tmp_path / "r"), "--quiet", "--limit", "1"]  # bad options create no run dir
    assert main([*base, "--model", "scenes-resnet", "--num-classes", "3"]) == 2
    assert "only apply to your own model" in capsys.readouterr().err
    assert main([*base, "--set", "linf.grad.n_totl=3"]) == 2
    assert "no field 'n_totl'" in capsys.readouterr().err
    assert main([*base, "--model", f"{user_model}/mynet.py:nope"]) == 2
    assert "no attribute 'nope'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "r")


def test_fine_tune_train_rts_attack_chain(tmp_path, capsys):
    """The skin-lesion protocol on a tiny folder: fine-tune a torchvision file, train its RTS, attack."""
    torch.manual_seed(1)
    tv = torchvision.models.resnet18(weights=None)  # 1000-way head, like the ImageNet file
    torch.save(tv.state_dict(), tmp_path / "resnet18-tv.pth")
    folder = tmp_path / "lesions"
    for c, colour in (("benign", (200, 60, 60)), ("malignant", (60, 60, 200))):
        (folder / c).mkdir(parents=True)
        for i, im in enumerate(_images(5, 32, hash(c) % 100)):
            arr = (np.asarray(im) * 0.3 + np.array(colour) * 0.7).astype(np.uint8)
            Image.fromarray(arr).save(folder / c / f"{i}.png")
    ck = str(tmp_path / "ft.pt")
    argv = [
        "train", "--model", "resnet18", "--init-weights", str(tmp_path / "resnet18-tv.pth"),
        "--images", str(folder), "--num-classes", "2", "--image-size", "32",
        "--epochs", "1", "--batch-size", "4", "--lr", "0", "--out", ck, "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    state = torch.load(ck, weights_only=True)
    assert state["meta"]["arch"] == "resnet18" and state["meta"]["classes"] == ["benign", "malignant"]
    assert state["meta"]["test_size"] == 2 and state["meta"]["train_count"] == 8  # 1 of 5 per class held out
    assert state["state_dict"]["fc.weight"].shape == (2, 512)
    assert torch.equal(state["state_dict"]["conv1.weight"], tv.conv1.weight)  # lr 0: the backbone is the file's
    assert main([*argv[:-3], "--num-classes", "3", "--out", str(tmp_path / "x.pt"), "--quiet"]) == 2
    capsys.readouterr()
    rts = str(tmp_path / "rts.pt")
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    for i, im in enumerate(_images(4, 32, 5)):
        im.save(unlabelled / f"{i}.png")
    assert main(["train-rts", "--model", ck, "--images", str(unlabelled), "--steps", "2", "--batch-size", "4",
                 "--out", rts, "--quiet"]) == 0  # fmt: skip
    rts_meta = torch.load(rts, weights_only=True)["meta"]
    assert rts_meta["input_size"] == [32, 32]  # trained at the model's input size, not on 64 px scenes
    out = str(tmp_path / "run")
    assert main(["attack", "--model", ck, "--images", str(folder), "--interpreter", "rts", "--rts-weights", rts,
                 "--limit", "2", "--steps-scale", "0.01", "--out", out, "--quiet"]) == 0  # fmt: skip
    rows = list(csv.DictReader(open(os.path.join(out, "summary.csv"))))
    assert {r["interpreter"] for r in rows} == {"rts"} and all(int(r["n"]) == 2 for r in rows)
    assert main(["attack", "--model", ck, "--images", str(folder), "--interpreter", "rts", "--limit", "1",
                 "--steps-scale", "0.01", "--out", str(tmp_path / "run2"), "--quiet"]) == 2  # fmt: skip
    assert "--rts-weights rts.pt" in capsys.readouterr().err  # the option the message names exists


def test_train_rts_refuses_a_dataset_of_other_classes(user_model, tmp_path, capsys):
    argv = ["train-rts", "--model", f"{user_model}/mynet.py:resnet", "--weights", str(user_model / "w.pt"),
            "--num-classes", "3", "--input-size", "32", "--steps", "1", "--limit", "4",
            "--out", str(tmp_path / "r.pt")]  # fmt: skip
    assert main(argv) == 2  # scenes' 10 classes are not this model's 3
    assert "labels would mean other classes" in capsys.readouterr().err
    assert (
        main([*argv, "--images", str(user_model / "images"), "--quiet"]) == 0
    )  # its own folder (labelled by sub-folder)
    assert torch.load(tmp_path / "r.pt", weights_only=True)["meta"]["input_size"] == [32, 32]
