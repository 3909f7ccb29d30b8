"""Channels whose values do not depend on the input: dead (exactly 0) and constant channels.

Pruning leaves channels that are the same for every input: a zero filter without bias, a batch norm
with gamma = beta = 0 (network slimming, Liu et al. ICCV 2017), a consumer of such a channel after an
activation with f(0) = 0. Each tensor of the exported graph gets a *known* tensor: the value every
element has whatever the input, NaN where it depends on the input. It has the tensor's rank and size 1
along every dimension where it is uniform (a zero filter's output is ``[1, K, 1, 1]``), and None stands
for "nothing known" (every element depends on the input), which is what a dense model has everywhere.

The known tensors are computed by running each op on the known tensors of its inputs, with exact rules
for the ops that turn input-dependent values into known ones:

* conv / linear: an output is known when every nonzero weight it reads meets a known input (a zero filter
  gives its bias; padding is a known 0);
* batch norm (running statistics): a channel with gamma = 0 outputs beta for every input; a known input
  gives ``(x - mean) / sqrt(var + eps) * gamma + beta`` as the op computes it; layer norm with gamma = 0
  outputs beta;
* mul: a known 0 in any operand gives 0 (broadcasting included); every other pointwise op (add, relu,
  sigmoid, ...) is known where all its operands are, with the value the op computes (so relu, gelu, silu,
  tanh, hardswish, leaky_relu, elu keep a 0 at 0, and sigmoid turns it into a constant 0.5);
* data movement (views, permute, roll, slice, split / chunk, concat, repeat, channel shuffle, pad), pooling /
  reductions (vector norms included) and interpolation (nearest, bilinear, bicubic: each output a weighted sum
  of inputs of its own channel) move or combine the known values exactly (an input-dependent element is NaN and
  stays NaN, and reaches every output it is a tap of).

Every other op gives None: the analysis only claims what holds for every input.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Sequence

import torch
from torch.export import ExportedProgram
from torch.fx import Node
from torch.fx.node import map_arg

from codesign.capture import aten_ops
from codesign.capture.constants import ConstantNodes
from codesign.capture.folding import packet_name

__all__ = ["KnownValues", "ChannelState", "channel_state", "zero_channels"]

_NAN = float("nan")

# Ops whose output elements are input elements (or known pad values), moved: evaluated exactly.
_MOVEMENT_OPS = (
    aten_ops.VIEW_OPS | aten_ops.PERMUTE_OPS | aten_ops.SLICE_OPS | aten_ops.SPLIT_OPS | aten_ops.CONCAT_OPS
    | aten_ops.SHUFFLE_OPS
    | frozenset(
        """
        pad constant_pad_nd reflection_pad1d reflection_pad2d replication_pad1d replication_pad2d
        to _to_copy copy type_as flip roll repeat tile expand_copy view_copy permute_copy slice_copy
        """.split()
    )
)
# Pooling, reductions and interpolation: a NaN input element makes every output it reaches NaN. grid_sample and
# affine_grid are not here: where the sampling grid depends on the input nothing is claimed (a NaN coordinate
# samples nothing, which would read as a known 0).
_POOL_OPS = aten_ops.POOL_OPS | aten_ops.REDUCTION_OPS | (
    aten_ops.RESAMPLE_OPS - frozenset({"grid_sampler", "grid_sampler_2d", "grid_sampler_3d", "affine_grid_generator"})
)
# Outputs that ignore the values of their input.
_CONSTANT_LIKE_OPS = frozenset({"zeros_like", "ones_like", "full_like", "new_zeros", "new_ones", "new_full"})
# empty_like / new_empty hold arbitrary values: never known.
_POINTWISE_OPS = aten_ops.ELEMENTWISE_OPS - _MOVEMENT_OPS - _CONSTANT_LIKE_OPS - frozenset(
    {"glu", "fill", "fill_", "zero_", "empty_like", "new_empty"}
)
_ABSORBING_OPS = frozenset({"mul", "mul_"})  # a 0 in any operand gives 0
_GEMM_WITH_WEIGHT = frozenset({"mm", "addmm", "matmul"})
_LAYER_NORMS = frozenset({"layer_norm", "native_layer_norm"})
# Ops whose output features sit on the last dimension.
_LAST_AXIS_OPS = (
    aten_ops.LINEAR_OPS | aten_ops.GEMM_OPS | aten_ops.ATTENTION_OPS | aten_ops.EMBEDDING_OPS | aten_ops.SOFTMAX_OPS
    | frozenset({"layer_norm", "native_layer_norm", "rms_norm", "_fused_rms_norm"})
)
_CHANNEL_AXIS_OPS = aten_ops.PER_CHANNEL_NORMS | frozenset({"group_norm", "native_group_norm", "instance_norm"})


class _Unknown(Exception):
    """An operand whose value cannot be stood in for: the op's output is unknown."""


