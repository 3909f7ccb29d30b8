"""`codesign demo`: the whole co-design loop on a bundled model and accelerator, on two screens.

Runs the commands a user would type, in order: prune the model and explore the dataflows, sweep bit-widths on
an FPGA board, generate Verilog for the winning dataflow and verify it in an HDL simulator (results bit-exact,
cycles equal to the simulator's), with HTML reports of the exploration and the sweep. It ends with where the
reports are and a three-line summary read from the files the commands wrote.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

DEFAULT_MODEL = "zoo:mobilenetv2-cifar"
DEFAULT_ARCH = "fpga-8x8"
DEFAULT_PRUNE = "filters:0.5"
DEFAULT_BITS = "8,4,2"
DEFAULT_BOARD = "ulx3s"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run explore -> sweep -> hdl -> verify on a bundled model and accelerator",
        description=__doc__,
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model to run (default {DEFAULT_MODEL})")
    parser.add_argument("--arch", default=DEFAULT_ARCH, help=f"accelerator (default {DEFAULT_ARCH})")
    parser.add_argument("--prune", default=DEFAULT_PRUNE, help=f"pruning to explore beside dense (default {DEFAULT_PRUNE})")
    parser.add_argument("--bits", default=DEFAULT_BITS, help=f"bit-widths to sweep (default {DEFAULT_BITS})")
    parser.add_argument("--board", default=DEFAULT_BOARD, help=f"board the sweep checks fit on (default {DEFAULT_BOARD})")
    parser.add_argument("--out", default="build/demo", help="folder for the reports, JSON and Verilog (default build/demo)")
    parser.add_argument(
        "--simulator", default="icarus", choices=("icarus", "verilator"), help="RTL simulator for verify"
    )
    parser.set_defaults(handler=run)


def _explore_steps(args: argparse.Namespace, out: Path) -> list[tuple[str, list[str]]]:
    return [
        ("1. Prune and explore the dataflows",
         ["explore", args.model, "--arch", args.arch, "--prune", args.prune, "--summary",
          "--json", str(out / "explore.json"), "--report", str(out / "explore")]),
        (f"2. Sweep bit-widths on the {args.board}",
         ["sweep", args.model, "--arch", args.arch, "--bits", args.bits, "--board", args.board,
          "--json", str(out / "sweep.json"), "--report", str(out / "sweep")]),
    ]


def _rtl_steps(args: argparse.Namespace, out: Path, dataflow: str) -> list[tuple[str, list[str]]]:
    return [
        (f"3. Verilog for the winner: {dataflow.upper()} on {args.arch}",
         ["hdl", "--arch", args.arch, "--dataflow", dataflow, "--out", str(out / "rtl")]),
        ("4. RTL check: results bit-exact, cycles as simulated",
         ["verify", "--arch", args.arch, "--dataflow", dataflow, "--simulator", args.simulator,
          "--json", str(out / "verify.json")]),
    ]


def _run_steps(console: Console, steps: list[tuple[str, list[str]]]) -> int:
    from codesign.cli import main

    for title, argv in steps:
        console.print(Rule(title))
        console.print(f"[dim]$ codesign {' '.join(argv)}[/dim]", soft_wrap=True)
        status = main(argv)
        if status != 0:
            console.print(f"[red]step failed with exit status {status}[/red]")
            return status
    return 0


def _winner(explore: dict, variant: str) -> dict:
    return explore["winners"][variant]


def summary_lines(args: argparse.Namespace, out: Path) -> list[str]:
    """The three lines the demo ends with, from the JSON the explore, sweep and verify steps wrote."""
    explore = json.loads((out / "explore.json").read_text())
    sweep = json.loads((out / "sweep.json").read_text())
    verify = json.loads((out / "verify.json").read_text())
    dense, pruned = _winner(explore, "dense"), _winner(explore, args.prune)
    saved = 1.0 - pruned["cycles"] / dense["cycles"] if dense["cycles"] else 0.0
    first = (f"explore: {dense['dataflow'].upper()} wins on {explore['arch']} ({dense['cycles'] / 1e6:.2f}M cycles "
             f"dense); {args.prune} takes {pruned['dataflow'].upper()} to {pruned['cycles'] / 1e6:.2f}M "
             f"({saved:.0%} fewer)")
    fitting = [p for p in sweep["points"] if p.get("fits") is not False]
    best = max(fitting or sweep["points"], key=lambda p: p["inferences_per_s"])
    sqnr = f", SQNR {best['sqnr_db']:.1f} dB" if best.get("sqnr_db") is not None else ""
    pareto = sorted({p["bits"] for p in sweep["points"] if p.get("pareto")}, reverse=True)
    second = (f"sweep: fastest that fits the {sweep['board']}: {best['bits']}-bit {best['dataflow'].upper()}, "
              f"{best['inferences_per_s']:.1f} inferences/s at {best['clock_mhz']:.1f} MHz{sqnr}; Pareto front at "
              f"{', '.join(str(b) for b in pareto)} bits")
    timed = [c for c in verify["checks"] if c["predicted_cycles"] is not None]
    exact = sum(c["predicted_cycles"] == c["measured_cycles"] for c in timed)
    passed = sum(c["passed"] for c in verify["checks"])
    third = (f"rtl: {verify['top']} on {verify['simulator']}: {passed} of {len(verify['checks'])} checks passed, "
             f"{exact} of {len(timed)} cycle counts equal to the prediction (the rest stalled on purpose)")
    return [first, second, third]


def run(args: argparse.Namespace) -> int:
    console = Console() if Console().is_terminal else Console(width=120)
    out = Path(args.out)
    os.makedirs(out, exist_ok=True)
    status = _run_steps(console, _explore_steps(args, out))
    if status:
        return status
    dataflow = _winner(json.loads((out / "explore.json").read_text()), "dense")["dataflow"]
    if dataflow not in ("ws", "os"):
        dataflow = "ws"  # the generator builds WS and OS arrays (row stationary is simulator-only)
    status = _run_steps(console, _rtl_steps(args, out, dataflow))
    if status:
        return status
    console.print(Rule("summary"))
    for line in summary_lines(args, out):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"reports: {out / 'explore' / 'index.html'} and {out / 'sweep' / 'index.html'}; "
                  f"Verilog in {out / 'rtl'}", markup=False, highlight=False, soft_wrap=True)
    return 0
