"""OnChipMemory: the system's DRAM in the FPGA's block RAM, an AXI4 slave with a fixed latency, and a byte port
for the host link (docs/board.md, "On-chip memory").

The AXI4 side has the signature of the DMA unit's ``axi`` port (``hdl.system.dma.axi4_signature``, seen from the
slave) and keeps the timing docs/system-rtl.md ("The AXI4 memory port and its model") asks of a memory, with
L = ``latency`` (default ``READ_LATENCY`` = 3, the least it can be): an AR handshaken in cycle a has its first R
beat in a + L at the earliest, then one beat a cycle, and a burst starts at the earliest in the cycle after the
previous burst's last beat; the timing of ``hdl.benches.axi_memory.AxiMemory`` with the same latency. So an arch
whose ``dram.latency_cycles`` is 3 (``board_arch``) predicts the system's cycles on the board exactly, and the
simulation top (``hdl.system.sim_top``) builds it with the arch's own latency. Why 3: the AR enters the queue
(cycle a), the burst engine takes it from the queue (a + 1), presents the first word's address to the block RAM
(a + 2), whose registered output is the R beat (a + 3). A longer latency holds the burst in the queue L - 3 cycles
more: a token per AR runs down a shift register of L - 3 flip-flops beside the queue, and the engine takes only
bursts whose token has come out. The queue holds L + 1 bursts (4 at L = 3): an AR that finds it full waits, but
since every queued burst is at least one beat long its data are still not later than the previous burst's end
(the head starts in cycle s, so the L + 1 queued bursts end in s + L + 1 at the earliest, while the waiting AR,
taken in s + 1, could start in s + L + 1; docs/board.md gives the argument at L = 3), so a DMA transfer streams
without a gap.

Writes: AW into a second 4-entry queue; W beats are accepted every cycle a burst is open or queued (``wready``),
each written (``wstrb`` bytes) in the cycle it is accepted; B one cycle after the burst's last beat. Accesses
beyond the memory answer DECERR (reads 0, writes dropped).

With ``limit_port``, an input ``limit`` (in bus words) bounds the memory instead of its size: a word at or beyond
it answers DECERR as if the memory ended there, so one build of a large memory serves images of any size (the
simulation top's ``dram_words``).

The host port (``host``: ``addr`` byte address, ``en``, ``we``, ``wdata`` one byte; ``rdata`` the byte the
cycle after a read), for the UART bridge's loads and reads, shares the block RAM's one write and one read port
(a simple dual-port RAM, which synthesis maps to block RAM) and goes first: in a cycle the host writes, ``wready``
is low; in a cycle it reads, the next R beat's read waits. The host uses the memory before START and after DONE,
so a run's cycles are the contract's; a host read while an R beat is held by a master with ``rready`` low would
change that beat (the DMA unit's ``rready`` is always high).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from codesign.errors import HdlError
from hdl.system.dma import AXI_RESP_OKAY, axi4_signature
from hdl.system.params import DRAM_ADDRESS_BITS, SystemParams

__all__ = ["OnChipMemory", "READ_LATENCY", "QUEUE_DEPTH", "AXI_RESP_DECERR", "host_port_signature",
           "memory_bytes_for", "board_arch"]

READ_LATENCY = 3  # AR handshake to first R beat, in cycles (module docstring)
QUEUE_DEPTH = 4  # bursts the AW queue holds, and the AR queue at READ_LATENCY (L + 1 at latency L)
AXI_RESP_DECERR = 0b11
ALIGN_BYTES = 8  # DMA addresses and sizes are multiples of 8 bytes (docs/isa.md)


def host_port_signature(size_bytes: int) -> wiring.Signature:
    """The host's byte port, seen from the host (the UART bridge): a read's ``rdata`` comes the cycle after."""
    return wiring.Signature({
        "addr": Out(range(max(2, size_bytes))), "en": Out(1), "we": Out(1), "wdata": Out(8), "rdata": In(8),
    })


def memory_bytes_for(image_bytes: int) -> int:
    """The on-chip memory a DRAM image of ``image_bytes`` needs: rounded up to whole 8-byte DMA units."""
    return max(ALIGN_BYTES, -(-int(image_bytes) // ALIGN_BYTES) * ALIGN_BYTES)


def board_arch(arch):
    """``arch`` with ``dram.latency_cycles`` = ``READ_LATENCY``: the spec of the system whose DRAM is on chip."""
    from dataclasses import replace

    return replace(arch, dram=replace(arch.dram, latency_cycles=READ_LATENCY))


class OnChipMemory(wiring.Component):
    """``size_bytes`` of block RAM behind an AXI4 slave port (``axi``) and a host byte port (``host``); see the
    module docstring. ``params`` gives the bus width (``axi_data_bytes``: the memory's word); ``latency`` the
    cycles from an AR to its first R beat (>= ``READ_LATENCY``); ``limit_port`` adds the ``limit`` input."""

    def __init__(self, params: SystemParams, size_bytes: int, *, latency: int = READ_LATENCY,
                 limit_port: bool = False):
        if not isinstance(params, SystemParams):
            raise HdlError(f"OnChipMemory needs SystemParams, not {type(params).__name__}")
        if not isinstance(size_bytes, int) or size_bytes <= 0 or size_bytes % ALIGN_BYTES:
            raise HdlError(f"OnChipMemory size_bytes={size_bytes!r}: a positive multiple of {ALIGN_BYTES} bytes")
        if size_bytes > 1 << DRAM_ADDRESS_BITS:
            raise HdlError(f"OnChipMemory size_bytes={size_bytes}: beyond the 32-bit address space")
        if not isinstance(latency, int) or isinstance(latency, bool) or latency < READ_LATENCY:
            raise HdlError(f"OnChipMemory latency={latency!r}: an integer of at least {READ_LATENCY} cycles "
                           f"(queue, burst engine, registered block RAM)")
        self.params, self.size_bytes, self.latency = params, size_bytes, latency
        self.data_bytes = params.axi_data_bytes
        self.depth = size_bytes // self.data_bytes
        self.ar_queue_depth = QUEUE_DEPTH + latency - READ_LATENCY
        ports = {
            "axi": In(axi4_signature(self.data_bytes)),
            "host": In(host_port_signature(size_bytes)),
        }
        if limit_port:
            ports["limit"] = In(range(self.depth + 1), init=self.depth)
        self.limit_port = limit_port
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        axi, host = self.axi, self.host
        beat = self.data_bytes
        shift = beat.bit_length() - 1
        depth = self.depth
        word_bits = max(1, (depth - 1).bit_length())

        # one write port and one read port (a simple dual-port block RAM: Amaranth's read ports return the old
        # word when any write port writes it, which a true dual-port block RAM does not promise across its
        # ports, so two read-write sides would be built from flip-flops); the host has both ports first
        m.submodules.ram = ram = memory.Memory(shape=8 * beat, depth=depth, init=[])
        rd = ram.read_port()
        wr = ram.write_port(granularity=8)

        # -- host port: byte address -> word and lane -------------------------------------------------------
        h_word = host.addr >> shift if shift else host.addr
        h_lane = Signal(range(max(2, beat)))
        host_read = host.en & ~host.we
        host_write = host.en & host.we
        if shift:
            lane = host.addr[:shift]
            host_strobe = Const(1, beat) << lane
            with m.If(host.en):
                m.d.sync += h_lane.eq(lane)
            m.d.comb += host.rdata.eq(rd.data.word_select(h_lane, 8))
        else:
            host_strobe = Const(1, 1)
            m.d.comb += host.rdata.eq(rd.data)

        # -- the burst queues: (word address, beats - 1, inside the memory) ------------------------------------
        entry = DRAM_ADDRESS_BITS - shift + 8
        m.submodules.ar_queue = ar_q = SyncFIFO(width=entry, depth=self.ar_queue_depth)
        m.submodules.aw_queue = aw_q = SyncFIFO(width=entry, depth=QUEUE_DEPTH)
        m.d.comb += [
            axi.arready.eq(ar_q.w_rdy), ar_q.w_en.eq(axi.arvalid),
            ar_q.w_data.eq(Cat(axi.araddr[shift:], axi.arlen)),
            axi.awready.eq(aw_q.w_rdy), aw_q.w_en.eq(axi.awvalid),
            aw_q.w_data.eq(Cat(axi.awaddr[shift:], axi.awlen)),
        ]
        addr_width = DRAM_ADDRESS_BITS - shift

        # -- writes: an open burst (w_addr, w_left beats after this one) or the queue's head --------------------
        w_open = Signal()
        w_addr = Signal(addr_width)
        w_left = Signal(8)
        head_addr, head_len = aw_q.r_data[:addr_width], aw_q.r_data[addr_width:]
        beat_addr = Mux(w_open, w_addr, head_addr)
        beat_left = Mux(w_open, w_left, head_len)
        w_fire = Signal()
        b_limit = 2 * QUEUE_DEPTH
        b_pending = Signal(range(b_limit + 1))
        m.d.comb += [axi.wready.eq((w_open | aw_q.r_rdy) & (b_pending < b_limit) & ~host_write),
                     w_fire.eq(axi.wvalid & axi.wready)]
        m.d.comb += aw_q.r_en.eq(w_fire & ~w_open)
        limit = self.limit if self.limit_port else depth
        w_inside = beat_addr < limit
        bad_burst = Signal()  # a beat of the open burst fell outside the memory
        with m.If(w_fire):
            m.d.sync += [w_addr.eq(beat_addr + 1), w_left.eq(beat_left - 1), w_open.eq(beat_left != 0)]
        b_bad = Signal(b_limit + 1)  # per pending response, oldest in bit 0: DECERR
        burst_bad = Mux(w_open, bad_burst, 0) | ~w_inside
        last_beat = w_fire & (beat_left == 0)
        with m.If(w_fire):
            m.d.sync += bad_burst.eq(Mux(last_beat, 0, burst_bad))
        b_take = axi.bvalid & axi.bready
        m.d.comb += [axi.bvalid.eq(b_pending != 0), axi.bresp.eq(Mux(b_bad[0], AXI_RESP_DECERR, AXI_RESP_OKAY))]
        shifted = Mux(b_take, b_bad >> 1, b_bad)
        count_after_take = Signal.like(b_pending)
        m.d.comb += count_after_take.eq(b_pending - b_take)
        with m.If(last_beat):
            m.d.sync += [b_pending.eq(count_after_take + 1),
                         b_bad.eq(shifted | (burst_bad.replicate(len(b_bad)) &
                                             (Const(1, len(b_bad)) << count_after_take)))]
        with m.Else():
            m.d.sync += [b_pending.eq(count_after_take), b_bad.eq(shifted)]

        # -- reads: the burst engine (r_addr, r_left beats after the next), the R stage --------------------------
        r_open = Signal()
        r_addr = Signal(addr_width)
        r_left = Signal(8)
        rvalid = Signal()
        rlast = Signal()
        rbad = Signal()
        stalled = rvalid & ~axi.rready
        issue = r_open & ~stalled & ~host_read  # read the word of the next beat this cycle
        last_issue = issue & (r_left == 0)
        # ripening: token[i] is high in a + 1 + i for an AR handshaken in a; the head may be taken from a + L - 2
        # (then its first word is read in a + L - 1 and its beat is on R in a + L)
        tokens = Signal(self.latency - READ_LATENCY + 1)
        m.d.sync += tokens.eq(Cat(axi.arvalid & axi.arready, tokens[:-1]))
        ripe = Signal(range(self.ar_queue_depth + 1))  # queued bursts whose token has come out, not yet taken
        arrived = tokens[-1]
        take = ar_q.r_rdy & ((ripe != 0) | arrived) & (~r_open | last_issue)
        m.d.sync += ripe.eq(ripe + arrived - take)
        m.d.comb += ar_q.r_en.eq(take)
        with m.If(take):
            m.d.sync += [r_open.eq(1), r_addr.eq(ar_q.r_data[:addr_width]), r_left.eq(ar_q.r_data[addr_width:])]
        with m.Elif(issue):
            m.d.sync += [r_addr.eq(r_addr + 1), r_left.eq(r_left - 1), r_open.eq(~last_issue)]
        with m.If(issue):
            m.d.sync += [rvalid.eq(1), rlast.eq(r_left == 0), rbad.eq(r_addr >= limit)]
        with m.Elif(axi.rready):
            m.d.sync += rvalid.eq(0)

        # -- the block RAM's ports: the host's access, else the AXI side's write beat / next read ----------------
        m.d.comb += [
            wr.addr.eq(Mux(host_write, h_word, beat_addr[:word_bits])),
            wr.data.eq(Mux(host_write, host.wdata.replicate(beat), axi.wdata)),
            wr.en.eq(Mux(host_write, host_strobe, Mux(w_fire & w_inside, axi.wstrb, 0))),
            rd.addr.eq(Mux(host_read, h_word, r_addr[:word_bits])), rd.en.eq(issue | host_read),
            axi.rvalid.eq(rvalid), axi.rlast.eq(rlast),
            axi.rdata.eq(Mux(rbad, 0, rd.data)),
            axi.rresp.eq(Mux(rbad, AXI_RESP_DECERR, AXI_RESP_OKAY)),
        ]
        return m
