"""The system on a board: ``BoardSystem`` (the accelerator, its DRAM image in on-chip memory, a UART host link)
and its builds for the ULX3S (ECP5-85F) and the iCEBreaker (iCE40 UP5K) through amaranth-boards and YoWASP.

``BoardSystem(params, memory_bytes, clk_hz, baud)`` wires ``AcceleratorSystem`` (built knowing the memory's size:
DRAM ranges beyond it are error 3), ``OnChipMemory`` behind its AXI4 port and ``UartBridge`` to the memory's host
port and the CSR port. Its ports: ``uart_rx``, ``uart_tx``, ``led_done``, ``led_error``, ``led_busy``. The memory's
latency is ``onchip_memory.READ_LATENCY``, so ``params`` must come from ``board_arch(arch)`` (the cycle prediction
then holds on the board). ``memory_plan`` says where each region of a program's image lives; ``check_board_fit``
refuses, in one line before any tool runs, a design whose memories, logic or DSP blocks do not fit the board
(the logic of the whole system: ``hdl.system.resources``); ``build_board``
makes the bitstream and reports utilisation and Fmax (nextpnr's log, as ``hdl.fpga`` reads it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from amaranth.hdl import Elaboratable, Fragment, Module
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import HdlError
from hdl.fpga import BOARDS as FPGA_BOARDS, BoardBuild, board_platform, build_top
from hdl.system.onchip_memory import READ_LATENCY, OnChipMemory, board_arch, memory_bytes_for
from hdl.system.params import SystemParams
from hdl.system.uart_bridge import UartBridge, baud_divisor

__all__ = ["BoardSystem", "BoardTop", "MemoryRegion", "memory_plan", "memory_blocks", "BoardFit",
           "board_fit", "check_board_fit", "build_board", "DEFAULT_BAUD", "board_arch", "memory_bytes_for",
           "BOARD_CLOCK_HZ", "BOARD_PARTS", "DISTRIBUTED_DEPTH"]

DEFAULT_BAUD = 115200
BOARD_PARTS = {"ulx3s": "ULX3S (ECP5-85F)", "icebreaker": "iCEBreaker (iCE40 UP5K)"}  # as messages name them
BOARD_CLOCK_HZ = {"ulx3s": 25e6, "icebreaker": 12e6}  # amaranth-boards' default clocks (clk25, clk12)
# Block-RAM shapes (data bits, words) of one block: ECP5 DP16KD (18 kbit; FPGA-TN-02204), iCE40 SB_RAM40_4K
# (4 kbit; iCE40 memory usage guide, FPGA-TN-02002). iCE40 UP5K SPRAM: 4 blocks of 16 bits x 16384 words.
BLOCK_SHAPES = {"ecp5": ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)),
                "ice40": ((2, 2048), (4, 1024), (8, 512), (16, 256))}
BLOCKS_AVAILABLE = {"ulx3s": 208, "icebreaker": 30}
SPRAM_BYTES = {"ulx3s": 0, "icebreaker": 4 * 32768}
# memories this shallow are counted as logic (LUT RAM / flip-flops), not block RAM: measured, Yosys 0.70's
# synth_ecp5 maps the tails' 32 x 64 tables (fpga-8x8) to LUT RAM and their 64 x 32 ones (fpga-4x4) to DP16KD
DISTRIBUTED_DEPTH = 32


class BoardSystem(wiring.Component):
    """The accelerator with its memory on chip and a UART host link (module docstring)."""

    def __init__(self, params: SystemParams, memory_bytes: int, clk_hz: float, baud: float = DEFAULT_BAUD):
        if not isinstance(params, SystemParams):
            raise HdlError(f"BoardSystem needs SystemParams, not {type(params).__name__}")
        if params.dram_latency_cycles != READ_LATENCY:
            raise HdlError(f"dram.latency_cycles={params.dram_latency_cycles}: the on-chip memory answers in "
                           f"{READ_LATENCY} cycles; build the params from board_arch(arch)")
        self.params, self.memory_bytes = params, memory_bytes
        self.clk_hz, self.baud = clk_hz, baud
        self.divisor = baud_divisor(clk_hz, baud)
        self.memory = OnChipMemory(params, memory_bytes)
        super().__init__({
            "uart_rx": In(1, init=1), "uart_tx": Out(1, init=1),
            "led_done": Out(1), "led_error": Out(1), "led_busy": Out(1),
        })

    def elaborate(self, platform):
        from hdl.system.system import AcceleratorSystem

        m = Module()
        system = m.submodules.system = AcceleratorSystem(self.params, dram_bytes=self.memory_bytes)
        memory = m.submodules.memory = self.memory
        bridge = m.submodules.bridge = UartBridge(self.divisor, self.memory_bytes)
        wiring.connect(m, system.axi, memory.axi)
        wiring.connect(m, bridge.mem, memory.host)
        wiring.connect(m, bridge.csr, system.csr)
        m.d.comb += [bridge.rx.eq(self.uart_rx), self.uart_tx.eq(bridge.tx), self.led_done.eq(system.done),
                     self.led_error.eq(system.error), self.led_busy.eq(system.busy)]
        return m


class BoardTop(Elaboratable):
    """``BoardSystem`` on a platform: the UART's pins (``uart`` 0) and LEDs 0, 1, 2 (done, error, busy)."""

    def __init__(self, system: BoardSystem):
        self.system = system

    def elaborate(self, platform):
        m = Module()
        m.submodules.board_system = system = self.system
        uart = platform.request("uart", 0, dir={"rx": "-", "tx": "-"})
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [system.uart_rx.eq(rx.i), tx.o.eq(system.uart_tx)]
        for index, signal in enumerate((system.led_done, system.led_error, system.led_busy)):
            led = m.submodules[f"led{index}"] = io.Buffer("o", platform.request("led", index, dir="-"))
            m.d.comb += led.o.eq(signal)
        return m


