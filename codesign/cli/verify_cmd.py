"""`codesign verify`: generate the GEMM core (`--array binary`: the binarized XNOR-popcount core of the
arch's binary_array; `--unit NAME`: a stand-alone unit of docs/hdl-units.md), run the cocotb benches on
Icarus or Verilator, and compare results with numpy and cycles with the simulator's prediction (a unit:
with its golden model and documented latency or cycles). Exit 0 only if all pass."""

from __future__ import annotations

import argparse

from codesign.cli.hdl_cmd import add_core_arguments, add_unit_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify the generated RTL in an HDL simulator: bit-exact results, cycles = simulator",
        description=__doc__,
    )
    add_core_arguments(parser, arch_required=False)
    add_unit_arguments(parser)
    parser.add_argument("--simulator", default="icarus", metavar="icarus|verilator", help="HDL simulator (default icarus)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random test data (default 0)")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="keep the Verilog, cases, build and logs in DIR (default: a temporary folder)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write every check (predicted and measured cycles, pass or fail) to FILE")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from codesign.cli.hdl_cmd import design_params_from_args
    from hdl.units import UnitParams

    params = design_params_from_args(args)
    if args.json:
        from codesign.atomic_write import check_writable

        check_writable(args.json)  # before the slow part
    if isinstance(params, UnitParams):
        from hdl.unit_verify import verify_unit

        report = verify_unit(params, args.simulator, args.seed, args.keep)
    else:
        from hdl.verify import verify_core

        report = verify_core(params, args.simulator, args.seed, args.keep)
    table = Table(title=f"{params.top_name} on {report.simulator} (seed {report.seed})")
    table.add_column("check")
    table.add_column("predicted cycles", justify="right")
    table.add_column("measured cycles", justify="right")
    table.add_column("result")
    table.add_column("detail")
    for check in report.checks:
        table.add_row(
            check.name,
            "" if check.predicted_cycles is None else str(check.predicted_cycles),
            "" if check.measured_cycles is None else str(check.measured_cycles),
            "[green]pass[/green]" if check.passed else "[red]FAIL[/red]",
            check.detail,
        )
    console = Console() if Console().is_terminal else Console(width=160)
    console.print(table)
    failed = sum(not check.passed for check in report.checks)
    verdict = "all checks passed" if report.passed else f"{failed} of {len(report.checks)} checks FAILED"
    console.print(f"{verdict} in {report.seconds:.1f} s")
    if args.json:
        import json

        from codesign.atomic_write import write_text_atomic

        document = {"top": params.top_name, "simulator": report.simulator, "seed": report.seed,
                    "passed": report.passed, "seconds": round(report.seconds, 3),
                    "checks": [{"name": c.name, "predicted_cycles": c.predicted_cycles,
                                "measured_cycles": c.measured_cycles, "passed": c.passed, "detail": c.detail}
                               for c in report.checks]}
        write_text_atomic(args.json, json.dumps(document, indent=2) + "\n")
    return 0 if report.passed else 1
