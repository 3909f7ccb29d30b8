"""Weight- and output-stationary execution on the generated systolic core: one model, two rules.

Compute timing comes only from the cycle contract (``codesign.contract.gemm_timing`` /
``codesign.contract.tile_timing``), which the RTL is verified against. The counts of array-level traffic
follow the core's data movement (docs/simulator.md, "Access counts"): a value entering a PE over a
link is one NoC access; a PE reading or updating its register is one RF access. Narrow weights pack
``pack`` filters per PE (tile n up to cols*pack, timed as ceil(n/pack) columns); wide operands repeat
each tile ``passes`` times.

N:M structured skipping (``Problem.structured``; NVIDIA A100 sparse tensor cores, S2TA: Liu et al. HPCA 2022):
the PEs hold the N stored values of every group of M weights with their log2(M)-bit indices, and a mux picks
each value's activation. Blocks and tiles keep dense K coordinates; a chunk of k reduction rows that starts on
a group boundary runs as ``compressed_k(k) = k/M * N`` rows: a WS fold covers ``(rows // N) * M`` dense rows
(fewer folds), an OS tile streams ``k/M * N`` beats (shorter streams). Activations are read at full K. A
mapping whose K chunks do not start on group boundaries (``skips_groups``) runs dense.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from codesign.arch import ArchSpec, dataflow_name
from codesign.contract import gemm_timing, tile_timing
from codesign.contract.tile_timing import TileContract
from codesign.errors import MappingError
from dataflow import search
from dataflow.blocking import DRAM_ORDERS, BlockSchedule
from dataflow.interface import DataflowModel, OnChip, ReferenceBlock
from dataflow.mapping import GEMM_DIMS, Mapping, Problem, check_fits, glb_bits_needed
from dataflow.systolic_reference import core_edges, stored_rows

__all__ = ["SystolicRule", "SystolicDataflow", "skips_groups", "shape_compute_cycles", "layer_compute_cycles",
           "glb_words"]


@dataclass(frozen=True)
class SystolicRule:
    """What distinguishes WS from OS on the same core: the contract's bounded and streamed dims, the
    operand held in the PEs, and how the loops are labelled for reports."""

    dataflow: str  # the contract's name for it ('ws', 'os')
    stationary: str  # operand held in the PEs
    spatial_rows: str
    spatial_cols: str

    @property
    def contract(self) -> TileContract:
        return tile_timing.contract(self.dataflow)

    @property
    def rows_dim(self) -> str:
        """GEMM dimension bounded by the array's rows."""
        return self.contract.rows_dim

    @property
    def streamed_dim(self) -> str:
        """GEMM dimension streamed through (chunked by the stream tile)."""
        return self.contract.streamed_dim

    def tile_bounds(self, problem: Problem, arch: ArchSpec, stream_tile: int) -> tuple[int, int, int]:
        n = arch.cols * problem.pack
        if self.rows_dim == "k":
            return stream_tile, _k_fold(problem, arch), n
        return arch.rows, stream_tile, n


def _k_fold(problem: Problem, arch: ArchSpec) -> int:
    """Dense reduction rows one fold of the array's rows holds: ``rows``, or ``(rows // N) * M`` when the
    PEs hold N:M compressed weights (every group of M rows in N PEs)."""
    if problem.structured:
        n, m = problem.structured
        return arch.rows // n * m
    return arch.rows


def _block_k_unit(arch: ArchSpec, tile_k: int) -> int:
    """The K step of WS GLB blocks: the tile's K, or on an array that skips N:M groups the dense rows of one
    compressed fold, ``(rows // N) * M`` (when a multiple of the tile): its weight buffer holds whole compressed
    folds, so every layer's blocks, dense or pruned, are ones an N:M layer fills whole folds in (a pruned layer
    runs its dense original's blocks: docs/simulator.md, "Pruning")."""
    skip = arch.sparsity.weights.structured
    if skip is None or arch.sparsity.array_problem(arch.rows, tuple(dataflow_name(d) for d in arch.dataflows)):
        return tile_k
    fold = arch.rows // skip.n * skip.m
    return fold if fold > tile_k and fold % tile_k == 0 else tile_k


