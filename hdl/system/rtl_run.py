"""Run a program on the generated system's RTL under cocotb: the DRAM image in, the DRAM image and every dispatch
cycle out (``hdl/benches/system_bench.py`` does the host's part of docs/isa.md).

``run_system`` writes the Verilog of the simulation top (``hdl.system.sim_top.SimulationTop``: the system, its
DRAM at the spec's latency and the issue trace, all in RTL, so the simulator runs without Python in every cycle)
and the case into a work folder, runs the bench on Icarus or Verilator and returns what the RTL did: DONE or the
error it stopped on, CYCLES, the cycle each instruction dispatched in, and the DRAM after the run. The image is
not in the Verilog (the bench writes it into the memory), so one build serves every image up to the memory's size
(``sim_memory_bytes``). It knows nothing of models: ``codesign run`` compiles, compares and reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from codesign.errors import HdlError
from hdl.cocotb_run import run_cocotb
from hdl.emit import to_verilog
from hdl.system.generate import SYSTEM_TOP
from hdl.system.params import SystemParams

__all__ = ["SYSTEM_TOP", "SystemRun", "system_verilog", "sim_top_verilog", "run_system", "build_cache_dir",
           "toolchain_key"]

VERILATOR_OPT = "-O1"  # the system's C++ at -Os takes over ten minutes to compile; -O1 a fraction, and runs fast
# The memories' initial values make functions of hundreds of thousands of statements; split them for the compiler.
VERILATOR_ARGS = ("--output-split-cfuncs", "2000", "--output-split", "20000")


def build_cache_dir() -> Path:
    """Where simulator builds of system Verilog are kept, one folder per distinct Verilog text, a build in it per
    simulator and ``toolchain_key`` (``CODESIGN_RTL_CACHE``, else ~/.cache/codesign/rtl): a second run of the same
    system in the same environment skips the build."""
    root = os.environ.get("CODESIGN_RTL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "codesign", "rtl")
    return Path(root)


def toolchain_key(simulator: str) -> str:
    """A short digest of what a simulator build depends on beside the Verilog: the Python environment, cocotb's
    version and folder (its makefiles name its files by absolute path) and the simulator's executable. A cached
    build made by another environment is not reused (its makefiles would point into that environment)."""
    import shutil
    import sys

    import cocotb

    program = {"verilator": "verilator", "icarus": "iverilog"}.get(simulator, simulator)
    parts = (sys.prefix, getattr(cocotb, "__version__", ""), os.path.dirname(os.path.abspath(cocotb.__file__)),
             simulator, shutil.which(program) or "")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SystemRun:
    """What one run of the RTL did."""

    done: bool
    error_code: int
    error_pc: int
    timed_out: bool
    cycles: int  # the CYCLES register: from START to DONE
    issue: tuple[int, ...]  # per instruction index: the cycle it dispatched in (-1: never)
    dram: bytes
    simulator: str
    seconds: float
    work_dir: Path


def system_verilog(params: SystemParams, *, dram_bytes: int | None = None, name: str = SYSTEM_TOP) -> str:
    """The Verilog of the system ``params`` builds."""
    from hdl.system.system import AcceleratorSystem

    return to_verilog(AcceleratorSystem(params, dram_bytes=dram_bytes), name=name)


def sim_top_verilog(params: SystemParams, memory_bytes: int, *, name: str = SYSTEM_TOP) -> str:
    """The Verilog of the simulation top of the system ``params`` builds, with a DRAM of ``memory_bytes``."""
    from hdl.system.sim_top import SimulationTop

    return to_verilog(SimulationTop(params, memory_bytes), name=name)


def run_system(params: SystemParams, dram: bytes, program_addr: int, program_count: int, simulator: str,
               work_dir: str | os.PathLike, *, max_cycles: int, verilog: str | None = None) -> SystemRun:
    """Boot and run the program at DRAM ``program_addr`` (``program_count`` instructions) of the image ``dram`` on
    the RTL in ``simulator``; stop after ``max_cycles`` without DONE (counted from the START write). ``verilog``:
    the simulation top's Verilog (``sim_top_verilog``, with a memory that holds the image) if already written, else
    generated. Raises HdlError when the simulator cannot build or run the design."""
    from hdl.system.sim_top import sim_memory_bytes

    folder = Path(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    text = verilog if verilog is not None else sim_top_verilog(params, sim_memory_bytes(len(dram)))
    (folder / f"{SYSTEM_TOP}.v").write_text(text)
    build = build_cache_dir() / hashlib.sha256(text.encode()).hexdigest()[:20]
    build.mkdir(parents=True, exist_ok=True)
    source = build / f"{SYSTEM_TOP}.v"
    if not source.is_file():  # written once, so its age lets a finished build be reused
        tmp = source.with_suffix(".v.tmp")
        tmp.write_text(text)
        tmp.replace(source)
    (folder / "dram.bin").write_bytes(bytes(dram))
    case = {"dram": "dram.bin", "dram_out": "dram_out.bin", "result": "result.json", "program_addr": program_addr,
            "program_count": program_count, "data_bytes": params.axi_data_bytes, "max_cycles": int(max_cycles)}
    (folder / "case.json").write_text(json.dumps(case))
    for stale in ("result.json", "dram_out.bin"):
        (folder / stale).unlink(missing_ok=True)
    started = time.monotonic()
    build_dir = build / f"build_{simulator}_{toolchain_key(simulator)}"
    from hdl.benches.system_bench import CASE_ENV

    import fcntl

    with open(build / f".lock_{simulator}", "w") as lock:  # one run at a time per build (results share its folder)
        fcntl.flock(lock, fcntl.LOCK_EX)
        run_cocotb([source], SYSTEM_TOP, "hdl.benches.system_bench", simulator, build_dir,
                   {CASE_ENV: str((folder / "case.json").resolve())}, always=False, verilator_opt=VERILATOR_OPT,
                   verilator_args=VERILATOR_ARGS)
    seconds = time.monotonic() - started
    result_file = folder / "result.json"
    if not result_file.is_file():
        raise HdlError(f"the {simulator} run of the system wrote no result (see {build_dir})")
    result = json.loads(result_file.read_text())
    issue = [-1] * program_count
    for cycle, pc in result["issue"]:
        if 0 <= pc < program_count and issue[pc] < 0:
            issue[pc] = cycle
    return SystemRun(done=result["done"], error_code=result["error_code"], error_pc=result["error_pc"],
                     timed_out=result["timed_out"], cycles=result["cycles"], issue=tuple(issue),
                     dram=(folder / "dram_out.bin").read_bytes(), simulator=simulator, seconds=seconds,
                     work_dir=folder)
