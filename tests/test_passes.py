"""No wasted passes (issue 15): classifier forwards of one ADV² unit, counted with a forward hook.

Counts are structural, so a tiny preset gives known answers. MASK with ``steps`` S costs S + 1
forwards per full run (S jittered steps and one for the logits). The tiny linf MASK unit:

    benign map                      S + 1           (before: twice, once more for the target map)
    stage 1                         n_warm
    resets: start, i = 2, final     3 (S + 1)
    stage 2, per iteration          margin 1 + plain 1 + unrolled 1 + bisection n_bs
    baseline image's map            S + 1
    attack's final evaluation       0               (before: S + 1; the final reset evaluated it)

S = 5, n_warm = 2, n_total = 4, n_bs = 2: 6 + 2 + 18 + 4·5 + 6 = 52 (before: 64).
"""

import pytest
import torch
import yaml

from doublecross.attacks import ATTACKS, AttackConfig
from doublecross.experiments import runner
from doublecross.experiments.job import JobConfig
from doublecross.experiments.runner import run_job
from doublecross.experiments.store import ResultStore
from doublecross.interpreters import create_interpreter
from doublecross.models import create_model
from doublecross.profiling import count_forwards
from doublecross.threats import THREATS

S = 5
PRESET = {
    "kind": "attack",
    "description": "tiny counting preset",
    "model": "scenes-resnet",
    "int_loss_reduction": "mean",
    "interpreter_options": {"mask": {"perturbation": "noise", "steps": S}},
    "linf": {
        "threat": {"eps": 0.0784, "alpha": 0.0078},
        "baseline": {"n_warm": 0, "n_total": 3},
        "interpreters": {
            "mask": {"n_warm": 2, "n_total": 4, "n_step": 1, "n_plain": 1, "n_reset": 2, "n_bs": 2, "kappa_bs": 0.0},
            "grad": {"n_warm": 2, "n_total": 3, "lam": 10.0, "check_every": 2},
        },
    },
    "stadv": {
        "threat": {"tau": 0.0005, "lr": 0.05},
        "baseline": {"n_warm": 0, "n_total": 3},
        "interpreters": {"mask": {"n_warm": 2, "n_total": 2, "n_step": 1, "n_plain": 1, "outer": "joint", "lam": 1.0}},
    },
}


@pytest.fixture
def preset(tmp_path):
    path = tmp_path / "count.yaml"
    path.write_text(yaml.safe_dump(PRESET))
    return str(path)


def test_count_forwards_counts_images_and_removes_its_hook():
    model = create_model("scenes-resnet")
    with torch.no_grad(), count_forwards(model) as c:
        model(torch.rand(3, 3, 64, 64))
        model(torch.rand(2, 3, 64, 64))
    assert (c.calls, c.images, c.passes(2)) == (2, 5, 2.5)
    assert not model._forward_hooks
    with pytest.raises(RuntimeError), count_forwards(model):
        raise RuntimeError("boom")
    assert not model._forward_hooks


def _counting_units(monkeypatch):
    """Wrap ``runner._adv2_unit`` so each call's classifier forwards are recorded per unit."""
    counts: dict[str, int] = {}
    real = runner._adv2_unit

    def unit(store, b, name, model, *a, **k):  # type: ignore[no-untyped-def]
        with count_forwards(model) as c:
            real(store, b, name, model, *a, **k)
        counts[name] = counts.get(name, 0) + c.images // 2
        return None

    monkeypatch.setattr(runner, "_adv2_unit", unit)
    return counts


def test_one_mask_unit_makes_the_known_number_of_passes(tmp_path, preset, monkeypatch):
    counts = _counting_units(monkeypatch)
    cfg = JobConfig.from_dict({"limit": 2, "batch_size": 2, "interpreters": ("mask",), "preset": preset})
    out = str(tmp_path / "run")
    run_job(cfg, out, progress=False)
    assert counts == {"adv2-mask": (S + 1) + 2 + 3 * (S + 1) + 4 * (3 + 2) + (S + 1)}  # 52, was 64
    store = ResultStore(f"{out}/results.sqlite")
    assert store.array(0, "adv2-mask", "adv_map").shape == (2, 1, 8, 8)
    store.close()


def test_both_threats_share_the_benign_map(tmp_path, preset, monkeypatch):
    counts = _counting_units(monkeypatch)
    cfg = JobConfig.from_dict(
        {"limit": 2, "batch_size": 2, "interpreters": ("mask",), "threats": ("linf", "stadv"), "preset": preset}
    )
    run_job(cfg, str(tmp_path / "run"), progress=False)
    # the StAdv unit (joint outer step, no bisection, n_reset 50): no benign map of its own
    assert counts["adv2-stadv-mask"] == 2 + 2 * (S + 1) + 2 * (1 + 1 + 1) + (S + 1)


@pytest.mark.parametrize("interp_name", ["grad", "mask"])
def test_exact_selection_needs_no_final_evaluation(interp_name):
    torch.manual_seed(0)
    model = create_model("scenes-resnet")
    opts = {"perturbation": "noise", "steps": S} if interp_name == "mask" else {}
    interp = create_interpreter(interp_name, model, **opts)
    x = torch.rand(2, 3, 64, 64)
    t = torch.tensor([1, 2])
    m_t = torch.full((2, 1, *interp.native_size(64, 64)), 0.5)
    cfg = PRESET["linf"]["interpreters"][interp_name]
    threat = THREATS.create("linf", eps=0.0784)
    attack = ATTACKS.create(interp.attack_kind, threat=threat, config=AttackConfig.from_dict(cfg))
    calls = {"explain": 0}
    real = interp.explain

    def explain(*a, **k):  # type: ignore[no-untyped-def]
        calls["explain"] += 1
        return real(*a, **k)

    interp.explain = explain
    res = attack(model, x, t, interp, m_t)
    n_checks = calls["explain"]
    interp.explain = real
    fresh = interp.explain(res.x_adv, t)
    assert attack.evaluated is not None
    torch.testing.assert_close(res.map, fresh.map, atol=1e-5, rtol=0)
    torch.testing.assert_close(res.logits, fresh.logits, atol=1e-4, rtol=0)
    # every explain happened inside the attack loop (its selection checks), none in __call__
    expected = {"grad": 3 // 2 + 1 + 1, "mask": 1 + 1 + 1}[interp_name]
    assert n_checks == expected
