"""Interpreter settings at small input sizes: MASK deletes at 32 px, RTS decodes shallow encoders."""

import torch
from torch import nn

from doublecross.interpreters import create_interpreter
from doublecross.interpreters.rts import RtsInterpreter, build_rts_net, encoder_stages
from doublecross.models import Classifier


def _garment(size: int) -> torch.Tensor:
    """A 20×20 garment with 2 px stripes (0.9 / 0.3) on black, centred (Fashion-MNIST-like)."""
    x = torch.zeros(1, 3, size, size)
    lo = (size - 20) // 2
    stripes = torch.tensor([0.9, 0.9, 0.3, 0.3]).repeat(5)
    x[..., lo : lo + 20, lo : lo + 20] = stripes.view(1, 1, 1, 20)
    return x


def _cnn(pools: int) -> Classifier:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    cin = 3
    for i in range(3):
        layers += [nn.Conv2d(cin, 16 * (i + 1), 3, padding=1), nn.ReLU()]
        if i < pools:
            layers.append(nn.MaxPool2d(2))
        cin = 16 * (i + 1)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return Classifier(nn.Sequential(*layers), input_size=(32, 32), normalise=False)


def test_mask_blur_deletes_at_32_px_and_keeps_the_spec_blur_from_64(tiny_resnet):
    mask = create_interpreter("mask", tiny_resnet)
    assert mask.perturbation == "auto" and mask.perturbation_at(32) == "blur"
    assert mask.blur_sigma_at(32) == 2.0 and mask.blur_sigma_at(28) == 2.0  # spec: 0.5 and 0.44 px
    assert mask.blur_sigma_at(64) == 1.0 and mask.blur_sigma_at(224) == 3.5  # the spec's from 64 px up
    spec = create_interpreter("mask", tiny_resnet, perturbation="blur")
    assert spec.blur_sigma_at(32) == 0.5  # an explicit blur keeps the spec's σ
    assert create_interpreter("mask", tiny_resnet, blur_sigma=3.0).blur_sigma_at(32) == 3.0
    x = _garment(32)
    inside = (slice(None), slice(None), slice(9, 25), slice(9, 25))
    up, b, _ = mask.prepare(x)
    deleted = float((up - b)[inside].abs().mean())
    up2, b2, _ = spec.prepare(x)
    kept = float((up2 - b2)[inside].abs().mean())
    assert kept < 0.1  # σ = 0.5 px leaves the garment's stripes
    assert deleted > 2 * kept and deleted > 0.15  # σ = 2 px wipes them out


def test_rts_gets_a_decoder_on_a_one_stage_encoder():
    model = _cnn(pools=2)  # stages at strides 1, 2, 4: only the last reaches stride 4
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    stages, _ = encoder_stages(model, x)
    assert [s.shape[-1] for s in stages] == [8]
    net = build_rts_net(model)
    assert net.refine is not None and len(net.blocks) == 0
    assert sum(p.numel() for p in net.parameters()) > 5_000  # not a bare 1×1 head
    rts = RtsInterpreter(model, net)
    xa = x.clone().requires_grad_(True)
    out = rts(xa, torch.tensor([1, 2]))
    assert out.map.shape == (2, 1, 8, 8)
    (g,) = torch.autograd.grad(out.map.sum(), xa)
    assert torch.isfinite(g).all() and float(g.abs().max()) > 0


def test_rts_uses_the_coarsest_stage_when_none_reaches_stride_4():
    model = _cnn(pools=1)  # strides 1 and 2 only
    x = torch.rand(1, 3, 32, 32)
    stages, _ = encoder_stages(model, x)
    assert [s.shape[-1] for s in stages] == [16]
    out = RtsInterpreter(model, build_rts_net(model)).explain(x, 0)
    assert out.map.shape == (1, 1, 8, 8)  # resized to H/4


def test_rts_on_a_multistage_encoder_is_unchanged(tiny_resnet):
    net = build_rts_net(tiny_resnet)
    assert net.refine is None and len(net.blocks) >= 1
