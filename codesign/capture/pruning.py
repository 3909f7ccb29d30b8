"""Weight density and structured pruning read from the weights a layer actually uses.

Unstructured pruning (``torch.nn.utils.prune`` masks or plain zeros) lowers the density
(nonzeros / numel); its MACs are ``dense MACs * density`` exactly, since every weight is used the
same number of times. Structured pruning (whole output filters or input channels zero, as left by
filter pruning or network slimming, Liu et al. ICCV 2017) shrinks the layer's dimensions. So do input
channels that are exactly 0 for every input (``codesign.capture.channels``): their weights count as
removed (``without_dead_inputs``). No layer is pruned to nothing: an all-zero weight keeps at least one of
each dimension, with density 0 and effective MACs 0.

N:M structured sparsity (``nm_pattern``): at most N nonzeros in every group of M consecutive weights along the
reduction, groups taken along the input channels at each output and kernel position, as NVIDIA's 2:4 sparse
tensor cores and ``codesign.prune``'s ``nm:N:M`` define them (Mishra et al., "Accelerating Sparse Deep Neural
Networks", 2021). The standard patterns 1:4, 2:8, 1:2, 2:4, 4:8 are checked strongest first, on the channels
that remain after structured pruning; a layer whose (remaining) channels are not whole groups of M has no N:M
pattern of that M. (So an input feature that no output of a 2:4 linear happens to read, dropped from the
effective dims, shifts every group after it: such a layer is usually not N:M any more.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from codesign.sparsity import STANDARD_PATTERNS
from codesign.workload import ConvDims, GemmDims

__all__ = ["Sparsity", "DENSE", "nm_pattern", "conv_sparsity", "gemm_weight_sparsity", "without_dead_inputs"]


@dataclass(frozen=True)
class Sparsity:
    """What pruning left of one layer's weight."""

    density: float
    effective_macs: int | None  # None when the weight is dense
    effective_dims: ConvDims | GemmDims | None  # None when no whole filter / channel is zero
    nm_pattern: tuple[int, int] | None = None  # the strongest standard N:M pattern the weights follow


DENSE = Sparsity(density=1.0, effective_macs=None, effective_dims=None)


def nm_pattern(nonzero: torch.Tensor) -> tuple[int, int] | None:
    """The strongest standard N:M pattern of a nonzero mask [..., C] whose last axis is the input channels
    (every other axis an output or kernel position): groups of M consecutive channels hold at most N nonzeros.
    None when none holds (or C is not a multiple of any M that would)."""
    channels = int(nonzero.shape[-1]) if nonzero.dim() else 0
    if channels == 0 or nonzero.numel() == 0:
        return None
    rows = nonzero.reshape(-1, channels).to(torch.int32)
    most = {}  # M -> the most nonzeros in any group of M
    for _, m in STANDARD_PATTERNS:
        if m not in most and channels % m == 0:
            most[m] = int(rows.reshape(rows.shape[0], channels // m, m).sum(dim=-1).max())
    for n, m in STANDARD_PATTERNS:
        if m in most and most[m] <= n:
            return (n, m)
    return None


def _padded_alive(mask: torch.Tensor, alive: torch.Tensor, width: int) -> torch.Tensor:
    """``mask`` [G, ..., C] with only each group's ``alive`` [G, C] channels, in order, padded with False to
    ``width``: the channels a structurally pruned layer keeps, as its effective dims lay them out."""
    out = torch.zeros((*mask.shape[:-1], width), dtype=torch.bool)
    for g in range(mask.shape[0]):
        kept = mask[g][..., alive[g]]
        out[g][..., : kept.shape[-1]] = kept
    return out


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
    by_channel = per_group.movedim(2, -1)  # [G, K/G, taps, C/G]: groups of M along the input channels
    if channels < dims.c // groups:  # the channels left, laid out as the effective dims have them
        by_channel = _padded_alive(by_channel, channels_alive, max(channels, 1))
    pattern = nm_pattern(by_channel)
    structured = groups_alive < groups or filters < dims.k // groups or channels < dims.c // groups
    effective_dims = None
    if structured:
        kept_groups = max(groups_alive, 1)
        effective_dims = dataclasses.replace(
            dims, k=kept_groups * max(filters, 1), c=kept_groups * max(channels, 1), groups=kept_groups
        )
    return Sparsity(density=density, effective_macs=effective_macs, effective_dims=effective_dims,
                    nm_pattern=pattern)


def gemm_weight_sparsity(weight_kn: torch.Tensor, dims: GemmDims) -> Sparsity:
    """Density and effective dims of a GEMM weight given as [K, N] (a linear's weight transposed).

    Zero rows of the K x N matrix are input features that are never used; zero columns are output
    features that are always zero: both shrink the GEMM (to at least 1 x 1 when every weight is zero).
    """
    density, effective_macs = _scaled_macs(dims.macs, weight_kn)
    if effective_macs is None:
        return DENSE
    alive = weight_kn.detach().reshape(weight_kn.shape[0], -1) != 0
    used = alive.any(dim=1)
    k = int(used.sum())
    n = int(alive.any(dim=0).sum())
    pattern = None
    if weight_kn.dim() == 2:  # groups of M along K, per output feature, over the input features still used
        pattern = nm_pattern(alive[used].t())
    effective_dims = None
    if k < dims.k or n < dims.n:
        effective_dims = dataclasses.replace(dims, k=max(k, 1), n=max(n, 1))
    return Sparsity(density=density, effective_macs=effective_macs, effective_dims=effective_dims,
                    nm_pattern=pattern)


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
