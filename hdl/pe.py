"""The integer multiply-accumulate processing element of the systolic arrays.

Operands are 2..16-bit integers, each signed (two's complement) or unsigned. The accumulator is
exactly as wide as the worst-case sum of ``max_k`` products needs, so it cannot overflow for the
reduction length it was built for (``accumulator_bits``). The multiplier is either the ``*``
operator, which synthesis maps onto a hard DSP block, or a shift-and-add adder tree in logic
(one partial product per weight bit, the sign bit's subtracted: two's complement weighting).

Two PEs share that datapath: ``WsPe`` (weight stationary: a weight register, the activation moves
right, the partial sum moves down) and ``OsPe`` (output stationary: the accumulator stays, the
activation moves right, the weight moves down; a finished tile is copied into a second register,
the result bank, which shifts up to drain while the accumulator already works on the next tile).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import BitWidthError, HdlError

MIN_OPERAND_BITS = 2
MAX_OPERAND_BITS = 16
MULTIPLIERS = ("dsp", "logic")


def operand_range(bits: int, is_signed: bool) -> tuple[int, int]:
    """Smallest and largest value of a ``bits``-wide operand."""
    if is_signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def product_range(weight_bits: int, act_bits: int, weight_signed: bool, act_signed: bool) -> tuple[int, int]:
    """Smallest and largest product of one weight and one activation."""
    w_lo, w_hi = operand_range(weight_bits, weight_signed)
    a_lo, a_hi = operand_range(act_bits, act_signed)
    corners = [w_lo * a_lo, w_lo * a_hi, w_hi * a_lo, w_hi * a_hi]
    return min(corners), max(corners)


def accumulator_bits(weight_bits: int, act_bits: int, weight_signed: bool, act_signed: bool, max_k: int) -> int:
    """Narrowest accumulator holding any sum of ``max_k`` products (two's complement if any operand is signed).

    At most ``weight_bits + act_bits + ceil(log2(max_k))``; exact, not that bound.
    """
    if max_k < 1:
        raise HdlError(f"reduction length max_k={max_k} must be at least 1")
    lo, hi = product_range(weight_bits, act_bits, weight_signed, act_signed)
    lo, hi = lo * max_k, hi * max_k
    if weight_signed or act_signed:
        bits = 1
        while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
            bits += 1
        return bits
    return max(1, hi.bit_length())


def check_operand_bits(name: str, bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_OPERAND_BITS <= bits <= MAX_OPERAND_BITS:
        raise BitWidthError(
            f"{name}={bits!r} is outside the supported {MIN_OPERAND_BITS}..{MAX_OPERAND_BITS} bits of the integer PE"
        )


def check_multiplier(multiplier: str) -> None:
    if multiplier not in MULTIPLIERS:
        raise HdlError(f"multiplier {multiplier!r} is not one of {', '.join(MULTIPLIERS)}")


@dataclass(frozen=True)
class PeConfig:
    """Operand formats, accumulator width (from the reduction length) and multiplier of one PE."""

    weight_bits: int = 8
    act_bits: int = 8
    weight_signed: bool = True
    act_signed: bool = True
    max_k: int = 1
    multiplier: str = "dsp"

    def __post_init__(self) -> None:
        check_operand_bits("weight_bits", self.weight_bits)
        check_operand_bits("act_bits", self.act_bits)
        check_multiplier(self.multiplier)
        if isinstance(self.max_k, bool) or not isinstance(self.max_k, int) or self.max_k < 1:
            raise HdlError(f"reduction length max_k={self.max_k!r} must be a positive integer")

    @property
    def weight_shape(self) -> Shape:
        return signed(self.weight_bits) if self.weight_signed else unsigned(self.weight_bits)

    @property
    def act_shape(self) -> Shape:
        return signed(self.act_bits) if self.act_signed else unsigned(self.act_bits)

    @property
    def acc_bits(self) -> int:
        return accumulator_bits(self.weight_bits, self.act_bits, self.weight_signed, self.act_signed, self.max_k)

    @property
    def acc_shape(self) -> Shape:
        is_signed = self.weight_signed or self.act_signed
        return signed(self.acc_bits) if is_signed else unsigned(self.acc_bits)

    def with_multiplier(self, multiplier: str) -> "PeConfig":
        return PeConfig(self.weight_bits, self.act_bits, self.weight_signed, self.act_signed, self.max_k, multiplier)


def shift_add_product(act: Value, weight: Value, weight_bits: int, weight_signed: bool) -> Value:
    """``act * weight`` as a balanced adder tree of shifted partial products, one per weight bit.

    Two's complement: a signed weight's top bit has weight -2^(bits-1), so its partial product is
    subtracted. ``act`` keeps its own signedness, so signed activations need no correction.
    """
    terms: list[Value] = []
    for bit in range(weight_bits):
        partial = Mux(weight[bit], act, 0) << bit
        terms.append(-partial if (weight_signed and bit == weight_bits - 1) else partial)
    while len(terms) > 1:
        paired = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
    return terms[0]


def product(m: Module, config: PeConfig, act: Value, weight: Value) -> Signal:
    """A named product signal of ``act`` and ``weight`` built with the configured multiplier."""
    lo, hi = product_range(config.weight_bits, config.act_bits, config.weight_signed, config.act_signed)
    shape = Shape.cast(range(lo, hi + 1))
    result = Signal(shape, name="product")
    if config.multiplier == "dsp":
        m.d.comb += result.eq(act * weight)
    else:
        m.d.comb += result.eq(shift_add_product(act, weight, config.weight_bits, config.weight_signed))
    return result


class WsPe(wiring.Component):
    """Weight-stationary PE: ``psum_out <= psum_in + act_in * weight``, ``act_out <= act_in``.

    ``weight`` is loaded from ``weight_in`` on an edge where ``weight_load`` is high.
    """

    def __init__(self, config: PeConfig):
        if not isinstance(config, PeConfig):
            raise HdlError(f"WsPe needs a PeConfig, not {type(config).__name__}")
        self.config = config
        super().__init__(
            {
                "act_in": In(config.act_shape),
                "psum_in": In(config.acc_shape),
                "weight_in": In(config.weight_shape),
                "weight_load": In(1),
                "act_out": Out(config.act_shape),
                "psum_out": Out(config.acc_shape),
            }
        )

    def elaborate(self, platform):
        m = Module()
        weight = Signal(self.config.weight_shape)
        with m.If(self.weight_load):
            m.d.sync += weight.eq(self.weight_in)
        mult = product(m, self.config, self.act_in, weight)
        m.d.sync += [
            self.act_out.eq(self.act_in),
            self.psum_out.eq(self.psum_in + mult),
        ]
        return m


class OsPe(wiring.Component):
    """Output-stationary PE: ``acc <= acc + act_in * weight_in``; operands pass right and down.

    ``clear`` zeroes the accumulator (a new tile). ``acc_next`` is what the accumulator takes on this
    edge without a clear (``acc + act_in * weight_in``), so a finished sum can be taken on its last
    MAC's own edge. A second register, ``held`` (the result bank), takes ``acc_in`` (the PE below's
    ``acc_next``) on ``copy`` and ``held_in`` (the bank of the PE below) on ``bank_shift``: the copy is
    itself one step up, so row 0 leaves from the accumulators and the other rows drain up through the
    bank while the accumulators are reused.
    """

    def __init__(self, config: PeConfig):
        if not isinstance(config, PeConfig):
            raise HdlError(f"OsPe needs a PeConfig, not {type(config).__name__}")
        self.config = config
        super().__init__(
            {
                "act_in": In(config.act_shape),
                "weight_in": In(config.weight_shape),
                "acc_in": In(config.acc_shape),
                "held_in": In(config.acc_shape),
                "clear": In(1),
                "copy": In(1),
                "bank_shift": In(1),
                "act_out": Out(config.act_shape),
                "weight_out": Out(config.weight_shape),
                "acc": Out(config.acc_shape),
                "acc_next": Out(config.acc_shape),
                "held": Out(config.acc_shape),
            }
        )

    def elaborate(self, platform):
        m = Module()
        mult = product(m, self.config, self.act_in, self.weight_in)
        m.d.sync += [
            self.act_out.eq(self.act_in),
            self.weight_out.eq(self.weight_in),
        ]
        m.d.comb += self.acc_next.eq(self.acc + mult)
        with m.If(self.clear):
            m.d.sync += self.acc.eq(0)
        with m.Else():
            m.d.sync += self.acc.eq(self.acc_next)
        with m.If(self.copy):
            m.d.sync += self.held.eq(self.acc_in)
        with m.Elif(self.bank_shift):
            m.d.sync += self.held.eq(self.held_in)
        return m
