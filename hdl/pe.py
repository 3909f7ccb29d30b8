"""The integer multiply-accumulate processing element of the systolic arrays.

A PE is described by a ``codesign.pe.PeSpec`` (the one spec the simulator reads too) plus the
length of the longest reduction its accumulator must hold. Operands are 2..16-bit integers, each
signed (two's complement) or unsigned (``weight_signed`` / ``activation_signed``). The accumulator
is exactly as wide as the worst-case sum of ``reduction`` products needs
(``codesign.pe.accumulator_bits``), so it cannot overflow for the reduction it was built for. The
multiplier (``PeSpec.multiplier``) is either the ``*`` operator, which synthesis maps onto a hard
DSP block, or a shift-and-add adder tree in logic (one partial product per weight bit, the sign
bit's subtracted: two's complement weighting).

Two PEs share that datapath: ``WsPe`` (weight stationary: a weight register, the activation moves
right, the partial sum moves down) and ``OsPe`` (output stationary: the accumulator stays, the
activation moves right, the weight moves down; a finished tile is copied into a second register,
the result bank, which shifts up to drain while the accumulator already works on the next tile).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import BitWidthError, HdlError
from codesign.pe import MULTIPLIERS, PeKind, PeSpec, accumulator_bits, product_range

__all__ = [
    "MIN_OPERAND_BITS", "MAX_OPERAND_BITS", "MULTIPLIERS", "check_operand_bits", "check_multiplier",
    "check_reduction", "check_pe", "weight_shape", "activation_shape", "accumulator_shape",
    "shift_add_product", "product", "PRODUCT_STAGES", "WsPe", "OsPe",
]

MIN_OPERAND_BITS = 2
MAX_OPERAND_BITS = 16


def check_operand_bits(name: str, bits: int) -> None:
    """BitWidthError unless ``bits`` is an int in the integer PE's 2..16."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_OPERAND_BITS <= bits <= MAX_OPERAND_BITS:
        raise BitWidthError(
            f"{name}={bits!r} is outside the supported {MIN_OPERAND_BITS}..{MAX_OPERAND_BITS} bits of the integer PE"
        )


def check_multiplier(multiplier: str) -> None:
    """HdlError unless ``multiplier`` is one the generator builds ('dsp' or 'logic')."""
    if multiplier not in MULTIPLIERS:
        raise HdlError(f"multiplier {multiplier!r} is not one of {', '.join(MULTIPLIERS)}")


def check_reduction(reduction: int) -> int:
    """``reduction`` if it is a positive int (the longest sum an accumulator holds), else HdlError."""
    if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
        raise HdlError(f"reduction length {reduction!r} must be a positive integer")
    return reduction


def check_pe(pe: PeSpec, reduction: int, user: str = "the integer PE") -> None:
    """HdlError / BitWidthError unless ``pe`` is an integer-MAC ``PeSpec`` the generator can build.

    Checks its kind (only ``PeKind.INT_MAC``), operand widths (2..16 bits), multiplier, and that
    ``reduction`` is a positive int.
    """
    if not isinstance(pe, PeSpec):
        raise HdlError(f"{user} needs a codesign.pe.PeSpec, not {type(pe).__name__}")
    if pe.kind is not PeKind.INT_MAC:
        raise HdlError(f"no generator for PE kind {pe.kind.value!r} in {user}: it builds "
                       f"{PeKind.INT_MAC.value!r} PEs (hdl.binary has the XNOR-popcount units)")
    check_operand_bits("weight_bits", pe.weight_bits)
    check_operand_bits("activation_bits", pe.activation_bits)
    check_multiplier(pe.multiplier)
    check_reduction(reduction)


def weight_shape(pe: PeSpec) -> Shape:
    """Shape of one weight: ``weight_bits``, signed if ``weight_signed``."""
    return signed(pe.weight_bits) if pe.weight_signed else unsigned(pe.weight_bits)


def activation_shape(pe: PeSpec) -> Shape:
    """Shape of one activation: ``activation_bits``, signed if ``activation_signed``."""
    return signed(pe.activation_bits) if pe.activation_signed else unsigned(pe.activation_bits)


def accumulator_shape(pe: PeSpec, reduction: int) -> Shape:
    """The narrowest accumulator holding any sum of ``reduction`` products (signed if any operand is)."""
    bits = accumulator_bits(pe.weight_bits, pe.activation_bits, pe.weight_signed, pe.activation_signed,
                            check_reduction(reduction))
    return signed(bits) if pe.signed else unsigned(bits)


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


def product(m: Module, pe: PeSpec, act: Value, weight: Value) -> Signal:
    """A named product signal of ``act`` and ``weight`` built with ``pe.multiplier``."""
    lo, hi = product_range(pe.weight_bits, pe.activation_bits, pe.weight_signed, pe.activation_signed)
    shape = Shape.cast(range(lo, hi + 1))
    result = Signal(shape, name="product")
    if pe.multiplier == "dsp":
        m.d.comb += result.eq(act * weight)
    else:
        m.d.comb += result.eq(shift_add_product(act, weight, pe.weight_bits, pe.weight_signed))
    return result