def skips_groups(problem: Problem, block_k: int, tile_k: int) -> bool:
    """Whether the array runs N:M compressed under blocks of ``block_k`` and tiles of ``tile_k`` reduction rows:
    the layer is compressed and every K chunk starts on a group boundary (each block and each tile in it is a
    multiple of M rows, or the whole of what it splits)."""
    if not problem.structured:
        return False
    m = problem.structured[1]
    return ((block_k >= problem.k or block_k % m == 0)
            and (tile_k >= min(block_k, problem.k) or tile_k % m == 0))


def _pieces(size: np.ndarray, tile: int) -> np.ndarray:
    return -(-size // tile)


def shape_compute_cycles(rule: SystolicRule, problem: Problem, arch: ArchSpec, shape: tuple[int, int, int],
                         tile: tuple[int, int, int], skip: bool = False) -> tuple[int, int, int]:
    """(sum of tile issue intervals, tile count, last-tile correction) for one GEMM shape cut into
    ``tile``-bounded tiles on the core; the correction (``tile_timing.last_tile_correction``) applies
    only when the shape's last tile is the last one the core runs. With ``skip`` (``skips_groups``) each
    tile's K chunk runs as its N:M compressed rows (``Problem.compressed_k``)."""
    m, k, n = shape
    tm, tk, tn = tile
    flow = rule.dataflow
    stream = tm if rule.streamed_dim == "m" else tk
    classes = gemm_timing.tile_classes(flow, m, k, n, tk if rule.rows_dim == "k" else tm, tn, stream_tile=stream)
    packed_n = -(-classes.n // problem.pack)
    rows_k = problem.compressed_k(classes.k) if skip else classes.k
    per_tile = tile_timing.issue_interval_array(flow, classes.m, rows_k, packed_n, arch.rows, arch.cols)
    last_m, last_k, last_n = classes.last
    last_k = problem.compressed_k(last_k) if skip else last_k
    correction = tile_timing.last_tile_correction(flow, last_m, last_k, -(-last_n // problem.pack), arch.rows, arch.cols)
    return int((per_tile * classes.count).sum()) * problem.passes, classes.tiles * problem.passes, correction


def layer_compute_cycles(rule: SystolicRule, problem: Problem, arch: ArchSpec, tile: tuple[int, int, int]) -> int:
    """The whole layer's compute cycles: every tile of every group back to back (blocks aligned to tiles)."""
    skip = skips_groups(problem, problem.k, tile[1])
    cycles, _, correction = shape_compute_cycles(rule, problem, arch, (problem.m, problem.k, problem.n), tile, skip)
    return cycles * problem.groups + correction


def glb_words(problem: Problem, bm, bk, bn, tile, k_first, skip: bool = False) -> dict[str, tuple]:
    """(reads, writes) of GLB words the array makes for blocks of (bm, bk, bn): each tile reads its input
    and weight slices and writes its m x n partial sums, reading back earlier ones (not on a first K piece).
    With ``skip`` the weight slices are the N:M stored values (``compressed_k``); inputs are read at full K."""
    tm, tk, tn = tile
    mt, kt, nt = _pieces(bm, tm), _pieces(bk, tk), _pieces(bn, tn)
    c_writes = bm * bn * kt
    c_reads = c_writes - bm * bn * k_first
    weight_rows = problem.compressed_k(bk) if skip else bk
    return {"input": (bm * bk * nt, 0), "weight": (weight_rows * bn * mt, 0), "output": (c_reads, c_writes)}


def _chunks(total: int, size: int) -> list[int]:
    full, rest = divmod(total, size)
    return [size] * full + ([rest] if rest else [])


def _array_macs(problem: Problem) -> int:
    """MACs the PEs run: every stored weight's (all of them when dense)."""
    return problem.groups * problem.m * problem.compressed_k(problem.k) * problem.n


class SystolicDataflow(DataflowModel):
    """WS or OS on the generated systolic core, by its ``SystolicRule``."""

    def __init__(self, rule: SystolicRule, description: str = ""):
        self.rule = rule
        self.name = rule.dataflow
        self.description = description

    def candidates(self, problem: Problem, arch: ArchSpec, objective: str, limit: int) -> list[Mapping]:
        """Per streamed chunk (at most a generated core's tile, ``tile_timing.MAX_STREAM_TILE``): the
        largest array tile, every GLB block that fits, every DRAM order; ranked by the estimate."""
        rule = self.rule
        sizes = {"m": problem.m, "k": problem.k, "n": problem.n}
        glb_rate = arch.glb.bits_per_cycle
        pool = []
        smallest = None
        for stream in search.stream_choices(min(sizes[rule.streamed_dim], tile_timing.MAX_STREAM_TILE)):
            bound = rule.tile_bounds(problem, arch, stream)
            tile = tuple(min(b, sizes[d]) for b, d in zip(bound, GEMM_DIMS))
            smallest = tile
            units = dict(zip(GEMM_DIMS, tile))
            if rule.rows_dim == "k":
                units["k"] = _block_k_unit(arch, tile[1])
            blocks = search.grid({d: search.block_choices(sizes[d], units[d]) for d in GEMM_DIMS})
            keep = search.fits(problem, blocks, arch)
            if not keep.any():
                continue
            blocks = {d: v[keep] for d, v in blocks.items()}
            compute = layer_compute_cycles(rule, problem, arch, tile)
            g = problem.groups
            tm, tk, tn = tile
            skip = skips_groups(problem, problem.k, tk)
            weight_rows, weight_bits = ((problem.compressed_k(problem.k), problem.weight_bits + problem.index_bits)
                                        if skip else (problem.k, problem.weight_bits))
            glb_bits = g * (problem.m * problem.k * math.ceil(problem.n / tn) * problem.activation_bits
                            + weight_rows * problem.n * math.ceil(problem.m / tm) * weight_bits
                            + (2 * math.ceil(problem.k / tk) - 1) * problem.m * problem.n * problem.accumulator_bits)
            busy = np.full(blocks["m"].shape, max(compute, glb_bits / glb_rate), dtype=np.float64)
            onchip = np.zeros(blocks["m"].shape)
            for order in DRAM_ORDERS:
                value, cycles = search.score(objective, problem, arch, blocks, order, busy,
                                             np.full(busy.shape, glb_bits), onchip)

                def build(i, order=order, blocks=blocks, tile=tile):
                    block = tuple(int(blocks[d][i]) for d in GEMM_DIMS)
                    return Mapping(
                        dataflow=self.name, spatial_rows=rule.spatial_rows, spatial_cols=rule.spatial_cols,
                        dram_order=order, block=block, array_tile=tile,
                        onchip_order=("m", "n", "k"), glb_footprint_bits=glb_bits_needed(problem, block),
                    )

                pool.append((value, cycles, build))
        if not pool:
            check_fits(problem, smallest, arch)  # raises, naming the layer and the bytes it needs
            raise MappingError(f"layer {problem.name}: no mapping fits the global buffer")
        return search.rank(objective, pool, limit)

    def onchip(self, problem: Problem, arch: ArchSpec, mapping: Mapping, sched: BlockSchedule) -> OnChip:
        rule = self.rule
        tile = mapping.array_tile
        skip = skips_groups(problem, mapping.block[1], tile[1])
        # A block is full or a remainder along each dimension: at most 8 shapes, coded 0..7.
        code = ((sched.bm < sched.bm.max()) * 4 + (sched.bk < sched.bk.max()) * 2
                + (sched.bn < sched.bn.max())).astype(np.int64)
        cycles_by_code = np.zeros(8, dtype=np.int64)
        for c in np.flatnonzero(np.bincount(code, minlength=8)):
            first = int(np.argmax(code == c))
            shape = (int(sched.bm[first]), int(sched.bk[first]), int(sched.bn[first]))
            cycles_by_code[c], _, _ = shape_compute_cycles(rule, problem, arch, shape, tile, skip)
        compute = cycles_by_code[code]
        # Every tile costs its issue interval; the last one ends on its last result instead.
        last = (int(sched.bm[-1]), int(sched.bk[-1]), int(sched.bn[-1]))
        compute[-1] += shape_compute_cycles(rule, problem, arch, last, tile, skip)[2]

        k_first = sched.k_first.astype(np.int64)
        glb = glb_words(problem, sched.bm, sched.bk, sched.bn, tile, k_first, skip)
        ab, acc = problem.activation_bits, problem.accumulator_bits
        wb = problem.weight_bits + (problem.index_bits if skip else 0)  # a stored value travels with its index
        port_bits = (glb["input"][0] * ab + glb["weight"][0] * wb + (glb["output"][0] + glb["output"][1]) * acc
                     + sched.load_bits + sched.write_bits)

        macs = _array_macs(problem) if skip else problem.macs  # the MACs the PEs run: compressed under N:M
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
        return OnChip(compute=compute, glb_port_bits=port_bits, words=words, bits=bits)

    def spatial_utilization(self, problem: Problem, arch: ArchSpec, mapping: Mapping) -> float:
        tm, tk, tn = mapping.array_tile
        if self.rule.rows_dim == "k":
            spatial = problem.compressed_k(tk) if skips_groups(problem, mapping.block[1], tk) else tk
        else:
            spatial = tm
        return spatial * -(-tn // problem.pack) / arch.pes

    def mac_slots(self, problem: Problem, arch: ArchSpec) -> float:
        """PE-cycles the MACs need at best: under N:M compression only the stored weights' MACs."""
        return _array_macs(problem) * problem.passes / problem.pack

    def adapt(self, mapping: Mapping, problem: Problem, arch: ArchSpec) -> Mapping:
        """The dense original's mapping clamped to ``problem``; under N:M compression a WS fold holds
        ``(rows // N) * M`` dense rows, so the array tile's K grows to that (fewer folds, same GLB blocks)."""
        adapted = super().adapt(mapping, problem, arch)
        if not problem.structured or self.rule.rows_dim != "k":
            return adapted
        tm, _, tn = adapted.array_tile
        return replace(adapted, array_tile=(tm, min(_k_fold(problem, arch), problem.k), tn))

    def reference_blocks(self, problem: Problem, mapping: Mapping, arch: ArchSpec,
                         blocks: Sequence[tuple[int, int, int, bool]]) -> list[ReferenceBlock]:
        """Tiles listed one by one in the core's order (m chunk, n fold, k fold innermost), the core
        clocked edge by edge over every tile of the layer (``systolic_reference.core_edges``)."""
        tm, tk, tn = mapping.array_tile
        skip = skips_groups(problem, mapping.block[1], tk)
        ab, acc = problem.activation_bits, problem.accumulator_bits
        wb = problem.weight_bits + (problem.index_bits if skip else 0)
        per_block = []
        for bm, bk, bn, k_first in blocks:
            tiles, bits, macs = [], 0, 0
            words = {"input": 0, "weight": 0, "output": 0}
            for m in _chunks(bm, tm):
                for n in _chunks(bn, tn):
                    start = 0  # of the K chunk in the block; blocks start on group boundaries when skipping
                    for ki, k in enumerate(_chunks(bk, tk)):
                        rows = stored_rows(start, k, *problem.structured) if skip else k
                        start += k
                        tiles += [(m, rows, math.ceil(n / problem.pack))] * problem.passes
                        macs += m * k * n
                        psum_passes = 1 if (k_first and ki == 0) else 2  # write, and read back unless first
                        words["input"] += m * k  # activations at full K: the mux picks from them
                        words["weight"] += rows * n
                        words["output"] += m * n * psum_passes
                        bits += m * k * ab + rows * n * wb + m * n * acc * psum_passes
            per_block.append((tiles, bits, macs, words))
        every = [tile for tiles, *_ in per_block for tile in tiles]
        starts, end = core_edges(self.name, every, arch.rows, arch.cols)
        result, first = [], 0
        for tiles, bits, macs, words in per_block:
            following = first + len(tiles)
            compute = (starts[following] if following < len(starts) else end) - starts[first]
            result.append(ReferenceBlock(compute=compute, glb_bits=bits, macs=macs, glb_words=words))
            first = following
        return result
