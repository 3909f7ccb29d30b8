"""``verilator --lint-only -Wall`` on generated Verilog, with the documented waivers only."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from hdl.cocotb_run import VERILATOR_LINT_WAIVERS, ensure_simulator_on_path, waiver_args

__all__ = ["LintResult", "verilator_lint"]


@dataclass(frozen=True)
class LintResult:
    clean: bool
    command: tuple[str, ...]
    output: str


def verilator_lint(verilog_path: str | os.PathLike, top: str) -> LintResult:
    """Lint one file; ``clean`` only when Verilator exits 0 and prints no warning."""
    program = ensure_simulator_on_path("verilator")
    command = (program, "--lint-only", "-Wall", *waiver_args(VERILATOR_LINT_WAIVERS), "--top-module", top,
               str(verilog_path))
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = (proc.stdout + proc.stderr).strip()
    return LintResult(proc.returncode == 0 and "%Warning" not in output, command, output)