def _meta(node: Any) -> torch.Tensor | None:
    value = node.meta.get("val") if isinstance(node, Node) else None
    return value if isinstance(value, torch.Tensor) else None


def _shape(node: Node) -> tuple[int, ...] | None:
    value = _meta(node)
    if value is None:
        return None
    try:
        return tuple(int(size) for size in value.shape)
    except (TypeError, ValueError):  # symbolic sizes
        return None


def compress(value: Any) -> Any:
    """Size 1 along every dimension where the known tensor is uniform; None when nothing is known."""
    if isinstance(value, (list, tuple)):
        return type(value)(compress(item) for item in value)
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        return None
    value = value.detach()
    nan = torch.isnan(value)
    if bool(nan.all()):
        return None
    for dim in range(value.dim()):
        if value.shape[dim] > 1:
            first = value.narrow(dim, 0, 1)
            same = (value == first) | (torch.isnan(value) & torch.isnan(first))
            if bool(same.all()):
                value = first
    return value.contiguous()


class KnownValues:
    """The known tensor and the channel axis of every node of an exported graph (module docstring)."""

    def __init__(self, program: ExportedProgram, constants: ConstantNodes) -> None:
        self.constants = constants
        self._values: dict[Node, Any] = {}
        self._axes: dict[Node, int | None] = {}
        with torch.no_grad():
            for node in program.graph_module.graph.nodes:
                self._visit(node)

    def value(self, node: Node) -> torch.Tensor | None:
        """The known tensor of an activation node (None: every element depends on the input)."""
        value = self._values.get(node)
        return value if isinstance(value, torch.Tensor) else None

    def axis(self, node: Node) -> int | None:
        """The channel axis of a node: 1 in NCHW feature maps, the last one for features and tokens."""
        return self._axes.get(node)

    # -- the walk ------------------------------------------------------------------------
    def _visit(self, node: Node) -> None:
        if node in self.constants or node.op == "output":
            return
        shape = _shape(node)
        if node.op == "placeholder":
            self._axes[node] = (1 if len(shape) >= 2 else 0) if shape else None
            return
        if node.op != "call_function":
            return
        if node.target is operator.getitem:
            source, index = node.args[0], node.args[1]
            known = self._values.get(source)
            if isinstance(known, (list, tuple)) and isinstance(index, int) and -len(known) <= index < len(known):
                self._values[node] = known[index]
            self._axes[node] = self._axes.get(source)
            return
        packet = packet_name(node)
        if packet is None:
            return
        self._axes[node] = self._axis(node, packet, shape)
        try:
            value = self._rule(node, packet)
        except Exception:  # an op we cannot replay on known values: nothing is claimed
            value = None
        if value is not None:
            value = compress(value)
            if value is not None:
                self._values[node] = value

    def _rule(self, node: Node, packet: str) -> Any:
        if packet in aten_ops.CONV_OPS:
            return self._conv(node, packet)
        if packet in aten_ops.LINEAR_OPS or packet in _GEMM_WITH_WEIGHT:
            return self._gemm(node, packet)
        if packet in aten_ops.PER_CHANNEL_NORMS:
            return self._batch_norm(node, packet)
        if packet in _LAYER_NORMS:
            return self._layer_norm(node, packet)
        if packet in _MOVEMENT_OPS or packet in _POOL_OPS:
            return self._exact(node)
        if packet in _CONSTANT_LIKE_OPS:
            return self._constant_like(node)
        if packet in _POINTWISE_OPS:
            return self._pointwise(node, packet)
        return None

    # -- operands ------------------------------------------------------------------------
    def _activations(self, node: Node) -> list[Node]:
        found: list[Node] = []
        map_arg((node.args, node.kwargs), lambda item: found.append(item) if item not in self.constants else None)
        return found

    def _nothing_known(self, node: Node) -> bool:
        return all(self._values.get(item) is None for item in self._activations(node))

    def _constant(self, item: Any) -> Any:
        if not isinstance(item, Node):
            return item
        if item not in self.constants:
            raise _Unknown(item.name)
        value = self.constants.value(item)
        if value is None:
            raise _Unknown(item.name)
        return value

    def _dense(self, node: Node, weight: torch.Tensor) -> bool:
        """No zero weight at all (the common case, counted once per weight)."""
        return self.constants.all_nonzero(node)

    def _call(self, node: Node, resolve) -> Any:
        args = map_arg(node.args, resolve)
        kwargs = map_arg(node.kwargs, resolve)
        return node.target(*args, **kwargs)

    # -- rules ---------------------------------------------------------------------------
    def _exact(self, node: Node) -> Any:
        """Data movement, pooling, reductions: the op itself on full-size known tensors (NaN unknown)."""
        if self._nothing_known(node):
            return None

        def resolve(item: Node) -> Any:
            if item in self.constants:
                return self._constant(item)
            meta, shape = _meta(item), _shape(item)
            if meta is None or shape is None or not meta.is_floating_point():
                raise _Unknown(item.name)
            known = self._values.get(item)
            if known is None:
                return torch.full(shape, _NAN, dtype=meta.dtype)
            return known.expand(shape).clone()

        return self._call(node, resolve)

    def _constant_like(self, node: Node) -> Any:
        meta = _meta(node)
        if meta is None or not meta.is_floating_point():
            return None

        def resolve(item: Node) -> Any:
            if item in self.constants:
                return self._constant(item)
            item_meta, shape = _meta(item), _shape(item)
            if item_meta is None or shape is None:
                raise _Unknown(item.name)
            return torch.zeros(shape, dtype=item_meta.dtype)

        return self._call(node, resolve)

    def _pointwise(self, node: Node, packet: str) -> Any:
        """Known where every operand is (a 0 in any operand of mul suffices), valued as the op computes."""
        meta = _meta(node)
        if meta is None or not meta.is_floating_point():
            return None
        absorbing = packet in _ABSORBING_OPS
        if self._nothing_known(node) and not absorbing:
            return None
        masks: list[torch.Tensor] = []
        zeros: list[torch.Tensor] = []

        def resolve(item: Node) -> Any:
            if item in self.constants:
                value = self._constant(item)
                if isinstance(value, torch.Tensor):
                    known = ~torch.isnan(value) if value.is_floating_point() else torch.ones((), dtype=torch.bool)
                    masks.append(known)
                    zeros.append(known & (value == 0))
                return value
            item_meta, shape = _meta(item), _shape(item)
            if item_meta is None or shape is None:
                raise _Unknown(item.name)
            known_value = self._values.get(item)
            if known_value is None:
                unit = (1,) * len(shape)
                masks.append(torch.zeros(unit, dtype=torch.bool))
                return torch.zeros(unit, dtype=item_meta.dtype)
            known = ~torch.isnan(known_value)
            filled = torch.where(known, known_value, torch.zeros((), dtype=known_value.dtype))
            masks.append(known)
            zeros.append(known & (filled == 0))
            return filled

        value = self._call(node, resolve)
        if not isinstance(value, torch.Tensor):
            return None
        mask = torch.ones((), dtype=torch.bool)
        for item in masks:
            mask = mask & item
        if absorbing:
            for item in zeros:
                mask = mask | item
        if not bool(mask.any()):
            return None
        return torch.where(mask, value, torch.full((), _NAN, dtype=value.dtype))

    def _conv(self, node: Node, packet: str) -> Any:
        if packet in ("convolution", "_convolution") and bool(_arg(node, 6, "transposed", False)):
            return None
        source, weight_node = node.args[0], node.args[1]
        bias_node = _arg(node, 2, "bias", None)
        weight = self._constant(weight_node)
        bias = self._constant(bias_node) if bias_node is not None else None
        in_shape, out_shape = _shape(source), _shape(node)
        if not isinstance(weight, torch.Tensor) or in_shape is None or out_shape is None:
            return None
        batched = len(in_shape) == weight.dim()
        channel = 1 if batched else 0
        known = self._values.get(source)
        if known is None and self._dense(weight_node, weight):
            return None
        nonzero = weight != 0
        if known is None:  # only filters without a nonzero weight are known: their bias
            dead_filters = ~nonzero.reshape(weight.shape[0], -1).any(dim=1)
            if not bool(dead_filters.any()):
                return None
            filled = bias.detach() if isinstance(bias, torch.Tensor) else torch.zeros(weight.shape[0], dtype=weight.dtype)
            value = torch.where(dead_filters, filled, torch.full((), _NAN, dtype=filled.dtype))
            unit = [1] * len(out_shape)
            unit[channel] = weight.shape[0]
            return value.reshape(unit)
        full_shape = list(in_shape)
        if batched and known.shape[0] == 1:
            full_shape[0] = 1  # the known values are the same for every sample
        full = known.expand(full_shape)
        unknown = torch.isnan(full)
        filled = torch.where(unknown, torch.zeros((), dtype=full.dtype), full).to(weight.dtype)
        indicator = unknown.to(weight.dtype)
        ones = nonzero.to(weight.dtype)

        def with_input(first: torch.Tensor, kernel: torch.Tensor, keep_bias: bool):
            def resolve(item: Node) -> Any:
                if item is source:
                    return first
                if item is weight_node:
                    return kernel
                if item is bias_node:
                    return bias if keep_bias else None
                return self._constant(item)

            return resolve

        value = self._call(node, with_input(filled, weight, True))
        undetermined = self._call(node, with_input(indicator, ones, False)) > 0
        return torch.where(undetermined, torch.full((), _NAN, dtype=value.dtype), value)

    def _gemm(self, node: Node, packet: str) -> Any:
        """x @ W (+ b) with a constant W: an output feature is known where every input feature it reads is."""
        if packet == "addmm":
            source, weight_node = node.args[1], node.args[2]
        else:
            source, weight_node = node.args[0], node.args[1]
        if source in self.constants or weight_node not in self.constants:
            return None
        weight = self._constant(weight_node)
        in_shape = _shape(source)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or in_shape is None or not in_shape:
            return None
        known = self._values.get(source)
        if known is None and self._dense(weight_node, weight):
            return None
        weight_kn = weight.t() if packet == "linear" else weight
        nonzero = (weight_kn != 0).to(weight.dtype)
        features = in_shape[-1]
        if known is None:
            if bool(nonzero.any(dim=0).all()):
                return None
            known = torch.full((1,) * len(in_shape), _NAN, dtype=weight.dtype)
        known = known.expand(*known.shape[:-1], features)
        unknown = torch.isnan(known)
        filled = torch.where(unknown, torch.zeros((), dtype=known.dtype), known).to(weight.dtype)
        undetermined = torch.matmul(unknown.to(weight.dtype), nonzero) > 0

        def resolve(item: Node) -> Any:
            return filled if item is source else self._constant(item)

        value = self._call(node, resolve)
        return torch.where(undetermined, torch.full((), _NAN, dtype=value.dtype), value)

    def _batch_norm(self, node: Node, packet: str) -> Any:
        """Per channel (x - mean) / sqrt(var + eps) * gamma + beta: known where x is, or where gamma = 0."""
        if packet in ("batch_norm", "native_batch_norm", "_native_batch_norm_legit") and bool(
            _arg(node, 5, "training", False)
        ):
            return None
        source = node.args[0]
        weight_node = _arg(node, 1, "weight", None)
        gamma = self._constant(weight_node) if weight_node is not None else None
        shape = _shape(source)
        if shape is None or len(shape) < 2:
            return None
        channels = shape[1]
        gamma_zero = None
        if isinstance(gamma, torch.Tensor):
            gamma_zero = (gamma == 0).reshape([1, channels] + [1] * (len(shape) - 2))
        known = self._values.get(source)
        if known is None and (gamma_zero is None or not bool(gamma_zero.any())):
            return None
        meta = _meta(source)
        if known is None:
            known = torch.full([1, channels] + [1] * (len(shape) - 2), _NAN, dtype=meta.dtype)
        known = known.expand(known.shape[0], channels, *known.shape[2:])
        mask = ~torch.isnan(known)
        if gamma_zero is not None:
            mask = mask | gamma_zero
        filled = torch.where(mask & ~torch.isnan(known), known, torch.zeros((), dtype=known.dtype))

        def resolve(item: Node) -> Any:
            return filled if item is source else self._constant(item)

        result = self._call(node, resolve)
        output = result[0] if isinstance(result, (list, tuple)) else result
        value = torch.where(mask, output, torch.full((), _NAN, dtype=output.dtype))
        if isinstance(result, (list, tuple)):
            return (value,) + (None,) * (len(result) - 1)
        return value

    def _layer_norm(self, node: Node, packet: str) -> Any:
        """A feature with gamma = 0 outputs beta for every input (the normalized value is finite)."""
        normalized = [int(size) for size in node.args[1]]
        weight_node = _arg(node, 2, "weight", None)
        bias_node = _arg(node, 3, "bias", None)
        gamma = self._constant(weight_node) if weight_node is not None else None
        if not isinstance(gamma, torch.Tensor) or not bool((gamma == 0).any()):
            return None
        beta = self._constant(bias_node) if bias_node is not None else None
        shape = _shape(node.args[0])
        if shape is None:
            return None
        unit = [1] * (len(shape) - len(normalized)) + normalized
        shift = beta if isinstance(beta, torch.Tensor) else torch.zeros_like(gamma)
        value = torch.where(gamma == 0, shift, torch.full((), _NAN, dtype=gamma.dtype)).reshape(unit)
        return (value, None, None) if packet == "native_layer_norm" else value

    # -- the channel axis ----------------------------------------------------------------
    def _axis(self, node: Node, packet: str, shape: tuple[int, ...] | None) -> int | None:
        rank = len(shape) if shape is not None else None
        if rank is None or rank == 0:
            return None
        if packet in aten_ops.CONV_OPS:
            weight = _meta(node.args[1])
            return 1 if weight is not None and rank == weight.dim() else 0
        if packet in _LAST_AXIS_OPS:
            return rank - 1
        if packet in _CHANNEL_AXIS_OPS:
            return 1 if rank >= 2 else 0
        sources = [item for item in self._activations(node) if self._axes.get(item) is not None]
        if not sources:
            return 1 if rank >= 2 else 0
        source = sources[0]
        axis, source_shape = self._axes[source], _shape(source)
        if source_shape is None:
            return None
        try:
            return _moved_axis(node, packet, axis, source_shape, shape)
        except Exception:
            return min(axis, rank - 1)


