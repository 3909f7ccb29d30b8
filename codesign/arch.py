"""The accelerator spec: a PE array, its buffers, NoC, DRAM, clock and energy table.

Frozen dataclasses only; loading and validating YAML lives in ``codesign.arch_loader`` and the
bundled presets in ``codesign/presets``. Field names carry their units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from enum import Enum
from fractions import Fraction

from codesign.pe import PeKind, PeSpec
from codesign.errors import SpecError
from codesign.sparsity import SparsitySpec

__all__ = [
    "SRAM_SIZE_CURVE", "sram_size_factor", "GLB_ALLOCATIONS", "Dataflow", "dataflow_name", "NocKind", "PeKind", "PeSpec", "BinaryArraySpec", "BufferSpec",
    "DramSpec", "EnergyTable", "ArchSpec"
]

# SRAM read energy versus capacity, 64-bit reads at 45 nm: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ
# (Horowitz, "Computing's energy problem", ISSCC 2014). Used only for its SHAPE: how a global-buffer
# access grows with the buffer's size, interpolated linearly in log(size)-log(energy) between the
# points and extrapolated beyond them with the nearest segment's slope (exponent 0.5 below 32 KB,
# log(5)/log(32) ~ 0.46 above). Every table anchors the curve at its own ``glb_reference_bytes``.
SRAM_SIZE_CURVE: tuple[tuple[int, float], ...] = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))


def sram_size_factor(size_bytes: float) -> float:
    """Relative read energy of an SRAM of ``size_bytes`` on the Horowitz curve (1.0 at 8 KB)."""
    if size_bytes <= 0:
        raise ValueError(f"buffer size must be positive, got {size_bytes}")
    points = [(math.log(s), math.log(e)) for s, e in SRAM_SIZE_CURVE]
    x = math.log(size_bytes)
    # Pick the segment holding x, or the end segment for extrapolation.
    index = 0
    while index < len(points) - 2 and x > points[index + 1][0]:
        index += 1
    (x0, y0), (x1, y1) = points[index], points[index + 1]
    y = y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return math.exp(y - points[0][1])


class Dataflow(str, Enum):
    WEIGHT_STATIONARY = "ws"
    OUTPUT_STATIONARY = "os"
    ROW_STATIONARY = "rs"


def dataflow_name(dataflow: object) -> str:
    """The short name of a dataflow: a ``Dataflow`` member's value, or the string itself ('ws', 'toy')."""
    return dataflow.value if isinstance(dataflow, Enum) else dataflow


class NocKind(str, Enum):
    SYSTOLIC = "systolic"  # neighbour-to-neighbour links (TPU-like)
    MULTICAST = "multicast"  # row / column multicast buses (Eyeriss)


GLB_ALLOCATIONS = ("double_buffered", "split")


@dataclass(frozen=True)
class BufferSpec:
    """The global (on-chip) buffer shared by all operands.

    ``allocation`` says how a block is held (docs/simulator.md section 6): ``double_buffered``, two copies of
    its input, filters and partial sums, the next block loading while one computes; ``split``, one copy of its
    input and partial sums in ``size_bytes - filter_bytes``, the filters streamed from DRAM through a
    ``filter_bytes`` share (Eyeriss, JSSC 2017 Sec. V-A), input and output transfers serialized with compute.
    """

    size_bytes: int
    banks: int = 1
    words_per_cycle: int = 1  # per bank; a word is ``word_bits`` wide
    word_bits: int = 64
    allocation: str = "double_buffered"
    filter_bytes: int = 0  # split only: the share the filters stream through

    def __post_init__(self) -> None:
        if self.allocation not in GLB_ALLOCATIONS:
            raise SpecError(f"glb.allocation: {self.allocation!r} is not one of {', '.join(GLB_ALLOCATIONS)}")
        if self.allocation == "split":
            if isinstance(self.filter_bytes, bool) or not isinstance(self.filter_bytes, int) \
                    or not 0 < self.filter_bytes < self.size_bytes:
                raise SpecError(f"glb.filter_bytes: a split allocation needs a filter share of 1 to "
                                f"{self.size_bytes - 1} bytes (below size_bytes), got {self.filter_bytes!r}")
        elif self.filter_bytes:
            raise SpecError("glb.filter_bytes: only a split allocation has a filter share "
                            f"(allocation is {self.allocation})")

    @property
    def split(self) -> bool:
        """One copy of each block, the filters streamed through their own share (``allocation: split``)."""
        return self.allocation == "split"

    @property
    def block_bits(self) -> int:
        """Bits a block's input and partial sums (split) or its two copies (double-buffered) may take."""
        return (self.size_bytes - self.filter_bytes) * 8

    @property
    def bits_per_cycle(self) -> int:
        """What the GLB ports deliver per cycle: ``banks * words_per_cycle * word_bits``."""
        return self.banks * self.words_per_cycle * self.word_bits


@dataclass(frozen=True)
class DramSpec:
    """Off-chip memory: bandwidth in bytes per core cycle, and latency to the first byte."""

    bytes_per_cycle: float
    latency_cycles: int = 0

    @cached_property
    def bits_per_cycle(self) -> Fraction:
        """Bandwidth as an exact fraction of bits per cycle, so float bandwidths round the same everywhere."""
        return Fraction(str(self.bytes_per_cycle)) * 8