PRODUCT_STAGES = 1  # register stages a pipelined PE puts between its multiplier and its adder


def _check_pipelined(pipelined) -> bool:
    if not isinstance(pipelined, bool):
        raise HdlError(f"pipelined={pipelined!r} must be True or False")
    return pipelined


def _staged(m: Module, value: Signal, pipelined: bool, gate=None) -> Value:
    """``value`` (a product), registered when ``pipelined`` (zero instead where ``gate`` is low)."""
    if not pipelined:
        return value
    staged = Signal.like(value, name="product_q")
    m.d.sync += staged.eq(value if gate is None else Mux(gate, value, 0))
    return staged


class WsPe(wiring.Component):
    """Weight-stationary PE: ``psum_out <= psum_in + act_in * weight``, ``act_out <= act_in``.

    ``weight`` is loaded from ``weight_in`` on an edge where ``weight_load`` is high. ``psum_next`` is
    what ``psum_out`` takes on this edge (so the array's last row can be written out on its own edge).
    With ``pipelined`` the product is registered first (``PRODUCT_STAGES``): ``psum_out`` then adds the
    product of the act present one edge earlier, so the multiplier never shares a cycle with the adder.

    Parameters: ``pe``, an integer-MAC ``codesign.pe.PeSpec`` (operand widths and signedness,
    multiplier); ``reduction``, the longest sum of products the partial sum must hold (the array's
    rows), which sets the exact accumulator width; ``pipelined`` (keyword) registers the product.
    Raises HdlError (wrong kind, bad reduction or multiplier) or BitWidthError (operands outside 2..16 bits).
    """

    def __init__(self, pe: PeSpec, reduction: int, *, pipelined: bool = False):
        check_pe(pe, reduction, "WsPe")
        self.pe = pe
        self.reduction = reduction
        self.pipelined = _check_pipelined(pipelined)
        acc = accumulator_shape(pe, reduction)
        super().__init__(
            {
                "act_in": In(activation_shape(pe)),
                "psum_in": In(acc),
                "weight_in": In(weight_shape(pe)),
                "weight_load": In(1),
                "act_out": Out(activation_shape(pe)),
                "psum_out": Out(acc),
                "psum_next": Out(acc),
            }
        )

    def elaborate(self, platform):
        m = Module()
        weight = Signal(weight_shape(self.pe))
        with m.If(self.weight_load):
            m.d.sync += weight.eq(self.weight_in)
        mult = _staged(m, product(m, self.pe, self.act_in, weight), self.pipelined)
        m.d.comb += self.psum_next.eq(self.psum_in + mult)
        m.d.sync += [
            self.act_out.eq(self.act_in),
            self.psum_out.eq(self.psum_next),
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

    With ``pipelined`` the product is registered first and gated there: it is zero unless both
    ``act_valid_in`` and ``weight_valid_in`` were high (the valid bits travel with the operands, out on
    ``act_valid_out`` / ``weight_valid_out``), so operands without a beat need not be zeroed before the
    multiplier, and the accumulator adds the product of the operands present one edge earlier.

    Parameters: ``pe``, an integer-MAC ``codesign.pe.PeSpec``; ``reduction``, the longest sum the
    accumulator must hold (the core's largest streamed k); ``pipelined`` (keyword). Raises as ``WsPe``.
    """

    def __init__(self, pe: PeSpec, reduction: int, *, pipelined: bool = False):
        check_pe(pe, reduction, "OsPe")
        self.pe = pe
        self.reduction = reduction
        self.pipelined = _check_pipelined(pipelined)
        acc = accumulator_shape(pe, reduction)
        members = {
            "act_in": In(activation_shape(pe)),
            "weight_in": In(weight_shape(pe)),
            "acc_in": In(acc),
            "held_in": In(acc),
            "clear": In(1),
            "copy": In(1),
            "bank_shift": In(1),
            "act_out": Out(activation_shape(pe)),
            "weight_out": Out(weight_shape(pe)),
            "acc": Out(acc),
            "acc_next": Out(acc),
            "held": Out(acc),
        }
        if pipelined:
            members.update({"act_valid_in": In(1), "weight_valid_in": In(1),
                            "act_valid_out": Out(1), "weight_valid_out": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        gate = None
        if self.pipelined:
            gate = self.act_valid_in & self.weight_valid_in
            m.d.sync += [self.act_valid_out.eq(self.act_valid_in), self.weight_valid_out.eq(self.weight_valid_in)]
        mult = _staged(m, product(m, self.pe, self.act_in, self.weight_in), self.pipelined, gate)
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