def _arg(node: Node, index: int, name: str, default: Any = None) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _moved_axis(node: Node, packet: str, axis: int, source: Sequence[int], shape: Sequence[int]) -> int | None:
    """Where the channel axis of the first activation operand lands in the output."""
    rank, source_rank = len(shape), len(source)
    if packet == "permute":
        order = [int(item) % source_rank for item in node.args[1]]
        return order.index(axis)
    if packet in ("transpose", "swapaxes"):
        first, second = int(node.args[1]) % source_rank, int(node.args[2]) % source_rank
        return second if axis == first else first if axis == second else axis
    if packet == "t":
        return source_rank - 1 - axis
    if packet in aten_ops.REDUCTION_OPS or packet in ("select",):
        dims = node.args[1] if len(node.args) > 1 else None
        if dims is None:
            return None if rank == 0 else min(axis, rank - 1)
        dims = [int(item) % source_rank for item in (dims if isinstance(dims, (list, tuple)) else [dims])]
        if axis in dims:
            return None
        if rank == source_rank:  # keepdim
            return axis
        return axis - sum(1 for item in dims if item < axis)
    if packet in aten_ops.VIEW_OPS and rank != source_rank:
        before = math.prod(source[:axis])
        for dim in range(rank):
            if math.prod(shape[:dim]) == before and shape[dim] == source[axis]:
                return dim
        for dim in range(rank):
            if math.prod(shape[:dim]) <= before < math.prod(shape[: dim + 1]):
                return dim
        return None
    return axis + (rank - source_rank) if rank >= source_rank else min(axis, rank - 1)


