"""Bit-width assignment: one default per model, overridden per op kind, then per layer name.

Precedence (first that applies wins): layer name > op kind > a default that was asked for (``--bits``) >
the widths a quantized model carries itself (``codesign.capture.quantized``) > the fallback default: the
accelerator's PE widths when the capture is for one accelerator, else 8/8/32. A 1-bit weight and
activation means a binarized layer (XNOR-popcount).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Mapping

from codesign.errors import BitWidthError
from codesign.workload import MAX_BITS, Bits, OpKind

if TYPE_CHECKING:  # pragma: no cover
    from codesign.arch import ArchSpec
    from codesign.pe import PeSpec

__all__ = ["OwnWidths", "BitsPolicy", "as_policy", "pe_bits", "for_arch", "parse_bits", "parse_override"]


@dataclass(frozen=True)
class OwnWidths:
    """The widths a quantized model gives one layer itself: None where it quantizes that operand not at all."""

    weight: int | None = None
    activation: int | None = None

    def __bool__(self) -> bool:
        return self.weight is not None or self.activation is not None


@dataclass(frozen=True)
class BitsPolicy:
    """Which ``Bits`` each layer gets: ``default``, unless its op kind or its name has an override.

    ``explicit``: True when ``default`` was asked for (``--bits``, or a ``Bits`` passed to ``from_torch``): it then
    wins over a quantized model's own widths. False: it only fills in what the model does not quantize itself.
    """

    default: Bits = field(default_factory=Bits)
    by_kind: Mapping[OpKind, Bits] = field(default_factory=dict)
    by_name: Mapping[str, Bits] = field(default_factory=dict)
    explicit: bool = True

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

    def bits_for(self, name: str, op: OpKind, own: OwnWidths | None = None) -> Bits:
        """Layer name > op kind > an explicit default > the model's ``own`` widths > the fallback default."""
        if name in self.by_name:
            return self.by_name[name]
        if op in self.by_kind:
            return self.by_kind[op]
        if self.explicit or not own:
            return self.default
        return Bits(
            weight=own.weight if own.weight is not None else self.default.weight,
            activation=own.activation if own.activation is not None else self.default.activation,
            accumulator=self.default.accumulator,
        )

    def unused_names(self, names: set[str]) -> list[str]:
        """Layer-name overrides that match no layer (a typo the user should hear about)."""
        return sorted(set(self.by_name) - names)


def as_policy(bits: Bits | BitsPolicy | None) -> BitsPolicy:
    """Accept a plain ``Bits`` (one width for the whole model, explicit) or a full policy; None: no width asked
    for (a quantized model's own widths, else 8/8/32 or the accelerator's, ``for_arch``)."""
    if bits is None:
        return BitsPolicy(explicit=False)
    if isinstance(bits, BitsPolicy):
        return bits
    if isinstance(bits, Bits):
        return BitsPolicy(default=bits)
    raise BitWidthError(f"bits must be a Bits or a BitsPolicy, not {type(bits).__name__}")


def pe_bits(pe: "PeSpec") -> Bits:
    """The widths a PE computes at: its weight and activation operands, its accumulator (at most 32 bits, the
    widest a layer's partial sums are kept at)."""
    return Bits(weight=pe.weight_bits, activation=pe.activation_bits, accumulator=min(MAX_BITS, pe.accumulator_bits))


def for_arch(policy: BitsPolicy, arch: "ArchSpec") -> BitsPolicy:
    """``policy`` for a capture that runs on ``arch``: a default nobody asked for becomes the PE's widths."""
    if policy.explicit:
        return policy
    try:
        default = pe_bits(arch.pe)
    except BitWidthError as exc:
        raise BitWidthError(f"{arch.name}: its PE widths cannot be a layer's default ({exc}); pass --bits") from None
    return replace(policy, default=default)


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
