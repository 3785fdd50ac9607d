import pytest
import torch
import torch.nn.functional as F
from torch import nn

from doublecross.models.train import TrainConfig, train, training_loss


def test_training_loss_adds_the_input_gradient_penalty_known_answer_on_a_linear_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    x, y = torch.rand(3, 3, 4, 4), torch.tensor([0, 3, 4])
    ce = F.cross_entropy(net((x - mean) / std), y)
    assert torch.equal(training_loss(net, x, y, mean, std, 0.0), ce)
    with torch.no_grad():  # ∂CE_b/∂x_b = (Wᵀ(softmax(z_b) - e_y)) / std for a linear model
        z = net((x - mean) / std)
        d = F.softmax(z, 1) - F.one_hot(y, 5).float()
        g = (d @ net[1].weight).view(3, 3, 4, 4) / std
    expected = ce + 0.7 * g.pow(2).flatten(1).sum(1).mean()
    torch.testing.assert_close(training_loss(net, x, y, mean, std, 0.7), expected, rtol=1e-5, atol=1e-6)


def test_fine_tune_starts_from_the_checkpoint_and_trains_it(tmp_path, monkeypatch):
    import doublecross.models.train as train_mod

    real = train_mod.create_dataset

    def small_test_split(name, **kw):  # 64 test images instead of 1 000: the accuracy is not what is tested
        return real(name, **({"count": 64} if kw.get("split") == "test" else {}), **kw)

    monkeypatch.setattr(train_mod, "create_dataset", small_test_split)
    base = {"arch": "small-resnet", "dataset": "scenes", "epochs": 1, "batch_size": 16, "train_count": 32}
    meta_a = train(TrainConfig.from_dict(base), str(tmp_path / "a.pt"), progress=False, command="first")
    meta = train(
        TrainConfig.from_dict({**base, "init": str(tmp_path / "a.pt"), "grad_penalty": 0.1, "lr": 0.01}),
        str(tmp_path / "b.pt"),
        progress=False,
    )
    assert meta["init"] == str(tmp_path / "a.pt") and meta["grad_penalty"] == 0.1 and meta["test_size"] == 64
    assert meta_a["init_meta"] is None  # provenance: the base's command and accuracy travel with the fine-tune
    assert meta["init_meta"] == {k: meta_a[k] for k in ("command", "accuracy", "epochs", "train_time_s", "init")} | {
        "init_meta": None
    }
    a = torch.load(tmp_path / "a.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    assert not torch.equal(a["fc.weight"], b["fc.weight"])  # the loaded (frozen) weights were unfrozen and trained
    with pytest.raises(ValueError, match="not a 'small-densenet'"):
        train(
            TrainConfig.from_dict({**base, "arch": "small-densenet", "init": str(tmp_path / "a.pt")}),
            str(tmp_path / "c.pt"),
            progress=False,
        )
