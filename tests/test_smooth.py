"""Smoothed-ReLU backward surrogate (spec §2.4)."""

import contextlib

import pytest
import torch
import torch.nn.functional as F
import torchvision

from doublecross.models import Classifier, smooth_relu, smooth_relu_fn
from doublecross.models.smooth import relu_surrogate_derivative


def _logit_saliency_second_order(model, x, ctx):
    """d/dx of sum |d z_0 / dx| -- exactly zero for a piecewise-linear (ReLU) network."""
    x = x.clone().requires_grad_(True)
    with ctx:
        z = model(x)
        (g,) = torch.autograd.grad(z[:, 0].sum(), x, create_graph=True)
        (g2,) = torch.autograd.grad(g.abs().sum(), x, allow_unused=True)
    return z.detach(), torch.zeros_like(x) if g2 is None else g2


def _models():
    torch.manual_seed(0)
    rn = torchvision.models.resnet18(num_classes=5)
    dn = torchvision.models.densenet121(num_classes=5)
    return [Classifier(rn), Classifier(dn)]


@pytest.mark.parametrize("idx", [0, 1], ids=["resnet18", "densenet121"])
def test_logits_identical_and_second_order_nonzero_only_with_surrogate(idx, tiny_resnet):
    model = _models()[idx]
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    z0, g0 = _logit_saliency_second_order(model, x, contextlib.nullcontext())
    z1, g1 = _logit_saliency_second_order(model, x, smooth_relu())
    assert torch.equal(z0, z1)
    assert float(g0.abs().max()) == 0.0
    assert float(g1.abs().max()) > 0.0


def test_small_models_too(tiny_resnet, tiny_densenet):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    for m in (tiny_resnet, tiny_densenet):
        z0, g0 = _logit_saliency_second_order(m, x, contextlib.nullcontext())
        z1, g1 = _logit_saliency_second_order(m, x, smooth_relu())
        assert torch.equal(z0, z1) and float(g0.abs().max()) == 0.0 and float(g1.abs().max()) > 0


def test_functional_and_inplace_calls_are_caught():
    z = torch.tensor([-1.0, -0.005, 0.0, 0.005, 2.0], dtype=torch.float64, requires_grad=True)
    expected = relu_surrogate_derivative(z.detach())
    for fn in (
        F.relu,
        torch.relu,
        lambda t: t.relu(),
        lambda t: F.relu(t * 1, inplace=True),
        lambda t: torch.relu_(t * 1),
        lambda t: (t * 1).relu_(),
        torch.nn.ReLU(inplace=True),
    ):
        with smooth_relu():
            out = fn(z)
        (g,) = torch.autograd.grad(out.sum(), z)
        assert torch.equal(out.detach(), torch.relu(z.detach()))
        torch.testing.assert_close(g, expected)


def test_derivative_known_values():
    tau = 1e-4
    z = torch.tensor([-1.0, -0.01, 0.0, 0.01, 1.0], dtype=torch.float64)
    h = relu_surrogate_derivative(z, tau)
    s = 0.01 / (0.0001 + tau) ** 0.5
    expected = torch.tensor([1 - 1 / (1 + tau) ** 0.5, 1 - s, 0.0, s, 1 / (1 + tau) ** 0.5], dtype=torch.float64)
    torch.testing.assert_close(h, expected)
    # away from the band |z| ~ sqrt(tau) it is the ReLU derivative
    assert abs(float(h[0])) < 1e-4 and abs(float(h[-1]) - 1) < 1e-4


def _r(z):
    """The paper's smooth surrogate r(z), whose derivative is h(z)."""
    root = torch.sqrt(z * z + 1e-4)
    return torch.where(z < 0, z + root, root)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20, dtype=torch.float64, generator=g) * 0.02
    z = (z + torch.sign(z) * 1e-3).requires_grad_(True)  # away from the jump of h at 0
    v = torch.randn(20, dtype=torch.float64, generator=g).requires_grad_(True)

    def backward_of_surrogate(z, v):
        (gz,) = torch.autograd.grad(smooth_relu_fn(z, 1e-4), z, v, create_graph=True)
        return gz

    # the backward v -> v*h(z) is itself differentiable, in z and in v (double backprop)
    assert torch.autograd.gradcheck(backward_of_surrogate, (z, v))
    # and h is the derivative of r
    assert torch.autograd.gradcheck(_r, (z,))
    (h,) = torch.autograd.grad(_r(z).sum(), z)
    torch.testing.assert_close(h, relu_surrogate_derivative(z.detach(), 1e-4))


def test_bad_tau():
    with pytest.raises(ValueError, match="tau"):
        smooth_relu(tau=0.0)
    with pytest.raises(ValueError, match="tau"):
        smooth_relu_fn(torch.zeros(1), tau=float("nan"))


def test_surrogate_derivative_node_matches_op_by_op():
    """The one-node h(z) (memory-lean double backprop) has the op-by-op derivative h'(z)."""
    from doublecross.models.smooth import _SurrogateDerivative, relu_surrogate_derivative

    z = torch.linspace(-0.05, 0.05, 40, dtype=torch.double).requires_grad_(True)  # no z = 0: h jumps there
    for symmetric in (False, True):
        assert torch.autograd.gradcheck(lambda v, s=symmetric: _SurrogateDerivative.apply(v, 1e-4, s), (z,))
        w = torch.randn(40, dtype=torch.double, generator=torch.Generator().manual_seed(0))
        (ours,) = torch.autograd.grad((w * _SurrogateDerivative.apply(z, 1e-4, symmetric)).sum(), z)
        (ref,) = torch.autograd.grad((w * relu_surrogate_derivative(z, 1e-4, symmetric)).sum(), z)
        torch.testing.assert_close(ours, ref)
