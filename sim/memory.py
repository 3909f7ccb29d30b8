"""Double buffering of a layer's GLB blocks against the DRAM channel, and the stalls it leaves.

Transfer times come from the cycle contract (``codesign.contract.memory``). Double buffering
(docs/simulator.md, "Memory and stalls"): while block b computes, the next block's inputs load and the
previous block's outputs drain over the one DRAM channel, so

    cycles = load(0) + sum_b max(C_b, load(b+1) + write(b-1)) + write(B-1)

The GLB delivers ``glb.bits_per_cycle`` bits per cycle; a block whose on-chip traffic needs longer than
its compute runs at the GLB's pace (an on-chip bandwidth stall).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.arch import ArchSpec
from codesign.contract.memory import glb_cycles, read_cycles, write_cycles

__all__ = ["Timeline", "double_buffered"]


@dataclass(frozen=True)
class Timeline:
    """A layer's cycles split into the array's own cycles and the two kinds of stall."""

    cycles: int
    compute_cycles: int
    glb_stall_cycles: int
    dram_stall_cycles: int
    lane_stall_cycles: int = 0  # the array waiting for fused layers on its output lanes

    @property
    def stall_cycles(self) -> int:
        return self.glb_stall_cycles + self.dram_stall_cycles + self.lane_stall_cycles


def double_buffered(compute: np.ndarray, glb_bits: np.ndarray, load_bits: np.ndarray, write_bits: np.ndarray,
                    arch: ArchSpec, lanes: np.ndarray | None = None) -> Timeline:
    """Cycles of blocks run in order with double-buffered DRAM transfers (formula in the module doc); ``lanes``:
    per-block cycles of a fused output path beside the array (a block lasts the longer of the two)."""
    compute = np.asarray(compute, dtype=np.int64)
    paced = compute if lanes is None else np.maximum(compute, np.asarray(lanes, dtype=np.int64))
    busy = np.maximum(paced, glb_cycles(glb_bits, arch))
    loads = read_cycles(load_bits, arch)
    writes = write_cycles(write_bits, arch)
    blocks = compute.size
    if blocks == 0:
        return Timeline(0, 0, 0, 0)
    during = np.zeros(blocks, dtype=np.int64)
    during[:-1] += loads[1:]
    during[1:] += writes[:-1]
    total = int(loads[0] + np.maximum(busy, during).sum() + writes[-1])
    compute_total = int(compute.sum())
    paced_total = int(paced.sum())
    busy_total = int(busy.sum())
    return Timeline(total, compute_total, busy_total - paced_total, total - busy_total, paced_total - compute_total)
