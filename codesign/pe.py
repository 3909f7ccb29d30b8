"""The processing element, as both the simulator and the RTL generator read it.

A ``PeSpec`` names the PE's kind (what one lane computes), its operand formats, the accumulator the
accelerator provides, its register-file words per operand, and the multiplier the generator builds.
Integer arithmetic that both sides need (operand and product ranges, the exact accumulator width of
a reduction) lives here too, so the simulator and the generator agree on it by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from codesign.errors import SpecError

__all__ = ["PeKind", "PeSpec", "MULTIPLIERS", "operand_range", "product_range", "accumulator_bits"]

MULTIPLIERS = ("dsp", "logic")  # a hard DSP block ('*'), or a shift-and-add adder tree in logic


class PeKind(str, Enum):
    """What one PE lane computes."""

    INT_MAC = "int_mac"  # integer multiply-accumulate
    XNOR_POPCOUNT = "xnor_popcount"  # binarized: XNOR of packed sign bits, popcount, accumulate


@dataclass(frozen=True)
class PeSpec:
    """One processing element.

    ``accumulator_bits`` is the accumulator the accelerator provides (a generated core builds exactly
    the width its longest reduction needs, at most this). ``weight_signed`` / ``activation_signed``:
    two's complement or unsigned operands. ``multiplier``: how the generator builds the product.
    ``word_bits``: an XNOR-popcount PE takes one packed word of that many 1-bit weights and activations
    per cycle (FINN's SIMD width); an integer MAC PE takes one operand pair (1).
    """

    weight_bits: int = 8
    activation_bits: int = 8
    accumulator_bits: int = 32
    weight_rf_words: int = 1
    activation_rf_words: int = 1
    psum_rf_words: int = 1
    kind: PeKind = PeKind.INT_MAC
    weight_signed: bool = True
    activation_signed: bool = True
    multiplier: str = "dsp"
    word_bits: int = 1  # xnor_popcount: binary MACs per PE per cycle (the packed word); int_mac: 1

    def __post_init__(self) -> None:
        for name in ("weight_bits", "activation_bits", "accumulator_bits", "weight_rf_words",
                     "activation_rf_words", "psum_rf_words", "word_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"pe.{name}={value!r} must be a positive integer")
        try:
            object.__setattr__(self, "kind", PeKind(self.kind))
        except ValueError:
            kinds = ", ".join(k.value for k in PeKind)
            raise SpecError(f"pe.kind={self.kind!r} is not one of {kinds}") from None
        if self.kind is PeKind.INT_MAC and self.word_bits != 1:
            raise SpecError(f"pe.word_bits={self.word_bits} applies to xnor_popcount PEs; an int_mac PE takes 1")
        if self.kind is PeKind.XNOR_POPCOUNT and (self.weight_bits, self.activation_bits) != (1, 1):
            raise SpecError("an xnor_popcount PE takes 1-bit weights and activations "
                            f"(pe.weight_bits={self.weight_bits}, pe.activation_bits={self.activation_bits})")
        if self.multiplier not in MULTIPLIERS:
            raise SpecError(f"pe.multiplier={self.multiplier!r} is not one of {', '.join(MULTIPLIERS)}")

    @property
    def signed(self) -> bool:
        """Whether products (and so accumulators) are two's complement."""
        return self.weight_signed or self.activation_signed

    def accumulator_bits_for(self, reduction: int) -> int:
        """The narrowest accumulator that holds any sum of ``reduction`` products of this PE's operands."""
        return accumulator_bits(self.weight_bits, self.activation_bits, self.weight_signed,
                                self.activation_signed, reduction)


def operand_range(bits: int, is_signed: bool) -> tuple[int, int]:
    """Smallest and largest value of a ``bits``-wide operand."""
    if is_signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def product_range(weight_bits: int, activation_bits: int, weight_signed: bool, activation_signed: bool) -> tuple[int, int]:
    """Smallest and largest product of one weight and one activation."""
    w_lo, w_hi = operand_range(weight_bits, weight_signed)
    a_lo, a_hi = operand_range(activation_bits, activation_signed)
    corners = [w_lo * a_lo, w_lo * a_hi, w_hi * a_lo, w_hi * a_hi]
    return min(corners), max(corners)


def accumulator_bits(weight_bits: int, activation_bits: int, weight_signed: bool, activation_signed: bool,
                     reduction: int) -> int:
    """Narrowest accumulator holding any sum of ``reduction`` products (two's complement if any operand is signed).

    At most ``weight_bits + activation_bits + ceil(log2(reduction))``; exact, not that bound.
    """
    if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
        raise SpecError(f"reduction length {reduction!r} must be a positive integer")
    lo, hi = product_range(weight_bits, activation_bits, weight_signed, activation_signed)
    lo, hi = lo * reduction, hi * reduction
    if weight_signed or activation_signed:
        bits = 1
        while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
            bits += 1
        return bits
    return max(1, hi.bit_length())
