"""AID for RTS, the defences store and the report: fast invariants (spec §9 "Countermeasures")."""

import pytest
import torch

from doublecross.attacks import AttackConfig
from doublecross.defences.aid import AidConfig, iterations_to_reach, scaled, train_aid
from doublecross.defences.store import DefenceStore
from doublecross.interpreters.rts import build_rts_net, load_rts_net


def test_scaled_counts_and_config_validation():
    c = scaled(AttackConfig(n_warm=300, n_total=400), 0.5)
    assert (c.n_warm, c.n_total) == (150, 200)
    assert scaled(AttackConfig(n_warm=0, n_total=300), 0.001).n_warm == 0
    for bad in ({"rounds": 0}, {"adv_fraction": 1.0}, {"attack_scale": 0.0}):
        with pytest.raises(ValueError):
            AidConfig(**bad)


def test_iterations_to_reach():
    hist = [{"step": 0, "int": 0.3}, {"step": 10, "int": 0.1}, {"step": 20, "int": 0.05}]
    assert iterations_to_reach(hist, 0.1) == 10
    assert iterations_to_reach(hist, 0.01) is None


def test_train_aid_fine_tunes_a_copy_and_saves_a_loadable_rts(tiny_resnet, tmp_path):
    torch.manual_seed(0)
    net = build_rts_net(tiny_resnet)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(12, 3, 64, 64, generator=g), torch.randint(0, 10, (12,), generator=g)
    with torch.no_grad():
        y = tiny_resnet(x).argmax(1)  # every image "correctly classified" by the tiny model
    cfg = AidConfig(rounds=2, steps_per_round=2, batch_size=4, adv_per_round=4, attack_scale=0.01)
    out = str(tmp_path / "aid.pt")
    meta = train_aid(tiny_resnet, net, x, y, out, cfg)
    assert [r["round"] for r in meta["aid_rounds"]] == [0, 1] and meta["aid"]["rounds"] == 2
    assert all(k in meta["aid_rounds"][0] for k in ("adv2_success", "pgd_success", "pool", "loss_benign"))
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # the input net is untouched
    loaded, m = load_rts_net(out, tiny_resnet)
    changed = [k for k, v in loaded.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and m["aid_rounds"] == meta["aid_rounds"]
    with pytest.raises(FileExistsError):
        train_aid(tiny_resnet, net, x, y, out, cfg)


def test_store_round_trip_and_resume(tmp_path):
    path = str(tmp_path / "d.sqlite")
    with DefenceStore(path) as st:
        assert not st.done("squeeze", "scores")
        st.put("squeeze", "scores", {"n": 3}, 1.5, {"a": torch.arange(3.0)})
        st.put("ensemble-x", "adaptive:0", {}, 2.0)
        st.put("ensemble-x", "benign", {}, 4.0)
    with DefenceStore(path) as st:  # a new process sees the finished steps
        assert st.done("squeeze", "scores") and st.get("squeeze", "scores") == {"n": 3}
        assert torch.equal(st.array("squeeze", "scores", "a"), torch.arange(3.0))
        assert st.seconds("ensemble-x", prefix="adaptive:") == 2.0 and st.seconds("ensemble-x") == 6.0
        with pytest.raises(KeyError):
            st.get("lid", "table")
