"""PyTorch capture: ``from_torch(model, example_inputs)`` -> the exact workload graph.

The model is captured with ``torch.export``; every exported op becomes (part of) a layer with its
kind, loop dimensions, MACs (FlopCounterMode's flops / 2), parameters, pruning and bytes at its
bit-widths, or is listed under ``Workload.unsupported``. Channels that are 0 for every input are followed
through the graph and removed from the layers they reach (``channels``); the program is run once to
measure each layer's activation density (``activations``). A quantized model (Brevitas layers, or PT2E
quantize / dequantize ops) keeps its own widths (``quantized``): its fake quantizers become no layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codesign.capture.precision import BitsPolicy, as_policy, for_arch, parse_bits, parse_override
from codesign.workload import Bits

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch.export import ExportedProgram

    from codesign.arch import ArchSpec
    from codesign.workload import Workload

__all__ = ["from_torch", "BitsPolicy", "Bits", "parse_bits", "parse_override"]


def from_torch(
    model: "torch.nn.Module | ExportedProgram",
    example_inputs: Any = None,
    *,
    name: str | None = None,
    bits: Bits | BitsPolicy | None = None,
    fold_views: bool = True,
    activation_inputs: Any = None,
    measure_activations: bool = True,
    arch: "ArchSpec | str | None" = None,
) -> "Workload":
    """Capture ``model`` on ``example_inputs`` into a Workload.

    Parameters:
        model: a ``torch.nn.Module`` (exported with ``torch.export`` in eval mode) or an
            ``ExportedProgram`` already exported.
        example_inputs: one tensor or a non-empty tuple / list of tensors the module is run on;
            ignored for an ``ExportedProgram``.
        name: the workload's model name; default: the module's class name, or ``"exported_program"``.
        bits: one ``Bits`` for every layer, or a ``BitsPolicy`` with per-kind and per-layer-name
            overrides (layer name > op kind > default). None (the default): each layer at the widths the
            model quantizes it to itself (Brevitas quantizers, PT2E quantize / dequantize ops), and what
            it leaves unquantized at 8/8/32, or at ``arch``'s PE widths. A ``Bits`` wins over the model's
            own widths; a ``BitsPolicy`` does too unless built with ``explicit=False``.
        fold_views: merge consecutive views (which move no data) into one RESHAPE layer.
        activation_inputs: keyword-only; the inputs the captured program runs on to measure each
            layer's ``input_density``: a tensor or a tuple of tensors of the model's input shapes, or a
            stack of samples of them (first dimension a multiple of the captured batch size), run batch
            by batch. Default: ``example_inputs`` (for an ``ExportedProgram``: ``example_inputs`` when
            given, else the program's own example inputs).
        measure_activations: keyword-only; False skips the forward pass (every ``input_density`` 1.0).
        arch: keyword-only; the accelerator (an ``ArchSpec``, a preset name or a YAML path) the capture is
            for: a default width nobody asked for is its PE's (``precision.for_arch``).

    Returns:
        A ``codesign.workload.Workload``: every layer in topological order with its kind, loop
        dimensions, MACs (FlopCounterMode's flops / 2), parameters, pruning, bytes at its bit-widths
        and ``fusable`` flag; the layer graph; the example input shapes; and the aten ops that map to
        no layer kind under ``unsupported``. Pruning is read from the weights and propagated through
        the graph: output channels exactly 0 for every input (``dead_channels``) remove the input
        channels of every conv / linear they reach (``dead_input_channels``, smaller ``effective_dims``
        and ``effective_macs``); ``constant_channels`` are reported only. ``input_density`` is the
        measured share of nonzeros in the activation each layer streams (one extra forward pass).

    Raises:
        CaptureError: ``model`` is neither a module nor an ExportedProgram; ``example_inputs`` is not a
            tensor or a non-empty sequence of tensors; the model does not run on those inputs; or
            ``torch.export`` cannot capture it (the message says why and what to try);
            ``activation_inputs`` do not fit the model's input shapes and dtypes, or the model does not
            run on them.
        BitWidthError: ``bits`` is neither a ``Bits`` nor a ``BitsPolicy``, or a per-layer-name
            override names no layer of the captured model.
        SpecError: ``arch`` names no preset or readable accelerator YAML.

    Resolving a model reference (zoo name, ``module:factory``, ``.pt2`` file) is
    ``codesign.model_ref.load_model``'s job; ``ModelLoadError`` comes from there, never from here.
    """
    import torch
    from torch.export import ExportedProgram

    from codesign.capture.activations import input_signature, measurement_batches
    from codesign.capture.builder import build_workload
    from codesign.capture.quantized import export_quantized
    from codesign.errors import CaptureError

    policy = as_policy(bits)
    if arch is not None:
        from codesign.arch import ArchSpec
        from codesign.arch_loader import load_arch

        policy = for_arch(policy, arch if isinstance(arch, ArchSpec) else load_arch(arch))
    module = None
    if isinstance(model, ExportedProgram):
        program = model
        default_name = "exported_program"
        measure = activation_inputs if activation_inputs is not None else example_inputs
        if measure is None:
            example = getattr(program, "example_inputs", None)
            measure = tuple(example[0]) if example and isinstance(example, tuple) and example[0] else None
    elif isinstance(model, torch.nn.Module):
        program = export_quantized(model, example_inputs)
        module = model
        default_name = type(model).__name__
        measure = activation_inputs if activation_inputs is not None else example_inputs
    else:
        raise CaptureError(f"expected a torch.nn.Module or an ExportedProgram, got {type(model).__name__}")
    batches = None
    if measure_activations and measure is not None:
        what = "the activation inputs" if activation_inputs is not None else "the example inputs"
        batches = measurement_batches(input_signature(program), measure, what)
    return build_workload(
        program, name=name or default_name, policy=policy, fold_views=fold_views, measure_on=batches,
        quantized_from=module,
    )

