"""`codesign demo`: the whole co-design loop on a bundled model and accelerator.

Runs, in order, the same commands a user would type: the workload graph of a zoo model, its
simulation under every dataflow the accelerator supports (with its HTML report), Verilog for the accelerator, and
the cocotb verification that the RTL's cycles equal the simulator's.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

DEFAULT_MODEL = "zoo:mobilenetv2-cifar"
DEFAULT_ARCH = "fpga-8x8"
DEFAULT_VERIFY_ARCH = "fpga-4x4"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run graph -> sim -> hdl -> verify on a bundled model and accelerator",
        description=__doc__,
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model to run (default {DEFAULT_MODEL})")
    parser.add_argument("--arch", default=DEFAULT_ARCH, help=f"accelerator to simulate (default {DEFAULT_ARCH})")
    parser.add_argument(
        "--verify-arch",
        default=DEFAULT_VERIFY_ARCH,
        help=f"accelerator to generate and verify in RTL (default {DEFAULT_VERIFY_ARCH})",
    )
    parser.add_argument("--out", default="build/demo", help="folder for JSON reports and Verilog (default build/demo)")
    parser.add_argument(
        "--simulator", default="icarus", choices=("icarus", "verilator"), help="RTL simulator for verify"
    )
    parser.set_defaults(handler=run)


def _steps(args: argparse.Namespace, out: Path) -> list[tuple[str, list[str]]]:
    return [
        (
            "1. Workload graph",
            ["graph", args.model, "--json", str(out / "graph.json")],
        ),
        (
            "2. Simulation under every dataflow the accelerator supports",
            ["sim", args.model, "--arch", args.arch, "--dataflow", "all", "--json", str(out / "sim.json"),
             "--report", str(out / "report")],
        ),
        (
            "3. Verilog for the accelerator",
            ["hdl", "--arch", args.verify_arch, "--dataflow", "ws", "--out", str(out / "rtl")],
        ),
    ] + [
        (
            f"{4 + index}. RTL check, {dataflow.upper()}: results bit-exact, cycles as simulated",
            ["verify", "--arch", args.verify_arch, "--dataflow", dataflow, "--simulator", args.simulator],
        )
        for index, dataflow in enumerate(("ws", "os"))
    ]


def run(args: argparse.Namespace) -> int:
    from codesign.cli import main

    console = Console()
    out = Path(args.out)
    os.makedirs(out, exist_ok=True)
    for title, argv in _steps(args, out):
        console.print(Rule(title))
        console.print(f"[dim]$ codesign {' '.join(argv)}[/dim]")
        status = main(argv)
        if status != 0:
            console.print(f"[red]step failed with exit status {status}[/red]")
            return status
    console.print(Rule("done"))
    console.print(f"Reports and Verilog are in {out}/ (the simulation's HTML report: {out / 'report' / 'index.html'})")
    return 0
