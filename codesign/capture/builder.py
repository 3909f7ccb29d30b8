"""Walk an exported program's graph into the layers of a Workload, in topological order.

Every call in the graph becomes (part of) a layer, a weight-side computation of one, export
bookkeeping (shape asserts), or an entry under ``unsupported``: nothing is dropped silently. A constant
subgraph (one computed from parameters and shapes only) is folded away, except where it holds MACs: such an
op and everything computed from it are layers like the rest (their constant operands are their inputs).
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

import networkx as nx
import torch
from torch.export import ExportedProgram
from torch.fx import Node
from torch.fx.node import map_arg
from torch.utils.flop_counter import flop_registry

from codesign.capture import aten_ops
from codesign.capture.activations import measure_density
from codesign.capture.channels import KnownValues, channel_state, zero_channels
from codesign.capture.constants import ConstantNodes
from codesign.capture.folding import SPLIT_VIEW_OPS, match_channel_shuffle, packet_name, shape_of
from codesign.capture.lowering import lower_composites
from codesign.capture.precision import BitsPolicy
from codesign.capture.quantized import outside_quantizers, read_quantization
from codesign.capture.pruning import DENSE, Sparsity, conv_sparsity, gemm_weight_sparsity, without_dead_inputs
from codesign.errors import BitWidthError
from codesign.workload import ConvDims, ConvNdDims, GemmDims, Layer, OpKind, UnsupportedOp, Workload, bytes_at

__all__ = ["build_workload"]


@dataclass
class _Op:
    """A layer before it is named: the nodes it covers and what it computes."""

    kind: OpKind
    nodes: list[Node]
    out: Node | None
    inputs: list[Union[Node, "_Op"]]
    input_shapes: list[tuple[int, ...]]
    output_shape: tuple[int, ...]
    weights: list[Node] = field(default_factory=list)
    dims: ConvDims | GemmDims | None = None
    elementwise_ops: int = 0
    weight: Node | None = None
    # "conv", "conv3d" ([K, C/G, T, R, S], lowered per depth slice), "nk" (linear weight), "kn" (right operand
    # of a GEMM) or "transposed" ([C, K/G, *kernel] of a transposed convolution)
    weight_layout: str = ""
    suffix: str = ""
    base: str = ""  # name of the layer inside its module; default: the first node's name
    weight_side: list[Node] = field(default_factory=list)  # weight-side computations (weight_orig * mask)
    loop_nest: ConvNdDims | None = None  # a convolution's own loop nest when ``dims`` lower it

    @property
    def aten(self) -> tuple[str, ...]:
        names = [str(node.target) for node in self.nodes]
        extra = sorted({str(node.target) for node in self.weight_side})
        return tuple(dict.fromkeys(names + extra))

    @property
    def fusable(self) -> bool:
        """A per-channel norm or a one-input activation (``aten_ops.fusable`` on every op it covers)."""
        packets = {packet_name(node) for node in self.nodes + self.weight_side}
        return aten_ops.fusable(self.kind, packets, len(self.input_shapes))


def _numbered(base: str, node_name: str) -> str:
    """``channel_shuffle_3`` for node ``view_3``: a readable name that keeps the node's serial."""
    head, _, serial = node_name.rpartition("_")
    return f"{base}_{serial}" if head and serial.isdigit() else base


def _module_path(node: Node) -> str:
    stack = outside_quantizers(node.meta.get("nn_module_stack") or {})
    if not stack:
        return ""
    path = list(stack.values())[-1]
    return str(path[0]) if isinstance(path, tuple) else str(path)


def _arg(node: Node, index: int, name: str, default: Any = None) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _tensor_nodes(values: Iterable[Any]) -> list[Node]:
    found: list[Node] = []
    for value in values:
        if isinstance(value, Node):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(_tensor_nodes(value))
    return found


def _first_shape(node: Node) -> tuple[int, ...]:
    value = node.meta.get("val")
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
        return tuple(int(size) for size in value[0].shape)
    shape = shape_of(node)
    return shape if shape is not None else ()


def _is_tensor(node: Node) -> bool:
    value = node.meta.get("val")
    return isinstance(value, torch.Tensor) or (
        isinstance(value, (list, tuple)) and any(isinstance(item, torch.Tensor) for item in value)
    )


