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
    "MIN_BITS", "MAX_BITS", "OpKind", "MAC_KINDS", "Bits", "ConvDims", "GemmDims", "Layer", "Workload", "bytes_at",
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

    @property
    def has_macs(self) -> bool:
        return self in MAC_KINDS


MAC_KINDS = frozenset(
    {OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.GROUPED_CONV, OpKind.LINEAR, OpKind.MATMUL}
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
class Workload:
    """A captured network: its layers in topological order and the graph between them."""

    model: str
    layers: tuple[Layer, ...]
    graph: nx.DiGraph
    input_shapes: tuple[tuple[int, ...], ...] = ()
    unsupported: tuple[tuple[str, int], ...] = ()  # (aten op name, count)

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
        params = sum(layer.params for layer in layers)
        weight_bytes = sum(layer.weight_bytes for layer in layers)
        dense_weights = sum(layer.params * layer.weight_density for layer in layers)
        streamed = [(math.prod(layer.input_shapes[0]), layer.input_density) for layer in layers
                    if layer.op.has_macs and layer.input_shapes]
        streamed_elements = sum(elements for elements, _ in streamed)
        return {
            "layers": len(layers),
            "macs": macs,
            "effective_macs": effective,
            "elementwise_ops": sum(layer.elementwise_ops for layer in layers),
            "params": params,
            "weight_bytes": weight_bytes,
            "activation_bytes": sum(layer.output_bytes for layer in layers),
            "weight_density": (dense_weights / params) if params else 1.0,
            # nonzeros / elements over the activations the MAC layers stream (measured; 1.0 if not measured)
            "mac_input_density": (
                sum(elements * density for elements, density in streamed) / streamed_elements
                if streamed_elements else 1.0
            ),
        }
