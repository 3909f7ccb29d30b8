"""Weight density and structured pruning read from the weights a layer actually uses.

Unstructured pruning (``torch.nn.utils.prune`` masks or plain zeros) lowers the density
(nonzeros / numel); its MACs are ``dense MACs * density`` exactly, since every weight is used the
same number of times. Structured pruning (whole output filters or input channels zero, as left by
filter pruning or network slimming, Liu et al. ICCV 2017) shrinks the layer's dimensions. So do input
channels that are exactly 0 for every input (``codesign.capture.channels``): their weights count as
removed (``without_dead_inputs``). No layer is pruned to nothing: an all-zero weight keeps at least one of
each dimension, with density 0 and effective MACs 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from codesign.workload import ConvDims, GemmDims

__all__ = ["Sparsity", "DENSE", "conv_sparsity", "gemm_weight_sparsity", "without_dead_inputs"]


@dataclass(frozen=True)
class Sparsity:
    """What pruning left of one layer's weight."""

    density: float
    effective_macs: int | None  # None when the weight is dense
    effective_dims: ConvDims | GemmDims | None  # None when no whole filter / channel is zero


DENSE = Sparsity(density=1.0, effective_macs=None, effective_dims=None)


def _scaled_macs(macs: int, weight: torch.Tensor) -> tuple[float, int | None]:
    total = int(weight.numel())
    nonzero = int(torch.count_nonzero(weight))
    if total == 0 or nonzero == total:
        return 1.0, None
    return nonzero / total, macs * nonzero // total


def conv_sparsity(weight: torch.Tensor, dims: ConvDims) -> Sparsity:
    """Density and effective dims of a conv weight [K, C/G, R, S] (or [K, C/G, S] for 1-D).

    Per group, zero filters and zero input channels are dropped; groups whose filters are all zero
    vanish. Groups pruned unevenly keep the largest remaining group size (the uniform grouped conv
    that still computes every nonzero weight). An all-zero weight keeps one group of one filter and one
    channel (density 0, effective MACs 0): a layer is never refused for its weight values.
    """
    density, effective_macs = _scaled_macs(dims.macs, weight)
    if effective_macs is None:
        return DENSE
    groups = dims.groups
    flat = weight.detach().reshape(weight.shape[0], weight.shape[1], -1) != 0
    per_group = flat.reshape(groups, dims.k // groups, weight.shape[1], flat.shape[-1])
    filters_alive = per_group.any(dim=(2, 3))  # [G, K/G]
    channels_alive = per_group.any(dim=(1, 3))  # [G, C/G]
    groups_alive = int(filters_alive.any(dim=1).sum())
    filters = int(filters_alive.sum(dim=1).max())
    channels = int(channels_alive.sum(dim=1).max())
    structured = groups_alive < groups or filters < dims.k // groups or channels < dims.c // groups
    effective_dims = None
    if structured:
        kept_groups = max(groups_alive, 1)
        effective_dims = dataclasses.replace(
            dims, k=kept_groups * max(filters, 1), c=kept_groups * max(channels, 1), groups=kept_groups
        )
    return Sparsity(density=density, effective_macs=effective_macs, effective_dims=effective_dims)


def gemm_weight_sparsity(weight_kn: torch.Tensor, dims: GemmDims) -> Sparsity:
    """Density and effective dims of a GEMM weight given as [K, N] (a linear's weight transposed).

    Zero rows of the K x N matrix are input features that are never used; zero columns are output
    features that are always zero: both shrink the GEMM (to at least 1 x 1 when every weight is zero).
    """
    density, effective_macs = _scaled_macs(dims.macs, weight_kn)
    if effective_macs is None:
        return DENSE
    alive = weight_kn.detach().reshape(weight_kn.shape[0], -1) != 0
    k = int(alive.any(dim=1).sum())
    n = int(alive.any(dim=0).sum())
    effective_dims = None
    if k < dims.k or n < dims.n:
        effective_dims = dataclasses.replace(dims, k=max(k, 1), n=max(n, 1))
    return Sparsity(density=density, effective_macs=effective_macs, effective_dims=effective_dims)


def without_dead_inputs(weight: torch.Tensor, dead: torch.Tensor, layout: str, groups: int = 1) -> torch.Tensor:
    """The weight with every weight that reads a dead input channel set to 0.

    ``dead`` is a boolean mask over the layer's input channels (C of a conv, input features of a GEMM).
    ``layout``: ``"conv"`` for [K, C/G, ...] (channel c is local channel c % (C/G) of group c // (C/G), read
    only by that group's filters: a depthwise conv loses the whole group), ``"nk"`` for a linear's [N, K],
    ``"kn"`` for a GEMM's right operand [K, N].
    """
    weight = weight.detach()
    if layout == "conv":
        filters, per_group = weight.shape[0], weight.shape[1]
        mask = dead.reshape(groups, per_group).repeat_interleave(filters // groups, dim=0)  # [K, C/G]
        mask = mask.reshape(filters, per_group, *([1] * (weight.dim() - 2)))
    elif layout == "nk":
        mask = dead.reshape(1, -1)
    elif layout == "kn":
        mask = dead.reshape(-1, 1)
    else:
        raise ValueError(f"unknown weight layout {layout!r}")
    return torch.where(mask, torch.zeros((), dtype=weight.dtype), weight)
