"""Weight- and output-stationary execution on the generated systolic core, per GLB block.

Compute timing comes only from ``sim.gemm_timing`` / ``sim.tile_timing`` (the RTL contract). The
counts of array-level traffic follow the core's data movement (docs/simulator.md, "Access counts"):
a value entering a PE over a link is one NoC access; a PE reading or updating its register is one
RF access. Narrow weights pack ``pack`` filters per PE (tile n up to cols*pack, timed as
ceil(n/pack) columns); wide operands repeat each tile ``passes`` times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.arch import ArchSpec, Dataflow
from dataflow.blocking import BlockSchedule
from dataflow.mapping import Mapping, Problem
from sim import gemm_timing, tile_timing


@dataclass(frozen=True)
class SystolicRule:
    """What distinguishes WS from OS on the same core: which GEMM dims sit on rows/cols, which streams."""

    dataflow: Dataflow
    rows_dim: str  # GEMM dimension bounded by the array's rows
    streamed_dim: str  # GEMM dimension streamed through (chunked by stream_tile)
    stationary: str  # operand held in the PEs
    spatial_rows: str
    spatial_cols: str

    def tile_bounds(self, problem: Problem, arch: ArchSpec, stream_tile: int) -> tuple[int, int, int]:
        n = arch.cols * problem.pack
        if self.rows_dim == "k":
            return stream_tile, arch.rows, n
        return arch.rows, stream_tile, n


@dataclass(frozen=True)
class OnChip:
    """Per-block array time and GLB traffic, and the layer's access counts per level per operand."""

    compute: np.ndarray  # cycles per block: its tiles' issue intervals (the last block: to its last result)
    glb_bits: np.ndarray  # bits through the GLB ports per block
    words: dict  # level -> operand -> accesses (words)
    bits: dict  # level -> operand -> bits moved


def _pieces(size: np.ndarray, tile: int) -> np.ndarray:
    return -(-size // tile)


def shape_compute_cycles(rule: SystolicRule, problem: Problem, arch: ArchSpec, shape: tuple[int, int, int],
                         tile: tuple[int, int, int]) -> tuple[int, int, int]:
    """(sum of tile issue intervals, tile count, last-tile correction) for one GEMM shape cut into
    ``tile``-bounded tiles on the core; the correction (``tile_timing.last_tile_correction``) applies
    only when the shape's last tile is the last one the core runs."""
    m, k, n = shape
    tm, tk, tn = tile
    flow = rule.dataflow.value
    stream = tm if rule.streamed_dim == "m" else tk
    classes = gemm_timing.tile_classes(flow, m, k, n, tk if rule.rows_dim == "k" else tm, tn, stream_tile=stream)
    packed_n = -(-classes.n // problem.pack)
    per_tile = tile_timing.issue_interval_array(flow, classes.m, classes.k, packed_n, arch.rows, arch.cols)
    last_m, last_k, last_n = classes.last
    correction = tile_timing.last_tile_correction(flow, last_m, last_k, -(-last_n // problem.pack), arch.rows, arch.cols)
    return int((per_tile * classes.count).sum()) * problem.passes, classes.tiles * problem.passes, correction


def layer_compute_cycles(rule: SystolicRule, problem: Problem, arch: ArchSpec, tile: tuple[int, int, int]) -> int:
    """The whole layer's compute cycles: every tile of every group back to back (blocks aligned to tiles)."""
    cycles, _, correction = shape_compute_cycles(rule, problem, arch, (problem.m, problem.k, problem.n), tile)
    return cycles * problem.groups + correction


def glb_words(problem: Problem, bm, bk, bn, tile, k_first) -> dict[str, tuple]:
    """(reads, writes) of GLB words the array makes for blocks of (bm, bk, bn): each tile reads its input
    and weight slices and writes its m x n partial sums, reading back earlier ones (not on a first K piece)."""
    tm, tk, tn = tile
    mt, kt, nt = _pieces(bm, tm), _pieces(bk, tk), _pieces(bn, tn)
    c_writes = bm * bn * kt
    c_reads = c_writes - bm * bn * k_first
    return {"input": (bm * bk * nt, 0), "weight": (bk * bn * mt, 0), "output": (c_reads, c_writes)}


def onchip(rule: SystolicRule, problem: Problem, arch: ArchSpec, mapping: Mapping, sched: BlockSchedule) -> OnChip:
    tile = mapping.array_tile
    # A block is full or a remainder along each dimension: at most 8 shapes, coded 0..7.
    code = ((sched.bm < sched.bm.max()) * 4 + (sched.bk < sched.bk.max()) * 2 + (sched.bn < sched.bn.max())).astype(np.int64)
    cycles_by_code = np.zeros(8, dtype=np.int64)
    for c in np.flatnonzero(np.bincount(code, minlength=8)):
        first = int(np.argmax(code == c))
        shape = (int(sched.bm[first]), int(sched.bk[first]), int(sched.bn[first]))
        cycles_by_code[c], _, _ = shape_compute_cycles(rule, problem, arch, shape, tile)
    compute = cycles_by_code[code]
    # Every tile costs its issue interval; the last one ends on its last result instead.
    last = (int(sched.bm[-1]), int(sched.bk[-1]), int(sched.bn[-1]))
    compute[-1] += shape_compute_cycles(rule, problem, arch, last, tile)[2]

    k_first = sched.k_first.astype(np.int64)
    glb = glb_words(problem, sched.bm, sched.bk, sched.bn, tile, k_first)
    ab, wb, acc = problem.activation_bits, problem.weight_bits, problem.accumulator_bits
    glb_bits = (glb["input"][0] * ab + glb["weight"][0] * wb + (glb["output"][0] + glb["output"][1]) * acc
                + sched.load_bits + sched.write_bits)

    macs = problem.macs
    a_reads, w_reads = int(glb["input"][0].sum()), int(glb["weight"][0].sum())
    c_reads, c_writes = int(glb["output"][0].sum()), int(glb["output"][1].sum())
    dram = sched.dram_words
    words = {
        "glb": {
            "input": a_reads + dram["input"][0],
            "weight": w_reads + dram["weight"][0],
            "output": c_reads + c_writes + dram["output"][0] + dram["output"][1],
        },
    }
    if rule.stationary == "weight":
        words["noc"] = {"input": macs, "weight": w_reads, "output": macs}
        words["rf"] = {"input": macs, "weight": macs + w_reads, "output": macs}
    else:
        words["noc"] = {"input": macs, "weight": macs, "output": c_writes}
        words["rf"] = {"input": macs, "weight": macs, "output": macs}
    operand_bits = {"input": ab, "weight": wb, "output": acc}
    bits = {level: {op: count * operand_bits[op] for op, count in ops.items()} for level, ops in words.items()}
    # DRAM fills and drains of the GLB move at their own widths (final outputs at activation bits).
    fill = sched.dram_bits
    bits["glb"]["input"] = a_reads * ab + fill["input"][0]
    bits["glb"]["weight"] = w_reads * wb + fill["weight"][0]
    bits["glb"]["output"] = (c_reads + c_writes) * acc + fill["output"][0] + fill["output"][1]
    return OnChip(compute=compute, glb_bits=glb_bits, words=words, bits=bits)
