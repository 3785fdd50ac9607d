"""L∞ threat: projection, quantisation inside the ball and on the grid."""

import torch

from doublecross.threats import THREATS
from doublecross.threats.linf import quantise_linf


def test_project_and_quantise_keep_budget_and_grid():
    th = THREATS.create("linf")
    g = torch.Generator().manual_seed(0)
    x0 = torch.round(torch.rand(4, 3, 8, 8, generator=g) * 255) / 255
    v = th.project(x0, torch.randn(4, 3, 8, 8, generator=g))
    x = th.apply(x0, v)
    assert float((x - x0).abs().max()) <= th.eps + 1e-7 and float(x.min()) >= 0 and float(x.max()) <= 1
    q = th.quantise(x0, x)
    assert float((q - x0).abs().max()) <= 7 / 255 + 1e-7  # k = floor(255 * 0.031) = 7
    assert torch.equal(q, torch.round(q * 255) / 255) and float(q.min()) >= 0 and float(q.max()) <= 1
    assert torch.equal(quantise_linf(x0, x0, 0.031), x0)


def test_step_is_sign_descent():
    th = THREATS.create("linf", alpha=0.01)
    v = th.step(torch.zeros(1, 3), torch.tensor([[2.0, -0.5, 0.0]]), 0)
    torch.testing.assert_close(v, torch.tensor([[-0.01, 0.01, 0.0]]))
