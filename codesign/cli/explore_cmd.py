"""``codesign explore MODEL --arch A [--prune SPEC ...] [--arrays RxC,...] [--dataflows ws,os,rs]``: a model and its
pruned variants under every dataflow (and array shape) on one accelerator; summary, savings, per-layer winners."""

from __future__ import annotations

import argparse
import os

from codesign.cli.cluster_args import add_cluster_arguments, cluster_options
from codesign.cli.model_args import add_model_arguments
from codesign.unmapped import add_allow_argument

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explore",
        help="compare dataflows (and array shapes) for a model and its pruned variants",
        description="Prune the model by each SPEC (on a copy, beside the model as loaded), capture every variant, "
        "simulate each under every dataflow on the accelerator (a dataflow it does not list runs on a derived "
        "variant with the network it needs) and report the winner per variant, what the zeros saved, and per "
        "layer which dataflow wins and why.",
    )
    add_model_arguments(parser)
    add_allow_argument(parser)
    parser.add_argument("--arch", required=True, metavar="PRESET|FILE.yaml", help="accelerator preset or YAML spec")
    parser.add_argument("--prune", action="append", default=[], metavar="SPEC",
                        help="a pruning to compare (repeatable): unstructured:R (global L1 over conv and linear "
                        "weights), filters:R (L1 filter pruning per conv), slimming:R (smallest |gamma| batch-norm "
                        "channels), nm:N:M (N of every M weights along the input dimension); R a share in [0, 1)")
    parser.add_argument("--arrays", default=None, metavar="RxC,...",
                        help="other array shapes to run as well, e.g. 8x8,16x16 (everything else as the spec)")
    parser.add_argument("--dataflows", default=None, metavar="ws,os,rs",
                        help="dataflows to compare (default ws,os,rs; one that cannot run is then skipped with a "
                        "note, while a requested one is an error)")
    parser.add_argument("--objective", default="latency", metavar="latency|energy|edp",
                        help="what the mapper minimizes per layer and what picks the winners (default latency)")
    parser.add_argument("--no-fuse", dest="fuse", action="store_false",
                        help="run batch norms and activations as layers of their own")
    parser.add_argument("--no-onchip-activations", dest="onchip_activations", action="store_false",
                        help="write every layer's output to DRAM and read it back")
    parser.add_argument("--layers", action="store_true",
                        help="explain every layer (not only the longest 15) and print the per-layer tables")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the results as JSON")
    parser.add_argument("--csv", metavar="FILE", default=None, help="write one row per layer per run as CSV")
    parser.add_argument("--report", metavar="DIR", default=None,
                        help="write an HTML report to the folder DIR (index.html, a PNG per figure with the JSON and "
                        "CSV behind it, the full results); DIR is created, or replaced when it holds a previous "
                        "codesign report; a folder with other files is refused")
    parser.add_argument("--summary", action="store_true",
                        help="print the comparison, the winners and what the zeros saved, not the per-layer reasons")
    parser.add_argument("--quiet", action="store_true", help="print nothing (only write the files)")
    add_cluster_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from codesign.arch_loader import load_arch
    from codesign.atomic_write import check_writable, write_text_atomic
    from codesign.cli.model_args import bits_policy_from_args, parse_input_shape
    from codesign.explore import explore, parse_arrays, parse_dataflows
    from codesign.explore_report import csv_text, json_text, print_explore
    from codesign.prune import parse_specs
    from dataflow.mapper import check_objective

    # Everything that can be checked without the model fails here, as one line, before any slow work.
    specs = parse_specs(args.prune)
    arrays = parse_arrays(args.arrays)
    dataflows = parse_dataflows(args.dataflows)
    objective = check_objective(str(args.objective).lower())
    cluster = cluster_options(args)
    check_writable(args.json)
    check_writable(args.csv)
    if args.report:
        from codesign.report import check_report_dir, require_matplotlib

        require_matplotlib()
        check_report_dir(args.report)  # before any slow work
    arch = load_arch(args.arch)
    policy = bits_policy_from_args(args)
    shape = parse_input_shape(getattr(args, "input_shape", None))
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))  # files and pipes get the whole table, no cell cut
    result = explore(args.model, arch, prune=specs, arrays=arrays, dataflows=dataflows, objective=objective,
                     input_shape=shape, bits=policy, fold_views=getattr(args, "fold_views", True), fuse=args.fuse,
                     onchip_activations=args.onchip_activations, progress=console.is_terminal and not args.quiet,
                     allow_unsupported=args.allow_unsupported, **cluster)
    # Both files are written only once everything ran: a failure leaves no output behind.
    report = None
    if args.report:  # drawn in memory before any file is written
        from codesign.report import draw_report
        from codesign.report.pages import explore_files, explore_page

        report = draw_report(explore_page(result), explore_files(result))
    if args.json:
        write_text_atomic(args.json, json_text(result))
    if args.csv:
        write_text_atomic(args.csv, csv_text(result))
    if report is not None:
        report.write(args.report)
    if not args.quiet:
        print_explore(result, console, layers=args.layers, per_layer=not args.summary)
        if args.report:
            console.print(f"report: {os.path.join(args.report, 'index.html')}", markup=False, highlight=False,
                          soft_wrap=True)
    return 0
