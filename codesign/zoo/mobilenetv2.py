"""MobileNetV2 1.0x (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018, Table 2).

Inverted residual blocks: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear projection, with a
residual add when stride is 1 and the width is kept. CIFAR variant: stride-1 stem and stride 1 in the
first strided stage (t=6, c=24), so a 32x32 input ends at 4x4 as is usual for CIFAR.
"""

from __future__ import annotations

import torch
from torch import nn

from codesign.zoo.blocks import conv_bn

__all__ = ["InvertedResidual", "MobileNetV2", "mobilenet_v2"]

# (expansion t, output channels c, repeats n, first stride s), Sandler et al. 2018, Table 2.
_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)



class InvertedResidual(nn.Module):
    """Expand 1x1, depthwise 3x3, project 1x1 (linear); residual add when the shape is kept."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn(in_channels, hidden, 1, 1, 1, nn.ReLU6))
        layers.append(conv_bn(hidden, hidden, 3, stride, hidden, nn.ReLU6))
        layers.append(conv_bn(hidden, out_channels, 1, 1, 1, None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """Stem 3x3 conv to 32, seven inverted-residual stages, 1x1 conv to 1280, pool, dropout, linear."""

    def __init__(self, num_classes: int, cifar: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 32, 3, 1 if cifar else 2, 1, nn.ReLU6)]
        in_channels = 32
        for stage, (expansion, channels, repeats, stride) in enumerate(_SETTINGS):
            if cifar and stage == 1:
                stride = 1
            for index in range(repeats):
                layers.append(InvertedResidual(in_channels, channels, stride if index == 0 else 1, expansion))
                in_channels = channels
        layers.append(conv_bn(in_channels, 1280, 1, 1, 1, nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(num_classes: int = 1000, cifar: bool = False) -> MobileNetV2:
    """MobileNetV2 at width multiplier 1.0."""
    return MobileNetV2(num_classes, cifar)
