"""Binarized layers on the XNOR-popcount array: the simulator's model of ``hdl.binary_core.BinaryGemmCore``.

A binarized layer (1-bit weights and activations, {-1, +1}) is a batch of GEMMs M x K @ K x N as for
any dataflow (conv by im2col). The array is output stationary with operands broadcast: M on its rows,
N on its columns, K streamed as packed words of ``word_bits`` values (``arch.pe.word_bits``; an
``ArchSpec`` whose ``rows``, ``cols`` and ``pe`` describe the binary array, e.g.
``dataclasses.replace(arch, rows=ba.rows, cols=ba.cols, pe=ba.pe, dataflows=(..., "xnor"))`` for
``ba = arch.binary_array``). ``Problem.pack`` and ``passes`` are integer-PE notions and are ignored.

Compute timing comes only from the cycle contract ``codesign.contract.binary_timing`` (the RTL is
verified against it): every tile costs its ``issue_interval`` (k_words), the layer's last tile its
``tile_cycles`` (k_words + 2). Array tiles: m <= rows, n <= cols, k <= the contract's ``max_tile_k``
(whole words, at most ``MAX_WORDS``, as long as the accumulator holds), cut in the contract's order
(m fold, n fold, k chunk innermost) inside each GLB block.

Traffic (docs/simulator.md, "Access counts", with packed words): a 1-bit operand moves ``word_bits``
values per GLB word, so a tile reads m * k_words input words and n * k_words weight words (the last
word of a ragged K padded to a whole word) and writes its m x n sums at accumulator bits (reading
earlier partial sums back unless it is its outputs' first K piece). DRAM traffic is the blocking's,
at 1 bit per value. Below the GLB: every beat delivers one word to each PE of the tile (NoC, m * n *
k_words per operand), the row and column operand registers take m and n words (RF), every PE updates
its accumulator (RF output), and each sum leaves once (NoC output).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from codesign.arch import ArchSpec
from codesign.contract import binary_timing
from codesign.errors import MappingError
from codesign.pe import PeKind
from dataflow import registry, search
from dataflow.blocking import DRAM_ORDERS, BlockSchedule
from dataflow.interface import DataflowModel, OnChip, ReferenceBlock
from dataflow.mapping import GEMM_DIMS, Mapping, Problem, check_fits, glb_bits_needed

__all__ = ["NAME", "SPATIAL_ROWS", "SPATIAL_COLS", "word_bits_of", "check_binarized", "max_tile_k", "k_words_sum",
           "shape_compute_cycles", "layer_compute_cycles", "glb_words", "core_edges", "XnorPopcount", "MODEL"]

NAME = binary_timing.DATAFLOW
SPATIAL_ROWS = "M (output pixels / tokens)"
SPATIAL_COLS = "N (filters)"


def word_bits_of(arch: ArchSpec) -> int:
    """The packed word of the arch's PEs; MappingError unless they are XNOR-popcount PEs."""
    pe = arch.pe
    if pe.kind is not PeKind.XNOR_POPCOUNT:
        raise MappingError(f"dataflow {NAME} runs on XNOR-popcount PEs; {arch.name} has {pe.kind.value} PEs "
                           "(give the binary array's rows, cols and pe: arch.binary_array)")
    return pe.word_bits


def check_binarized(problem: Problem) -> None:
    """MappingError unless the layer has 1-bit weights and activations."""
    if (problem.weight_bits, problem.activation_bits) != (1, 1):
        raise MappingError(f"layer {problem.name}: the {NAME} array runs binarized layers (1-bit weights and "
                           f"activations), not {problem.weight_bits}x{problem.activation_bits}-bit ones")


def max_tile_k(arch: ArchSpec) -> int:
    """Longest tile reduction (bits) of the generated core for ``arch``'s PEs (``binary_timing.max_tile_k``)."""
    try:
        return binary_timing.max_tile_k(word_bits_of(arch), arch.pe.accumulator_bits)
    except ValueError as exc:
        raise MappingError(f"accelerator {arch.name}: {exc}") from None


