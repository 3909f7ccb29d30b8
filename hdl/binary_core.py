"""BinaryGemmCore: binarized GEMM tiles on an ``XnorPopcountArray``, with stream ports, back to back.

One tile per command, C[m x n] = A[m x k] @ B[k x n] over {-1, +1} (bit 1 = +1, bit 0 = -1, as in
``hdl.binary``), m <= rows, n <= cols, k <= max_k, sizes set per command. The dataflow is the one the
array implements: output stationary with operands broadcast, PE (r, c) accumulating row r of A against
column c of B one packed word of ``word_bits`` values per edge. Ports, data order and the derivation of
the timing are in docs/core-protocol.md ("The binarized core"); with inputs always valid and
``results.ready`` high a tile takes exactly ``codesign.contract.binary_timing.tile_cycles`` =
k_words + 2 edges from its command to its results, and the next command is accepted
``binary_timing.issue_interval`` = k_words edges after it (k_words = ceil(k / word_bits)).

Pipeline: beat t (word t of every row of A on ``acts``, of every column of B on ``weights``) is
accepted into the operand registers (the first with the command), the array accumulates it on the
next edge, and a finished tile is copied on the edge after its last MAC into the result register,
which ``results`` transfers as one payload of rows x cols sums. The copy shares its edge with the
next tile's first MAC (the next command is accepted on the edge after the last beat), so tiles run
back to back with no idle edge. When ``results`` is stalled and the result register is still full,
the finished tile waits in the accumulators and the pipeline holds (no input is accepted), so no
result is lost or overwritten.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import HdlError
from hdl.binary import XnorPopcountArray
from hdl.params import BinaryCoreParams

__all__ = ["binary_command_layout", "binary_results_layout", "BinaryGemmCore"]


def binary_command_layout(params: BinaryCoreParams) -> data.StructLayout:
    """The ``cmd`` payload: m (rows), k (bits of the reduction, up to max_k), n (columns), m lowest."""
    return data.StructLayout({
        "m": unsigned(params.rows.bit_length()),
        "k": unsigned(params.max_k.bit_length()),
        "n": unsigned(params.cols.bit_length()),
    })


def binary_results_layout(params: BinaryCoreParams) -> data.ArrayLayout:
    """The ``results`` payload: ``rows`` rows of ``cols`` signed ``acc_bits`` lanes; lane (r, c) holds C[r, c]
    at bits [(r * cols + c) * acc_bits, ...)."""
    return data.ArrayLayout(data.ArrayLayout(signed(params.acc_bits), params.cols), params.rows)


def _clamped(m: Module, value, maximum: int, name: str) -> Signal:
    """``value`` limited to 1..maximum, so a malformed command cannot hang the core."""
    out = Signal(range(maximum + 1), name=name)
    limited = Mux(value > maximum, maximum, value) if maximum < (1 << len(value)) - 1 else value
    m.d.comb += out.eq(Mux(value == 0, 1, limited))
    return out


class BinaryGemmCore(wiring.Component):
    """Binarized GEMM engine on XNOR-popcount PEs (see the module docstring).

    Parameters: ``params``, a ``hdl.params.BinaryCoreParams``; HdlError for anything else.

    Ports (valid/ready streams): ``cmd`` (m, k, n), ``weights`` (``cols`` lanes of ``word_bits``: word t of
    every column of B), ``acts`` (``rows`` lanes of ``word_bits``: word t of every row of A), ``results``
    (``rows`` x ``cols`` signed lanes of ``acc_bits``: the whole tile), and ``busy``. Lanes beyond the tile
    and bits beyond the reduction are ignored on input; result lanes outside m x n are zero.
    """

    def __init__(self, params: BinaryCoreParams):
        if not isinstance(params, BinaryCoreParams):
            raise HdlError(f"BinaryGemmCore needs BinaryCoreParams, not {type(params).__name__}")
        self.params = params
        wb = params.word_bits
        super().__init__({
            "cmd": In(stream.Signature(binary_command_layout(params))),
            "weights": In(stream.Signature(data.ArrayLayout(unsigned(wb), params.cols))),
            "acts": In(stream.Signature(data.ArrayLayout(unsigned(wb), params.rows))),
            "results": Out(stream.Signature(binary_results_layout(params))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        rows, cols, wb = p.rows, p.cols, p.word_bits
        array = m.submodules.array = XnorPopcountArray(rows, cols, wb, p.acc_bits)

        cmd_m = _clamped(m, self.cmd.payload.m, rows, "cmd_m")
        cmd_k = _clamped(m, self.cmd.payload.k, p.max_k, "cmd_k")
        cmd_n = _clamped(m, self.cmd.payload.n, cols, "cmd_n")

        # Tile being fed: its sizes, the reduction bits not yet sent, whether its first beat is still to come.
        tile_m = Signal(range(rows + 1), init=1)
        tile_n = Signal(range(cols + 1), init=1)
        left = Signal(range(p.max_k + 1))
        first_due = Signal()

        # Operand registers: the beat the array accumulates on the next edge.
        op_a = Signal(data.ArrayLayout(unsigned(wb), rows))
        op_w = Signal(data.ArrayLayout(unsigned(wb), cols))
        op_nv = Signal(range(wb + 1))
        op_en = Signal()
        op_clear = Signal()
        op_last = Signal()
        op_m = Signal(range(rows + 1))
        op_n = Signal(range(cols + 1))

        # A finished tile in the accumulators, waiting for the copy; its sizes.
        fin = Signal()
        fin_m = Signal(range(rows + 1))
        fin_n = Signal(range(cols + 1))

        # The result register behind ``results``.
        out = Signal(binary_results_layout(p))
        out_valid = Signal()

        sending = Signal()
        copy = Signal()
        hold = Signal()
        m.d.comb += [
            sending.eq(out_valid & self.results.ready),
            copy.eq(fin & (~out_valid | self.results.ready)),
            hold.eq(fin & ~copy),  # the finished tile cannot leave: the array and the operand stage hold
            self.results.valid.eq(out_valid),
            self.results.payload.eq(out),
        ]

        # --- accepting a command and its beats -----------------------------------------------------
        both = self.acts.valid & self.weights.valid
        accept_cmd = Signal()
        beat = Signal()
        m.d.comb += [
            accept_cmd.eq(self.cmd.valid & self.cmd.ready),
            beat.eq(both & self.acts.ready),  # acts.ready == weights.ready: the two transfer together
            self.weights.ready.eq(self.acts.ready),
        ]
        beat_left = Signal(range(p.max_k + 1))  # reduction bits from this beat on
        beat_first = Signal()
        beat_m = Signal(range(rows + 1))
        beat_n = Signal(range(cols + 1))
        m.d.comb += [
            beat_left.eq(Mux(accept_cmd, cmd_k, left)),
            beat_first.eq(accept_cmd | first_due),
            beat_m.eq(Mux(accept_cmd, cmd_m, tile_m)),
            beat_n.eq(Mux(accept_cmd, cmd_n, tile_n)),
        ]
        beat_last = Signal()  # this beat carries the reduction's last (possibly partial) word
        m.d.comb += beat_last.eq(beat_left <= wb if p.max_k > wb else 1)

        with m.FSM(name="xnor_fsm"):
            with m.State("IDLE"):
                # A command may bring the first beat on its own edge.
                m.d.comb += [self.cmd.ready.eq(~hold), self.acts.ready.eq(~hold & self.cmd.valid & both)]
                with m.If(accept_cmd):
                    m.d.sync += [tile_m.eq(cmd_m), tile_n.eq(cmd_n)]
                    with m.If(~beat):
                        m.d.sync += [left.eq(cmd_k), first_due.eq(1)]
                        m.next = "FEED"
                    with m.Elif(~beat_last):
                        m.d.sync += [left.eq(cmd_k - wb), first_due.eq(0)]
                        m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += [self.acts.ready.eq(~hold & both), self.busy.eq(1)]
                with m.If(beat):
                    m.d.sync += [left.eq(left - wb), first_due.eq(0)]
                    with m.If(beat_last):
                        m.next = "IDLE"

        # --- operand stage -------------------------------------------------------------------------
        with m.If(~hold):
            m.d.sync += op_en.eq(beat)
            with m.If(beat):
                m.d.sync += [
                    op_a.eq(self.acts.payload),
                    op_w.eq(self.weights.payload),
                    op_nv.eq(Mux(beat_last, beat_left, wb)),
                    op_clear.eq(beat_first),
                    op_last.eq(beat_last),
                    op_m.eq(beat_m),
                    op_n.eq(beat_n),
                ]

        # --- MAC stage: the array accumulates the operand registers unless the pipeline holds ------
        mac = Signal()
        m.d.comb += [
            mac.eq(op_en & ~hold),
            array.en.eq(mac),
            array.clear.eq(mac & op_clear),
            array.n_valid.eq(op_nv),
        ]
        m.d.comb += [array.a[r].eq(op_a[r]) for r in range(rows)]
        m.d.comb += [array.w[c].eq(op_w[c]) for c in range(cols)]
        with m.If(mac & op_last):
            m.d.sync += [fin.eq(1), fin_m.eq(op_m), fin_n.eq(op_n)]
        with m.Elif(copy):
            m.d.sync += fin.eq(0)

        # --- copy into the result register (lanes outside the tile zeroed) and the transfer --------
        with m.If(copy):
            m.d.sync += out_valid.eq(1)
            for r in range(rows):
                for c in range(cols):
                    m.d.sync += out[r][c].eq(Mux((r < fin_m) & (c < fin_n), array.acc[r][c], 0))
        with m.Elif(sending):
            m.d.sync += out_valid.eq(0)

        # busy: a command offered, or a tile in the operand stage, the accumulators or the result register
        with m.If(self.cmd.valid | op_en | fin | out_valid):
            m.d.comb += self.busy.eq(1)
        return m
