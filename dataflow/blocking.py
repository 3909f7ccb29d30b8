"""GLB blocking: a GEMM cut into global-buffer blocks walked in a loop order, and the DRAM traffic of it.

Blocks (bm, bk, bn) tile each group's M x K x N space (full blocks, then one remainder per dim); the
groups are the outermost loop. A tensor's block is fetched when its block changes from the previous
step (it stays resident while only loops that do not index it move): the classic loop-nest reuse rule
(as in Timeloop / ZigZag's temporal reuse). The output block is written back when it changes: as a
final output (activation bits) after its last K block, otherwise as a partial sum (accumulator bits)
that is read back before its next K block. Under a split GLB (``Problem.streams_weights``) no filters stay
between blocks: every block fetches its own (docs/simulator.md section 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import permutations

import numpy as np

from dataflow.mapping import GEMM_DIMS, OPERAND_DIMS, Problem, input_words

__all__ = [
    "DRAM_ORDERS", "trips", "BlockSchedule", "block_schedule", "keep_on_chip", "refetch_factor",
    "dram_bits_closed_form"
]

DRAM_ORDERS: tuple[tuple[str, ...], ...] = tuple(permutations(GEMM_DIMS))


def trips(problem: Problem, block: tuple[int, int, int]) -> dict[str, int]:
    sizes = {"m": problem.m, "k": problem.k, "n": problem.n}
    return {dim: math.ceil(sizes[dim] / b) for dim, b in zip(GEMM_DIMS, block)}


@dataclass(frozen=True)
class BlockSchedule:
    """Per GLB block, in execution order (all groups): its size and the DRAM bits moved around it.

    ``load_bits[b]`` is fetched before block b runs; ``write_bits[b]`` is written after it.
    """

    bm: np.ndarray
    bk: np.ndarray
    bn: np.ndarray
    k_first: np.ndarray  # bool: the block is its outputs' first K block
    load_bits: np.ndarray
    write_bits: np.ndarray
    dram_words: dict  # operand -> (reads, writes) in words
    dram_bits: dict  # operand -> (read bits, write bits)
    input_loads: np.ndarray | None = None  # raw input words fetched before each block
    final_writes: np.ndarray | None = None  # final output words written after each block
    input_load_bits: np.ndarray | None = None  # their bits as moved (stored size)
    final_write_bits: np.ndarray | None = None
    weight_load_bits: np.ndarray | None = None  # the filter bits among ``load_bits`` (a split GLB streams them)

    @property
    def blocks(self) -> int:
        return int(self.bm.size)


def block_schedule(problem: Problem, block: tuple[int, int, int], order: tuple[str, ...]) -> BlockSchedule:
    """Every block of the layer with the exact DRAM traffic of the loop-nest reuse rule."""
    t = trips(problem, block)
    sizes = {"m": problem.m, "k": problem.k, "n": problem.n}
    shape = (problem.groups,) + tuple(t[d] for d in order)
    idx = np.indices(shape).reshape(len(shape), -1)
    group = idx[0]
    index = {d: idx[1 + i] for i, d in enumerate(order)}
    size = {d: np.minimum(b, sizes[d] - index[d] * b) for d, b in zip(GEMM_DIMS, block)}
    count = group.size

    def changed(dims: tuple[str, ...]) -> np.ndarray:
        flag = np.ones(count, dtype=bool)
        if count > 1:
            diff = group[1:] != group[:-1]
            for d in dims:
                diff |= index[d][1:] != index[d][:-1]
            flag[1:] = diff
        return flag

    k_first = index["k"] == 0
    k_last = index["k"] == t["k"] - 1
    a_new, b_new, c_new = changed(OPERAND_DIMS["input"]), changed(OPERAND_DIMS["weight"]), changed(OPERAND_DIMS["output"])
    if problem.streams_weights:
        b_new = np.ones(count, dtype=bool)
    c_leave = np.ones(count, dtype=bool)
    c_leave[:-1] = c_new[1:]

    a_words = input_words(problem, size["m"] * size["k"]) * a_new
    b_words = (size["k"] * size["n"]) * b_new
    c_words = size["m"] * size["n"]
    psum_read = c_words * (c_new & ~k_first)
    final_write = c_words * (c_leave & k_last)
    psum_write = c_words * (c_leave & ~k_last)

    ab, wb, acc = problem.activation_bits, problem.weight_bits, problem.accumulator_bits
    # Inputs, weights and final outputs move at their stored (possibly compressed) size; partial sums dense.
    a_bits = problem.stored_bits("input", "dram", a_words.astype(np.int64) * ab)
    b_bits = problem.stored_bits("weight", "dram", b_words.astype(np.int64) * wb)
    final_bits = problem.stored_bits("output", "dram", final_write.astype(np.int64) * ab)
    load_bits = a_bits + b_bits + psum_read * acc
    write_bits = final_bits + psum_write * acc
    dram_words = {
        "input": (int(a_words.sum()), 0),
        "weight": (int(b_words.sum()), 0),
        "output": (int(psum_read.sum()), int(final_write.sum() + psum_write.sum())),
    }
    dram_bits = {
        "input": (int(a_bits.sum()), 0),
        "weight": (int(b_bits.sum()), 0),
        "output": (int(psum_read.sum()) * acc, int(final_bits.sum()) + int(psum_write.sum()) * acc),
    }
    return BlockSchedule(
        bm=size["m"], bk=size["k"], bn=size["n"], k_first=k_first,
        load_bits=load_bits.astype(np.int64), write_bits=write_bits.astype(np.int64),
        dram_words=dram_words, dram_bits=dram_bits,
        input_loads=a_words.astype(np.int64), final_writes=final_write.astype(np.int64),
        input_load_bits=a_bits.astype(np.int64), final_write_bits=final_bits.astype(np.int64),
        weight_load_bits=np.asarray(b_bits, dtype=np.int64),
    )


def keep_on_chip(sched: BlockSchedule, problem: Problem, input_onchip: bool, output_onchip: bool) -> BlockSchedule:
    """The same blocks with the raw input already in the GLB (no input loads) and/or the final outputs left
    there for their consumers (no final writes); partial sums still spill. docs/simulator.md, "Residency"."""
    if not (input_onchip or output_onchip):
        return sched
    load_bits, write_bits = sched.load_bits, sched.write_bits
    words, bits = dict(sched.dram_words), dict(sched.dram_bits)
    input_loads, final_writes = sched.input_loads, sched.final_writes
    input_load_bits, final_write_bits = sched.input_load_bits, sched.final_write_bits
    if input_onchip:
        load_bits = load_bits - input_load_bits
        words["input"], bits["input"] = (0, 0), (0, 0)
        input_loads, input_load_bits = np.zeros_like(input_loads), np.zeros_like(input_load_bits)
    if output_onchip:
        write_bits = write_bits - final_write_bits
        final = int(final_writes.sum())
        reads, writes = words["output"]
        words["output"] = (reads, writes - final)
        read_bits, write_total = bits["output"]
        bits["output"] = (read_bits, write_total - int(final_write_bits.sum()))
        final_writes, final_write_bits = np.zeros_like(final_writes), np.zeros_like(final_write_bits)
    return replace(sched, load_bits=load_bits, write_bits=write_bits, dram_words=words, dram_bits=bits,
                   input_loads=input_loads, final_writes=final_writes, input_load_bits=input_load_bits,
                   final_write_bits=final_write_bits)


def refetch_factor(t: dict[str, int], order: tuple[str, ...], dims: tuple[str, ...]) -> int:
    """How often a tensor indexed by ``dims`` is fetched whole: the product of the trip counts of the loops
    that do not index it but sit outside its innermost moving loop."""
    moving = [i for i, d in enumerate(order) if d in dims and t[d] > 1]
    if not moving:
        return 1
    innermost = max(moving)
    return math.prod(t[d] for d in order[:innermost] if d not in dims)


def dram_bits_closed_form(problem: Problem, block: tuple[int, int, int], order: tuple[str, ...]) -> int:
    """Total DRAM bits of ``block_schedule`` without listing blocks (the mapper's fast estimate).

    Exact for weights and outputs; raw-input words are rounded per whole tensor instead of per block. A split
    GLB reads each block's filters: ``g * K * N * trips(m)`` words.
    """
    t = trips(problem, block)
    g = problem.groups
    a = g * input_words(problem, problem.m * problem.k) * refetch_factor(t, order, OPERAND_DIMS["input"])
    b = g * problem.k * problem.n * (t["m"] if problem.streams_weights else refetch_factor(t, order, OPERAND_DIMS["weight"]))
    c_all = g * problem.m * problem.n
    c_visits = c_all * refetch_factor(t, order, OPERAND_DIMS["output"])
    psum = c_visits - c_all
    return (a * problem.activation_bits + b * problem.weight_bits + c_all * problem.activation_bits
            + 2 * psum * problem.accumulator_bits)
