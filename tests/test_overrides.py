"""--steps-scale and --set on attack presets; the default preset for a model without --preset."""

import pytest

from doublecross.attacks.generic import default_preset, generic_preset
from doublecross.attacks.overrides import apply_overrides, parse_set, scale_count
from doublecross.attacks.presets import load_attack_preset
from doublecross.config import ConfigError, load_preset_dict


def test_steps_scale_scales_every_count_and_keeps_cadences():
    full = load_attack_preset("authors-resnet50")
    short = load_attack_preset("authors-resnet50", steps_scale=0.05)
    for threat in ("linf", "stadv"):
        a, b = full.for_threat(threat), short.for_threat(threat)
        assert b.baseline.n_total == scale_count(a.baseline.n_total, 0.05) and b.baseline.n_warm == 0
        for name, cfg in a.interpreters.items():
            s = b.for_interpreter(name)
            assert s.n_warm == max(1, round(0.05 * cfg.n_warm)) and s.n_total == max(1, round(0.05 * cfg.n_total))
            assert (s.check_every, s.n_reset, s.n_step, s.lam) == (cfg.check_every, cfg.n_reset, cfg.n_step, cfg.lam)
    grad = short.for_threat("linf").for_interpreter("grad")  # piecewise: phases scaled, n_total = their sum
    assert [n for _, n in grad.phases] == [15, 10, 5, 5] and grad.n_total == 35
    assert scale_count(0, 0.01) == 0 and scale_count(3, 0.01) == 1
    raw = load_preset_dict("authors-resnet50")
    apply_overrides(raw, ["linf.grad.n_total=5"], 0.5, ("linf", "stadv"))
    assert raw == load_preset_dict("authors-resnet50")  # the input mapping is untouched
    with pytest.raises(ConfigError, match="steps scale"):
        load_attack_preset("authors-resnet50", steps_scale=0)


def test_set_paths_and_values():
    p = load_attack_preset(
        "table10-resnet50",
        [
            "linf.grad.n_total=50",
            "linf.interpreters.cam.lam=0.5",
            "linf.baseline.n_total=20",
            "linf.threat.eps=0.0157",
            "linf.rts.extra.encoder=0.2",
            "interpreter_options.mask.steps=7",
            "int_loss_reduction=mean",
        ],
        steps_scale=0.1,
    )
    s = p.for_threat("linf")
    assert s.for_interpreter("grad").n_total == 50  # --set wins over --steps-scale
    assert s.for_interpreter("grad").n_warm == 30
    assert s.for_interpreter("cam").lam == 0.5 and s.baseline.n_total == 20 and s.params["eps"] == 0.0157
    assert s.for_interpreter("rts").extra == {"encoder": 0.2}
    assert p.interpreter_options["mask"] == {"steps": 7} and p.interpreter_options["rts"] == {"kappa": 6.0}
    assert p.reduction == "mean"
    assert parse_set("linf.cam.phases=[[1, 2], [3, 4]]") == (["linf", "cam", "phases"], [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "item, match",
    [
        ("linf.grad.n_totl=5", "no field 'n_totl'.*n_total"),
        ("linf.gradd.n_total=5", "no interpreter 'gradd'.*grad, cam"),
        ("stadv.grad.n_total=5", "no stadv block"),
        ("foo.grad.n_total=5", "unknown first component 'foo'"),
        ("interpreter_options.mask.stepz=3", "no option 'stepz'"),
        ("linf.grad.n_total", "PATH=VALUE"),
        ("linf.grad.n_total=-3", "n_total: must be >= 0"),
        ("linf.grad.n_total=abc", "expected int"),
        ("linf.threat.epz=1", "linf.threat"),
        ("linf.grad.lam.x=1", "takes no sub-key"),
    ],
)
def test_set_errors_name_the_field(item, match):
    with pytest.raises(ConfigError, match=match):
        load_attack_preset("table10-resnet50", [item])


def test_default_preset():
    assert default_preset("scenes-resnet", 64) == "scenes-resnet"
    assert default_preset("resnet50", None) == "table10-resnet50"
    assert default_preset("my.py:net", 32) == "generic-small" == generic_preset(96)
    assert default_preset("my.py:net", 224) == "generic" == generic_preset(97)
    for name in ("generic", "generic-small"):
        p = load_attack_preset(name)
        assert p.model == "" and set(p.threats) == {"linf", "stadv"}
        assert p.for_threat("linf").params["eps"] == 0.031  # the paper's budget
