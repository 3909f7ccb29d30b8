"""``codesign sim MODEL --arch A --dataflow ws|os|rs|all``: map and simulate a model; summary first (totals and
the comparison, then the longest layers; ``--layers`` every layer), JSON, CSV and an HTML report."""

from __future__ import annotations

import argparse
import os

from codesign.cli.model_args import add_model_arguments
from codesign.unmapped import add_allow_argument

__all__ = ["register", "run"]



def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="simulate a model on an accelerator under a dataflow (cycles, energy, reuse)",
        description="Map every layer of a model onto an accelerator (weight, output or row stationary), "
        "simulate it cycle-accurately and print the totals (with --dataflow all, side by side), then each "
        "dataflow's longest layers (--layers: every layer).",
    )
    add_model_arguments(parser)
    add_allow_argument(parser)
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
    parser.add_argument("--report", metavar="DIR", default=None,
                        help="write an HTML report to the folder DIR (index.html, a PNG per figure with the JSON and "
                        "CSV behind it, the full results); DIR is created, or replaced when it holds a previous "
                        "codesign report; a folder with other files is refused")
    parser.add_argument("--layers", action="store_true",
                        help="print every layer in network order (default: the longest 10 per dataflow)")
    parser.add_argument("--max-rows", type=_max_rows, default=None, metavar="N",
                        help="layers per table: the N longest, or with --layers the first N")
    parser.add_argument("--quiet", action="store_true", help="print nothing (only write the files)")
    parser.add_argument("--machine", default="abstract", choices=("abstract", "system"),
                        help="abstract (default): the accelerator model of the YAML (docs/simulator.md); system: the "
                        "generated system's cycles per step by the contract its RTL is built to (docs/isa.md; int8, "
                        "ws or os, the ops codesign compile runs)")
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
    from codesign.cli.model_args import bits_line, workload_from_args
    from codesign.report import check_report_dir, require_matplotlib
    from codesign.sim_report import csv_text, json_text, print_sim
    from codesign.unmapped import check_mapped, print_unmapped
    from dataflow import registry
    from dataflow.mapper import OBJECTIVES
    from sim.engine import simulate

    if args.machine == "system":
        from codesign.cli.system_sim import run_system_sim

        return run_system_sim(args)
    dataflow = str(args.dataflow).lower()
    if dataflow != "all":
        registry.get(dataflow)  # an unknown dataflow is one line before any work
    objective = _check_choice(args.objective, OBJECTIVES, "objective")
    check_writable(args.json)
    check_writable(args.csv)
    if args.report:
        require_matplotlib()
        check_report_dir(args.report)
    arch = load_arch(args.arch)
    if dataflow == "all":
        flows = [name for name in registry.names() if arch.supports(name)]
    else:
        flows = [registry.for_arch(arch, dataflow).name]
    workload = workload_from_args(args, arch)  # without --bits: the model's own widths, else the arch's PE widths
    unmapped = check_mapped(workload, args.model, args.allow_unsupported)  # refused unless --allow-unsupported
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))  # files and pipes get the whole table, no cell cut
    if args.bits is None and not args.quiet:
        console.print(bits_line(workload, arch), markup=False, highlight=False, soft_wrap=True)
    runs = [simulate(workload, arch, flow, objective=objective, progress=console.is_terminal, fuse=args.fuse,
                     onchip_activations=args.onchip_activations) for flow in flows]
    compare = dataflow == "all"
    # Write the files only once everything has been simulated: a failure leaves no output behind; the report is
    # drawn in memory before anything is written.
    report = None
    if args.report:
        from codesign.report import draw_report
        from codesign.report.pages import sim_files, sim_page

        report = draw_report(sim_page(runs, arch, args.model, None if args.layers else args.max_rows),
                             sim_files(runs, compare))
    if args.json:
        write_text_atomic(args.json, json_text(runs, compare))
    if args.csv:
        write_text_atomic(args.csv, csv_text(runs))
    if report is not None:
        report.write(args.report)
    if not args.quiet:
        print_sim(runs, console, layers=args.layers, max_rows=args.max_rows, model=args.model)
        print_unmapped(unmapped, console)
        console.print(f"machine: the abstract accelerator model of {arch.name} (docs/simulator.md); --machine "
                      "system gives the generated system's own cycles (docs/isa.md)", markup=False, highlight=False,
                      soft_wrap=True)
        if args.report:
            console.print(f"report: {os.path.join(args.report, 'index.html')}", markup=False, highlight=False,
                          soft_wrap=True)
    return 0
