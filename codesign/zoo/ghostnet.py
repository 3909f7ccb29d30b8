"""GhostNet 1.0x (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020, Table 1).

A Ghost module makes half its output with an ordinary 1x1 conv and the other half with a cheap depthwise
3x3 conv of that half, concatenated and sliced to the wanted width. Ghost bottlenecks stack two of them,
with a strided depthwise conv between for stride 2 and squeeze-and-excitation (hard-sigmoid gate) in
some stages. CIFAR variant: stride-1 stem and stride 1 in the first strided stage (out 24), so a
32x32 input ends at 4x4.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from codesign.zoo.blocks import conv_bn
from torch.nn import functional as F

__all__ = ["GhostModule", "SqueezeExcite", "GhostBottleneck", "GhostNet", "ghostnet"]

# Per bottleneck: (depthwise kernel, expansion width, output width, SE ratio, stride),
# Han et al. 2020, Table 1 (the rows from G-bneck 16 to G-bneck 160).
_BOTTLENECKS: tuple[tuple[int, int, int, float, int], ...] = (
    (3, 16, 16, 0.0, 1),
    (3, 48, 24, 0.0, 2),
    (3, 72, 24, 0.0, 1),
    (5, 72, 40, 0.25, 2),
    (5, 120, 40, 0.25, 1),
    (3, 240, 80, 0.0, 2),
    (3, 200, 80, 0.0, 1),
    (3, 184, 80, 0.0, 1),
    (3, 184, 80, 0.0, 1),
    (3, 480, 112, 0.25, 1),
    (3, 672, 112, 0.25, 1),
    (5, 672, 160, 0.25, 2),
    (5, 960, 160, 0.0, 1),
    (5, 960, 160, 0.25, 1),
    (5, 960, 160, 0.0, 1),
    (5, 960, 160, 0.25, 1),
)


def _divisible(value: float, divisor: int = 4) -> int:
    """Round a width to a multiple of ``divisor``, never more than 10% below ``value`` (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded



class GhostModule(nn.Module):
    """Primary 1x1 conv to ceil(out/2) channels, cheap depthwise 3x3 of those; concat, slice to ``out``."""

    def __init__(self, in_channels: int, out_channels: int, relu: bool) -> None:
        super().__init__()
        self.out_channels = out_channels
        primary = math.ceil(out_channels / 2)  # ratio s = 2 (Han et al. 2020, Sec. 4.1)
        self.primary = conv_bn(in_channels, primary, 1, 1, 1, nn.ReLU if relu else None)
        self.cheap = conv_bn(primary, primary, 3, 1, primary, nn.ReLU if relu else None)  # d = 3 depthwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.primary(x)
        return torch.cat((y, self.cheap(y)), dim=1)[:, : self.out_channels]


class SqueezeExcite(nn.Module):
    """Global pool, 1x1 reduce (ReLU), 1x1 expand, hard-sigmoid gate multiplied onto the input."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        reduced = _divisible(channels * ratio)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.expand(F.relu(self.reduce(self.pool(x))))
        return x * (F.relu6(gate + 3.0) / 6.0)  # hard sigmoid


class GhostBottleneck(nn.Module):
    """Ghost (ReLU) - [depthwise stride 2] - [SE] - Ghost (linear), plus identity or a dw+1x1 shortcut."""

    def __init__(
        self, in_channels: int, mid_channels: int, out_channels: int, kernel: int, stride: int, se_ratio: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [GhostModule(in_channels, mid_channels, nn.ReLU)]
        if stride > 1:
            layers.append(conv_bn(mid_channels, mid_channels, kernel, stride, mid_channels, None))
        if se_ratio > 0:
            layers.append(SqueezeExcite(mid_channels, se_ratio))
        layers.append(GhostModule(mid_channels, out_channels, None))
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                conv_bn(in_channels, in_channels, kernel, stride, in_channels, None),
                conv_bn(in_channels, out_channels, 1, 1, 1, None),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class GhostNet(nn.Module):
    """Stem 3x3 to 16, 16 Ghost bottlenecks, 1x1 to 960, pool, 1x1 to 1280 (ReLU), dropout, linear."""

    def __init__(self, width: float, num_classes: int, cifar: bool) -> None:
        super().__init__()
        stem_channels = _divisible(16 * width)
        layers: list[nn.Module] = [conv_bn(3, stem_channels, 3, 1 if cifar else 2, 1, nn.ReLU)]
        in_channels = stem_channels
        first_strided = True
        for kernel, expansion, out, se_ratio, stride in _BOTTLENECKS:
            if cifar and stride == 2 and first_strided:
                stride, first_strided = 1, False
            out_channels = _divisible(out * width)
            mid_channels = _divisible(expansion * width)
            layers.append(GhostBottleneck(in_channels, mid_channels, out_channels, kernel, stride, se_ratio))
            in_channels = out_channels
        head_channels = _divisible(960 * width)
        layers.append(conv_bn(in_channels, head_channels, 1, 1, 1, nn.ReLU))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Conv2d(head_channels, 1280, 1, bias=True)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.head(self.pool(self.features(x))))
        return self.classifier(torch.flatten(x, 1))


def ghostnet(num_classes: int = 1000, cifar: bool = False) -> GhostNet:
    """GhostNet at width multiplier 1.0."""
    return GhostNet(1.0, num_classes, cifar)
