"""The widths a quantized model carries itself: Brevitas quantizers and PT2E quantize / dequantize ops.

A fake quantizer in the exported graph is not a layer of the network: its nodes (``Quantization.nodes``) are
passed through by the walk, and the width it rounds to becomes the bit-width of the layers around it. A layer's
weights take the width of the quantizer that produced them; its activations the width of the quantizer its
streamed input comes from (through data movement and pooling, which an integer accelerator runs on the same
grid), else of the one its output goes into (Brevitas' QuantReLU quantizes its own output).

Brevitas (github.com/Xilinx/brevitas): a node under a quant proxy (``brevitas.proxy.*``) with only Brevitas
modules below it is a quantizer node; the width is the proxy's ``bit_width()``, or, for an exported program
without its modules, the constant the quantizer's bit-width module computes (binary: 1, ternary: 2).
PT2E (``prepare_pt2e`` / ``convert_pt2e``): the ``quantized_decomposed`` ops; the width is that of quant_min..quant_max.
"""

from __future__ import annotations

import contextlib
import operator
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import torch
from torch.export import ExportedProgram
from torch.fx import Node

from codesign.capture import aten_ops
from codesign.capture.constants import ConstantNodes
from codesign.capture.export import export_model
from codesign.capture.folding import COPY_OPS, packet_name
from codesign.capture.precision import OwnWidths
from codesign.errors import CaptureError
from codesign.workload import MAX_BITS, MIN_BITS

__all__ = ["CARRY_OPS", "Quantization", "read_quantization", "outside_quantizers", "exportable", "export_quantized"]

PT2E_NAMESPACES = frozenset({"quantized_decomposed"})
# Ops whose outputs are values of their input (moved, selected, or pooled): a value quantized to b bits stays
# b bits through them. An average pool's mean is rounded back to the grid by an integer accelerator.
CARRY_OPS = (aten_ops.VIEW_OPS | aten_ops.PERMUTE_OPS | aten_ops.SLICE_OPS | aten_ops.SPLIT_OPS
             | aten_ops.SHUFFLE_OPS | aten_ops.CONCAT_OPS | aten_ops.POOL_OPS | COPY_OPS
             | frozenset({"constant_pad_nd", "pad"}))

_PROXY = "brevitas.proxy."
_BIT_WIDTH = "brevitas.core.bit_width."
_FIXED_WIDTHS = (("brevitas.core.quant.binary.", 1), ("brevitas.core.quant.ternary.", 2))


@dataclass(frozen=True)
class Quantization:
    """The quantizer nodes of an exported graph and the widths they give the values around them.

    ``value_bits``: nodes whose value leaves a quantizer -> its width; ``input_bits``: nodes a quantizer reads
    (a value quantized on its way to the next layer) -> that width.
    """

    nodes: frozenset[Node] = frozenset()
    value_bits: Mapping[Node, int] = field(default_factory=dict)
    input_bits: Mapping[Node, int] = field(default_factory=dict)
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def bits_of(self, node: Node | None) -> int | None:
        """The width of ``node``'s value: the quantizer it comes from, through ops that keep values on their grid;
        None when it comes from no quantizer."""
        if node is None or not isinstance(node, Node):
            return None
        if node in self._memo:
            return self._memo[node]
        self._memo[node] = None  # a cycle cannot occur in an exported graph; this only guards the recursion
        bits = self.value_bits.get(node)
        if bits is None and node.op == "call_function":
            if node.target is operator.getitem:
                bits = self.bits_of(node.args[0])
            elif packet_name(node) in CARRY_OPS and node.args:
                sources = node.args[0] if isinstance(node.args[0], (list, tuple)) else [node.args[0]]
                widths = [self.bits_of(item) for item in sources]
                bits = max(widths) if widths and None not in widths else None
        self._memo[node] = bits
        return bits

    def widths(self, weight: Node | None, source: Node | None, out: Node | None) -> OwnWidths:
        """A layer's own widths from its weight, the activation it streams and its output node."""
        activation = self.bits_of(source)
        if activation is None and out is not None:
            activation = self.input_bits.get(out)
        return OwnWidths(weight=self.bits_of(weight), activation=activation)