# -- reading channels off a known tensor ---------------------------------------------------
class ChannelState:
    """Per channel along one axis: exactly 0 for every input (dead), or input-independent and not all 0."""

    def __init__(self, dead: torch.Tensor, constant: torch.Tensor) -> None:
        self.dead = dead
        self.constant = constant

    @property
    def dead_count(self) -> int:
        return int(self.dead.sum())

    @property
    def constant_count(self) -> int:
        return int(self.constant.sum())


def _per_channel(known: torch.Tensor, axis: int, channels: int) -> torch.Tensor:
    sizes = list(known.shape)
    sizes[axis] = channels
    return known.expand(sizes).movedim(axis, 0).reshape(channels, -1)


def channel_state(known: torch.Tensor | None, shape: Sequence[int], axis: int | None) -> ChannelState | None:
    """Dead and constant channels of a tensor of ``shape`` along ``axis``; None when nothing is known."""
    if known is None or axis is None or not shape or not 0 <= axis < len(shape) or known.dim() != len(shape):
        return None
    channels = int(shape[axis])
    values = _per_channel(known, axis, channels)
    fixed = ~torch.isnan(values).any(dim=1)
    dead = (values == 0).all(dim=1)
    return ChannelState(dead=dead, constant=fixed & ~dead)


def zero_channels(known: torch.Tensor | None, shape: Sequence[int], axis: int) -> torch.Tensor | None:
    """Boolean mask of the channels along ``axis`` that are exactly 0 for every input (None: none are)."""
    state = channel_state(known, shape, axis)
    if state is None or not bool(state.dead.any()):
        return None
    return state.dead