def _live_constants(program: ExportedProgram, constants: ConstantNodes) -> set[Node]:
    """Constant nodes that are MAC ops or are computed from one: they are costed as layers, not folded away
    (a 1x1 conv over a positional grid computed from shapes only runs on every inference as exported)."""
    live: set[Node] = set()
    for node in program.graph_module.graph.nodes:
        if node not in constants or node.op != "call_function":
            continue
        if packet_name(node) in aten_ops.MAC_OPS or any(item in live for item in node.all_input_nodes):
            live.add(node)
    return live


def _formula_macs(node: Node) -> int | None:
    """FlopCounterMode's flops / 2 for one exported call from its example shapes; None without a formula."""
    packet = getattr(node.target, "overloadpacket", None)
    formula = flop_registry.get(packet) if packet is not None else None
    if formula is None:
        return None

    def value(item: Node) -> Any:
        return item.meta.get("val")

    try:
        args = map_arg(node.args, value)
        kwargs = map_arg(node.kwargs, value)
        return int(formula(*args, **kwargs, out_val=node.meta.get("val"))) // 2
    except Exception:  # shapes the formula does not accept: the MACs stay unknown
        return None


class _Walker:
    def __init__(self, program: ExportedProgram, fold_views: bool) -> None:
        self.program = program
        self.fold_views = fold_views
        self.constants = ConstantNodes(program)
        self.ops: list[_Op] = []
        self.producers: dict[Node, frozenset[int]] = {}
        self.op_of_out: dict[Node, int] = {}
        self.covered: set[Node] = set()
        self.splits: dict[Node, Node] = {}
        self.unsupported: Counter[str] = Counter()
        self.unsupported_macs: Counter[str] = Counter()  # FlopCounterMode's MACs of unsupported ops with a formula
        self.unsupported_formula: set[str] = set()  # unsupported ops FlopCounterMode has a formula for
        self.unsupported_reads: dict[str, set[Node]] = {}  # constant operands of each unsupported op
        self.live = _live_constants(program, self.constants)  # constant nodes that hold or follow MACs
        self.claimed_const_ops: set[Node] = set()
        self.known: KnownValues | None = None  # input-independent values (dead / constant channels)
        self.densities: dict[Node, float] = {}  # measured nonzero share of the nodes layers read and write

    # -- helpers -------------------------------------------------------------------------
    def _add(self, op: _Op) -> int:
        self.ops.append(op)
        index = len(self.ops) - 1
        if op.out is not None:
            self.producers[op.out] = frozenset({index})
            self.op_of_out[op.out] = index
        return index

    def _operands(self, node: Node) -> tuple[list[Node], list[Node]]:
        """(activation inputs, constant operands) of a call, in argument order."""
        activations, weights = [], []
        streamed = self._streamed_constant(node)
        for item in _tensor_nodes(list(node.args) + list(node.kwargs.values())):
            if item in self.constants and item not in self.live and item is not streamed:
                weights.append(item)
            elif _is_tensor(item) or item.op == "placeholder":
                activations.append(item)
        return activations, weights

    def _streamed_constant(self, node: Node) -> Node | None:
        """The operand a MAC op computed from constants streams (its input, not its weight), or None."""
        if node not in self.live or packet_name(node) not in aten_ops.MAC_OPS or not node.args:
            return None
        item = node.args[1] if packet_name(node) in ("addmm", "baddbmm") and len(node.args) > 1 else node.args[0]
        return item if isinstance(item, Node) else None

    def _weight_side(self, weights: list[Node]) -> list[Node]:
        """The weight-side computations (e.g. weight_orig * mask) feeding a layer, not yet claimed."""
        found: list[Node] = []
        stack = list(weights)
        while stack:
            item = stack.pop()
            if item.op != "call_function" or item in self.claimed_const_ops or item in self.live:
                continue
            self.claimed_const_ops.add(item)
            found.append(item)
            stack.extend(item.all_input_nodes)
            for user in item.users:  # shape asserts on the weight side belong to the same layer
                if packet_name(user) in aten_ops.BOOKKEEPING_OPS and user not in self.claimed_const_ops:
                    self.claimed_const_ops.add(user)
        return found

    def _simple_op(self, node: Node, kind: OpKind, **extra: Any) -> _Op:
        activations, weights = self._operands(node)
        return _Op(
            kind=kind,
            nodes=[node],
            out=node,
            inputs=list(activations),
            input_shapes=[_first_shape(item) for item in activations],
            output_shape=_first_shape(node),
            weights=weights,
            weight_side=self._weight_side(weights),
            **extra,
        )

    def _passthrough(self, node: Node) -> None:
        merged: set[int] = set()
        for item in node.all_input_nodes:
            merged |= self.producers.get(item, frozenset())
        self.producers[node] = frozenset(merged)

    # -- the walk ------------------------------------------------------------------------
    def walk(self, quantizers: frozenset[Node] = frozenset()) -> None:
        """``quantizers``: fake-quantization nodes (``codesign.capture.quantized``), read for widths, not layers."""
        self.claimed_const_ops.update(node for node in quantizers if node in self.constants)
        for node in self.program.graph_module.graph.nodes:
            if node.op in ("placeholder", "output", "get_attr") or node in self.covered:
                if node.op == "placeholder":
                    self.producers.setdefault(node, frozenset())
                continue
            if (node in self.constants and node not in self.live) or node in self.claimed_const_ops:
                continue
            if node in quantizers:
                self._passthrough(node)
                continue
            if node.op != "call_function":
                self._unsupported(node, f"{node.op}:{node.target}")
                continue
            if node.target is operator.getitem:
                self._getitem(node)
                continue
            packet = packet_name(node)
            if packet is None:
                if _is_tensor(node):
                    self._unsupported(node, str(getattr(node.target, "__name__", node.target)))
                continue  # Python arithmetic on symbolic sizes
            if packet in aten_ops.BOOKKEEPING_OPS:
                continue
            if not _is_tensor(node):
                self._unsupported(node, str(node.target), passthrough=False)
                continue
            self._call(node, packet)

    def _unsupported(self, node: Node, name: str, passthrough: bool = True) -> None:
        """List an op no layer kind covers, with the MACs FlopCounterMode's formula gives it and the constants
        it reads; its inputs connect straight to its users."""
        self.unsupported[name] += 1
        macs = _formula_macs(node)
        if macs is not None:
            self.unsupported_formula.add(name)
            self.unsupported_macs[name] += macs
        reads = self.unsupported_reads.setdefault(name, set())
        for item in node.all_input_nodes:
            if item in self.constants:
                reads.add(item)
        if passthrough:
            self._passthrough(node)

    def _getitem(self, node: Node) -> None:
        source = node.args[0]
        if source in self.splits:
            if not node.users:
                return  # an unused piece of a split reads and writes nothing
            origin = self.splits[source]
            index = int(node.args[1])
            piece = _first_shape(node)
            op = _Op(
                kind=OpKind.SLICE,
                nodes=[source],
                out=node,
                inputs=[origin],
                input_shapes=[_first_shape(origin)],
                output_shape=piece,
                suffix=f".{index}",
            )
            self._add(op)
        else:
            self.producers[node] = self.producers.get(source, frozenset())

    def _call(self, node: Node, packet: str) -> None:
        if packet in aten_ops.TRANSPOSED_CONV_OPS or (
            packet in ("convolution", "_convolution") and bool(_arg(node, 6, "transposed", False))
        ):
            self._transposed_conv(node, packet)
        elif packet in aten_ops.CONV_OPS:
            self._add(self._conv(node, packet))
        elif packet in aten_ops.LINEAR_OPS:
            self._add(self._linear(node))
        elif packet in aten_ops.GEMM_OPS:
            self._add(self._gemm(node, packet))
        elif packet in aten_ops.ATTENTION_OPS:
            self._attention(node)
        elif packet in aten_ops.SPLIT_OPS:
            activations, _ = self._operands(node)
            if activations:
                self.splits[node] = activations[0]
            self._passthrough(node)
        elif packet in SPLIT_VIEW_OPS and (members := match_channel_shuffle(node)):
            self._shuffle(members)
        else:
            kind = aten_ops.simple_kind(packet)
            if kind is None:
                self._unsupported(node, str(node.target))
                return
            if kind is OpKind.RESHAPE and self._fold_into_view(node):
                return
            op = self._simple_op(node, kind)
            op.elementwise_ops = self._element_ops(kind, packet, node, op)
            self._add(op)

    def _element_ops(self, kind: OpKind, packet: str, node: Node, op: _Op) -> int:
        if kind in (OpKind.ELEMENTWISE, OpKind.NORM, OpKind.SOFTMAX):
            return aten_ops.numel(op.output_shape)
        if kind is OpKind.POOL:
            source = op.input_shapes[0] if op.input_shapes else op.output_shape
            return aten_ops.pool_window(packet, node.args, source, op.output_shape)
        if kind is OpKind.RESAMPLE:
            source = _first_shape(node.args[0]) if node.args and isinstance(node.args[0], Node) else op.output_shape
            return aten_ops.resample_ops(packet, node.args, source, op.output_shape)
        return 0

    def _fold_into_view(self, node: Node) -> bool:
        """Append a view to the RESHAPE node it reads from, when that one feeds only this view."""
        if not self.fold_views:
            return False
        activations, weights = self._operands(node)
        if len(activations) != 1 or weights:
            return False
        source = activations[0]
        index = self.op_of_out.get(source)
        if index is None or len(source.users) != 1:
            return False
        op = self.ops[index]
        if op.kind is not OpKind.RESHAPE:
            return False
        op.nodes.append(node)
        del self.op_of_out[source]
        op.out = node
        op.output_shape = _first_shape(node)
        self.producers[node] = frozenset({index})
        self.op_of_out[node] = index
        return True

    def _shuffle(self, members: list[Node]) -> None:
        first, last = members[0], members[-1]
        source = first.args[0]
        op = _Op(
            kind=OpKind.CHANNEL_SHUFFLE,
            nodes=list(members),
            out=last,
            inputs=[source],
            input_shapes=[_first_shape(source)],
            output_shape=_first_shape(last),
            base=_numbered("channel_shuffle", first.name),
        )
        index = self._add(op)
        for member in members:
            self.covered.add(member)
            self.producers[member] = frozenset({index})

    def _conv(self, node: Node, packet: str) -> _Op:
        op = self._simple_op(node, OpKind.CONV)
        source, weight = node.args[0], node.args[1]
        if packet in ("conv1d", "conv2d", "conv3d"):
            stride, padding, dilation = _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0), _arg(node, 5, "dilation", 1)
            groups = _arg(node, 6, "groups", 1)
        else:
            stride, padding, dilation = _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0), _arg(node, 5, "dilation", 1)
            groups = _arg(node, 8, "groups", 1)
        weight_shape = _first_shape(weight)
        if len(weight_shape) == 5:  # 3-D: 2-D convolutions per output depth slice (aten_ops.conv3d_dims)
            nest = aten_ops.conv_nest(
                _first_shape(source), weight_shape, op.output_shape, stride, padding, dilation, int(groups)
            )
            op.kind, op.dims, op.loop_nest, layout = aten_ops.conv_kind(nest), aten_ops.conv3d_dims(nest), nest, "conv3d"
        else:
            dims = aten_ops.conv_dims(
                _first_shape(source), weight_shape, op.output_shape, stride, padding, dilation, int(groups)
            )
            op.kind, op.dims, layout = aten_ops.conv_kind(dims), dims, "conv"
        if weight in self.constants:
            op.weight, op.weight_layout = weight, layout
        return op

    def _transposed_conv(self, node: Node, packet: str) -> None:
        """A transposed convolution in col2im form: the GEMM of every input pixel with the weight matrix
        (TRANSPOSED_CONV), then the overlap-add of its columns into the output, plus the bias (RESAMPLE)."""
        source, weight = node.args[0], node.args[1]
        bias = _arg(node, 2, "bias", None)
        if packet in aten_ops.TRANSPOSED_CONV_OPS:  # (input, weight, bias, stride, padding, output_padding, groups, dilation)
            stride, padding = _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0)
            output_padding, groups, dilation = _arg(node, 5, "output_padding", 0), _arg(node, 6, "groups", 1), _arg(node, 7, "dilation", 1)
        else:  # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
            stride, padding, dilation = _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0), _arg(node, 5, "dilation", 1)
            output_padding, groups = _arg(node, 7, "output_padding", 0), _arg(node, 8, "groups", 1)
        output_shape = _first_shape(node)
        nest = aten_ops.conv_nest(
            _first_shape(source), _first_shape(weight), output_shape, stride, padding, dilation, int(groups),
            transposed=True, output_padding=output_padding,
        )
        gemm = aten_ops.transposed_conv_gemm(nest)
        activations, weights = self._operands(node)
        columns_shape = (nest.n, gemm.batch * gemm.n, gemm.m // nest.n)  # col2im's input: N x (K*taps) x pixels
        weight_side = self._weight_side(weights)
        matrix = _Op(
            kind=OpKind.TRANSPOSED_CONV, nodes=[node], out=None, inputs=list(activations),
            input_shapes=[_first_shape(item) for item in activations], output_shape=columns_shape,
            weights=[item for item in weights if item is weight], dims=gemm, suffix=".gemm",
            weight_side=weight_side, loop_nest=nest,
        )
        if weight in self.constants and weight not in self.live:
            matrix.weight, matrix.weight_layout = weight, "transposed"
        self._add(matrix)
        bias_weights = [item for item in weights if item is not weight]
        overlap_add = _Op(
            kind=OpKind.RESAMPLE, nodes=[node], out=node, inputs=[matrix], input_shapes=[columns_shape],
            output_shape=output_shape, weights=bias_weights, suffix=".col2im", loop_nest=nest,
            elementwise_ops=aten_ops.numel(columns_shape) + (aten_ops.numel(output_shape) if bias is not None else 0),
        )
        self._add(overlap_add)

    def _linear(self, node: Node) -> _Op:
        op = self._simple_op(node, OpKind.LINEAR)
        source, weight = node.args[0], node.args[1]
        weight_shape = _first_shape(weight)
        out_features = weight_shape[0] if len(weight_shape) == 2 else 1
        op.dims = aten_ops.linear_dims(_first_shape(source), weight_shape[-1], out_features)
        if weight in self.constants and len(weight_shape) == 2:
            op.weight, op.weight_layout = weight, "nk"
        return op

    def _gemm(self, node: Node, packet: str) -> _Op:
        op = self._simple_op(node, OpKind.MATMUL)
        left, right = (node.args[1], node.args[2]) if packet in ("addmm", "baddbmm") else (node.args[0], node.args[1])
        a, b = _first_shape(left), _first_shape(right)
        if packet in ("mm", "addmm"):
            op.dims = GemmDims(batch=1, m=a[0], k=a[1], n=b[1])
        elif packet in ("bmm", "baddbmm"):
            op.dims = GemmDims(batch=a[0], m=a[1], k=a[2], n=b[2])
        else:
            op.dims = aten_ops.matmul_dims(a, b, op.output_shape)
        if right in self.constants and len(b) == 2 and left not in self.constants:
            op.kind = OpKind.LINEAR
            op.weight, op.weight_layout = right, "kn"
        return op

    def _attention(self, node: Node) -> None:
        """SDPA as Q K^T (MATMUL) -> softmax -> A V (MATMUL), the ops its math backend runs."""
        query, key, value = node.args[0], node.args[1], node.args[2]
        q, k, v = _first_shape(query), _first_shape(key), _first_shape(value)
        scores_dims, context_dims = aten_ops.attention_dims(q, k, v)
        activations, weights = self._operands(node)
        extra_inputs = [item for item in activations if item not in (query, key, value)]
        scores_shape = tuple(q[:-1]) + (k[-2],)
        scores = _Op(
            kind=OpKind.MATMUL, nodes=[node], out=None, inputs=[query, key], input_shapes=[q, k],
            output_shape=scores_shape, dims=scores_dims, suffix=".qk",
            weights=[], weight_side=self._weight_side(weights),
        )
        self._add(scores)
        softmax = _Op(
            kind=OpKind.SOFTMAX, nodes=[node], out=None,
            inputs=[scores] + extra_inputs,
            input_shapes=[scores_shape] + [_first_shape(item) for item in extra_inputs],
            output_shape=scores_shape, weights=weights, elementwise_ops=aten_ops.numel(scores_shape), suffix=".softmax",
        )
        self._add(softmax)
        context = _Op(
            kind=OpKind.MATMUL, nodes=[node], out=node, inputs=[softmax, value], input_shapes=[scores_shape, v],
            output_shape=_first_shape(node), dims=context_dims, suffix=".av",
        )
        self._add(context)


# -- from ops to layers --------------------------------------------------------------------
def _names(ops: list[_Op]) -> list[str]:
    """Layer names from module paths: the module itself when it holds exactly one layer and no
    submodule layers, else ``path/node`` (root-level ops: the node name)."""
    paths = [_module_path(op.nodes[0]) for op in ops]
    counts = Counter(paths)
    parents = {path[:i] for path in paths for i in range(len(path)) if path[i] == "."}
    names: list[str] = []
    taken: set[str] = set()
    for op, path in zip(ops, paths):
        base = f"{op.base or op.nodes[0].name}{op.suffix}"
        if path and counts[path] == 1 and path not in parents:
            name = path
        elif path:
            name = f"{path}/{base}"
        else:
            name = base
        candidate, serial = name, 1
        while candidate in taken:
            serial += 1
            candidate = f"{name}#{serial}"
        taken.add(candidate)
        names.append(candidate)
    return names


def _streamed_input(op: _Op) -> Node | None:
    """The activation a layer streams: its first input, when that is a node of the graph."""
    first = op.inputs[0] if op.inputs else None
    return first if isinstance(first, Node) else None


def build_workload(
    program: ExportedProgram,
    *,
    name: str,
    policy: BitsPolicy,
    fold_views: bool,
    measure_on: list[tuple[torch.Tensor, ...]] | None = None,
    quantized_from: torch.nn.Module | None = None,
) -> Workload:
    """The Workload of ``program``; ``measure_on``: batches of inputs to measure activation density on.

    Composite ops (einsum, LSTM / GRU / RNN) are decomposed and autocast regions inlined first
    (``codesign.capture.lowering``).
    """
    program = lower_composites(program)
    walker = _Walker(program, fold_views)
    # Fake quantization is read for its widths (``quantized_from``: the module exported, whose quantizers say them).
    quantization = read_quantization(walker.program, quantized_from, walker.constants)
    walker.walk(quantization.nodes)
    ops = walker.ops
    walker.known = KnownValues(program, walker.constants)
    read = [node for node in (_streamed_input(op) for op in ops) if node is not None]
    read += [op.out for op in ops if op.out is not None]
    walker.densities = measure_density(program, walker.constants, measure_on, read) if measure_on else {}
    names = _names(ops)
    unknown = policy.unused_names(set(names))
    if unknown:
        sample = ", ".join(names[:8])
        raise BitWidthError(
            f"no layer named {', '.join(unknown)} for a bit-width override (layer names look like: {sample}, ...)"
        )
    index_of = {id(op): index for index, op in enumerate(ops)}
    counted_params: set[str] = set()
    layers: list[Layer] = []
    graph = nx.DiGraph()
    for index, (op, layer_name) in enumerate(zip(ops, names)):
        weight = op.weight if op.weight is not None else next(iter(op.weights), None)
        bits = policy.bits_for(layer_name, op.kind, quantization.widths(weight, _streamed_input(op), op.out))
        layer = _layer(op, layer_name, bits, walker, counted_params)
        layers.append(layer)
        graph.add_node(layer_name, layer=layer)
    for index, op in enumerate(ops):
        # edges in argument order, so a layer's predecessors list its inputs in the order of ``input_shapes``
        sources: list[int] = []
        for item in op.inputs:
            found = [index_of[id(item)]] if isinstance(item, _Op) else sorted(walker.producers.get(item, frozenset()))
            sources.extend(source for source in found if source != index and source not in sources)
        for source in sources:
            graph.add_edge(names[source], names[index])
    signature = program.graph_signature
    user_inputs = set(signature.user_inputs)
    input_shapes = tuple(
        _first_shape(node)
        for node in program.graph_module.graph.nodes
        if node.op == "placeholder" and node.name in user_inputs
    )
    return Workload(
        model=name,
        layers=tuple(layers),
        graph=graph,
        input_shapes=input_shapes,
        unsupported=tuple(sorted(walker.unsupported.items())),
        unsupported_ops=_unsupported_ops(walker, counted_params),
    )


def _unsupported_ops(walker: _Walker, counted_params: set[str]) -> tuple[UnsupportedOp, ...]:
    """Each unsupported op with FlopCounterMode's MACs (None without a formula) and the parameters only
    unsupported ops read (counted at the first op, by name, that reads them)."""
    found = []
    for name, count in sorted(walker.unsupported.items()):
        params = 0
        for item in sorted(walker.unsupported_reads.get(name, ()), key=lambda node: node.name):
            for target in sorted(walker.constants.params_read(item)):
                if target not in counted_params:
                    counted_params.add(target)
                    params += walker.constants.parameter_numel(target)
        macs = walker.unsupported_macs[name] if name in walker.unsupported_formula else None
        found.append(UnsupportedOp(aten=name, count=count, macs=macs, params=params))
    return tuple(found)


def _layer(op: _Op, name: str, bits, walker: _Walker, counted_params: set[str]) -> Layer:
    activation_bits, weight_bits = bits.activation, bits.weight
    constants = walker.constants
    params = 0
    for weight in op.weights:
        read = sorted(constants.params_read(weight))
        size = aten_ops.numel(_first_shape(weight))
        if not read and getattr(weight, "op", None) == "call_function":
            # a weight computed from buffers alone (PT2E dequantizes its int8 weights, kept as buffers): the
            # buffer of the weight's size, not the scales and zero points beside it; a buffer read as it is (batch
            # norm's running statistics) is state, not a parameter
            read += [target for target in sorted(constants.stored_read(weight))
                     if constants.parameter_numel(target) == size]
        for target in read:
            if target not in counted_params:
                counted_params.add(target)
                params += constants.parameter_numel(target)
    weight_elements = sum(aten_ops.numel(_first_shape(weight)) for weight in op.weights)
    output_elements = aten_ops.numel(op.output_shape)
    if op.kind is OpKind.RESHAPE:
        input_bytes = output_bytes = 0  # a view moves no data
    else:
        output_bytes = bytes_at(output_elements, activation_bits)
        if op.kind is OpKind.SLICE:
            input_bytes = output_bytes  # a slice reads only its part
        elif {packet_name(node) for node in op.nodes} <= aten_ops.SHAPE_ONLY_OPS:
            input_bytes = 0  # zeros_like, new_zeros, ...: only the input's shape is read
        else:
            input_bytes = sum(bytes_at(aten_ops.numel(shape), activation_bits) for shape in op.input_shapes)
    macs = op.dims.macs if op.dims is not None else 0
    dead_inputs = _dead_inputs(op, walker)
    sparsity = _sparsity(op, walker, dead_inputs) if op.weight is not None else DENSE
    folded = tuple(node.name for node in op.nodes) if len(op.nodes) > 1 else ()
    state = None
    if op.out is not None:
        state = channel_state(walker.known.value(op.out), op.output_shape, _output_axis(op, walker))
    source = _streamed_input(op)
    density = walker.densities.get(source, 1.0) if source is not None else 1.0
    output_density = walker.densities.get(op.out, 1.0) if op.out is not None else 1.0
    return Layer(
        name=name,
        op=op.kind,
        aten=op.aten,
        input_shapes=tuple(tuple(shape) for shape in op.input_shapes),
        output_shape=tuple(op.output_shape),
        dims=op.dims,
        macs=macs,
        elementwise_ops=op.elementwise_ops,
        params=params,
        bits=bits,
        input_bytes=input_bytes,
        weight_bytes=bytes_at(weight_elements, weight_bits),
        output_bytes=output_bytes,
        weight_density=sparsity.density,
        effective_dims=sparsity.effective_dims,
        effective_macs=sparsity.effective_macs,
        nm_pattern=sparsity.nm_pattern,
        module=_module_path(op.nodes[0]),
        folded=folded,
        fusable=op.fusable,
        dead_channels=state.dead_count if state is not None else 0,
        constant_channels=state.constant_count if state is not None else 0,
        dead_input_channels=tuple(int(index) for index in torch.nonzero(dead_inputs).flatten())
        if dead_inputs is not None else (),
        input_density=float(density),
        output_density=float(output_density),
        loop_nest=op.loop_nest,
    )


def _transposed_sparsity(value: torch.Tensor, dead_inputs: torch.Tensor | None, dims: GemmDims) -> Sparsity:
    """Pruning of a transposed convolution's weight [C, K/G, *kernel] as its per-group GEMM (C/G) x (K/G*taps):
    the weight viewed as a grouped 1x1 conv of K/G*taps filters over C/G channels per group, which is exactly
    that GEMM (zero rows are unused input channels, zero columns outputs that are always 0)."""
    rows = value.detach().reshape(value.shape[0], -1)  # [C, K/G * taps]
    if dead_inputs is not None:
        rows = without_dead_inputs(rows, dead_inputs, "kn")
    groups, columns = dims.batch, rows.shape[1]
    as_filters = rows.reshape(groups, dims.k, columns).transpose(1, 2).reshape(groups * columns, dims.k, 1, 1)
    conv = ConvDims(n=dims.m, k=groups * columns, c=groups * dims.k, p=1, q=1, r=1, s=1, h=1, w=1, groups=groups)
    sparsity = conv_sparsity(as_filters, conv)
    effective = sparsity.effective_dims
    if isinstance(effective, ConvDims):
        effective = GemmDims(batch=effective.groups, m=dims.m, k=effective.c // effective.groups,
                             n=effective.k // effective.groups)
    return Sparsity(density=sparsity.density, effective_macs=sparsity.effective_macs, effective_dims=effective)


def _output_axis(op: _Op, walker: _Walker) -> int | None:
    """The output channel axis: K of a conv, N of a GEMM, else the one tracked through the graph."""
    rank = len(op.output_shape)
    if isinstance(op.dims, ConvDims):
        return 1 if rank == len(_first_shape(op.nodes[0].args[1])) else 0  # batched: N first
    if isinstance(op.dims, GemmDims):
        return rank - 1 if rank else None
    axis = walker.known.axis(op.out) if op.out is not None else None
    if axis is None and rank:
        axis = 1 if rank >= 2 else 0
    return axis


def _dead_inputs(op: _Op, walker: _Walker) -> torch.Tensor | None:
    """Mask of the input channels of a MAC layer with constant weights that are 0 for every input."""
    source = _streamed_input(op)
    if op.weight is None or source is None or op.dims is None or not op.input_shapes:
        return None
    shape = op.input_shapes[0]
    if not shape:
        return None
    if op.weight_layout in ("conv", "conv3d", "transposed"):
        axis = 1 if len(shape) == len(_first_shape(op.weight)) else 0  # batched: N first
    else:
        axis = len(shape) - 1
    return zero_channels(walker.known.value(source), shape, axis)


def _sparsity(op: _Op, walker: _Walker, dead_inputs: torch.Tensor | None = None) -> Sparsity:
    if dead_inputs is None and walker.constants.all_nonzero(op.weight):
        return DENSE
    value = walker.constants.value(op.weight)
    if not isinstance(value, torch.Tensor) or value.numel() == 0:
        return DENSE
    if op.weight_layout == "transposed":
        return _transposed_sparsity(value, dead_inputs, op.dims)
    if dead_inputs is not None:
        groups = op.dims.groups if isinstance(op.dims, ConvDims) else 1
        layout = "conv" if op.weight_layout == "conv3d" else op.weight_layout
        value = without_dead_inputs(value, dead_inputs, layout, groups)
    if op.weight_layout == "conv3d" and isinstance(op.dims, ConvDims):
        # [K, C/G, T, R, S] as the lowered 2-D weight [K, C/G * T, R, S] (channel c, slice t -> c*T + t)
        return conv_sparsity(value.reshape(value.shape[0], -1, value.shape[-2], value.shape[-1]), op.dims)
    if op.weight_layout == "conv" and isinstance(op.dims, ConvDims):
        return conv_sparsity(value, op.dims)
    if op.weight_layout == "nk" and isinstance(op.dims, GemmDims):
        return gemm_weight_sparsity(value.t(), op.dims)
    if op.weight_layout == "kn" and isinstance(op.dims, GemmDims):
        return gemm_weight_sparsity(value, op.dims)
    return DENSE

