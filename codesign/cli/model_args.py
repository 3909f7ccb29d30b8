"""The MODEL, --input-shape, --inputs and --bits options shared by every sub-command that captures a model.

Bit-widths, first that applies: --layer-bits > --kind-bits > --bits > the model's own quantization (Brevitas
layers, PT2E quantize / dequantize ops) > the accelerator's PE widths (commands with --arch) > 8,8,32.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from codesign.arch import ArchSpec
    from codesign.workload import Workload

__all__ = [
    "MODEL_HELP", "add_model_arguments", "parse_input_shape", "load_inputs", "bits_policy_from_args",
    "workload_from_args", "bits_line",
]

MODEL_HELP = (
    "the model: zoo:NAME, package.module:factory, path/to/file.py:factory, or a saved torch.export "
    "program (file.pt2). A factory returns a module or a (module, example_inputs) pair."
)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add MODEL, --input-shape, --inputs, --bits, --layer-bits, --kind-bits and --no-fold to ``parser``."""
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument(
        "--input-shape",
        metavar="N,C,H,W",
        default=None,
        help="shape of the example input (e.g. 1,3,224,224); needed when the factory returns only a module; "
        "for zoo models it replaces the default input",
    )
    parser.add_argument(
        "--inputs",
        metavar="FILE",
        default=None,
        help="a tensor (or a tuple of tensors, one per model input) saved with torch.save to run the model on "
        "when measuring each layer's input activation density; of the model's input shape, or a stack of "
        "samples of it (default: the example input)",
    )
    parser.add_argument(
        "--bits",
        metavar="W,A[,ACC]",
        default=None,
        help="weight, activation (and accumulator) bit-widths of every layer, 1..32 (1 = binarized); wins over a "
        "quantized model's own widths (Brevitas, PT2E). Default: the model's own widths, and for what it does not "
        "quantize the accelerator's PE widths (with --arch), else 8,8,32",
    )
    parser.add_argument(
        "--layer-bits",
        metavar="NAME=W,A[,ACC]",
        action="append",
        default=[],
        help="bit-widths of one layer by name (repeatable; wins over --kind-bits and --bits)",
    )
    parser.add_argument(
        "--kind-bits",
        metavar="KIND=W,A[,ACC]",
        action="append",
        default=[],
        help="bit-widths of every layer of an op kind, e.g. depthwise_conv=8,8 (repeatable; wins over --bits)",
    )
    parser.add_argument(
        "--no-fold",
        dest="fold_views",
        action="store_false",
        help="keep every view/reshape that moves no data as its own node",
    )


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """``"1,3,224,224"`` -> (1, 3, 224, 224); every entry a positive integer."""
    from codesign.errors import ModelLoadError

    if text is None:
        return None
    parts = [part.strip() for part in str(text).replace("x", ",").split(",") if part.strip()]
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        shape = ()
    if not shape or any(size <= 0 for size in shape):
        raise ModelLoadError(f"--input-shape {text!r} must be positive integers separated by commas, e.g. 1,3,224,224")
    return shape


def load_inputs(path: str | None):
    """The tensors saved in ``path`` with ``torch.save`` (a tensor, or a tuple / list of tensors); None for None."""
    from pathlib import Path

    from codesign.errors import ModelLoadError

    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise ModelLoadError(f"--inputs {path}: {'is a directory' if file.is_dir() else 'does not exist'}")
    import torch

    from codesign.capture.export import first_line

    try:
        value = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch.save file, or one holding arbitrary objects
        raise ModelLoadError(f"--inputs {path}: cannot read it with torch.load: {first_line(exc)}") from None
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and all(isinstance(item, torch.Tensor) for item in value):
        return tuple(value)
    raise ModelLoadError(
        f"--inputs {path}: holds a {type(value).__name__}, expected a tensor or a tuple of tensors saved with torch.save"
    )


def bits_policy_from_args(args: argparse.Namespace, arch: "ArchSpec | None" = None):
    """The BitsPolicy the --bits / --kind-bits / --layer-bits options describe; without --bits, its default is
    ``arch``'s PE widths (else 8,8,32) and gives way to a quantized model's own widths."""
    from codesign.capture.precision import BitsPolicy, parse_bits, parse_override, pe_bits
    from codesign.workload import Bits

    text = getattr(args, "bits", None)
    base = pe_bits(arch.pe) if arch is not None else Bits()
    default = parse_bits(text, base) if text else base
    by_kind = dict(parse_override(item, default) for item in getattr(args, "kind_bits", []) or [])
    by_name = dict(parse_override(item, default) for item in getattr(args, "layer_bits", []) or [])
    return BitsPolicy(default=default, by_kind=by_kind, by_name=by_name, explicit=bool(text))


def bits_line(workload: "Workload", arch: "ArchSpec") -> str:
    """One line on the widths of the MAC layers when --bits was not given, and where they come from."""
    from codesign.capture.precision import pe_bits

    counts = Counter(layer.bits for layer in workload.layers if layer.op.has_macs)
    widths = ", ".join(f"{bits.weight}/{bits.activation}/{bits.accumulator} x{count}"
                       for bits, count in sorted(counts.items(), key=lambda item: (-item[1], item[0].weight)))
    pe = pe_bits(arch.pe)
    return (f"bit-widths W/A/ACC of the MAC layers: {widths or 'none'} (no --bits: the model's own quantization, "
            f"else {arch.name}'s PE widths {pe.weight}/{pe.activation}/{pe.accumulator})")


def workload_from_args(args: argparse.Namespace, arch: "ArchSpec | None" = None) -> "Workload":
    """Load the model named by ``args.model`` and capture it at the requested bit-widths (``arch``: the accelerator
    the capture is for, whose PE widths are the default)."""
    from codesign.capture import from_torch
    from codesign.model_ref import load_model

    policy = bits_policy_from_args(args, arch)
    shape = parse_input_shape(getattr(args, "input_shape", None))
    path = getattr(args, "inputs", None)
    inputs = load_inputs(path)
    name, model, example_inputs = load_model(args.model, shape)
    if inputs is not None:
        import torch

        from codesign.capture.activations import measurement_batches

        signature = [(tuple(item.shape), item.dtype) for item in example_inputs if isinstance(item, torch.Tensor)]
        measurement_batches(signature, inputs, f"--inputs {path}")  # one-line CaptureError before capture
    return from_torch(
        model, example_inputs, name=name, bits=policy, fold_views=getattr(args, "fold_views", True),
        activation_inputs=inputs,
    )
