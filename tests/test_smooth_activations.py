"""Every piecewise-linear activation: exact forward, smoothed backward, gradcheck of the double backward."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from doublecross.models.smooth import (
    DoubleBackwardError,
    check_double_backward,
    exact_double_backward,
    relu_surrogate_derivative,
    smooth_activations,
)

TAU = 1e-4


def h(z):
    return relu_surrogate_derivative(z, TAU)


# name -> (call under test, exact derivative away from kinks, kinks, smoothed derivative formula)
W = torch.tensor([0.25, -0.1, 0.6], dtype=torch.float64)
CASES = {
    "relu-module": (nn.ReLU(inplace=True), lambda z: (z > 0).double(), [0.0], h),
    "relu6-module": (
        nn.ReLU6(inplace=True),
        lambda z: ((z > 0) & (z < 6)).double(),
        [0.0, 6.0],
        lambda z: h(z) - h(z - 6),
    ),
    "relu6-functional": (
        lambda z: F.relu6(z),
        lambda z: ((z > 0) & (z < 6)).double(),
        [0.0, 6.0],
        lambda z: h(z) - h(z - 6),
    ),
    "leaky-module": (
        nn.LeakyReLU(0.2),
        lambda z: torch.where(z > 0, 1.0, 0.2).double(),
        [0.0],
        lambda z: 0.2 + 0.8 * h(z),
    ),
    "leaky-functional-inplace": (
        lambda z: F.leaky_relu(z * 1, 0.1, inplace=True),
        lambda z: torch.where(z > 0, 1.0, 0.1).double(),
        [0.0],
        lambda z: 0.1 + 0.9 * h(z),
    ),
    "hardtanh-module": (
        nn.Hardtanh(-2.0, 1.5),
        lambda z: ((z > -2) & (z < 1.5)).double(),
        [-2.0, 1.5],
        lambda z: h(z + 2) - h(z - 1.5),
    ),
    "hardtanh-functional": (
        lambda z: F.hardtanh(z),
        lambda z: ((z > -1) & (z < 1)).double(),
        [-1.0, 1.0],
        lambda z: h(z + 1) - h(z - 1),
    ),
    "hardsigmoid-module": (
        nn.Hardsigmoid(),
        lambda z: ((z > -3) & (z < 3)).double() / 6,
        [-3.0, 3.0],
        lambda z: (h(z + 3) - h(z - 3)) / 6,
    ),
    "hardsigmoid-functional": (
        lambda z: F.hardsigmoid(z),
        lambda z: ((z > -3) & (z < 3)).double() / 6,
        [-3.0, 3.0],
        lambda z: (h(z + 3) - h(z - 3)) / 6,
    ),
    "hardswish-module": (
        nn.Hardswish(inplace=True),
        lambda z: torch.where(z > 3, 1.0, torch.where(z < -3, 0.0, (2 * z + 3) / 6)).double(),
        [-3.0, 3.0],
        lambda z: (h(z + 3) - h(z - 3)) * (2 * z + 3) / 6 + h(z - 3),
    ),
    "hardswish-functional": (
        lambda z: F.hardswish(z),
        lambda z: torch.where(z > 3, 1.0, torch.where(z < -3, 0.0, (2 * z + 3) / 6)).double(),
        [-3.0, 3.0],
        lambda z: (h(z + 3) - h(z - 3)) * (2 * z + 3) / 6 + h(z - 3),
    ),
    "prelu-functional": (
        lambda z: F.prelu(z, W),
        lambda z: torch.where(z > 0, 1.0, W.view(1, 3, 1)).double(),
        [0.0],
        lambda z: W.view(1, 3, 1) + (1 - W.view(1, 3, 1)) * h(z),
    ),
}


def _inputs(kinks, seed=0):
    """(2, 3, 16) float64 values spread over [-8, 8] plus points within 0.02 of every kink (not on it)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(2, 3, 16, dtype=torch.float64, generator=g) * 16 - 8
    near = torch.tensor([k + d for k in kinks for d in (-0.02, -0.004, 0.003, 0.015)], dtype=torch.float64)
    z.view(-1)[: near.numel()] = near
    return z


