"""`codesign hdl`: generate the Verilog GEMM core of an accelerator spec, with a manifest.json
(`--array binary`: the binarized XNOR-popcount core of its binary_array)."""

from __future__ import annotations

import argparse


def add_core_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `hdl` and `verify`: which core to build."""
    parser.add_argument("--arch", required=True, metavar="PRESET|FILE.yaml",
                        help="accelerator preset (see `codesign arch list`) or YAML spec")
    parser.add_argument("--dataflow", default=None, metavar="ws|os",
                        help="dataflow of the generated array (default: the arch's first); "
                        "rs (row stationary) has no RTL generator yet")
    parser.add_argument("--multiplier", default=None, metavar="dsp|logic",
                        help="PE multiplier: dsp (the * operator, mapped to DSP blocks) or logic (shift-and-add); "
                        "default: the arch's pe.multiplier")
    parser.add_argument("--rows", type=int, default=None, help="override the arch's array rows")
    parser.add_argument("--cols", type=int, default=None, help="override the arch's array columns")
    parser.add_argument("--weight-bits", type=int, default=None, help="override the weight bits (2..16)")
    parser.add_argument("--activation-bits", "--act-bits", dest="activation_bits", type=int, default=None,
                        help="override the activation bits (2..16)")
    parser.add_argument("--unsigned", action="store_true",
                        help="unsigned weights and activations (default: the arch's pe.weight_signed / "
                        "pe.activation_signed)")
    parser.add_argument("--array", default="main", choices=("main", "binary"),
                        help="which array to build: main (the integer GEMM core, default) or binary (the "
                        "XNOR-popcount core of the arch's binary_array, docs/core-protocol.md)")
    parser.add_argument("--word-bits", type=int, default=None,
                        help="--array binary: override binary_array.word_bits (binary MACs per PE per cycle)")


_INTEGER_ONLY = (("dataflow", "--dataflow"), ("multiplier", "--multiplier"), ("weight_bits", "--weight-bits"),
                 ("activation_bits", "--activation-bits"))


def _binary_params_from_args(args: argparse.Namespace, arch):
    from codesign.errors import HdlError
    from hdl.params import binary_params_from_arch

    for attr, flag in _INTEGER_ONLY:
        value = getattr(args, attr)
        if value is not None and not (attr == "dataflow" and value == "xnor"):
            raise HdlError(f"{flag} applies to the integer GEMM core, not to --array binary")
    if args.unsigned:
        raise HdlError("--unsigned applies to the integer GEMM core, not to --array binary")
    return binary_params_from_arch(arch, rows=args.rows, cols=args.cols, word_bits=args.word_bits)


def core_params_from_args(args: argparse.Namespace):
    """The CoreParams (``--array binary``: BinaryCoreParams) the options describe (typed errors for every
    bad value)."""
    import dataclasses

    from codesign.arch_loader import load_arch
    from codesign.errors import HdlError
    from hdl.params import core_params_from_arch

    arch = load_arch(args.arch)
    if getattr(args, "array", "main") == "binary":
        return _binary_params_from_args(args, arch)
    if getattr(args, "word_bits", None) is not None:
        raise HdlError("--word-bits applies to --array binary")
    pe_changes = {k: v for k, v in (("weight_bits", args.weight_bits), ("activation_bits", args.activation_bits))
                  if v is not None}
    arch_changes = {k: v for k, v in (("rows", args.rows), ("cols", args.cols)) if v is not None}
    if pe_changes:
        arch_changes["pe"] = dataclasses.replace(arch.pe, **pe_changes)
    if arch_changes:
        arch = dataclasses.replace(arch, **arch_changes)
    return core_params_from_arch(arch, args.dataflow, multiplier=args.multiplier,
                                 signed=False if args.unsigned else None)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hdl",
        help="generate the Verilog GEMM core of an accelerator (and manifest.json)",
        description=__doc__ + " The core's protocol and cycle formula: docs/core-protocol.md.",
    )
    add_core_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write <top>.v and manifest.json into")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hdl.generate import emit_binary_core, emit_core
    from hdl.params import BinaryCoreParams

    params = core_params_from_args(args)
    if isinstance(params, BinaryCoreParams):
        design = emit_binary_core(params, args.out)
        print(f"wrote {design.verilog_path} (top {params.top_name}: xnor-popcount {params.rows}x{params.cols}, "
              f"{params.word_bits}-bit words, {params.acc_bits}-bit accumulators, "
              f"tiles up to m={params.rows} k={params.max_k} ({params.max_words} words) n={params.cols}; "
              f"cycles: tile {design.manifest['cycles']['tile']}, "
              f"issue interval {design.manifest['cycles']['issue_interval']})")
        print(f"wrote {design.manifest_path}")
        return 0
    design = emit_core(params, args.out)
    m_max, k_max, n_max = params.tile_max
    print(f"wrote {design.verilog_path} (top {params.top_name}: {params.dataflow} {params.rows}x{params.cols}, "
          f"{'int' if params.weight_signed else 'uint'}{params.weight_bits} weights x "
          f"{'int' if params.activation_signed else 'uint'}{params.activation_bits} activations, "
          f"{params.acc_bits}-bit accumulators, "
          f"tiles up to m={m_max} k={k_max} n={n_max})")
    print(f"wrote {design.manifest_path}")
    return 0