def _pieces(size, tile):
    return -(-size // tile)


def k_words_sum(bk, tk: int, word_bits: int):
    """Packed words of all K chunks of ``bk`` bits cut into ``tk``-bit tiles (int or array ``bk``)."""
    full, rest = bk // tk, bk % tk
    return full * binary_timing.k_words(tk, word_bits) + binary_timing.k_words(rest, word_bits)


def _k_tile(tk: int, word_bits: int) -> int:
    """The contract's K chunk for an array tile of ``tk`` bits: ``tk`` rounded up to whole words (a tile that
    is not whole words is the whole reduction, which any longer chunk leaves uncut)."""
    return binary_timing.k_words(tk, word_bits) * word_bits


def shape_compute_cycles(problem: Problem, arch: ArchSpec, shape: tuple[int, int, int],
                         tile: tuple[int, int, int]) -> tuple[int, int, int]:
    """(sum of tile issue intervals, tile count, last-tile correction) of one GEMM shape cut into ``tile``-bounded
    tiles, all from ``codesign.contract.binary_timing``."""
    m, k, n = shape
    tm, tk, tn = tile
    wb = word_bits_of(arch)
    classes = binary_timing.tile_classes(m, k, n, tm, tn, wb, k_tile=_k_tile(tk, wb))
    per_tile = binary_timing.issue_interval_array(classes.m, classes.k, classes.n, arch.rows, arch.cols, wb)
    correction = binary_timing.last_tile_correction(*classes.last, arch.rows, arch.cols, wb)
    return int((per_tile * classes.count).sum()), classes.tiles, correction


def layer_compute_cycles(problem: Problem, arch: ArchSpec, tile: tuple[int, int, int]) -> int:
    """The whole layer's compute cycles: every tile of every group back to back (blocks aligned to tiles)."""
    tm, tk, tn = tile
    wb = word_bits_of(arch)
    classes = binary_timing.tile_classes(problem.m, problem.k, problem.n, tm, tn, wb, k_tile=_k_tile(tk, wb),
                                         batch=problem.groups)
    return binary_timing.classes_sequence_cycles(classes, arch.rows, arch.cols, wb)


def glb_words(bm, bk, bn, tile: tuple[int, int, int], k_first, word_bits: int) -> dict[str, tuple]:
    """(reads, writes) of packed GLB words the array makes for blocks of (bm, bk, bn): each tile reads m x k_words
    input and n x k_words weight words and writes its m x n sums, reading earlier ones back unless first in K."""
    tm, tk, tn = tile
    mt, nt, kt = _pieces(bm, tm), _pieces(bn, tn), _pieces(bk, tk)
    words = k_words_sum(bk, tk, word_bits)
    c_writes = bm * bn * kt
    return {"input": (bm * words * nt, 0), "weight": (bn * words * mt, 0),
            "output": (c_writes - bm * bn * k_first, c_writes)}


def core_edges(tiles: list[tuple[int, int, int]], word_bits: int) -> tuple[list[int], int]:
    """Edge of each tile's accepted command and of the last results transfer, clocking the binarized core one
    edge at a time with every stream ready (docs/core-protocol.md, "The binarized core"), independently of
    ``binary_timing``'s closed forms.

    Per edge: the result register transfers (if full); a finished tile in the accumulators is copied into it;
    the operand registers' beat is accumulated (its last beat finishes the tile); a new beat enters the operand
    registers, a tile's first beat together with its command, one packed word (up to ``word_bits`` bits of the
    reduction) per edge, the next command on the edge after a tile's last beat.
    """
    starts: list[int] = []
    last_result = edge = 0
    queue = list(tiles)
    left = 0  # bits of the tile being fed not yet sent (0: waiting for a command)
    operand = None  # the beat in the operand registers: True if it is its tile's last
    finished = False  # a finished tile in the accumulators
    full = False  # the result register holds a tile
    while queue or left or operand is not None or finished or full:
        edge += 1
        sending = full  # results.ready is always high
        copy = finished and (not full or sending)
        hold = finished and not copy
        if sending:
            full, last_result = False, edge
        if copy:
            finished, full = False, True
        if not hold:
            if operand is not None and operand:
                finished = True  # the last MAC of a tile
            operand = None
            if not left and queue:  # the command, with its first beat
                left = queue.pop(0)[1]
                starts.append(edge)
            if left:
                sent = min(left, word_bits)
                left -= sent
                operand = left == 0
    return starts, last_result


def _chunks(total: int, size: int) -> list[int]:
    full, rest = divmod(total, size)
    return [size] * full + ([rest] if rest else [])


class XnorPopcount(DataflowModel):
    """Binarized GEMM tiles on the XNOR-popcount core (see the module docstring)."""

    name = NAME
    description = "binarized: XNOR-popcount PEs, output stationary, packed words broadcast along rows and columns"

    def _arch(self, arch: ArchSpec) -> int:
        return word_bits_of(arch)

    def candidates(self, problem: Problem, arch: ArchSpec, objective: str, limit: int) -> list[Mapping]:
        """The largest array tile (m = min(rows, M), n = min(cols, N)) for every K chunk of whole words up to the
        core's longest (powers of two of words below the whole, as for a streamed dimension), every GLB block
        that fits, every DRAM order; ranked by the estimate."""
        wb = self._arch(arch)
        check_binarized(problem)
        sizes = {"m": problem.m, "k": problem.k, "n": problem.n}
        tm, tn = min(arch.rows, problem.m), min(arch.cols, problem.n)
        longest = max_tile_k(arch) // wb
        glb_rate = arch.glb.bits_per_cycle
        acc, g = problem.accumulator_bits, problem.groups
        pool = []
        smallest = None
        for words in search.stream_choices(min(binary_timing.k_words(problem.k, wb), longest)):
            tile = (tm, min(problem.k, words * wb), tn)
            smallest = tile
            blocks = search.grid({d: search.block_choices(sizes[d], tile[i]) for i, d in enumerate(GEMM_DIMS)})
            keep = search.fits(problem, blocks, arch)
            if not keep.any():
                continue
            blocks = {d: v[keep] for d, v in blocks.items()}
            compute = layer_compute_cycles(problem, arch, tile)
            tk = tile[1]
            layer_words = k_words_sum(problem.k, tk, wb)
            glb_bits = g * (problem.m * layer_words * math.ceil(problem.n / tn) * wb
                            + problem.n * layer_words * math.ceil(problem.m / tm) * wb
                            + (2 * math.ceil(problem.k / tk) - 1) * problem.m * problem.n * acc)
            busy = np.full(blocks["m"].shape, max(compute, glb_bits / glb_rate), dtype=np.float64)
            onchip = np.zeros(blocks["m"].shape)
            for order in DRAM_ORDERS:
                value, cycles = search.score(objective, problem, arch, blocks, order, busy,
                                             np.full(busy.shape, glb_bits), onchip)

                def build(i, order=order, blocks=blocks, tile=tile):
                    block = tuple(int(blocks[d][i]) for d in GEMM_DIMS)
                    return Mapping(dataflow=self.name, spatial_rows=SPATIAL_ROWS, spatial_cols=SPATIAL_COLS,
                                   dram_order=order, block=block, array_tile=tile, onchip_order=("m", "n", "k"),
                                   glb_footprint_bits=glb_bits_needed(problem, block))

                pool.append((value, cycles, build))
        if not pool:
            check_fits(problem, smallest, arch)  # raises, naming the layer and the bytes it needs
            raise MappingError(f"layer {problem.name}: no mapping fits the global buffer")
        return search.rank(objective, pool, limit)

    def onchip(self, problem: Problem, arch: ArchSpec, mapping: Mapping, sched: BlockSchedule) -> OnChip:
        wb = self._arch(arch)
        check_binarized(problem)
        tile = mapping.array_tile
        tm, tk, tn = tile
        # A block is full or a remainder along each dimension: at most 8 shapes, coded 0..7.
        code = ((sched.bm < sched.bm.max()) * 4 + (sched.bk < sched.bk.max()) * 2
                + (sched.bn < sched.bn.max())).astype(np.int64)
        cycles_by_code = np.zeros(8, dtype=np.int64)
        for c in np.flatnonzero(np.bincount(code, minlength=8)):
            first = int(np.argmax(code == c))
            shape = (int(sched.bm[first]), int(sched.bk[first]), int(sched.bn[first]))
            cycles_by_code[c], _, _ = shape_compute_cycles(problem, arch, shape, tile)
        compute = cycles_by_code[code]
        # Every tile costs its issue interval; the layer's last one ends on its results instead.
        last = (int(sched.bm[-1]), int(sched.bk[-1]), int(sched.bn[-1]))
        compute[-1] += shape_compute_cycles(problem, arch, last, tile)[2]

        k_first = sched.k_first.astype(np.int64)
        glb = glb_words(sched.bm, sched.bk, sched.bn, tile, k_first, wb)
        acc = problem.accumulator_bits
        port_bits = ((glb["input"][0] + glb["weight"][0]) * wb + (glb["output"][0] + glb["output"][1]) * acc
                     + sched.load_bits + sched.write_bits)
        a_reads, w_reads = int(glb["input"][0].sum()), int(glb["weight"][0].sum())
        c_reads, c_writes = int(glb["output"][0].sum()), int(glb["output"][1].sum())
        beats = int((sched.bm * sched.bn * k_words_sum(sched.bk, tk, wb)).sum())  # PE-beats: one word per PE
        dram = sched.dram_words
        words = {
            "glb": {
                "input": a_reads + dram["input"][0],
                "weight": w_reads + dram["weight"][0],
                "output": c_reads + c_writes + dram["output"][0] + dram["output"][1],
            },
            "noc": {"input": beats, "weight": beats, "output": c_writes},
            "rf": {"input": a_reads, "weight": w_reads, "output": beats},
        }
        operand_bits = {"input": wb, "weight": wb, "output": acc}
        bits = {level: {op: count * operand_bits[op] for op, count in ops.items()} for level, ops in words.items()}
        fill = sched.dram_bits  # DRAM fills and drains of the GLB move at their own widths
        bits["glb"]["input"] = a_reads * wb + fill["input"][0]
        bits["glb"]["weight"] = w_reads * wb + fill["weight"][0]
        bits["glb"]["output"] = (c_reads + c_writes) * acc + fill["output"][0] + fill["output"][1]
        return OnChip(compute=compute, glb_port_bits=port_bits, words=words, bits=bits)

    def spatial_utilization(self, problem: Problem, arch: ArchSpec, mapping: Mapping) -> float:
        tm, _, tn = mapping.array_tile
        return tm * tn / arch.pes

    def mac_slots(self, problem: Problem, arch: ArchSpec) -> float:
        """PE-cycles the MACs need at best: every output takes ceil(K / word_bits) PE-beats (one packed word of
        binary MACs per PE per cycle)."""
        wb = self._arch(arch)
        return problem.groups * problem.m * problem.n * binary_timing.k_words(problem.k, wb)

    def reference_blocks(self, problem: Problem, mapping: Mapping, arch: ArchSpec,
                         blocks: Sequence[tuple[int, int, int, bool]]) -> list[ReferenceBlock]:
        """Tiles listed one by one in the core's order (m fold, n fold, k chunk innermost), words counted beat by
        beat, the core clocked edge by edge over every tile of the layer (``core_edges``)."""
        wb = self._arch(arch)
        tm, tk, tn = mapping.array_tile
        acc = problem.accumulator_bits
        per_block = []
        for bm, bk, bn, k_first in blocks:
            tiles, bits, macs = [], 0, 0
            words = {"input": 0, "weight": 0, "output": 0}
            for m in _chunks(bm, tm):
                for n in _chunks(bn, tn):
                    for ki, k in enumerate(_chunks(bk, tk)):
                        tiles.append((m, k, n))
                        beats, left = 0, k
                        while left > 0:  # one packed word per beat
                            left -= wb
                            beats += 1
                        macs += m * k * n
                        psum_passes = 1 if (k_first and ki == 0) else 2  # write, and read back unless first
                        words["input"] += m * beats
                        words["weight"] += n * beats
                        words["output"] += m * n * psum_passes
                        bits += (m + n) * beats * wb + m * n * acc * psum_passes
            per_block.append((tiles, bits, macs, words))
        every = [tile for tiles, *_ in per_block for tile in tiles]
        starts, end = core_edges(every, wb)
        result, first = [], 0
        for tiles, bits, macs, words in per_block:
            following = first + len(tiles)
            compute = (starts[following] if following < len(starts) else end) - starts[first]
            result.append(ReferenceBlock(compute=compute, glb_bits=bits, macs=macs, glb_words=words))
            first = following
        return result


MODEL = registry.register(XnorPopcount())
