"""``codesign sweep MODEL --arch A --bits 16,8,4,2,1``: bit-widths against simulated throughput, energy and an
accuracy proxy, with the Pareto front; ``--board`` adds fit and FPGA resources."""

from __future__ import annotations

import argparse
import os

from codesign.cli.cluster_args import add_cluster_arguments, cluster_options
from codesign.unmapped import add_allow_argument

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    from codesign.cli.model_args import MODEL_HELP

    parser = subparsers.add_parser(
        "sweep",
        help="sweep bit-widths: throughput, energy and accuracy proxy per point, Pareto front marked",
        description="Capture the model once and simulate it at every bit-width (PEs built at that width; 1 bit on "
        "an XNOR-popcount array) under each dataflow and array shape, with the accuracy proxy of the model "
        "fake-quantized at that width (SQNR and top-1 agreement against float32).",
    )
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    add_allow_argument(parser)
    parser.add_argument("--input-shape", metavar="N,C,H,W", default=None, help="shape of the example input")
    parser.add_argument("--arch", required=True, metavar="PRESET|FILE.yaml", help="accelerator preset or YAML spec")
    parser.add_argument("--bits", default="16,8,4,2,1", metavar="B,B,...",
                        help="weight and activation bit-widths to sweep, 1..16 (default 16,8,4,2,1; 1 = binarized)")
    parser.add_argument("--layer-bits", metavar="NAME=W,A[,ACC]", action="append", default=[],
                        help="bit-widths of one layer at every point (repeatable)")
    parser.add_argument("--keep-ends", type=int, default=None, metavar="BITS",
                        help="keep the first and last MAC layers at BITS (e.g. 8), as binarized networks do")
    parser.add_argument("--dataflows", default=None, metavar="ws,os,...", help="dataflows (default: the arch's)")
    parser.add_argument("--arrays", default=None, metavar="RxC,...", help="array shapes (default: the arch's)")
    parser.add_argument("--board", default=None, metavar="BOARD", help="FPGA board for fit and resources")
    parser.add_argument("--objective", default="latency", metavar="latency|energy|edp")
    parser.add_argument("--inputs", default=None, metavar="FILE",
                        help="inputs (optionally with labels) for the accuracy proxy, saved with torch.save")
    parser.add_argument("--no-accuracy", dest="accuracy", action="store_false", help="skip the accuracy proxy")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the points as JSON")
    parser.add_argument("--csv", metavar="FILE", default=None, help="write one row per point as CSV")
    parser.add_argument("--report", metavar="DIR", default=None,
                        help="write an HTML report to the folder DIR (index.html, a PNG per figure with the JSON and "
                        "CSV behind it, the full results); DIR is created, or replaced when it holds a previous "
                        "codesign report; a folder with other files is refused")
    parser.add_argument("--quiet", action="store_true", help="print nothing (only write the files)")
    add_cluster_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from codesign.arch_loader import load_arch
    from codesign.atomic_write import check_writable, write_text_atomic
    from codesign.capture.precision import parse_override
    from codesign.cli.model_args import parse_input_shape
    from codesign.explore import parse_arrays, parse_dataflows
    from codesign.model_ref import load_model
    from codesign.sweep import parse_bit_points, point_bits, sweep
    from codesign.sweep_report import csv_text, json_text, print_sweep
    from dataflow.mapper import check_objective

    points = parse_bit_points(args.bits)
    cluster = cluster_options(args)
    objective = check_objective(args.objective)
    arrays = parse_arrays(args.arrays)
    flows = parse_dataflows(args.dataflows)
    check_writable(args.json)
    check_writable(args.csv)
    if args.report:
        from codesign.report import check_report_dir, require_matplotlib

        require_matplotlib()
        check_report_dir(args.report)  # before any slow work
    if args.keep_ends is not None:
        parse_bit_points([args.keep_ends])
    arch = load_arch(args.arch)
    if args.board is not None:
        from codesign.errors import HdlError
        from hdl.fpga import BOARDS

        if args.board not in BOARDS:
            raise HdlError(f"unknown board {args.board!r}; choose one of {', '.join(BOARDS)}")
    layer_bits = dict(parse_override(item, point_bits(8)) for item in args.layer_bits)
    name, model, inputs = load_model(args.model, parse_input_shape(args.input_shape))
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))
    progress = _progress(console) if console.is_terminal else None
    try:
        result = sweep(model, inputs, arch, bits=points, layer_bits=layer_bits, dataflows=flows, arrays=arrays,
                       board=args.board, objective=objective, **cluster, name=name, accuracy=args.accuracy,
                       accuracy_inputs=args.inputs, keep_ends=args.keep_ends,
                       progress=progress[0] if progress else None,
                       reestimate_bn=str(args.model).startswith("zoo:"),  # zoo models are random-initialised
                       allow_unsupported=args.allow_unsupported)
    finally:
        if progress:
            progress[1].stop()
    report = None
    if args.report:  # drawn in memory before any file is written
        from codesign.report import draw_report
        from codesign.report.pages import sweep_files, sweep_page

        report = draw_report(sweep_page(result), sweep_files(result))
    if args.json:
        write_text_atomic(args.json, json_text(result))
    if args.csv:
        write_text_atomic(args.csv, csv_text(result))
    if report is not None:
        report.write(args.report)
    if not args.quiet:
        print_sweep(result, console)
        if args.report:
            console.print(f"report: {os.path.join(args.report, 'index.html')}", markup=False, highlight=False,
                          soft_wrap=True)
    return 0


def _progress(console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("sweeping"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True)

    def start(total: int):
        task = bar.add_task("points", total=total)
        bar.start()
        return lambda step: bar.advance(task, step)

    return start, bar
