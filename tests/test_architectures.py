"""Any CNN: automatic feature access, CAM against a hand computation, one ADV² step per interpreter.

torchvision architectures with random weights (``weights=None``, 10 classes) at 64 px and a plain
``nn.Sequential`` CNN. The heaviest architectures are marked slow; resnet18 (adapter path),
mobilenet_v3_small (MLP head, Hardswish/Hardsigmoid), convnext_tiny (LayerNorm head, GELU) and the
Sequential CNN stay in the default run.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from doublecross.attacks import ATTACKS
from doublecross.attacks.config import AttackConfig
from doublecross.attacks.losses import map_loss
from doublecross.interpreters import create_interpreter
from doublecross.interpreters.base import minmax_normalise
from doublecross.interpreters.rts import RtsInterpreter, build_rts_net
from doublecross.models import Adapter, Classifier, register_adapter, unregister_adapter
from doublecross.threats import THREATS

SIZE = 64


def sequential_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(64, 10),
    )


def _tv(name: str):  # type: ignore[no-untyped-def]
    return lambda: getattr(torchvision.models, name)(weights=None, num_classes=10)


# name -> (factory, hand computation of (A, logits) from the normalised input, head kind)
ARCHS = {
    "sequential": (sequential_cnn, lambda n, x: (n[:8](x), n(x)), "linear"),
    "resnet18": (_tv("resnet18"), None, "adapter"),
    "mobilenet_v3_small": (_tv("mobilenet_v3_small"), lambda n, x: _pool_head(n, x, n.classifier), "general"),
    "convnext_tiny": (_tv("convnext_tiny"), lambda n, x: _pool_head(n, x, n.classifier), "general"),
    "vgg11_bn": (_tv("vgg11_bn"), lambda n, x: _vgg(n, x), "general"),
    "densenet121": (_tv("densenet121"), None, "adapter"),
    "efficientnet_b0": (_tv("efficientnet_b0"), lambda n, x: _pool_head(n, x, n.classifier), "linear"),
    "regnet_y_400mf": (_tv("regnet_y_400mf"), lambda n, x: _regnet(n, x), "linear"),
}
SLOW = {"vgg11_bn", "densenet121", "efficientnet_b0", "regnet_y_400mf"}
PARAMS = [pytest.param(a, marks=pytest.mark.slow) if a in SLOW else a for a in ARCHS]


def _pool_head(net, x, classifier):  # type: ignore[no-untyped-def]
    a = net.features(x)
    p = net.avgpool(a)
    return a, classifier(p if "LayerNorm" in type(classifier[0]).__name__ else p.flatten(1))


def _vgg(net, x):  # type: ignore[no-untyped-def]
    a = net.features(x)
    return a, net.classifier(net.avgpool(a).flatten(1))


def _regnet(net, x):  # type: ignore[no-untyped-def]
    a = net.trunk_output(net.stem(x))
    return a, net.fc(net.avgpool(a).flatten(1))


_CACHE: dict[str, Classifier] = {}


def classifier(name: str) -> Classifier:
    if name not in _CACHE:
        torch.manual_seed(0)
        _CACHE[name] = Classifier(ARCHS[name][0](), input_size=(SIZE, SIZE), name=name)
    return _CACHE[name]


def _x(b: int = 1, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", PARAMS)
def test_cam_equals_hand_computation(arch):
    model = classifier(arch)
    hand, kind = ARCHS[arch][1], ARCHS[arch][2]
    assert (model.adapter is not None) == (kind == "adapter")
    if kind != "adapter":
        assert model.has_linear_head() == (kind == "linear")
    x, t = _x(2), torch.tensor([3, 7])
    cam = create_interpreter("cam", model).explain(x, t).map
    if hand is None:  # adapter fast path: A and W from the adapter
        a, _ = model.features_and_logits(x)
        w = model.linear.weight[t]
    else:
        xn = x.detach().requires_grad_(True)
        with torch.enable_grad():
            a, z = hand(model.net, model.normalise(xn))
            torch.testing.assert_close(z, model(x), rtol=1e-5, atol=1e-5)  # the hand split is the network
            if kind == "linear":
                w = model.linear.weight[t]
            else:  # the head linearised at A: Σ_ij ∂z_t/∂A_k(i, j)
                (g,) = torch.autograd.grad(z.gather(1, t[:, None]).sum(), a)
                w = g.sum(dim=(2, 3))
    expected = minmax_normalise(torch.einsum("bkhw,bk->bhw", a.detach(), w.detach())[:, None])
    assert cam.shape == expected.shape and cam.shape[-1] > 1
    torch.testing.assert_close(cam, expected, rtol=1e-4, atol=1e-4)


def _interpreter(name: str, model: Classifier):  # type: ignore[no-untyped-def]
    if name == "rts":  # untrained selector/decoder over the automatic stages
        torch.manual_seed(0)
        return RtsInterpreter(model, build_rts_net(model))
    if name == "mask":
        return create_interpreter("mask", model, steps=2, unroll=1)
    return create_interpreter(name, model)


@pytest.mark.parametrize("interp_name", ["grad", "cam", "mask", "rts"])
@pytest.mark.parametrize("arch", PARAMS)
def test_one_adv2_step_has_finite_nonzero_gradient(arch, interp_name):
    model = classifier(arch)
    interp = _interpreter(interp_name, model)
    x, t = _x(1), torch.tensor([4])
    xa = x.clone().requires_grad_(True)
    out = interp(xa, t)
    target = torch.rand(out.map.shape, generator=torch.Generator().manual_seed(2))
    lint = map_loss(out.map, target, "mean").sum()
    loss = F.cross_entropy(out.logits, t) + lint + sum(v.sum() for v in interp.attack_terms(out, t).values())
    g_int, g_all = torch.autograd.grad(lint, xa, retain_graph=True)[0], torch.autograd.grad(loss, xa)[0]
    for g in (g_int, g_all):
        assert torch.isfinite(g).all()
        assert float(g.abs().max()) > 0, f"{arch}/{interp_name}: zero gradient"
    step = (x - g_all.sign() / 255).clamp(0, 1)  # the L∞ step ADV² takes with this gradient
    assert float((step - x).abs().max()) > 0


ATTACK_PARAMS = [a if a == "sequential" else pytest.param(a, marks=pytest.mark.slow) for a in ARCHS]


@pytest.mark.parametrize("interp_name", ["grad", "cam", "mask", "rts"])
@pytest.mark.parametrize("arch", ATTACK_PARAMS)
def test_attack_runs_one_step(arch, interp_name):
    """The registered ADV² attack (adv2 / adv2-bilevel for MASK) runs one stage-2 step end to end."""
    model = classifier(arch)
    interp = _interpreter(interp_name, model)
    x, t = _x(1), torch.tensor([4])
    target = torch.rand(interp(x, t).map.shape, generator=torch.Generator().manual_seed(2))
    cfg = AttackConfig(n_warm=0, n_total=1, lam=1.0, n_reset=1, n_step=1, n_plain=0, n_bs=1, check_every=1)
    res = ATTACKS.create(interp.attack_kind, threat=THREATS.create("linf"), config=cfg)(model, x, t, interp, target)
    assert torch.isfinite(res.last).all() and res.last.shape == x.shape
    assert float((res.last - x).abs().max()) > 0


def test_split_names_the_layers():
    split = classifier("sequential").feature_split()
    assert split.feature == ("7", 0) and split.head == "11"
    assert [k[0] for k in split.stages] == ["1", "4", "7"]  # last map at 64, 32 and 16 px
    conv = classifier("convnext_tiny").feature_split()
    assert conv.feature == ("features", 0) and conv.head is None
    assert "LayerNorm2d" in conv.describe()


def test_automatic_split_matches_the_resnet_adapter():
    """The probe finds what the hand-written ResNet adapter hard-codes (layer4, per-resolution stages)."""
    model = classifier("resnet18")
    split = model.feature_split()
    assert split.feature == ("layer4", 0) and split.head == "fc"
    assert [k[0] for k in split.stages] == ["relu", "layer1", "layer2", "layer3", "layer4"]
    x = _x(2)
    auto = Classifier(model.net, input_size=(SIZE, SIZE))
    auto.adapter = None  # force the automatic path
    (fa, za), (fb, zb) = auto.features_and_logits(x), model.features_and_logits(x)
    torch.testing.assert_close(fa, fb)
    torch.testing.assert_close(za, zb, rtol=1e-5, atol=1e-5)
    sa, _ = auto.stages_and_logits(x)
    sb, _ = model.stages_and_logits(x)
    assert [s.shape for s in sa[1:]] == [s.shape for s in sb]  # the adapter starts after the stem's maxpool
    for a, b in zip(sa[1:], sb, strict=True):
        torch.testing.assert_close(a, b)


def test_hooks_are_removed_and_input_untouched():
    model = classifier("sequential")
    x = _x(2)
    before = x.clone()
    model.features_and_logits(x)
    model.stages_and_logits(x)
    assert torch.equal(x, before)
    assert all(not m._forward_hooks for m in model.net.modules())


def test_registered_adapter_takes_precedence():
    calls = []

    def features(net, x):  # type: ignore[no-untyped-def]
        calls.append(1)
        return net[:8](x)

    adapter = Adapter(
        "test-seq",
        lambda n: isinstance(n, nn.Sequential) and len(n) == 12,
        features,
        lambda n: n[11],
        lambda n, x: [features(n, x)],
    )
    register_adapter(adapter)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_adapter(adapter)
        torch.manual_seed(0)
        model = Classifier(sequential_cnn(), input_size=(SIZE, SIZE))
        assert model.adapter is adapter
        model.features_and_logits(_x())
        assert calls
    finally:
        unregister_adapter("test-seq")
    assert Classifier(sequential_cnn()).adapter is None
