"""`codesign hdl`: generate the Verilog GEMM core of an accelerator spec, with a manifest.json
(`--array binary`: the binarized XNOR-popcount core of its binary_array; `--unit NAME`: one stand-alone
unit of docs/hdl-units.md: xnor-pe, xnor-array, xnor-threshold-array, threshold, lut, softmax)."""

from __future__ import annotations

import argparse

# Unit parameter -> its option (`--rows`, `--cols` and `--word-bits` are shared with the GEMM cores).
UNIT_OPTIONS = {
    "rows": "--rows", "cols": "--cols", "word_bits": "--word-bits", "acc_bits": "--acc-bits",
    "channels": "--channels", "function": "--function", "in_bits": "--in-bits", "out_bits": "--out-bits",
    "in_range": "--in-range", "out_range": "--out-range", "latency": "--latency", "n_max": "--n-max",
    "in_scale": "--in-scale", "exp_in_bits": "--exp-in-bits", "exp_bits": "--exp-bits",
    "recip_in_bits": "--recip-in-bits", "recip_bits": "--recip-bits",
}
_CORE_ONLY = (("arch", "--arch"), ("dataflow", "--dataflow"), ("multiplier", "--multiplier"),
              ("weight_bits", "--weight-bits"), ("activation_bits", "--activation-bits"),
              ("set_rows", "--set-rows"), ("set_cols", "--set-cols"))


def add_core_arguments(parser: argparse.ArgumentParser, *, arch_required: bool = True) -> None:
    """Options shared by `hdl`, `verify` and `fpga`: which core to build (``arch_required=False``: `--arch`
    may be left out for `--unit`, see ``add_unit_arguments``)."""
    parser.add_argument("--arch", required=arch_required, metavar="PRESET|FILE.yaml",
                        help="accelerator preset (see `codesign arch list`) or YAML spec"
                        + ("" if arch_required else " (required unless --unit)"))
    parser.add_argument("--dataflow", default=None, metavar="ws|os|rs",
                        help="dataflow of the generated array (default: the arch's first); rs builds the "
                        "row-stationary array of docs/rs-array.md (hdl, verify and fpga)")
    parser.add_argument("--set-rows", type=int, default=None,
                        help="--dataflow rs: filter rows r of a PE set (default: the array's rows)")
    parser.add_argument("--set-cols", type=int, default=None,
                        help="--dataflow rs: output rows e of a PE set (default: the array's columns)")
    parser.add_argument("--max-stride", type=int, default=None, metavar="U",
                        help="--dataflow rs: the largest convolution stride a pass may command (default 1; "
                        "AlexNet conv1 needs 4); a set then takes r + (e-1)*U input rows")
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
                        help="--array binary: override binary_array.word_bits (binary MACs per PE per cycle); "
                        "--unit xnor-*: bits per packed word")


