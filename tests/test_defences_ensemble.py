"""Ensemble interpretation: montage, inconsistency known answers, and the adaptive ADV² (spec §9)."""

import pytest
import torch

from doublecross.attacks import ATTACKS, AttackConfig
from doublecross.interpreters import create_interpreter
from doublecross.interpreters.ensemble import EnsembleInterpreter, EnsembleState, inconsistency
from doublecross.interpreters.rts import RtsInterpreter, build_rts_net
from doublecross.threats import THREATS


def _ens(model, **kw):
    torch.manual_seed(0)
    members = {"cam": create_interpreter("cam", model), "rts": RtsInterpreter(model, build_rts_net(model))}
    return EnsembleInterpreter(model, members, **kw)


def test_inconsistency_known_answers():
    a = torch.zeros(1, 1, 2, 5)
    a[0, 0, 0, :2] = 1.0  # top-20 % of 10 cells = 2 cells: (0,0), (0,1)
    b = torch.zeros(1, 1, 2, 5)
    b[0, 0, 1, 3:] = 1.0  # disjoint top cells
    c = torch.zeros(1, 1, 2, 5)
    c[0, 0, 0, 1:3] = 1.0  # shares one of two cells with a: IoU 1/3
    assert float(inconsistency([a, a])) == 0.0
    assert float(inconsistency([a, b])) == 1.0
    assert float(inconsistency([a, c])) == pytest.approx(2 / 3)
    assert float(inconsistency([a, b, c])) == pytest.approx((1 + 2 / 3 + 1) / 3)
    with pytest.raises(ValueError, match="two maps"):
        inconsistency([a])


def test_montage_split_distance_and_terms(tiny_resnet):
    ens = _ens(tiny_resnet, weights={"cam": 2.0, "rts": 0.5})
    assert ens.native_size(64, 64) == (16, 32)  # rts 16x16 and cam 8x8 upsampled, side by side
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    out = ens.explain(x, [1, 2])
    assert out.map.shape == (2, 1, 16, 32) and float(out.map.min()) >= 0 and float(out.map.max()) <= 1
    tiles = ens.members_of(out.map)
    torch.testing.assert_close(tiles["rts"], ens.members["rts"].explain(x, [1, 2]).map)
    target = torch.rand_like(out.map)
    tt = ens.members_of(target)
    expected = 2.0 * (tiles["cam"] - tt["cam"]).pow(2).mean((1, 2, 3)) + 0.5 * (tiles["rts"] - tt["rts"]).pow(2).mean(
        (1, 2, 3)
    )
    torch.testing.assert_close(ens.map_distance(out.map, target), expected)
    assert set(ens.attack_terms(out, torch.tensor([1, 2]))) == {"rts.encoder"}
    assert float(ens.inconsistency(out).min()) >= 0


def test_bad_ensembles_fail(tiny_resnet, tiny_densenet):
    cam = create_interpreter("cam", tiny_resnet)
    with pytest.raises(ValueError, match="at least two"):
        EnsembleInterpreter(tiny_resnet, {"cam": cam})
    with pytest.raises(ValueError, match="same model"):
        EnsembleInterpreter(tiny_resnet, {"cam": cam, "grad": create_interpreter("grad", tiny_densenet)})
    with pytest.raises(ValueError, match="unknown members"):
        EnsembleInterpreter(tiny_resnet, {"cam": cam, "grad": create_interpreter("grad", tiny_resnet)}, {"mask": 1})
    with pytest.raises(ValueError, match="repeat"):
        create_interpreter("ensemble", tiny_resnet, members="cam,cam")
    with pytest.raises(ValueError, match="ensemble"):
        create_interpreter("ensemble", tiny_resnet, members="cam,ensemble")


def test_adaptive_attack_reduces_the_summed_interpretation_loss(tiny_resnet):
    ens = _ens(tiny_resnet, weights={"cam": 1.0, "rts": 1.0})
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    x0 = x.clone()
    t = torch.tensor([1, 2, 3])
    target = ens.explain(torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(2)), t).map
    before = ens.map_distance(ens.explain(x, t).map, target)
    cfg = AttackConfig(n_warm=0, n_total=15, lam=1.0, w_prd=0.0)
    threat = THREATS.create("linf", eps=16 / 255, alpha=1 / 255)
    res = ATTACKS.create("adv2", threat=threat, config=cfg)(tiny_resnet, x, t, ens, target)
    after = ens.map_distance(ens.explain(res.last, t).map, target)
    assert float(after.sum()) < 0.9 * float(before.sum())
    assert torch.equal(x, x0) and float((res.x_adv - x0).abs().max()) <= 16 / 255 + 1e-6


def test_mask_member_carries_its_running_mask(tiny_resnet):
    mask = create_interpreter("mask", tiny_resnet, steps=4, unroll=1)
    ens = EnsembleInterpreter(tiny_resnet, {"cam": create_interpreter("cam", tiny_resnet), "mask": mask})
    assert ens.carries_state and ens.selection == "exact"
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
    first = ens(x, [0, 1])
    assert isinstance(first.state, EnsembleState) and "mask" in first.state.members
    second = ens(x, [0, 1], first.state.detach())  # warm start: a few plain + unrolled inner steps
    (g,) = torch.autograd.grad(second.map.sum(), x)
    assert torch.isfinite(g).all() and float(g.abs().sum()) > 0
    cfg = AttackConfig(n_warm=1, n_total=2, lam=1.0, check_every=1)
    threat = THREATS.create("linf", eps=8 / 255, alpha=1 / 255)
    xd = x.detach()
    res = ATTACKS.create("adv2", threat=threat, config=cfg)(tiny_resnet, xd, [0, 1], ens, ens.explain(xd, [2, 3]).map)
    assert res.map.shape == (2, 1, 8, 16) and torch.isfinite(res.map).all()
