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

bits, ``r`` and ``c`` being the format's ``metadata_bits``. Packed (``word_bits`` W, run_length and
coordinate_list only), the entries of ``b + r`` (or ``b + c``) bits go whole into W-bit words, none straddling
two: ``ceil(entries / floor(W / (b + r))) * W`` bits (Eyeriss, JSSC 2017 Sec. IV-B: three 5+16-bit pairs per
64-bit word, 64/3 bits a pair). ``compress_network_input: false`` (activations) leaves the network's own input
dense (Eyeriss codes every fmap but the image). docs/simulator.md, "Sparsity", has how each enters traffic,
capacity, energy and cycles.

N:M structured sparsity (``StructuredSkip``): at most N nonzeros in every group of M consecutive weights along
the reduction (input channels, per kernel position), as NVIDIA's 2:4 sparse tensor cores (A100, Mishra et al.
2021) and S2TA (Liu et al., HPCA 2022) take it. A systolic array built for N:M holds N values per group and
log2(M) index bits per value; a mux picks each value's activation, so the reduction runs N/M as long.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction

from codesign.errors import SpecError

__all__ = ["StorageFormat", "ZeroAction", "LEVELS", "STANDARD_PATTERNS", "SYSTOLIC_DATAFLOWS", "OperandSparsity",
           "SparsitySpec", "StructuredSkip", "stored_bits", "implies", "pattern_text"]

LEVELS = ("dram", "glb")  # where a compressed format can apply: off chip, and in the global buffer
# N:M patterns capture looks for, strongest first: the sparsest (smallest N/M), then the smaller M (1:2 implies 2:4).
STANDARD_PATTERNS: tuple[tuple[int, int], ...] = ((1, 4), (2, 8), (1, 2), (2, 4), (4, 8))
SYSTOLIC_DATAFLOWS = ("ws", "os")  # the dataflows whose arrays can skip N:M groups


class StorageFormat(str, Enum):
    DENSE = "dense"
    BITMASK = "bitmask"
    RUN_LENGTH = "run_length"
    COORDINATE_LIST = "coordinate_list"


class ZeroAction(str, Enum):
    NONE = "none"
    GATE = "gate"
    SKIP = "skip"


