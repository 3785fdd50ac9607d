"""The interpreter contract, over every registered interpreter (spec §3.0)."""

import pytest
import torch

from doublecross.interpreters import INTERPRETERS, create_interpreter
from doublecross.interpreters.rts import RtsInterpreter, build_rts_net

NAMES = INTERPRETERS.names()
FAST = {"mask": {"steps": 3, "unroll": 2}, "smoothgrad": {"samples": 3}, "ig": {"steps": 3}}  # few steps/samples
# the contract also runs over MASK's other deletion baselines (name:perturbation)
VARIANTS = [*NAMES, "mask:constant", "mask:noise", "gradcam:-2", "gradcam++:-2", "ig:blur"]


def make(name, model):
    name, _, perturbation = name.partition(":")
    if name == "rts":  # an untrained masking network is enough for the contract
        torch.manual_seed(0)
        return RtsInterpreter(model, build_rts_net(model))
    if name == "ensemble":  # GRAD's 16x16 map and CAM's 8x8 one (upsampled), side by side
        return create_interpreter("ensemble", model, members="grad,cam")
    extra = {}
    if perturbation and name == "mask":
        extra = {"perturbation": perturbation}
    elif perturbation and name == "ig":
        extra = {"baseline": perturbation}
    elif perturbation:  # Grad-CAM at an earlier feature map
        extra = {"layer": int(perturbation)}
    return create_interpreter(name, model, **FAST.get(name, {}), **extra)


@pytest.fixture(params=["tiny_resnet", "tiny_densenet"])
def model(request):
    return request.getfixturevalue(request.param)


def _x(b=3, seed=0):
    return torch.rand(b, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_all_registered():
    expected = {"grad", "cam", "mask", "rts", "gradcam", "gradcam++", "smoothgrad", "ig", "input-x-grad", "ensemble"}
    assert set(NAMES) == expected


@pytest.mark.parametrize("name", VARIANTS)
def test_shape_range_finite_and_native_size(name, model):
    interp = make(name, model)
    out = interp.explain(_x(), [1, 2, 3])
    h, w = interp.native_size(64, 64)
    assert out.map.shape == (3, 1, h, w) and out.logits.shape == (3, 10)
    assert torch.isfinite(out.map).all() and float(out.map.min()) >= 0 and float(out.map.max()) <= 1
    expected = {"grad": (16, 16), "cam": (8, 8), "mask": (8, 8), "rts": (16, 16), "gradcam": (8, 8)}
    expected.update({"gradcam++": (8, 8), "smoothgrad": (16, 16), "ig": (16, 16), "input-x-grad": (16, 16)})
    expected.update({"gradcam:-2": (16, 16), "gradcam++:-2": (16, 16), "ensemble": (16, 32)})
    expected = expected.get(name, expected[name.partition(":")[0]])
    assert (h, w) == expected
    torch.testing.assert_close(out.logits, model(_x()))


@pytest.mark.parametrize("name", VARIANTS)
def test_gradient_reaches_input_with_grad_and_no_graph_under_explain(name, model):
    interp = make(name, model)
    x = _x().requires_grad_(True)
    out = interp(x, 4)
    assert out.map.requires_grad  # the graph-mode map (GRAD's surrogate, MASK's unrolled steps) keeps the contract
    assert torch.isfinite(out.map).all() and float(out.map.min()) >= 0 and float(out.map.max()) <= 1
    (g,) = torch.autograd.grad(out.map.pow(2).sum(), x)
    assert torch.isfinite(g).all() and float(g.abs().sum()) > 0
    ex = interp.explain(x, 4)
    assert ex.map.grad_fn is None and not ex.map.requires_grad and not ex.logits.requires_grad
    with torch.no_grad():
        ng = interp(_x(), 4)
    assert ng.map.grad_fn is None


@pytest.mark.parametrize("name", VARIANTS)
def test_input_not_mutated_and_no_hooks_or_modes_left(name, model):
    interp = make(name, model)
    x = _x()
    x0 = x.clone()
    interp(x.requires_grad_(True), 0)
    assert torch.equal(x.detach(), x0)
    interp.explain(x, 0)
    assert torch.equal(x.detach(), x0)

    def no_hooks():
        for m in interp.modules():
            assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        assert torch._C._len_torch_function_stack() == 0

    no_hooks()
    original = model.net.fc.forward
    model.net.fc.forward = lambda *a: (_ for _ in ()).throw(RuntimeError("boom"))
    try:
        with pytest.raises(RuntimeError, match="boom"):
            interp(_x().requires_grad_(True), 0)
    finally:
        model.net.fc.forward = original
    no_hooks()
    torch.testing.assert_close(model(_x()), interp.explain(_x(), 0).logits)


@pytest.mark.parametrize("name", VARIANTS)
def test_batch_equals_singles_and_deterministic(name, model):
    interp = make(name, model)
    x, t = _x(4, seed=3), torch.tensor([0, 5, 9, 2])
    batch = interp.explain(x, t).map
    singles = torch.cat([interp.explain(x[i : i + 1], int(t[i])).map for i in range(4)])
    torch.testing.assert_close(batch, singles, atol=2e-5, rtol=1e-4)
    assert torch.equal(batch, interp.explain(x, t).map)


@pytest.mark.parametrize("name", VARIANTS)
def test_target_forms_agree_and_bad_targets_fail(name, model):
    interp = make(name, model)
    x = _x(2)
    a = interp.explain(x, 3).map
    torch.testing.assert_close(a, interp.explain(x, [3, 3]).map)
    torch.testing.assert_close(a, interp.explain(x, torch.tensor([3, 3])).map)
    with pytest.raises(ValueError, match="one class per image"):
        interp.explain(x, [1, 2, 3])
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        interp.explain(x, 10)
    with pytest.raises(TypeError, match="integers"):
        interp.explain(x, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interp.explain(x * 3, 1)


def test_constant_maps_give_zeros_not_nan():
    from doublecross.interpreters import minmax_normalise

    out = minmax_normalise(torch.full((2, 1, 4, 4), 0.7))
    assert torch.equal(out, torch.zeros(2, 1, 4, 4))
    a = torch.arange(16.0).view(1, 1, 4, 4)
    torch.testing.assert_close(minmax_normalise(a), a / 15)
