"""SimulationTop: the system as a bench runs it, its DRAM and the record of its dispatches in RTL, so the host of a
simulation only loads the memory, writes the CSRs and reads results (``hdl/benches/system_bench.py``).

Inside: ``AcceleratorSystem`` (``system``), ``OnChipMemory`` (``memory``) behind its ``axi`` port with the spec's
``dram.latency_cycles`` (the timing of ``hdl.benches.axi_memory``, which the cycle contract assumes), and the
issue trace (``trace``): entry i holds the cycle instruction i first dispatched in, counted as docs/isa.md counts
them (cycle 0 is the cycle the START write is accepted, the one before BUSY rises), 0 while it has not. Outside:
the CSR port (``csr``, AXI4-Lite), ``done``, ``error``, ``busy``, ``dram_words`` (the DRAM image's size in bus
words: a word from there on answers DECERR, as the model of an image that size does, so one build of a memory of
``memory_bytes`` serves any image up to that size) and a read port of the trace (``trace_addr`` ->
``trace_data`` the cycle after). The DRAM image goes in and out, and the trace comes out, through the hierarchy
(``DRAM_PATH``, ``TRACE_PATH``: one word an element), so the Verilog holds no image and its simulator build is
shared by every image.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import HdlError
from hdl.system.controller import axi4_lite_signature
from hdl.system.onchip_memory import ALIGN_BYTES, READ_LATENCY, OnChipMemory
from hdl.system.params import DRAM_ADDRESS_BITS, SystemParams

__all__ = ["SimulationTop", "DRAM_PATH", "TRACE_PATH", "TRACE_BITS", "MIN_MEMORY_BYTES", "sim_memory_bytes"]

DRAM_PATH = ("memory", "ram")  # the DRAM's words, element i = bus word i (bytes little-endian)
TRACE_PATH = ("trace",)  # the issue trace, element i = instruction i
TRACE_BITS = 32  # an entry: the dispatch cycle (runs stop long before 2**32 cycles)
MIN_MEMORY_BYTES = 1 << 16


def sim_memory_bytes(image_bytes: int) -> int:
    """The memory a simulation of a ``image_bytes`` image builds: a power of two of at least 64 KiB, so images of
    similar size share one simulator build."""
    if image_bytes < 0 or image_bytes > 1 << DRAM_ADDRESS_BITS:
        raise HdlError(f"a DRAM image of {image_bytes} bytes does not fit the 32-bit address space")
    return max(MIN_MEMORY_BYTES, 1 << max(0, int(image_bytes) - 1).bit_length())


class SimulationTop(wiring.Component):
    """The system, its DRAM (``memory_bytes``, at the spec's latency) and the issue trace (``trace_depth``
    entries, default the instruction memory's depth); see the module docstring."""

    def __init__(self, params: SystemParams, memory_bytes: int, *, trace_depth: int | None = None):
        if not isinstance(params, SystemParams):
            raise HdlError(f"SimulationTop needs SystemParams, not {type(params).__name__}")
        if params.dram_latency_cycles < READ_LATENCY:
            raise HdlError(f"dram.latency_cycles={params.dram_latency_cycles}: the simulated memory answers in "
                           f"{READ_LATENCY} cycles at the least")
        if not isinstance(memory_bytes, int) or memory_bytes <= 0 or memory_bytes % max(ALIGN_BYTES,
                                                                                         params.axi_data_bytes):
            raise HdlError(f"SimulationTop memory_bytes={memory_bytes!r}: a positive multiple of "
                           f"{max(ALIGN_BYTES, params.axi_data_bytes)} bytes")
        depth = params.imem_depth if trace_depth is None else trace_depth
        if not isinstance(depth, int) or depth < 1:
            raise HdlError(f"SimulationTop trace_depth={trace_depth!r}: a positive number of instructions")
        self.params, self.memory_bytes, self.trace_depth = params, memory_bytes, depth
        self.memory = OnChipMemory(params, memory_bytes, latency=params.dram_latency_cycles, limit_port=True)
        super().__init__({
            "csr": In(axi4_lite_signature()),
            "done": Out(1), "error": Out(1), "busy": Out(1),
            "dram_words": In(range(self.memory.depth + 1), init=self.memory.depth),
            "trace_addr": In(range(max(2, depth))), "trace_data": Out(TRACE_BITS),
        })

    def elaborate(self, platform):
        from hdl.system.system import AcceleratorSystem

        m = Module()
        system = m.submodules.system = AcceleratorSystem(self.params)
        mem = m.submodules.memory = self.memory
        wiring.connect(m, system.axi, mem.axi)
        wiring.connect(m, wiring.flipped(self.csr), system.csr)
        m.d.comb += [self.done.eq(system.done), self.error.eq(system.error), self.busy.eq(system.busy),
                     mem.limit.eq(self.dram_words)]

        # the cycle count of docs/isa.md: BUSY rises in cycle 1, so a cycle's number is 1 + the cycles since then
        started = Signal()
        since = Signal(TRACE_BITS)
        with m.If(started | system.busy):
            m.d.sync += [started.eq(1), since.eq(since + 1)]
        # instructions dispatch in order (no instruction jumps): ``fresh`` keeps a pc's first dispatch only
        next_pc = Signal(len(system.pc) + 1)
        fresh = system.issued & (system.pc >= next_pc) & (system.pc < self.trace_depth)
        with m.If(system.issued):
            m.d.sync += next_pc.eq(system.pc + 1)
        m.submodules.trace = trace = memory.Memory(shape=TRACE_BITS, depth=self.trace_depth, init=[])
        wr = trace.write_port()
        rd = trace.read_port()
        m.d.comb += [wr.addr.eq(system.pc), wr.data.eq(since + 1), wr.en.eq(fresh),
                     rd.addr.eq(self.trace_addr), self.trace_data.eq(rd.data)]
        return m