def read_quantization(program: ExportedProgram, model: torch.nn.Module | None = None,
                      constants: ConstantNodes | None = None) -> Quantization:
    """The quantizers of ``program``; ``model``: the module it was exported from (Brevitas widths read from its
    proxies), or None (read from the graph)."""
    regions: dict[str, list[Node]] = {}
    pt2e: dict[Node, int | None] = {}
    members: set[Node] = set()
    for node in program.graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        if node.target is operator.getitem and node.args and node.args[0] in members:
            source = node.args[0]
            if source in pt2e:
                pt2e[node] = pt2e[source]
                members.add(node)
                continue
        if getattr(node.target, "namespace", None) in PT2E_NAMESPACES:
            pt2e[node] = _range_bits(node)
            members.add(node)
            continue
        proxy = _brevitas_proxy(node)
        if proxy is not None:
            regions.setdefault(proxy, []).append(node)
            members.add(node)
    if not members:
        return Quantization()
    constants = constants if constants is not None else ConstantNodes(program)
    read = _proxy_bits(model, regions) if model is not None and regions else {}
    value_bits: dict[Node, int] = {}
    input_bits: dict[Node, int] = {}

    def quantizes(nodes: list[Node], bits: int, outputs: list[Node]) -> None:
        for node in outputs:
            value_bits[node] = bits
        for node in nodes:
            for item in node.all_input_nodes:
                if item not in members and item not in constants:
                    input_bits.setdefault(item, bits)

    for path, region in regions.items():
        bits = read.get(path) or _graph_bits(region, constants)
        if bits is not None:
            inside = set(region)
            quantizes(region, bits, [node for node in region if any(user not in inside for user in node.users)])
    for node, bits in pt2e.items():
        if bits is not None:
            quantizes([node], bits, [node])
    return Quantization(nodes=frozenset(members), value_bits=value_bits, input_bits=input_bits)


def outside_quantizers(stack: Mapping[str, Any]) -> dict[str, Any]:
    """``nn_module_stack`` cut before the first Brevitas quant proxy: the ReLU a QuantReLU runs inside its proxy is
    a layer of the QuantReLU ('relu'), not of the proxy's internals."""
    items = list((stack or {}).items())
    index = _proxy_index(_entries(stack))
    return dict(items if index is None else items[:index])


@contextlib.contextmanager
def exportable(model: torch.nn.Module) -> Iterator[bool]:
    """A quantized module as torch.export takes it, restored afterwards; yields whether any Brevitas layer was switched.

    Brevitas layers export as plain-tensor fake quantization (the same values: no quant tensors created or
    returned): their quant tensors carry data-dependent checks (``zero_point != 0``) torch.export cannot trace.
    A PT2E-converted module refuses ``eval()`` (torchao replaces the method); its graph runs as converted either
    way, so the refusal is lifted while it is exported. Other modules are left as they are.
    """
    brevitas = [module for module in model.modules() if type(module).__module__.startswith("brevitas.")]
    switched = [(module, name) for module in brevitas for name in ("skip_create_quant_tensor", "return_quant_tensor")
                if isinstance(getattr(module, name, None), bool)]
    saved = [getattr(module, name) for module, name in switched]
    refusals = {name: vars(model)[name] for name in ("train", "eval")
                if isinstance(model, torch.fx.GraphModule) and name in vars(model)}
    try:
        for name in refusals:
            delattr(model, name)
        for module, name in switched:
            setattr(module, name, name == "skip_create_quant_tensor")
        with torch.no_grad() if switched else contextlib.nullcontext():
            yield bool(switched)
    finally:
        for (module, name), value in zip(switched, saved):
            setattr(module, name, value)
        for name, method in refusals.items():
            setattr(model, name, method)


def export_quantized(model: torch.nn.Module, example_inputs: Any) -> ExportedProgram:
    """``export.export_model`` with Brevitas layers exported as plain-tensor fake quantization (``exportable``);
    a model that needs its quant tensors is exported as it is, and if that fails too, the error says what exports."""
    with exportable(model) as switched:
        try:
            return export_model(model, example_inputs)
        except CaptureError:
            if not switched:
                raise
    try:
        return export_model(model, example_inputs)
    except CaptureError as exc:
        if "does not run on inputs" in str(exc):
            raise  # the inputs are wrong, not the export
        raise CaptureError(
            f"{exc}; a Brevitas bias quantized at its input's scale (Int32Bias) needs quant tensors, which "
            "torch.export cannot trace: a bias quantizer with a scale of its own exports "
            "(e.g. Int8BiasPerTensorFloatInternalScaling)"
        ) from None


