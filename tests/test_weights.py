"""Safe weight loading, hub-cache resolution, checkpoints."""

import os
import pickle

import pytest
import torch
import torchvision

from doublecross.models import create_model
from doublecross.models.checkpoint import load_checkpoint, save_checkpoint
from doublecross.models.weights import WeightsError, load_weights_file, remap_densenet_keys
from doublecross.models.zoo import classifier_from_checkpoint


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused_without_executing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"state_dict": {"w": _Evil(str(marker))}}, fh)
    with pytest.raises(WeightsError, match="refusing to load"):
        load_weights_file(path)
    assert not marker.exists()
    with pytest.raises(WeightsError, match="refusing to load"):
        create_model("resnet50", weights=str(path))
    assert not marker.exists()


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights_file(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(WeightsError):
        load_weights_file(bad)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def test_offline_without_file_fails_at_once_naming_the_file(fake_hub):
    with pytest.raises(WeightsError, match=r"resnet50-0676ba61\.pth.*" + str(fake_hub)):
        create_model("resnet50")
    with pytest.raises(WeightsError, match=r"densenet169-b2777c0a\.pth"):
        create_model("densenet169")


def test_resnet50_resolved_from_hub_cache(fake_hub):
    torch.manual_seed(0)
    net = torchvision.models.resnet50()
    torch.save(net.state_dict(), fake_hub / "resnet50-11ad3fa6.pth")  # the V2 file name
    clf = create_model("resnet50")
    assert torch.equal(clf.net.fc.weight, net.fc.weight)
    assert clf.class_name(0) == "tench" and clf.num_classes == 1000
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(clf(x), net.eval()(clf.normalise(x)), rtol=1e-4, atol=1e-4)


def test_densenet169_old_style_keys_from_hub_cache(fake_hub):
    torch.manual_seed(0)
    net = torchvision.models.densenet169()
    old = {}
    for k, v in net.state_dict().items():  # write torchvision's legacy file: old names, no counters
        if k.endswith("num_batches_tracked"):
            continue
        for part in ("norm1", "norm2", "conv1", "conv2", "relu1", "relu2"):
            if f".{part}." in k and "denselayer" in k:
                k = k.replace(f".{part}.", f".{part[:-1]}.{part[-1]}.")
        old[k] = v
    assert any(".norm.1.weight" in k for k in old)
    assert set(remap_densenet_keys(old)) == {k for k in net.state_dict() if not k.endswith("tracked")}
    torch.save(old, fake_hub / "densenet169-b2777c0a.pth")
    clf = create_model("densenet169")
    assert torch.equal(clf.net.classifier.weight, net.classifier.weight)


def test_checkpoint_round_trip_and_no_silent_overwrite(tmp_path, tiny_resnet):
    path = str(tmp_path / "m.pt")
    meta = {
        "arch": "small-resnet",
        "arch_kwargs": {"width": 8, "depth": 1},
        "classes": list("abcdefghij"),
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
        "input_size": [64, 64],
        "accuracy": 0.5,
    }
    save_checkpoint(path, tiny_resnet.net.state_dict(), meta)
    with pytest.raises(FileExistsError, match="exists"):
        save_checkpoint(path, tiny_resnet.net.state_dict(), meta)
    state, meta2 = load_checkpoint(path)
    assert meta2 == meta and not any(f.endswith(".tmp") for f in os.listdir(tmp_path))
    clf = classifier_from_checkpoint(path)
    x = torch.rand(2, 3, 64, 64)
    assert clf.classes == list("abcdefghij")
    torch.testing.assert_close(clf(x), tiny_resnet.net((x - 0.5) / 0.25))
    with pytest.raises(ValueError, match="lacks"):
        save_checkpoint(str(tmp_path / "n.pt"), {}, {"arch": "x"})


def test_checkpoint_model_needs_weights():
    with pytest.raises(WeightsError, match="needs --weights"):
        create_model("small-resnet")
