"""The controller: CSRs on AXI4-Lite, the boot, the instruction memory, the configuration registers and the
in-order dispatcher (docs/isa.md, "Control and status registers", "Timing"; docs/system-rtl.md).

**Cycle 0** is the cycle in which the AXI4-Lite write of CTRL with START set is accepted (``awvalid``/``awready``
and ``wvalid``/``wready`` both high): the clock edge that ends it registers START (docs/isa.md: "cycle 0 is the
edge it is written on"). ``boot_start`` is high in that same cycle, so the DMA unit takes the boot on the same
edge, as it takes a LOAD dispatched in cycle 0 (its dispatch port's ``ready``/``idle`` are low from cycle 1 and
high again at ``system_timing.boot_cycles``). The cycle counter reads 1 after that edge and counts every cycle
while BUSY, so after END, dispatched in cycle t_END, CYCLES = t_END + 1.

**Fetch** is one instruction ahead, so the dispatched word and its decode come from flip-flops, not from the block
RAM's output: an instruction register holds instruction ``pc``, decoded (its opcode's flag, reserved bits, a SET
of a missing register), and the instruction memory's read port (synchronous, transparent for the DMA's writes)
holds instruction ``pc + 1``: it is addressed ``pc + 2`` in a cycle that dispatches (the register takes the read
data, decoded, on that edge) and ``pc + 1`` otherwise, so a stall-free stream dispatches one instruction a cycle.
During the boot the register takes entry 0 from the DMA unit's write of it and the read port reads entry 1, so an
entry the DMA unit writes up to the cycle before the boot's ``idle`` rises is the one dispatched.

**Dispatch** is ``system_timing.Dispatcher``'s rule decided combinationally from the units' ``ready`` and
``idle`` (which never depend on ``start``), so with units that keep the dispatch contract the issue cycles are
the Dispatcher's exactly; after a vector op nothing issues for ``VECTOR_SETUP_CYCLES`` cycles, while the unit
checks it (so its fault stops dispatch at the vector op). Any unit's ``error`` stops dispatch: ERROR with the unit's code, ERROR_PC the last
instruction dispatched to that unit (the units check an instruction when they take it; the DMA and staging
units run one at a time). A decode error (unknown opcode, set reserved bits per ``isa.FORMATS``, dispatching
past PROGRAM_COUNT without END) stops with code 1 and a SET of a register beyond 29 with code 7, ERROR_PC the
instruction's index; a START with PROGRAM_COUNT 0 or beyond the instruction memory stops at once with code 1,
ERROR_PC = min(PROGRAM_COUNT, ``imem_depth``), without a boot.

START is taken only while BUSY is low and every unit is ready and idle; it clears DONE, ERROR, the configuration
registers (the executor starts from zeros) and the counter. After a unit's error (which stays until reset),
reset the system before starting again.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from codesign.contract.isa import FORMATS, Op
from codesign.contract.system_timing import VECTOR_OPS, VECTOR_SETUP_CYCLES
from codesign.errors import HdlError
from hdl.system.params import DRAM_ADDRESS_BITS, N_CONFIG_REGS, SystemParams
from hdl.system.ports import ERROR_CODE_BITS, INSTRUCTION_BITS, dispatch_signature

__all__ = ["Controller", "CSR", "STATUS_BUSY", "STATUS_DONE", "STATUS_ERROR", "ERROR_DECODE", "ERROR_REGISTER",
           "RESP_OKAY", "RESP_SLVERR", "axi4_lite_signature", "imem_write_signature", "used_bits"]

# docs/isa.md, "Control and status registers": byte offsets
CSR = {"CTRL": 0x00, "STATUS": 0x04, "ERROR_CODE": 0x08, "ERROR_PC": 0x0C, "CYCLES_LO": 0x10, "CYCLES_HI": 0x14,
       "PROGRAM_ADDR": 0x18, "PROGRAM_COUNT": 0x1C, "PC": 0x20}
STATUS_BUSY, STATUS_DONE, STATUS_ERROR = 1, 2, 4
ERROR_DECODE = 1  # unknown opcode, set reserved bits, no END (executor.ERROR_CODES["opcode"])
ERROR_REGISTER = 7  # a SET of a register that does not exist (executor.ERROR_CODES["register"])
RESP_OKAY, RESP_SLVERR = 0b00, 0b10
CSR_ADDRESS_BITS = 8
_UNITS = ("dma", "stage", "core")  # SYNC mask bits 0, 1, 2 (codesign.contract.isa.Unit)
_STAGE_OPS = (Op.GATHER, Op.WRITEBACK, Op.LOADP, Op.LOADLUT, Op.VACT, Op.VADD, Op.POOL)


def axi4_lite_signature(address_bits: int = CSR_ADDRESS_BITS, data_bits: int = 32) -> wiring.Signature:
    """An AXI4-Lite port seen from the master (``Out`` drives the slave); the controller's ``csr`` is ``In`` of it."""
    return wiring.Signature({
        "awaddr": Out(address_bits), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "araddr": Out(address_bits), "arvalid": Out(1), "arready": In(1),
        "rdata": In(data_bits), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
    })


