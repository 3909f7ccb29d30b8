"""``codesign sim MODEL --arch A --dataflow ws|os|rs|all``: map and simulate a model; table, JSON, CSV."""

from __future__ import annotations

import argparse

from codesign.cli.model_args import add_model_arguments

__all__ = ["register", "run"]



def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="simulate a model on an accelerator under a dataflow (cycles, energy, reuse)",
        description="Map every layer of a model onto an accelerator (weight, output or row stationary), "
        "simulate it cycle-accurately and print a per-layer table; with --dataflow all, a comparison.",
    )
    add_model_arguments(parser)
    parser.add_argument("--arch", required=True, metavar="PRESET|FILE.yaml", help="accelerator preset or YAML spec")
    parser.add_argument("--dataflow", default="all", metavar="ws|os|rs|all",
                        help="dataflow to simulate (ws, os, rs or any registered one), or 'all' the accelerator supports "
                        "(default all)")
    parser.add_argument("--objective", default="latency", metavar="latency|energy|edp",
                        help="what the mapper minimizes per layer (default latency)")
    parser.add_argument("--no-fuse", dest="fuse", action="store_false",
                        help="run batch norms and activations as layers of their own, not in their producer's "
                        "output path")
    parser.add_argument("--no-onchip-activations", dest="onchip_activations", action="store_false",
                        help="write every layer's output to DRAM and read it back, even when it fits the global buffer")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the results as JSON")
    parser.add_argument("--csv", metavar="FILE", default=None, help="write one row per layer as CSV")
    parser.add_argument("--max-rows", type=_max_rows, default=None, metavar="N", help="print at most N layers per table")
    parser.add_argument("--quiet", action="store_true", help="print no tables (only write the files)")
    parser.set_defaults(handler=run)


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    from codesign.errors import MappingError

    value = str(value).lower()
    if value not in choices:
        raise MappingError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value


def _max_rows(text: str) -> int:
    """--max-rows: a whole number >= 1 (argparse reports anything else as a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from codesign.arch_loader import load_arch
    from codesign.atomic_write import check_writable, write_text_atomic
    from codesign.cli.model_args import workload_from_args
    from codesign.sim_report import csv_text, json_text, print_comparison, print_run
    from dataflow import registry
    from dataflow.mapper import OBJECTIVES
    from sim.engine import simulate

    dataflow = str(args.dataflow).lower()
    if dataflow != "all":
        registry.get(dataflow)  # an unknown dataflow is one line before any work
    objective = _check_choice(args.objective, OBJECTIVES, "objective")
    check_writable(args.json)
    check_writable(args.csv)
    arch = load_arch(args.arch)
    if dataflow == "all":
        flows = [name for name in registry.names() if arch.supports(name)]
    else:
        flows = [registry.for_arch(arch, dataflow).name]
    workload = workload_from_args(args)
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))  # files and pipes get the whole table, no cell cut
    runs = [simulate(workload, arch, flow, objective=objective, progress=console.is_terminal, fuse=args.fuse,
                     onchip_activations=args.onchip_activations) for flow in flows]
    compare = dataflow == "all"
    # Write both files only once everything has been simulated: a failure leaves no output behind.
    if args.json:
        write_text_atomic(args.json, json_text(runs, compare))
    if args.csv:
        write_text_atomic(args.csv, csv_text(runs))
    if not args.quiet:
        for result in runs:
            print_run(result, console, max_layers=args.max_rows)
        if compare and len(runs) > 1:
            print_comparison(runs, console)
    return 0
