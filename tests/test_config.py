import pytest

from doublecross.config import ConfigError, load_preset_dict, preset_names, to_dict
from doublecross.models.train import TrainConfig


def test_presets_load_into_frozen_dataclasses():
    names = [n for n in preset_names() if n.startswith("train-")]
    assert {"train-scenes-resnet", "train-scenes-densenet"} <= set(names)
    for n in names:
        cfg = TrainConfig.from_preset(n)
        assert cfg.epochs >= 1
        with pytest.raises(AttributeError):
            cfg.epochs = 3  # frozen
    cfg = TrainConfig.from_preset("train-scenes-resnet", epochs=2, lr=None)
    assert cfg.epochs == 2 and cfg.lr == 0.1
    assert to_dict(cfg)["mean"] == list(cfg.mean)


def test_unknown_field_is_named():
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['epoch'\]"):
        TrainConfig.from_dict({"arch": "small-resnet", "dataset": "scenes", "epoch": 3})


def test_bad_choice_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"TrainConfig.arch: 'vgg' is not allowed; choose one of: .*small-resnet"):
        TrainConfig.from_dict({"arch": "vgg", "dataset": "scenes"})
    with pytest.raises(ConfigError, match=r"TrainConfig.dataset: 'imagenet'.*scenes"):
        TrainConfig.from_dict({"arch": "small-resnet", "dataset": "imagenet"})


def test_type_missing_and_range_errors():
    with pytest.raises(ConfigError, match="TrainConfig.epochs: expected int"):
        TrainConfig.from_dict({"arch": "small-resnet", "dataset": "scenes", "epochs": "ten"})
    with pytest.raises(ConfigError, match="missing required field TrainConfig.dataset"):
        TrainConfig.from_dict({"arch": "small-resnet"})
    with pytest.raises(ConfigError, match="TrainConfig.lr: must be >= 0.0"):
        TrainConfig.from_dict({"arch": "small-resnet", "dataset": "scenes", "lr": -1.0})
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_preset_dict("nope")


def test_every_attack_preset_validates():
    from doublecross.attacks.presets import attack_preset_names, load_attack_preset

    names = attack_preset_names()
    assert {"table10-resnet50", "table10-densenet169", "table10-resnet50-q4", "scenes-resnet"} <= set(names)
    assert {"table11-resnet50", "table11-densenet169"} <= set(names)
    for n in names:
        p = load_attack_preset(n)
        for settings in p.threats.values():
            assert {"grad", "cam", "mask", "rts"} <= set(settings.interpreters), n
            assert all(c.reduction in ("mean", "sum") for c in settings.interpreters.values())
            for cfg in settings.interpreters.values():
                settings.create_threat(cfg)  # every per-interpreter threat override is valid
    new = {"gradcam", "gradcam++", "smoothgrad", "ig", "input-x-grad"}  # issue 14: calibrated for scenes-resnet L∞
    assert new <= set(load_attack_preset("scenes-resnet").for_threat("linf").interpreters)
    t10 = load_attack_preset("table10-resnet50").for_threat("linf")
    assert t10.for_interpreter("cam").lam == 0.204 and t10.params["eps"] == 0.031 and t10.baseline.n_total == 1200
    assert t10.for_interpreter("rts").extra == {"encoder": 0.1}
    assert t10.for_interpreter("mask").warm_loss == "margin"
    t11 = load_attack_preset("table11-resnet50")
    assert t11.reduction == "sum" and set(t11.threats) == {"stadv"}
    s11 = t11.for_threat("stadv")
    assert s11.for_interpreter("grad").lam == 0.023 and s11.for_interpreter("cam").lam == 0.653
    assert s11.for_interpreter("mask").outer == "joint" and s11.create_threat(s11.for_interpreter("mask")).tau == 0.004
    assert s11.for_interpreter("rts").lam == 0.0408
    assert load_attack_preset("table11-densenet169").for_threat("stadv").for_interpreter("rts").lam == 0.0612
    with pytest.raises(ConfigError, match="no 'stadv' block"):
        load_attack_preset("table10-resnet50").for_threat("stadv")


def test_attack_preset_errors(tmp_path):
    from doublecross.attacks.presets import load_attack_preset

    bad = tmp_path / "bad.yaml"
    for body, match in [
        ("linf: {threat: {eps: 0.03, beta: 1}}", "linf.threat"),
        ("stadv: {threat: {}, interpreters: {cam: {outer: sideways}}}", "outer"),
        ("stadv: {baseline: {}, interpreters: {cam: {threat_options: {lr: -1}}}}", "cam.threat_options"),
        ("threat: {eps: 0.03}", "unknown field"),
    ]:
        bad.write_text(f"kind: attack\n{body}\n")
        with pytest.raises(ConfigError, match=match):
            load_attack_preset(str(bad))