def imem_write_signature(params: SystemParams) -> wiring.Signature:
    """The DMA unit's instruction-memory writes during the boot, seen from the DMA unit: entry ``addr`` gets ``data``
    (one 128-bit instruction) when ``en``."""
    return wiring.Signature({
        "en": Out(1),
        "addr": Out(_address_bits(params.imem_depth)),
        "data": Out(INSTRUCTION_BITS),
    })


def used_bits(op: Op) -> int:
    """The bits of ``op``'s instruction word its opcode and fields occupy; every other bit is reserved (must be 0,
    as ``codesign.contract.isa.decode`` checks)."""
    used = 0xFF
    for f in FORMATS[op]:
        used |= ((1 << f.width) - 1) << f.lsb
    return used


def _address_bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


class Controller(wiring.Component):
    """CSRs, boot, instruction memory, configuration registers and dispatcher of the system (see module docstring).

    Parameters: ``params``, the ``SystemParams`` (its ``imem_depth`` sizes the instruction memory). Raises HdlError
    if it is not a ``SystemParams`` or ``imem_depth`` < 2.

    Ports: ``csr`` (AXI4-Lite slave, 8-bit addresses, 32-bit data); ``boot_start`` (one cycle), ``boot_addr``
    (PROGRAM_ADDR), ``boot_count`` (PROGRAM_COUNT) to the DMA unit, which writes ``imem_write`` and reports the
    boot's end on its dispatch port's ``idle``; the dispatch ports ``dma``, ``stage``, ``core``
    (``ports.dispatch_signature``); ``obuf_done`` (bit b: no MATMUL writing output buffer b in flight); ``pc``
    (the instruction held for dispatch), ``issued`` (high in the cycle instruction ``pc`` is dispatched),
    ``busy``, ``done``, ``error`` (the STATUS bits).
    """

    def __init__(self, params: SystemParams):
        if not isinstance(params, SystemParams):
            raise HdlError(f"Controller needs SystemParams, not {type(params).__name__}")
        if params.imem_depth < 2:
            raise HdlError(f"imem_depth={params.imem_depth}: the instruction memory needs at least 2 entries")
        self.params = params
        self.pc_bits = params.imem_depth.bit_length()  # 0 .. imem_depth: pc reaches PROGRAM_COUNT at the end
        super().__init__({
            "csr": In(axi4_lite_signature()),
            "boot_start": Out(1),
            "boot_addr": Out(DRAM_ADDRESS_BITS),
            "boot_count": Out(self.pc_bits),
            "imem_write": In(imem_write_signature(params)),
            "dma": Out(dispatch_signature()),
            "stage": Out(dispatch_signature()),
            "core": Out(dispatch_signature()),
            "obuf_done": In(2, init=0b11),
            "pc": Out(self.pc_bits),
            "issued": Out(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        csr = self.csr
        units = {name: getattr(self, name) for name in _UNITS}

        # -- state -----------------------------------------------------------------------------------------
        busy = Signal()
        booting = Signal()
        done = Signal()
        error = Signal()
        error_code = Signal(ERROR_CODE_BITS)
        error_pc = Signal(self.pc_bits)
        cycles = Signal(64)
        pc = Signal(self.pc_bits)
        count = Signal(self.pc_bits)  # PROGRAM_COUNT latched at START
        program_addr = Signal(32)
        program_count = Signal(32)
        regs = [Signal(32, name=f"reg{r}") for r in range(N_CONFIG_REGS)]
        last_pc = {name: Signal(self.pc_bits, name=f"last_pc_{name}") for name in _UNITS}

        # -- instruction memory: written by the DMA unit at boot, read one ahead of the instruction register --
        m.submodules.imem = imem = memory.Memory(shape=INSTRUCTION_BITS, depth=p.imem_depth, init=[])
        write = imem.write_port()
        read = imem.read_port(transparent_for=(write,))
        m.d.comb += [write.en.eq(self.imem_write.en), write.addr.eq(self.imem_write.addr),
                     write.data.eq(self.imem_write.data)]

        # -- decode, into the instruction register (module docstring, "Fetch") -----------------------------
        fetched = Signal(INSTRUCTION_BITS)  # the word the register takes: entry 0 from the boot, else pc + 1
        booted_entry0 = self.imem_write.en & (self.imem_write.addr == 0)
        m.d.comb += fetched.eq(Mux(booted_entry0, self.imem_write.data, read.data))
        ins = Signal(INSTRUCTION_BITS)  # instruction pc
        is_op = {op: Signal(name=f"is_{op.name.lower()}") for op in Op}
        reserved = Signal()  # a bit outside the opcode's fields is set (or the opcode is unknown)
        bad_reg = Signal()  # a SET of a register that does not exist
        to_unit = {name: Signal(name=f"to_{name}") for name in _UNITS}
        next_is = {op: Signal(name=f"next_is_{op.name.lower()}") for op in Op}
        next_reserved = Signal()
        m.d.comb += next_reserved.eq(1)  # an unknown opcode is a decode error too
        with m.Switch(fetched[0:8]):
            for op in Op:
                with m.Case(int(op)):
                    m.d.comb += [next_is[op].eq(1),
                                 next_reserved.eq((fetched & Const(~used_bits(op) & ((1 << INSTRUCTION_BITS) - 1),
                                                                   INSTRUCTION_BITS)) != 0)]
        next_to_unit = {"dma": next_is[Op.LOAD] | next_is[Op.STORE],
                        "stage": Cat(*(next_is[op] for op in _STAGE_OPS)).any(),
                        "core": next_is[Op.MATMUL]}
        load_ins = Signal()  # driven below: the cycle dispatches, or the boot writes entry 0

        def decoded_into_register():
            m.d.sync += [ins.eq(fetched), reserved.eq(next_reserved),
                         bad_reg.eq(next_is[Op.SET] & (fetched[8:16] >= N_CONFIG_REGS))]
            m.d.sync += [is_op[op].eq(next_is[op]) for op in Op]
            m.d.sync += [to_unit[name].eq(next_to_unit[name]) for name in _UNITS]

        with m.If(load_ins):
            decoded_into_register()
        reg_index = ins[8:16]
        set_value = ins[32:64]
        mask = ins[8:11]
        wb_obuf = ins[8]
        quiet = {name: port.ready & port.idle for name, port in units.items()}
        all_quiet = quiet["dma"] & quiet["stage"] & quiet["core"]

        # an action when its unit takes it; MATMUL after the staging unit is done; WRITEBACK after its buffer's
        # MATMUL (docs/isa.md, "Dispatch"); SYNC when the units of its mask are; END when all are
        action_ok = Signal()
        m.d.comb += action_ok.eq(
            (to_unit["dma"] & units["dma"].ready)
            | (to_unit["stage"] & units["stage"].ready & (~is_op[Op.WRITEBACK] | self.obuf_done.bit_select(wb_obuf, 1)))
            | (to_unit["core"] & units["core"].ready & units["stage"].idle))
        sync_ok = Cat(*(~mask[bit] | quiet[name] for bit, name in enumerate(_UNITS))).all()
        can_issue = Signal()
        m.d.comb += can_issue.eq(action_ok | is_op[Op.NOP] | is_op[Op.SET] | (is_op[Op.SYNC] & sync_ok)
                                 | (is_op[Op.END] & all_quiet))

        # -- faults ----------------------------------------------------------------------------------------
        running = Signal()  # the dispatcher holds instruction pc this cycle
        m.d.comb += running.eq(busy & (~booting | quiet["dma"]))
        unit_fault = Signal()
        unit_code = Signal(ERROR_CODE_BITS)
        unit_pc = Signal(self.pc_bits)
        for name in reversed(_UNITS):  # the lowest mask bit wins when several report at once
            with m.If(units[name].error):
                m.d.comb += [unit_fault.eq(1), unit_code.eq(units[name].error_code), unit_pc.eq(last_pc[name])]
        past_end = pc >= count
        decode_fault = Signal()
        decode_code = Signal(ERROR_CODE_BITS)
        with m.If(past_end | reserved):
            m.d.comb += [decode_fault.eq(1), decode_code.eq(ERROR_DECODE)]
        with m.Elif(bad_reg):
            m.d.comb += [decode_fault.eq(1), decode_code.eq(ERROR_REGISTER)]

        # a vector op's setup (system_timing.VECTOR_SETUP_CYCLES): nothing issues until its checks are in
        hold = Signal(range(VECTOR_SETUP_CYCLES))
        fire = Signal()
        m.d.comb += fire.eq(running & ~unit_fault & ~decode_fault & can_issue & (hold == 0))
        with m.If(fire & Cat(*(is_op[op] for op in VECTOR_OPS)).any()):
            m.d.sync += hold.eq(VECTOR_SETUP_CYCLES - 1)
        with m.Elif(hold != 0):
            m.d.sync += hold.eq(hold - 1)
        ending = fire & is_op[Op.END]

        # -- CSR writes (one a cycle; a write is accepted when address and data are both valid) ------------
        write_ok = Signal()
        m.d.comb += [write_ok.eq(csr.awvalid & csr.wvalid & (~csr.bvalid | csr.bready)),
                     csr.awready.eq(write_ok), csr.wready.eq(write_ok)]
        write_index = csr.awaddr[2:]
        with m.If(write_ok):
            m.d.sync += [csr.bvalid.eq(1), csr.bresp.eq(Mux(write_index <= CSR["PC"] // 4, RESP_OKAY, RESP_SLVERR))]
        with m.Elif(csr.bready):
            m.d.sync += csr.bvalid.eq(0)

        def strobed(register: Signal):
            for byte in range(4):
                with m.If(csr.wstrb[byte]):
                    m.d.sync += register[8 * byte:8 * byte + 8].eq(csr.wdata[8 * byte:8 * byte + 8])

        with m.If(write_ok & (write_index == CSR["PROGRAM_ADDR"] // 4)):
            strobed(program_addr)
        with m.If(write_ok & (write_index == CSR["PROGRAM_COUNT"] // 4)):
            strobed(program_count)

        start = Signal()  # cycle 0 (module docstring)
        m.d.comb += start.eq(write_ok & (write_index == CSR["CTRL"] // 4) & csr.wstrb[0] & csr.wdata[0]
                             & ~busy & all_quiet)
        bad_count = (program_count == 0) | (program_count > p.imem_depth)
        m.d.comb += [self.boot_start.eq(start & ~bad_count), self.boot_addr.eq(program_addr),
                     self.boot_count.eq(program_count)]

        # -- CSR reads -------------------------------------------------------------------------------------
        read_ok = Signal()
        m.d.comb += [read_ok.eq(csr.arvalid & (~csr.rvalid | csr.rready)), csr.arready.eq(read_ok)]
        read_index = csr.araddr[2:]
        status = Cat(busy, done, error)
        with m.If(read_ok):
            m.d.sync += [csr.rvalid.eq(1), csr.rresp.eq(RESP_OKAY), csr.rdata.eq(0)]
            with m.Switch(read_index):
                for name, value in (("STATUS", status), ("ERROR_CODE", error_code), ("ERROR_PC", error_pc),
                                    ("CYCLES_LO", cycles[:32]), ("CYCLES_HI", cycles[32:]),
                                    ("PROGRAM_ADDR", program_addr), ("PROGRAM_COUNT", program_count), ("PC", pc)):
                    with m.Case(CSR[name] // 4):
                        m.d.sync += csr.rdata.eq(value)
                with m.Case(CSR["CTRL"] // 4):  # write-only: reads 0
                    pass
                with m.Default():
                    m.d.sync += csr.rresp.eq(RESP_SLVERR)
        with m.Elif(csr.rready):
            m.d.sync += csr.rvalid.eq(0)

        # -- run state, counter, faults --------------------------------------------------------------------
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)
        with m.If(busy & booting & quiet["dma"]):
            m.d.sync += booting.eq(0)

        def stop(code, where):
            m.d.sync += [busy.eq(0), booting.eq(0), error.eq(1), error_code.eq(code), error_pc.eq(where)]

        with m.If(start):
            m.d.sync += [cycles.eq(1), pc.eq(0), done.eq(0), error.eq(0), error_code.eq(0), error_pc.eq(0),
                         count.eq(program_count)]
            m.d.sync += [reg.eq(0) for reg in regs]
            m.d.sync += [last.eq(0) for last in last_pc.values()]
            with m.If(bad_count):
                stop(ERROR_DECODE, Mux(program_count == 0, 0, p.imem_depth))
            with m.Else():
                m.d.sync += [busy.eq(1), booting.eq(1)]
        with m.Elif(busy & unit_fault):  # a unit's fault, also during the boot (then ERROR_PC 0)
            stop(unit_code, unit_pc)
        with m.Elif(running & decode_fault):
            stop(decode_code, pc)
        with m.Elif(ending):
            m.d.sync += [busy.eq(0), done.eq(1)]
        with m.Elif(fire):
            m.d.sync += pc.eq(pc + 1)

        # -- dispatch: one instruction at most per cycle ---------------------------------------------------
        m.d.comb += [read.addr.eq(Mux(fire, pc + 2, pc + 1)), load_ins.eq(fire | booted_entry0)]
        with m.If(fire & is_op[Op.SET]):
            with m.Switch(reg_index):
                for r in range(N_CONFIG_REGS):
                    with m.Case(r):
                        m.d.sync += regs[r].eq(set_value)
        regs_bus = Cat(*regs)
        for name, port in units.items():
            m.d.comb += [port.start.eq(fire & to_unit[name]), port.instr.eq(ins), port.regs.eq(regs_bus)]
            with m.If(fire & to_unit[name]):
                m.d.sync += last_pc[name].eq(pc)

        m.d.comb += [self.pc.eq(pc), self.issued.eq(fire), self.busy.eq(busy), self.done.eq(done),
                     self.error.eq(error)]
        return m
