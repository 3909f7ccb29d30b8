"""PyTorch capture: ``from_torch(model, example_inputs)`` -> the exact workload graph.

The model is captured with ``torch.export``; every exported op becomes (part of) a layer with its
kind, loop dimensions, MACs (FlopCounterMode's flops / 2), parameters, pruning and bytes at its
bit-widths, or is listed under ``Workload.unsupported``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codesign.capture.precision import BitsPolicy, as_policy, parse_bits, parse_override
from codesign.workload import Bits

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch.export import ExportedProgram

    from codesign.workload import Workload

__all__ = ["from_torch", "BitsPolicy", "Bits", "parse_bits", "parse_override"]


def from_torch(
    model: "torch.nn.Module | ExportedProgram",
    example_inputs: Any = None,
    *,
    name: str | None = None,
    bits: Bits | BitsPolicy = Bits(),
    fold_views: bool = True,
) -> "Workload":
    """Capture ``model`` on ``example_inputs`` into a Workload.

    Parameters:
        model: a ``torch.nn.Module`` (exported with ``torch.export`` in eval mode) or an
            ``ExportedProgram`` already exported.
        example_inputs: one tensor or a non-empty tuple / list of tensors the module is run on;
            ignored for an ``ExportedProgram``.
        name: the workload's model name; default: the module's class name, or ``"exported_program"``.
        bits: one ``Bits`` for every layer, or a ``BitsPolicy`` with per-kind and per-layer-name
            overrides (layer name > op kind > default).
        fold_views: merge consecutive views (which move no data) into one RESHAPE layer.

    Returns:
        A ``codesign.workload.Workload``: every layer in topological order with its kind, loop
        dimensions, MACs (FlopCounterMode's flops / 2), parameters, pruning, bytes at its bit-widths
        and ``fusable`` flag; the layer graph; the example input shapes; and the aten ops that map to
        no layer kind under ``unsupported``.

    Raises:
        CaptureError: ``model`` is neither a module nor an ExportedProgram; ``example_inputs`` is not a
            tensor or a non-empty sequence of tensors; the model does not run on those inputs; or
            ``torch.export`` cannot capture it (the message says why and what to try).
        BitWidthError: ``bits`` is neither a ``Bits`` nor a ``BitsPolicy``, or a per-layer-name
            override names no layer of the captured model.

    Resolving a model reference (zoo name, ``module:factory``, ``.pt2`` file) is
    ``codesign.model_ref.load_model``'s job; ``ModelLoadError`` comes from there, never from here.
    """
    import torch
    from torch.export import ExportedProgram

    from codesign.capture.builder import build_workload
    from codesign.capture.export import export_model
    from codesign.errors import CaptureError

    policy = as_policy(bits)
    if isinstance(model, ExportedProgram):
        program = model
        default_name = "exported_program"
    elif isinstance(model, torch.nn.Module):
        program = export_model(model, example_inputs)
        default_name = type(model).__name__
    else:
        raise CaptureError(f"expected a torch.nn.Module or an ExportedProgram, got {type(model).__name__}")
    return build_workload(program, name=name or default_name, policy=policy, fold_views=fold_views)
