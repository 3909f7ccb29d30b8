"""The workload graph: the layers of a network with exact loop dimensions, MACs and bytes.

This module is the vocabulary shared by ``dataflow``, ``sim`` and the front end; it holds data
and pure helpers only. Capturing a PyTorch model into a ``Workload`` lives in
``codesign.capture``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable

import networkx as nx

from codesign.errors import BitWidthError

__all__ = [
    "MIN_BITS", "MAX_BITS", "OpKind", "MAC_KINDS", "Bits", "ConvDims", "GemmDims", "ConvNdDims", "Layer", "Workload",
    "UnsupportedOp", "Unmapped", "bytes_at",
]

MIN_BITS = 1
MAX_BITS = 32


class OpKind(str, Enum):
    """What a layer does. MAC layers first; the rest carry element operations or only bytes."""

    CONV = "conv"
    DEPTHWISE_CONV = "depthwise_conv"
    GROUPED_CONV = "grouped_conv"
    LINEAR = "linear"
    MATMUL = "matmul"  # bmm / matmul, as in attention (Q K^T, A V)
    TRANSPOSED_CONV = "transposed_conv"  # the GEMM of a transposed convolution (col2im form); its overlap-add follows
    POOL = "pool"
    ELEMENTWISE = "elementwise"  # add, mul, activations
    NORM = "norm"  # batch / layer norm
    SOFTMAX = "softmax"
    CONCAT = "concat"
    RESHAPE = "reshape"  # view / reshape / flatten / squeeze / unsqueeze / contiguous
    PERMUTE = "permute"  # permute / transpose
    CHANNEL_SHUFFLE = "channel_shuffle"
    SLICE = "slice"  # slice / split / chunk / select
    EMBEDDING = "embedding"  # positional embeddings, class tokens (parameters read, no MACs)
    RESAMPLE = "resample"  # interpolation, grid_sample, affine_grid, col2im overlap-add: weighted taps per output

    @property
    def has_macs(self) -> bool:
        return self in MAC_KINDS


MAC_KINDS = frozenset(
    {OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.GROUPED_CONV, OpKind.LINEAR, OpKind.MATMUL, OpKind.TRANSPOSED_CONV}
)


@dataclass(frozen=True)
class Bits:
    """Bit-widths of one layer's weights, activations and accumulators. 1 bit = binarized."""

    weight: int = 8
    activation: int = 8
    accumulator: int = 32

    def __post_init__(self) -> None:
        for name in ("weight", "activation", "accumulator"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not MIN_BITS <= value <= MAX_BITS:
                raise BitWidthError(
                    f"{name} bit-width {value!r} is outside the supported range {MIN_BITS}..{MAX_BITS}"
                )

    @property
    def binarized(self) -> bool:
        return self.weight == 1 and self.activation == 1


@dataclass(frozen=True)
class ConvDims:
    """Loop dimensions of a 2-D convolution (Eyeriss / Timeloop naming).

    N batch, K output channels, C input channels, P x Q output size, R x S filter size,
    H x W input size (unpadded). ``groups`` splits K and C evenly: each group is a
    (K/G) x (C/G) convolution. Depthwise: groups == C == K (multiplier 1) or K = m*C.
    """

    n: int
    k: int
    c: int
    p: int
    q: int
    r: int
    s: int
    h: int
    w: int
    groups: int = 1
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    @property
    def macs(self) -> int:
        return self.n * self.k * (self.c // self.groups) * self.p * self.q * self.r * self.s

    def gemm(self) -> "GemmDims":
        """im2col lowering: per group, M = N*P*Q output pixels, K = C/G*R*S, N = K/G filters."""
        return GemmDims(
            batch=self.groups,
            m=self.n * self.p * self.q,
            k=(self.c // self.groups) * self.r * self.s,
            n=self.k // self.groups,
        )


@dataclass(frozen=True)
class GemmDims:
    """A batch of independent GEMMs: ``batch`` times (M x K) @ (K x N)."""

    batch: int
    m: int
    k: int
    n: int

    @property
    def macs(self) -> int:
        return self.batch * self.m * self.k * self.n

    def gemm(self) -> "GemmDims":
        return self


@dataclass(frozen=True)
class ConvNdDims:
    """The loop nest of a convolution of any spatial rank, transposed or not, as its op defines it.

    Layers whose ``dims`` are a lowering carry it: a 3-D convolution runs as 2-D convolutions, one per output
    depth slice; a transposed convolution as a GEMM and an overlap-add (``codesign.capture.aten_ops``).
    N batch, K output channels, C input channels, sizes listed outer to inner (D, H, W).
    MACs follow FlopCounterMode: N*K*(C/G)*prod(output)*prod(kernel) for a convolution and
    N*C*prod(input)*(K/G)*prod(kernel) for a transposed one (every input pixel meets every tap).
    """

    n: int
    k: int
    c: int
    groups: int
    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...] = ()
    transposed: bool = False

    @property
    def macs(self) -> int:
        taps = math.prod(self.kernel)
        if self.transposed:
            return self.n * self.c * math.prod(self.input_size) * (self.k // self.groups) * taps
        return self.n * self.k * (self.c // self.groups) * math.prod(self.output_size) * taps


@dataclass(frozen=True)
class Layer:
    """One node of the workload graph.

    ``macs`` is the dense multiply-accumulate count of conv / linear / matmul layers (exactly
    FlopCounterMode's flops / 2); ``elementwise_ops`` counts element operations of every other
    kind. ``effective_*`` describe the layer after pruning: ``effective_dims`` has the smaller
    dimensions of structurally pruned layers (whole filters / input channels removed), and
    ``effective_macs`` additionally scales by the remaining unstructured weight density.
    Bytes are at the layer's bit-widths: ``input_bytes`` counts every input activation tensor.
    ``fusable``: the layer can run in its producer's output path, being a per-channel normalization
    (batch norm at inference) or a one-input elementwise activation; set at capture from its aten ops.

    Channels that do not depend on the input (``codesign.capture.channels``): ``dead_channels`` counts the
    output channels that are exactly 0 for every input (a zero filter without bias, a batch norm with
    gamma = beta = 0, and whatever such a channel reaches through f(0) = 0 activations, pooling, concat,
    split and shuffle); ``constant_channels`` counts the output channels that are the same for every input
    but not all 0 (a zero filter with a bias): reported, not removed. ``dead_input_channels`` lists, for a
    conv / linear layer with constant weights, the indices of its input channels (C of a conv, the input
    features of a linear) that are dead: their weights count as removed in ``weight_density``,
    ``effective_dims`` and ``effective_macs``.
    ``input_density`` is the share of nonzero values in the layer's first (for a MAC layer: streamed)
    activation input, measured by running the model once on its example inputs (1.0 when not measured);
    ``output_density`` the same share for its output activation.
    """

    name: str
    op: OpKind
    aten: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    dims: ConvDims | GemmDims | None = None
    macs: int = 0
    elementwise_ops: int = 0
    params: int = 0
    bits: Bits = field(default_factory=Bits)
    input_bytes: int = 0
    weight_bytes: int = 0
    output_bytes: int = 0
    weight_density: float = 1.0
    effective_dims: ConvDims | GemmDims | None = None
    effective_macs: int | None = None
    module: str = ""
    folded: tuple[str, ...] = ()
    fusable: bool = False  # a per-channel normalization (batch norm at inference) or a one-input activation
    dead_channels: int = 0  # output channels exactly 0 for every input
    constant_channels: int = 0  # output channels the same for every input, not all 0
    dead_input_channels: tuple[int, ...] = ()  # MAC layers: input channels exactly 0 for every input (removed)
    input_density: float = 1.0  # nonzeros / elements of the first activation input, measured on the model
    output_density: float = 1.0  # nonzeros / elements of the output activation, measured on the model
    # MAC layers: the strongest standard N:M pattern (N nonzeros at most in every group of M consecutive weights
    # along the reduction, per kernel position) the weights follow, as (N, M); None for none (capture.pruning)
    nm_pattern: tuple[int, int] | None = None
    loop_nest: ConvNdDims | None = None  # the op's own loop nest when ``dims`` are a lowering of it

    @property
    def gemm(self) -> GemmDims | None:
        """The layer as GEMMs (dense, original dimensions), or None for a non-MAC layer."""
        return self.dims.gemm() if self.dims is not None else None

    @property
    def macs_after_pruning(self) -> int:
        return self.effective_macs if self.effective_macs is not None else self.macs


def bytes_at(elements: int, bits: int) -> int:
    """Bytes of a tensor of ``elements`` values stored densely packed at ``bits`` each."""
    return math.ceil(elements * bits / 8)


@dataclass(frozen=True)
class UnsupportedOp:
    """An exported op that maps to no layer, with what it leaves out of the layers.

    ``macs``: FlopCounterMode's flops / 2 for all ``count`` occurrences, None when FlopCounterMode has no
    formula for the op (it then counts 0 too); ``params``: parameters that only these ops read.
    """

    aten: str
    count: int
    macs: int | None = None
    params: int = 0


@dataclass(frozen=True)
class Unmapped:
    """What the unsupported ops of a workload leave out of its layers, in absolute terms and as a share.

    ``macs_share`` = unsupported MACs / (layer MACs + unsupported MACs), over the ops with a MAC formula;
    ``unknown`` lists the ops whose MACs no formula gives. ``params_share`` likewise over parameters.
    """

    ops: tuple[UnsupportedOp, ...]
    macs: int
    params: int
    macs_share: float
    params_share: float
    unknown: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return sum(op.count for op in self.ops)

    def to_dict(self) -> dict:
        return {
            "ops": [{"aten": op.aten, "count": op.count, "macs": op.macs, "params": op.params} for op in self.ops],
            "macs": self.macs, "params": self.params, "macs_share": self.macs_share,
            "params_share": self.params_share, "macs_unknown": list(self.unknown),
        }


@dataclass(frozen=True)
class Workload:
    """A captured network: its layers in topological order and the graph between them.

    ``unsupported`` names every exported op that maps to no layer, with its count; ``unsupported_ops`` says
    for each what it leaves out (MACs, parameters). Totals count those parameters: they equal the model's.
    """

    model: str
    layers: tuple[Layer, ...]
    graph: nx.DiGraph
    input_shapes: tuple[tuple[int, ...], ...] = ()
    unsupported: tuple[tuple[str, int], ...] = ()  # (aten op name, count)
    unsupported_ops: tuple[UnsupportedOp, ...] = ()  # the same ops with the MACs and parameters they hold

    def unmapped(self) -> Unmapped | None:
        """What the unsupported ops leave out of the layers; None when every op maps to a layer."""
        if not self.unsupported:
            return None
        ops = self.unsupported_ops or tuple(UnsupportedOp(name, count) for name, count in self.unsupported)
        macs = sum(op.macs or 0 for op in ops)
        params = sum(op.params for op in ops)
        layer_macs = sum(layer.macs for layer in self.layers)
        layer_params = sum(layer.params for layer in self.layers)
        return Unmapped(
            ops=ops, macs=macs, params=params,
            macs_share=macs / (layer_macs + macs) if macs else 0.0,
            params_share=params / (layer_params + params) if params else 0.0,
            unknown=tuple(op.aten for op in ops if op.macs is None),
        )

    def layer(self, name: str) -> Layer:
        for item in self.layers:
            if item.name == name:
                return item
        raise KeyError(name)

    def mac_layers(self) -> Iterable[Layer]:
        return (layer for layer in self.layers if layer.op.has_macs)

    def totals(self) -> dict[str, float | int]:
        layers = self.layers
        macs = sum(layer.macs for layer in layers)
        effective = sum(layer.macs_after_pruning for layer in layers)
        unsupported_params = sum(op.params for op in self.unsupported_ops)
        params = sum(layer.params for layer in layers) + unsupported_params
        weight_bytes = sum(layer.weight_bytes for layer in layers)
        dense_weights = sum(layer.params * layer.weight_density for layer in layers) + unsupported_params
        streamed = [(math.prod(layer.input_shapes[0]), layer.input_density) for layer in layers
                    if layer.op.has_macs and layer.input_shapes]
        streamed_elements = sum(elements for elements, _ in streamed)
        return {
            "layers": len(layers),
            "macs": macs,
            "effective_macs": effective,
            "elementwise_ops": sum(layer.elementwise_ops for layer in layers),
            "params": params,  # every parameter of the model: the layers' and those only unsupported ops read
            "weight_bytes": weight_bytes,
            "activation_bytes": sum(layer.output_bytes for layer in layers),
            "weight_density": (dense_weights / params) if params else 1.0,
            # nonzeros / elements over the activations the MAC layers stream (measured; 1.0 if not measured)
            "mac_input_density": (
                sum(elements * density for elements, density in streamed) / streamed_elements
                if streamed_elements else 1.0
            ),
            # what ops that map to no layer hold: MACs by FlopCounterMode's formulas, parameters only they read
            "unsupported_macs": sum(op.macs or 0 for op in self.unsupported_ops),
            "unsupported_params": unsupported_params,
        }
