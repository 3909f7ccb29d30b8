"""CondenseNet, deployed form (Huang, Liu, van der Maaten, Weinberger, "CondenseNet: An Efficient DenseNet
using Learned Group Convolutions", CVPR 2018).

Training learns which input channels each group of a 1x1 conv keeps; after condensation (Sec. 3.1, Fig. 1
right) a layer is: index-select of the kept input channels (with G = C every channel is kept once, so the
index is a permutation), BN-ReLU, 1x1 group conv (G = 4 groups, 4k outputs), channel shuffle ("Permute",
Sec. 4.1), BN-ReLU, 3x3 group conv (4 groups, k outputs), concatenated to the input. Fully dense
connectivity with 2x2 average pooling between blocks and exponentially increasing growth (Sec. 4.1);
the classifier keeps half of its input features, picked by an index (condensed linear layer).

ImageNet: CondenseNet-74, stages 4-6-8-10-8, growth 8-16-32-64-128, stride-2 stem (Sec. 5.2). CIFAR: CondenseNet-86,
stages 14-14-14, growth 8-16-32, stride-1 stem (Sec. 5.1). The indices are random permutations drawn
from the seed, standing in for the ones training would learn: they change no shape or operation count.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "GROUPS", "BOTTLENECK", "channel_shuffle", "CondensedConv1x1", "CondenseLayer", "CondensedLinear",
    "CondenseNet", "condensenet"
]

GROUPS = 4  # G = C = 4: group count of the 1x1 and 3x3 convs and condensation factor (Sec. 5, Table 5)
BOTTLENECK = 4  # the 1x1 conv makes 4k channels (Sec. 4.1)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups: view (n, g, c/g, h, w), transpose, view back."""
    n, c, h, w = x.shape
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, c, h, w)


class CondensedConv1x1(nn.Module):
    """Index-select the kept channels, BN-ReLU, 1x1 group conv, shuffle the groups."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, condense_factor: int) -> None:
        super().__init__()
        if in_channels % condense_factor or out_channels % groups:
            raise ValueError(
                f"condensed 1x1 conv: {in_channels} inputs / C={condense_factor} or "
                f"{out_channels} outputs / G={groups} do not divide"
            )
        kept = in_channels * groups // condense_factor  # each of G groups keeps 1/C of the inputs
        self.groups = groups
        self.register_buffer("index", torch.randperm(in_channels)[:kept])
        self.norm = nn.BatchNorm2d(kept)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(kept, out_channels, 1, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.index_select(x, 1, self.index)
        return channel_shuffle(self.conv(self.relu(self.norm(x))), self.groups)


class CondenseLayer(nn.Module):
    """Condensed 1x1 (to 4k) then BN-ReLU-3x3 group conv (to k); output appended to the input."""

    def __init__(self, in_channels: int, growth: int, groups: int) -> None:
        super().__init__()
        self.conv1 = CondensedConv1x1(in_channels, BOTTLENECK * growth, groups, groups)
        self.conv2 = nn.Sequential(
            nn.BatchNorm2d(BOTTLENECK * growth),
            nn.ReLU(),
            nn.Conv2d(BOTTLENECK * growth, growth, 3, 1, 1, groups=groups, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.conv2(self.conv1(x))), dim=1)


class CondensedLinear(nn.Module):
    """Linear classifier over the half of the features an index keeps."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        kept = in_features // 2
        self.register_buffer("index", torch.randperm(in_features)[:kept].sort().values)
        self.linear = nn.Linear(kept, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.index_select(x, 1, self.index))


class CondenseNet(nn.Module):
    """3x3 stem to 2*k0, dense stages joined by 2x2 average pools, BN-ReLU, pool, condensed linear."""

    def __init__(
        self, stages: tuple[int, ...], growth: tuple[int, ...], num_classes: int, cifar: bool, groups: int = GROUPS
    ) -> None:
        super().__init__()
        if len(stages) != len(growth):
            raise ValueError("CondenseNet needs one growth rate per stage")
        channels = 2 * growth[0]
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 1 if cifar else 2, 1, bias=False)]
        for index, (count, rate) in enumerate(zip(stages, growth)):
            if index > 0:
                layers.append(nn.AvgPool2d(2, 2))
            for _ in range(count):
                layers.append(CondenseLayer(channels, rate, groups))
                channels += rate
        layers += [nn.BatchNorm2d(channels), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = CondensedLinear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def condensenet(num_classes: int = 1000, cifar: bool = False, groups: int = GROUPS) -> CondenseNet:
    """CondenseNet-74 (4-6-8-10-8, growth 8-16-32-64-128) on ImageNet; CondenseNet-86 on CIFAR.

    ``groups`` is G = C; the zoo builds G = C = 4, the paper also reports G = C = 8 on ImageNet.
    """
    if cifar:
        return CondenseNet((14, 14, 14), (8, 16, 32), num_classes, cifar=True, groups=groups)
    return CondenseNet((4, 6, 8, 10, 8), (8, 16, 32, 64, 128), num_classes, cifar=False, groups=groups)
