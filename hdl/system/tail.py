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


def _bounds(low, high):
    """(low', high', flip) for the clips by int32 registers ``low``, ``high`` followed by int8's: each bound
    clipped to int8, and ``flip`` when low' > high' (numpy's clip then gives high' whatever the value).
    ``clip(clip(x, low, high), -128, 127) == clip(x, low', high')`` (high' winning when flip): clamps are
    monotone, so two in a row are one by the intersection of their ranges, or the nearer end of the second."""
    low8, high8 = _int8(low), _int8(high)
    return low8, high8, low8 > high8


def _clip8(above, below, byte, bounds):
    """The int8 result of clipping a value x by ``bounds`` (``_bounds``), x given as ``above`` (x > 127),
    ``below`` (x < -128) or, when neither, its value ``byte``: every comparison 8 bits wide."""
    low8, high8, flip = bounds
    inside = ~above & ~below
    take_high = flip | above | (inside & (byte > high8))
    take_low = below | (inside & (byte < low8))
    return Mux(take_high, high8, Mux(take_low, low8, byte))


class _Upper:
    """What the offset sums of an int64 ``v`` need of its upper word ``H = v >> 32`` (signed), shared by a lane's
    two sums: whether H is -2, -1, 0 or 1 (near int8 after a carry), INT32_MAX or INT32_MIN (where a carry
    wraps int64), and its sign."""

    def __init__(self, v):
        upper = v[32:64]
        ones, zeros = upper[1:31].all(), ~upper[1:31].any()
        top, bit0 = upper[31], upper[0]
        self.minus2 = top & ones & ~bit0
        self.minus1 = top & ones & bit0
        self.zero = ~top & zeros & ~bit0
        self.plus1 = ~top & zeros & bit0
        self.maximum = ~top & ones & bit0
        self.minimum = top & zeros & ~bit0
        self.negative = top


def _offset(v, upper: _Upper, zp):
    """``x = wrap64(v + zp)`` (numpy's int64 sum of an int64 and an int32) as (above, below, byte): x > 127,
    x < -128, and its low byte. Only the low word is added (L = v[0:32] + zp, 34 bits); x's upper word is H + c
    with the carry c = L >> 32 in {-1, 0, 1}, so x is an int8 when H + c is 0 and L's bits 7..31 are 0, or H + c
    is -1 and they are 1, and x's sign is that of H + c, which wraps only from INT32_MAX up or INT32_MIN down.
    Exact for every int64 v and int32 zp (the 64-bit add and compares this replaces took a lane's most logic)."""
    low = v[:32] + zp  # unsigned 32 + signed 32: signed(34), exact
    carry_up = ~low[33] & low[32]
    carry_down = low[33]
    no_carry = ~low[33] & ~low[32]
    upper_zero = (no_carry & upper.zero) | (carry_up & upper.minus1) | (carry_down & upper.plus1)
    upper_minus1 = (no_carry & upper.minus1) | (carry_up & upper.minus2) | (carry_down & upper.zero)
    middle = low[7:32]
    inside = (upper_zero & ~middle.any()) | (upper_minus1 & middle.all())
    near = upper.minus2 | upper.minus1 | upper.zero | upper.plus1
    negative = Mux(near,
                   upper.minus2 | (upper.minus1 & ~carry_up) | (upper.zero & carry_down),
                   (upper.negative & ~(upper.minimum & carry_down)) | (upper.maximum & carry_up))
    return ~inside & ~negative, ~inside & negative, low[:8].as_signed()


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

        # stage 1 registers: stage 2's clamp bounds (as int8, _bounds) travel with the values
        valid1, lut_en1 = Signal(), Signal()
        clamp_lo1, clamp_hi1, clamp_flip1 = Signal(signed(8)), Signal(signed(8)), Signal()
        pre_bounds = _bounds(self.pre_lo, self.pre_hi)
        clamp_bounds = _bounds(self.clamp_lo, self.clamp_hi)
        m.d.sync += [valid1.eq(self.valid), lut_en1.eq(self.lut_en != 0), clamp_lo1.eq(clamp_bounds[0]),
                     clamp_hi1.eq(clamp_bounds[1]), clamp_flip1.eq(clamp_bounds[2]), self.out_valid.eq(valid1)]
        for j in range(self.lanes):
            table = memory.Memory(shape=unsigned(8 * word), depth=LUT_BYTES // word, init=identity)
            m.submodules[f"lut{j}"] = table
            write, read = table.write_port(), table.read_port()
            m.d.comb += [write.en.eq(self.lut_write.en), write.addr.eq(self.lut_write.index),
                         write.data.eq(self.lut_write.data)]
            v = self.v[j]
            upper = _Upper(v)
            # stage 1: c = clip(clip(v + ZP_PRE, PRE_LO, PRE_HI), -128, 127), the table read at c + 128
            pre = Signal(signed(8), name=f"lut_pre{j}")
            m.d.comb += pre.eq(_clip8(*_offset(v, upper, self.zp_pre), pre_bounds))
            address = Signal(8, name=f"lut_addr{j}")
            m.d.comb += [address.eq(Cat(pre[:7], ~pre[7])), read.addr.eq(address[byte_bits:]), read.en.eq(1)]
            byte1 = Signal(max(1, byte_bits), name=f"lut_byte{j}")
            if byte_bits:
                m.d.sync += byte1.eq(address[:byte_bits])
            # without the table: y = clip(clip(v + ZP_OUT, CLAMP_LO, CLAMP_HI), -128, 127)
            plain1 = Signal(signed(8), name=f"plain{j}")
            m.d.sync += plain1.eq(_clip8(*_offset(v, upper, self.zp_out), clamp_bounds))
            # stage 2: y = LUT[c + 128] - 128, clipped to CLAMP_LO..CLAMP_HI and to int8
            entry = read.data.word_select(byte1, 8) if byte_bits else read.data
            looked = _clip8(Const(0, 1), Const(0, 1), Cat(entry[:7], ~entry[7]).as_signed(),  # entry - 128
                            (clamp_lo1, clamp_hi1, clamp_flip1))
            m.d.sync += self.y[j].eq(Mux(lut_en1, looked, plain1))
        return m
