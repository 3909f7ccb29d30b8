"""``codesign graph MODEL``: capture a model and print its layers and totals; write JSON / GraphML."""

from __future__ import annotations

import argparse

from codesign.cli.model_args import add_model_arguments

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "graph",
        help="capture a PyTorch model into the workload graph and print it",
        description="Capture a PyTorch model with torch.export and print every layer (kind, shapes, MACs, "
        "params, bytes at its bit-widths, pruning with dense and effective dimensions, dead and constant "
        "channels, measured input activation density) and the totals.",
    )
    add_model_arguments(parser)
    parser.add_argument("--json", metavar="FILE", default=None, help="write the workload as JSON (docs/workload-json.md)")
    parser.add_argument("--graphml", metavar="FILE", default=None, help="write the layer graph as GraphML")
    parser.add_argument("--quiet", action="store_true", help="print no table (only write the files)")
    parser.set_defaults(handler=run)



def run(args: argparse.Namespace) -> int:
    from codesign.atomic_write import check_writable, write_text_atomic
    from codesign.cli.model_args import workload_from_args
    from codesign.graph_report import graphml_text, print_report, workload_json_text

    check_writable(args.json)
    check_writable(args.graphml)
    workload = workload_from_args(args)
    if args.json:
        write_text_atomic(args.json, workload_json_text(workload, fold_views=args.fold_views))
    if args.graphml:
        write_text_atomic(args.graphml, graphml_text(workload))
    if not args.quiet:
        print_report(workload)
    return 0