@pytest.mark.parametrize("name", list(CASES))
def test_forward_exact_backward_smooth_and_gradcheck(name):
    fn, exact_d, kinks, smooth_d = CASES[name]
    z = _inputs(kinks).requires_grad_(True)
    plain = fn(z.detach().clone())
    with smooth_activations(TAU):
        out = fn(z)
    assert torch.equal(out.detach(), plain)  # bit-identical forward
    (g,) = torch.autograd.grad(out.sum(), z, create_graph=True)
    torch.testing.assert_close(g, smooth_d(z.detach()))
    far = torch.stack([(z.detach() - k).abs() for k in kinks]).amin(0) > 0.5
    torch.testing.assert_close(g.detach()[far], exact_d(z.detach())[far], atol=2e-4, rtol=0)
    # the backward v -> v·d(z) is itself differentiable: double backward matches finite differences
    v = torch.randn(z.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_(True)

    def backward_of(z, v):
        with smooth_activations(TAU):
            out = fn(z)
        return torch.autograd.grad(out, z, v, create_graph=True)[0]

    assert torch.autograd.gradcheck(backward_of, (z, v), eps=1e-7, atol=1e-5)
    # second-order signal exists near the kinks (ReLU-like ops have none without the surrogate)
    (gg,) = torch.autograd.grad(g.sum(), z)
    assert gg.abs().max() > 1.0


def test_prelu_module_and_weight_gradient():
    m = nn.PReLU(3, init=0.3).double()
    z = _inputs([0.0])[:, :, :, None].requires_grad_(True)  # (2, 3, 16, 1)
    with smooth_activations(TAU):
        out = m(z)
    assert torch.equal(out.detach(), F.prelu(z.detach(), m.weight.detach()))
    gz, gw = torch.autograd.grad(out.sum(), (z, m.weight))
    torch.testing.assert_close(gw, torch.clamp(z.detach(), max=0).sum(dim=(0, 2, 3)))  # exact in w
    torch.testing.assert_close(gz, 0.3 + 0.7 * h(z.detach()))


@pytest.mark.parametrize("act", [nn.SiLU(), nn.GELU(), nn.Softplus()])
def test_smooth_activations_pass_through(act):
    z = torch.linspace(-3, 3, 25, dtype=torch.float64, requires_grad=True)
    (g_ref,) = torch.autograd.grad(act(z).sum(), z)
    with smooth_activations(TAU):
        (g,) = torch.autograd.grad(act(z).sum(), z)
    assert torch.equal(g, g_ref)


def test_exact_double_backward_keeps_first_derivative():
    z = _inputs([-3.0, 3.0]).requires_grad_(True)
    (ref,) = torch.autograd.grad(F.hardsigmoid(z).sum(), z)
    with exact_double_backward():
        out = F.hardsigmoid(z)
        relu_out = F.relu(z)
    assert torch.equal(out.detach(), F.hardsigmoid(z.detach()))
    assert relu_out.grad_fn.name().startswith("Relu")  # ReLU untouched
    (g,) = torch.autograd.grad(out.sum(), z, create_graph=True)
    assert torch.equal(g.detach(), ref)
    (gg,) = torch.autograd.grad((g * z).sum(), z)  # differentiable again (PyTorch alone raises here)
    torch.testing.assert_close(gg, ref)


def test_missing_double_backward_is_named():
    z = torch.randn(5, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(F.hardsigmoid(z).sum(), z, create_graph=True)
    with pytest.raises(DoubleBackwardError, match="aten::hardsigmoid_backward"):
        check_double_backward(g, "GRAD's attack")
    with smooth_activations(TAU):
        out = F.hardsigmoid(z)
    (g,) = torch.autograd.grad(out.sum(), z, create_graph=True)
    check_double_backward(g, "GRAD's attack")  # smoothed: fine


def test_grad_interpreter_names_an_op_without_double_backward(monkeypatch):
    """GRAD's graph pass names an unsmoothed op that PyTorch cannot differentiate twice."""
    from doublecross.interpreters import create_interpreter
    from doublecross.models import Classifier, smooth

    monkeypatch.delitem(smooth.PIECEWISE_ACTIVATIONS, F.hardsigmoid)  # as if Hardsigmoid had no surrogate
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Hardsigmoid(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    grad = create_interpreter("grad", Classifier(net))
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    grad.explain(x, 0)  # the evaluation map needs first derivatives only
    with pytest.raises(DoubleBackwardError, match="aten::hardsigmoid_backward"):
        grad(x, 0)
