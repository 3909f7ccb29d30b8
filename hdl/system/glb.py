"""GlobalBuffer: the system's GLB, ``glb_banks`` banks of ``bank_words`` words, each bank with a DMA side and a
staging side (docs/isa.md, "Organisation"; docs/system-rtl.md).

Word w of the GLB is at address ``w // banks`` of bank ``w % banks``. Each side of a bank takes one access a cycle
(``ports.glb_port_signature``): with ``en`` high and ``we`` all low a read, whose word is on ``rdata`` in the next
cycle and stays there until that side reads the bank again; with ``en`` high and any ``we`` bit set a write of the
bytes whose ``we`` bit is set (byte i = ``wdata`` bits [8i, 8i+8)), visible to a read in the next cycle. Each bank
is an ``amaranth.lib.memory.Memory`` with one read and one byte-granular write port per side, which Yosys maps to
true dual-port block RAM (64 DP16KD for fpga-8x8's 4 x 4096 x 64 bits, docs/board.md "Building").

Both sides on the same word in one cycle (the compiler's hazard rule, docs/isa.md "Hazards", forbids it, so no
program does it): a read on one side beside a write on the other returns the word as written in that cycle (each
side's read port is transparent for the other side's write port: a block RAM leaves a cross-port collision
undefined, so Yosys builds this rule from a bypass around it, about 150 flip-flops and 230 LUTs a bank, where
read-before-write across ports cannot be mapped to block RAM at all); two writes of the same byte in one cycle
leave that byte undefined (the simulator keeps one of them).
"""

from __future__ import annotations

from amaranth.hdl import MemoryData, Module, Mux, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from codesign.errors import HdlError
from hdl.system import ports
from hdl.system.params import SystemParams

__all__ = ["GlobalBuffer", "SIDES"]

SIDES = ("dma", "stage")  # the two sides of every bank: the DMA unit's and the staging unit's


class GlobalBuffer(wiring.Component):
    """The banked two-sided global buffer (see module docstring).

    Parameters: ``params``, the ``SystemParams`` to build. Ports: ``dma`` and ``stage``, each an array of
    ``glb_banks`` GLB ports (``In(ports.glb_port_signature(params))``: the GLB receives ``addr``, ``en``, ``we``,
    ``wdata`` and answers ``rdata``); Verilog names them ``dma__0__addr``, ``stage__3__rdata``, ...
    """

    def __init__(self, params: SystemParams):
        if not isinstance(params, SystemParams):
            raise HdlError(f"GlobalBuffer needs SystemParams, not {type(params).__name__}")
        self.params = params
        port = ports.glb_port_signature(params)
        super().__init__({side: In(port).array(params.glb_banks) for side in SIDES})
        # The banks' contents, one MemoryData per bank: a testbench reads and writes words through it
        # (``ctx.get(glb.bank_data[b][addr])``) without spending port cycles.
        self.bank_data = [MemoryData(shape=unsigned(params.glb_word_bits), depth=params.bank_words, init=[])
                          for _ in range(params.glb_banks)]

    def elaborate(self, platform):
        m = Module()
        p = self.params
        for bank in range(p.glb_banks):
            memory = Memory(data=self.bank_data[bank])
            m.submodules[f"bank{bank}"] = memory
            writes = {side: memory.write_port(granularity=8) for side in SIDES}
            for side in SIDES:
                port = getattr(self, side)[bank]
                # Transparent for the other side's write: what lets Yosys use true dual-port block RAM (above).
                read = memory.read_port(transparent_for=[writes[other] for other in SIDES if other != side])
                write = writes[side]
                m.d.comb += [
                    read.addr.eq(port.addr),
                    read.en.eq(port.en & ~port.we.any()),
                    port.rdata.eq(read.data),
                    write.addr.eq(port.addr),
                    write.data.eq(port.wdata),
                    write.en.eq(Mux(port.en, port.we, 0)),
                ]
        return m