# -- where a program's image lives -------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryRegion:
    name: str
    address: int
    bytes: int
    where: str


def memory_plan(memory_map: dict, program_bytes: int, memory_bytes: int) -> list[MemoryRegion]:
    """The regions of a program's DRAM image (``Program.memory_map``) and where each lives: all in the on-chip
    memory's block RAM, at their DRAM addresses."""
    where = f"on-chip memory (block RAM, {memory_bytes} bytes)"
    regions = [MemoryRegion(name, memory_map[name], memory_map[f"{name}_bytes"], where)
               for name in ("weights", "input", "output", "spill")]
    regions.append(MemoryRegion("program", memory_map["program"], program_bytes, where))
    return regions


# -- fitting -------------------------------------------------------------------------------------------------
def memory_blocks(depth: int, width: int, family: str, lanes: int = 1) -> int:
    """Block RAMs of ``family`` a memory of ``depth`` words of ``width`` bits takes in its cheapest shape. On ECP5
    its ``lanes`` write-enable groups (of ``width / lanes`` bits) each take blocks of their own, as Yosys maps
    them (measured: the packed DP16KD of every system in resource_data/system.json); an iCE40 block RAM has a
    per-bit write mask."""
    lanes = lanes if family == "ecp5" else 1
    lane = -(-width // lanes)
    return lanes * min(-(-lane // bits) * -(-depth // words) for bits, words in BLOCK_SHAPES[family])


def _system_memories(params: SystemParams) -> list[tuple[str, int, int, bool, int]]:
    """(name, depth, width, in flip-flops, write-enable lanes) of every memory of the system (its elaborated
    design; the lanes of its widest write enable). Yosys maps a
    memory to block RAM when it has one write port, or two with every read port transparent for a write port of
    the other side (a true dual-port RAM whose cross-port collisions are bypassed, as the GLB's banks are); with
    more write ports, or two and a read port that must return the old word beside the other port's write, it
    builds the memory from flip-flops (docs/board.md, "Building")."""
    from amaranth.hdl import Shape
    from amaranth.hdl._mem import MemoryInstance

    from hdl.system.system import AcceleratorSystem

    found = []

    def walk(fragment, path):
        if isinstance(fragment, MemoryInstance):
            data = fragment._data
            writes = len(fragment._write_ports)
            flipflops = writes > 2 or (writes == 2 and not all(port._transparent_for for port in fragment._read_ports))
            lanes = max((len(port._en) for port in fragment._write_ports), default=1)
            found.append((path, data.depth, Shape.cast(data.shape).width, flipflops, max(1, lanes)))
        for sub, name, _src in fragment.subfragments:
            walk(sub, f"{path}/{name}")

    walk(Fragment.get(AcceleratorSystem(params), None), "")
    return found


@dataclass(frozen=True)
class BoardFit:
    """The block RAMs (and iCE40 SPRAM bytes) a board system takes beside what the board has."""

    board: str
    system_blocks: int
    flipflop_memories: tuple[tuple[str, int], ...]  # (name, bits) of the memories synthesis builds from flip-flops
    flipflops_available: int
    memory_blocks: int
    blocks_available: int
    memory_bytes: int
    spram_bytes: int
    logic_cells: float  # the whole system's (hdl.system.resources), the GEMM core's among them
    logic_available: int
    core_cells: float = 0.0
    dsps: int = 0
    dsps_available: int = 0

    @property
    def blocks(self) -> int:
        return self.system_blocks + self.memory_blocks

    @property
    def fits(self) -> bool:
        return (self.blocks <= self.blocks_available and self.logic_cells <= self.logic_available
                and self.dsps <= self.dsps_available)


def board_fit(params: SystemParams, memory_bytes: int, board: str) -> BoardFit:
    """How ``BoardSystem(params, memory_bytes)`` fits ``board`` by its memories' block RAMs and the whole system's
    logic cells and DSP blocks (``hdl.system.resources``: the GEMM core's model plus the rest, fitted on measured
    systems). On the iCEBreaker the on-chip memory goes to SPRAM when it fits the 128 KiB (the rest of the system
    in block RAM)."""
    from hdl import resources
    from hdl.system.resources import predict_system

    if board not in FPGA_BOARDS:
        raise HdlError(f"unknown board {board!r}; choose one of {', '.join(FPGA_BOARDS)}")
    family = FPGA_BOARDS[board][2]
    memories = _system_memories(params)
    system = sum(memory_blocks(depth, width, family, lanes) for _n, depth, width, _ffs, lanes in memories
                 if depth > DISTRIBUTED_DEPTH)  # the flip-flop ones too: what they would take as block RAM
    flipflops = tuple((name.strip("/").replace("/", "."), depth * width)
                      for name, depth, width, in_ffs, _lanes in memories if in_ffs)
    spram = SPRAM_BYTES[board]
    if memory_bytes <= spram:
        on_chip = 0
    else:
        # its byte lanes share an 18-bit block's two byte enables (measured: 9 DP16KD for 17296 bytes)
        on_chip = memory_blocks(memory_bytes // params.axi_data_bytes, 8 * params.axi_data_bytes, family)
    logic = predict_system(params, family)
    capacity = resources.BOARDS[board].capacity
    return BoardFit(board, system, flipflops, capacity.get("ffs", capacity["cells"]), on_chip, BLOCKS_AVAILABLE[board],
                    memory_bytes, memory_bytes if memory_bytes <= spram else 0, logic.cells, capacity["cells"],
                    logic.core_cells, logic.dsps, capacity["dsps"])


def check_board_fit(params: SystemParams, memory_bytes: int, board: str, *, synthesis: bool = False) -> BoardFit:
    """``board_fit``, raising HdlError (one line) when the design does not fit. ``synthesis``: also refuse what
    Yosys would build from flip-flops beyond the board's (``_system_memories``)."""
    fit = board_fit(params, memory_bytes, board)
    part = BOARD_PARTS[board]
    flipflop_bits = sum(bits for _name, bits in fit.flipflop_memories)
    if synthesis and flipflop_bits > fit.flipflops_available:
        names = ", ".join(name for name, _bits in fit.flipflop_memories)
        raise HdlError(f"does not fit the {part}: {names} have write ports no block RAM has, which synthesis "
                       f"builds from {flipflop_bits} flip-flops ({fit.flipflops_available} available)")
    if fit.blocks > fit.blocks_available:
        where = (f"the {memory_bytes}-byte on-chip memory {fit.memory_blocks} more" if fit.memory_blocks else
                 f"the {memory_bytes}-byte on-chip memory in SPRAM")
        raise HdlError(f"does not fit the {part}: the system's memories take {fit.system_blocks} block RAMs and "
                       f"{where}, {fit.blocks} of {fit.blocks_available}")
    system = f"the {params.dataflow.upper()} {params.rows}x{params.cols} system"
    if fit.logic_cells > fit.logic_available:
        raise HdlError(f"does not fit the {part}: {system} needs about {fit.logic_cells:.0f} logic cells "
                       f"({fit.core_cells:.0f} of them the GEMM core) of {fit.logic_available}")
    if fit.dsps > fit.dsps_available:
        raise HdlError(f"does not fit the {part}: {system} needs about {fit.dsps} DSP blocks of "
                       f"{fit.dsps_available}")
    return fit


def build_board(params: SystemParams, memory_bytes: int, board: str, build_dir: str | os.PathLike, *,
                baud: float = DEFAULT_BAUD, name: str = "top") -> BoardBuild:
    """``BoardSystem`` on ``board`` to a bitstream (fit checked first); utilisation and post-route Fmax from
    nextpnr's log."""
    check_board_fit(params, memory_bytes, board, synthesis=True)
    if board == "icebreaker":
        raise HdlError("the iCEBreaker build maps the on-chip memory to SPRAM, which this generator does not "
                       "instantiate yet; build for the ulx3s")
    platform = board_platform(board)
    system = BoardSystem(params, memory_bytes, platform.default_clk_frequency, baud)
    label = f"the board system {params.dataflow} {params.rows}x{params.cols}"
    return build_top(BoardTop(system), platform, board, build_dir, name=name, label=label)
