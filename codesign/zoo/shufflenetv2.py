"""ShuffleNetV2 1.0x (Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
ECCV 2018, Table 5).

Units split the channels in two (stride 1) or feed both branches the whole input (stride 2), run one
branch through 1x1 - depthwise 3x3 - 1x1, concatenate and shuffle the two halves. CIFAR variant:
stride-1 stem and no max-pool.
"""

from __future__ import annotations

import torch
from torch import nn

from codesign.zoo.blocks import conv_bn

__all__ = ["channel_shuffle", "ShuffleUnit", "ShuffleNetV2", "shufflenet_v2"]

_REPEATS = (4, 8, 4)  # units per stage 2-4, Ma et al. 2018, Table 5
_WIDTHS_1X = (24, 116, 232, 464, 1024)  # Conv1, Stage2-4, Conv5 output channels at 1.0x, Table 5


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups: view (n, g, c/g, h, w), transpose, view back."""
    n, c, h, w = x.shape
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, c, h, w)



class ShuffleUnit(nn.Module):
    """The ShuffleNetV2 unit (Ma et al. 2018, Fig. 3c stride 1, Fig. 3d stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if stride == 1 and in_channels != out_channels:
            raise ValueError("a stride-1 ShuffleNetV2 unit keeps its width")
        branch = out_channels // 2
        self.stride = stride
        self.left: nn.Module = nn.Identity()
        if stride == 2:
            self.left = nn.Sequential(
                conv_bn(in_channels, in_channels, 3, 2, in_channels, None),
                conv_bn(in_channels, branch, 1, 1, 1, nn.ReLU),
            )
        right_in = in_channels if stride == 2 else branch
        self.right = nn.Sequential(
            conv_bn(right_in, branch, 1, 1, 1, nn.ReLU),
            conv_bn(branch, branch, 3, stride, branch, None),
            conv_bn(branch, branch, 1, 1, 1, nn.ReLU),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            half = x.shape[1] // 2
            out = torch.cat((x[:, :half], self.right(x[:, half:])), dim=1)
        else:
            out = torch.cat((self.left(x), self.right(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """Conv1 (+max-pool), stages 2-4 of shuffle units, Conv5 1x1, global pool, linear."""

    def __init__(self, widths: tuple[int, ...], num_classes: int, cifar: bool) -> None:
        super().__init__()
        stem: list[nn.Module] = [conv_bn(3, widths[0], 3, 1 if cifar else 2, 1, nn.ReLU)]
        if not cifar:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        units: list[nn.Module] = []
        in_channels = widths[0]
        for repeats, width in zip(_REPEATS, widths[1:4]):
            for index in range(repeats):
                units.append(ShuffleUnit(in_channels, width, 2 if index == 0 else 1))
                in_channels = width
        self.stages = nn.Sequential(*units)
        self.conv5 = conv_bn(in_channels, widths[4], 1, 1, 1, nn.ReLU)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[4], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv5(self.stages(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def shufflenet_v2(num_classes: int = 1000, cifar: bool = False) -> ShuffleNetV2:
    """ShuffleNetV2 at 1.0x width."""
    return ShuffleNetV2(_WIDTHS_1X, num_classes, cifar)
