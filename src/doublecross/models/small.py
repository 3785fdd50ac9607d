"""Small classifiers of our own for 32-64 px inputs, trained on offline data.

Both end ``conv -> ReLU -> global average pool -> linear`` so CAM applies. They expose
``features(x) -> A`` (the last, post-ReLU feature map, ``(B, K, h, w)``) and ``fc`` (the final
``nn.Linear``); ``forward(x) = fc(mean_hw(features(x)))``. ReLUs are never in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv_bn(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """Pre-addition residual block: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, stride)
        self.conv2 = _conv_bn(cout, cout)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = _conv_bn(cin, cout, stride, k=1) if (stride != 1 or cin != cout) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(x))) + self.shortcut(x))


class SmallResNet(nn.Module):
    """ResNet-20-like classifier (He et al. 2016, CIFAR variant) with a stride-2 stem.

    Stem conv 3×3/2, then three stages of ``depth`` basic blocks at widths ``(w, 2w, 4w)`` and
    strides ``(1, 2, 2)``: a 64×64 input gives an 8×8 feature map (stride 8).

    Shape:
        x: (B, 3, H, W) normalised input -> logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 10, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, width, stride=2), nn.ReLU())
        stages: list[nn.Module] = []
        cin = width
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            for j in range(depth):
                stages.append(BasicBlock(cin, cout, stride=2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.body = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, num_classes)
        self.feature_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last post-ReLU feature map ``(B, 4w, H/8, W/8)``."""
        return self.body(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


class DenseLayer(nn.Module):
    """DenseNet-BC bottleneck layer: BN-ReLU-conv1×1(4k)-BN-ReLU-conv3×3(k), concatenated."""

    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return torch.cat([x, out], dim=1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2))


class SmallDenseNet(nn.Module):
    """DenseNet-BC-like classifier (Huang et al. 2017) with a stride-2 stem.

    Stem conv 3×3/2 to ``2k`` channels, three dense blocks of ``layers`` bottleneck layers with
    growth ``k`` separated by compression-0.5 transitions, then BN-ReLU (functional, out of
    place, as torchvision's DenseNet). A 64×64 input gives an 8×8 feature map.

    Shape:
        x: (B, 3, H, W) normalised input -> logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 10, growth: int = 12, layers: int = 4) -> None:
        super().__init__()
        c = 2 * growth
        mods: list[nn.Module] = [nn.Conv2d(3, c, 3, stride=2, padding=1, bias=False)]
        for b in range(3):
            for _ in range(layers):
                mods.append(DenseLayer(c, growth))
                c += growth
            if b < 2:
                mods.append(Transition(c, c // 2))
                c //= 2
        mods.append(nn.BatchNorm2d(c))
        self.body = nn.Sequential(*mods)
        self.fc = nn.Linear(c, num_classes)
        self.feature_channels = c
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last post-ReLU feature map ``(B, K, H/8, W/8)``."""
        return F.relu(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))
