"""StAdv threat: warp, flow loss, Adam step rule, and the attacks that use it."""

import pytest
import torch

from doublecross.attacks import ATTACKS, AttackConfig
from doublecross.threats import THREATS
from doublecross.threats.stadv import flow_loss, warp


def _x(b=3, seed=0, size=16):
    g = torch.Generator().manual_seed(seed)
    return torch.round(torch.rand(b, 3, size, size, generator=g) * 255) / 255


def test_zero_flow_reproduces_the_input():
    x = _x(2, size=64)
    torch.testing.assert_close(warp(x, torch.zeros(2, 2, 64, 64)), x, atol=1e-6, rtol=0)


def test_integer_flow_shifts_with_border_clamp():
    x = _x(1, size=8)
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 1] = 2.0  # Δcol = +2: x_w(i, j) = x(i, min(j + 2, 7))
    cols = torch.clamp(torch.arange(8) + 2, max=7)
    torch.testing.assert_close(warp(x, flow), x[..., cols], atol=1e-5, rtol=0)
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = -1.0  # Δrow = -1
    rows = torch.clamp(torch.arange(8) - 1, min=0)
    torch.testing.assert_close(warp(x, flow), x[..., rows, :], atol=1e-5, rtol=0)


def test_half_pixel_flow_is_bilinear():
    x = _x(1, size=8)
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 1] = 0.5
    expected = (x[..., :7] + x[..., 1:]) / 2
    torch.testing.assert_close(warp(x, flow)[..., :7], expected, atol=1e-5, rtol=0)


def test_warp_gradient_and_shape_errors():
    x = _x(1, size=6).double()
    flow = (0.3 * torch.randn(1, 2, 6, 6, generator=torch.Generator().manual_seed(1))).double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: warp(x, f), (flow,))
    with pytest.raises(ValueError, match="flow must have shape"):
        warp(x, torch.zeros(1, 3, 6, 6, dtype=torch.double))


def test_flow_loss_known_answers():
    b, h, w = 2, 5, 7
    const = torch.full((b, 2, h, w), 3.0)
    # every pixel has 4 neighbours (replicate padding), each term √(0 + 1e-8) = 1e-4
    torch.testing.assert_close(flow_loss(const), torch.full((b,), 4 * h * w * 1e-4), rtol=1e-5, atol=0)
    spike = torch.zeros(1, 2, h, w)
    spike[0, 0, 2, 3] = 1.0  # one interior pixel displaced by 1: its 4 edges, each counted twice
    expected = 8 * (1 + 1e-8) ** 0.5 + (4 * h * w - 8) * 1e-4
    torch.testing.assert_close(flow_loss(spike), torch.tensor([expected]), rtol=1e-5, atol=0)
    torch.testing.assert_close(flow_loss(spike, "diagonal"), torch.tensor([expected]), rtol=1e-5, atol=0)
    edge = torch.zeros(1, 2, h, w)
    edge[0, 1, :, 3:] = 2.0  # a vertical step: 4-neighbourhood sees 2 edges per row, diagonal 4
    four = flow_loss(edge) - (4 * h * w - 2 * h) * 1e-4
    diag_cross = flow_loss(edge, "diagonal")
    assert float(four[0]) == pytest.approx(2 * h * 2.0, rel=1e-5)
    assert float(diag_cross[0]) > float(four[0])
    with pytest.raises(ValueError, match="neighbourhood"):
        flow_loss(edge, "8")


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_step_equals_torch_adam(amsgrad):
    th = THREATS.create("stadv", lr=0.01, amsgrad=amsgrad)
    x0 = _x(2)
    v = th.init(x0)
    ref = v.clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=0.01, betas=(0.9, 0.999), eps=1e-8, amsgrad=amsgrad)
    g = torch.Generator().manual_seed(3)
    for k in range(5):
        grad = torch.randn(v.shape, generator=g)
        v = th.step(v, grad, k)
        opt.zero_grad()
        ref.grad = grad.clone()
        opt.step()
        torch.testing.assert_close(v, ref.detach(), atol=1e-7, rtol=1e-6)
    th.reset()
    fresh = th.step(torch.zeros_like(v), torch.ones_like(v), 0)
    torch.testing.assert_close(fresh, torch.full_like(v, -0.01), atol=1e-7, rtol=0)  # first step of a fresh Adam


