"""Double buffering of a layer's GLB blocks against the DRAM channel, and the stalls it leaves.

Transfer times come from the cycle contract (``codesign.contract.memory``). Double buffering
(docs/simulator.md, "Memory and stalls"): while block b computes, the next block's inputs load and the
previous block's outputs drain over the one DRAM channel, so

    cycles = load(0) + sum_b max(C_b, load(b+1) + write(b-1)) + write(B-1)

The GLB delivers ``glb.bits_per_cycle`` bits per cycle; a block whose on-chip traffic needs longer than
its compute runs at the GLB's pace (an on-chip bandwidth stall).

A split GLB (``glb.allocation: split``, docs/simulator.md section 6) holds one copy of a block: the array
waits while the block's input and partial sums load and while its outputs drain (Eyeriss, JSSC 2017 Sec. VI-A:
no processing while loading ifmaps or dumping ofmaps); only the filters, streamed through their own share,
load during the block's compute:

    cycles = sum_b [ fill(b) + max(C_b, filters(b)) + write(b) ]

fill(b) being the read cycles of block b's loads other than its filters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.arch import ArchSpec
from codesign.contract.memory import glb_cycles, read_cycles, write_cycles

__all__ = ["Timeline", "double_buffered", "split_buffered", "block_timeline"]


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


def split_buffered(compute: np.ndarray, glb_bits: np.ndarray, load_bits: np.ndarray, filter_bits: np.ndarray,
                   write_bits: np.ndarray, arch: ArchSpec, lanes: np.ndarray | None = None) -> Timeline:
    """Cycles of blocks run in order on a split GLB (formula in the module doc): ``filter_bits`` of each block's
    ``load_bits`` stream during its compute, the rest of its loads and its writes are serialized with it."""
    compute = np.asarray(compute, dtype=np.int64)
    if compute.size == 0:
        return Timeline(0, 0, 0, 0)
    paced = compute if lanes is None else np.maximum(compute, np.asarray(lanes, dtype=np.int64))
    busy = np.maximum(paced, glb_cycles(glb_bits, arch))
    filters = np.asarray(filter_bits, dtype=np.int64)
    fills = read_cycles(np.asarray(load_bits, dtype=np.int64) - filters, arch)
    streamed = read_cycles(filters, arch)
    writes = write_cycles(write_bits, arch)
    total = int((fills + np.maximum(busy, streamed) + writes).sum())
    compute_total, paced_total, busy_total = int(compute.sum()), int(paced.sum()), int(busy.sum())
    return Timeline(total, compute_total, busy_total - paced_total, total - busy_total, paced_total - compute_total)


def block_timeline(compute: np.ndarray, glb_bits: np.ndarray, sched, arch: ArchSpec,
                   lanes: np.ndarray | None = None) -> Timeline:
    """The timeline of a ``BlockSchedule`` under the GLB's allocation: ``double_buffered`` or ``split_buffered``."""
    if arch.glb.split:
        return split_buffered(compute, glb_bits, sched.load_bits, sched.weight_load_bits, sched.write_bits, arch, lanes)
    return double_buffered(compute, glb_bits, sched.load_bits, sched.write_bits, arch, lanes)
