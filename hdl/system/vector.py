"""The vector unit: VACT, VADD and POOL on the staging side of the GLB (docs/isa.md, "What each instruction does";
docs/system-rtl.md). It shares the staging unit's dispatch port and GLB ports (the top muxes them: the staging
unit is idle while it runs; every output of a port is 0 in a cycle the unit does not access that bank, so an OR
of the two units' ports is such a mux) and keeps its own copy of the table, written through ``lut_write``.

**Setup.** An instruction taken in cycle t (``dispatch.start``) is captured on that edge: its instruction word and
the registers it uses. Cycles t+1 .. t+3 make POOL's sizes from them, one level of products a cycle; cycle t+4
checks them and registers the result; its slots begin in cycle t + ``VECTOR_SETUP_CYCLES`` (docs/isa.md, "The vector
ops' setup"), so nothing is combinational from the dispatch port.

**Slots.** An instruction's GLB accesses fill ``T`` slots, the cycles s .. s+T-1 from its first slot s (the first
reads are driven in cycle s itself, from registers). The multipliers
(``PassRequantize``) take one GLB word of lanes a cycle, one product per lane (a pass): VACT one pass a word, VADD
two (a, then b), an average POOL's window two (the int32 sum's halves; a window without taps one). VACT/VADD read
groups of ``banks`` consecutive words in one cycle (VADD: a, then b) and pass their words one a cycle from the next
cycle; a group takes max(passes + 1, passes x banks) slots, so it has slots without reads for the writes, and the
last ends the cycle before its last pass (T = ``system_timing.vector_slots``). POOL per output word (image, pixel,
then channel word) reads its window's taps inside the image packed by the bank rule, then a write slot
(T = ``system_timing.pool_cycles``); its passes run from that slot. Results leave the pipeline (products, sum and
shift, ``OutputTail``: 1 + REQUANT_LATENCY + TAIL_LATENCY cycles behind the last slot) in order into a short queue,
and each slot without reads (and every cycle of the drain after the last slot) writes the queue's head. The drain
lasts VECTOR_LATENCY cycles, so ``idle`` rises at s + T + VECTOR_LATENCY (``system_timing.instruction_cycles``),
when every result is in the GLB.

**Faults**, found in the last setup cycle and reported from cycle t + ``VECTOR_SETUP_CYCLES`` on, when the unit is
ready again (no GLB access is made):
error 2 when a source or destination range leaves the GLB (as ``executor.Machine``), or an address or POOL's
``IN_CP`` is not a whole number of words (the unit moves whole words; the executor has no such case); error 7 for
``VSHIFT`` outside 1..62 (VACT, VADD, average POOL), in the executor's order (sources, shift, destination).

Values are exact against ``executor.Machine``: VACT/VADD for every register value (``x M - ZP_IN M`` modulo
2^64, the zero point's product made once in the start cycle), an average POOL while its window sums of
``x - ZP_IN`` fit int32, which every int8 zero point's do.
A destination overlapping its source at a higher address is not supported (VACT/VADD write a group a few
groups behind its read).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.contract.isa import FORMATS, Op, Reg
from codesign.contract.system_timing import VECTOR_LATENCY, VECTOR_OPS, VECTOR_SETUP_CYCLES
from codesign.errors import HdlError
from hdl.system import ports
from hdl.system.params import SystemParams
from hdl.system.ports import lut_write_signature
from hdl.system.tail import HALF_BITS, PASS_X_BITS, REG_BITS, SHIFT_BITS, TAIL_REGS, OutputTail, PassRequantize

__all__ = ["VectorUnit", "PoolWalk", "VECTOR_OPS", "QUEUE_DEPTH", "ERROR_GLB_RANGE", "ERROR_SHIFT"]

# results waiting for a write slot: a POOL word's arrives VECTOR_LATENCY cycles after its write slot and is written
# by the slot that many words later (or in the drain), so at most that many wait (VACT/VADD: at most one)
QUEUE_DEPTH = VECTOR_LATENCY
ERROR_GLB_RANGE = 2  # executor.ERROR_CODES["glb_range"]
ERROR_SHIFT = 7  # executor.ERROR_CODES["register"]
GEOMETRY_BITS = 34  # signed window coordinates (oh * STRIDE_H - PAD_H, ...)
IN_BITS = 32  # Requantize inputs: x - ZP_IN, and the window sums (int32)
_POOL_REGS = (Reg.BATCH, Reg.IN_H, Reg.IN_W, Reg.IN_CP, Reg.KH, Reg.KW, Reg.STRIDE_H, Reg.STRIDE_W, Reg.PAD_H,
              Reg.PAD_W, Reg.OUT_H, Reg.OUT_W)
_TAIL_REG = {"lut_en": Reg.LUT_EN, "zp_pre": Reg.ZP_PRE, "pre_lo": Reg.PRE_LO, "pre_hi": Reg.PRE_HI,
             "zp_out": Reg.ZP_OUT, "clamp_lo": Reg.CLAMP_LO, "clamp_hi": Reg.CLAMP_HI}
_USED_REGS = (Reg.ZP_IN, Reg.ZP_IN2, Reg.VMULT1, Reg.VMULT2, Reg.VSHIFT, *_TAIL_REG.values(), *_POOL_REGS)


def _field(instr, op: Op, name: str):
    """Bits of field ``name`` of ``op`` in a 128-bit instruction (codesign.contract.isa.FORMATS)."""
    for item in FORMATS[op]:
        if item.name == name:
            return instr[item.lsb:item.lsb + item.width]
    raise HdlError(f"{op.name} has no field {name}")


def _reg(regs, reg: Reg):
    """Configuration register ``reg`` (32 bits, unsigned view) of the dispatch port's ``regs``."""
    return regs[32 * int(reg):32 * int(reg) + 32]


class _Now:
    """Values an instruction captures when it is taken, usable in that same cycle: ``now(name, value)`` returns
    (``now``, ``held``): ``now`` is ``value`` in the start cycle and ``held`` in every later cycle; ``held``
    captures ``value`` when taken (a later ``m.d.sync += held.eq(...)`` overrides that, last assignment wins)."""

    def __init__(self, m: Module, take):
        self.m, self.take = m, take

    def __call__(self, name: str, value, shape=None):
        shape = shape if shape is not None else value.shape()
        held = Signal(shape, name=f"{name}_held")
        now = Signal(shape, name=name)
        self.m.d.comb += now.eq(Mux(self.take, value, held))
        with self.m.If(self.take):
            self.m.d.sync += held.eq(value)
        return now, held


