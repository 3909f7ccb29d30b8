"""Composite ops lowered with torch's own decompositions before the walk: einsum, LSTM, GRU, RNN; and the
regions ``torch.export`` wraps in a higher-order op (``with torch.autocast(...)``, ``torch.set_grad_enabled``),
inlined so their ops are walked like the rest.

``torch.export`` keeps ``aten.einsum`` and ``aten.lstm`` / ``aten.gru`` / ``aten.rnn_*`` as single ops. Their
decompositions in ``torch.export.default_decompositions()`` are what eager mode runs: einsum becomes permutes,
views and one bmm; a recurrent layer becomes, per layer, direction and timestep, the input and hidden linear
layers (4 gates for LSTM, 3 for GRU, 1 for RNN) and the gates' elementwise ops. Only those ops are
decomposed, and only in programs that hold one; every other op stays as exported. An autocast region is
inlined at the model's own precision: the bit-widths the workload carries come from the capture's policy.
"""

from __future__ import annotations

import torch
from torch.export import ExportedProgram

from codesign.capture import aten_ops
from codesign.capture.export import first_line, quiet_torch
from codesign.capture.folding import packet_name
from codesign.errors import CaptureError

__all__ = ["WRAPPER_OPS", "composite_ops", "lower_composites"]

# Higher-order ops around a region of the graph (a submodule of the program); run_decompositions inlines them.
WRAPPER_OPS = frozenset({"wrap_with_autocast", "wrap_with_set_grad_enabled"})


def composite_ops(program: ExportedProgram) -> set[str]:
    """Names of the composite ops (``aten_ops.COMPOSITE_OPS``, by overload packet) and wrapper higher-order ops
    (``WRAPPER_OPS``) the program calls."""
    found = set()
    for node in program.graph_module.graph.nodes:
        if node.op == "call_function":
            found.add(packet_name(node) or getattr(node.target, "__name__", None))
    return {name for name in found if name in aten_ops.COMPOSITE_OPS or name in WRAPPER_OPS}


def lower_composites(program: ExportedProgram) -> ExportedProgram:
    """``program`` with its composite ops decomposed and wrapped regions inlined (the same program when it has
    neither)."""
    wanted = composite_ops(program)
    if not wanted:
        return program
    table = {
        op: rule for op, rule in torch.export.default_decompositions().items()
        if getattr(getattr(op, "overloadpacket", None), "__name__", None) in wanted
    }
    try:
        with quiet_torch():
            return program.run_decompositions(table)
    except Exception as exc:  # a decomposition that does not trace on this program
        names = ", ".join(sorted(wanted))
        raise CaptureError(f"cannot lower {names} into matmuls and elementwise ops: {first_line(exc)}") from None