@dataclass(frozen=True)
class EnergyTable:
    """Per-action energies in pJ (Accelergy-style). ``name`` and ``source`` travel with every result.

    MAC energy scales with operand widths by ``mac_pj(weight_bits, activation_bits)``; memory
    energies are per access of ``access_bits`` bits and scale linearly with the bits moved.
    ``unit`` says what the numbers are in ("pJ", or "normalized MAC energy" for a relative table);
    ``preset`` names the bundled table it was derived from ("" if built by hand).
    """

    name: str
    source: str
    mac_8b_pj: float  # one 8b x 8b multiply + its accumulate
    rf_pj: float  # register-file access of access_bits
    noc_hop_pj: float  # one hop on the array's network, access_bits moved
    glb_pj: float  # global buffer access of access_bits at ``glb_reference_bytes``
    dram_pj: float  # DRAM access of access_bits
    access_bits: int = 16
    glb_reference_bytes: int = 108 * 1024
    multiplier_share: float = 0.87  # share of mac_8b_pj that is the multiplier (scales ~ wb*ab)
    unit: str = "pJ"
    preset: str = ""

    def mac_pj(self, weight_bits: int, activation_bits: int) -> float:
        """Multiplier energy quadratic in width (product of widths), adder linear (docs/arch-yaml.md).

        A 1x1-bit MAC is an XNOR plus a popcount step, costed as the linear (adder) share.
        """
        if weight_bits < 1 or activation_bits < 1:
            raise ValueError(f"operand widths must be >= 1 bit, got {weight_bits} x {activation_bits}")
        mult = self.mac_8b_pj * self.multiplier_share * (weight_bits * activation_bits) / 64.0
        add = self.mac_8b_pj * (1.0 - self.multiplier_share) * max(weight_bits, activation_bits) / 8.0
        if weight_bits == 1 and activation_bits == 1:
            mult = 0.0
        return mult + add

    def per_bit(self, level: str) -> float:
        """pJ per bit moved at a memory level: 'rf', 'noc', 'glb' or 'dram'."""
        table = {"rf": self.rf_pj, "noc": self.noc_hop_pj, "glb": self.glb_pj, "dram": self.dram_pj}
        if level not in table:
            raise ValueError(f"unknown memory level {level!r}; one of: rf, noc, glb, dram")
        return table[level] / self.access_bits

    def glb_pj_for(self, size_bytes: int, bits: int) -> float:
        """Energy of one global-buffer access of ``bits`` in a buffer of ``size_bytes``.

        Linear in the bits moved; in size, ``glb_pj`` (at ``glb_reference_bytes``) scaled along the
        Horowitz SRAM curve: ``glb_pj * f(size) / f(reference) * bits / access_bits``.
        """
        if bits < 0:
            raise ValueError(f"bits must be >= 0, got {bits}")
        scale = sram_size_factor(size_bytes) / sram_size_factor(self.glb_reference_bytes)
        return self.glb_pj * scale * bits / self.access_bits

    def describe(self) -> str:
        """One line naming the table, its unit and its source, for reports."""
        return f"{self.name} ({self.unit}; {self.source})"


@dataclass(frozen=True)
class BinaryArraySpec:
    """A second PE array of XNOR-popcount PEs beside the integer one (FINN / VAQF mixed designs): binarized
    layers (1-bit weights and activations) run on it, every other layer on the main array. It shares the
    accelerator's global buffer, DRAM and clock."""

    rows: int
    cols: int
    word_bits: int = 32  # binary MACs per PE per cycle
    accumulator_bits: int = 16
    dataflow: str = "xnor"  # the registered dataflow model that maps and times layers on it

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "word_bits", "accumulator_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"binary_array.{name}={value!r} must be a positive integer")

    def view(self, arch: "ArchSpec") -> "ArchSpec":
        """``arch`` as its binary array: this array's shape and PEs, the same buffer, DRAM, clock and energy."""
        from dataclasses import replace

        return replace(arch, name=f"{arch.name}/binary", rows=self.rows, cols=self.cols, pe=self.pe,
                       dataflows=(self.dataflow,), binary_array=None)

    @property
    def pe(self) -> PeSpec:
        return PeSpec(weight_bits=1, activation_bits=1, accumulator_bits=self.accumulator_bits,
                      kind=PeKind.XNOR_POPCOUNT, word_bits=self.word_bits)


@dataclass(frozen=True)
class ArchSpec:
    """A whole accelerator: a rows x cols PE array, its buffers, network, DRAM, clock and energy table."""

    name: str
    rows: int
    cols: int
    pe: PeSpec
    glb: BufferSpec
    dram: DramSpec
    energy: EnergyTable
    noc: NocKind = NocKind.SYSTOLIC
    clock_mhz: float = 200.0
    dataflows: tuple[Dataflow, ...] = (Dataflow.WEIGHT_STATIONARY, Dataflow.OUTPUT_STATIONARY)
    source: str = ""  # preset name or YAML path it was loaded from
    description: str = ""
    sparsity: SparsitySpec = field(default_factory=SparsitySpec)
    binary_array: BinaryArraySpec | None = None

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    def energy_per_bit(self, level: str) -> float:
        """Energy per bit moved at 'rf', 'noc', 'glb' or 'dram'; the 'glb' figure is for this buffer's size."""
        if level == "glb":
            return self.energy.glb_pj_for(self.glb.size_bytes, 1)
        return self.energy.per_bit(level)

    def supports(self, dataflow: object) -> bool:
        """Whether the accelerator lists ``dataflow`` (a ``Dataflow`` member or a registered name)."""
        name = dataflow_name(dataflow)
        return any(dataflow_name(item) == name for item in self.dataflows)
