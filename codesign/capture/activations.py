"""Activation density measured on the model: the share of nonzero values each layer reads.

Eyeriss gates the MACs of zero activations and run-length-codes them off chip, so the zeros a ReLU
leaves matter as much as pruned weights. The exported program is run once per batch of inputs with a
``torch.fx.Interpreter`` over its graph module, and the nonzeros of every node some layer reads are
counted as the node is computed (values are freed as soon as no later node needs them).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
from torch.export import ExportedProgram
from torch.fx import Interpreter, Node

from codesign.capture.constants import ConstantNodes
from codesign.capture.export import first_line, quiet_torch
from codesign.errors import CaptureError

__all__ = ["input_signature", "measurement_batches", "measure_density"]


def input_signature(program: ExportedProgram) -> list[tuple[tuple[Any, ...], torch.dtype]]:
    """(shape, dtype) of every user input of ``program``; symbolic sizes stay symbolic."""
    user_inputs = set(program.graph_signature.user_inputs)
    found = []
    for node in program.graph_module.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            value = node.meta.get("val")
            if isinstance(value, torch.Tensor):
                found.append((tuple(value.shape), value.dtype))
    return found


def _static(size: Any) -> int | None:
    return size if isinstance(size, int) else None


def _shape_text(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(str(size) for size in shape) + ("," if len(shape) == 1 else "") + ")"


def measurement_batches(
    signature: list[tuple[tuple[Any, ...], torch.dtype]], inputs: Any, what: str = "the activation inputs"
) -> list[tuple[torch.Tensor, ...]]:
    """Split ``inputs`` into batches the program runs on.

    ``inputs`` is a tensor or a tuple of tensors, one per model input: each of the model's input shape,
    or a stack of samples of it (the first dimension a multiple of the model's batch size), which runs
    as several batches. Anything else is a one-line CaptureError naming ``what``.
    """
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    if not isinstance(inputs, (tuple, list)) or not inputs or not all(isinstance(item, torch.Tensor) for item in inputs):
        raise CaptureError(f"{what} must be a tensor or a non-empty tuple of tensors, got {type(inputs).__name__}")
    if len(inputs) != len(signature):
        raise CaptureError(f"{what} are {len(inputs)} tensors; the model takes {len(signature)} inputs")
    counts = set()
    for index, (tensor, (shape, dtype)) in enumerate(zip(inputs, signature)):
        label = what if len(signature) == 1 else f"{what} (input {index})"
        expected = _shape_text(shape)
        if tensor.dtype != dtype:
            raise CaptureError(f"{label} are {tensor.dtype}; the model takes {dtype} inputs of shape {expected}")
        actual = tuple(int(size) for size in tensor.shape)
        fits_rest = len(actual) == len(shape) and all(
            _static(size) is None or size == got for size, got in zip(shape[1:], actual[1:])
        )
        batch = _static(shape[0]) if shape else None
        if not shape or not fits_rest or (batch is not None and (actual[0] == 0 or actual[0] % batch)):
            raise CaptureError(
                f"{label} have shape {_shape_text(actual)}; the model takes {expected} "
                "(or a stack of samples of that shape, the first dimension a multiple of "
                f"{batch if batch is not None else 'the batch'})"
            )
        counts.add(actual[0] // batch if batch is not None else 1)
    if len(counts) != 1:
        raise CaptureError(f"{what} hold different numbers of samples per input")
    (count,) = counts
    batches = []
    for part in range(count):
        batch_inputs = []
        for tensor, (shape, _) in zip(inputs, signature):
            batch = _static(shape[0])
            batch_inputs.append(tensor if batch is None or count == 1 else tensor[part * batch : (part + 1) * batch])
        batches.append(tuple(batch_inputs))
    return batches


class _Counter(Interpreter):
    def __init__(self, program: ExportedProgram, watched: set[Node], counts: dict[Node, list[int]]) -> None:
        super().__init__(program.graph_module, garbage_collect_values=True)
        self.watched = watched
        self.counts = counts

    def run_node(self, node: Node) -> Any:
        result = super().run_node(node)
        if node in self.watched:
            value = result[0] if isinstance(result, (list, tuple)) and result else result
            if isinstance(value, torch.Tensor) and value.numel():
                tally = self.counts.setdefault(node, [0, 0])
                tally[0] += int(torch.count_nonzero(value))
                tally[1] += int(value.numel())
        return result


def measure_density(
    program: ExportedProgram,
    constants: ConstantNodes,
    batches: Iterable[tuple[torch.Tensor, ...]],
    nodes: Iterable[Node],
) -> dict[Node, float]:
    """Nonzeros / elements of each of ``nodes`` over every batch the program runs on."""
    watched = set(nodes)
    counts: dict[Node, list[int]] = {}
    user_inputs = list(program.graph_signature.user_inputs)
    placeholders = [node for node in program.graph_module.graph.nodes if node.op == "placeholder"]
    for batch in batches:
        by_name = dict(zip(user_inputs, batch))
        args = []
        for node in placeholders:
            if node.name in by_name:
                args.append(by_name[node.name])
            else:
                value = constants.value(node)
                if value is None and node.name not in by_name:
                    value = _lifted(program, node)
                args.append(value)
        try:
            with torch.no_grad(), quiet_torch():
                _Counter(program, watched, counts).run(*args)
        except Exception as exc:  # the inputs passed the shape check but the model rejects them
            raise CaptureError(f"the model does not run on the activation inputs: {first_line(exc)}") from None
    return {node: nonzero / total for node, (nonzero, total) in counts.items() if total}


def _lifted(program: ExportedProgram, node: Node) -> Any:
    """A placeholder ConstantNodes does not hold (a lifted custom object, a token): from the program."""
    for spec in program.graph_signature.input_specs:
        if getattr(spec.arg, "name", None) == node.name and spec.target is not None:
            if spec.target in program.constants:
                return program.constants[spec.target]
            return program.state_dict.get(spec.target)
    return None