def add_unit_arguments(parser: argparse.ArgumentParser) -> None:
    """`--unit NAME` and its parameters (docs/hdl-units.md); each option applies to the units that have it."""
    group = parser.add_argument_group(
        "stand-alone units (--unit; docs/hdl-units.md)",
        "--rows, --cols and --word-bits also set the xnor-array and xnor-threshold-array shape and word size")
    group.add_argument("--unit", default=None, metavar="NAME",
                       help="xnor-pe, xnor-array, xnor-threshold-array, threshold, lut or softmax (instead of --arch)")
    group.add_argument("--acc-bits", type=int, default=None, help="xnor-*, threshold: accumulator / sum bits")
    group.add_argument("--channels", type=int, default=None, help="threshold: channels (1..1024)")
    group.add_argument("--function", default=None, metavar="NAME",
                       help="lut: sigmoid, tanh, gelu, silu, hswish or exp")
    group.add_argument("--in-bits", type=int, default=None, help="lut, softmax: input code bits")
    group.add_argument("--out-bits", type=int, default=None, help="lut, softmax: output code bits")
    group.add_argument("--in-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                       help="lut: real input range (default: the function's typical range)")
    group.add_argument("--out-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                       help="lut: real output range (default: the function's typical range)")
    group.add_argument("--latency", type=int, default=None, help="lut: 1 = registered ROM read (default), 0 = combinational")
    group.add_argument("--n-max", type=int, default=None, help="softmax: longest vector (1..4096)")
    group.add_argument("--in-scale", type=float, default=None, help="softmax: real value of one input step")
    group.add_argument("--exp-in-bits", type=int, default=None, help="softmax: exp table address bits")
    group.add_argument("--exp-bits", type=int, default=None, help="softmax: exp table value bits")
    group.add_argument("--recip-in-bits", type=int, default=None, help="softmax: reciprocal table address bits")
    group.add_argument("--recip-bits", type=int, default=None, help="softmax: reciprocal table value bits")


def _given_unit_options(args: argparse.Namespace) -> dict:
    return {name: getattr(args, name) for name in UNIT_OPTIONS if getattr(args, name, None) is not None}


def unit_params_from_args(args: argparse.Namespace):
    """The ``hdl.units.UnitParams`` that `--unit` and its options describe (HdlError for anything else)."""
    from codesign.errors import HdlError
    from hdl.units import UNITS, unit_params

    for attr, flag in _CORE_ONLY:
        if getattr(args, attr, None) is not None:
            raise HdlError(f"{flag} applies to the GEMM cores, not to --unit")
    if args.unsigned or getattr(args, "array", "main") != "main":
        raise HdlError(f"{'--unsigned' if args.unsigned else '--array'} applies to the GEMM cores, not to --unit")
    if args.unit not in UNITS:
        raise HdlError(f"unknown unit {args.unit!r}; choose one of {', '.join(UNITS)}")
    given = _given_unit_options(args)
    for name in given:
        if name not in UNITS[args.unit].parameters:
            owners = [unit for unit, kind in UNITS.items() if name in kind.parameters]
            raise HdlError(f"{UNIT_OPTIONS[name]} applies to --unit {' / '.join(owners)}, not to --unit {args.unit}")
    for name in ("in_range", "out_range"):
        if name in given:
            given[name] = tuple(given[name])
    return unit_params(args.unit, **given)


_INTEGER_ONLY = (("dataflow", "--dataflow"), ("multiplier", "--multiplier"), ("weight_bits", "--weight-bits"),
                 ("activation_bits", "--activation-bits"), ("set_rows", "--set-rows"), ("set_cols", "--set-cols"))


def _binary_params_from_args(args: argparse.Namespace, arch):
    from codesign.errors import HdlError
    from hdl.params import binary_params_from_arch

    for attr, flag in _INTEGER_ONLY:
        value = getattr(args, attr, None)
        if value is not None and not (attr == "dataflow" and value == "xnor"):
            raise HdlError(f"{flag} applies to the integer GEMM core, not to --array binary")
    if args.unsigned:
        raise HdlError("--unsigned applies to the integer GEMM core, not to --array binary")
    return binary_params_from_arch(arch, rows=args.rows, cols=args.cols, word_bits=args.word_bits)


def _rs_params(args: argparse.Namespace, arch):
    """The ``hdl.rs_pe.RsParams`` of ``arch`` (already carrying the option overrides) for --dataflow rs."""
    from hdl.rs_pe import rs_params_from_arch

    return rs_params_from_arch(arch, set_rows=getattr(args, "set_rows", None), set_cols=getattr(args, "set_cols", None),
                               multiplier=args.multiplier,
                               signed=False if args.unsigned else None,
                               max_stride=1 if getattr(args, "max_stride", None) is None else args.max_stride)


def core_params_from_args(args: argparse.Namespace, *, allow_rs: bool = False):
    """The CoreParams (``--array binary``: BinaryCoreParams; ``--dataflow rs`` with ``allow_rs``: the
    row-stationary array's RsParams) the options describe (typed errors for every bad value)."""
    import dataclasses

    from codesign.arch_loader import load_arch
    from codesign.errors import HdlError
    from hdl.params import core_params_from_arch

    if args.arch is None:
        raise HdlError("--arch is required (or --unit NAME for a stand-alone unit)")
    for name in _given_unit_options(args):
        if name not in ("rows", "cols", "word_bits"):
            raise HdlError(f"{UNIT_OPTIONS[name]} applies to --unit, not to the GEMM cores")
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
    dataflow = args.dataflow
    if dataflow is None and arch.dataflows:
        dataflow = getattr(arch.dataflows[0], "value", arch.dataflows[0])
    if dataflow == "rs":
        if not allow_rs:
            raise HdlError("dataflow 'rs' (row stationary): this command takes a GEMM core; `codesign hdl`, "
                           "`verify` and `fpga --dataflow rs` build, check and place the RS array; "
                           "use --dataflow ws or os")
        _check_rs_overrides(arch_changes, pe_changes, arch.name)
        if arch_changes:
            arch = dataclasses.replace(arch, **arch_changes)
        return _rs_params(args, arch)
    for attr, flag in (("set_rows", "--set-rows"), ("set_cols", "--set-cols"), ("max_stride", "--max-stride")):
        if getattr(args, attr, None) is not None:
            raise HdlError(f"{flag} applies to --dataflow rs")
    if arch_changes:
        arch = dataclasses.replace(arch, **arch_changes)
    return core_params_from_arch(arch, args.dataflow, multiplier=args.multiplier,
                                 signed=False if args.unsigned else None)


def _check_rs_overrides(arch_changes: dict, pe_changes: dict, name: str) -> None:
    """One-line HdlError for an override the arch spec would refuse with a less direct message."""
    from codesign.errors import HdlError
    from hdl.rs_pe import MAX_ARRAY_SIDE, RsWidthError

    for label in ("rows", "cols"):
        value = arch_changes.get(label)
        if value is not None and not 1 <= value <= MAX_ARRAY_SIDE:
            raise HdlError(f"RS array {label}={value} must be an integer in 1..{MAX_ARRAY_SIDE}")
    for label, value in pe_changes.items():
        if not 2 <= value <= 16:
            raise RsWidthError(f"RS array {label}={value} is outside the 2..16 bits the generator builds")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hdl",
        help="generate the Verilog GEMM core of an accelerator (and manifest.json)",
        description=__doc__ + " The core's protocol and cycle formula: docs/core-protocol.md.",
    )
    add_core_arguments(parser, arch_required=False)
    add_unit_arguments(parser)
    group = parser.add_argument_group("the whole system (--system; docs/isa.md, docs/system-rtl.md)")
    group.add_argument("--system", action="store_true",
                       help="the whole accelerator: controller, DMA unit on AXI4, global buffer, staging and vector "
                       "units, the GEMM core with accumulator and output path (what codesign compile programs)")
    group.add_argument("--imem-depth", type=int, default=None,
                       help="--system: instructions the instruction memory holds (default 8192)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write <top>.v and manifest.json into")
    parser.set_defaults(handler=run)


def _system(args: argparse.Namespace) -> int:
    from codesign.arch_loader import load_arch
    from codesign.errors import HdlError
    from hdl.system.generate import emit_system
    from hdl.system.params import DEFAULT_IMEM_DEPTH, system_params_from_arch

    given = [flag for flag, value in (("--unit", args.unit), ("--rows", args.rows), ("--cols", args.cols),
                                      ("--multiplier", args.multiplier), ("--weight-bits", args.weight_bits),
                                      ("--activation-bits", args.activation_bits), ("--word-bits", args.word_bits))
             if value is not None] + (["--unsigned"] if args.unsigned else []) + (
                 ["--array"] if args.array != "main" else [])
    if given:
        raise HdlError(f"{given[0]} does not apply to --system: the system is built from the arch as it is")
    if not args.arch:
        raise HdlError("--system needs --arch")
    depth = DEFAULT_IMEM_DEPTH if args.imem_depth is None else args.imem_depth
    if isinstance(depth, bool) or not 1 <= depth <= 1 << 16:
        raise HdlError(f"--imem-depth {depth}: must be 1 .. 65536 instructions")
    arch = load_arch(args.arch)
    dataflow = args.dataflow or next((d for d in ("ws", "os") if arch.supports(d)), None)
    if dataflow not in ("ws", "os") or not arch.supports(dataflow):
        raise HdlError(f"--dataflow {dataflow}: the system runs the ws or os core of an arch that lists it")
    params = system_params_from_arch(arch, dataflow, imem_depth=depth)
    design = emit_system(params, args.out)
    print(f"wrote {design.verilog_path} (top {design.manifest['top']}: {dataflow} {params.rows}x{params.cols} "
          f"system, GLB {params.glb_bytes // 1024} KiB in {params.glb_banks} banks, AXI4 "
          f"{8 * params.axi_data_bytes}-bit memory port, {params.acc_rows}-row accumulator, "
          f"{params.imem_depth}-instruction memory)")
    print(f"wrote {design.manifest_path}")
    for line in _system_fit_lines(params):
        print(line)
    return 0


def _system_fit_lines(params) -> list[str]:
    """The system's predicted fit on each board (``hdl.system.board.board_fit``: the whole system's logic and DSP
    blocks, its memories' block RAMs; a board build adds the UART bridge and the image's on-chip memory)."""
    from hdl.system.board import BOARD_PARTS, board_fit

    lines = []
    for board, part in BOARD_PARTS.items():
        fit = board_fit(params, 0, board)
        over = [what for what, used, has in (("logic", fit.logic_cells, fit.logic_available),
                                             ("DSP blocks", fit.dsps, fit.dsps_available),
                                             ("block RAM", fit.blocks, fit.blocks_available)) if used > has]
        verdict = "fits" if not over else f"does not fit ({', '.join(over)})"
        lines.append(f"{part}: {verdict}: about {fit.logic_cells:,.0f} of {fit.logic_available:,} logic cells, "
                     f"{fit.dsps} of {fit.dsps_available} DSP blocks, {fit.blocks} of {fit.blocks_available} "
                     f"block RAMs (predicted, hdl/system/resources.py; docs/board.md)")
    return lines


def design_params_from_args(args: argparse.Namespace):
    """``--unit``: the UnitParams; otherwise the core's CoreParams or BinaryCoreParams."""
    if getattr(args, "unit", None) is not None:
        return unit_params_from_args(args)
    return core_params_from_args(args, allow_rs=True)


def _describe_unit(params) -> str:
    """``name=value`` pairs, numbers as %g, ranges as ``[lo,hi]``."""
    def text(value):
        if isinstance(value, tuple):
            return "[" + ",".join(f"{v:g}" for v in value) + "]"
        return f"{value:g}" if isinstance(value, float) else str(value)

    return " ".join(f"{name}={text(value)}" for name, value in params.values)


def run(args: argparse.Namespace) -> int:
    if args.system:
        return _system(args)
    from hdl.generate import emit_binary_core, emit_core
    from hdl.params import BinaryCoreParams
    from hdl.units import UnitParams, emit_unit

    params = design_params_from_args(args)
    if isinstance(params, UnitParams):
        design = emit_unit(params, args.out)
        ports = design.manifest["ports"]
        print(f"wrote {design.verilog_path} (top {params.top_name}: {params.unit}, {_describe_unit(params)}; "
              f"{len(ports)} ports{'' if ports[0]['name'] == 'clk' else ', combinational'})")
        print(f"wrote {design.manifest_path}")
        return 0
    if isinstance(params, BinaryCoreParams):
        design = emit_binary_core(params, args.out)
        print(f"wrote {design.verilog_path} (top {params.top_name}: xnor-popcount {params.rows}x{params.cols}, "
              f"{params.word_bits}-bit words, {params.acc_bits}-bit accumulators, "
              f"tiles up to m={params.rows} k={params.max_k} ({params.max_words} words) n={params.cols}; "
              f"cycles: tile {design.manifest['cycles']['tile']}, "
              f"issue interval {design.manifest['cycles']['issue_interval']})")
        print(f"wrote {design.manifest_path}")
        return 0
    from hdl.rs_pe import RsParams

    if isinstance(params, RsParams):
        from hdl.generate import emit_rs_array

        design = emit_rs_array(params, args.out)
        print(f"wrote {design.verilog_path} (top {params.top_name}: rs {params.rows}x{params.cols}, "
              f"{params.sets} set{'s' if params.sets > 1 else ''} of {params.set_rows}x{params.set_cols} PEs, "
              f"{'int' if params.weight_signed else 'uint'}{params.weight_bits} weights x "
              f"{'int' if params.activation_signed else 'uint'}{params.activation_bits} activations, "
              f"scratchpads {params.weight_rf_words}/{params.activation_rf_words}/{params.psum_rf_words} words, "
              f"{params.psum_bits}-bit psums; cycles: pass {design.manifest['cycles']['pass']})")
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
