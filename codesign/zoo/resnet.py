"""ResNet-18 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1).

Basic blocks of two 3x3 convs, stages of 2-2-2-2 blocks at 64-128-256-512 channels; a 1x1 strided
projection where the shape changes (option B). CIFAR variant: 3x3 stride-1 stem and no max-pool,
as is usual for 32x32 inputs.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "ResNet", "resnet18"]


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the (projected) input, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, four stages of basic blocks, global average pool, linear classifier."""

    def __init__(self, blocks_per_stage: tuple[int, ...], num_classes: int, cifar: bool) -> None:
        super().__init__()
        widths = (64, 128, 256, 512)
        if cifar:
            stem: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
        else:
            stem = [
                nn.Conv2d(3, 64, 7, 2, 3, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            ]
        self.stem = nn.Sequential(*stem)
        layers: list[nn.Module] = []
        in_channels = 64
        for stage, (width, count) in enumerate(zip(widths, blocks_per_stage)):
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(BasicBlock(in_channels, width, stride))
                in_channels = width
        self.stages = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet18(num_classes: int = 1000, cifar: bool = False) -> ResNet:
    """ResNet-18: 2-2-2-2 basic blocks."""
    return ResNet((2, 2, 2, 2), num_classes, cifar)
