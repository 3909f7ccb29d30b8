"""A captured network as the steps integer inference runs: MAC layers with their fused output paths, residual adds,
stand-alone activations, pooling and views, each read from the exported program's own nodes and tensors.

One step writes one int8 tensor (named by the exported node that produces it). A MAC step covers a conv / linear
layer and the batch norms and activations the simulator fused into its output path (``chains``): batch norm folds
into the weights (``scheme.fold_batchnorm``), ReLU / ReLU6 / hardtanh / clamp become clamp bounds, and one
table activation (GELU, h-swish, SiLU, sigmoid, tanh, hard sigmoid) is a LUT. Anything else is an
``UnsupportedOpError`` naming the op and what to try.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codesign.errors import CodesignError
from codesign.workload import OpKind, Workload

__all__ = ["UnsupportedOpError", "ConvGeometry", "Activation", "Step", "NetGraph", "lower", "LUT_FUNCTIONS"]


class UnsupportedOpError(CodesignError):
    """The model has an op the integer accelerator cannot run (``layer``: the layer's name, when one is to blame)."""

    def __init__(self, message: str, layer: str = ""):
        super().__init__(message)
        self.layer = layer


def _hardsigmoid(x):
    return np.clip(np.asarray(x, dtype=np.float64) + 3.0, 0.0, 6.0) / 6.0


def _gelu_tanh(x):
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


# aten packet -> the function its LUT holds: a name of hdl.lut.FUNCTIONS or a numpy callable
LUT_FUNCTIONS: dict[str, Any] = {
    "gelu": "gelu", "hardswish": "hswish", "silu": "silu", "sigmoid": "sigmoid", "tanh": "tanh",
    "hardsigmoid": _hardsigmoid,
}
_CLAMPS = ("relu", "relu6", "hardtanh", "clamp", "clamp_min", "clamp_max", "clip")
_VIEWS = ("view", "_unsafe_view", "reshape", "flatten", "squeeze", "unsqueeze", "contiguous", "clone", "dropout",
          "alias", "detach", "lift_fresh_copy", "feature_dropout", "alpha_dropout", "native_dropout", "expand")
_HINT = {
    OpKind.SOFTMAX: "the accelerator has no softmax unit; run softmax on the host after the accelerator's output "
                    "(leave it out of the compiled model)",
    OpKind.NORM: "fold the normalization into the conv before it (a batch norm right after a conv folds) or remove it",
    OpKind.MATMUL: "only products with a constant weight (conv, linear) run on the array",
    OpKind.CONCAT: "concatenation is not on the output path yet; compile the branches as separate models",
    OpKind.PERMUTE: "keep the layout: the accelerator stores tensors channel-last and cannot transpose them",
    OpKind.CHANNEL_SHUFFLE: "channel shuffles are not on the output path yet",
    OpKind.SLICE: "slicing is not on the output path yet",
    OpKind.EMBEDDING: "embeddings are not on the output path yet",
}


@dataclass(frozen=True)
class ConvGeometry:
    """A conv (a linear is a 1x1 conv over a 1x1 image): kernel, stride, padding, dilation, groups."""

    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1


@dataclass(frozen=True)
class Activation:
    """The activations of an output path: clamp bounds (real) before the table, the table (or None), clamp bounds
    after it. ``lut_input``: the node whose tensor the table reads (its quantization is the table's input grid)."""

    pre_low: float = -math.inf
    pre_high: float = math.inf
    lut: Any = None
    lut_name: str = ""
    lut_input: str = ""
    post_low: float = -math.inf
    post_high: float = math.inf


@dataclass
class Step:
    """One int8 tensor written: ``kind`` is 'mac', 'add', 'act', 'maxpool', 'avgpool' or 'alias'.

    ``inputs`` / ``output`` are exported node names (tensors); ``layers`` the workload layers it covers (a MAC
    layer and its fused chain). Shapes are NCHW (a 2-D tensor [N, C] is [N, C, 1, 1]).
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    output: str
    layers: tuple[str, ...]
    input_shapes: tuple[tuple[int, int, int, int], ...]
    output_shape: tuple[int, int, int, int]
    weight: np.ndarray | None = None  # float64, [K, C/G, R, S] (linear: [N, K, 1, 1]), batch norm folded
    bias: np.ndarray | None = None  # float64 [K]
    geometry: ConvGeometry = field(default_factory=ConvGeometry)
    activation: Activation = field(default_factory=Activation)
    linear: bool = False


@dataclass
class NetGraph:
    """The steps in execution order, the network's input and output tensors, and every tensor's NCHW shape."""

    steps: list[Step]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    shapes: dict[str, tuple[int, int, int, int]]

    def observed(self) -> list[str]:
        """Tensors whose range calibration must measure: inputs, every step's output but aliases and max pools
        (they keep their input's quantization), and every table's input."""
        names = list(self.inputs)
        for step in self.steps:
            if step.kind not in ("alias", "maxpool"):
                names.append(step.output)
            if step.activation.lut is not None and step.activation.lut_input:
                names.append(step.activation.lut_input)
        return list(dict.fromkeys(names))


def _nchw(shape: tuple[int, ...], what: str) -> tuple[int, int, int, int]:
    if len(shape) == 4:
        return tuple(int(v) for v in shape)  # type: ignore[return-value]
    if len(shape) == 2:
        return (int(shape[0]), int(shape[1]), 1, 1)
    raise UnsupportedOpError(f"{what}: a tensor of shape {tuple(shape)}; the accelerator runs 4-D (N, C, H, W) "
                             "images and 2-D (N, features) vectors")


def _shape(node) -> tuple[int, ...]:
    value = node.meta.get("val")
    return tuple(int(v) for v in value.shape)


def _arg(node, index: int, name: str, default: Any = None) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _pair(value: Any, default: int) -> tuple[int, int]:
    if value is None:
        return (default, default)
    if isinstance(value, int):
        return (value, value)
    values = [int(v) for v in value]
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def _packet(node) -> str:
    packet = getattr(node.target, "overloadpacket", None)
    return getattr(packet, "__name__", str(node.target))


def _array(constants, node) -> np.ndarray | None:
    if node is None:
        return None
    import torch

    return constants.value(node).detach().to(dtype=torch.float64).numpy().copy()


def _unsupported(layer, reason: str) -> UnsupportedOpError:
    aten = ", ".join(f"aten.{name.split('.')[1] if name.startswith('aten.') else name}" for name in layer.aten[:2])
    where = f" in {layer.module}" if layer.module else ""
    return UnsupportedOpError(f"layer {layer.name} ({layer.op.value}, {aten}{where}): {reason}", layer.name)


def _module_class(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    entry = list(stack.values())[-1]
    kind = entry[1] if isinstance(entry, tuple) and len(entry) > 1 else ""
    name = kind.__name__ if isinstance(kind, type) else str(kind)
    return name.rsplit(".", 1)[-1].strip("'>")


def _support_error(layer, op) -> UnsupportedOpError | None:
    """Why no unit runs ``layer`` (a layer not fused into a MAC layer's output path), or None."""
    packet = _packet(op.nodes[0]).rstrip("_")
    kind = layer.op
    if kind in (OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.GROUPED_CONV, OpKind.LINEAR):
        if packet not in ("conv2d", "linear"):
            return _unsupported(layer, "the compiler runs aten.conv2d and aten.linear MAC layers; export the model "
                                "with nn.Conv2d / nn.Linear")
        return None
    if kind is OpKind.ELEMENTWISE:
        if packet == "add" or packet in _CLAMPS or packet in LUT_FUNCTIONS:
            return None
        return _unsupported(layer, "the output path runs add and activations only (relu, relu6, hardtanh, clamp, "
                            "gelu, hardswish, silu, sigmoid, tanh, hardsigmoid)")
    if kind in (OpKind.POOL, OpKind.RESHAPE):
        return None
    return _unsupported(layer, _HINT.get(kind, "no unit of the accelerator runs it"))


def _clamp_bounds(node, packet: str) -> tuple[float, float]:
    if packet == "relu":
        return 0.0, math.inf
    if packet == "relu6":
        return 0.0, 6.0
    if packet == "hardtanh":
        return float(_arg(node, 1, "min_val", -1.0)), float(_arg(node, 2, "max_val", 1.0))
    low, high = -math.inf, math.inf
    if packet in ("clamp", "clip"):
        low = _arg(node, 1, "min", None)
        high = _arg(node, 2, "max", None)
    elif packet == "clamp_min":
        low = _arg(node, 1, "min", None)
    elif packet == "clamp_max":
        high = _arg(node, 1, "max", None)
    if not all(isinstance(v, (int, float)) or v is None for v in (low, high)):
        raise ValueError("tensor bounds")
    return (-math.inf if low is None else float(low)), (math.inf if high is None else float(high))


def _activation_chain(layer_nodes: list, layers: list, producer_out: str) -> Activation:
    """Fold a chain of activation nodes (each one layer) into pre-clamps, one table, post-clamps."""
    pre_low, pre_high, post_low, post_high = -math.inf, math.inf, -math.inf, math.inf
    lut = None
    lut_name = ""
    lut_input = ""
    previous = producer_out
    for node, layer in zip(layer_nodes, layers):
        packet = _packet(node)
        if packet.rstrip("_") in _CLAMPS:
            try:
                low, high = _clamp_bounds(node, packet.rstrip("_"))
            except ValueError:
                raise _unsupported(layer, "clamp bounds must be numbers") from None
            if lut is None:
                pre_low, pre_high = max(pre_low, low), min(pre_high, high)
            else:
                post_low, post_high = max(post_low, low), min(post_high, high)
        elif packet.rstrip("_") in LUT_FUNCTIONS:
            if lut is not None:
                raise _unsupported(layer, f"a second table activation after {lut_name} in one output path; the "
                                   "output path has one LUT (put a conv or an add between them)")
            name = packet.rstrip("_")
            lut = LUT_FUNCTIONS[name]
            if name == "gelu" and _arg(node, 1, "approximate", "none") == "tanh":
                lut = _gelu_tanh
            lut_name = name
            lut_input = previous
        else:
            raise _unsupported(layer, "no output-path unit computes it; supported activations: relu, relu6, "
                               "hardtanh, clamp, gelu, hardswish, silu, sigmoid, tanh, hardsigmoid")
        previous = node.name
    return Activation(pre_low, pre_high, lut, lut_name, lut_input, post_low, post_high)


def lower(program, workload: Workload, chains: dict[str, tuple[str, ...]]) -> NetGraph:
    """The steps of ``program`` (the ``torch.export`` program ``workload`` was captured from) with MAC layers'
    output paths as in ``chains`` (MAC layer name -> fused layer names, the simulator's fusion). An
    ``UnsupportedOpError`` names the layer, its aten op and the class of the module it came from."""
    from codesign.capture.builder import _names, _Walker  # the capture's own layer naming and node grouping

    walker = _Walker(program, True)
    walker.walk()
    ops = dict(zip(_names(walker.ops), walker.ops))
    try:
        return _lower(program, workload, chains, walker, ops)
    except UnsupportedOpError as error:
        layer = next((item for item in workload.layers if item.name == error.layer), None)
        module = _module_class(ops[error.layer].nodes[0]) if error.layer in ops else ""
        if layer is None or not layer.module or not module:
            raise
        raise UnsupportedOpError(f"{error} (a {module} module)", error.layer) from None


def _lower(program, workload: Workload, chains: dict[str, tuple[str, ...]], walker, ops) -> NetGraph:
    from codesign.capture.constants import ConstantNodes

    if walker.unsupported:
        op, count = sorted(walker.unsupported.items())[0]
        raise UnsupportedOpError(
            f"the model uses {op} ({count}x), which no unit of the accelerator runs (recurrent layers, "
            "einsum and ops without a layer kind); compile the conv / linear part of the model"
        )
    if workload.unsupported:
        op, count = workload.unsupported[0]
        raise UnsupportedOpError(
            f"the model uses {op} ({count}x), which the capture maps to no layer and the accelerator cannot run; "
            "replace it with supported layers (conv, linear, batch norm, activations, add, pooling)"
        )
    missing = [layer.name for layer in workload.layers if layer.name not in ops]
    if missing:
        raise UnsupportedOpError(f"layer {missing[0]} of the workload is not an op of the exported program; "
                                 "capture the workload from this program")
    constants = ConstantNodes(program)
    layers = {layer.name: layer for layer in workload.layers}
    fused_into = {member: producer for producer, chain in chains.items() for member in chain}
    for layer in workload.layers:  # every op first: an unsupported op is named before any shape is judged
        if layer.name not in fused_into and layer.name in ops:
            error = _support_error(layer, ops[layer.name])
            if error is not None:
                raise error
    shapes: dict[str, tuple[int, int, int, int]] = {}
    user_inputs = set(program.graph_signature.user_inputs)
    inputs = []
    for node in program.graph_module.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            inputs.append(node.name)
            shapes[node.name] = _nchw(_shape(node), f"model input {node.name}")
    if len(inputs) != 1:
        raise UnsupportedOpError(f"the model takes {len(inputs)} inputs; the accelerator runs models of one input")
    steps: list[Step] = []
    for layer in workload.layers:
        if layer.name in fused_into:
            continue
        op = ops.get(layer.name)
        if op is None or op.out is None:
            raise _unsupported(layer, "it has no single output tensor")
        out = op.out
        srcs = [item for item in op.inputs if hasattr(item, "name")]
        if len(srcs) != len(op.inputs):
            raise _unsupported(layer, "an operand is computed inside another layer")
        in_names = tuple(item.name for item in srcs)
        packet = _packet(op.nodes[0]).rstrip("_")
        if layer.op in (OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.GROUPED_CONV, OpKind.LINEAR):
            step = _mac_step(layer, op, packet, constants, chains.get(layer.name, ()), ops, layers, shapes)
        elif layer.op is OpKind.ELEMENTWISE and packet == "add":
            node = op.nodes[0]
            if len(srcs) != 2 or _arg(node, 2, "alpha", 1) != 1 or node.kwargs.get("alpha", 1) != 1:
                raise _unsupported(layer, "the output path adds two activation tensors (x + y); a constant or "
                                   "scaled operand is not supported")
            a, b = (shapes.get(name) for name in in_names)
            if a is None or b is None or a != b:
                raise _unsupported(layer, f"the residual add needs two tensors of one shape, got {a} and {b}")
            step = Step(layer.name, "add", in_names, op.out.name, (layer.name,), (a, b), a)
        elif layer.op is OpKind.ELEMENTWISE and (packet in _CLAMPS or packet in LUT_FUNCTIONS):
            if len(srcs) != 1:
                raise _unsupported(layer, "an activation of more than one tensor")
            shape = shapes[in_names[0]]
            step = Step(layer.name, "act", in_names, op.out.name, (layer.name,), (shape,), shape,
                        activation=_activation_chain([op.nodes[0]], [layer], in_names[0]))
        elif layer.op is OpKind.POOL:
            step = _pool_step(layer, op, packet, in_names, shapes)
        elif layer.op is OpKind.RESHAPE:
            step = _alias_step(layer, op, in_names, shapes)
        elif layer.op is OpKind.ELEMENTWISE:
            raise _unsupported(layer, "the output path runs add and activations only "
                               "(relu, relu6, hardtanh, clamp, gelu, hardswish, silu, sigmoid, tanh, hardsigmoid)")
        else:
            raise _unsupported(layer, _HINT.get(layer.op, "no unit of the accelerator runs it"))
        for name in step.inputs:
            if name not in shapes:
                raise _unsupported(layer, f"its input {name} is computed by nothing the accelerator runs")
        shapes[step.output] = step.output_shape
        steps.append(step)
    outputs = []
    for node in program.graph_module.graph.nodes:
        if node.op == "output":
            for item in node.args[0] if isinstance(node.args[0], (tuple, list)) else [node.args[0]]:
                if not hasattr(item, "name") or item.name not in shapes:
                    raise UnsupportedOpError(f"the model's output {item} is not a tensor a step writes")
                outputs.append(item.name)
    if len(outputs) != 1:
        raise UnsupportedOpError(f"the model returns {len(outputs)} tensors; the accelerator runs models of one output")
    return NetGraph(steps, tuple(inputs), tuple(outputs), shapes)


def _mac_step(layer, op, packet, constants, chain, ops, layers, shapes) -> Step:
    node = op.nodes[0]
    if packet not in ("conv2d", "linear"):
        raise _unsupported(layer, "the compiler runs aten.conv2d and aten.linear MAC layers; export the model with "
                           "nn.Conv2d / nn.Linear")
    if op.weight is None:
        raise _unsupported(layer, "its weight is not a constant of the model")
    source = node.args[0]
    if source.name not in shapes:
        raise _unsupported(layer, f"its input {source.name} is computed by nothing the accelerator runs")
    in_shape = shapes[source.name]
    weight = _array(constants, node.args[1])
    bias_node = _arg(node, 2, "bias", None)
    bias = _array(constants, bias_node) if bias_node is not None else None
    if packet == "linear":
        if len(_shape(source)) != 2:
            raise _unsupported(layer, f"a linear layer over a {len(_shape(source))}-D input; the accelerator runs "
                               "linear layers over (N, features)")
        geometry = ConvGeometry()
        weight = weight.reshape(weight.shape[0], weight.shape[1], 1, 1)
    else:
        geometry = ConvGeometry(
            kernel=(int(weight.shape[2]), int(weight.shape[3])),
            stride=_pair(_arg(node, 3, "stride", 1), 1),
            padding=_padding(_arg(node, 4, "padding", 0), weight.shape[2:], layer),
            dilation=_pair(_arg(node, 5, "dilation", 1), 1),
            groups=int(_arg(node, 6, "groups", 1)),
        )
    out_node = node
    covered = [layer.name]
    act_nodes, act_layers = [], []
    for member in chain:
        member_op = ops[member]
        member_node = member_op.nodes[0]
        member_layer = layers[member]
        member_packet = _packet(member_node)
        if member_layer.op is OpKind.NORM:
            if act_nodes:
                raise _unsupported(member_layer, "a batch norm after an activation cannot fold into the conv; put "
                                   "it right after the conv")
            weight, bias = _fold(member_node, member_packet, constants, weight, bias, member_layer)
        else:
            act_nodes.append(member_node)
            act_layers.append(member_layer)
        out_node = member_op.out
        covered.append(member)
    activation = _activation_chain(act_nodes, act_layers, _pre_activation_name(node, chain, ops, layers))
    out_shape = _nchw(_shape(out_node), f"layer {layer.name}")
    if bias is None:
        bias = np.zeros(weight.shape[0])
    return Step(layer.name, "mac", (source.name,), out_node.name, tuple(covered), (in_shape,), out_shape,
                weight=weight, bias=bias, geometry=geometry, activation=activation, linear=packet == "linear")


def _pre_activation_name(node, chain, ops, layers) -> str:
    """The node after the conv and its batch norms: the tensor the first activation reads."""
    name = node.name
    for member in chain:
        if layers[member].op is OpKind.NORM:
            name = ops[member].out.name
        else:
            break
    return name


def _padding(value, kernel, layer) -> tuple[int, int]:
    if isinstance(value, str):
        if value == "valid":
            return (0, 0)
        if any(k % 2 == 0 for k in kernel):
            raise _unsupported(layer, "padding='same' with an even kernel pads unevenly; pad explicitly")
        return (int(kernel[0]) // 2, int(kernel[1]) // 2)
    return _pair(value, 0)


def _fold(node, packet, constants, weight, bias, layer):
    if packet == "batch_norm":
        gamma, beta, mean, var = (_arg(node, i, n, None) for i, n in
                                  ((1, "weight"), (2, "bias"), (3, "running_mean"), (4, "running_var")))
        eps = float(_arg(node, 7, "eps", 1e-5))
    elif packet == "_native_batch_norm_legit_no_training":
        gamma, beta, mean, var = (_arg(node, i, n, None) for i, n in
                                  ((1, "weight"), (2, "bias"), (3, "running_mean"), (4, "running_var")))
        eps = float(_arg(node, 6, "eps", 1e-5))
    else:
        raise _unsupported(layer, "only batch norm at inference folds into the conv")
    if mean is None or var is None:
        raise _unsupported(layer, "a batch norm without running statistics cannot fold")
    from codesign.integer.scheme import fold_batchnorm

    return fold_batchnorm(weight, bias, _array(constants, gamma), _array(constants, beta), _array(constants, mean),
                          _array(constants, var), eps)


def _pool_step(layer, op, packet, in_names, shapes) -> Step:
    node = op.nodes[0]
    if len(in_names) != 1:
        raise _unsupported(layer, "a pooling of more than one tensor")
    shape = shapes[in_names[0]]
    n, c, h, w = shape
    out_shape = _nchw(_shape(op.out), f"layer {layer.name}")
    if packet in ("max_pool2d", "avg_pool2d"):
        kernel = _pair(_arg(node, 1, "kernel_size"), 1)
        stride = _pair(_arg(node, 2, "stride", None) or kernel, 1)
        padding = _pair(_arg(node, 3, "padding", 0), 0)
        if packet == "max_pool2d":
            dilation = _pair(_arg(node, 4, "dilation", 1), 1)
            ceil_mode = bool(_arg(node, 5, "ceil_mode", False))
            if dilation != (1, 1):
                raise _unsupported(layer, "dilated max pooling is not supported")
        else:
            ceil_mode = bool(_arg(node, 4, "ceil_mode", False))
            if not bool(_arg(node, 5, "count_include_pad", True)) and padding != (0, 0):
                raise _unsupported(layer, "average pooling with count_include_pad=False and padding divides by a "
                                   "varying count; use count_include_pad=True")
            if _arg(node, 6, "divisor_override", None) is not None:
                raise _unsupported(layer, "average pooling with divisor_override is not supported")
        if ceil_mode:
            raise _unsupported(layer, "pooling with ceil_mode=True is not supported; use ceil_mode=False")
        geometry = ConvGeometry(kernel=kernel, stride=stride, padding=padding)
    elif packet in ("adaptive_avg_pool2d", "_adaptive_avg_pool2d", "adaptive_max_pool2d") or packet == "mean":
        if packet == "mean":
            dims = sorted(int(d) % 4 for d in _arg(node, 1, "dim", []))
            if len(_shape(node.args[0])) != 4 or dims != [2, 3]:
                raise _unsupported(layer, "a mean over anything but the spatial dims (2, 3) of an image")
        oh, ow = out_shape[2], out_shape[3]
        if h % oh or w % ow:
            raise _unsupported(layer, f"adaptive pooling from {h}x{w} to {oh}x{ow} has uneven windows")
        kernel = (h // oh, w // ow)
        geometry = ConvGeometry(kernel=kernel, stride=kernel)
        packet = "max_pool2d" if packet == "adaptive_max_pool2d" else "avg_pool2d"
    else:
        raise _unsupported(layer, "the pooling unit runs max and average pooling, adaptive pooling with even windows "
                           "and spatial means")
    kind = "maxpool" if packet == "max_pool2d" else "avgpool"
    return Step(layer.name, kind, in_names, op.out.name, (layer.name,), (shape,), out_shape, geometry=geometry)


def _alias_step(layer, op, in_names, shapes) -> Step:
    if len(in_names) != 1:
        raise _unsupported(layer, "a view of more than one tensor")
    shape = shapes[in_names[0]]
    out = _shape(op.out)
    n, c, h, w = shape
    if len(out) == 2 and h == w == 1 and tuple(out) == (n, c):
        out_shape = (n, c, 1, 1)
    elif len(out) == 4 and tuple(out) == shape:
        out_shape = shape
    elif len(out) == 4 and out[2] == out[3] == 1 and h == w == 1 and tuple(out[:2]) == (n, c):
        out_shape = shape
    else:
        raise _unsupported(layer, f"a view from {shape} to {tuple(out)} changes the channel-last layout the "
                           "accelerator stores; flatten only after a global pooling (N, C, 1, 1)")
    return Step(layer.name, "alias", in_names, op.out.name, (layer.name,), (shape,), out_shape)
