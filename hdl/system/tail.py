"""The output path's arithmetic, shared by the core unit and the vector ops (docs/isa.md, "The output tail").

``Requantize``: ``v = (sum over terms of x_t * M_t + 2^(S-1)) >> S`` in 64 bits, arithmetic shift (isa.md's
``rq``, and VADD's two terms with one rounding). ``OutputTail``: the table and clamp tail that turns v into int8,
with its own copy of the 256-entry table per lane so every lane looks a value up every cycle. ``PassRequantize``:
rq of a sum built one product a cycle on a narrow multiplier (18-bit x 32-bit, two MULT18X18D of the ECP5 per
lane; a full 32 x 32 product takes four), for the vector unit, which time-shares its multipliers (docs/isa.md,
"Timing"). All are pipelines of a fixed latency taking one input a cycle; every input (data and registers) is
sampled in the cycle ``valid`` is high, so the user may change the registers for the next input on the next cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from codesign.contract.system_timing import LUT_BYTES
from codesign.errors import HdlError
from hdl.system.ports import SHIFT_BITS, lut_write_signature

__all__ = ["REQUANT_LATENCY", "TAIL_LATENCY", "SHIFT_BITS", "REG_BITS", "PASS_X_BITS", "HALF_BITS", "Requantize",
           "PassRequantize", "OutputTail", "TAIL_REGS"]

REQUANT_LATENCY = 2  # products; sum, rounding and shift
TAIL_LATENCY = 2  # zero point, clamps and table read; table value or offset value, final clamps
REG_BITS = 32  # a configuration register
V_BITS = 64  # rq's int64
PASS_X_BITS = 18  # PassRequantize's x: one MULT18X18D operand, so x * mult (32 bits) is two of them
HALF_BITS = 17  # a 32-bit operand as two passes: bits 0..16 (unsigned, fits 18 signed) and 17..31 (signed)
TAIL_REGS = ("lut_en", "zp_pre", "pre_lo", "pre_hi", "zp_out", "clamp_lo", "clamp_hi")


def _positive(name: str, value, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HdlError(f"{owner}: {name}={value!r} must be a positive integer")
    return value


def _wrap(value, bits: int = V_BITS):
    """``value`` modulo 2^bits as a signed number: numpy's int64 arithmetic wraps the same way."""
    return value[:bits].as_signed()


def _int8(value):
    """``np.clip(value, -128, 127)`` as signed(8)."""
    return Mux(value < -128, -128, Mux(value > 127, 127, value[:8].as_signed()))


def _clip_int8(value, low, high):
    """``np.clip(np.clip(value, low, high), -128, 127)`` (``high`` wins if low > high, as numpy's) with every
    comparison side by side instead of four in a row: ``high`` when low > high or value > high, else ``low`` when
    value < low, else ``value``, each clipped to int8 on its own (chained, they limited the tail's clock)."""
    take_high = (low > high) | (value > high)
    take_low = value < low
    return Mux(take_high, _int8(high), Mux(take_low, _int8(low), _int8(value)))


