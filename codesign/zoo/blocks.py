"""Building blocks shared by the zoo's families."""

from __future__ import annotations

from torch import nn

__all__ = ["conv_bn"]


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel: int,
    stride: int,
    groups: int,
    activation: type[nn.Module] | None,
) -> nn.Sequential:
    """Conv ('same' padding, no bias) + BatchNorm, then ``activation`` when given."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)
