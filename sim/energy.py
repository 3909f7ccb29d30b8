"""Energy = counts x the accelerator's energy table (Accelergy-style action counting).

Memory levels: bits moved at a level x the table's energy per bit there (``ArchSpec.energy_per_bit``;
the GLB's figure is scaled to the buffer's size). MACs: MACs on non-zero weights x
``EnergyTable.mac_pj(weight_bits, activation_bits)`` -- zero-gating: a MAC whose weight is zero
switches nothing and costs nothing. Non-MAC layers: one MAC-equivalent at activation width per
element operation. The result names its table (``EnergyTable.describe()``) and unit.
"""

from __future__ import annotations

from codesign.arch import ArchSpec

__all__ = ["LEVELS", "level_energy", "mac_energy", "total", "table_name", "table_unit"]

LEVELS = ("dram", "glb", "noc", "rf")


def level_energy(arch: ArchSpec, bits_moved: dict) -> dict:
    """level -> operand -> energy for ``bits_moved`` (level -> operand -> bits)."""
    return {
        level: {op: bits * arch.energy_per_bit(level) for op, bits in ops.items()}
        for level, ops in bits_moved.items()
    }


def mac_energy(arch: ArchSpec, effective_macs: int, weight_bits: int, activation_bits: int) -> float:
    return effective_macs * arch.energy.mac_pj(weight_bits, activation_bits)


def total(energy: dict) -> float:
    """Sum of a level -> operand -> energy table plus its 'mac' entry."""
    value = 0.0
    for key, item in energy.items():
        value += sum(item.values()) if isinstance(item, dict) else item
    return value


def table_name(arch: ArchSpec) -> str:
    describe = getattr(arch.energy, "describe", None)
    return describe() if describe else f"{arch.energy.name} ({arch.energy.source})"


def table_unit(arch: ArchSpec) -> str:
    return getattr(arch.energy, "unit", "pJ")
