"""Input normalisation: explicit normalise=False, the double-normalisation warning and the accuracy check."""

import warnings

import pytest
import torch
import torchvision
from torch import nn
from torchvision.transforms import Normalize

from doublecross.models import Classifier, find_input_normalisation, normalisation_check


def _body() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)
    )


class SelfNormalising(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor([0.2, 0.2, 0.2]).view(1, 3, 1, 1))
        self.body = _body()

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.body((x - self.pixel_mean) / self.pixel_std)


@pytest.mark.parametrize(
    "net, where",
    [
        (nn.Sequential(Normalize((0.5, 0.5, 0.5), (0.2, 0.2, 0.2)), _body()), "0"),
        (SelfNormalising(), "<root>"),
    ],
)
def test_self_normalising_network_warns_unless_explicit(net, where):
    assert find_input_normalisation(net) == where
    with pytest.warns(UserWarning, match="normalised twice.*normalise=False"):
        Classifier(net)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = Classifier(net, normalise=False)  # the documented explicit choice: no warning
        Classifier(net, normalise=True)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(raw(x), net(x), rtol=0, atol=0)  # [0, 1] pixels reach the net unchanged
    assert raw.mean.flatten().tolist() == [0, 0, 0] and raw.std.flatten().tolist() == [1, 1, 1]


def test_ordinary_networks_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Classifier(torchvision.models.resnet18(weights=None, num_classes=3))  # BatchNorm running_mean: no match
        Classifier(_body())
    assert find_input_normalisation(torchvision.models.resnet18(weights=None)) is None


def test_normalisation_check_flags_double_normalisation():
    net = SelfNormalising()
    x = torch.rand(64, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = net(x).argmax(1)  # labels the network gets right on [0, 1] pixels
    with pytest.warns(UserWarning):
        doubled = Classifier(net, name="selfnorm")
    msg = normalisation_check(doubled, x, y)
    assert msg is not None and "selfnorm" in msg and "normalise=False" in msg
    assert normalisation_check(Classifier(net, normalise=False), x, y) is None


def test_bad_normalise_value():
    with pytest.raises(TypeError, match="normalise"):
        Classifier(_body(), normalise="yes")
