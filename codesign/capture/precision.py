"""Bit-width assignment: one default per model, overridden per op kind, then per layer name.

Precedence (most specific wins): layer name > op kind > model default. A 1-bit weight and
activation means a binarized layer (XNOR-popcount).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from codesign.errors import BitWidthError
from codesign.workload import Bits, OpKind

__all__ = ["BitsPolicy", "as_policy", "parse_bits", "parse_override"]


@dataclass(frozen=True)
class BitsPolicy:
    """Which ``Bits`` each layer gets: ``default``, unless its op kind or its name has an override."""

    default: Bits = field(default_factory=Bits)
    by_kind: Mapping[OpKind, Bits] = field(default_factory=dict)
    by_name: Mapping[str, Bits] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kinds = {}
        for kind, bits in dict(self.by_kind).items():
            try:
                kinds[OpKind(kind)] = bits
            except ValueError:
                known = ", ".join(item.value for item in OpKind)
                raise BitWidthError(f"unknown op kind {kind!r} for a bit-width override (known: {known})") from None
        object.__setattr__(self, "by_kind", kinds)
        object.__setattr__(self, "by_name", dict(self.by_name))

    def bits_for(self, name: str, op: OpKind) -> Bits:
        if name in self.by_name:
            return self.by_name[name]
        if op in self.by_kind:
            return self.by_kind[op]
        return self.default

    def unused_names(self, names: set[str]) -> list[str]:
        """Layer-name overrides that match no layer (a typo the user should hear about)."""
        return sorted(set(self.by_name) - names)


def as_policy(bits: Bits | BitsPolicy | None) -> BitsPolicy:
    """Accept a plain ``Bits`` (one width for the whole model) or a full policy."""
    if bits is None:
        return BitsPolicy()
    if isinstance(bits, BitsPolicy):
        return bits
    if isinstance(bits, Bits):
        return BitsPolicy(default=bits)
    raise BitWidthError(f"bits must be a Bits or a BitsPolicy, not {type(bits).__name__}")


def parse_bits(text: str, base: Bits | None = None) -> Bits:
    """Parse ``W,A`` or ``W,A,ACC`` (e.g. ``4,8`` or ``1,1,16``) into ``Bits``."""
    base = base or Bits()
    parts = [part.strip() for part in str(text).split(",")]
    if not 2 <= len(parts) <= 3:
        raise BitWidthError(f"bit-widths {text!r} must be W,A or W,A,ACC (for example 8,8 or 4,8,32)")
    values = []
    for part in parts:
        try:
            values.append(int(part))
        except ValueError:
            raise BitWidthError(f"bit-width {part!r} in {text!r} is not an integer") from None
    accumulator = values[2] if len(values) == 3 else base.accumulator
    bits = Bits(weight=values[0], activation=values[1], accumulator=accumulator)
    if len(values) == 3 and not bits.binarized and accumulator < bits.weight + bits.activation:
        raise BitWidthError(
            f"accumulator bit-width {accumulator} in {text!r} cannot hold one {bits.weight}x{bits.activation}-bit "
            f"product ({bits.weight + bits.activation} bits)"
        )
    return bits


def parse_override(text: str, base: Bits | None = None) -> tuple[str, Bits]:
    """Parse ``KEY=W,A[,ACC]`` into (key, Bits)."""
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip():
        raise BitWidthError(f"bit-width override {text!r} must look like NAME=W,A (for example fc=4,8)")
    return key.strip(), parse_bits(value, base)
