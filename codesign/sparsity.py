"""What an accelerator does with zeros, in Sparseloop's vocabulary (Wu et al., MICRO 2022).

Per operand (weights, input activations): a storage *format*, where it applies (off chip only, or also in
the global buffer), and an *action* on zero values: ``none`` (computed like any value), ``gate`` (the MAC
switches nothing: energy only) or ``skip`` (the cycle is not spent: only where the dataflow can, see
``DataflowModel.skips``). A format stores ``elements`` values of which ``nonzeros`` are nonzero in

    dense            elements * b
    bitmask          nonzeros * b + elements                      (one presence bit per element)
    run_length       (nonzeros + floor(zeros / 2^r)) * (b + r)    (r-bit zero-run counts; a run longer than
                                                                   2^r - 1 takes an entry more per 2^r zeros)
    coordinate_list  nonzeros * (b + c)                           (a c-bit coordinate per nonzero)

bits, ``r`` and ``c`` being the format's ``metadata_bits``. docs/simulator.md, "Sparsity", has how each
enters traffic, capacity, energy and cycles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction

from codesign.errors import SpecError

__all__ = ["StorageFormat", "ZeroAction", "LEVELS", "OperandSparsity", "SparsitySpec", "stored_bits"]

LEVELS = ("dram", "glb")  # where a compressed format can apply: off chip, and in the global buffer


class StorageFormat(str, Enum):
    DENSE = "dense"
    BITMASK = "bitmask"
    RUN_LENGTH = "run_length"
    COORDINATE_LIST = "coordinate_list"


class ZeroAction(str, Enum):
    NONE = "none"
    GATE = "gate"
    SKIP = "skip"


def stored_bits(fmt: StorageFormat, elements: int, nonzeros: int, value_bits: int, metadata_bits: int = 0) -> int:
    """Bits ``elements`` values (``nonzeros`` of them nonzero) take in ``fmt`` (formulas in the module doc)."""
    if not 0 <= nonzeros <= elements:
        raise ValueError(f"nonzeros={nonzeros} outside 0..{elements}")
    fmt = StorageFormat(fmt)
    if fmt is StorageFormat.DENSE:
        return elements * value_bits
    if fmt is StorageFormat.BITMASK:
        return nonzeros * value_bits + elements
    if fmt is StorageFormat.RUN_LENGTH:
        return (nonzeros + (elements - nonzeros) // (1 << metadata_bits)) * (value_bits + metadata_bits)
    return nonzeros * (value_bits + metadata_bits)


@dataclass(frozen=True)
class OperandSparsity:
    """How one operand's zeros are stored and acted on."""

    format: StorageFormat = StorageFormat.DENSE
    metadata_bits: int = 0  # run_length: bits of a run count; coordinate_list: bits of a coordinate
    levels: tuple[str, ...] = LEVELS  # where the format applies
    action: ZeroAction = ZeroAction.NONE

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "format", StorageFormat(self.format))
            object.__setattr__(self, "action", ZeroAction(self.action))
        except ValueError as exc:
            raise SpecError(f"sparsity: {exc}") from None
        object.__setattr__(self, "levels", tuple(self.levels))
        unknown = [level for level in self.levels if level not in LEVELS]
        if unknown:
            raise SpecError(f"sparsity: unknown level {unknown[0]!r}; one of {', '.join(LEVELS)}")
        needs = self.format in (StorageFormat.RUN_LENGTH, StorageFormat.COORDINATE_LIST)
        if needs and (isinstance(self.metadata_bits, bool) or not isinstance(self.metadata_bits, int)
                      or not 1 <= self.metadata_bits <= 32):
            raise SpecError(f"sparsity: a {self.format.value} format needs metadata_bits in 1..32, "
                            f"got {self.metadata_bits!r}")
        if not needs and self.metadata_bits:
            raise SpecError(f"sparsity: a {self.format.value} format takes no metadata_bits")

    @property
    def compressed(self) -> bool:
        return self.format is not StorageFormat.DENSE

    def ratio(self, level: str, elements: int, nonzeros: int, value_bits: int) -> Fraction:
        """Stored over dense size at ``level`` (1 where the format does not apply there)."""
        if not self.compressed or level not in self.levels or elements == 0:
            return Fraction(1)
        return Fraction(stored_bits(self.format, elements, nonzeros, value_bits, self.metadata_bits),
                        elements * value_bits)

    def gates(self) -> bool:
        """Zero values switch nothing (gating, or skipping, which saves the energy too)."""
        return self.action is not ZeroAction.NONE


@dataclass(frozen=True)
class SparsitySpec:
    """An accelerator's handling of zero weights and zero input activations.

    The default is the behaviour of a spec without a ``sparsity`` section: weights stored dense, zero
    weights skipped where the dataflow can (row stationary) and gated elsewhere; activations dense and
    computed like any value.
    """

    weights: OperandSparsity = field(default_factory=lambda: OperandSparsity(action=ZeroAction.SKIP))
    activations: OperandSparsity = field(default_factory=OperandSparsity)

    def operand(self, name: str) -> OperandSparsity:
        if name == "weight":
            return self.weights
        if name in ("input", "output"):
            return self.activations
        raise ValueError(f"unknown operand {name!r}")
