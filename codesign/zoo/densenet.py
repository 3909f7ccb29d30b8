"""DenseNet-BC (Huang et al., "Densely Connected Convolutional Networks", CVPR 2017, Tables 1 and 2).

Every layer of a dense block sees the concatenation of all earlier feature maps; BC = Bottleneck
(BN-ReLU-1x1 conv to 4k, BN-ReLU-3x3 conv to k) and Compression (transitions halve the channels with
a 1x1 conv, then 2x2 average pool). ImageNet: DenseNet-121 (k=32, blocks 6-12-24-16, 7x7 stem and
max-pool). CIFAR: DenseNet-BC L=100, k=12 (three blocks of 16 bottleneck layers, 3x3 stem of 2k channels).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["DenseLayer", "Transition", "DenseNet", "densenet_bc"]


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k); its output is appended to its input."""

    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        self.bottleneck = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, 4 * growth, 1, bias=False)
        )
        self.conv = nn.Sequential(
            nn.BatchNorm2d(4 * growth), nn.ReLU(), nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.conv(self.bottleneck(x))), dim=1)


class Transition(nn.Module):
    """BN-ReLU-Conv1x1 to half the channels (compression 0.5), then 2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.AvgPool2d(2, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DenseNet(nn.Module):
    """Stem, dense blocks separated by compressing transitions, final BN-ReLU, pool, linear."""

    def __init__(self, growth: int, blocks: tuple[int, ...], num_classes: int, cifar: bool) -> None:
        super().__init__()
        channels = 2 * growth
        if cifar:
            layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 1, 1, bias=False)]
        else:
            layers = [
                nn.Conv2d(3, channels, 7, 2, 3, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            ]
        for index, count in enumerate(blocks):
            for _ in range(count):
                layers.append(DenseLayer(channels, growth))
                channels += growth
            if index != len(blocks) - 1:
                layers.append(Transition(channels, channels // 2))
                channels //= 2
        layers.append(nn.BatchNorm2d(channels))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.features(x)))
        return self.classifier(torch.flatten(x, 1))


def densenet_bc(num_classes: int = 1000, cifar: bool = False) -> DenseNet:
    """DenseNet-121 (k=32, 6-12-24-16) for ImageNet; DenseNet-BC L=100, k=12 (16-16-16) for CIFAR."""
    if cifar:
        depth = 100
        per_block = (depth - 4) // 6  # L = 6n + 4 with two convs per bottleneck layer, Huang et al. 2017, Sec. 4
        return DenseNet(12, (per_block,) * 3, num_classes, cifar=True)
    return DenseNet(32, (6, 12, 24, 16), num_classes, cifar=False)
