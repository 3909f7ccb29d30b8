"""Transfer times of the DRAM channel and the global buffer, at the rates of an accelerator spec.

DRAM: a read batch costs ``latency_cycles + ceil(bits / dram.bits_per_cycle)``; writes are posted (no
latency); an empty batch costs nothing. The GLB ports move ``glb.bits_per_cycle`` bits per cycle.
Every division rounds up exactly (the DRAM rate is a rational number of bits per cycle).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from codesign.arch import ArchSpec

__all__ = ["capacity_words", "read_cycles", "write_cycles", "glb_cycles", "ceil_div"]


def capacity_words(arch: ArchSpec, bits: int) -> int:
    """Values of ``bits`` each that fit the global buffer, densely packed."""
    return (arch.glb.size_bytes * 8) // bits


def ceil_div(bits: np.ndarray, rate: Fraction) -> np.ndarray:
    """ceil(bits / rate) exactly, for integer bits and a rational rate."""
    num, den = rate.numerator, rate.denominator
    return -((-np.asarray(bits, dtype=np.int64) * den) // num)


def read_cycles(bits: np.ndarray, arch: ArchSpec) -> np.ndarray:
    """Cycles of DRAM read batches: latency plus bandwidth time; an empty batch costs nothing."""
    bits = np.asarray(bits, dtype=np.int64)
    return np.where(bits > 0, arch.dram.latency_cycles + ceil_div(bits, arch.dram.bits_per_cycle), 0)


def write_cycles(bits: np.ndarray, arch: ArchSpec) -> np.ndarray:
    """Cycles of posted DRAM write batches: bandwidth time only."""
    return ceil_div(np.asarray(bits, dtype=np.int64), arch.dram.bits_per_cycle)


def glb_cycles(bits: np.ndarray, arch: ArchSpec) -> np.ndarray:
    """Cycles the GLB ports need to move ``bits``."""
    return ceil_div(np.asarray(bits, dtype=np.int64), Fraction(arch.glb.bits_per_cycle))