class Requantize(wiring.Component):
    """``v = (sum_t x_t * mult_t + 2^(shift-1)) >> shift`` per lane in 64 bits (docs/isa.md ``rq``; VADD with
    ``terms=2``), wrapping as numpy's int64 does; shift 0 adds no rounding. Pipelined, ``LATENCY`` cycles from
    ``valid`` in to ``out_valid`` out, one input a cycle.

    Ports: In ``valid``, ``x`` (terms x lanes of signed(in_bits), in_bits 1..64), ``mult`` (terms x lanes of
    signed(32)), ``shift`` (lanes of unsigned(6)); Out ``out_valid`` (a signature holds one ``valid``), ``v``
    (lanes of signed(64)).
    """

    LATENCY = REQUANT_LATENCY

    def __init__(self, lanes: int, in_bits: int, terms: int = 1):
        self.lanes = _positive("lanes", lanes, "Requantize")
        self.in_bits = _positive("in_bits", in_bits, "Requantize")
        self.terms = _positive("terms", terms, "Requantize")
        if in_bits > V_BITS:
            raise HdlError(f"Requantize: in_bits={in_bits} above rq's {V_BITS} bits")
        super().__init__({
            "valid": In(1),
            "x": In(data.ArrayLayout(data.ArrayLayout(signed(in_bits), lanes), terms)),
            "mult": In(data.ArrayLayout(data.ArrayLayout(signed(REG_BITS), lanes), terms)),
            "shift": In(data.ArrayLayout(unsigned(SHIFT_BITS), lanes)),
            "out_valid": Out(1),
            "v": Out(data.ArrayLayout(signed(V_BITS), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        product_bits = self.in_bits + REG_BITS
        valid1 = Signal()
        m.d.sync += [valid1.eq(self.valid), self.out_valid.eq(valid1)]
        for j in range(self.lanes):
            # stage 1: the products x_t * M_t (exact: in_bits + 32 bits; wrapped to 64 bits below, as numpy's)
            products = [Signal(signed(product_bits), name=f"p{t}_{j}") for t in range(self.terms)]
            shift1 = Signal(unsigned(SHIFT_BITS), name=f"shift1_{j}")
            m.d.sync += [p.eq(self.x[t][j] * self.mult[t][j]) for t, p in enumerate(products)]
            m.d.sync += shift1.eq(self.shift[j])
            # stage 2: + 2^(S-1), wrapped to 64 bits as numpy's int64, then >> S (arithmetic)
            total = sum(products[1:], products[0])
            rounding = Mux(shift1 == 0, 0, Const(1, unsigned(V_BITS)) << (shift1 - 1)[:SHIFT_BITS])
            rounded = _wrap(total + rounding)
            m.d.sync += self.v[j].eq(rounded >> shift1)
        return m


class PassRequantize(wiring.Component):
    """``v = (bias + sum_p x_p * mult_p * 2^(HALF_BITS hi_p)) >> shift`` per lane, one pass (product) a cycle, in
    64 bits wrapping as numpy's int64, arithmetic shift; the rounding 2^(shift-1) is the user's, in ``bias``. A pass
    with ``first`` starts the sum at ``bias``, one with ``last`` ends it (``v`` LATENCY cycles later); ``hi``
    weights the pass's product by 2^HALF_BITS (the high half of a 32-bit x). ``x`` is PASS_X_BITS wide, so each
    lane's multiplier is two MULT18X18D (docs/system-rtl.md, "Resources").

    Ports: In ``valid``, ``first``, ``last``, ``hi``, ``x`` (lanes of signed(18)), ``mult`` (lanes of signed(32)),
    ``bias`` (signed(64), sampled with a ``first`` pass), ``shift`` (unsigned(6), sampled with a ``last`` pass);
    Out ``product`` (lanes of x * mult the cycle after, whatever ``valid``: a user may combine lanes' products),
    ``out_valid``, ``v`` (lanes of signed(64)).
    """

    LATENCY = REQUANT_LATENCY

    def __init__(self, lanes: int):
        self.lanes = _positive("lanes", lanes, "PassRequantize")
        self.product_bits = PASS_X_BITS + REG_BITS
        super().__init__({
            "valid": In(1), "first": In(1), "last": In(1), "hi": In(1),
            "x": In(data.ArrayLayout(signed(PASS_X_BITS), lanes)),
            "mult": In(data.ArrayLayout(signed(REG_BITS), lanes)),
            "bias": In(signed(V_BITS)),
            "shift": In(unsigned(SHIFT_BITS)),
            "product": Out(data.ArrayLayout(signed(self.product_bits), lanes)),
            "out_valid": Out(1),
            "v": Out(data.ArrayLayout(signed(V_BITS), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        # stage 1: the products, and the pass's controls beside them
        valid1, first1, last1, hi1 = Signal(), Signal(), Signal(), Signal()
        bias1 = Signal(signed(V_BITS))
        shift1 = Signal(unsigned(SHIFT_BITS))
        m.d.sync += [valid1.eq(self.valid), first1.eq(self.first), last1.eq(self.last), hi1.eq(self.hi),
                     self.out_valid.eq(valid1 & last1)]
        with m.If(self.valid & self.first):
            m.d.sync += bias1.eq(self.bias)
        with m.If(self.valid & self.last):
            m.d.sync += shift1.eq(self.shift)
        for j in range(self.lanes):
            m.d.sync += self.product[j].eq(self.x[j] * self.mult[j])
            # stage 2: the running sum (from bias on a first pass) plus this product, then >> shift on a last one
            acc = Signal(signed(V_BITS), name=f"acc{j}")
            term = Mux(hi1, self.product[j] << HALF_BITS, self.product[j])
            total = Signal(signed(V_BITS), name=f"total{j}")
            m.d.comb += total.eq(_wrap(Mux(first1, bias1, acc) + term))
            with m.If(valid1):
                m.d.sync += acc.eq(total)
            with m.If(valid1 & last1):
                m.d.sync += self.v[j].eq(total >> shift1)
        return m


class OutputTail(wiring.Component):
    """docs/isa.md's output tail on ``lanes`` values v (int64) at once, as ``executor.Machine._tail``: with
    ``lut_en`` (nonzero) ``c = clip(clip(v + zp_pre, pre_lo, pre_hi), -128, 127)``, ``y = LUT[c + 128] - 128``;
    without, ``y = v + zp_out``; then ``y = clip(clip(y, clamp_lo, clamp_hi), -128, 127)``. Each lane has its own
    copy of the table (written together through ``lut_write``, initially the identity, as the executor's), so all
    lanes look up every cycle. ``LATENCY`` cycles, one input a cycle; registers are sampled with ``v``.
    """

    LATENCY = TAIL_LATENCY

    def __init__(self, lanes: int, word_bytes: int):
        self.lanes = _positive("lanes", lanes, "OutputTail")
        self.word_bytes = _positive("word_bytes", word_bytes, "OutputTail")
        if word_bytes & (word_bytes - 1) or LUT_BYTES % word_bytes:
            raise HdlError(f"OutputTail: word_bytes={word_bytes} must be a power of two dividing {LUT_BYTES}")
        members = {"valid": In(1), "v": In(data.ArrayLayout(signed(V_BITS), lanes))}
        members.update({name: In(signed(REG_BITS)) for name in TAIL_REGS})
        members["lut_write"] = In(lut_write_signature(word_bytes))
        members["out_valid"] = Out(1)
        members["y"] = Out(data.ArrayLayout(signed(8), lanes))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        word = self.word_bytes
        byte_bits = (word - 1).bit_length()
        identity = [sum((w * word + b) << (8 * b) for b in range(word)) for w in range(LUT_BYTES // word)]

        # stage 1 registers: the registers stage 2 still needs travel with the values
        valid1, lut_en1 = Signal(), Signal()
        clamp_lo1, clamp_hi1 = Signal(signed(REG_BITS)), Signal(signed(REG_BITS))
        m.d.sync += [valid1.eq(self.valid), lut_en1.eq(self.lut_en != 0), clamp_lo1.eq(self.clamp_lo),
                     clamp_hi1.eq(self.clamp_hi), self.out_valid.eq(valid1)]
        for j in range(self.lanes):
            table = memory.Memory(shape=unsigned(8 * word), depth=LUT_BYTES // word, init=identity)
            m.submodules[f"lut{j}"] = table
            write, read = table.write_port(), table.read_port()
            m.d.comb += [write.en.eq(self.lut_write.en), write.addr.eq(self.lut_write.index),
                         write.data.eq(self.lut_write.data)]
            v = self.v[j]
            # stage 1: c = clip(clip(v + ZP_PRE, PRE_LO, PRE_HI), -128, 127), the table read at c + 128
            pre = Signal(signed(8), name=f"lut_pre{j}")
            m.d.comb += pre.eq(_clip_int8(_wrap(v + self.zp_pre), self.pre_lo, self.pre_hi))
            address = Signal(8, name=f"lut_addr{j}")
            m.d.comb += [address.eq(Cat(pre[:7], ~pre[7])), read.addr.eq(address[byte_bits:]), read.en.eq(1)]
            byte1 = Signal(max(1, byte_bits), name=f"lut_byte{j}")
            if byte_bits:
                m.d.sync += byte1.eq(address[:byte_bits])
            # without the table: y = clip(clip(v + ZP_OUT, CLAMP_LO, CLAMP_HI), -128, 127)
            plain1 = Signal(signed(8), name=f"plain{j}")
            m.d.sync += plain1.eq(_clip_int8(_wrap(v + self.zp_out), self.clamp_lo, self.clamp_hi))
            # stage 2: y = LUT[c + 128] - 128, clipped to CLAMP_LO..CLAMP_HI and to int8
            entry = read.data.word_select(byte1, 8) if byte_bits else read.data
            looked = _clip_int8(Cat(entry[:7], ~entry[7]).as_signed(), clamp_lo1, clamp_hi1)  # entry - 128
            m.d.sync += self.y[j].eq(Mux(lut_en1, looked, plain1))
        return m