# -- Brevitas -------------------------------------------------------------------------------------------------
def _class_name(cls: Any) -> str:
    if isinstance(cls, str):
        return cls
    return f"{getattr(cls, '__module__', '')}.{getattr(cls, '__qualname__', getattr(cls, '__name__', ''))}"


def _entries(stack: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(module path, class name) of each ``nn_module_stack`` entry, outermost first."""
    entries = []
    for value in (stack or {}).values():
        path, cls = value if isinstance(value, tuple) and len(value) == 2 else (value, "")
        entries.append((str(path), _class_name(cls)))
    return entries


def _proxy_index(entries: list[tuple[str, str]]) -> int | None:
    return next((index for index, (_, cls) in enumerate(entries) if cls.startswith(_PROXY)), None)


def _brevitas_proxy(node: Node) -> str | None:
    """The path of the quant proxy a quantizer node belongs to; None for any other node (the ReLU a QuantReLU
    runs inside its proxy is a ``torch.nn`` module there, and computes)."""
    entries = _entries(node.meta.get("nn_module_stack"))
    index = _proxy_index(entries)
    if index is None or not all(cls.startswith("brevitas.") for _, cls in entries[index + 1:]):
        return None
    return entries[index][0]


def _as_bits(value: Any) -> int | None:
    try:
        bits = int(round(float(value)))
    except (TypeError, ValueError, RuntimeError):
        return None
    return bits if MIN_BITS <= bits <= MAX_BITS else None


def _proxy_bits(model: torch.nn.Module, regions: Mapping[str, list[Node]]) -> dict[str, int]:
    """Each proxy's ``bit_width()`` (Brevitas' own answer, float formats included)."""
    found: dict[str, int] = {}
    for path in regions:
        try:
            proxy = model.get_submodule(path)
        except AttributeError:
            continue
        bit_width = getattr(proxy, "bit_width", None)
        if not callable(bit_width) or not getattr(proxy, "is_quant_enabled", True):
            continue
        try:
            with torch.no_grad():
                bits = _as_bits(bit_width())
        except Exception:  # a proxy that cannot answer outside a forward pass: the graph is read instead
            continue
        if bits is not None:
            found[path] = bits
    return found


def _graph_bits(region: list[Node], constants: ConstantNodes) -> int | None:
    """A proxy's width from the exported graph alone: fixed for binary and ternary quantizers, else the constant
    value of its (outermost) bit-width module."""
    modules: dict[str, set[Node]] = {}
    for node in region:
        entries = _entries(node.meta.get("nn_module_stack"))
        for _, cls in entries:
            for prefix, bits in _FIXED_WIDTHS:
                if cls.startswith(prefix):
                    return bits
        path = next((path for path, cls in entries if cls.startswith(_BIT_WIDTH)), None)
        if path is not None:
            modules.setdefault(path, set()).add(node)
    outermost = [path for path in modules if not any(path.startswith(other + ".") for other in modules)]
    if len(outermost) != 1:
        return None  # none, or several (a float format's exponent and mantissa): not one integer width
    inside = modules[outermost[0]]
    values = {_as_bits(constants.value(node)) for node in inside if any(user not in inside for user in node.users)}
    return values.pop() if len(values) == 1 else None


# -- PT2E -----------------------------------------------------------------------------------------------------
def _range_bits(node: Node) -> int | None:
    """Bits of a quantize / dequantize op: enough for quant_min..quant_max (int8: 8; [-8, 7]: 4), else its dtype's."""
    schema = getattr(node.target, "_schema", None)
    names = [argument.name for argument in schema.arguments] if schema is not None else []
    values = dict(zip(names, node.args))
    values.update(node.kwargs)
    low, high = values.get("quant_min"), values.get("quant_max")
    if isinstance(low, int) and isinstance(high, int) and high > low:
        bits = (high - low).bit_length()
    else:
        dtype = values.get("dtype")
        if not isinstance(dtype, torch.dtype) or dtype.is_floating_point or dtype.is_complex:
            return None
        bits = torch.iinfo(dtype).bits
    return bits if MIN_BITS <= bits <= MAX_BITS else None
