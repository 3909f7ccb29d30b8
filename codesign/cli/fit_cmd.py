"""``codesign fit MODEL --fps 30 --board BOARD [--min-sqnr DB] [--out DIR]``: the cheapest generated design that
reaches a frame rate on a board within an accuracy bound; writes its YAML for ``codesign hdl`` / ``fpga``."""

from __future__ import annotations

import argparse

from codesign.cli.cluster_args import add_cluster_arguments, cluster_options

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    from codesign.cli.model_args import MODEL_HELP

    parser = subparsers.add_parser(
        "fit",
        help="find the cheapest design that reaches a frame rate on a board within an accuracy bound",
        description="Search bit-widths (uniform, and low-bit with the first and last layers kept at 8 bits), "
        "dataflow and array shape for the design that uses the smallest share of the board and still reaches "
        "--fps with the accuracy proxy at least --min-sqnr; print it and the runners-up with why, write its YAML.",
    )
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument("--input-shape", metavar="N,C,H,W", default=None, help="shape of the example input")
    parser.add_argument("--fps", required=True, metavar="FPS", help="frames (inferences) per second to reach")
    parser.add_argument("--board", required=True, metavar="BOARD", help="FPGA board (icebreaker, ulx3s)")
    parser.add_argument("--min-sqnr", type=float, default=None, metavar="DB",
                        help="the lowest accuracy proxy accepted: SQNR of the outputs against float32, dB")
    parser.add_argument("--arch", default="fpga-8x8", metavar="PRESET|FILE.yaml",
                        help="buffer, DRAM, clock and energy table to keep (default fpga-8x8)")
    parser.add_argument("--inputs", default=None, metavar="FILE", help="inputs for the accuracy proxy")
    parser.add_argument("--out", default=None, metavar="DIR", help="write the chosen design's YAML and JSON here")
    add_cluster_arguments(parser)
    parser.set_defaults(handler=run)


def _fps(text: str) -> float:
    import math

    from codesign.errors import SpecError

    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or math.isinf(value):
        raise SpecError(f"--fps {text!r}: the frame rate must be a number > 0")
    return value


def _why_not(other, chosen) -> str:
    """Why a feasible runner-up lost to the chosen design."""
    if other.cost > chosen.cost + 1e-9:
        return f"uses {other.cost:.0%} of the board, the chosen {chosen.cost:.0%}"
    return f"the same board share, {other.fps:.1f} fps against {chosen.fps:.1f}"


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from codesign.arch_loader import arch_to_yaml, load_arch
    from codesign.atomic_write import write_text_atomic
    from codesign.cli.model_args import parse_input_shape
    from codesign.errors import HdlError, OutputError
    from codesign.fit import fit_design
    from codesign.model_ref import load_model
    from hdl.resources import BOARDS

    fps = _fps(args.fps)
    cluster = cluster_options(args)
    if args.board not in BOARDS:
        raise HdlError(f"unknown board {args.board!r}; choose one of {', '.join(BOARDS)}")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: not a folder")
    base = load_arch(args.arch)
    name, model, inputs = load_model(args.model, parse_input_shape(args.input_shape))
    result = fit_design(model, inputs, base, args.board, fps, min_sqnr_db=args.min_sqnr, name=name,
                        accuracy_inputs=args.inputs, **cluster,
                        reestimate_bn=str(args.model).startswith("zoo:"))  # zoo models are random-initialised
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))
    c = result.chosen
    console.print(f"chosen: {c.label} on {result.board}: {c.fps:.1f} fps (target {fps:g}), SQNR {c.sqnr_db:.1f} dB, "
                  f"{c.cost:.0%} of the scarcest resource")
    table = Table(title="runners-up")
    for column in ("design", "fps", "SQNR dB", "board share", "why not"):
        table.add_column(column, justify="right" if column in ("fps", "SQNR dB", "board share") else "left")
    for other in result.runners_up:
        table.add_row(other.label, "" if other.fps is None else f"{other.fps:.1f}",
                      f"{other.sqnr_db:.1f}" if other.sqnr_db is not None else "", f"{other.cost:.0%}",
                      other.why or _why_not(other, c))
    console.print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        yaml_path = out / f"{result.design.name}.yaml"
        write_text_atomic(yaml_path, arch_to_yaml(result.design))
        write_text_atomic(out / "fit.json", json.dumps(result.to_dict(), indent=2) + "\n")
        console.print(f"wrote {yaml_path}; next: codesign hdl --arch {yaml_path} --out rtl/   or   "
                      f"codesign fpga --arch {yaml_path} --board {result.board}")
    return 0