def stored_bits(fmt: StorageFormat, elements: int, nonzeros: int, value_bits: int, metadata_bits: int = 0,
                word_bits: int = 0) -> int:
    """Bits ``elements`` values (``nonzeros`` of them nonzero) take in ``fmt``, entries packed whole into
    ``word_bits``-bit words when given (formulas in the module doc)."""
    if not 0 <= nonzeros <= elements:
        raise ValueError(f"nonzeros={nonzeros} outside 0..{elements}")
    fmt = StorageFormat(fmt)
    if fmt is StorageFormat.DENSE:
        return elements * value_bits
    if fmt is StorageFormat.BITMASK:
        return nonzeros * value_bits + elements
    if fmt is StorageFormat.RUN_LENGTH:
        entries = nonzeros + (elements - nonzeros) // (1 << metadata_bits)
    else:
        entries = nonzeros
    entry_bits = value_bits + metadata_bits
    if not word_bits:
        return entries * entry_bits
    per_word = word_bits // entry_bits
    if per_word < 1:
        raise ValueError(f"a {entry_bits}-bit entry does not fit a {word_bits}-bit word")
    return -(-entries // per_word) * word_bits


def implies(pattern: tuple[int, int], n: int, m: int) -> bool:
    """Whether weights that follow ``pattern`` (n1:m1, groups aligned to multiples of m1) also follow n:m.

    With m a multiple of m1, a group of m holds m/m1 groups of m1: at most n1*m/m1 nonzeros. With m1 a
    multiple of m, a group of m lies inside one of m1: at most min(n1, m) nonzeros. Otherwise no claim is made.
    """
    n1, m1 = pattern
    if m % m1 == 0:
        return n1 * (m // m1) <= n
    if m1 % m == 0:
        return min(n1, m) <= n
    return False


def pattern_text(pattern: tuple[int, int] | None) -> str:
    """'2:4' for (2, 4); '' for None."""
    return f"{pattern[0]}:{pattern[1]}" if pattern else ""


@dataclass(frozen=True)
class StructuredSkip:
    """An array that skips N:M structured zeros: its PEs hold the N values of every group of M weights along the
    reduction and log2(M) bits of index per value, and a mux picks the activation each value multiplies (NVIDIA
    A100 sparse tensor cores, 2:4; S2TA, Liu et al. HPCA 2022)."""

    n: int
    m: int

    def __post_init__(self) -> None:
        for name in ("n", "m"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(f"structured: {name} must be an integer, got {value!r}")
        if not 1 <= self.n < self.m:
            raise SpecError(f"structured: N:M needs 1 <= n < m (n values kept in every group of m), "
                            f"got {self.n}:{self.m}")
        if self.m & (self.m - 1):
            raise SpecError(f"structured: m must be a power of two (2, 4, 8, ...), got {self.m}")

    @property
    def metadata_bits(self) -> int:
        """Index bits per stored value: log2(M) (2 bits for 2:4)."""
        return self.m.bit_length() - 1

    @property
    def pattern(self) -> tuple[int, int]:
        return (self.n, self.m)


@dataclass(frozen=True)
class OperandSparsity:
    """How one operand's zeros are stored and acted on."""

    format: StorageFormat = StorageFormat.DENSE
    metadata_bits: int = 0  # run_length: bits of a run count; coordinate_list: bits of a coordinate
    levels: tuple[str, ...] = LEVELS  # where the format applies
    action: ZeroAction = ZeroAction.NONE
    structured: StructuredSkip | None = None  # weights only: the array skips N:M groups (systolic arrays)
    word_bits: int = 0  # run_length / coordinate_list: entries packed whole into words this wide (0: unpacked)
    compress_network_input: bool = True  # activations: False leaves the network's own input dense

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
        if self.word_bits:
            if isinstance(self.word_bits, bool) or not isinstance(self.word_bits, int) or self.word_bits < 1:
                raise SpecError(f"sparsity: word_bits must be a positive integer, got {self.word_bits!r}")
            if not needs:
                raise SpecError(f"sparsity: a {self.format.value} format packs no entries (word_bits is for "
                                f"run_length and coordinate_list)")
        if not isinstance(self.compress_network_input, bool):
            raise SpecError(f"sparsity: compress_network_input must be true or false, "
                            f"got {self.compress_network_input!r}")
        if self.structured is not None and self.action is not ZeroAction.SKIP:
            raise SpecError(f"sparsity: structured (N:M) skipping needs action: skip, got {self.action.value}")

    @property
    def compressed(self) -> bool:
        return self.format is not StorageFormat.DENSE

    def entry_fits(self, value_bits: int) -> bool:
        """Whether one entry of ``value_bits`` (plus metadata) fits a packing word (always, unpacked)."""
        return not self.word_bits or value_bits + self.metadata_bits <= self.word_bits

    def ratio(self, level: str, elements: int, nonzeros: int, value_bits: int, network_input: bool = False) -> Fraction:
        """Stored over dense size at ``level`` (1 where the format does not apply there, for the network's
        input when ``compress_network_input`` is off, and for values too wide for a packing word)."""
        if not self.compressed or level not in self.levels or elements == 0:
            return Fraction(1)
        if network_input and not self.compress_network_input:
            return Fraction(1)
        if not self.entry_fits(value_bits):
            return Fraction(1)
        return Fraction(stored_bits(self.format, elements, nonzeros, value_bits, self.metadata_bits, self.word_bits),
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

    def __post_init__(self) -> None:
        if self.activations.structured is not None:
            raise SpecError("sparsity: structured (N:M) skipping applies to weights only")
        if not self.weights.compress_network_input:
            raise SpecError("sparsity: compress_network_input applies to activations only")

    def array_problem(self, rows: int, dataflows: tuple[str, ...]) -> str:
        """Why an array of ``rows`` rows running ``dataflows`` cannot skip the N:M groups this spec says it does
        ('' when it can): it must be systolic (WS/OS only) with rows a multiple of M, so that every K fold of the
        array, dense or compressed, holds whole groups."""
        skip = self.weights.structured
        if skip is None:
            return ""
        cannot = [flow for flow in dataflows if flow not in SYSTOLIC_DATAFLOWS]
        if cannot:
            return (f"structured {skip.n}:{skip.m} skipping needs a systolic array: dataflow {cannot[0]} cannot "
                    f"skip N:M groups (list only {' and '.join(SYSTOLIC_DATAFLOWS)})")
        if rows % skip.m:
            return (f"structured {skip.n}:{skip.m} skipping needs rows to be a multiple of {skip.m} (every K fold "
                    f"holds whole groups), got rows {rows}")
        return ""

    def check_array(self, rows: int, dataflows: tuple[str, ...]) -> None:
        """SpecError when ``array_problem`` finds one (a spec as written; derived arrays just run dense)."""
        problem = self.array_problem(rows, dataflows)
        if problem:
            raise SpecError(f"sparsity: {problem}")

    def operand(self, name: str) -> OperandSparsity:
        if name == "weight":
            return self.weights
        if name in ("input", "output"):
            return self.activations
        raise ValueError(f"unknown operand {name!r}")
