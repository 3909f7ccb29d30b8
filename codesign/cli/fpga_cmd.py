"""`codesign fpga`: build the accelerator's core for an FPGA board and report fit and post-route Fmax.

The core runs inside an LFSR harness (hdl.fpga.LfsrHarness) so that synthesis keeps all of it:
the bitstream measures the design's cost and speed on the board, it is not a deployable system.
The post-route Fmax is set beside the arch's clock, which the simulator's latency assumes.
Before any synthesis the resource model (hdl.resources, calibrated by bench/resource_calibrate.py)
checks that the design fits the board: if it does not, the command stops within seconds (exit 2)
naming the resource, what is needed, what the board has and the largest array of the kind that fits.
`--dataflow rs` builds the row-stationary array (hdl.rs_array, docs/rs-array.md) the same way and also
reports its cells, DSP blocks and block RAMs per PE.
"""

from __future__ import annotations

import argparse

from codesign.cli.hdl_cmd import add_core_arguments

BOARD_CHOICES = ("icebreaker", "ulx3s")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fpga",
        help="build the accelerator's core for an FPGA board: utilisation and post-route Fmax",
        description=__doc__,
    )
    add_core_arguments(parser)
    parser.add_argument("--board", required=True, help=f"target board: {', '.join(BOARD_CHOICES)}")
    parser.add_argument(
        "--dsp-pes",
        type=int,
        default=None,
        metavar="N",
        help="PEs whose multiplier goes to a DSP block, the rest in logic "
        "(default: as many as the board has DSP blocks, at most every PE)",
    )
    parser.add_argument("--out", default="build/fpga", help="build folder (default build/fpga)")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the figures as JSON")
    parser.add_argument("--force", action="store_true",
                        help="skip the resource model's fit check and run place-and-route anyway "
                        "(the model is within about 10%%: near the limit the real build may still fit)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from codesign.arch_loader import load_arch
    from codesign.atomic_write import check_writable, write_text_atomic
    from codesign.cli.hdl_cmd import core_params_from_args
    from codesign.errors import HdlError
    from hdl.params import BinaryCoreParams
    from hdl.resources import board_dsp_pes, check_fit, fit_report

    if args.board not in BOARD_CHOICES:
        raise HdlError(f"unknown board {args.board!r}; choose one of {', '.join(BOARD_CHOICES)}")
    check_writable(args.json)
    from hdl.rs_pe import RsParams

    params = core_params_from_args(args, allow_rs=True)
    arch = load_arch(args.arch)
    binary = isinstance(params, BinaryCoreParams)
    rs = isinstance(params, RsParams)
    if rs:
        if args.dsp_pes is not None:
            raise HdlError("--dsp-pes applies to the GEMM cores; the RS array has one multiplier per PE "
                           "(--multiplier dsp|logic)")
    elif binary:
        if args.dsp_pes is not None:
            raise HdlError("--dsp-pes applies to the integer GEMM core, not to --array binary")
    else:
        pes = params.rows * params.cols
        if params.multiplier == "dsp":
            dsp_pes = args.dsp_pes if args.dsp_pes is not None else board_dsp_pes(params, args.board)
            if not 0 <= dsp_pes <= pes:
                raise HdlError(f"--dsp-pes {dsp_pes} is outside 0..{pes} (the array has {pes} PEs)")
            params = dataclasses.replace(params, dsp_pes=dsp_pes)
    # The fit check: no synthesis, no place-and-route; a design that does not fit stops here.
    if rs:
        from hdl.resources import check_rs_fit, rs_fit_report

        if args.force:
            try:
                predicted = rs_fit_report(params, args.board).estimate
            except HdlError:
                predicted = None
        else:
            predicted = check_rs_fit(params, args.board, name=arch.name).estimate
    elif args.force:
        try:
            predicted = fit_report(params, args.board).estimate
        except HdlError:
            predicted = None
    else:
        policy = args.dsp_pes if args.dsp_pes is not None else "board"
        predicted = check_fit(params, args.board, name=arch.name, dsp_pes=policy).estimate
    console = Console()
    console.print(f"building {params.top_name} for {args.board} in {args.out} ...")
    from hdl.fpga import build_binary_core, build_gemm_core, build_rs_array

    if rs:  # both builders ask synth_ice40 for SB_MAC16 multipliers (-dsp) themselves
        build = build_rs_array(args.board, Path(args.out), params)
    elif binary:
        build = build_binary_core(args.board, Path(args.out), params)
    else:
        build = build_gemm_core(args.board, Path(args.out), params)
    figures = build.as_dict() | {"arch": arch.name, "arch_clock_mhz": arch.clock_mhz,
                                 "parameters": dataclasses.asdict(params)}
    if predicted is not None:
        figures["predicted"] = predicted.as_dict()
    if rs:
        figures["per_pe"] = {"pes": params.pes, "logic_cells": round(build.logic_cells / params.pes, 1),
                             "dsp": round(build.dsp / params.pes, 2), "bram": round(build.bram / params.pes, 2)}
    if args.json:
        write_text_atomic(args.json, json.dumps(figures, indent=2) + "\n")

    table = Table(title=f"{build.design} on {args.board}")
    table.add_column("resource")
    table.add_column("used", justify="right")
    table.add_column("predicted", justify="right")
    table.add_column("available", justify="right")
    for label, used, guess, available in (
        ("logic cells", build.logic_cells, predicted and predicted.cells, build.logic_cells_available),
        ("DSP blocks", build.dsp, predicted and predicted.dsps, build.dsp_available),
        ("block RAMs", build.bram, predicted and predicted.brams, build.bram_available),
    ):
        table.add_row(label, str(used), "" if guess is None else f"{guess:.0f}", str(available))
    console.print(table)
    if rs:
        per = figures["per_pe"]
        console.print(f"per PE ({params.pes} PEs): {per['logic_cells']:g} logic cells, {per['dsp']:g} DSP blocks, "
                      f"{per['bram']:g} block RAMs")
    console.print(f"post-route Fmax {build.fmax_mhz:.1f} MHz; bitstream {build.bitstream} ({build.seconds:.0f} s)")
    if build.fmax_mhz < arch.clock_mhz:
        console.print(
            f"[yellow]note: {arch.name} assumes {arch.clock_mhz:g} MHz, above this build's post-route Fmax: "
            f"the simulated latency is optimistic by {arch.clock_mhz / build.fmax_mhz:.2f}x on this board[/yellow]"
        )
    return 0
