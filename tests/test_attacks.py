"""Attack invariants, PGD oracles and behaviour on small models."""

import pytest
import torch

from doublecross.attacks import ATTACKS, AttackConfig
from doublecross.interpreters import create_interpreter
from doublecross.numerics import flush_denormal
from doublecross.threats import THREATS


def _x(b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.round(torch.rand(b, 3, 64, 64, generator=g) * 255) / 255


def test_pgd_matches_torchattacks(tiny_resnet):
    ta = pytest.importorskip("torchattacks")
    x, t = _x(), torch.tensor([1, 2, 3, 4])
    ours = ATTACKS.create("pgd", threat=THREATS.create("linf"), config=AttackConfig(n_warm=0, n_total=10))(
        tiny_resnet, x, t
    )
    ref = ta.PGD(tiny_resnet, eps=0.031, alpha=1 / 255, steps=10, random_start=False)
    ref.set_mode_targeted_by_label(quiet=True)
    theirs = ref(x, t)
    torch.testing.assert_close(ours.last, theirs, atol=1e-6, rtol=0)


def test_pgd_is_adv2_with_lambda_zero(tiny_resnet):
    x, t = _x(), torch.tensor([0, 3, 6, 9])
    th = THREATS.create("linf")
    pgd = ATTACKS.create("pgd", threat=th, config=AttackConfig(n_warm=0, n_total=12))(tiny_resnet, x, t)
    cam = create_interpreter("cam", tiny_resnet)
    adv = ATTACKS.create("adv2", threat=th, config=AttackConfig(n_warm=5, n_total=7, lam=0.0))(
        tiny_resnet, x, t, cam, cam.explain(x, t).map
    )
    torch.testing.assert_close(adv.last, pgd.last, atol=0, rtol=0)


@pytest.mark.parametrize("name", ["cam", "grad", "rts", "mask"])
def test_invariants(name, tiny_resnet):
    from test_interpreters_contract import make

    interp = make(name, tiny_resnet)
    x = _x(3)
    x0 = x.clone()
    t = torch.tensor([1, 2, 3])
    m_t = interp.explain(x, [0, 0, 0]).map
    cfg = AttackConfig(n_warm=2, n_total=3, lam=5.0, n_reset=2, n_step=1, n_plain=1, n_bs=2, check_every=1)
    res = ATTACKS.create(interp.attack_kind, threat=THREATS.create("linf"), config=cfg, history_every=1)(
        tiny_resnet, x, t, interp, m_t
    )
    assert torch.equal(x, x0)  # input untouched
    assert float((res.x_adv - x).abs().max()) <= 7 / 255 + 1e-6  # budget kept after quantisation
    assert torch.equal(res.x_adv, torch.round(res.x_adv * 255) / 255)
    assert res.success.shape == (3,) and res.success.dtype == torch.bool
    assert res.map.shape == m_t.shape and not tiny_resnet.training and not interp.training
    assert torch._C._len_torch_function_stack() == 0
    assert res.history  # recorded every step
    # success is judged on the returned (quantised) image
    torch.testing.assert_close(res.logits, tiny_resnet(res.x_adv))


def test_bad_arguments(tiny_resnet):
    cam = create_interpreter("cam", tiny_resnet)
    attack = ATTACKS.create("adv2", threat=THREATS.create("linf"), config=AttackConfig(n_warm=1, n_total=1))
    x = _x(2)
    with pytest.raises(ValueError, match="needs an interpreter"):
        attack(tiny_resnet, x, 1)
    with pytest.raises(ValueError, match="target_map must have shape"):
        attack(tiny_resnet, x, 1, cam, torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attack(tiny_resnet, x * 2, 1, cam, torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="eps and alpha"):
        THREATS.create("linf", eps=0.0)


def test_grad_attack_gradient_is_not_zero(tiny_resnet):
    """Without the surrogate the interpretation term's gradient would vanish (spec §10)."""
    grad = create_interpreter("grad", tiny_resnet, signal="logit")
    x = _x(2).requires_grad_(True)
    m_t = torch.zeros(2, 1, 16, 16)
    out = grad(x, [1, 2])
    (g,) = torch.autograd.grad((out.map - m_t).pow(2).mean(), x)
    assert float(g.abs().sum()) > 0


def test_flush_denormal_is_scoped():
    tiny = torch.tensor([1e-40])
    with flush_denormal():
        assert float(tiny * 1.0) == 0.0
    assert float(tiny * 1.0) != 0.0
