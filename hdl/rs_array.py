"""RsArray: row-stationary PE sets folded onto an array, their multicast buses and the pass controller.

The ``rows`` x ``cols`` PEs form ``(rows // r) * (cols // e)`` sets of r filter rows x e output rows
(Chen, Emer, Sze, ISCA 2016, Sec. V-B). Within a set, filter row i is multicast along set row i, input row
d to the PEs with i + U*j = d (the diagonal at stride U = 1, Sec. V), and the psums of a column climb it
(an adder tree sums its r PEs' drain heads), so set column j delivers output row j. One command runs one
pass: ``p`` filters x ``q`` channels x a ``taps``-long filter-row segment over ``out_cols`` output columns at
stride U, in every set at once. Ports, data order
and timing are in docs/rs-array.md; with every stream valid and ``psums.ready`` high a pass takes exactly
``codesign.contract.rs_timing.pass_cycles`` edges from its command to its last psum, and the next command is
accepted ``rs_timing.issue_interval`` edges after it.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import HdlError
from hdl.rs_pe import RsParams, RsPe, rs_params_from_arch

__all__ = ["RsParams", "rs_params_from_arch", "command_layout", "RsArray"]


def command_layout(params: RsParams) -> data.StructLayout:
    """The ``cmd`` payload: p, q, taps, out_cols, stride (lowest bits first), each wide enough for its maximum."""
    return data.StructLayout({
        "p": unsigned(params.max_p.bit_length()),
        "q": unsigned(params.max_q.bit_length()),
        "taps": unsigned(params.max_taps.bit_length()),
        "out_cols": unsigned(params.max_out_cols.bit_length()),
        "stride": unsigned(params.max_stride.bit_length()),
    })


def _clamped(m: Module, value, maximum: int, name: str) -> Signal:
    """``value`` limited to 1..maximum, so a malformed command cannot hang the array."""
    out = Signal(range(maximum + 1), name=name)
    limited = Mux(value > maximum, maximum, value) if maximum < (1 << len(value)) - 1 else value
    m.d.comb += out.eq(Mux(value == 0, 1, limited))
    return out


def _tree(values: list, join):
    """``values`` joined pairwise through a balanced tree (depth ceil(log2(len)))."""
    level = list(values)
    while len(level) > 1:
        nxt = [join(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _or_tree(values: list):
    return _tree(values, lambda a, b: a | b)


class RsArray(wiring.Component):
    """The row-stationary array (module docstring). Parameters: ``params``, an ``RsParams``.

    Ports (valid/ready streams): ``cmd`` (p, q, taps, out_cols, stride); ``filters`` (``sets * r`` lanes, lane
    ``set*r + i``: the filter word of set row i); ``inputs`` (``sets * D`` lanes, ``D = r + (e-1)*max_stride``,
    lane ``set*D + d``: the input word of input row d); ``psums`` (``sets * e`` lanes, lane ``set*e + j``:
    the psum of output row j); ``busy``. Sets are numbered row-major over the array.
    """

    def __init__(self, params: RsParams):
        if not isinstance(params, RsParams):
            raise HdlError(f"RsArray needs RsParams, not {type(params).__name__}")
        self.params = p = params
        super().__init__({
            "cmd": In(stream.Signature(command_layout(p))),
            "filters": In(stream.Signature(data.ArrayLayout(p.weight_shape, p.sets * p.set_rows))),
            "inputs": In(stream.Signature(data.ArrayLayout(p.activation_shape, p.sets * p.diagonals))),
            "psums": Out(stream.Signature(data.ArrayLayout(p.psum_shape, p.sets * p.set_cols))),
            "busy": Out(1),
        })

    @property
    def filter_lanes(self) -> int:
        return self.params.sets * self.params.set_rows

    @property
    def input_lanes(self) -> int:
        return self.params.sets * self.params.diagonals

    @property
    def psum_lanes(self) -> int:
        return self.params.sets * self.params.set_cols

    def elaborate(self, platform):
        m = Module()
        p = self.params
        rf_a = p.activation_rf_words

        # -- the pass command ---------------------------------------------------------------------------
        cp = Signal(range(p.max_p + 1), init=1)
        cq = Signal(range(p.max_q + 1), init=1)
        ctaps = Signal(range(p.max_taps + 1), init=1)
        ccols = Signal(range(p.max_out_cols + 1), init=1)
        cstride = Signal(range(p.max_stride + 1), init=1)
        cnew = Signal(range(p.max_taps + 1))  # n = min(stride, taps): inputs per channel a column takes anew
        cqn = Signal(range(rf_a + 1))  # q * n, counted over the prime (its new-tap beats)
        m.d.comb += cnew.eq(Mux(cstride < ctaps, cstride, ctaps))
        idle, filling, computing = Signal(init=1), Signal(), Signal()
        accept = Signal()
        m.d.comb += [self.cmd.ready.eq(idle), accept.eq(self.cmd.valid & idle)]

        # -- fill: filter words (f, c, s order) and the input windows' prime (c, s order) ------------------
        f_f = Signal(range(p.max_p))
        f_c = Signal(range(p.max_q))
        f_s = Signal(range(p.max_taps))
        f_base = Signal(range(rf_a + p.max_taps))  # f_c * taps, kept by adding
        f_done = Signal()
        p_c = Signal(range(p.max_q))
        p_s = Signal(range(p.max_taps))
        p_addr = Signal(range(rf_a + 1))
        p_done = Signal()
        is_last = Signal(rf_a)

        filter_beat = Signal()
        input_beat = Signal()
        m.d.comb += [
            self.filters.ready.eq(filling & ~f_done),
            filter_beat.eq(self.filters.valid & self.filters.ready),
        ]
        f_last = (f_f == cp - 1) & (f_c == cq - 1) & (f_s == ctaps - 1)
        with m.If(filter_beat):
            with m.If(f_s == ctaps - 1):
                m.d.sync += f_s.eq(0)
                with m.If(f_c == cq - 1):
                    m.d.sync += [f_c.eq(0), f_base.eq(0), f_f.eq(f_f + 1)]
                with m.Else():
                    m.d.sync += [f_c.eq(f_c + 1), f_base.eq(f_base + ctaps)]
            with m.Else():
                m.d.sync += f_s.eq(f_s + 1)
            with m.If(f_last):
                m.d.sync += f_done.eq(1)
        p_last = (p_c == cq - 1) & (p_s == ctaps - 1)
        prime_beat = Signal()
        m.d.comb += prime_beat.eq(input_beat & filling)
        prime_new = Signal()  # this prime word is one the next column replaces from the stream
        m.d.comb += prime_new.eq(p_s + cnew >= ctaps)
        with m.If(prime_beat):
            m.d.sync += [p_addr.eq(p_addr + 1), is_last.bit_select(p_addr, 1).eq(prime_new)]
            with m.If(prime_new):
                m.d.sync += cqn.eq(cqn + 1)
            with m.If(p_s == ctaps - 1):
                m.d.sync += [p_s.eq(0), p_c.eq(p_c + 1)]
            with m.Else():
                m.d.sync += p_s.eq(p_s + 1)
            with m.If(p_last):
                m.d.sync += p_done.eq(1)

        # -- compute: out_cols columns of L slots; the next column's inputs staged meanwhile ---------------
        col = Signal(range(p.max_out_cols))
        slot = Signal(range(p.weight_rf_words + 2))
        staged = Signal(range(rf_a + 1))  # of the q*n new inputs of the next column
        s_k = Signal(range(p.max_taps + 1))  # of the n new taps of the channel being staged
        s_addr = Signal(range(rf_a + p.max_taps + 1))  # c*taps + taps - n + s_k, kept by adding
        drain_left = Signal(range(p.max_p + 1))
        last_col = Signal()  # col == ccols - 1, kept as a register (it gates the input stream's ready)
        stage_beat = Signal()
        m.d.comb += stage_beat.eq(input_beat & computing)
        m.d.comb += self.inputs.ready.eq((filling & ~p_done) | (computing & ~last_col & (staged < cqn)))
        m.d.comb += input_beat.eq(self.inputs.valid & self.inputs.ready)

        out_beat = Signal()
        m.d.comb += [
            self.psums.valid.eq(drain_left != 0),
            out_beat.eq(self.psums.valid & self.psums.ready),
        ]

        # -- the PEs, their buses, the psum climb ---------------------------------------------------------
        pes = {}
        for set_index in range(p.sets):
            for i in range(p.set_rows):
                for j in range(p.set_cols):
                    pe = RsPe(p)
                    m.submodules[f"pe_s{set_index}_{i}_{j}"] = pe
                    pes[set_index, i, j] = pe
        # The busiest PE's entries, kept beside the fill instead of a max tree over every PE's count (that tree
        # fed the column end and so every PE's enables): the PEs of a set row hold the same entries, and the
        # most grows by one on a beat that one of the set rows at the most keeps.
        most = Signal(range(p.weight_rf_words + 1), name="most_nonzeros")
        grows = []
        for set_index in range(p.sets):
            for i in range(p.set_rows):
                row = pes[set_index, i, 0]
                kept = row.fill_we
                if p.skip_zero_weights:
                    kept = kept & (row.fill_word != 0)
                grows.append(kept & (row.nonzeros == most) & (most < p.weight_rf_words))
        with m.If(accept):
            m.d.sync += most.eq(0)
        with m.Elif(_or_tree(grows)):
            m.d.sync += most.eq(most + 1)
        column = Signal(range(max(p.weight_rf_words, p.max_p, rf_a) + 1))  # max(nonzeros, p, q*n)
        m.d.comb += column.eq(Mux(most > cp, Mux(most > cqn, most, cqn), Mux(cp > cqn, cp, cqn)))

        fill_over = filling & (f_done | (filter_beat & f_last)) & (p_done | (prime_beat & p_last))
        mac_en = Signal()
        m.d.comb += mac_en.eq(computing & (slot < column))
        stage_ok = last_col | (staged == cqn) | ((staged == cqn - 1) & stage_beat)
        drain_ok = (drain_left == 0) | ((drain_left == 1) & out_beat)
        col_end = Signal()
        m.d.comb += col_end.eq(computing & (slot + 1 >= column) & stage_ok & drain_ok)
        # The slot of the next edge (the PEs read their filter scratchpads one edge ahead): 0 when a pass's
        # fill or a column ends, one more while the column has slots left.
        next_slot = Signal.like(slot)
        m.d.comb += next_slot.eq(slot)
        with m.If(fill_over | col_end):
            m.d.comb += next_slot.eq(0)
        with m.Elif(computing & (slot < column)):
            m.d.comb += next_slot.eq(slot + 1)

        stage_regs = {}
        for set_index in range(p.sets):
            for d in range(p.diagonals):
                lane = set_index * p.diagonals + d
                word = self.inputs.payload[lane]
                regs = [Signal(p.activation_shape, name=f"stage_s{set_index}_d{d}_{a}") for a in range(rf_a)]
                view = Signal(data.ArrayLayout(p.activation_shape, rf_a), name=f"stage_view_s{set_index}_d{d}")
                for a in range(rf_a):
                    hit = stage_beat & (s_addr == a)
                    with m.If(hit):
                        m.d.sync += regs[a].eq(word)
                    m.d.comb += view[a].eq(Mux(hit, word, regs[a]))
                stage_regs[set_index, d] = view

        for (set_index, i, j), pe in pes.items():
            f_word = self.filters.payload[set_index * p.set_rows + i]  # multicast along set row i
            # input row i + U*j (ISCA 2016 Sec. V: the diagonal at U = 1), chosen by the pass's stride U
            in_word = self.inputs.payload[set_index * p.diagonals + i + j]
            stage = stage_regs[set_index, i + j]
            for u in range(2, p.max_stride + 1):
                lane = set_index * p.diagonals + i + u * j
                in_word = Mux(cstride == u, self.inputs.payload[lane], in_word)
                stage = Mux(cstride == u, stage_regs[set_index, i + u * j].as_value(), stage)
            m.d.comb += [
                pe.fill_start.eq(accept),
                pe.fill_we.eq(filter_beat),
                pe.fill_word.eq(f_word),
                pe.fill_f.eq(f_f),
                pe.fill_base.eq(f_base),
                pe.fill_s.eq(f_s),
                pe.prime_we.eq(prime_beat),
                pe.prime_addr.eq(p_addr),
                pe.prime_word.eq(in_word),
                pe.shift.eq(col_end & ~last_col),
                pe.stride.eq(cstride),
                pe.is_last.eq(is_last),
                pe.stage.eq(stage),
                pe.mac_en.eq(mac_en),
                pe.slot.eq(slot),
                pe.next_slot.eq(next_slot),
                pe.col_end.eq(col_end),
                pe.drain.eq(out_beat),
            ]
        # The psum of set column j: its r PEs' drain heads summed by a balanced adder tree (the column's climb).
        for set_index in range(p.sets):
            for j in range(p.set_cols):
                heads = [pes[set_index, i, j].drain_word for i in range(p.set_rows)]
                total = _tree(heads, lambda a, b: a + b)
                m.d.comb += self.psums.payload[set_index * p.set_cols + j].eq(total)

        # -- the controller's state -----------------------------------------------------------------------
        with m.If(accept):
            m.d.sync += [
                cp.eq(_clamped(m, self.cmd.payload.p, p.max_p, "cmd_p")),
                cq.eq(_clamped(m, self.cmd.payload.q, p.max_q, "cmd_q")),
                ctaps.eq(_clamped(m, self.cmd.payload.taps, p.max_taps, "cmd_taps")),
                ccols.eq(_clamped(m, self.cmd.payload.out_cols, p.max_out_cols, "cmd_out_cols")),
                cstride.eq(_clamped(m, self.cmd.payload.stride, p.max_stride, "cmd_stride")), cqn.eq(0),
                idle.eq(0), filling.eq(1),
                f_f.eq(0), f_c.eq(0), f_s.eq(0), f_base.eq(0), f_done.eq(0),
                p_c.eq(0), p_s.eq(0), p_addr.eq(0), p_done.eq(0),
            ]
        m.d.sync += slot.eq(next_slot)
        with m.If(fill_over):
            m.d.sync += [filling.eq(0), computing.eq(1), col.eq(0), last_col.eq(ccols == 1), staged.eq(0),
                         s_k.eq(0), s_addr.eq(ctaps - cnew)]
        with m.If(computing):
            with m.If(col_end):
                m.d.sync += [staged.eq(0), s_k.eq(0), s_addr.eq(ctaps - cnew), col.eq(col + 1),
                             last_col.eq(col + 2 == ccols)]
                with m.If(last_col):
                    m.d.sync += [computing.eq(0), idle.eq(1)]
            with m.Else():
                with m.If(stage_beat):
                    m.d.sync += staged.eq(staged + 1)
                    with m.If(s_k == cnew - 1):  # on to the next channel's first new tap
                        m.d.sync += [s_k.eq(0), s_addr.eq(s_addr + ctaps - cnew + 1)]
                    with m.Else():
                        m.d.sync += [s_k.eq(s_k + 1), s_addr.eq(s_addr + 1)]
        with m.If(col_end):
            m.d.sync += drain_left.eq(cp)
        with m.Elif(out_beat):
            m.d.sync += drain_left.eq(drain_left - 1)
        m.d.comb += self.busy.eq(~idle | (drain_left != 0))
        return m
