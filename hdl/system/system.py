"""The accelerator system: controller, DMA unit, global buffer, staging and vector units, core unit, wired.

``AcceleratorSystem(params)`` is what ``codesign hdl --system`` writes: an AXI4 master (``axi``, the DMA unit's,
the memory port of docs/isa.md) and an AXI4-Lite slave (``csr``, the controller's registers) outside; ``done``,
``error``, ``busy`` and, for benches, ``issued`` / ``pc`` (the dispatch of every instruction). Inside, the blocks of
docs/system-rtl.md meet at the ports of ``hdl.system.ports``: the staging and vector units share one dispatch
port and the staging side of the GLB (only one of them runs at a time: the staging unit runs its instructions one
after another), and the table loads of the staging unit feed both the core unit's and the vector unit's copies.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.contract.isa import Op
from codesign.errors import HdlError
from hdl.system.controller import Controller, axi4_lite_signature
from hdl.system.core_unit import CoreUnit
from hdl.system.dma import DmaUnit, axi4_signature
from hdl.system.glb import GlobalBuffer
from hdl.system.params import SystemParams
from hdl.system.staging import StagingUnit
from hdl.system.vector import VectorUnit

__all__ = ["AcceleratorSystem", "VECTOR_OPCODES"]

VECTOR_OPCODES = (Op.VACT, Op.VADD, Op.POOL)


def _drive(m: Module, pairs) -> None:
    """``dst.eq(src)`` for each (dst, src): ports whose shapes differ only in how their bits are viewed."""
    for dst, src in pairs:
        m.d.comb += Value.cast(dst).eq(Value.cast(src))


class AcceleratorSystem(wiring.Component):
    """The whole system (module docstring). ``dram_bytes``: the memory's size when known (the DMA unit's error 3)."""

    def __init__(self, params: SystemParams, *, dram_bytes: int | None = None):
        if not isinstance(params, SystemParams):
            raise HdlError(f"AcceleratorSystem needs SystemParams, not {type(params).__name__}")
        self.params, self.dram_bytes = params, dram_bytes
        self.controller = Controller(params)
        super().__init__({
            "axi": Out(axi4_signature(params.axi_data_bytes)),
            "csr": In(axi4_lite_signature()),
            "done": Out(1),
            "error": Out(1),
            "busy": Out(1),
            "issued": Out(1),
            "pc": Out(self.controller.pc_bits),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        ctrl = m.submodules.controller = self.controller
        dma = m.submodules.dma = DmaUnit(p, dram_bytes=self.dram_bytes)
        glb = m.submodules.glb = GlobalBuffer(p)
        stage = m.submodules.staging = StagingUnit(p)
        vector = m.submodules.vector = VectorUnit(p)
        core = m.submodules.core = CoreUnit(p)

        wiring.connect(m, wiring.flipped(self.axi), dma.axi)
        wiring.connect(m, wiring.flipped(self.csr), ctrl.csr)
        m.d.comb += [self.done.eq(ctrl.done), self.error.eq(ctrl.error), self.busy.eq(ctrl.busy),
                     self.issued.eq(ctrl.issued), self.pc.eq(ctrl.pc)]

        # controller <-> DMA unit: LOAD / STORE and the boot
        wiring.connect(m, ctrl.dma, dma.dispatch)
        m.d.comb += [dma.boot_start.eq(ctrl.boot_start), dma.boot_addr.eq(ctrl.boot_addr),
                     dma.boot_count.eq(ctrl.boot_count)]
        _drive(m, [(ctrl.imem_write.en, dma.imem_write.en), (ctrl.imem_write.addr, dma.imem_write.addr),
                   (ctrl.imem_write.data, dma.imem_write.data)])
        for bank in range(p.glb_banks):
            wiring.connect(m, dma.glb[bank], glb.dma[bank])

        # controller <-> core unit: MATMUL, and the output buffers' WRITEBACK rule
        wiring.connect(m, ctrl.core, core.dispatch)
        m.d.comb += ctrl.obuf_done.eq(core.obuf_done)

        # controller <-> staging + vector units: one dispatch port, started by opcode
        opcode = ctrl.stage.instr[:8]
        to_vector = 0
        for op in VECTOR_OPCODES:
            to_vector = to_vector | (opcode == op)
        for unit, mine in ((stage, ~to_vector), (vector, to_vector)):
            m.d.comb += [unit.dispatch.start.eq(ctrl.stage.start & mine), unit.dispatch.instr.eq(ctrl.stage.instr),
                         unit.dispatch.regs.eq(ctrl.stage.regs)]
        m.d.comb += [
            ctrl.stage.ready.eq(stage.dispatch.ready & vector.dispatch.ready),
            ctrl.stage.idle.eq(stage.dispatch.idle & vector.dispatch.idle),
            ctrl.stage.error.eq(stage.dispatch.error | vector.dispatch.error),
            ctrl.stage.error_code.eq(Mux(stage.dispatch.error, stage.dispatch.error_code,
                                         vector.dispatch.error_code)),
        ]
        # the staging side of the GLB: whichever unit accesses a bank drives it (never both in one cycle). The
        # address is the vector unit's while it runs or may start (a vector op held, the staging unit idle), chosen
        # from registers rather than by the enables, which in a dispatch cycle wait for the dispatch decision
        vector_owns = ~vector.dispatch.ready | (to_vector & stage.dispatch.idle)
        for bank in range(p.glb_banks):
            s, v, g = stage.glb[bank], vector.glb[bank], glb.stage[bank]
            m.d.comb += [
                g.en.eq(s.en | v.en),
                g.we.eq(Mux(s.en, s.we, v.we)),
                g.addr.eq(Mux(vector_owns, v.addr, s.addr)),
                g.wdata.eq(Mux(s.en, s.wdata, v.wdata)),
                s.rdata.eq(g.rdata),
                v.rdata.eq(g.rdata),
            ]

        # staging unit <-> core unit: operand slots, output buffers, parameters, the table
        for name in ("a_read", "b_read"):
            theirs, mine = getattr(core, name), getattr(stage, name)
            _drive(m, [(mine.pair, theirs.pair), (mine.addr, theirs.addr), (mine.en, theirs.en),
                       (theirs.data, mine.data)])
        _drive(m, [(core.obuf_read.buf, stage.obuf_read.buf), (core.obuf_read.addr, stage.obuf_read.addr),
                   (core.obuf_read.en, stage.obuf_read.en), (stage.obuf_read.data, core.obuf_read.data)])
        _drive(m, [(getattr(core.param_write, f), getattr(stage.param_write, f))
                   for f in ("en", "index", "bias", "mult", "shift")])
        for reader in (core.lut_write, vector.lut_write):
            _drive(m, [(reader.en, stage.lut_write.en), (reader.index, stage.lut_write.index),
                       (reader.data, stage.lut_write.data)])
        return m
