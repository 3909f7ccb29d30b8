"""The staging unit: the execute-side GLB accesses of GATHER, WRITEBACK, LOADP and LOADLUT (docs/isa.md, "What each
instruction does") and the four staging slots the core unit reads (docs/system-rtl.md).

GATHER is im2col in hardware. From its issue cycle it reads B, ``banks`` consecutive words a cycle, while it
starts up: four dividers split m0 into (n, oh, ow) and k0 into (r, s, c) (``GATHER_DIVIDE_CYCLES``) while four
shared 32 x 16-bit multipliers make the pitches of the captured registers (row, image, strides, dilations, padding),
then the same multipliers give two counters their first values from the quotients (``GATHER_PRODUCT_CYCLES``;
pixel: h = oh SH - PH, w = ow SW - PW and the byte offset of (n, h, w); tap: h = r DH, w = s DW, the offset of
(r, s, c)), and the lanes' fixed half of every address (WS: the taps k0 + j, OS: the pixels
m0 + j) is stepped into lane registers ``GATHER_FILL_LANES`` a cycle, and in two more (``GATHER_LOOKAHEAD_CYCLES``)
row 0's lane addresses are registered and then its reads decided. Then A, a row at a time, the rows' half (WS: pixel
m0 + r, OS: tap k0 + r) stepped once per row, each row's lane addresses (words, bytes, inside the image, duplicates
among the lanes) registered two rows ahead and its reads decided one row ahead, both on the previous row's last
cycle, so the cycles a row issues in are driven from registers: a row reads, in lane order, the distinct GLB words
its lanes need that the word buffer (the last 2 x rows distinct words read) does not hold, packed into cycles by
the bank rule, and takes max(1, those cycles). WRITEBACK, LOADP and LOADLUT move one output-buffer row, parameter
entry or table word a cycle, the first read in the issue cycle. Every instruction takes exactly
``system_timing.instruction_cycles``; the GLB ports (and the output-buffer read) may be driven in the issue cycle.

Assumed of the program (the compiler's): GATHER's ``b_addr`` and the LOADP / LOADLUT ``glb_addr`` are whole words
(their low bits are ignored); geometry registers below 2^16, IN_ADDR, IN_CP, OUT_ADDR and OUT_CP below 2^24.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from codesign.contract.isa import Op, Reg
from codesign.contract.system_timing import (
    GATHER_DIVIDE_CYCLES, GATHER_FILL_LANES, GATHER_LOOKAHEAD_CYCLES, GATHER_PRODUCT_CYCLES, LUT_BYTES,
    PARAM_ENTRY_BYTES, WORD_BUFFER_ROWS_FACTOR,
)
from codesign.errors import HdlError
from hdl.system import ports
from hdl.system.ports import lut_write_signature, obuf_read_signature, param_write_signature, slot_read_signature
from hdl.system.params import SystemParams

__all__ = ["StagingUnit", "GEOMETRY_BITS", "ADDRESS_BITS"]

GEOMETRY_BITS = 16  # sizes, strides, paddings, dilations and CIN_G: their registers' low 16 bits
ADDRESS_BITS = 32  # GATHER address arithmetic, signed
_DIVIDEND_BITS = 20  # m0 is 20 bits, k0 16: both split by 20-bit dividers
_DIVISOR_BITS = _DIVIDEND_BITS + 1  # OUT_H OUT_W and KW CIN_G saturate here (any larger divides alike)
_MULTIPLIERS = 4  # the start-up's shared 32 x 16-bit multipliers (two MULT18X18D each on an ECP5)
_STATIC_STEPS = 3  # start-up steps the products of the captured registers take (three levels of products)
_ERR_GLB, _ERR_STAGING, _ERR_PARAMS = 2, 5, 8  # codesign.compiler.executor.ERROR_CODES

# instruction fields (codesign.contract.isa.FORMATS) as (lsb, width)
_F_SLOT, _F_MODE, _F_COUNT, _F_LANES = (8, 1), (9, 1), (10, 11), (21, 5)
_F_M0, _F_K0, _F_GROUP, _F_BADDR = (32, 20), (52, 16), (68, 12), (80, 24)
_F_WB_OBUF, _F_WB_M, _F_WB_N, _F_WB_M0, _F_WB_N0 = (8, 1), (9, 11), (20, 5), (32, 20), (52, 16)
_F_GLB_ADDR, _F_LP_COUNT = (8, 24), (32, 16)

_IDLE, _DIVIDE, _INIT, _FILL, _ROWS, _DRAIN, _WB, _LP, _LL = range(9)


def _log2(value: int) -> int:
    return value.bit_length() - 1


def _select(values, index):
    """``values[index]`` for a list of equal-width Values and a Value index (a mux chain)."""
    out = values[0]
    for i, v in enumerate(values[1:], start=1):
        out = Mux(index == i, v, out)
    return out


def _any(terms, width: int):
    out = Const(0, width)
    for t in terms:
        out = out | t
    return out


class _Divider(wiring.Component):
    """Restoring division of a ``_DIVIDEND_BITS`` dividend, ``bits_per_cycle`` quotient bits a cycle: ``load`` for
    one cycle, then ``quotient`` / ``remainder`` hold the result ``_DIVIDEND_BITS / bits_per_cycle`` cycles later,
    until the next ``load``."""

    def __init__(self, bits_per_cycle: int):
        self.bits_per_cycle = bits_per_cycle
        super().__init__({"load": In(1), "dividend": In(_DIVIDEND_BITS), "divisor": In(_DIVISOR_BITS),
                          "quotient": Out(_DIVIDEND_BITS), "remainder": Out(_DIVISOR_BITS)})

    def elaborate(self, platform):
        m = Module()
        rem = Signal(_DIVISOR_BITS + 1)
        shift = Signal(_DIVIDEND_BITS)  # dividend bits still to bring down, then quotient bits, MSB first
        r, q = rem, shift
        for _ in range(self.bits_per_cycle):  # one restoring step each: bring down a bit, subtract if it fits
            trial = Cat(q[-1], r[:_DIVISOR_BITS])
            fits = trial >= self.divisor
            r = Mux(fits, trial - self.divisor, trial)[:_DIVISOR_BITS + 1]
            q = Cat(fits, q[:-1])
        steps = _DIVIDEND_BITS // self.bits_per_cycle
        left = Signal(range(steps + 1))  # steps still to take
        with m.If(self.load):
            m.d.sync += [rem.eq(0), shift.eq(self.dividend), left.eq(steps)]
        with m.Elif(left != 0):
            m.d.sync += [rem.eq(r), shift.eq(q), left.eq(left - 1)]
        m.d.comb += [self.quotient.eq(shift), self.remainder.eq(rem)]
        return m


class _Build:
    """What the unit's parts share while it is elaborated: the module, the sizes, the instruction being taken, the
    state register, the sticky error and the GLB requests of the cycle (OR-ed per bank; one part is active)."""

    def __init__(self, unit: "StagingUnit", m: Module):
        p = unit.params
        self.m, self.p, self.unit = m, p, unit
        self.wb, self.banks = p.word_bytes, p.glb_banks
        self.lwb, self.lb = _log2(self.wb), _log2(self.banks)
        self.gwb = max(1, (p.glb_words - 1).bit_length())  # bits of a GLB word address
        d = unit.dispatch
        self.instr, self.regs = d.instr, d.regs
        self.state = Signal(range(9))
        self.error, self.error_code = Signal(), Signal(ports.ERROR_CODE_BITS)
        m.d.comb += [d.idle.eq(self.state == _IDLE), d.ready.eq(self.state == _IDLE), d.error.eq(self.error),
                     d.error_code.eq(self.error_code)]
        self.take = Signal()
        m.d.comb += self.take.eq(d.start & (self.state == _IDLE))
        self.opcode = self.instr[:8]
        self.rdata = [unit.glb[b].rdata for b in range(self.banks)]
        self._terms = [([], [], [], []) for _ in range(self.banks)]

    def field(self, spec):
        return self.instr[spec[0]:spec[0] + spec[1]]

    def reg(self, r: Reg, width: int):
        return self.regs[32 * int(r):32 * int(r) + width]

    def starts(self, op: Op):
        return self.take & (self.opcode == int(op))

    def may_start(self, op: Op):
        """The unit is idle and the dispatch port holds ``op``: its issue cycle if it is dispatched now. Unlike
        ``starts`` this does not wait for the dispatch decision, so what it selects (the issue cycle's addresses)
        comes from registers and settles while the controller decides."""
        return (self.state == _IDLE) & (self.opcode == int(op))

    def fault(self, code: int) -> None:
        """Raise ``error`` with ``code`` from the next cycle on (the first fault is kept until reset)."""
        with self.m.If(~self.error):
            self.m.d.sync += [self.error.eq(1), self.error_code.eq(code)]

    def request(self, bank: int, en, addr, we=None, wdata=None, owner=None) -> None:
        """An access to ``bank`` (a Python int) at ``addr`` within it when ``en``; a write with ``we``, ``wdata``.
        ``owner`` (default ``en``), high whenever ``en`` may be and never while another part's is, selects the
        address: a read issued in the dispatch cycle names one that does not wait for the dispatch decision."""
        ens, addrs, wes, datas = self._terms[bank]
        ens.append(en)
        addrs.append(Mux(en if owner is None else owner, addr, 0))
        if we is not None:
            wes.append(Mux(en, we, 0))
            datas.append(Mux(en, wdata, 0))

    def read_word(self, en, word, owner=None) -> None:
        """A read of GLB word ``word`` (a Value) on its bank when ``en`` (``owner`` as for ``request``)."""
        for b in range(self.banks):
            self.request(b, en & (word[:self.lb] == b), word[self.lb:], owner=owner)

    def drive_glb(self) -> None:
        for b, (ens, addrs, wes, datas) in enumerate(self._terms):
            port = self.unit.glb[b]
            self.m.d.comb += [port.en.eq(_any(ens, 1)), port.addr.eq(_any(addrs, len(port.addr))),
                              port.we.eq(_any(wes, self.wb)), port.wdata.eq(_any(datas, 8 * self.wb))]


class StagingUnit(wiring.Component):
    """GATHER, WRITEBACK, LOADP and LOADLUT on the staging side of the GLB, and the staging slots (module docstring).

    Parameters: ``params``, the ``SystemParams`` to build. Raises HdlError when the word buffer cannot take a
    cycle's reads (2 x rows < banks), a parameter entry spans more words than there are banks, or the GLB has one
    bank (a written row may span two words).

    Ports: ``dispatch`` (``ports.dispatch_signature``; any other opcode is ignored), ``glb`` (one
    ``ports.glb_port_signature`` per bank), ``a_read`` / ``b_read`` (``slot_read_signature``, from the core unit),
    ``obuf_read`` (``obuf_read_signature``), ``param_write``, ``lut_write``.
    """

    def __init__(self, params: SystemParams):
        if not isinstance(params, SystemParams):
            raise HdlError(f"StagingUnit needs SystemParams, not {type(params).__name__}")
        if params.glb_banks < 2:
            raise HdlError("the staging unit needs at least 2 GLB banks (a written row may span two words)")
        if WORD_BUFFER_ROWS_FACTOR * params.rows < params.glb_banks:
            raise HdlError(f"a word buffer of {WORD_BUFFER_ROWS_FACTOR * params.rows} words cannot take the reads of "
                           f"{params.glb_banks} banks in a cycle")
        if params.param_words > params.glb_banks:
            raise HdlError(f"a {PARAM_ENTRY_BYTES}-byte parameter entry spans {params.param_words} words, more than "
                           f"the {params.glb_banks} banks read in a cycle")
        if _DIVIDEND_BITS % GATHER_DIVIDE_CYCLES or GATHER_DIVIDE_CYCLES <= _STATIC_STEPS:
            raise HdlError(f"GATHER_DIVIDE_CYCLES={GATHER_DIVIDE_CYCLES} must divide {_DIVIDEND_BITS} and leave the "
                           f"{_STATIC_STEPS} steps the products of the captured registers take and one more")
        if GATHER_LOOKAHEAD_CYCLES != 2:
            raise HdlError(f"GATHER_LOOKAHEAD_CYCLES={GATHER_LOOKAHEAD_CYCLES}: the rows' pipeline registers row 0's "
                           "addresses, then its decision, in 2 cycles")
        if GATHER_PRODUCT_CYCLES != 3:
            raise HdlError(f"GATHER_PRODUCT_CYCLES={GATHER_PRODUCT_CYCLES}: the start-up's post-division products "
                           "take 3 cycles (two levels on 4 multipliers)")
        self.params = params
        super().__init__({
            "dispatch": In(ports.dispatch_signature()),
            "glb": Out(ports.glb_port_signature(params)).array(params.glb_banks),
            "a_read": In(slot_read_signature(params)),
            "b_read": In(slot_read_signature(params)),
            "obuf_read": Out(obuf_read_signature(params)),
            "param_write": Out(param_write_signature(params)),
            "lut_write": Out(lut_write_signature(params.word_bytes)),
        })

    def elaborate(self, platform):
        m = Module()
        x = _Build(self, m)
        self._gather(x)
        self._writeback(x)
        self._loads(x)
        x.drive_glb()
        return m

    # ---- GATHER ----------------------------------------------------------------------------------------------
    def _gather(self, x: _Build) -> None:
        """GATHER: B from the issue cycle, the start-up beside it, then the rows of A (module docstring)."""
        m, p, wb = x.m, x.p, x.wb
        go = x.starts(Op.GATHER)
        c = self._gather_capture(x)
        a_wr, b_wr = self._slots(x)
        b_busy = self._gather_b(x, c, go, b_wr)
        s = self._gather_startup(x, c, go)
        rows = self._gather_rows(x, c, s, b_busy, a_wr)

        # issue -> DIVIDE (GATHER_DIVIDE_CYCLES) -> INIT -> FILL -> ROWS (once B is read) -> DRAIN
        state, phase = x.state, s.phase
        fill_cycles = s.fill_cycles + GATHER_LOOKAHEAD_CYCLES
        with m.If(go):
            m.d.sync += [state.eq(_DIVIDE), phase.eq(0)]
        with m.If(state == _DIVIDE):
            with m.If((c.count > p.stage_rows) | (c.k_rows > p.stage_rows) | (c.lanes > wb)):
                x.fault(_ERR_STAGING)
                m.d.sync += [state.eq(_IDLE), b_busy.eq(0)]
            with m.Else():
                with m.If((phase == 0) & ((Cat(Const(0, x.lwb), c.bword) + c.k_rows * wb) > p.glb_bytes)):
                    x.fault(_ERR_GLB)
                m.d.sync += phase.eq(phase + 1)
                with m.If(phase == GATHER_DIVIDE_CYCLES - 1):
                    m.d.sync += [state.eq(_INIT), phase.eq(0)]
        with m.If(state == _INIT):  # the post-division products (GATHER_PRODUCT_CYCLES)
            m.d.sync += phase.eq(phase + 1)
            with m.If(phase == GATHER_PRODUCT_CYCLES - 1):
                m.d.sync += [state.eq(_FILL), phase.eq(0)]
        with m.If(state == _FILL):
            m.d.sync += phase.eq(phase + 1)
            with m.If(phase == fill_cycles - 1):
                m.d.sync += [state.eq(_ROWS), phase.eq(0), rows.sub.eq(0), rows.row.eq(0), rows.written.eq(0)]
        with m.If(rows.last_cycle):
            m.d.sync += rows.row.eq(rows.row + 1)
            with m.If(rows.row == c.count - 1):
                m.d.sync += state.eq(_DRAIN)
        with m.If(state == _DRAIN):  # the last row's reads land and it is written
            m.d.sync += state.eq(_IDLE)

    def _gather_capture(self, x: _Build) -> SimpleNamespace:
        """The fields and registers a GATHER uses, captured on its issue edge."""
        m, G = x.m, GEOMETRY_BITS
        c = SimpleNamespace(reg={})
        for r in (Reg.IN_H, Reg.IN_W, Reg.KW, Reg.STRIDE_H, Reg.STRIDE_W, Reg.PAD_H, Reg.PAD_W, Reg.DIL_H,
                  Reg.DIL_W, Reg.OUT_H, Reg.OUT_W, Reg.CIN_G):
            c.reg[r] = Signal(G, name=f"cap_{r.name.lower()}")
        for r in (Reg.IN_ADDR, Reg.IN_CP):
            c.reg[r] = Signal(24, name=f"cap_{r.name.lower()}")
        c.zp_in, c.slot, c.os = Signal(8), Signal(), Signal()
        c.count, c.lanes, c.group = Signal(11), Signal(5), Signal(12)
        c.bword = Signal(24 - x.lwb)  # b_addr in words
        with m.If(x.take):
            m.d.sync += [sig.eq(x.reg(r, len(sig))) for r, sig in c.reg.items()]
            m.d.sync += [c.zp_in.eq(x.reg(Reg.ZP_IN, 8)), c.slot.eq(x.field(_F_SLOT)), c.os.eq(x.field(_F_MODE)),
                         c.count.eq(x.field(_F_COUNT)), c.lanes.eq(x.field(_F_LANES)),
                         c.group.eq(x.field(_F_GROUP)), c.bword.eq(x.field(_F_BADDR)[x.lwb:])]
        c.k_rows = Mux(c.os, c.count, c.lanes)  # rows of B (system_timing.b_rows)
        return c

    def _slots(self, x: _Build):
        """The staging slots and the core unit's read ports: A (pair p at rows p STAGE_ROWS ..) in one memory; B
        interleaved over ``banks`` memories by row mod banks, so a cycle's ``banks`` words of B land at once."""
        m, p, wb, banks, lb = x.m, x.p, x.wb, x.banks, x.lb
        half = -(-p.stage_rows // banks)
        a_mem = m.submodules.a_slots = Memory(shape=unsigned(8 * wb), depth=2 * p.stage_rows, init=[])
        a_wr, a_rd = a_mem.write_port(), a_mem.read_port()
        ra = self.a_read
        m.d.comb += [a_rd.addr.eq(ra.pair * p.stage_rows + ra.addr), a_rd.en.eq(ra.en), ra.data.eq(a_rd.data)]
        b_wr, b_rd = [], []
        for u in range(banks):
            mem = m.submodules[f"b_slots{u}"] = Memory(shape=unsigned(8 * wb), depth=2 * half, init=[])
            b_wr.append(mem.write_port())
            b_rd.append(mem.read_port())
        rb = self.b_read
        b_sel = Signal(lb)
        with m.If(rb.en):
            m.d.sync += b_sel.eq(rb.addr[:lb])
        for u in range(banks):
            m.d.comb += [b_rd[u].addr.eq(rb.pair * half + (rb.addr >> lb)), b_rd[u].en.eq(rb.en)]
        m.d.comb += rb.data.eq(_select([b_rd[u].data for u in range(banks)], b_sel))
        return a_wr, (b_wr, half)

    def _gather_b(self, x: _Build, c, go, b_wr) -> Signal:
        """B from the issue cycle on: cycle i reads rows i banks .. i banks + banks - 1 (bank b's word is row
        (b - b_addr) mod banks of them), written the cycle after into the memory of that row at row // banks = i.
        Returns ``busy``: B reads in this cycle after the issue cycle."""
        m, banks, lb = x.m, x.banks, x.lb
        b_wr, half = b_wr
        k_in = Mux(x.field(_F_MODE), x.field(_F_COUNT), x.field(_F_LANES))
        cycles = Signal(12)
        m.d.comb += cycles.eq((c.k_rows + banks - 1) >> lb)
        busy, i = Signal(), Signal(12)
        landing = [Signal(name=f"b_landing{b}") for b in range(banks)]
        landing_row = Signal(12)
        # the issue cycle's operands from the instruction, selected by busy (a register), not by go
        group = Mux(busy, i, 0)
        bword = Mux(busy, c.bword, x.field(_F_BADDR)[x.lwb:])
        k_now = Mux(busy, c.k_rows, k_in)
        owner = busy | x.may_start(Op.GATHER)
        for b in range(banks):
            u = Signal(lb, name=f"b_row{b}")
            m.d.comb += u.eq(b - bword[:lb])
            q = Cat(u, group)
            rd = (go | busy) & (q < k_now)
            x.request(b, rd, (bword + q)[lb:], owner=owner)
            m.d.sync += landing[b].eq(rd)
        m.d.sync += landing_row.eq(group)
        for u in range(banks):
            src = Signal(lb, name=f"b_bank{u}")
            m.d.comb += src.eq(u + c.bword[:lb])
            m.d.comb += [b_wr[u].addr.eq(c.slot * half + landing_row), b_wr[u].data.eq(_select(x.rdata, src)),
                         b_wr[u].en.eq(_select(landing, src))]
        with m.If(go):
            m.d.sync += [busy.eq(k_in > banks), i.eq(1)]
        with m.Elif(busy):
            m.d.sync += i.eq(i + 1)
            with m.If(i == cycles - 1):
                m.d.sync += busy.eq(0)
        return busy

    def _gather_startup(self, x: _Build, c, go) -> SimpleNamespace:
        """Dividers, the start-up products on a few shared multipliers, the pixel and tap counters, the lanes'
        fixed half."""
        m, A, G, L = x.m, ADDRESS_BITS, GEOMETRY_BITS, x.wb
        cap = c.reg

        def effective(value, zero):  # the executor's max(1, ...)
            return Mux(zero, 1, value)

        ow_e, oh_e, cin_e, kw_e = (Signal(G, name=n) for n in ("ow_e", "oh_e", "cin_e", "kw_e"))
        flat = (cap[Reg.OUT_H] == 0) | (cap[Reg.OUT_W] == 0)  # max(1, OUT_H OUT_W) = 1: pixel = n
        m.d.comb += [ow_e.eq(effective(cap[Reg.OUT_W], flat)), oh_e.eq(effective(cap[Reg.OUT_H], flat)),
                     cin_e.eq(effective(cap[Reg.CIN_G], cap[Reg.CIN_G] == 0)),
                     kw_e.eq(effective(cap[Reg.KW], cap[Reg.KW] == 0))]
        cp = cap[Reg.IN_CP]
        s = SimpleNamespace(phase=Signal(range(max(GATHER_DIVIDE_CYCLES, GATHER_PRODUCT_CYCLES, L) + 1)))

        # m0 // OW (= n OH + oh), m0 % OW (= ow), m0 // (OH OW) (= n); k0 // CIN_G (= r KW + s), k0 % CIN_G (= c),
        # k0 // (KW CIN_G) (= r): four dividers side by side, loaded on the issue edge from the registers then
        limit = (1 << _DIVISOR_BITS) - 1

        def saturated(value):
            return Mux(value > limit, limit, value)

        flat_in = (x.reg(Reg.OUT_H, G) == 0) | (x.reg(Reg.OUT_W, G) == 0)
        oh_in, ow_in = effective(x.reg(Reg.OUT_H, G), flat_in), effective(x.reg(Reg.OUT_W, G), flat_in)
        cin_in = effective(x.reg(Reg.CIN_G, G), x.reg(Reg.CIN_G, G) == 0)
        kw_in = effective(x.reg(Reg.KW, G), x.reg(Reg.KW, G) == 0)
        div = {}
        for name, dividend, divisor in (("pixel_row", x.field(_F_M0), ow_in),
                                        ("pixel_image", x.field(_F_M0), saturated(oh_in * ow_in)),
                                        ("tap", x.field(_F_K0), cin_in),
                                        ("tap_row", x.field(_F_K0), saturated(kw_in * cin_in))):
            unit = m.submodules[f"{name}_divider"] = _Divider(_DIVIDEND_BITS // GATHER_DIVIDE_CYCLES)
            held = Signal(_DIVISOR_BITS, name=f"{name}_divisor")
            with m.If(go):
                m.d.sync += held.eq(divisor)
            m.d.comb += [unit.load.eq(go), unit.dividend.eq(dividend), unit.divisor.eq(held)]
            div[name] = unit
        q1, ow0 = div["pixel_row"].quotient, div["pixel_row"].remainder[:G]
        n0 = div["pixel_image"].quotient
        tap0, c0 = div["tap"].quotient, div["tap"].remainder[:G]
        r0 = div["tap_row"].quotient

        def reg(name):
            return Signal(signed(A), name=name)

        # the products of the captured registers (steps 0 .. _STATIC_STEPS - 1; all arithmetic modulo 2^32)
        rowp, img, d_w, shp, owrap, ohwrap, phw, dwp, dhp, kwrap, gc = (reg(n) for n in (
            "rowp", "img", "d_w", "shp", "owrap", "ohwrap", "phw", "dwp", "dhp", "kwrap", "gc"))
        d_h, d_n, e_s, e_r = (reg(n) for n in ("d_h", "d_n", "e_s", "e_r"))
        m.d.sync += [d_h.eq(shp - owrap),  # last column -> next output row
                     d_n.eq(img - ohwrap - owrap),  # last pixel -> next image
                     e_s.eq(dwp - (cin_e - 1)),  # last channel -> next tap column
                     e_r.eq(dhp - kwrap - (cin_e - 1))]  # last channel of a tap row -> next tap row
        pix, tap = _counter("p", "ow", "oh"), _counter("t", "c", "s")
        n_oh, r_kw = Signal(G, name="n_oh"), Signal(G, name="r_kw")  # n OH and r KW, modulo 2^16
        oh, s_ = Signal(G, name="oh0"), Signal(G, name="s0")
        m.d.comb += [oh.eq(q1[:G] - n_oh), s_.eq(tap0[:G] - r_kw)]
        # step: [(destination, "=" or "+", a (32 bits), b (16 bits)), ...], at most _MULTIPLIERS a step; the
        # counters' first values (docs/isa.md GATHER): n img + oh shp + ow d_w and r dhp + s dwp, where
        # oh = q1 - n OH and s = tap0 - r KW come from the first post-division step
        d = GATHER_DIVIDE_CYCLES
        plan = {
            0: [(rowp, "=", cp, cap[Reg.IN_W]), (d_w, "=", cp, cap[Reg.STRIDE_W]),
                (dwp, "=", cp, cap[Reg.DIL_W]), (phw, "=", cp, cap[Reg.PAD_W])],
            1: [(img, "=", rowp, cap[Reg.IN_H]), (shp, "=", rowp, cap[Reg.STRIDE_H]),
                (dhp, "=", rowp, cap[Reg.DIL_H]), (phw, "+", rowp, cap[Reg.PAD_H])],
            2: [(owrap, "=", d_w, ow_e - 1), (kwrap, "=", dwp, kw_e - 1), (ohwrap, "=", shp, oh_e - 1),
                (gc, "=", c.group, cap[Reg.CIN_G])],
            d: [(n_oh, "=", n0, oh_e), (r_kw, "=", r0, kw_e), (pix[4], "+", img, n0[:G]),
                (tap[4], "+", dhp, r0[:G])],
            d + 1: [(pix[4], "+", d_w, ow0), (pix[4], "+", Cat(Const(0, G), img[:G]), n0[G:]),
                    (pix[3], "+", ow0, cap[Reg.STRIDE_W]), (tap[2], "+", r0, cap[Reg.DIL_H])],
            d + 2: [(pix[2], "+", oh, cap[Reg.STRIDE_H]), (pix[4], "+", shp, oh),
                    (tap[3], "+", s_, cap[Reg.DIL_W]), (tap[4], "+", dwp, s_)],
        }
        assert all(len(ops) <= _MULTIPLIERS for ops in plan.values())
        assert max(plan) == d + GATHER_PRODUCT_CYCLES - 1 and max(k for k in plan if k < d) < _STATIC_STEPS
        step = Signal(range(d + GATHER_PRODUCT_CYCLES), name="startup_step")
        m.d.comb += step.eq(Mux(x.state == _INIT, d + s.phase, s.phase))
        running = (x.state == _DIVIDE) | (x.state == _INIT)
        prod = []
        for u in range(_MULTIPLIERS):
            a, b = Signal(signed(A), name=f"mul{u}_a"), Signal(G, name=f"mul{u}_b")
            a_v, b_v = Const(0, signed(A)), Const(0, G)
            for k, ops in plan.items():
                if u < len(ops):
                    a_v, b_v = Mux(step == k, ops[u][2], a_v), Mux(step == k, ops[u][3], b_v)
            p_u = Signal(signed(A), name=f"mul{u}_p")
            m.d.comb += [a.eq(a_v), b.eq(b_v), p_u.eq(a * b)]
            prod.append(p_u)
        for k, ops in plan.items():
            targets = {}
            for u, (dest, kind, _a, _b) in enumerate(ops):
                t = targets.setdefault(id(dest), [dest, kind == "+", []])
                t[2].append(prod[u])
            with m.If(running & (step == k)):
                for dest, accumulate, terms in targets.values():
                    total = dest if accumulate else Const(0, signed(A))
                    if dest is tap[4] and k == d:
                        total = total + c0
                    for term in terms:
                        total = total + term
                    m.d.sync += dest.eq(total)
        with m.If(running & (step == d - 1)):  # the sums' constant parts, before the first post-division step
            m.d.sync += [pix[4].eq(cap[Reg.IN_ADDR] - phw), pix[3].eq(-cap[Reg.PAD_W]), pix[2].eq(-cap[Reg.PAD_H]),
                         tap[4].eq(gc), tap[3].eq(0), tap[2].eq(0)]
        with m.If(running & (step == d)):
            m.d.sync += [pix[0].eq(ow0), tap[0].eq(c0)]
        with m.If(running & (step == d + 2)):
            m.d.sync += [pix[1].eq(oh), tap[1].eq(s_)]

        # the counters (ow, oh, h, w, offset) and (c, s, h, w, offset); a step is combinational, so FILL chains
        # GATHER_FILL_LANES of them
        def pixel_step(state, tag):
            ow, oh, h, w, off = state
            wrap_w, wrap_h = ow == ow_e - 1, oh == oh_e - 1
            out = _counter(tag, "ow", "oh")
            m.d.comb += [
                out[0].eq(Mux(wrap_w, 0, ow + 1)),
                out[1].eq(Mux(wrap_w, Mux(wrap_h, 0, oh + 1), oh)),
                out[2].eq(Mux(wrap_w, Mux(wrap_h, -cap[Reg.PAD_H], h + cap[Reg.STRIDE_H]), h)),
                out[3].eq(Mux(wrap_w, -cap[Reg.PAD_W], w + cap[Reg.STRIDE_W])),
                out[4].eq(off + Mux(wrap_w, Mux(wrap_h, d_n, d_h), d_w)),
            ]
            return out

        def tap_step(state, tag):
            ch, s, h, w, off = state
            wrap_c, wrap_s = ch == cin_e - 1, s == kw_e - 1
            out = _counter(tag, "c", "s")
            m.d.comb += [
                out[0].eq(Mux(wrap_c, 0, ch + 1)),
                out[1].eq(Mux(wrap_c, Mux(wrap_s, 0, s + 1), s)),
                out[2].eq(Mux(wrap_c & wrap_s, h + cap[Reg.DIL_H], h)),
                out[3].eq(Mux(wrap_c, Mux(wrap_s, 0, w + cap[Reg.DIL_W]), w)),
                out[4].eq(off + Mux(wrap_c, Mux(wrap_s, e_r, e_s), 1)),
            ]
            return out

        pix_chain, tap_chain = [pix], [tap]
        for i in range(1, GATHER_FILL_LANES + 1):
            pix_chain.append(pixel_step(pix_chain[-1], f"p{i}"))
            tap_chain.append(tap_step(tap_chain[-1], f"t{i}"))

        # the lanes' fixed half (WS: taps, OS: pixels), GATHER_FILL_LANES lanes a cycle; the rows' half
        s.lane = [[Signal(signed(A), name=f"lane{j}_{n}") for n in ("h", "w", "off")] for j in range(L)]
        s.row = [Mux(c.os, tap[i], pix[i]) for i in (2, 3, 4)]
        s.row_next = [Mux(c.os, tap_chain[1][i], pix_chain[1][i]) for i in (2, 3, 4)]
        s.fill_cycles = fill_cycles = -(-L // GATHER_FILL_LANES)  # FILL's cycles stepping the lanes in
        # FILL's extra cycles (GATHER_LOOKAHEAD_CYCLES): row 0's lane addresses registered, then its reads decided
        # and row 1's addresses registered (_gather_rows)
        s.look, s.look_decide = Signal(), Signal()
        m.d.comb += [s.look.eq((x.state == _FILL) & (s.phase == fill_cycles)),
                     s.look_decide.eq((x.state == _FILL) & (s.phase == fill_cycles + 1))]
        with m.If((x.state == _FILL) & (s.phase < fill_cycles)):
            for j in range(L):
                with m.If(s.phase == j // GATHER_FILL_LANES):
                    k = j % GATHER_FILL_LANES
                    m.d.sync += [lane.eq(Mux(c.os, pix_chain[k][i], tap_chain[k][i]))
                                 for lane, i in zip(s.lane[j], (2, 3, 4))]
            with m.If(c.os):
                m.d.sync += [a.eq(b) for a, b in zip(pix, pix_chain[-1])]
            with m.Else():
                m.d.sync += [a.eq(b) for a, b in zip(tap, tap_chain[-1])]
        s.step_rows = Signal()  # the rows' counter to the next row (_gather_rows: with every row's decision)
        with m.If(s.step_rows):
            with m.If(c.os):
                m.d.sync += [a.eq(b) for a, b in zip(tap, tap_chain[1])]
            with m.Else():
                m.d.sync += [a.eq(b) for a, b in zip(pix, pix_chain[1])]
        return s

    def _gather_rows(self, x: _Build, c, s, b_busy, a_wr) -> SimpleNamespace:
        """The rows of A in a three-stage pipeline, so that nothing of a row's reads is combinational in its cycles:
        its lanes' addresses (words, bytes, inside, duplicates) made from the rows' counter and registered two rows
        ahead; its reads decided from those registers and the word buffer (hits, the bank rule's cycles, the
        buffer slots its new words take) and registered a row ahead, the buffer's tags appended then; the row
        itself issuing the decided reads over max(1, its cycles) and written to the A slot the cycle after its
        last. Both steps ahead happen on the previous row's last cycle (row 0's and 1's in FILL's last cycles)."""
        m, p, wb, banks, lb, lwb, gwb = x.m, x.p, x.wb, x.banks, x.lb, x.lwb, x.gwb
        A, L, held_words = ADDRESS_BITS, x.wb, WORD_BUFFER_ROWS_FACTOR * p.rows
        rdata = x.rdata
        r = SimpleNamespace(sub=Signal(range(L + 1)), row=Signal(range(p.stage_rows + 1)),
                            written=Signal(range(p.stage_rows + 1)), last_cycle=Signal())
        in_rows = Signal()
        m.d.comb += in_rows.eq((x.state == _ROWS) & ~b_busy)
        first = in_rows & (r.sub == 0)
        decide = Signal()  # the next row's decision and the one after's addresses are registered
        m.d.comb += [decide.eq(s.look_decide | r.last_cycle), s.step_rows.eq(decide)]

        # stage 1, each lane's address: the rows' half plus its own, from the rows' counter (row 0's in FILL's
        # first extra cycle, then the counter stepped once with every decision)
        src = [Mux(s.look, now, ahead) for now, ahead in zip(s.row, s.row_next)]
        word, byte, need, inside, on, dup, bad = [], [], [], [], [], [], []
        ahead_word, ahead_need = [], []
        for j in range(L):
            ih, iw, addr = (Signal(signed(A + 1), name=f"{n}{j}") for n in ("ih", "iw", "addr"))
            m.d.comb += [a.eq(row + lane) for a, row, lane in zip((ih, iw, addr), src, s.lane[j])]
            on_a, in_a, need_a, bad_a, dup_a = (Signal(name=f"{n}{j}_ahead")
                                                for n in ("on", "inside", "need", "bad", "dup"))
            in_glb = (addr >= 0) & (addr < p.glb_bytes)
            w_a = Signal(gwb, name=f"word{j}_ahead")
            m.d.comb += [
                on_a.eq(c.lanes > j),
                in_a.eq((ih >= 0) & (ih < c.reg[Reg.IN_H]) & (iw >= 0) & (iw < c.reg[Reg.IN_W])),
                need_a.eq(on_a & in_a & in_glb),
                bad_a.eq(on_a & in_a & ~in_glb),
                w_a.eq(addr[lwb:lwb + gwb]),
                dup_a.eq(_any([ahead_need[i] & (ahead_word[i] == w_a) for i in range(j)], 1)),
            ]
            ahead_word.append(w_a)
            ahead_need.append(need_a)
            regs = [Signal(gwb, name=f"word{j}"), Signal(max(1, lwb), name=f"byte{j}")]
            regs += [Signal(name=f"{n}{j}") for n in ("need", "inside", "on", "dup", "bad")]
            with m.If(s.look | decide):
                m.d.sync += [r_.eq(v) for r_, v in zip(regs, (w_a, addr[:max(1, lwb)], need_a, in_a, on_a, dup_a,
                                                               bad_a))]
            for lst, r_ in zip((word, byte, need, inside, on, dup, bad), regs):
                lst.append(r_)

        # the word buffer: the last held_words distinct words read, circular, tags appended when a row is decided
        # (the words it will read), data as its reads land. The data is in distributed RAM, not registers: a row's
        # lanes read their hits in its first cycle, each at its own entry, and up to ``banks`` reads land in a
        # cycle, so each (bank, lane) pair has a copy written by that bank's landings and read by that lane, and
        # ``writer`` (a live-value table) names the bank that wrote each entry last. A word landing in the cycle
        # a lane reads it is taken from the bank's read data (the registers' write-through).
        tags = [Signal(gwb, name=f"held_tag{e}") for e in range(held_words)]
        valid = [Signal(name=f"held{e}") for e in range(held_words)]
        writer = [Signal(max(1, lb), name=f"held_writer{e}") for e in range(held_words)]
        head = Signal(range(held_words))
        landing = [Signal(name=f"landing{b}") for b in range(banks)]  # A reads issued last cycle, per bank
        landing_tag = [Signal(gwb, name=f"landing_tag{b}") for b in range(banks)]
        landing_slot = [Signal(range(held_words), name=f"landing_slot{b}") for b in range(banks)]
        copies = []  # copies[b][j]: the read port of lane j on the copy bank b writes
        for b in range(banks):
            row_ports = []
            for j in range(L):
                mem = m.submodules[f"held_data_b{b}_l{j}"] = Memory(shape=unsigned(8 * wb), depth=held_words,
                                                                    init=[])
                wr = mem.write_port()
                m.d.comb += [wr.addr.eq(landing_slot[b]), wr.en.eq(landing[b]), wr.data.eq(rdata[b])]
                row_ports.append(mem.read_port(domain="comb"))
            copies.append(row_ports)
            for e in range(held_words):
                with m.If(landing[b] & (landing_slot[b] == e)):
                    m.d.sync += writer[e].eq(b)

        # stage 2, the decision from registers: hits, new words, the bank rule (words_per_cycle = 1: a new cycle
        # when this read's bank has served this one already), each new word's buffer slot (in lane order)
        fresh_c, hits_c, hit_c, cyc_c, slot_c = [], [], [], [], []
        used, cyc, rank = Const(0, banks), Const(0, range(L + 1)), Const(0, range(L + 1))
        for j in range(L):
            hits = Signal(held_words, name=f"hits{j}")
            m.d.comb += hits.eq(Cat(*[valid[e] & (tags[e] == word[j]) for e in range(held_words)]))
            hit, fresh = Signal(name=f"hit{j}"), Signal(name=f"fresh{j}")
            m.d.comb += [hit.eq(hits.any()), fresh.eq(need[j] & ~dup[j] & ~hit)]
            onehot = Signal(banks, name=f"bank{j}")
            m.d.comb += onehot.eq(1 << word[j][:lb])
            clash = fresh & (used & onehot).any()
            cyc_j, used_j = Signal(range(L + 1), name=f"cycle{j}"), Signal(banks, name=f"used{j}")
            m.d.comb += [cyc_j.eq(cyc + clash), used_j.eq(Mux(fresh, Mux(clash, onehot, used | onehot), used))]
            used, cyc = used_j, cyc_j
            slot = Signal(range(2 * held_words), name=f"slot{j}")
            m.d.comb += slot.eq(head + rank)
            slot_j = Signal(range(held_words), name=f"slot_wrapped{j}")
            m.d.comb += slot_j.eq(Mux(slot >= held_words, slot - held_words, slot))
            rank = rank + fresh
            fresh_c.append(fresh)
            hits_c.append(hits)
            hit_c.append(hit)
            cyc_c.append(cyc_j)
            slot_c.append(slot_j)
        new_head = Signal(range(2 * held_words))
        m.d.comb += new_head.eq(head + rank)
        with m.If(decide):
            m.d.sync += head.eq(Mux(new_head >= held_words, new_head - held_words, new_head))
            for j in range(L):
                with m.If(fresh_c[j]):
                    for e in range(held_words):
                        with m.If(slot_c[j] == e):
                            m.d.sync += [tags[e].eq(word[j]), valid[e].eq(1)]
        with m.If(x.take):  # empty when a GATHER starts
            m.d.sync += [head.eq(0), *[v.eq(0) for v in valid]]

        # the decision, registered for the row's cycles
        fresh_r = [Signal(name=f"fresh_r{j}") for j in range(L)]
        cyc_r = [Signal(range(L + 1), name=f"cycle_r{j}") for j in range(L)]
        slot_r = [Signal(range(held_words), name=f"slot_r{j}") for j in range(L)]
        entry_r = [Signal(range(held_words), name=f"entry_r{j}") for j in range(L)]  # the entry a hit reads
        wait_r = [Signal(name=f"wait_r{j}") for j in range(L)]  # the lane's word is read in this row
        word_r = [Signal(gwb, name=f"word_r{j}") for j in range(L)]
        byte_r = [Signal(max(1, lwb), name=f"byte_r{j}") for j in range(L)]
        fill_r = [Signal(2, name=f"fill_r{j}") for j in range(L)]  # 0 idle lane, 1 padding, 2 hit, 3 read
        bad_r = [Signal(name=f"bad_r{j}") for j in range(L)]
        last_sub = Signal(range(L + 1))  # max(1, the row's read cycles) - 1
        with m.If(decide):
            m.d.sync += last_sub.eq(cyc)
            for j in range(L):
                m.d.sync += [fresh_r[j].eq(fresh_c[j]), cyc_r[j].eq(cyc_c[j]), slot_r[j].eq(slot_c[j]),
                             entry_r[j].eq(_any([Mux(hits_c[j][e], e, 0) for e in range(held_words)],
                                                    len(entry_r[j]))), wait_r[j].eq(need[j] & ~hit_c[j]), word_r[j].eq(word[j]),
                             byte_r[j].eq(byte[j]), bad_r[j].eq(bad[j]),
                             fill_r[j].eq(Mux(~on[j], 0, Mux(~inside[j], 1, Mux(hit_c[j], 2, 3))))]
        m.d.comb += r.last_cycle.eq(in_rows & (r.sub == last_sub))
        with m.If(in_rows):
            m.d.sync += r.sub.eq(Mux(r.last_cycle, 0, r.sub + 1))
        for j in range(L):
            with m.If(first & bad_r[j]):
                x.fault(_ERR_GLB)

        # stage 3, this cycle's reads in lane order; each lands in its buffer slot
        issued = []
        for j in range(L):
            issue = Signal(name=f"issue{j}")
            m.d.comb += issue.eq(in_rows & fresh_r[j] & (cyc_r[j] == r.sub))
            x.read_word(issue, word_r[j])
            with m.If(issue):
                for b in range(banks):
                    with m.If(word_r[j][:lb] == b):
                        m.d.sync += [landing_tag[b].eq(word_r[j]), landing_slot[b].eq(slot_r[j])]
            issued.append(issue)
        for b in range(banks):
            m.d.sync += landing[b].eq(_any([issued[j] & (word_r[j][:lb] == b) for j in range(L)], 1))

        # lane values: idle lanes 0, padding ZP_IN, hits in the first cycle, reads the cycle they land; the row
        # written (the cycle after its last, when the next row's decision already holds the registers above) merges
        # its last reads by a copy of its own
        value = [Signal(8, name=f"lane_value{j}") for j in range(L)]
        wait_w = [Signal(name=f"wait_w{j}") for j in range(L)]
        word_w = [Signal(gwb, name=f"word_w{j}") for j in range(L)]
        byte_w = [Signal(max(1, lwb), name=f"byte_w{j}") for j in range(L)]
        with m.If(decide):
            m.d.sync += [*[a.eq(b) for a, b in zip(wait_w, wait_r)], *[a.eq(b) for a, b in zip(word_w, word_r)],
                         *[a.eq(b) for a, b in zip(byte_w, byte_r)]]

        def landings(tag, waits, words, bytes_):
            out_lands, out_bytes = [], []
            for j in range(L):
                here = [waits[j] & (words[j][:lb] == b) & landing[b] & (landing_tag[b] == words[j])
                        for b in range(banks)]
                lands_j, byte_j = Signal(name=f"lands{tag}{j}"), Signal(8, name=f"landed_byte{tag}{j}")
                m.d.comb += [lands_j.eq(_any(here, 1)),
                             byte_j.eq(_any([Mux(h, rdata[b], 0) for b, h in enumerate(here)], 8 * wb)
                                       .word_select(bytes_[j], 8))]
                out_lands.append(lands_j)
                out_bytes.append(byte_j)
            return out_lands, out_bytes

        for j in range(L):
            m.d.comb += [copies[b][j].addr.eq(entry_r[j]) for b in range(banks)]
        lands, landed = landings("", wait_r, word_r, byte_r)
        lands_w, landed_w = landings("_w", wait_w, word_w, byte_w)
        with m.If(first):
            for j in range(L):
                entry = entry_r[j]
                stored = Cat(*[copies[b][j].data.word_select(byte_r[j], 8) for b in range(banks)])
                hit_byte = stored.word_select(Cat(*writer).word_select(entry, len(writer[0])), 8)
                for b in range(banks):  # landing now: the tags are distinct, so at most one bank writes it
                    hit_byte = Mux(landing[b] & (landing_slot[b] == entry), rdata[b].word_select(byte_r[j], 8),
                                   hit_byte)
                m.d.sync += value[j].eq(Mux(fill_r[j] == 1, c.zp_in, Mux(fill_r[j] == 2, hit_byte, 0)))
        with m.Elif(in_rows):
            for j in range(L):
                with m.If(lands[j]):
                    m.d.sync += value[j].eq(landed[j])

        # a row is written the cycle after its last read cycle, the reads landing then merged in
        pending = Signal()
        m.d.sync += pending.eq(r.last_cycle)
        m.d.comb += [a_wr.addr.eq(c.slot * p.stage_rows + r.written), a_wr.en.eq(pending),
                     a_wr.data.eq(Cat(*[Mux(lands_w[j], landed_w[j], value[j]) for j in range(L)]))]
        with m.If(pending):
            m.d.sync += r.written.eq(r.written + 1)
        return r

    # ---- WRITEBACK -------------------------------------------------------------------------------------------
    def _writeback(self, x: _Build) -> None:
        """Row i read from the output buffer in cycle t + i, written to the GLB the cycle after at
        ``OUT_ADDR + (m0 + i) OUT_CP + n0`` with byte enables (a row may span two words, in two banks)."""
        m, p, wb, banks, lb, lwb = x.m, x.p, x.wb, x.banks, x.lb, x.lwb
        ob = self.obuf_read
        go = x.starts(Op.WRITEBACK)
        rows, lanes, buf = Signal(11), Signal(5), Signal()
        read, written = Signal(11), Signal(11)
        pitch = Signal(24)
        addr = Signal(48)  # byte address of the row written this cycle
        with m.If(go):
            m.d.sync += [rows.eq(x.field(_F_WB_M)), lanes.eq(x.field(_F_WB_N)), buf.eq(x.field(_F_WB_OBUF)),
                         read.eq(1), written.eq(0), pitch.eq(x.reg(Reg.OUT_CP, 24)),
                         addr.eq(x.reg(Reg.OUT_ADDR, 24) + x.field(_F_WB_M0) * x.reg(Reg.OUT_CP, 24)
                                 + x.field(_F_WB_N0)),
                         x.state.eq(_WB)]
        active = x.state == _WB
        reading = active & (read < rows)
        m.d.comb += [ob.en.eq(go | reading), ob.buf.eq(Mux(active, buf, x.field(_F_WB_OBUF))),
                     ob.addr.eq(Mux(active, read, 0))]
        with m.If(reading):
            m.d.sync += read.eq(read + 1)
        inside = addr + lanes <= p.glb_bytes
        with m.If(active):
            m.d.sync += [written.eq(written + 1), addr.eq(addr + pitch)]
            with m.If(written == rows - 1):
                m.d.sync += x.state.eq(_IDLE)
            with m.If(~inside):
                x.fault(_ERR_GLB)
        offset = addr[:lwb]
        mask = Signal(p.cols)
        m.d.comb += mask.eq((Const(1, p.cols + 1) << lanes) - 1)
        wide, wide_we = Signal(16 * wb), Signal(2 * wb)
        m.d.comb += [wide.eq(Value.cast(ob.data) << (offset * 8)), wide_we.eq(mask << offset)]
        word = addr[lwb:]
        high = word + 1
        for b in range(banks):
            lo = active & inside & (word[:lb] == b)
            hi = active & inside & (high[:lb] == b) & wide_we[wb:].any()
            x.request(b, lo | hi, Mux(lo, word[lb:], high[lb:]), Mux(lo, wide_we[:wb], wide_we[wb:]),
                      Mux(lo, wide[:8 * wb], wide[8 * wb:]))

    # ---- LOADP, LOADLUT --------------------------------------------------------------------------------------
    def _loads(self, x: _Build) -> None:
        """LOADP: entry e's words read in cycle t + e, written to the parameter memory the cycle after. LOADLUT:
        table word i read in cycle t + i, written the cycle after."""
        m, p, wb, lb, lwb = x.m, x.p, x.wb, x.lb, x.lwb
        pw = p.param_words
        per_word = max(1, wb // PARAM_ENTRY_BYTES)  # entries in one GLB word (words wider than an entry)
        go_p, go_l = x.starts(Op.LOADP), x.starts(Op.LOADLUT)
        base, count = Signal(24 - lwb), Signal(17)
        item, got = Signal(17), Signal(17)  # the next item to read; the item landing this cycle
        start_word = x.field(_F_GLB_ADDR)[lwb:]
        # a fault found at issue (the executor's checks, in its order) stops the instruction there
        too_many = x.field(_F_LP_COUNT) > p.param_entries
        p_outside = x.field(_F_GLB_ADDR) + x.field(_F_LP_COUNT) * PARAM_ENTRY_BYTES > p.glb_bytes
        l_outside = x.field(_F_GLB_ADDR) + LUT_BYTES > p.glb_bytes
        with m.If(go_p):
            m.d.sync += [base.eq(start_word), count.eq(x.field(_F_LP_COUNT)), item.eq(1), got.eq(0),
                         x.state.eq(Mux(too_many | p_outside, _IDLE, _LP))]
            with m.If(too_many):
                x.fault(_ERR_PARAMS)
            with m.Elif(p_outside):
                x.fault(_ERR_GLB)
        with m.If(go_l):
            m.d.sync += [base.eq(start_word), count.eq(p.lut_words), item.eq(1), got.eq(0),
                         x.state.eq(Mux(l_outside, _IDLE, _LL))]
            with m.If(l_outside):
                x.fault(_ERR_GLB)
        in_p, in_l = x.state == _LP, x.state == _LL
        more = item < count

        # reads: the issue cycle's from the instruction, then an item a cycle
        def entry_word(first, e):
            return first + (e * pw if wb <= PARAM_ENTRY_BYTES else e // per_word)

        words = pw if wb <= PARAM_ENTRY_BYTES else 1
        entry = [Signal(24 - lwb, name=f"entry_word{q}") for q in range(words)]
        # the issue cycle's words from the instruction, selected by the state (a register), not by go
        may_p, may_l = x.may_start(Op.LOADP), x.may_start(Op.LOADLUT)
        m.d.comb += [w.eq(Mux(in_p, entry_word(base, item), entry_word(start_word, 0)) + q)
                     for q, w in enumerate(entry)]
        for w in entry:
            x.read_word(go_p | (in_p & more), w, owner=may_p | in_p)
        table = Signal(24 - lwb)
        m.d.comb += table.eq(Mux(in_l, base + item, start_word))
        x.read_word(go_l | (in_l & more), table, owner=may_l | in_l)
        with m.If((in_p | in_l) & more):
            m.d.sync += item.eq(item + 1)

        # landing: word q of an entry from bank (its first word + q) mod banks
        bank = Signal(lb)
        m.d.sync += bank.eq(Mux(may_p | in_p, entry[0][:lb], table[:lb]))
        if wb <= PARAM_ENTRY_BYTES:
            raw = Cat(*[_select(x.rdata, (bank + q)[:lb]) for q in range(pw)])
        else:
            raw = _select(x.rdata, bank).word_select(got[:_log2(per_word)], 8 * PARAM_ENTRY_BYTES)
        pwr, lw = self.param_write, self.lut_write
        m.d.comb += [pwr.en.eq(in_p), pwr.index.eq(got), pwr.bias.eq(raw[0:32]), pwr.mult.eq(raw[32:64]),
                     pwr.shift.eq(raw[64:70])]
        m.d.comb += [lw.en.eq(in_l), lw.index.eq(got), lw.data.eq(_select(x.rdata, bank))]
        with m.If(in_p | in_l):
            m.d.sync += got.eq(got + 1)
            with m.If(got == count - 1):
                m.d.sync += x.state.eq(_IDLE)


def _counter(tag: str, first: str, second: str) -> list:
    """The five registers of a pixel (ow, oh, ...) or tap (c, s, ...) counter: two indices, h, w, byte offset."""
    return [Signal(GEOMETRY_BITS, name=f"{tag}_{first}"), Signal(GEOMETRY_BITS, name=f"{tag}_{second}"),
            Signal(signed(ADDRESS_BITS), name=f"{tag}_h"), Signal(signed(ADDRESS_BITS), name=f"{tag}_w"),
            Signal(signed(ADDRESS_BITS), name=f"{tag}_off")]
