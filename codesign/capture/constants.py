"""Weights in the exported graph: which nodes depend only on parameters, buffers and constants.

A pruned layer's weight is exported as ``weight_orig * weight_mask``; such weight-side computations
are not layers of the network. They are evaluated here on the real tensors, so pruning can be read
from the weight the layer actually uses.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.export import ExportedProgram
from torch.fx import Node
from torch.fx.node import map_arg

__all__ = ["ConstantNodes"]


class ConstantNodes:
    """The constant part of an exported graph: membership, values, and the parameters each reads."""

    def __init__(self, program: ExportedProgram) -> None:
        signature = program.graph_signature
        self._program = program
        self._param_targets: dict[str, str] = dict(signature.inputs_to_parameters)
        self._buffer_targets: dict[str, str] = dict(signature.inputs_to_buffers)
        self._constant_targets: dict[str, str] = dict(signature.inputs_to_lifted_tensor_constants)
        self._constant_targets.update(getattr(signature, "inputs_to_lifted_custom_objs", {}) or {})
        self._members: set[Node] = set()
        self._params_read: dict[Node, frozenset[str]] = {}
        self._stored_read: dict[Node, frozenset[str]] = {}  # buffers and lifted constants
        self._values: dict[Node, Any] = {}
        self._all_nonzero: dict[Node, bool] = {}
        for node in program.graph_module.graph.nodes:
            if node.op == "placeholder":
                if node.name in self._param_targets:
                    self._members.add(node)
                    self._params_read[node] = frozenset({self._param_targets[node.name]})
                    self._stored_read[node] = frozenset()
                elif node.name in self._buffer_targets or node.name in self._constant_targets:
                    self._members.add(node)
                    self._params_read[node] = frozenset()
                    target = self._buffer_targets.get(node.name) or self._constant_targets[node.name]
                    self._stored_read[node] = frozenset({target})
            elif node.op == "get_attr":
                self._members.add(node)
                self._params_read[node] = frozenset()
                self._stored_read[node] = frozenset()
            elif node.op == "call_function":
                inputs = node.all_input_nodes
                if all(item in self._members for item in inputs) and _is_tensor_valued(node):
                    self._members.add(node)
                    read: set[str] = set()
                    stored: set[str] = set()
                    for item in inputs:
                        read |= self._params_read[item]
                        stored |= self._stored_read[item]
                    self._params_read[node] = frozenset(read)
                    self._stored_read[node] = frozenset(stored)

    def __contains__(self, node: object) -> bool:
        return node in self._members

    def params_read(self, node: Node) -> frozenset[str]:
        """Names (state-dict keys) of the parameters a constant node is computed from."""
        return self._params_read.get(node, frozenset())

    def stored_read(self, node: Node) -> frozenset[str]:
        """Names of the buffers and lifted constants a constant node is computed from (PT2E keeps a quantized
        model's weights as buffers, beside their scales and zero points)."""
        return self._stored_read.get(node, frozenset())

    def parameter_numel(self, target: str) -> int:
        value = self._program.state_dict.get(target)
        if value is None:
            value = self._program.constants.get(target)
        return int(value.numel()) if isinstance(value, torch.Tensor) else 0

    def all_nonzero(self, node: Node) -> bool:
        """Whether a constant node's tensor has no zero element (counted once per node)."""
        if node not in self._all_nonzero:
            value = self.value(node)
            self._all_nonzero[node] = isinstance(value, torch.Tensor) and int(torch.count_nonzero(value)) == value.numel()
        return self._all_nonzero[node]

    def value(self, node: Node) -> torch.Tensor | None:
        """The real tensor of a constant node, or None when it cannot be computed."""
        if node not in self._members:
            return None
        if node in self._values:
            return self._values[node]
        result = None
        try:
            result = self._compute(node)
        except Exception:  # a weight-side op we cannot replay: pruning info is then unknown
            result = None
        self._values[node] = result
        return result

    def _compute(self, node: Node) -> Any:
        if node.op == "placeholder":
            if node.name in self._param_targets:
                return self._program.state_dict[self._param_targets[node.name]]
            if node.name in self._buffer_targets:
                target = self._buffer_targets[node.name]
                if target in self._program.state_dict:
                    return self._program.state_dict[target]
                return self._program.constants[target]
            return self._program.constants[self._constant_targets[node.name]]
        if node.op == "get_attr":
            return getattr(self._program.graph_module, str(node.target))

        def resolve(item: Node) -> Any:
            value = self.value(item)
            if value is None:
                raise ValueError(f"no value for {item.name}")
            return value

        args = map_arg(node.args, resolve)
        kwargs = map_arg(node.kwargs, resolve)
        with torch.no_grad():
            return node.target(*args, **kwargs)


def _is_tensor_valued(node: Node) -> bool:
    value = node.meta.get("val")
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)) and value and all(isinstance(item, torch.Tensor) for item in value):
        return True
    return value is None and "tensor_meta" in node.meta
