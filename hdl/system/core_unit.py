"""The core unit: MATMUL (docs/isa.md) on the GEMM core, with its accumulator, parameter memory, output tail and
the two output buffers the staging unit writes back from (docs/system-rtl.md).

One tile: on ``start`` the unit captures the instruction and the tail registers into a tile context, reads row 0
of both operand slots and offers the core its command the next cycle; the slot streams feed the core as
docs/core-protocol.md orders them (WS: B rows then A rows; OS: A row t with B row t per beat). Each result row is
accumulated in the cycle it leaves the core (the accumulator row was read the cycle before), then, with out = 1,
``rq(ACC + bias[ch], M[ch], S[ch])`` and the tail go to the output buffer, ``REQUANT_LATENCY + TAIL_LATENCY``
cycles later. With the command one cycle after the start, a tile's last accumulator write is visible
``tile_cycles + 2`` cycles after its start and its last output row ``tile_cycles + 2 + REQUANT_LATENCY +
TAIL_LATENCY``: exactly ``system_timing``'s ``ACC_LATENCY`` and ``OUTPUT_LATENCY``, checked when the unit is built.
``ready``, ``idle`` and ``obuf_done`` come from counters loaded with the contract's numbers at the start.

The parameter memory is ``P`` banks (``P`` the power of two at or above ``cols``), channel c in bank c mod P at
row c // P: the n <= cols consecutive channels n0 .. n0+n-1 of a tile lie in n distinct banks, so every result row
reads all its lanes' (bias, M, S) in one cycle, with no loading at the tile's start that would cost cycles.
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from codesign.contract import tile_timing
from codesign.contract.isa import FORMATS, Op, Reg
from codesign.contract.system_timing import ACC_LATENCY, OUTPUT_LATENCY
from codesign.errors import HdlError
from hdl.core import GemmCore
from hdl.system import ports
from hdl.system.params import SystemParams
from hdl.system.ports import lut_write_signature, obuf_read_signature, param_write_signature, slot_read_signature
from hdl.system.tail import REG_BITS, REQUANT_LATENCY, SHIFT_BITS, TAIL_LATENCY, TAIL_REGS, OutputTail, Requantize

__all__ = ["CoreUnit", "COMMAND_DELAY",
           "ERROR_TILE", "ERROR_ACC_ROWS", "ERROR_PARAMS"]

COMMAND_DELAY = 1  # the core's command goes out the cycle after the start (OS: beat 0 goes with it)
ACC_BITS = 32
ERROR_TILE, ERROR_ACC_ROWS, ERROR_PARAMS = 4, 5, 8  # executor.ERROR_CODES: tile, staging, params
_TAIL_REG = {"lut_en": Reg.LUT_EN, "zp_pre": Reg.ZP_PRE, "pre_lo": Reg.PRE_LO, "pre_hi": Reg.PRE_HI,
             "zp_out": Reg.ZP_OUT, "clamp_lo": Reg.CLAMP_LO, "clamp_hi": Reg.CLAMP_HI}


_PARAM_LAYOUT = data.StructLayout({"bias": signed(ACC_BITS), "mult": signed(REG_BITS), "shift": unsigned(SHIFT_BITS)})


def _field(instr, name: str):
    spec = next(f for f in FORMATS[Op.MATMUL] if f.name == name)
    return instr[spec.lsb:spec.lsb + spec.width]


def _linear(function, dataflow: str, rows: int, cols: int) -> tuple[int, int, int, int]:
    """(constant, per m, per k, per n) of a tile formula of the contract, linear in m, k, n."""
    base = function(dataflow, 1, 1, 1, rows, cols)
    per = [function(dataflow, *(2 if i == d else 1 for i in range(3)), rows, cols) - base for d in range(3)]
    return (base - sum(per), *per)


def _evaluate(coefficients, m_, k_, n_):
    constant, per_m, per_k, per_n = coefficients
    return constant + per_m * m_ + per_k * k_ + per_n * n_


class _SlotStream:
    """Rows ``0 .. count-1`` of one staging slot onto a core stream: a read a cycle while the rows keep flowing,
    one row held when the core is not ready, so the one-cycle slot read never costs a beat."""

    def __init__(self, m: Module, port, stream, lanes: int, depth: int, name: str):
        self.m, self.port, self.stream = m, port, stream
        self.next_row = Signal(range(depth + 1), name=f"{name}_next")
        self.left = Signal(range(depth + 1), name=f"{name}_left")
        self.pair = Signal(name=f"{name}_pair")
        self.pending = Signal(name=f"{name}_pending")  # a read issued last cycle: its word is on port.data
        self.held = Signal(name=f"{name}_held")
        self.word = Signal(len(port.data), name=f"{name}_word")
        fire = stream.valid & stream.ready
        word = Mux(self.held, self.word, port.data)
        m.d.comb += [stream.valid.eq(self.held | self.pending), stream.payload.eq(word[:8 * lanes])]
        self.fire = fire
        self.issue = Signal(name=f"{name}_issue")
        m.d.comb += self.issue.eq((self.left != 0) & (~(self.held | self.pending) | fire))
        m.d.sync += [self.pending.eq(self.issue), self.held.eq((self.held | self.pending) & ~fire)]
        with m.If(self.pending & ~fire):
            m.d.sync += self.word.eq(port.data)

    def drive(self, start, pair, count):
        """``start``: read row 0 of ``pair`` now and stream ``count`` rows; else go on with the current slot."""
        m, port = self.m, self.port
        with m.If(start):
            m.d.comb += [port.en.eq(1), port.addr.eq(0), port.pair.eq(pair)]
            m.d.sync += [self.pending.eq(1), self.held.eq(0), self.next_row.eq(1), self.left.eq(count - 1),
                         self.pair.eq(pair)]
        with m.Else():
            m.d.comb += [port.en.eq(self.issue), port.addr.eq(self.next_row), port.pair.eq(self.pair)]
            with m.If(self.issue):
                m.d.sync += [self.next_row.eq(self.next_row + 1), self.left.eq(self.left - 1)]


class CoreUnit(wiring.Component):
    """MATMUL acc, out, slot, obuf, m, k, n, acc_row, n0 on ``GemmCore(params.core)`` (see module docstring).

    Ports: ``dispatch`` (``ports.dispatch_signature``), ``a_read`` / ``b_read`` (``slot_read_signature``, to the
    staging slots), ``param_write`` (``param_write_signature``), ``lut_write`` (``tail.lut_write_signature``),
    ``obuf_read`` (``obuf_read_signature``, from the staging unit), ``obuf_done`` (bit b: no MATMUL writing
    output buffer b in flight). Errors (sticky, the tile is not run): 4 a tile beyond the core's bounds, 5
    accumulator rows beyond ``acc_rows``, 8 (out = 1) channels beyond the parameter entries loaded (the last entry
    written + 1: LOADP writes 0 .. count-1 in order). ``accumulator`` and ``output_buffers`` are the memories'
    ``MemoryData`` (rows of ``cols`` lanes; output buffer b at rows ``b * stage_rows ..``) and, once elaborated,
    ``write_taps`` their write ports' signals, for benches.
    """

    def __init__(self, params: SystemParams):
        if not isinstance(params, SystemParams):
            raise HdlError(f"CoreUnit needs SystemParams, not {type(params).__name__}")
        if ACC_LATENCY < COMMAND_DELAY + 1:
            raise HdlError(f"ACC_LATENCY={ACC_LATENCY}: the core unit's accumulator write is visible "
                           f"{COMMAND_DELAY + 1} cycles after the core's last result")
        if ACC_LATENCY + OUTPUT_LATENCY < COMMAND_DELAY + 1 + REQUANT_LATENCY + TAIL_LATENCY:
            raise HdlError(f"ACC_LATENCY + OUTPUT_LATENCY = {ACC_LATENCY + OUTPUT_LATENCY}: the output path needs "
                           f"{COMMAND_DELAY + 1 + REQUANT_LATENCY + TAIL_LATENCY} cycles after the core's last result")
        self.params = params
        p = params
        self.banks = 1 << (p.cols - 1).bit_length()
        if p.param_entries % self.banks:
            raise HdlError(f"param_entries={p.param_entries} is not a multiple of the {self.banks} parameter banks")
        flow = p.dataflow
        self._tile = _linear(tile_timing.tile_cycles, flow, p.rows, p.cols)
        self._interval = _linear(tile_timing.issue_interval, flow, p.rows, p.cols)
        m_max, k_max, n_max = p.core.tile_max
        self.tile_max = (m_max, k_max, n_max)
        self.max_cycles = _evaluate(self._tile, m_max, k_max, n_max) + ACC_LATENCY + OUTPUT_LATENCY
        self.max_interval = _evaluate(self._interval, m_max, k_max, n_max)
        # Tile contexts live from the start until the tile's last output row; the next start comes at least
        # issue_interval(1, 1, 1) later, so this many contexts are enough (a power of two: pointers wrap).
        tail_end = max(_evaluate(self._tile, mm, 1, 1) - _evaluate(self._interval, mm, 1, 1) for mm in (1, m_max))
        life = COMMAND_DELAY + tail_end + REQUANT_LATENCY + TAIL_LATENCY
        needed = 1 + math.ceil(life / max(1, _evaluate(self._interval, 1, 1, 1)))
        self.contexts = 1 << max(1, (needed - 1).bit_length())
        self._ctx_layout = data.StructLayout({
            "acc": 1, "out": 1, "obuf": 1, "m": range(m_max + 1), "n": range(n_max + 1),
            "acc_row": range(p.acc_rows), "n0": 16, **{name: signed(REG_BITS) for name in TAIL_REGS},
        })
        self.accumulator = memory.MemoryData(shape=data.ArrayLayout(signed(ACC_BITS), p.cols), depth=p.acc_rows,
                                             init=[])
        self.output_buffers = memory.MemoryData(shape=data.ArrayLayout(signed(8), p.cols), depth=2 * p.stage_rows,
                                                init=[])
        super().__init__({
            "dispatch": In(ports.dispatch_signature()),
            "a_read": Out(slot_read_signature(p)),
            "b_read": Out(slot_read_signature(p)),
            "param_write": In(param_write_signature(p)),
            "lut_write": In(lut_write_signature(p.word_bytes)),
            "obuf_read": In(obuf_read_signature(p)),
            "obuf_done": Out(2, init=0b11),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        rows, cols, flow = p.rows, p.cols, p.dataflow
        m_max, k_max, n_max = self.tile_max
        dispatch = self.dispatch
        core = m.submodules.core = GemmCore(p.core)

        # -- start: decode, check, count (docs/isa.md MATMUL; errors as executor._check_tile / _matmul) --------
        instr = dispatch.instr
        f = {name: _field(instr, name) for name in ("acc", "out", "slot", "obuf", "m", "k", "n", "acc_row", "n0")}
        loaded = Signal(range(p.param_entries + 1))
        error, error_code = Signal(), Signal(ports.ERROR_CODE_BITS)
        ready_left = Signal(range(self.max_interval + 1))
        idle_left = Signal(range(self.max_cycles + 1))
        obuf_left = [Signal(range(self.max_cycles + 1), name=f"obuf{b}_left") for b in range(2)]
        m.d.comb += [dispatch.ready.eq(ready_left == 0), dispatch.idle.eq(idle_left == 0),
                     dispatch.error.eq(error), dispatch.error_code.eq(error_code),
                     self.obuf_done.eq(Cat(*(left == 0 for left in obuf_left)))]
        too_big = (f["m"] > m_max) | (f["k"] > k_max) | (f["n"] > n_max)
        beyond_acc = f["acc_row"] + f["m"] > p.acc_rows
        beyond_params = f["out"] & (f["n0"] + f["n"] > loaded)
        start = Signal()
        go = Signal()
        m.d.comb += [start.eq(dispatch.start & dispatch.ready & ~error),
                     go.eq(start & ~too_big & ~beyond_acc & ~beyond_params)]
        with m.If(start):
            with m.If(too_big):
                m.d.sync += [error.eq(1), error_code.eq(ERROR_TILE)]
            with m.Elif(beyond_acc):
                m.d.sync += [error.eq(1), error_code.eq(ERROR_ACC_ROWS)]
            with m.Elif(beyond_params):
                m.d.sync += [error.eq(1), error_code.eq(ERROR_PARAMS)]

        cycles = Signal(range(self.max_cycles + 1))
        interval = Signal(range(self.max_interval + 1))
        m.d.comb += [
            cycles.eq(_evaluate(self._tile, f["m"], f["k"], f["n"]) + ACC_LATENCY + Mux(f["out"], OUTPUT_LATENCY, 0)),
            interval.eq(_evaluate(self._interval, f["m"], f["k"], f["n"])),
        ]
        with m.If(ready_left != 0):
            m.d.sync += ready_left.eq(ready_left - 1)
        with m.If(idle_left != 0):
            m.d.sync += idle_left.eq(idle_left - 1)
        for b, left in enumerate(obuf_left):
            with m.If(go & f["out"] & (f["obuf"] == b)):
                m.d.sync += left.eq(cycles - 1)
            with m.Elif(left != 0):
                m.d.sync += left.eq(left - 1)
        with m.If(go):
            m.d.sync += ready_left.eq(interval - 1)
            with m.If(idle_left <= cycles):
                m.d.sync += idle_left.eq(cycles - 1)

        # -- tile contexts: written at the start, read as the tile's rows go through the output path ---------
        contexts = [Signal(self._ctx_layout, name=f"ctx{i}") for i in range(self.contexts)]
        ptr_bits = (self.contexts - 1).bit_length()
        write_ptr = Signal(ptr_bits)
        with m.If(go):
            m.d.sync += write_ptr.eq(write_ptr + 1)
            with m.Switch(write_ptr):
                for i, ctx in enumerate(contexts):
                    with m.Case(i):
                        m.d.sync += [getattr(ctx, name).eq(f[name]) for name in
                                     ("acc", "out", "obuf", "m", "n", "acc_row", "n0")]
                        m.d.sync += [getattr(ctx, name).eq(dispatch.regs[32 * int(reg):32 * int(reg) + 32])
                                     for name, reg in _TAIL_REG.items()]

        def pick(index, name):
            chosen = Signal(self._ctx_layout, name=name)
            with m.Switch(index):
                for i, ctx in enumerate(contexts):
                    with m.Case(i):
                        m.d.comb += chosen.eq(ctx)
            return chosen

        # -- the core's command and operand streams (docs/core-protocol.md, order of data) ---------------------
        cmd_valid = Signal()
        with m.If(go):
            m.d.sync += [cmd_valid.eq(1), core.cmd.payload.m.eq(f["m"]), core.cmd.payload.k.eq(f["k"]),
                         core.cmd.payload.n.eq(f["n"])]
        with m.Elif(core.cmd.ready):
            m.d.sync += cmd_valid.eq(0)
        m.d.comb += core.cmd.valid.eq(cmd_valid)
        a_stream = _SlotStream(m, self.a_read, core.acts, rows, p.stage_rows, "a")
        b_stream = _SlotStream(m, self.b_read, core.weights, cols, p.stage_rows, "b")
        a_stream.drive(go, f["slot"], f["m"] if flow == "ws" else f["k"])
        b_stream.drive(go, f["slot"], f["k"])

        # -- result rows: accumulate in the cycle a row leaves the core ---------------------------------------
        acc_mem = m.submodules.accumulator = memory.Memory(data=self.accumulator)
        acc_write = acc_mem.write_port(granularity=1)
        acc_read = acc_mem.read_port(transparent_for=(acc_write,))
        banks = self.banks
        bank_bits = (banks - 1).bit_length()
        param_banks = []
        for b in range(banks):
            mem = memory.Memory(shape=_PARAM_LAYOUT, depth=p.param_entries // banks,
                                init=[{"bias": 0, "mult": 0, "shift": 1}] * (p.param_entries // banks))
            m.submodules[f"params{b}"] = mem
            write, read = mem.write_port(), mem.read_port()
            pw = self.param_write
            m.d.comb += [write.en.eq(pw.en & (pw.index[:bank_bits] == b if bank_bits else 1)),
                         write.addr.eq(pw.index[bank_bits:]),
                         write.data.bias.eq(pw.bias), write.data.mult.eq(pw.mult), write.data.shift.eq(pw.shift),
                         read.en.eq(1)]
            param_banks.append(read)
        with m.If(self.param_write.en):
            m.d.sync += loaded.eq(self.param_write.index + 1)

        head = Signal(ptr_bits)
        row_seen = Signal(range(m_max + 1))
        tile = pick(head, "head_ctx")
        following = pick((head + 1)[:ptr_bits], "next_ctx")
        arriving = Signal()
        last_row = Signal()
        m.d.comb += [arriving.eq(core.results.valid), core.results.ready.eq(1),
                     last_row.eq(row_seen == tile.m - 1)]
        with m.If(arriving):
            with m.If(last_row):
                m.d.sync += [head.eq(head + 1), row_seen.eq(0)]
            with m.Else():
                m.d.sync += row_seen.eq(row_seen + 1)
        # The row arriving next (read now, its data there the cycle it arrives): this one's successor.
        next_acc_row = Signal(range(p.acc_rows + m_max + 1))
        next_n0 = Signal(16)
        with m.If(arriving & last_row):
            m.d.comb += [next_acc_row.eq(following.acc_row), next_n0.eq(following.n0)]
        with m.Else():
            m.d.comb += [next_acc_row.eq(tile.acc_row + row_seen + arriving), next_n0.eq(tile.n0)]
        m.d.comb += [acc_read.addr.eq(next_acc_row), acc_read.en.eq(1)]
        for b, read in enumerate(param_banks):  # channel n0 + ((b - n0) mod P) is in bank b
            offset = (b - next_n0)[:bank_bits] if bank_bits else 0
            m.d.comb += read.addr.eq((next_n0 + offset) >> bank_bits)

        rq = m.submodules.requantize = Requantize(cols, ACC_BITS)
        m.d.comb += [rq.valid.eq(arriving & tile.out), acc_write.addr.eq(tile.acc_row + row_seen)]
        for j in range(cols):
            c = core.results.payload[j]
            result = c.as_signed()[:ACC_BITS].as_signed() if len(c) > ACC_BITS else c
            total = Signal(signed(ACC_BITS), name=f"acc{j}")  # ACC = C or ACC + C, int32 lanes (wrapping)
            m.d.comb += total.eq(Mux(tile.acc, acc_read.data[j] + result, result))
            m.d.comb += [acc_write.data[j].eq(total), acc_write.en[j].eq(arriving & (j < tile.n))]
            lane_bank = (tile.n0 + j)[:bank_bits] if bank_bits else 0
            entry = Signal(_PARAM_LAYOUT, name=f"param{j}")
            with m.Switch(lane_bank):
                for b, read in enumerate(param_banks):
                    with m.Case(b):
                        m.d.comb += entry.eq(read.data)
            m.d.comb += [rq.x[0][j].eq((total + entry.bias)[:ACC_BITS]), rq.mult[0][j].eq(entry.mult),
                         rq.shift[j].eq(entry.shift)]

        # -- the output path: rq, the tail, the output buffer (each row's context travels with it) ------------
        depth = REQUANT_LATENCY + TAIL_LATENCY
        stage_ctx = [Signal(ptr_bits, name=f"stage{s}_ctx") for s in range(depth + 1)]
        stage_row = [Signal(range(m_max + 1), name=f"stage{s}_row") for s in range(depth + 1)]
        m.d.comb += [stage_ctx[0].eq(head), stage_row[0].eq(row_seen)]
        for s in range(depth):
            m.d.sync += [stage_ctx[s + 1].eq(stage_ctx[s]), stage_row[s + 1].eq(stage_row[s])]
        tail = m.submodules.tail = OutputTail(cols, p.word_bytes)
        at_tail = pick(stage_ctx[REQUANT_LATENCY], "tail_ctx")
        m.d.comb += [tail.valid.eq(rq.out_valid), tail.v.eq(rq.v)]
        m.d.comb += [getattr(tail, name).eq(getattr(at_tail, name)) for name in TAIL_REGS]
        m.d.comb += [tail.lut_write.en.eq(self.lut_write.en), tail.lut_write.index.eq(self.lut_write.index),
                     tail.lut_write.data.eq(self.lut_write.data)]

        obuf_mem = m.submodules.output_buffers = memory.Memory(data=self.output_buffers)
        obuf_write = obuf_mem.write_port(granularity=1)
        obuf_read = obuf_mem.read_port()
        done = pick(stage_ctx[depth], "done_ctx")
        m.d.comb += [obuf_write.addr.eq(done.obuf * p.stage_rows + stage_row[depth]), obuf_write.data.eq(tail.y)]
        for j in range(cols):
            m.d.comb += obuf_write.en[j].eq(tail.out_valid & (j < done.n))
        m.d.comb += [obuf_read.addr.eq(self.obuf_read.buf * p.stage_rows + self.obuf_read.addr),
                     obuf_read.en.eq(self.obuf_read.en), self.obuf_read.data.eq(obuf_read.data)]

        # for benches: the accumulator and output-buffer writes as they happen
        self.write_taps = {"acc_en": acc_write.en, "acc_addr": acc_write.addr, "acc_data": acc_write.data,
                      "obuf_en": obuf_write.en, "obuf_addr": obuf_write.addr, "obuf_data": obuf_write.data}
        return m
