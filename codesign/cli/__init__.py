"""The ``codesign`` command line: one sub-command per module in this package.

Each sub-command module defines ``register(subparsers)``, which adds its parser and sets
``handler`` to a function taking the parsed arguments and returning an exit status. Heavy
imports (torch, amaranth) happen inside handlers, so ``codesign --help`` stays fast.
Any ``CodesignError`` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from codesign.errors import CodesignError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

COMMAND_MODULES = ("graph", "arch", "sim", "explore", "sweep", "fit", "hdl", "verify", "fpga", "demo", "compile", "run", "board_run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codesign",
        description="Hardware/software co-design for DNN accelerators: "
        "PyTorch model -> workload graph -> dataflow mapping -> cycle-level simulation -> verified Verilog.",
    )
    from codesign import __version__

    parser.add_argument("--version", action="version", version=f"codesign {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"codesign.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name == f"codesign.cli.{name}_cmd":
                continue  # sub-command not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CodesignError as exc:
        message = " ".join(str(exc).split())
        print(f"codesign: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codesign: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