def test_threat_size_and_config():
    th = THREATS.create("stadv", tau=0.001, neighbourhood="diagonal")
    x0 = _x(2)
    v = torch.zeros(2, 2, 16, 16)
    v[:, 0] = 0.6
    v[:, 1] = 0.8
    x = th.apply(x0, v)
    size = th.size(x0, x, v)
    torch.testing.assert_close(size["flow_mean"], torch.ones(2))
    torch.testing.assert_close(size["flow_max"], torch.ones(2))
    torch.testing.assert_close(th.penalty(v), 0.001 * flow_loss(v, "diagonal"))
    assert set(size) >= {"linf", "l2", "flow_loss"} and th.magnitude(v).shape == (2, 1, 16, 16)
    assert th.config()["neighbourhood"] == "diagonal"
    with pytest.raises(ValueError, match="tau"):
        THREATS.create("stadv", tau=-1.0)


def test_regular_stadv_reaches_the_target_and_batch_equals_singles(scenes_resnet, scene_batch):
    x, y, _ = scene_batch
    x, t = x[:3], (y[:3] + 1) % 10
    attack = ATTACKS.create("pgd", threat=THREATS.create("stadv"), config=AttackConfig(n_warm=0, n_total=200))
    res = attack(scenes_resnet, x, t)
    assert res.perturbation.shape == (3, 2, 64, 64)
    assert res.success.float().mean() >= 2 / 3
    assert torch.equal(res.x_adv, torch.round(res.x_adv * 255) / 255) and float(res.x_adv.min()) >= 0
    assert float(res.size["flow_max"].max()) < 3.0  # smooth, small flows
    single = attack(scenes_resnet, x[1:2], t[1:2])
    # Adam turns float noise of batched convolutions in near-zero gradients into ±lr steps, so
    # batch and single runs agree in outcome and closely in flow, not bit for bit
    assert bool(single.success[0]) == bool(res.success[1])
    torch.testing.assert_close(single.perturbation, res.perturbation[1:2], atol=0.05, rtol=0)


@pytest.mark.parametrize("name", ["cam", "grad", "rts", "mask"])
def test_adv2_stadv_invariants(name, tiny_resnet):
    from test_interpreters_contract import make

    interp = make(name, tiny_resnet)
    x = _x(3, size=64)
    x0 = x.clone()
    t = torch.tensor([1, 2, 3])
    m_t = interp.explain(x, [0, 0, 0]).map
    extra = {"outer": "joint", "inner_lr": 0.01, "threat_options": {"lr": 0.005}} if name == "mask" else {}
    cfg = AttackConfig(n_warm=2, n_total=3, lam=5.0, n_reset=2, n_step=1, n_plain=1, check_every=1, w_prd=2.0, **extra)
    th = THREATS.create("stadv", **cfg.threat_options)
    res = ATTACKS.create(interp.attack_kind, threat=th, config=cfg, history_every=1)(tiny_resnet, x, t, interp, m_t)
    assert torch.equal(x, x0)
    assert res.perturbation.shape == (3, 2, 64, 64) and float(res.perturbation.abs().max()) > 0
    assert torch.equal(res.x_adv, torch.round(res.x_adv * 255) / 255)
    assert res.map.shape == m_t.shape and res.history and not tiny_resnet.training
    torch.testing.assert_close(res.logits, tiny_resnet(res.x_adv))


def test_piecewise_phases_restart_the_optimiser():
    cfg = AttackConfig(schedule="piecewise", phases=((0.1, 3), (0.2, 2), (0.5, 1)), n_total=6)
    assert [k for k in range(8) if cfg.phase_start(k)] == [0, 3, 5]
    assert [cfg.lam_at(k) for k in range(7)] == [0.1, 0.1, 0.1, 0.2, 0.2, 0.5, 0.5]
    assert [k for k in range(5) if AttackConfig(schedule="ramp").phase_start(k)] == [0]
