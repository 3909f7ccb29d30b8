"""GemmCore: a systolic array with its controller, stream ports and a buffered results path.

It runs one GEMM tile C[m x n] = A[m x k] @ B[k x n] per command, tiles back to back, sizes set
per command up to the built maximum. Ports, data order and timing are in docs/core-protocol.md;
with inputs always valid and ``results.ready`` high a tile takes exactly
``sim.tile_timing.tile_cycles`` edges from its command to its last result, and the next command
is accepted ``sim.tile_timing.issue_interval`` edges after it (WS: one edge after the last result;
OS: as soon as the array is free, the finished tile draining from a result bank meanwhile).

Results go through a FIFO in on-chip memory (``amaranth.lib.fifo.SyncFIFO`` over
``lib.memory``), so ``results.ready`` low stalls the core without losing data: in WS, rows of A
are only accepted while the FIFO has room for every row already in the array (credit count);
in OS, the result bank drains only into free FIFO entries, and a finished tile waits in the
accumulators (no new command accepted) until the bank is empty.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import HdlError
from hdl.params import CoreParams
from hdl.systolic import OsArray, WsArray


def command_layout(params: CoreParams) -> data.StructLayout:
    """The ``cmd`` payload: tile sizes m, k, n, each wide enough for its maximum."""
    m_max, k_max, n_max = params.tile_max
    return data.StructLayout(
        {"m": unsigned(m_max.bit_length()), "k": unsigned(k_max.bit_length()), "n": unsigned(n_max.bit_length())}
    )


def _clamped(m: Module, value, maximum: int, name: str) -> Signal:
    """``value`` limited to 1..maximum, so a malformed command cannot hang the core."""
    out = Signal(range(maximum + 1), name=name)
    limited = Mux(value > maximum, maximum, value) if maximum < (1 << len(value)) - 1 else value
    m.d.comb += out.eq(Mux(value == 0, 1, limited))
    return out


class GemmCore(wiring.Component):
    """GEMM engine running tiles back to back on a WS or OS systolic array (see module docstring).

    Ports (valid/ready streams): ``cmd`` (m, k, n), ``weights`` (``cols`` lanes: a row of B),
    ``acts`` (``rows`` lanes: WS a row of A, OS a column of A), ``results`` (``cols`` lanes:
    a row of C). Unused lanes of a tile are ignored on input and zero on output.
    """

    def __init__(self, params: CoreParams):
        if not isinstance(params, CoreParams):
            raise HdlError(f"GemmCore needs CoreParams, not {type(params).__name__}")
        self.params = params
        pe = params.pe
        super().__init__(
            {
                "cmd": In(stream.Signature(command_layout(params))),
                "weights": In(stream.Signature(data.ArrayLayout(pe.weight_shape, params.cols))),
                "acts": In(stream.Signature(data.ArrayLayout(pe.act_shape, params.rows))),
                "results": Out(stream.Signature(data.ArrayLayout(pe.acc_shape, params.cols))),
                "busy": Out(1),
            }
        )

    @property
    def results_depth(self) -> int:
        """Results FIFO entries: WS needs one per row in flight in the array (plus one being read)."""
        p = self.params
        return p.rows + p.cols + 1 if p.dataflow == "ws" else p.rows + 1

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m_max, k_max, n_max = p.tile_max
        acc_shape = p.pe.acc_shape
        row_layout = data.ArrayLayout(acc_shape, p.cols)

        buf = m.submodules.results_fifo = fifo.SyncFIFO(width=row_layout.size, depth=self.results_depth)
        m.d.comb += [
            self.results.valid.eq(buf.r_rdy),
            self.results.payload.eq(buf.r_data),
            buf.r_en.eq(self.results.ready),
        ]

        tile_m = Signal(range(m_max + 1), init=1)
        tile_k = Signal(range(k_max + 1), init=1)
        tile_n = Signal(range(n_max + 1), init=1)
        results_sent = Signal(range(m_max + 1))
        last_result = Signal()
        m.d.comb += last_result.eq(self.results.valid & self.results.ready & (results_sent == tile_m - 1))
        with m.If(self.results.valid & self.results.ready):
            m.d.sync += results_sent.eq(results_sent + 1)

        cmd_m = _clamped(m, self.cmd.payload.m, m_max, "cmd_m")
        cmd_k = _clamped(m, self.cmd.payload.k, k_max, "cmd_k")
        cmd_n = _clamped(m, self.cmd.payload.n, n_max, "cmd_n")
        accept_cmd = Signal()
        m.d.comb += accept_cmd.eq(self.cmd.valid & self.cmd.ready)
        with m.If(accept_cmd):
            m.d.sync += [tile_m.eq(cmd_m), tile_k.eq(cmd_k), tile_n.eq(cmd_n), results_sent.eq(0)]

        # Lanes beyond the tile are zeroed, so stale weights and don't-care lanes add nothing. OS takes
        # its first beat on the command's own edge, so its lane counts come from the command then.
        lane_n, lane_m = tile_n, tile_m
        if p.dataflow == "os":
            lane_n, lane_m = Mux(accept_cmd, cmd_n, tile_n), Mux(accept_cmd, cmd_m, tile_m)
        weight_row = Signal(data.ArrayLayout(p.pe.weight_shape, p.cols))
        for c in range(p.cols):
            m.d.comb += weight_row[c].eq(Mux(c < lane_n, self.weights.payload[c], 0))

        if p.dataflow == "ws":
            self._elaborate_ws(m, buf, accept_cmd, last_result, tile_m, tile_k, weight_row)
        else:
            self._elaborate_os(m, buf, accept_cmd, cmd_k, lane_m, tile_m, tile_k, weight_row)
        return m

    def _elaborate_ws(self, m, buf, accept_cmd, last_result, tile_m, tile_k, weight_row):
        p = self.params
        array = m.submodules.array = WsArray(p.array)
        count = Signal(range(max(p.rows, p.max_m) + 1))
        in_flight = Signal(range(self.results_depth + 1))
        has_room = Signal()
        # Credit: every row in the array, and every row in the FIFO, owns a FIFO entry.
        m.d.comb += has_room.eq(in_flight + buf.level < self.results_depth)
        feed = Signal()
        m.d.comb += feed.eq(self.acts.valid & self.acts.ready)
        written = Signal()
        m.d.comb += [written.eq(array.out_valid), buf.w_en.eq(array.out_valid), buf.w_data.eq(array.psums)]
        with m.If(feed & ~written):
            m.d.sync += in_flight.eq(in_flight + 1)
        with m.Elif(~feed & written):
            m.d.sync += in_flight.eq(in_flight - 1)

        m.d.comb += [array.weights.eq(weight_row), array.in_valid.eq(feed)]
        for r in range(p.rows):
            m.d.comb += array.acts[r].eq(Mux(feed & (r < tile_k), self.acts.payload[r], 0))

        with m.FSM(name="ws_fsm"):
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(accept_cmd):
                    m.d.sync += count.eq(0)
                    m.next = "LOAD_WEIGHTS"
            with m.State("LOAD_WEIGHTS"):
                m.d.comb += [self.weights.ready.eq(1), self.busy.eq(1)]
                with m.If(self.weights.valid):
                    for r in range(p.rows):
                        m.d.comb += array.weight_load[r].eq(count == r)
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == tile_k - 1):
                        m.d.sync += count.eq(0)
                        m.next = "STREAM"
            with m.State("STREAM"):
                m.d.comb += [self.acts.ready.eq(has_room), self.busy.eq(1)]
                with m.If(feed):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == tile_m - 1):
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(last_result):
                    m.next = "IDLE"

    def _elaborate_os(self, m, buf, accept_cmd, cmd_k, lane_m, tile_m, tile_k, weight_row):
        p = self.params
        array = m.submodules.array = OsArray(p.array)
        count = Signal(range(max(p.max_k, p.rows + p.cols) + 1))
        feed = Signal()
        m.d.comb += feed.eq(self.acts.valid & self.weights.valid & self.acts.ready & self.weights.ready)
        for c in range(p.cols):
            m.d.comb += array.weights[c].eq(Mux(feed, weight_row[c], 0))
        for r in range(p.rows):
            m.d.comb += array.acts[r].eq(Mux(feed & (r < lane_m), self.acts.payload[r], 0))

        # Overlap (docs/core-protocol.md): a tile is finished on its last MAC's edge (``finishing``) and
        # copied into the result bank on that edge, row 0 straight into the FIFO, if the bank is empty
        # and the FIFO has room; otherwise it waits in the accumulators (``pending``). The next command
        # may be accepted on the copy's edge, never before.
        pending = Signal()
        finishing = Signal()
        bank_left = Signal(range(p.rows + 1))  # rows still in the bank, drained one per free FIFO entry
        copy = Signal()
        draining = Signal()
        m.d.comb += [
            draining.eq(bank_left != 0),
            copy.eq((pending | finishing) & ~draining & buf.w_rdy),
            array.copy.eq(copy),
            array.bank_shift.eq(draining & buf.w_rdy),
            array.clear.eq(accept_cmd),
            buf.w_en.eq(copy | draining),
            buf.w_data.eq(Mux(copy, array.top_row, array.bank_top)),
        ]
        with m.If(copy):
            m.d.sync += [pending.eq(0), bank_left.eq(tile_m - 1)]
        with m.Elif(draining & buf.w_rdy):
            m.d.sync += bank_left.eq(bank_left - 1)
        with m.If(finishing & ~copy):
            m.d.sync += pending.eq(1)

        # A command starts the beats; the first beat may go with it (the clear acts before its first MAC).
        both = self.acts.valid & self.weights.valid
        take_cmd = Signal()
        m.d.comb += [
            self.cmd.ready.eq(take_cmd),
            self.acts.ready.eq(Mux(take_cmd, both & self.cmd.valid, 0)),
            self.weights.ready.eq(Mux(take_cmd, both & self.cmd.valid, 0)),
        ]
        with m.If(accept_cmd & feed & (cmd_k == 1)):
            m.d.sync += count.eq(0)
        with m.Elif(accept_cmd):
            m.d.sync += count.eq(feed)

        def start_tile():
            with m.If(accept_cmd & feed & (cmd_k == 1)):
                m.next = "FINISH"
            with m.Elif(accept_cmd):
                m.next = "FEED"

        with m.FSM(name="os_fsm"):
            with m.State("IDLE"):
                m.d.comb += [take_cmd.eq(~pending | copy), self.busy.eq(pending | draining)]
                start_tile()
            with m.State("FEED"):
                m.d.comb += [self.acts.ready.eq(both), self.weights.ready.eq(both), self.busy.eq(1)]
                with m.If(feed):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == tile_k - 1):
                        m.d.sync += count.eq(0)
                        m.next = "FINISH"
            with m.State("FINISH"):  # the last MAC lands last_mac_delay edges after the last beat
                m.d.comb += self.busy.eq(1)
                with m.If(count == array.last_mac_delay - 1):
                    m.d.comb += [finishing.eq(1), take_cmd.eq(copy)]
                    m.next = "IDLE"
                    start_tile()
                with m.Else():
                    m.d.sync += count.eq(count + 1)
