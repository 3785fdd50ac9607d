"""Classifier wrapper: validation, eval/frozen, feature access through adapters."""

import pytest
import torch
import torchvision
from torch import nn

from doublecross.models import Classifier, check_images


def _tv(name):
    torch.manual_seed(0)
    return Classifier(getattr(torchvision.models, name)(num_classes=7))


@pytest.mark.parametrize("name", ["resnet18", "densenet121"])
def test_torchvision_features_and_logits_match_forward(name):
    clf = _tv(name)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    feats, logits = clf.features_and_logits(x)
    ref = clf.net(clf.normalise(x))  # torchvision's own forward
    torch.testing.assert_close(logits, ref, rtol=1e-4, atol=1e-5)
    assert feats.shape[:2] == (2, clf.linear.in_features) and feats.shape[2:] == (2, 2)
    assert float(feats.min()) >= 0.0  # post-ReLU (DenseNet's functional ReLU included)
    assert torch.equal(clf(x), logits)


def test_small_models(tiny_resnet, tiny_densenet):
    x = torch.rand(3, 3, 64, 64)
    for clf in (tiny_resnet, tiny_densenet):
        feats, logits = clf.features_and_logits(x)
        assert feats.shape[-2:] == (8, 8) and logits.shape == (3, 10)
        torch.testing.assert_close(logits, clf.net(clf.normalise(x)))


def test_eval_frozen_and_no_inplace_relu():
    clf = _tv("resnet18")
    clf.train()
    assert not clf.training and not clf.net.training
    assert all(not p.requires_grad for p in clf.parameters())
    assert all(not m.inplace for m in clf.modules() if isinstance(m, nn.ReLU))


def test_input_not_mutated_and_grad_reaches_input(tiny_resnet):
    x = torch.rand(2, 3, 32, 32)
    x0 = x.clone()
    xg = x.clone().requires_grad_(True)
    tiny_resnet(xg).sum().backward()
    assert torch.equal(x, x0) and xg.grad is not None and float(xg.grad.abs().sum()) > 0


@pytest.mark.parametrize(
    "bad, exc, msg",
    [
        ([[0.0]], TypeError, "must be a torch.Tensor"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), TypeError, "floating-point"),
        (torch.zeros(3, 8, 8), ValueError, r"shape \(B, 3, H, W\)"),
        (torch.zeros(2, 1, 8, 8), ValueError, r"shape \(B, 3, H, W\)"),
        (torch.full((1, 3, 8, 8), 2.0), ValueError, r"\[0, 1\]"),
        (torch.full((1, 3, 8, 8), float("nan")), ValueError, "NaN"),
    ],
)
def test_bad_inputs_are_clear_errors(bad, exc, msg, tiny_resnet):
    with pytest.raises(exc, match=msg):
        check_images(bad)
    with pytest.raises(exc, match=msg):
        tiny_resnet(bad)


def test_unadaptable_model_classifies_but_refuses_features():
    """No spatial map at all (an MLP): classifies, but feature access names what was searched."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))
    clf = Classifier(net, input_size=(8, 8))
    assert clf(torch.rand(1, 3, 8, 8)).shape == (1, 5)
    assert not clf.supports_features
    with pytest.raises(TypeError, match="cannot reach the last feature map of Sequential: searched the outputs of 2"):
        clf.features_and_logits(torch.rand(1, 3, 8, 8))


def test_flatten_head_has_features_but_no_linear_head():
    """conv -> flatten -> Linear: the conv map is reachable, but there is no linear head on pooled features."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    clf = Classifier(net, input_size=(8, 8))
    feats, logits = clf.features_and_logits(torch.rand(2, 3, 8, 8))
    assert feats.shape == (2, 4, 6, 6) and logits.shape == (2, 5)
    assert not clf.has_linear_head()
    with pytest.raises(TypeError, match="no single linear layer.*Flatten -> Linear"):
        _ = clf.linear


def test_bad_normalisation_args():
    with pytest.raises(ValueError, match="std > 0"):
        Classifier(nn.Identity(), mean=(0, 0, 0), std=(1, 0, 1))
    with pytest.raises(TypeError, match="nn.Module"):
        Classifier(lambda x: x)