def _min(a, b):
    return Mux(a < b, a, b)


def _max(a, b):
    return Mux(a > b, a, b)


def _product(a, b, width: int | None = None):
    """``a x b`` (unsigned) modulo 2^width (default: exact), as shifts and adds: the sizes and addresses of a
    POOL stay in logic so the DSP blocks are left to the requantizers (docs/system-rtl.md, "Resources")."""
    width = len(a) + len(b) if width is None else width
    terms = [Mux(b[i], a << i, 0)[:width] for i in range(min(len(b), width))]
    if not terms:
        return Const(0, width)
    while len(terms) > 1:  # a balanced tree of adders: log2 of the terms deep, not a chain of them
        terms = [(terms[i] + terms[i + 1])[:width] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


class PoolWalk(wiring.Component):
    """POOL's read schedule (docs/isa.md, "Timing": POOL): output words in order (image, output row, output column,
    channel word); per word the taps of its window inside the image, row-major, packed into cycles by the bank
    rule (a cycle takes the next tap unless its bank is already read in that cycle), then one slot without reads.

    Ports: In ``begin`` (the start cycle; every geometry input is used combinationally in it and must hold its
    value while the walk runs) and the geometry: ``src`` (word address), ``in_h``, ``in_w``, ``kh``, ``kw``,
    ``stride_h``, ``stride_w``, ``pad_h``, ``pad_w``, ``out_h``, ``out_w``, ``images``, ``cpw`` (words per pixel),
    ``row_words`` (in_w x cpw), ``image_words`` (in_h x row_words), ``stride_w_words`` / ``pad_w_words``
    (stride_w, pad_w x cpw) and ``stride_h_words`` / ``pad_h_words`` (x row_words), all modulo the pointer width:
    the walk steps its pointers by these, with no product of its own. Out, for the
    current cycle: ``active`` (a slot), ``read`` (a read slot; ``en``/``addr`` per bank), ``end`` (the current
    word's last read), ``gap`` (its slot without reads), ``empty`` (a gap of a word with no tap inside),
    ``last`` (the final slot).
    """

    def __init__(self, params: SystemParams):
        if not isinstance(params, SystemParams):
            raise HdlError(f"PoolWalk needs SystemParams, not {type(params).__name__}")
        self.params = params
        self.banks = params.glb_banks
        self.bank_bits = (self.banks - 1).bit_length()
        self.pointer_bits = max(1, (params.glb_words - 1).bit_length()) + 1
        bank_addr = ports.glb_port_signature(params).members["addr"].shape
        geometry = {name: In(REG_BITS) for name in (
            "in_h", "in_w", "kh", "kw", "stride_h", "stride_w", "pad_h", "pad_w", "out_h", "out_w", "images", "cpw")}
        super().__init__({
            "begin": In(1),
            "src": In(self.pointer_bits),
            **geometry,
            "row_words": In(self.pointer_bits),
            "image_words": In(self.pointer_bits),
            **{name: In(self.pointer_bits) for name in (
                "stride_w_words", "pad_w_words", "stride_h_words", "pad_h_words")},
            "active": Out(1), "read": Out(1), "end": Out(1), "gap": Out(1), "empty": Out(1), "last": Out(1),
            "en": Out(self.banks),
            "addr": Out(bank_addr).array(self.banks),
        })

    def _window(self, m: Module, ih_s, iw_s, row_s, col_s, image_base, tag: str):
        """The window of the output pixel whose top-left tap is (ih_s, iw_s): its taps inside the image are rows
        ih_lo .. ih_hi-1, columns iw_lo .. iw_hi-1; ``pointer`` is the word of (ih_lo, iw_lo), channel word 0,
        from ``row_s`` (the word of row ih_s, column 0: image_base + ih_s row_words) and ``col_s`` (iw_s cpw)."""
        g, p = signed(GEOMETRY_BITS), self.pointer_bits
        out = {name: Signal(g, name=f"{name}_{tag}") for name in ("ih_lo", "ih_hi", "iw_lo", "iw_hi")}
        pointer = Signal(p, name=f"pointer_{tag}")
        empty = Signal(name=f"empty_{tag}")
        m.d.comb += [
            out["ih_lo"].eq(_max(ih_s, 0)),
            out["ih_hi"].eq(_min(ih_s + self.kh, self.in_h)),
            out["iw_lo"].eq(_max(iw_s, 0)),
            out["iw_hi"].eq(_min(iw_s + self.kw, self.in_w)),
            empty.eq((out["ih_lo"] >= out["ih_hi"]) | (out["iw_lo"] >= out["iw_hi"])),
            pointer.eq(Mux(ih_s < 0, image_base, row_s) + Mux(iw_s < 0, 0, col_s)),
        ]
        return out, pointer, empty

    def elaborate(self, platform):
        m = Module()
        g, p, banks = signed(GEOMETRY_BITS), self.pointer_bits, self.banks
        now = _Now(m, self.begin)
        held = {}

        def state(name, value, shape):
            signal, held[name] = now(name, value, shape)
            return signal

        def hold(name, value):
            m.d.sync += held[name].eq(value)

        # -- the walk's state as it stands this cycle (its start values in the begin cycle) -----------------
        ih_s0, iw_s0 = Signal(g), Signal(g)
        row_s0, col_s0 = Signal(p), Signal(p)  # the words of row -pad_h (image 0) and of column -pad_w
        m.d.comb += [ih_s0.eq(-self.pad_h), iw_s0.eq(-self.pad_w), row_s0.eq(self.src - self.pad_h_words),
                     col_s0.eq(-self.pad_w_words)]
        first, first_pointer, first_empty = self._window(m, ih_s0, iw_s0, row_s0, col_s0, self.src, "first")
        running = state("running", (self.out_h != 0) & (self.out_w != 0), unsigned(1))
        reading = state("reading", ~first_empty, unsigned(1))
        n, oh, ow, c = (state(name, Const(0, 32), unsigned(32)) for name in ("n", "oh", "ow", "c"))
        ih_s = state("ih_s", ih_s0, g)
        iw_s = state("iw_s", iw_s0, g)
        image_base = state("image_base", self.src, unsigned(p))
        row_s = state("row_s", row_s0, unsigned(p))
        col_s = state("col_s", col_s0, unsigned(p))
        bounds = {name: state(name, first[name], g) for name in ("ih_lo", "ih_hi", "iw_lo", "iw_hi")}
        pixel = state("pixel", first_pointer, unsigned(p))
        empty = state("word_empty", first_empty, unsigned(1))
        # the taps left in the current row and the rows left in the window (from the current tap), exact in the
        # state; a read cycle looks at most banks taps ahead, so the bank rule's chain runs on copies saturated at
        # banks + 1 (small counts, no wide compares in the chain)
        span = banks + 1
        count = unsigned(GEOMETRY_BITS)

        def extent(value, name):
            out = Signal(count, name=name)
            m.d.comb += out.eq(Mux(value <= 0, 0, value))
            return out

        def small(value, name):
            out = Signal(range(span + 1), name=name)
            m.d.comb += out.eq(Mux(value > span, span, value))
            return out

        first_width = extent(first["iw_hi"] - first["iw_lo"], "width_first")
        first_height = extent(first["ih_hi"] - first["ih_lo"], "height_first")
        cols = state("cols", first_width, count)
        rows = state("rows", first_height, count)
        width = state("width", first_width, count)
        height = state("height", first_height, count)
        ptr = state("ptr", first_pointer, unsigned(p))
        row = state("row", first_pointer, unsigned(p))
        m.d.comb += [self.active.eq(running), self.read.eq(running & reading),
                     self.gap.eq(running & ~reading), self.empty.eq(running & ~reading & empty)]

        # -- a read cycle: the next taps of the window, row-major, up to one per bank (the bank rule) ---------
        width_s = small(width, "width_s")
        cand = [(cols, rows, ptr, row)]  # the exact state of each candidate tap, for the next cycle's state
        cand_s = [(small(cols, "cols_s0"), small(rows, "rows_s0"))]  # its saturated copy, for the decisions
        for k in range(banks):
            cols_k, rows_k, ptr_k, row_k = cand[-1]
            cols_sk, rows_sk = cand_s[-1]
            along = Signal(name=f"along{k}")
            m.d.comb += along.eq(cols_sk > 1)  # the next tap is in this row
            nxt = (Signal(count, name=f"cols{k + 1}"), Signal(count, name=f"rows{k + 1}"),
                   Signal(p, name=f"ptr{k + 1}"), Signal(p, name=f"row{k + 1}"))
            nxt_s = (Signal(range(span + 1), name=f"cols_s{k + 1}"), Signal(range(span + 1), name=f"rows_s{k + 1}"))
            m.d.comb += [
                nxt[0].eq(Mux(along, cols_k - 1, width)),
                nxt[1].eq(Mux(along, rows_k, rows_k - 1)),
                nxt[2].eq(Mux(along, ptr_k + self.cpw[:p], row_k + self.row_words)),
                nxt[3].eq(Mux(along, row_k, row_k + self.row_words)),
                nxt_s[0].eq(Mux(along, cols_sk - 1, width_s)),
                nxt_s[1].eq(Mux(along, rows_sk, rows_sk - 1)),
            ]
            cand.append(nxt)
            cand_s.append(nxt_s)
        inside = Signal(banks + 1)
        # one signal per tap (a priority chain: a single vector would look like a loop to Verilator's UNOPTFLAT)
        taken = [Signal(name=f"taken_{k}") for k in range(banks)]
        m.d.comb += [inside[k].eq(cand_s[k][1] != 0) for k in range(banks + 1)]
        bank_of = [cand[k][2][:self.bank_bits] if self.bank_bits else Const(0, 1) for k in range(banks + 1)]
        for k in range(banks):
            clash = Cat(*(bank_of[k] == bank_of[j] for j in range(k))).any() if k else Const(0, 1)
            before = taken[k - 1] if k else (running & reading)
            m.d.comb += taken[k].eq(before & inside[k] & ~clash)
            for b in range(banks):
                with m.If(taken[k] & (bank_of[k] == b)):
                    m.d.comb += [self.en[b].eq(1), self.addr[b].eq(cand[k][2][self.bank_bits:])]
        # where the walk goes on: the first tap not taken (none inside: the word's reads are done)
        stop = Signal(range(banks + 1))
        m.d.comb += stop.eq(banks)
        for k in reversed(range(banks)):
            with m.If(~taken[k]):
                m.d.comb += stop.eq(k)
        more = Signal()
        m.d.comb += [more.eq(inside.bit_select(stop, 1)), self.end.eq(running & reading & ~more)]

        # -- the next word, in a gap: channel word, then output column, row, image -------------------------
        last_c = c + 1 >= self.cpw
        last_ow = ow + 1 >= self.out_w
        last_oh = oh + 1 >= self.out_h
        last_n = n + 1 >= self.images
        m.d.comb += self.last.eq(running & ~reading & last_c & last_ow & last_oh & last_n)
        n2, oh2, ow2, c2 = (Signal(32, name=f"{name}_next") for name in ("n", "oh", "ow", "c"))
        ih_s2, iw_s2 = Signal(g, name="ih_s_next"), Signal(g, name="iw_s_next")
        image_base2 = Signal(p, name="image_base_next")
        row_s2, col_s2 = Signal(p, name="row_s_next"), Signal(p, name="col_s_next")
        m.d.comb += [n2.eq(n), oh2.eq(oh), ow2.eq(ow), c2.eq(c + 1), ih_s2.eq(ih_s), iw_s2.eq(iw_s),
                     image_base2.eq(image_base), row_s2.eq(row_s), col_s2.eq(col_s)]
        with m.If(last_c):
            m.d.comb += [c2.eq(0), ow2.eq(ow + 1), iw_s2.eq(iw_s + self.stride_w),
                         col_s2.eq(col_s + self.stride_w_words)]
            with m.If(last_ow):
                m.d.comb += [ow2.eq(0), iw_s2.eq(iw_s0), col_s2.eq(col_s0), oh2.eq(oh + 1),
                             ih_s2.eq(ih_s + self.stride_h), row_s2.eq(row_s + self.stride_h_words)]
                with m.If(last_oh):
                    m.d.comb += [oh2.eq(0), ih_s2.eq(ih_s0), n2.eq(n + 1),
                                 image_base2.eq(image_base + self.image_words),
                                 row_s2.eq(image_base + self.image_words - self.pad_h_words)]
        window, pointer2, empty2 = self._window(m, ih_s2, iw_s2, row_s2, col_s2, image_base2, "next")
        start2 = Signal(p)
        m.d.comb += start2.eq(Mux(last_c, pointer2, pixel) + c2[:p])
        next_width = extent(window["iw_hi"] - window["iw_lo"], "width_next")
        next_height = extent(window["ih_hi"] - window["ih_lo"], "height_next")

        with m.If(running & reading):
            for name, i in (("cols", 0), ("rows", 1), ("ptr", 2), ("row", 3)):
                chosen = cand[0][i]
                for k in range(1, banks + 1):
                    chosen = Mux(stop == k, cand[k][i], chosen)
                hold(name, chosen)
            with m.If(~more):
                hold("reading", 0)
        with m.If(running & ~reading):
            with m.If(self.last):
                hold("running", 0)
            with m.If(last_c):  # a new pixel: its window
                hold("pixel", pointer2)
                hold("word_empty", empty2)
                for name in bounds:
                    hold(name, window[name])
            word_empty = Mux(last_c, empty2, empty)
            for name, value in (("n", n2), ("oh", oh2), ("ow", ow2), ("c", c2), ("ih_s", ih_s2), ("iw_s", iw_s2),
                                ("image_base", image_base2), ("row_s", row_s2), ("col_s", col_s2),
                                ("ptr", start2), ("row", start2),
                                ("reading", ~word_empty),
                                ("cols", Mux(last_c, next_width, width)),
                                ("width", Mux(last_c, next_width, width)),
                                ("rows", Mux(last_c, next_height, height)),
                                ("height", Mux(last_c, next_height, height))):
                hold(name, value)
        return m


class VectorUnit(wiring.Component):
    """VACT, VADD and POOL (see module docstring) on ``params.glb_banks`` GLB ports of the staging side.

    Parameters: ``params``, the ``SystemParams`` to build. Ports: ``dispatch`` (``In(ports.dispatch_signature())``;
    it starts only on VACT, VADD and POOL), ``glb`` (``Out(ports.glb_port_signature(params))`` per bank; every
    output is 0 in a cycle without an access), ``lut_write`` (the table's words, docs/system-rtl.md). Raises
    HdlError if the contract's VECTOR_LATENCY is shorter than the pipeline behind the last slot.
    """

    def __init__(self, params: SystemParams):
        if not isinstance(params, SystemParams):
            raise HdlError(f"VectorUnit needs SystemParams, not {type(params).__name__}")
        pipeline = 1 + PassRequantize.LATENCY + OutputTail.LATENCY  # the last pass, its products and the tail
        if VECTOR_LATENCY < pipeline:
            raise HdlError(f"VECTOR_LATENCY={VECTOR_LATENCY}: the vector pipeline needs {pipeline} cycles behind "
                           f"its last slot")
        self.params = params
        self.banks = params.glb_banks
        self.bank_bits = (self.banks - 1).bit_length()
        self.word_bytes = params.word_bytes
        self.lanes = self.banks * self.word_bytes  # a group of words, read or written in one cycle
        self.multiplier_lanes = max(self.word_bytes, 4)  # one word a pass; four for the start cycle's products
        super().__init__({
            "dispatch": In(ports.dispatch_signature()),
            "glb": Out(ports.glb_port_signature(params)).array(self.banks),
            "lut_write": In(lut_write_signature(params.word_bytes)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        banks, bb, word, lanes = self.banks, self.bank_bits, self.word_bytes, self.lanes
        word_bits = p.glb_word_bits
        m.submodules.walk = walk = PoolWalk(p)
        pb = walk.pointer_bits
        byte_bits = (word - 1).bit_length()
        cap = p.glb_words + 1  # a size of more words than the GLB holds: saturated here (an error anyway)

        # -- the setup (VECTOR_SETUP_CYCLES): the instruction and the registers it uses are captured when it is
        # taken (``accept``, cycle t); POOL's sizes are made from them one level of products a cycle; the checks
        # run in cycle t + S - 1 and are registered; the slots begin in cycle t + S (``take``), from registers only
        busy = Signal()
        m.d.comb += [self.dispatch.ready.eq(~busy), self.dispatch.idle.eq(~busy)]
        accept = Signal()
        m.d.comb += accept.eq(self.dispatch.start & ~busy
                              & Cat(*(self.dispatch.instr[:8] == int(op) for op in VECTOR_OPS)).any())
        instr = Signal(ports.INSTRUCTION_BITS)
        # captured: constant from cycle t + 1 to the next accept
        reg = {r: Signal(32, name=f"{r.name.lower()}_held") for r in _USED_REGS}
        with m.If(accept):
            m.d.sync += instr.eq(self.dispatch.instr)
            m.d.sync += [reg[r].eq(_reg(self.dispatch.regs, r)) for r in _USED_REGS]
        setup = Signal(range(VECTOR_SETUP_CYCLES + 1))
        with m.If(accept):
            m.d.sync += setup.eq(1)
        with m.Elif((setup != 0) & (setup != VECTOR_SETUP_CYCLES)):
            m.d.sync += setup.eq(setup + 1)
        with m.Elif(setup == VECTOR_SETUP_CYCLES):
            m.d.sync += setup.eq(0)
        checking = Signal()
        take = Signal()
        m.d.comb += [checking.eq(setup == VECTOR_SETUP_CYCLES - 1), take.eq(setup == VECTOR_SETUP_CYCLES)]
        opcode = instr[:8]
        now = _Now(m, take)

        def config(name, value, shape=None):
            return now(name, value, shape)[0]

        # -- what the instruction captures ---------------------------------------------------------------
        is_vadd_in, is_pool_in = opcode == int(Op.VADD), opcode == int(Op.POOL)
        src_in = Mux(is_pool_in, _field(instr, Op.POOL, "src"), _field(instr, Op.VACT, "src"))
        dst_in = Mux(is_pool_in, _field(instr, Op.POOL, "dst"),
                     Mux(is_vadd_in, _field(instr, Op.VADD, "dst"), _field(instr, Op.VACT, "dst")))
        src2_in = _field(instr, Op.VADD, "src2")
        words_in = Mux(is_vadd_in, _field(instr, Op.VADD, "words"), _field(instr, Op.VACT, "words"))
        is_vadd = config("is_vadd", is_vadd_in, unsigned(1))
        is_pool = config("is_pool", is_pool_in, unsigned(1))
        average = config("average", is_pool_in & _field(instr, Op.POOL, "mode")[0], unsigned(1))
        src = config("src", src_in[byte_bits:], unsigned(24 - byte_bits))
        src2 = config("src2", src2_in[byte_bits:], unsigned(24 - byte_bits))

        # -- POOL's sizes, one level of products a cycle from the captured registers (setup cycles 1..3): the
        # walk's pitches modulo the pointer width, the range checks' sizes saturated at ``cap`` words -----------
        def staged(name, value, shape):
            out = Signal(shape, name=name)
            m.d.sync += out.eq(value)
            return out

        def sat(value, name):
            out = Signal(range(cap + 1), name=name)
            m.d.comb += out.eq(Mux(value > cap, cap, value))
            return out

        cp = reg[Reg.IN_CP]
        cpw = Signal(32)
        m.d.comb += cpw.eq(Mux(cp[byte_bits:] == 0, 1, cp[byte_bits:]))  # system_timing: max(1, IN_CP // word)
        # level 1 (from the registers)
        row_words = staged("row_words", _product(reg[Reg.IN_W][:pb], cpw[:pb], pb), unsigned(pb))
        stride_w_words = staged("stride_w_words", _product(reg[Reg.STRIDE_W][:pb], cpw[:pb], pb), unsigned(pb))
        pad_w_words = staged("pad_w_words", _product(reg[Reg.PAD_W][:pb], cpw[:pb], pb), unsigned(pb))
        cpw_s = sat(cpw, "cpw_s")
        in_row = staged("in_row_s", sat(_product(sat(reg[Reg.IN_W], "in_w_s"), cpw_s), "in_row_c"), range(cap + 1))
        out_row = staged("out_row_s", sat(_product(sat(reg[Reg.OUT_W], "out_w_s"), cpw_s), "out_row_c"),
                         range(cap + 1))
        batch_s = staged("batch_s", sat(reg[Reg.BATCH], "batch_c"), range(cap + 1))
        # level 2
        image_words = staged("image_words", _product(reg[Reg.IN_H][:pb], row_words, pb), unsigned(pb))
        stride_h_words = staged("stride_h_words", _product(reg[Reg.STRIDE_H][:pb], row_words, pb), unsigned(pb))
        pad_h_words = staged("pad_h_words", _product(reg[Reg.PAD_H][:pb], row_words, pb), unsigned(pb))
        in_image = staged("in_image_s", sat(_product(sat(reg[Reg.IN_H], "in_h_s"), in_row), "in_image_c"),
                          range(cap + 1))
        out_image = staged("out_image_s", sat(_product(sat(reg[Reg.OUT_H], "out_h_s"), out_row), "out_image_c"),
                           range(cap + 1))
        # level 3
        in_size = staged("in_size_s", sat(_product(batch_s, in_image), "in_size_c"), range(cap + 1))
        out_size = staged("out_size_s", sat(_product(batch_s, out_image), "out_size_c"), range(cap + 1))
        no_pool_data = (cp == 0) | (reg[Reg.BATCH] == 0)  # the executor moves no bytes; the timing still walks

        # -- faults, checked in the last setup cycle and registered (executor order: sources, shift, destination)
        def outside(address_bytes, size_words):
            return (address_bytes[:byte_bits] != 0) | (address_bytes[byte_bits:] + size_words > p.glb_words)

        pool_in_words = Mux(cp == 0, 0, in_size)
        pool_out_words = Mux(cp == 0, 0, out_size)
        bad_source = Mux(is_pool_in, outside(src_in, pool_in_words) | (cp[:byte_bits] != 0),
                         outside(src_in, words_in) | (is_vadd_in & outside(src2_in, words_in)))
        shift = reg[Reg.VSHIFT]
        bad_shift = (~is_pool_in | _field(instr, Op.POOL, "mode")[0]) & ((shift < 1) | (shift > 62))
        bad_dest = outside(dst_in, Mux(is_pool_in, pool_out_words, words_in))
        found = Signal()
        code = Signal(ports.ERROR_CODE_BITS)
        with m.If(bad_source):
            m.d.comb += [found.eq(1), code.eq(ERROR_GLB_RANGE)]
        with m.Elif(bad_shift):
            m.d.comb += [found.eq(1), code.eq(ERROR_SHIFT)]
        with m.Elif(bad_dest):
            m.d.comb += [found.eq(1), code.eq(ERROR_GLB_RANGE)]
        fault = Signal()
        with m.If(checking):
            m.d.sync += fault.eq(found)
            with m.If(found):
                m.d.sync += busy.eq(0)  # ready (and idle) again with the error, in cycle t + S
            with m.If(found & ~self.dispatch.error):
                m.d.sync += [self.dispatch.error.eq(1), self.dispatch.error_code.eq(code)]
        run = Signal()
        m.d.comb += run.eq(take & ~fault)

        # -- the unit's phases: slots, then the drain of VECTOR_LATENCY cycles --------------------------------
        draining = Signal()
        drain = Signal(range(VECTOR_LATENCY + 1))
        in_slots = Signal()  # this cycle is one of the instruction's slots
        last_slot = Signal()
        slots_held = Signal()

        # -- VACT / VADD: groups of ``banks`` consecutive words, one pass a cycle through the multipliers --------
        # (docs/isa.md, "Timing"; system_timing.vector_slots). Phase 0 of a group reads its a words (VADD: phase 1
        # its b words); phase q < passes x n (n: the group's words) schedules pass q for the next cycle: VACT word
        # q, VADD word q // 2 with a (q even) or b (q odd). A group lasts max(passes + 1, passes x banks) phases,
        # so it has a slot without reads for the writes; the last group ends with its last scheduled pass.
        period = Mux(is_vadd, max(3, 2 * banks), max(2, banks))
        phase_bits = max(3, 2 * banks).bit_length()
        phase, phase_held = now("phase", Const(0, phase_bits), unsigned(phase_bits))
        remaining, remaining_held = now("remaining", words_in, unsigned(25))
        read_a, read_a_held = now("read_a", src_in[byte_bits:][:pb], unsigned(pb))
        read_b, read_b_held = now("read_b", src2_in[byte_bits:][:pb], unsigned(pb))
        vector = in_slots & ~is_pool
        reads_a = vector & (phase == 0)
        reads_b = vector & is_vadd & (phase == 1)
        group_words = Signal(range(banks + 1))
        group_passes = Signal(range(2 * banks + 1))
        m.d.comb += [group_words.eq(Mux(remaining < banks, remaining, banks)),
                     group_passes.eq(Mux(is_vadd, group_words << 1, group_words))]
        final_group = remaining <= banks
        vector_last = vector & final_group & (phase + 1 >= group_passes)
        group_end = vector & ~final_group & (phase == period - 1)
        with m.If(vector):
            m.d.sync += phase_held.eq(phase + 1)
            with m.If(group_end):
                m.d.sync += [phase_held.eq(0), remaining_held.eq(remaining - banks), read_a_held.eq(read_a + banks),
                             read_b_held.eq(read_b + banks)]
        # the pass scheduled for this cycle (set by the phase of the cycle before)
        pass_valid, pass_b, pass_group_last = Signal(), Signal(), Signal()
        pass_word = Signal(max(1, bb))
        m.d.sync += [pass_valid.eq(vector & (phase < group_passes)), pass_b.eq(is_vadd & phase[0]),
                     pass_word.eq(Mux(is_vadd, phase >> 1, phase)[:max(1, bb)] if bb else 0),
                     pass_group_last.eq(vector & (phase + 1 == group_passes))]

        def group_ports(base):
            """Bank b's part of a group of ``banks`` words from word ``base``: (enable, bank address)."""
            out = []
            for b in range(banks):
                j = Signal(max(1, bb), name=f"j{b}")
                m.d.comb += j.eq((b - base[:bb]) if bb else 0)
                out.append((j < remaining, (base + j)[bb:]))
            return out

        # -- POOL -----------------------------------------------------------------------------------------------
        m.d.comb += [
            walk.begin.eq(run & is_pool_in),
            walk.src.eq(src[:pb]),
            walk.in_h.eq(reg[Reg.IN_H]), walk.in_w.eq(reg[Reg.IN_W]), walk.kh.eq(reg[Reg.KH]),
            walk.kw.eq(reg[Reg.KW]), walk.stride_h.eq(reg[Reg.STRIDE_H]), walk.stride_w.eq(reg[Reg.STRIDE_W]),
            walk.pad_h.eq(reg[Reg.PAD_H]), walk.pad_w.eq(reg[Reg.PAD_W]), walk.out_h.eq(reg[Reg.OUT_H]),
            walk.out_w.eq(reg[Reg.OUT_W]), walk.images.eq(Mux(reg[Reg.BATCH] == 0, 1, reg[Reg.BATCH])),
            walk.cpw.eq(cpw), walk.row_words.eq(row_words), walk.image_words.eq(image_words),
            walk.stride_w_words.eq(stride_w_words), walk.pad_w_words.eq(pad_w_words),
            walk.stride_h_words.eq(stride_h_words), walk.pad_h_words.eq(pad_h_words),
        ]
        pool_slot = in_slots & is_pool & walk.gap
        m.d.comb += last_slot.eq(Mux(is_pool, in_slots & is_pool & walk.last, vector_last))

        # slot and drain sequencing; busy from the cycle after the start to the end of the drain
        with m.If(accept):
            m.d.sync += busy.eq(1)
        with m.If(run & ~(Mux(is_pool_in, walk.active, 1))):  # a POOL without outputs: no slots, the drain only
            m.d.sync += [slots_held.eq(0), draining.eq(1), drain.eq(VECTOR_LATENCY - 2)]
        with m.Elif(run):
            m.d.sync += slots_held.eq(1)
        with m.If(in_slots & last_slot):
            m.d.sync += [slots_held.eq(0), draining.eq(1), drain.eq(VECTOR_LATENCY - 1)]
        with m.If(draining):
            m.d.sync += drain.eq(drain - 1)
            with m.If(drain == 0):
                m.d.sync += [draining.eq(0), busy.eq(0)]
        m.d.comb += in_slots.eq(Mux(take, run & Mux(is_pool_in, walk.active, 1), slots_held))

        # -- read ports ------------------------------------------------------------------------------------
        read_en = Signal(banks)
        read_addr = [Signal.like(self.glb[b].addr, name=f"read_addr{b}") for b in range(banks)]
        for b, ((en_a, addr_a), (en_b, addr_b)) in enumerate(zip(group_ports(read_a), group_ports(read_b))):
            with m.If(reads_a):
                m.d.comb += [read_en[b].eq(en_a), read_addr[b].eq(addr_a)]
            with m.Elif(reads_b):
                m.d.comb += [read_en[b].eq(en_b), read_addr[b].eq(addr_b)]
            with m.Elif(in_slots & is_pool):
                m.d.comb += [read_en[b].eq(walk.en[b]), read_addr[b].eq(walk.addr[b])]

        # -- read data: the cycle after ----------------------------------------------------------------------
        rdata = Cat(*(self.glb[b].rdata for b in range(banks)))
        got_a, got_b, got_pool, got_end = Signal(), Signal(), Signal(banks), Signal()
        m.d.sync += [got_a.eq(reads_a), got_b.eq(reads_b), got_pool.eq(Mux(in_slots & is_pool, read_en, 0)),
                     got_end.eq(in_slots & is_pool & walk.end)]

        def rotated(base):
            """The group read from word ``base``: word j of the group (bank (base + j) mod banks) in block j."""
            shift_amount = base[:bb] if bb else Const(0, 1)
            return Cat(rdata, rdata).bit_select(shift_amount * word_bits, banks * word_bits)

        def lane(value, index):
            return value[8 * index:8 * index + 8].as_signed()

        # the group's words: the read's data in the cycle they arrive (its first pass), then held for the others
        held_a, held_b = Signal(banks * word_bits), Signal(banks * word_bits)
        with m.If(got_a):
            m.d.sync += held_a.eq(rotated(src[:pb]))
        with m.If(got_b):
            m.d.sync += held_b.eq(rotated(src2[:pb]))
        a_group = Mux(got_a, rotated(src[:pb]), held_a)
        b_group = Mux(got_b, rotated(src2[:pb]), held_b)
        pass_words = Mux(pass_b, b_group, a_group).word_select(pass_word, word_bits) if bb else \
            Mux(pass_b, b_group, a_group)
        zp_in, zp_in2 = reg[Reg.ZP_IN].as_signed(), reg[Reg.ZP_IN2].as_signed()
        mult1, mult2 = reg[Reg.VMULT1].as_signed(), reg[Reg.VMULT2].as_signed()
        shift_s = reg[Reg.VSHIFT][:SHIFT_BITS]

        # POOL: the window's running sums (of x - ZP_IN) or maxima, per lane of a word. The maxima are made from the
        # read data registered once more (``max_data``): the block RAM's output feeds a register, not the compare
        # chain (the board system's critical path, docs/board.md). A max word thus arrives two cycles after its
        # write slot instead of one, inside the drain of VECTOR_LATENCY cycles, so no instruction's cycles change.
        pool_go = Signal()
        m.d.comb += pool_go.eq(got_end | (in_slots & is_pool & walk.empty))
        zp_taps = sum((Mux(got_pool[b], zp_in, 0) for b in range(banks)), Const(0, signed(IN_BITS)))
        max_data, max_taps, max_go = Signal(banks * word_bits), Signal(banks), Signal()
        m.d.sync += [max_data.eq(rdata), max_taps.eq(got_pool), max_go.eq(pool_go)]
        best = Signal(word * 8)
        best_valid = Signal()
        seen = Signal()
        any_tap = Signal()
        m.d.comb += any_tap.eq(seen | max_taps.any())
        m.d.sync += best_valid.eq(max_go & is_pool & ~average)
        with m.If(max_taps.any()):
            m.d.sync += seen.eq(1)
        with m.If(max_go):
            m.d.sync += seen.eq(0)
        window_sums = []
        for j in range(word):
            total = Signal(signed(IN_BITS), name=f"sum{j}")
            running_max = Signal(signed(8), name=f"max{j}", init=-128)
            taps = [Mux(got_pool[b], lane(rdata, b * word + j), 0) for b in range(banks)]
            window_sum = Signal(signed(IN_BITS), name=f"window_sum{j}")
            m.d.comb += window_sum.eq(total + sum(taps[1:], taps[0]) - zp_taps)
            window_sums.append(window_sum)
            with m.If(pool_go):
                m.d.sync += total.eq(0)
            with m.Else():
                m.d.sync += total.eq(window_sum)
            largest = running_max
            for b in range(banks):
                tap = lane(max_data, b * word + j)
                largest = Mux(max_taps[b] & (tap > largest), tap, largest)
            with m.If(max_go):
                m.d.sync += [running_max.eq(-128), best[8 * j:8 * j + 8].eq(Mux(any_tap, largest, 0))]
            with m.Else():
                m.d.sync += running_max.eq(largest)

        # -- the multipliers: PassRequantize, one pass a cycle (docs/isa.md, "Timing") ------------------------------
        # VACT/VADD: v = (a M1 [+ b M2] + C) >> S with C = 2^(S-1) - ZP_IN M1 [- ZP_IN2 M2], equal modulo 2^64 to
        # the executor's ((a - ZP_IN) M1 [+ (b - ZP_IN2) M2] + 2^(S-1)) for every register value; each product
        # a x M is int8 x 32 bits. C's four products (ZP halves x M) are made in the start cycle, when no pass
        # runs, on lanes 0..3. Average POOL: a window sum (int32) in two passes, bits 0..16, then 17..31 weighted
        # 2^17, from its write slot on; a window without taps (sum 0) one pass in the cycle after its slot.
        m.submodules.rq = rq = PassRequantize(self.multiplier_lanes)
        pool_lo = got_end & average
        pool_hi, pool_empty = Signal(), Signal()
        m.d.sync += [pool_hi.eq(pool_lo), pool_empty.eq(in_slots & is_pool & walk.empty & average)]
        high_halves = [Signal(signed(IN_BITS - HALF_BITS), name=f"window_high{j}") for j in range(word)]
        with m.If(pool_lo):
            m.d.sync += [high.eq(window_sums[j][HALF_BITS:].as_signed()) for j, high in enumerate(high_halves)]
        vector_pass = pass_valid & ~is_pool
        pieces = [(zp_in, mult1), (zp_in, mult1), (zp_in2, mult2), (zp_in2, mult2)]
        for j in range(self.multiplier_lanes):
            x = Signal(signed(PASS_X_BITS), name=f"pass_x{j}")
            mult = Signal(signed(REG_BITS), name=f"pass_mult{j}")
            with m.If(take):  # the zero-point products of C (POOL: none)
                if j < len(pieces):
                    zp, piece_mult = pieces[j]
                    half = zp[HALF_BITS:].as_signed() if j % 2 else Cat(zp[:HALF_BITS], Const(0, 1)).as_signed()
                    m.d.comb += [x.eq(Mux(is_pool_in | ((j >= 2) & ~is_vadd_in), 0, half)),
                                 mult.eq(Mux(j >= 2, reg[Reg.VMULT2], reg[Reg.VMULT1]).as_signed())]
            with m.Elif(j >= word):
                pass
            with m.Elif(pool_hi):
                m.d.comb += [x.eq(high_halves[j]), mult.eq(mult1)]
            with m.Elif(pool_empty):
                m.d.comb += [x.eq(0), mult.eq(mult1)]
            with m.Elif(pool_lo):
                m.d.comb += [x.eq(Cat(window_sums[j][:HALF_BITS], Const(0, 1)).as_signed()), mult.eq(mult1)]
            with m.Else():
                m.d.comb += [x.eq(lane(pass_words, j)), mult.eq(Mux(pass_b, mult2, mult1))]
            m.d.comb += [rq.x[j].eq(x), rq.mult[j].eq(mult)]
        took = Signal()
        m.d.sync += took.eq(run)
        rounding = Mux(shift_s == 0, 0, Const(1, unsigned(64)) << (shift_s - 1)[:SHIFT_BITS])
        p = rq.product
        constant = Signal(signed(64))
        m.d.comb += constant.eq(rounding - (p[0] + (p[1] << HALF_BITS) + p[2] + (p[3] << HALF_BITS)))
        bias_held = Signal(signed(64))
        with m.If(took):
            m.d.sync += bias_held.eq(constant)
        m.d.comb += [
            rq.valid.eq(vector_pass | pool_lo | pool_hi | pool_empty),
            rq.first.eq(Mux(is_pool, pool_lo | pool_empty, ~pass_b)),
            rq.last.eq(Mux(is_pool, pool_hi | pool_empty, pass_b | ~is_vadd)),
            rq.hi.eq(is_pool & pool_hi),
            rq.bias.eq(Mux(took, constant, bias_held)),
            rq.shift.eq(shift_s),
        ]

        # -- the output tail (VACT, VADD, average POOL), one word a cycle -----------------------------------------
        m.submodules.tail = tail = OutputTail(word, word)
        m.d.comb += [tail.valid.eq(rq.out_valid),
                     tail.lut_write.en.eq(self.lut_write.en), tail.lut_write.index.eq(self.lut_write.index),
                     tail.lut_write.data.eq(self.lut_write.data)]
        for name in TAIL_REGS:
            m.d.comb += getattr(tail, name).eq(reg[_TAIL_REG[name]].as_signed())
        for j in range(word):
            m.d.comb += tail.v[j].eq(rq.v[j])
        # the position of each pass's word in its group travels beside it to the tail's output
        depth = PassRequantize.LATENCY + OutputTail.LATENCY
        position = [Signal(max(1, bb), name=f"position{i}") for i in range(depth + 1)]
        group_last = [Signal(name=f"group_last{i}") for i in range(depth + 1)]
        m.d.comb += [position[0].eq(pass_word), group_last[0].eq(pass_group_last)]
        for i in range(depth):
            m.d.sync += [position[i + 1].eq(position[i]), group_last[i + 1].eq(group_last[i])]
        y_word = Cat(*(tail.y[j] for j in range(word)))
        group_buf = Signal(banks * word_bits)
        with m.If(tail.out_valid & ~is_pool):
            m.d.sync += group_buf.word_select(position[depth], word_bits).eq(y_word) if bb else group_buf.eq(y_word)
        assembled = Cat(*(Mux(position[depth] == i, y_word, group_buf[i * word_bits:(i + 1) * word_bits])
                          for i in range(banks)))
        arrived = Signal()
        arrival = Signal(banks * word_bits)
        m.d.comb += [arrived.eq(Mux(is_pool, Mux(average, tail.out_valid, best_valid),
                                    tail.out_valid & group_last[depth])),
                     arrival.eq(Mux(is_pool, Mux(average, y_word, best), assembled))]

        # -- the write queue: results wait for a slot without reads ----------------------------------------
        queue = [Signal(banks * word_bits, name=f"queue{i}") for i in range(QUEUE_DEPTH)]
        head = Signal(range(QUEUE_DEPTH))
        count = Signal(range(QUEUE_DEPTH + 1))
        write_slot = Signal()
        vector_slot = in_slots & ~is_pool & ~reads_a & ~reads_b
        m.d.comb += write_slot.eq(busy & (Mux(is_pool, pool_slot, vector_slot) | draining))
        writes = Signal()
        m.d.comb += writes.eq(write_slot & ((count != 0) | arrived))
        out_word = Mux(count != 0, Array(queue)[head], arrival)
        push = arrived & ~(writes & (count == 0))
        pop = writes & (count != 0)
        tail_index = Signal(range(QUEUE_DEPTH))
        m.d.comb += tail_index.eq(Mux(head + count >= QUEUE_DEPTH, head + count - QUEUE_DEPTH, head + count))
        with m.If(push):
            m.d.sync += Array(queue)[tail_index].eq(arrival)
        m.d.sync += count.eq(count + push - pop)
        with m.If(pop):
            m.d.sync += head.eq(Mux(head == QUEUE_DEPTH - 1, 0, head + 1))
        with m.If(take):
            m.d.sync += [head.eq(0), count.eq(0)]

        # destination: VACT/VADD a group of up to ``banks`` words, POOL one word, from word ``written``
        written, written_held = now("written", dst_in[byte_bits:][:pb], unsigned(pb))
        left, left_held = now("left", words_in, unsigned(25))
        with m.If(writes):
            m.d.sync += [written_held.eq(written + Mux(is_pool, 1, banks)), left_held.eq(left - banks)]
        store = Signal()
        m.d.comb += store.eq(writes & ~(is_pool & no_pool_data))
        rotation = written[:bb] if bb else Const(0, 1)
        back = Signal(range(banks + 1))
        m.d.comb += back.eq(banks - rotation)
        out_rotated = Cat(out_word[:banks * word_bits], out_word[:banks * word_bits]).bit_select(
            back * word_bits, banks * word_bits)
        for b in range(banks):
            j = Signal(max(1, bb), name=f"wj{b}")
            m.d.comb += j.eq((b - rotation) if bb else 0)
            port = self.glb[b]
            with m.If(store & Mux(is_pool, j == 0, j < left)):
                m.d.comb += [port.en.eq(1), port.addr.eq((written + j)[bb:]), port.we.eq((1 << word) - 1),
                             port.wdata.eq(out_rotated[b * word_bits:(b + 1) * word_bits])]
            with m.Elif(store):
                pass  # a bank beyond the group's last word: no access
            with m.Else():
                m.d.comb += [port.en.eq(read_en[b]), port.addr.eq(read_addr[b])]
        return m
