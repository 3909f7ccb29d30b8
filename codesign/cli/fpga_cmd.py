"""`codesign fpga`: build the accelerator's core for an FPGA board and report fit and post-route Fmax.

The core runs inside an LFSR harness (hdl.fpga.LfsrHarness) so that synthesis keeps all of it:
the bitstream measures the design's cost and speed on the board, it is not a deployable system.
The post-route Fmax is set beside the arch's clock, which the simulator's latency assumes.
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
    from hdl.fpga import BOARD_DSP_BLOCKS, build_gemm_core

    if args.board not in BOARD_CHOICES:
        raise HdlError(f"unknown board {args.board!r}; choose one of {', '.join(BOARD_CHOICES)}")
    check_writable(args.json)
    params = core_params_from_args(args)
    arch = load_arch(args.arch)
    pes = params.rows * params.cols
    if params.multiplier == "dsp":
        dsp_pes = args.dsp_pes if args.dsp_pes is not None else min(pes, BOARD_DSP_BLOCKS[args.board])
        if not 0 <= dsp_pes <= pes:
            raise HdlError(f"--dsp-pes {dsp_pes} is outside 0..{pes} (the array has {pes} PEs)")
        params = dataclasses.replace(params, dsp_pes=dsp_pes)
    console = Console()
    console.print(f"building {params.top_name} for {args.board} in {args.out} ...")
    # synth_ice40 maps multipliers onto SB_MAC16 blocks only when asked to (-dsp).
    options = {"synth_opts": "-dsp"} if args.board == "icebreaker" and params.multiplier == "dsp" else {}
    build = build_gemm_core(args.board, Path(args.out), params, **options)
    figures = build.as_dict() | {"arch": arch.name, "arch_clock_mhz": arch.clock_mhz, "parameters": dataclasses.asdict(params)}
    if args.json:
        write_text_atomic(args.json, json.dumps(figures, indent=2) + "\n")

    table = Table(title=f"{build.design} on {args.board}")
    table.add_column("resource")
    table.add_column("used", justify="right")
    table.add_column("available", justify="right")
    for label, used, available in (
        ("logic cells", build.logic_cells, build.logic_cells_available),
        ("DSP blocks", build.dsp, build.dsp_available),
        ("block RAMs", build.bram, build.bram_available),
    ):
        table.add_row(label, str(used), str(available))
    console.print(table)
    console.print(f"post-route Fmax {build.fmax_mhz:.1f} MHz; bitstream {build.bitstream} ({build.seconds:.0f} s)")
    if build.fmax_mhz < arch.clock_mhz:
        console.print(
            f"[yellow]note: {arch.name} assumes {arch.clock_mhz:g} MHz, above this build's post-route Fmax: "
            f"the simulated latency is optimistic by {arch.clock_mhz / build.fmax_mhz:.2f}x on this board[/yellow]"
        )
    return 0
