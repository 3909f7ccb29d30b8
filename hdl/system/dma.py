"""DmaUnit: the system's AXI4 master, copying DRAM <-> GLB for LOAD and STORE and reading the program at boot
(docs/isa.md, "Organisation" and "Timing"; docs/system-rtl.md, "The AXI4 memory port and its model").

AXI4 (one ID, INCR bursts of at most 256 beats that never cross a 4 KiB boundary, a data bus of
``axi_data_bytes`` = dram.bytes_per_cycle, one beat a cycle, 32-bit byte addresses). A transfer of ``bytes`` is
N = bytes / axi_data_bytes beats, split into bursts at 4 KiB boundaries and every 256 beats.

How the cycles are counted. The DMA unit adds no cycles of its own, so LOAD, STORE and boot take the formulas of
``codesign.contract.system_timing`` exactly, with no constant for the unit. The memory's latency
L = dram.latency_cycles is counted from the cycle of an AR handshake to the cycle of the first R beat of that burst:
an AR handshaken in cycle a has its first beat in cycle a + L at the earliest, then one beat a cycle; a burst starts
at the earliest in the cycle after the previous burst's last beat. With ``start`` of a LOAD in cycle t:

* its first AR is on the bus in cycle t itself (``arvalid``/``araddr``/``arlen`` follow the dispatched instruction
  combinationally in the start cycle), the following bursts' ARs in t+1, t+2, ... (one a cycle, every AR of the
  transfer outstanding at once), so the bursts' beats follow each other without a gap;
* R beat i arrives in cycle t + L + i and is written into the GLB in that same cycle (a byte-masked write of its
  bytes into its word; ``rready`` is always high), so the last of the N beats is written in t + L + N - 1 and the
  data are in the GLB from cycle t + L + N on: ``memory.read_cycles`` = L + ceil(8 bytes / bits_per_cycle);
* ``idle`` and ``ready`` (registered) are low in t+1 .. t+L+N-1 and high from t+L+N.

A STORE, started in cycle t: its first AW in cycle t (the rest one a cycle after), the GLB word of its first beat is
read in cycle t and W beat i is on the bus in cycle t + 1 + i, each next GLB word read in the cycle the previous
word's last beat is accepted. Writes are posted: the unit counts a STORE complete when at most its last beat is
still to be accepted, so ``idle`` rises in cycle t + N, the cycle its last W beat is on the bus (with a memory that
accepts a beat a cycle, as the model does, that beat is accepted in that cycle, its bytes written at the end of
it); every GLB read of the STORE was made by then. ``memory.write_cycles`` = ceil(8 bytes / bits_per_cycle) = N.
B responses are accepted whenever they come (``bready`` high) and do not hold ``idle``; ``writes_pending`` is high
while a W beat or a B response of a STORE is outstanding (for a top that must not report DONE before the memory
has the data).

Boot (``boot_start`` for one cycle with ``boot_addr``, ``boot_count``): a LOAD of 16 x count bytes whose beats go to
the instruction memory instead of the GLB: ``imem_write`` (``en``, ``addr``, ``data``: 128 bits, byte i of the
instruction in bits [8i, 8i+8), as ``codesign.contract.isa.encode_program`` stores it) writes instruction j in the
cycle its last beat arrives. It reports like a LOAD, on the dispatch port: ``ready`` and ``idle`` low from the
cycle after ``boot_start`` until ``system_timing.boot_cycles`` later, errors on ``error``/``error_code``.
``boot_count`` is at most ``imem_depth`` (its port's width); 0 does nothing.

Errors (docs/isa.md's table), found in the start cycle and raised from the next, sticky until reset; the
transfer is then not made and the unit stays idle: a GLB range beyond ``glb_bytes`` is 2; a DRAM range beyond
``dram_bytes`` (when the unit is built knowing the memory's size) or beyond the 32-bit address space is 3 (a LOAD
checks DRAM first, a STORE the GLB first, like ``codesign.compiler.executor``); an R or B response other than OKAY
is 3 too. The dispatch port's ``instr`` must hold a LOAD or a STORE (the controller decodes); sizes and
addresses are multiples of 8 bytes (docs/isa.md) and so whole beats.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.contract.isa import FORMATS, INSTRUCTION_BYTES, Op
from codesign.errors import HdlError
from hdl.system import ports
from hdl.system.params import DRAM_ADDRESS_BITS, SystemParams

__all__ = ["DmaUnit", "axi4_signature", "imem_write_signature", "MAX_BURST_BEATS", "BURST_BOUNDARY_BYTES",
           "AXI_BURST_INCR", "AXI_RESP_OKAY", "ERROR_GLB_RANGE", "ERROR_DRAM_RANGE"]

MAX_BURST_BEATS = 256  # AXI4 INCR bursts: AxLEN + 1 <= 256
BURST_BOUNDARY_BYTES = 4096  # a burst never crosses a 4 KiB boundary
AXI_BURST_INCR = 0b01
AXI_RESP_OKAY = 0b00
ERROR_GLB_RANGE = 2  # docs/isa.md, error codes
ERROR_DRAM_RANGE = 3
DMA_ALIGN_BYTES = 8  # every DMA address and size is a multiple of 8 (docs/isa.md, memory map)


def axi4_signature(data_bytes: int, addr_bits: int = DRAM_ADDRESS_BITS) -> wiring.Signature:
    """The AXI4 read and write channels seen from the master (AR, R, AW, W, B; no IDs: one ID)."""
    return wiring.Signature({
        "araddr": Out(addr_bits), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2), "arvalid": Out(1),
        "arready": In(1),
        "rdata": In(8 * data_bytes), "rresp": In(2), "rlast": In(1), "rvalid": In(1), "rready": Out(1),
        "awaddr": Out(addr_bits), "awlen": Out(8), "awsize": Out(3), "awburst": Out(2), "awvalid": Out(1),
        "awready": In(1),
        "wdata": Out(8 * data_bytes), "wstrb": Out(data_bytes), "wlast": Out(1), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
    })


def imem_write_signature(imem_depth: int) -> wiring.Signature:
    """DMA -> instruction memory: one 128-bit instruction written in a cycle with ``en``."""
    return wiring.Signature({"en": Out(1), "addr": Out(range(max(2, imem_depth))), "data": Out(8 * INSTRUCTION_BYTES)})


def _field(instr, op: Op, name: str):
    spec = next(f for f in FORMATS[op] if f.name == name)
    return instr[spec.lsb:spec.lsb + spec.width]


class DmaUnit(wiring.Component):
    """The DMA unit (see module docstring): LOAD, STORE and the boot read over an AXI4 master port.

    Parameters: ``params``, the ``SystemParams``; ``dram_bytes``, the memory's size when known (DRAM ranges
    beyond it are error 3), else None (only the 32-bit address space is checked).

    Ports: ``dispatch`` (``In(ports.dispatch_signature())``), ``axi`` (``Out(axi4_signature(...))``), ``glb``
    (the GLB's DMA side: ``glb_banks`` GLB ports, Out), ``boot_start``, ``boot_addr``, ``boot_count`` (In),
    ``imem_write`` (Out), ``writes_pending`` (Out).
    """

    def __init__(self, params: SystemParams, *, dram_bytes: int | None = None):
        if not isinstance(params, SystemParams):
            raise HdlError(f"DmaUnit needs SystemParams, not {type(params).__name__}")
        if params.axi_data_bytes > DMA_ALIGN_BYTES:
            raise HdlError(f"dram.bytes_per_cycle={params.axi_data_bytes}: DMA transfers are multiples of "
                           f"{DMA_ALIGN_BYTES} bytes (docs/isa.md), so the AXI4 data bus is at most that wide")
        if dram_bytes is not None and not 0 < dram_bytes <= 1 << DRAM_ADDRESS_BITS:
            raise HdlError(f"dram_bytes={dram_bytes}: must be 1 .. 2**{DRAM_ADDRESS_BITS}")
        self.params, self.dram_bytes = params, dram_bytes
        bytes_field = next(f for f in FORMATS[Op.LOAD] if f.name == "bytes")
        # beats of the largest transfer: a LOAD/STORE of the widest ``bytes`` or the boot read of a full imem
        self.max_beats = max(((1 << bytes_field.width) - 1) // params.axi_data_bytes,
                             INSTRUCTION_BYTES * params.imem_depth // params.axi_data_bytes)
        super().__init__({
            "dispatch": In(ports.dispatch_signature()),
            "axi": Out(axi4_signature(params.axi_data_bytes)),
            "glb": Out(ports.glb_port_signature(params)).array(params.glb_banks),
            "boot_start": In(1),
            "boot_addr": In(DRAM_ADDRESS_BITS),
            "boot_count": In(range(params.imem_depth + 1)),
            "imem_write": Out(imem_write_signature(params.imem_depth)),
            "writes_pending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        beat = p.axi_data_bytes
        beat_bits = beat.bit_length() - 1  # log2 of the beat's bytes
        word_bits = p.word_bytes.bit_length() - 1
        bank_bits = p.glb_banks.bit_length() - 1
        beats_per_word = p.word_bytes // beat
        beats_per_instr = INSTRUCTION_BYTES // beat
        axi, d = self.axi, self.dispatch
        count = unsigned(self.max_beats.bit_length())
        dram_limit = self.dram_bytes if self.dram_bytes is not None else 1 << DRAM_ADDRESS_BITS

        def burst_beats(addr, left):
            """Beats of the next burst from ``addr`` with ``left`` beats to go: to the 4 KiB boundary, 256 at most."""
            to_boundary = (BURST_BOUNDARY_BYTES - addr[:12]) >> beat_bits
            first = Mux(to_boundary < MAX_BURST_BEATS, to_boundary, MAX_BURST_BEATS)
            return Mux(left < first, left, first)

        # -- the dispatched instruction, checked in its start cycle ----------------------------------------
        instr = d.instr
        is_store = Signal()
        glb_addr, nbytes, dram_addr = (_field(instr, Op.LOAD, name) for name in ("glb_addr", "bytes", "dram_addr"))
        m.d.comb += is_store.eq(instr[:8] == int(Op.STORE))
        glb_bad = Signal()
        dram_bad = Signal()
        m.d.comb += [glb_bad.eq(glb_addr + nbytes > p.glb_bytes), dram_bad.eq(dram_addr + nbytes > dram_limit)]
        boot_bytes = self.boot_count * INSTRUCTION_BYTES
        boot_bad = Signal()
        m.d.comb += boot_bad.eq(self.boot_addr + boot_bytes > dram_limit)
        dispatch_beats = Signal(count)
        boot_beats = Signal(count)
        m.d.comb += [dispatch_beats.eq(nbytes >> beat_bits), boot_beats.eq(boot_bytes >> beat_bits)]

        fault = Signal()
        fault_code = Signal(ports.ERROR_CODE_BITS)
        with m.If(self.boot_start):
            m.d.comb += [fault.eq(boot_bad), fault_code.eq(ERROR_DRAM_RANGE)]
        with m.Elif(d.start):
            m.d.comb += fault.eq(glb_bad | dram_bad)
            with m.If(is_store):
                m.d.comb += fault_code.eq(Mux(glb_bad, ERROR_GLB_RANGE, ERROR_DRAM_RANGE))
            with m.Else():
                m.d.comb += fault_code.eq(Mux(dram_bad, ERROR_DRAM_RANGE, ERROR_GLB_RANGE))
        go_boot = Signal()
        go_load = Signal()
        go_store = Signal()
        m.d.comb += [
            go_boot.eq(self.boot_start & ~boot_bad & (boot_beats != 0)),
            go_load.eq(~self.boot_start & d.start & ~is_store & ~fault & (dispatch_beats != 0)),
            go_store.eq(~self.boot_start & d.start & is_store & ~fault & (dispatch_beats != 0)),
        ]
        go_read = go_boot | go_load
        job_beats = Mux(self.boot_start, boot_beats, dispatch_beats)
        job_dram = Mux(self.boot_start, self.boot_addr, dram_addr)

        # -- errors: sticky, from the cycle after the start (or the bad response) ---------------------------
        error = Signal()
        error_code = Signal(ports.ERROR_CODE_BITS)
        m.d.comb += [d.error.eq(error), d.error_code.eq(error_code)]
        bad_response = ((axi.rvalid & axi.rready & (axi.rresp != AXI_RESP_OKAY))
                        | (axi.bvalid & axi.bready & (axi.bresp != AXI_RESP_OKAY)))
        with m.If(~error & fault):
            m.d.sync += [error.eq(1), error_code.eq(fault_code)]
        with m.Elif(~error & bad_response):
            m.d.sync += [error.eq(1), error_code.eq(ERROR_DRAM_RANGE)]

        # -- address channel (AR for LOAD and boot, AW for STORE): one burst a cycle, the first in the start
        # cycle; each burst's length from its address and the beats left -----------------------------------
        # The burst's address and length come from the job in flight or, with none (only then may a job start),
        # from the instruction and the boot's registers: selected by a register, so that only ``valid`` waits for
        # the start
        a_addr = Signal(DRAM_ADDRESS_BITS)
        a_left = Signal(count)
        a_write = Signal()
        a_held = Signal()
        cur_addr = Signal(DRAM_ADDRESS_BITS)
        cur_left = Signal(count)
        cur_write = Signal()
        m.d.comb += [a_held.eq(a_left != 0),
                     cur_addr.eq(Mux(a_held, a_addr, job_dram)), cur_left.eq(Mux(a_held, a_left, job_beats)),
                     cur_write.eq(Mux(a_held, a_write, ~self.boot_start & is_store))]
        a_beats = Signal(range(MAX_BURST_BEATS + 1))
        m.d.comb += a_beats.eq(burst_beats(cur_addr, cur_left))
        a_valid = a_held | go_read | go_store
        a_ready = Mux(cur_write, axi.awready, axi.arready)
        m.d.comb += [
            axi.araddr.eq(cur_addr), axi.awaddr.eq(cur_addr),
            axi.arlen.eq(a_beats - 1), axi.awlen.eq(a_beats - 1),
            axi.arsize.eq(beat_bits), axi.awsize.eq(beat_bits),
            axi.arburst.eq(AXI_BURST_INCR), axi.awburst.eq(AXI_BURST_INCR),
            axi.arvalid.eq(a_valid & ~cur_write), axi.awvalid.eq(a_valid & cur_write),
        ]
        with m.If(a_valid & a_ready):
            m.d.sync += [a_addr.eq(cur_addr + (a_beats << beat_bits)), a_left.eq(cur_left - a_beats)]
        with m.Elif(a_valid):
            m.d.sync += [a_addr.eq(cur_addr), a_left.eq(cur_left)]
        m.d.sync += a_write.eq(cur_write)

        # -- GLB DMA side: R beats write, the STORE's word reads read ------------------------------------
        glb_write = Signal()
        glb_write_byte = Signal(range(p.glb_bytes))
        glb_read = Signal()
        glb_read_byte = Signal(range(p.glb_bytes))
        w_word = glb_write_byte >> word_bits
        r_word = glb_read_byte >> word_bits
        write_lane = glb_write_byte[beat_bits:word_bits] if beats_per_word > 1 else Const(0)
        lane_mask = (1 << beat) - 1
        for bank, port in enumerate(self.glb):
            writes = glb_write & (w_word[:bank_bits] == bank) if bank_bits else glb_write
            reads = glb_read & (r_word[:bank_bits] == bank) if bank_bits else glb_read
            m.d.comb += [
                port.en.eq(writes | reads),
                port.addr.eq(Mux(writes, w_word >> bank_bits, r_word >> bank_bits)),
                port.we.eq(Mux(writes, Const(lane_mask, p.word_bytes) << (write_lane * beat), 0)),
                port.wdata.eq(axi.rdata.replicate(beats_per_word)),
            ]

        # -- R: every beat accepted; into the GLB (LOAD) or the instruction memory (boot) -----------------
        r_left = Signal(count)
        r_byte = Signal(range(p.glb_bytes))
        r_boot = Signal()
        r_assembly = Signal(8 * (INSTRUCTION_BYTES - beat))  # the instruction's beats so far, the newest on top
        r_part = Signal(range(beats_per_instr))
        r_index = Signal(range(max(2, p.imem_depth)))
        r_beat = Signal()
        m.d.comb += [axi.rready.eq(1), r_beat.eq(axi.rvalid & (r_left != 0))]
        with m.If(go_read):
            m.d.sync += [r_left.eq(job_beats), r_byte.eq(glb_addr), r_boot.eq(go_boot), r_part.eq(0),
                         r_index.eq(0)]
        with m.Elif(r_beat):
            m.d.sync += [r_left.eq(r_left - 1), r_byte.eq(r_byte + beat)]
            with m.If(r_boot):
                m.d.sync += [r_assembly.eq(Cat(r_assembly, axi.rdata)[8 * beat:]),
                             r_part.eq(Mux(r_part == beats_per_instr - 1, 0, r_part + 1))]
                with m.If(r_part == beats_per_instr - 1):
                    m.d.sync += r_index.eq(r_index + 1)
        m.d.comb += [
            glb_write.eq(r_beat & ~r_boot),
            glb_write_byte.eq(r_byte),
            self.imem_write.en.eq(r_beat & r_boot & (r_part == beats_per_instr - 1)),
            self.imem_write.addr.eq(r_index),
            self.imem_write.data.eq(Cat(r_assembly, axi.rdata)),
        ]

        # -- W: a producer hands beats to the W register; a beat's GLB word is read when the beat is the
        # STORE's first or the first of its word, in the cycle the W register frees -------------------------
        g_left = Signal(count)  # beats of the STORE not yet handed to the W register
        g_byte = Signal(range(p.glb_bytes))
        g_dram = Signal(DRAM_ADDRESS_BITS)  # DRAM address of the producer's next beat (for the burst ends)
        g_burst = Signal(range(MAX_BURST_BEATS + 1))  # beats left in the current burst
        g_first = Signal()
        cur_g_left = Signal(count)
        cur_g_byte = Signal(range(p.glb_bytes))
        cur_g_dram = Signal(DRAM_ADDRESS_BITS)
        cur_g_burst = Signal(range(MAX_BURST_BEATS + 1))
        cur_g_first = Signal()
        g_held = Signal()  # a STORE's beats in flight; with none, the instruction's (selected by a register)
        m.d.comb += g_held.eq(g_left != 0)
        with m.If(~g_held):
            m.d.comb += [cur_g_left.eq(dispatch_beats), cur_g_byte.eq(glb_addr), cur_g_dram.eq(dram_addr),
                         cur_g_burst.eq(0), cur_g_first.eq(1)]
        with m.Else():
            m.d.comb += [cur_g_left.eq(g_left), cur_g_byte.eq(g_byte), cur_g_dram.eq(g_dram),
                         cur_g_burst.eq(g_burst), cur_g_first.eq(g_first)]
        w_valid = Signal()
        w_bank = Signal(range(p.glb_banks))
        w_lane = Signal(range(beats_per_word))
        w_last = Signal()
        w_taken = axi.wvalid & axi.wready
        produce = Signal()
        m.d.comb += produce.eq((g_held | go_store) & (~w_valid | w_taken))
        burst_now = Mux(cur_g_burst == 0, burst_beats(cur_g_dram, cur_g_left), cur_g_burst)
        g_lane = cur_g_byte[beat_bits:word_bits] if beats_per_word > 1 else Const(0)
        g_word = cur_g_byte >> word_bits
        m.d.comb += [glb_read.eq(produce & (cur_g_first | (g_lane == 0))), glb_read_byte.eq(cur_g_byte)]
        with m.If(produce):
            m.d.sync += [
                g_left.eq(cur_g_left - 1), g_byte.eq(cur_g_byte + beat), g_dram.eq(cur_g_dram + beat),
                g_burst.eq(burst_now - 1), g_first.eq(0),
                w_valid.eq(1), w_bank.eq(g_word[:bank_bits] if bank_bits else 0), w_lane.eq(g_lane),
                w_last.eq(burst_now == 1),
            ]
        with m.Else():
            with m.If(go_store):
                m.d.sync += [g_left.eq(cur_g_left), g_byte.eq(cur_g_byte), g_dram.eq(cur_g_dram),
                             g_burst.eq(cur_g_burst), g_first.eq(cur_g_first)]
            with m.If(w_taken):
                m.d.sync += w_valid.eq(0)
        bank_word = Signal(p.glb_word_bits)
        with m.Switch(w_bank):
            for bank, port in enumerate(self.glb):
                with m.Case(bank):
                    m.d.comb += bank_word.eq(port.rdata)
        m.d.comb += [
            axi.wvalid.eq(w_valid), axi.wlast.eq(w_last), axi.wstrb.eq((1 << beat) - 1),
            axi.wdata.eq(bank_word.word_select(w_lane, 8 * beat)),
            axi.bready.eq(1),
        ]

        # -- B responses outstanding: one per burst handed to AW, until its B ---------------------------------
        b_due = Signal(count)
        aw_taken = axi.awvalid & axi.awready
        b_taken = axi.bvalid & axi.bready
        m.d.sync += b_due.eq(b_due + aw_taken - b_taken)
        m.d.comb += self.writes_pending.eq(w_valid | (b_due != 0) | ((a_left != 0) & a_write) | (g_left != 0))

        # -- busy: a read job until its last R beat; a STORE until at most its last beat is unaccepted ----------
        s_left = Signal(count)  # beats of the running STORE not yet accepted on W
        busy = Signal()
        with m.If(go_store):
            m.d.sync += s_left.eq(dispatch_beats)
        with m.Elif(w_taken & (s_left != 0)):
            m.d.sync += s_left.eq(s_left - 1)
        with m.If(go_read):
            m.d.sync += busy.eq(1)
        with m.Elif(go_store):
            m.d.sync += busy.eq(dispatch_beats > 1)
        with m.Elif(r_beat & (r_left == 1)):
            m.d.sync += busy.eq(0)
        with m.Elif(w_taken & (s_left == 2)):
            m.d.sync += busy.eq(0)
        # a memory that stalls AW or W may leave bursts or beats to issue when the count says done: wait for them
        free = Signal()
        m.d.comb += [free.eq(~busy & (a_left == 0) & (g_left == 0)), d.ready.eq(free), d.idle.eq(free)]
        return m
