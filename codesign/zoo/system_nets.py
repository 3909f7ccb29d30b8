"""The three networks the integer scheme, the compiler and the generated system are held to, small and seeded,
with ragged channel counts (not multiples of the 8-wide array): a CIFAR-size ResNet-style net, a MobileNetV2-style
inverted residual block and a block with table activations (GELU, h-swish). Factories return (module, example
inputs); as models they are ``codesign.zoo.system_nets:resnet_net``, ``:mobilenet_block`` and ``:lut_block``."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["resnet_net", "mobilenet_block", "lut_block", "NETS"]


class _Residual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNetStyle(nn.Module):
    """CIFAR-size (3 x 32 x 32): stem conv, a residual block, a strided residual block with a 1x1 shortcut,
    max pooling, global average pooling, a linear classifier. Channels 12 and 20."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 12, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(12)
        self.block1 = _Residual(12, 12, 1)
        self.block2 = _Residual(12, 20, 2)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(20, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = self.pool(self.block2(self.block1(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2-style (Sandler et al., CVPR 2018): stem, pointwise expand x3 + ReLU6, depthwise 3x3 + ReLU6,
    pointwise project (linear), residual add; global pooling and a classifier. Channels 12 and 36."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 12, 3, 1, 1, bias=False), nn.BatchNorm2d(12), nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(12, 36, 1, bias=False), nn.BatchNorm2d(36), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(36, 36, 3, 1, 1, groups=36, bias=False), nn.BatchNorm2d(36),
                                       nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(36, 12, 1, bias=False), nn.BatchNorm2d(12))
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.project(self.depthwise(self.expand(x)))
        return self.fc(x.mean((2, 3)))


class TableBlock(nn.Module):
    """Table activations in output paths and on their own: conv + BN + GELU, conv + BN + h-swish, average pooling,
    a stand-alone SiLU, a classifier. Channels 10 and 14."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(10)
        self.conv2 = nn.Conv2d(10, 14, 3, 2, 1)
        self.bn2 = nn.BatchNorm2d(14)
        self.fc = nn.Linear(14, 10)

    def forward(self, x):
        x = F.gelu(self.bn1(self.conv1(x)))
        x = F.hardswish(self.bn2(self.conv2(x)))
        x = F.silu(F.avg_pool2d(x, 2))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _seeded(cls, shape):
    torch.manual_seed(0)
    return cls().eval(), (torch.randn(*shape, generator=torch.Generator().manual_seed(1)),)


def resnet_net():
    return _seeded(ResNetStyle, (1, 3, 32, 32))


def mobilenet_block():
    return _seeded(InvertedResidual, (1, 3, 16, 16))


def lut_block():
    return _seeded(TableBlock, (1, 3, 16, 16))


NETS = {"resnet": resnet_net, "mobilenet": mobilenet_block, "lut": lut_block}
