"""The accelerator spec: a PE array, its buffers, NoC, DRAM, clock and energy table.

Frozen dataclasses only; loading and validating YAML lives in ``codesign.arch_loader`` and the
bundled presets in ``codesign/presets``. Field names carry their units.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Dataflow(str, Enum):
    WEIGHT_STATIONARY = "ws"
    OUTPUT_STATIONARY = "os"
    ROW_STATIONARY = "rs"


class NocKind(str, Enum):
    SYSTOLIC = "systolic"  # neighbour-to-neighbour links (TPU-like)
    MULTICAST = "multicast"  # row / column multicast buses (Eyeriss)


@dataclass(frozen=True)
class PeSpec:
    """One processing element: operand bit-widths and register-file words per operand."""

    weight_bits: int = 8
    activation_bits: int = 8
    accumulator_bits: int = 32
    weight_rf_words: int = 1
    activation_rf_words: int = 1
    psum_rf_words: int = 1


@dataclass(frozen=True)
class BufferSpec:
    """The global (on-chip) buffer shared by all operands."""

    size_bytes: int
    banks: int = 1
    words_per_cycle: int = 1  # per bank; a word is ``word_bits`` wide
    word_bits: int = 64


@dataclass(frozen=True)
class DramSpec:
    bytes_per_cycle: float
    latency_cycles: int = 0


@dataclass(frozen=True)
class EnergyTable:
    """Per-action energies in pJ (Accelergy-style). ``name`` and ``source`` travel with every result.

    MAC energy scales with operand widths by ``mac_pj(weight_bits, activation_bits)``; memory
    energies are per access of ``access_bits`` bits and scale linearly with the bits moved.
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

    def mac_pj(self, weight_bits: int, activation_bits: int) -> float:
        """Multiplier energy quadratic in width (product of widths), adder linear.

        A 1x1-bit MAC is an XNOR plus a popcount step, costed as the linear (adder) share.
        """
        mult = self.mac_8b_pj * self.multiplier_share * (weight_bits * activation_bits) / 64.0
        add = self.mac_8b_pj * (1.0 - self.multiplier_share) * max(weight_bits, activation_bits) / 8.0
        if weight_bits == 1 and activation_bits == 1:
            mult = 0.0
        return mult + add

    def per_bit(self, level: str) -> float:
        """pJ per bit moved at a memory level: 'rf', 'noc', 'glb' or 'dram'."""
        table = {"rf": self.rf_pj, "noc": self.noc_hop_pj, "glb": self.glb_pj, "dram": self.dram_pj}
        return table[level] / self.access_bits


@dataclass(frozen=True)
class ArchSpec:
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

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    def supports(self, dataflow: Dataflow) -> bool:
        return dataflow in self.dataflows
