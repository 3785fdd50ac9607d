"""Issue 15, MASK within 15× a PGD step: the exact savings (lean double backward, one ``prepare`` for the
unrolled steps) equal the previous algorithm up to float rounding; the cost options count their passes."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from doublecross.attacks import ATTACKS, AttackConfig
from doublecross.attacks.losses import map_loss
from doublecross.interpreters import create_interpreter
from doublecross.interpreters.mask import MaskInterpreter
from doublecross.models import create_model
from doublecross.models.lean_backward import lean_double_backward
from doublecross.threats import THREATS


@pytest.fixture(scope="module")
def model():
    return create_model("scenes-resnet")


class _Net(nn.Module):
    """Strided, dilated, grouped and biased convolutions with eval-mode batch norm, odd input size."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, bias=False)
        self.bn2 = nn.BatchNorm2d(8, affine=False)
        self.c3 = nn.Conv2d(8, 6, 2, stride=2)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        x = F.relu(self.bn1(self.c1(x)))
        x = torch.tanh(self.bn2(self.c2(x)))  # tanh: a non-zero second derivative along the forward path
        return self.fc(self.c3(x).mean(dim=(2, 3)))


def _frozen_net() -> nn.Module:
    torch.manual_seed(0)
    net = _Net()
    with torch.no_grad():
        for bn in (net.bn1, net.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    net.bn1.weight.data.uniform_(0.5, 1.5)
    return net.eval().requires_grad_(False)


class _Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.counts[name] = self.counts.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


def _double_backprop(net: nn.Module, x: torch.Tensor, lean: bool):
    xr = x.clone().requires_grad_(True)
    with lean_double_backward() if lean else torch.enable_grad():
        z = net(xr)
        (g,) = torch.autograd.grad(F.softmax(z, 1)[:, 1].sum(), xr, create_graph=True)
    ops = _Ops()
    with ops:
        (h,) = torch.autograd.grad((g * g).sum() * 1e4, xr)
    return z, g, h, ops.counts


def test_lean_double_backward_equals_pytorchs_and_skips_the_weight_terms():
    net = _frozen_net()
    x = torch.rand(3, 3, 9, 11, generator=torch.Generator().manual_seed(1))
    z0, g0, h0, ops0 = _double_backprop(net, x, lean=False)
    z1, g1, h1, ops1 = _double_backprop(net, x, lean=True)
    assert torch.equal(z0, z1)  # the forwards are PyTorch's own
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(h1, h0, rtol=1e-4, atol=1e-7)
    assert h0.abs().max() > 1e-4  # a real second-order signal
    # PyTorch: per conv the input term, the discarded weight term and the forward path's backward;
    # lean: the weight term is gone, 2 convolution-family calls per conv (3 convs here)
    conv0 = ops0.get("convolution", 0) + ops0.get("convolution_backward", 0)
    conv1 = ops1.get("convolution", 0) + ops1.get("convolution_backward", 0)
    assert conv1 == 2 * 3 and conv0 >= conv1 + 3, (ops0, ops1)
    assert ops1.get("native_batch_norm_backward", 0) == 0


def test_lean_double_backward_passes_trainable_and_training_layers_through():
    net = _Net().train()  # trainable weights, training-mode batch norm: PyTorch's own nodes
    x = torch.rand(2, 3, 9, 9, requires_grad=True)
    with lean_double_backward():
        z = net.c1(x)
        b = net.bn1(z)
        s = F.conv2d(x, net.c1.weight.detach(), padding="same")  # string padding
    assert "Convolution" in z.grad_fn.name() and "BatchNorm" in b.grad_fn.name() and "Convolution" in s.grad_fn.name()
    net.eval().requires_grad_(False)
    with lean_double_backward():
        z = net.c1(x)
        assert "Frozen" in z.grad_fn.name() and "EvalBatchNorm" in net.bn1(z).grad_fn.name()
        assert net.c1(x.detach()).grad_fn is None  # nothing to differentiate: plain conv


def _meta_gradient_before(mask: MaskInterpreter, x0, t, state, m_t, n_step: int) -> torch.Tensor:
    """The previous algorithm: one ``run`` per unrolled step (each re-preparing x), PyTorch's double backward."""
    gen = torch.Generator().manual_seed(3)
    rg = torch.zeros_like(x0).requires_grad_(True)
    xg = x0 + rg
    st, dists = state.detach(), []
    keep = MaskInterpreter.lean_backward
    mask.lean_backward = False
    try:
        for j in range(n_step):
            st = mask.run(xg, t, st, 0, 1, gen, keep_state_graph=j > 0)
            dists.append(map_loss(1 - st.m, m_t, "mean"))
    finally:
        mask.lean_backward = keep
    (h,) = torch.autograd.grad(torch.stack(dists).mean(0).sum(), rg)
    return h


def _meta_gradient_now(mask: MaskInterpreter, x0, t, state, m_t, n_step: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    rg = torch.zeros_like(x0).requires_grad_(True)
    dists: list[torch.Tensor] = []
    mask.run(x0 + rg, t, state, 0, n_step, gen, on_step=lambda s: dists.append(map_loss(1 - s.m, m_t, "mean")))
    (h,) = torch.autograd.grad(torch.stack(dists).mean(0).sum(), rg)
    return h


def test_unrolled_meta_gradient_equals_the_previous_algorithm(model):
    torch.manual_seed(0)
    x0 = torch.round(torch.rand(2, 3, 64, 64) * 255) / 255
    t = torch.tensor([1, 4])
    mask = create_interpreter("mask", model, perturbation="noise", tv=1e-3, steps=6)
    state = mask.run(x0, t, None, 6, 0, torch.Generator().manual_seed(2))
    m_t = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    before = _meta_gradient_before(mask, x0, t, state, m_t, 3)
    now = _meta_gradient_now(mask, x0, t, state, m_t, 3)
    assert before.abs().max() > 1e-6
    torch.testing.assert_close(now, before, rtol=1e-4, atol=1e-5 * before.abs().max().item())


def test_adv2_mask_iterations_equal_the_previous_algorithm(model, monkeypatch):
    """A few full iterations (margin step, plain and unrolled steps, bisection, a reset) before and after."""
    torch.manual_seed(0)
    x = torch.round(torch.rand(2, 3, 64, 64) * 255) / 255
    t = torch.tensor([1, 2])
    mask = create_interpreter("mask", model, perturbation="noise", tv=1e-3, steps=6)
    m_t = torch.full((2, 1, 8, 8), 0.3)
    cfg = AttackConfig(n_warm=2, warm_loss="margin", n_total=4, n_step=2, n_plain=1, n_reset=3, n_bs=4, alpha_max=0.3,
                       kappa_bs=0.0)  # fmt: skip
    run = MaskInterpreter.run
    out = []
    for lean in (False, True):
        monkeypatch.setattr(MaskInterpreter, "lean_backward", lean)
        if not lean:  # the old unrolled loop: one run per step, each with its own prepare

            def stepwise(self, x, t, state, steps, unroll, gen, keep_state_graph=False, lr=None, on_step=None):
                if on_step is None or unroll == 0:
                    return run(self, x, t, state, steps, unroll, gen, keep_state_graph, lr)
                st = state
                for j in range(unroll):
                    st = run(self, x, t, st, 0, 1, gen, keep_state_graph=j > 0, lr=lr)
                    on_step(st)
                return st

            monkeypatch.setattr(MaskInterpreter, "run", stepwise)
        else:
            monkeypatch.setattr(MaskInterpreter, "run", run)
        attack = ATTACKS.create("adv2-bilevel", threat=THREATS.create("linf", eps=0.0784), config=cfg)
        out.append(attack(model, x, t, mask, m_t))
    a, b = out
    torch.testing.assert_close(b.x_adv, a.x_adv, rtol=0, atol=1e-6)
    torch.testing.assert_close(b.map, a.map, rtol=0, atol=1e-4)


def test_paper_fast_cost_preset_sets_its_fields_and_leaves_the_paper_preset_alone():
    from doublecross.attacks.config import COST_PRESETS
    from doublecross.attacks.presets import load_attack_preset
    from doublecross.config import ConfigError

    paper = load_attack_preset("table10-resnet50").for_threat("linf").for_interpreter("mask")
    assert (paper.cost, paper.bisection, paper.reset_steps, paper.n_plain, paper.n_step, paper.n_bs) == (
        "spec", "full", None, 4, 4, 12)  # fmt: skip
    fast = load_attack_preset("table10-resnet50", overrides=["linf.mask.cost=paper-fast"])
    cfg = fast.for_threat("linf").for_interpreter("mask")
    assert (cfg.cost, cfg.bisection, cfg.reset_steps, cfg.n_plain) == ("paper-fast", "bracket", 20, 0)
    assert (cfg.n_total, cfg.n_step, cfg.n_reset, cfg.n_bs) == (1000, 4, 50, 12)  # the paper's counts otherwise
    assert COST_PRESETS["paper-fast"] == {"bisection": "bracket", "reset_steps": 20, "n_plain": 0}
    with pytest.raises(ConfigError, match="paper-fast"):
        AttackConfig.from_dict({"cost": "fast"})


def test_paper_fast_makes_the_known_number_of_passes(model):
    """Warm start 2 + start-up run (S + 1) + 4 iterations × (margin 1 + unrolled 1 + one bracket test)
    + one warm reset (K + 1) + final run (S + 1) + the re-check's full run (S + 1); no plain steps."""
    from doublecross.profiling import count_forwards

    s, k = 5, 20
    torch.manual_seed(0)
    x, t = torch.round(torch.rand(2, 3, 64, 64) * 255) / 255, torch.tensor([1, 2])
    mask = create_interpreter("mask", model, perturbation="noise", steps=s)
    cfg = AttackConfig.from_dict({"cost": "paper-fast", "n_warm": 2, "warm_loss": "margin", "n_total": 4,
                                  "n_step": 1, "n_reset": 2, "alpha_max": 0.01, "kappa_bs": -1e9})  # fmt: skip
    attack = ATTACKS.create("adv2-bilevel", threat=THREATS.create("linf", eps=0.0784), config=cfg)
    with count_forwards(model) as c:
        attack.run(model, mask, x, t, torch.full((2, 1, 8, 8), 0.5))
    assert c.calls == 2 + (s + 1) + 4 * 3 + (k + 1) + 2 * (s + 1)
    assert c.images == 2 * c.calls


def test_bench_amortises_every_full_run_and_reset():
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
    try:
        from _mask_cost import reset_cost
    finally:
        sys.path.pop(0)
    paper = {"n_total": 1000, "n_reset": 50}
    # spec: start-up + 19 resets inside (i = 50 ... 950) + final = 21 full runs of S = 300 inner steps + 1 forward
    assert reset_cost(paper, 300, inner=1.0, fwd=0.5) == pytest.approx(21 * 300.5 / 1000)
    # warm: 19 warm resets of K = 20 steps + 1 forward; full runs: start-up, final, re-check
    assert reset_cost({**paper, "reset_steps": 20}, 300, inner=1.0, fwd=0.5) == pytest.approx(
        (3 * 300.5 + 19 * 20.5) / 1000
    )
    assert reset_cost({"n_total": 100, "n_reset": 10}, 100, inner=1.0, fwd=0.0) == pytest.approx(11 * 100 / 100)


def test_report_settings_show_the_runs_cost_options():
    from doublecross.report.settings import resolved_settings

    base = {"preset": "scenes-resnet", "threats": ["linf"], "interpreters": ["mask"]}
    rows, _ = resolved_settings(base)
    spec = next(r for r in rows if r["attack"] == "mask")["attack parameters"]
    assert "n_plain 2" in spec and "cost spec" in spec and "bisection full" in spec
    assert "reset_steps" not in spec and "n_bracket" not in spec
    rows, _ = resolved_settings({**base, "overrides": ["linf.mask.cost=paper-fast"], "steps_scale": 0.5})
    fast = next(r for r in rows if r["attack"] == "mask")["attack parameters"]
    for part in ("n_plain 0", "cost paper-fast", "bisection bracket", "n_bracket 3", "reset_steps 20", "n_total 50"):
        assert part in fast, (part, fast)
