"""A slow, per-cycle reference of the simulator for small layers: the fast model must equal it exactly.

Written independently of the vectorized path: GLB blocks are walked with nested loops and residency
is tracked per tensor; each block's array work comes from its dataflow's ``reference_blocks`` hook,
which enumerates tiles (WS/OS: the core stepped edge by edge, not the contract's closed forms) or PE-set
units (RS) one by one; the clock is advanced one cycle at a time, with the array, the GLB ports and the
DRAM channel each doing one cycle's work. Use it for layers of at most a few hundred thousand cycles.

Options the engine uses between layers: the input already in the GLB (no input fetches), the final
outputs left there (no final writes), and fused layers in the output path: vector lanes that, each
cycle, take ``lanes`` element operations of the final outputs released so far, beside the array, and
parameters fetched with the first block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from codesign.arch import ArchSpec
from dataflow import registry
from dataflow.mapping import Mapping, Problem

__all__ = ["MAX_REFERENCE_CYCLES", "ReferenceResult", "simulate_reference"]

MAX_REFERENCE_CYCLES = 2_000_000


@dataclass
class ReferenceResult:
    cycles: int = 0
    compute_cycles: int = 0
    glb_stall_cycles: int = 0
    dram_stall_cycles: int = 0
    lane_stall_cycles: int = 0
    macs: int = 0
    dram_words: dict = field(default_factory=lambda: {"input": 0, "weight": 0, "output": 0})
    glb_array_words: dict = field(default_factory=lambda: {"input": 0, "weight": 0, "output": 0})


@dataclass
class _Block:
    compute: int  # array cycles: first command to the next block's first command (the last block: last result)
    glb_bits: int
    load_bits: int  # fetched before the block runs
    write_bits: int  # written after it
    finals: int = 0  # final output values the block completes (they drain through the output path)


def _blocks(problem: Problem, mapping: Mapping, arch: ArchSpec, result: ReferenceResult, input_onchip: bool = False,
            output_onchip: bool = False) -> list[_Block]:
    sizes = {"m": problem.m, "k": problem.k, "n": problem.n}
    block = dict(zip(("m", "k", "n"), mapping.block))
    order = mapping.dram_order
    trips = {d: math.ceil(sizes[d] / block[d]) for d in sizes}
    ab, wb, acc = problem.activation_bits, problem.weight_bits, problem.accumulator_bits
    steps = []
    for g in range(problem.groups):
        for i0 in range(trips[order[0]]):
            for i1 in range(trips[order[1]]):
                for i2 in range(trips[order[2]]):
                    index = dict(zip(order, (i0, i1, i2)))
                    steps.append((g, index))
    blocks: list[_Block] = []
    resident = {"input": None, "weight": None, "output": None}
    shapes: list[tuple[int, int, int, bool]] = []
    for position, (g, index) in enumerate(steps):
        size = {d: min(block[d], sizes[d] - index[d] * block[d]) for d in sizes}
        keys = {"input": (g, index["m"], index["k"]), "weight": (g, index["k"], index["n"]),
                "output": (g, index["m"], index["n"])}
        load = 0
        if keys["input"] != resident["input"] and not input_onchip:
            words = -(-size["m"] * size["k"] * problem.input_unique // problem.input_im2col)
            result.dram_words["input"] += words
            load += problem.stored_bits("input", "dram", words * ab)
        if keys["weight"] != resident["weight"]:
            words = size["k"] * size["n"]
            result.dram_words["weight"] += words
            load += problem.stored_bits("weight", "dram", words * wb)
        if keys["output"] != resident["output"] and index["k"] > 0:
            words = size["m"] * size["n"]
            result.dram_words["output"] += words
            load += words * acc
        resident = keys
        shapes.append((size["m"], size["k"], size["n"], index["k"] == 0))
        blocks.append(_Block(compute=0, glb_bits=0, load_bits=load, write_bits=0))
        # The output block leaves when the next step holds another one (or at the end).
        nxt = steps[position + 1] if position + 1 < len(steps) else None
        leaves = nxt is None or (nxt[0], nxt[1]["m"], nxt[1]["n"]) != keys["output"]
        if leaves:
            words = size["m"] * size["n"]
            final = index["k"] == trips["k"] - 1
            if final:
                blocks[-1].finals = words
            if not (final and output_onchip):
                result.dram_words["output"] += words
                blocks[-1].write_bits = problem.stored_bits("output", "dram", words * ab) if final else words * acc
    # The array's work per block, stepped by the dataflow's own reference hook.
    for item, work in zip(blocks, registry.get(mapping.dataflow).reference_blocks(problem, mapping, arch, shapes)):
        item.compute, item.glb_bits = work.compute, work.glb_bits
        result.macs += work.macs
        for operand, words in work.glb_words.items():
            result.glb_array_words[operand] += words
    for item in blocks:
        item.glb_bits += item.load_bits + item.write_bits
    return blocks


class _Dram:
    """One DRAM channel: a queue of reads (latency, then bandwidth) and posted writes, a cycle at a time."""

    def __init__(self, arch: ArchSpec):
        self.rate = Fraction(str(arch.dram.bytes_per_cycle)) * 8
        self.latency = arch.dram.latency_cycles
        self.queue: list[list] = []  # [latency cycles left, bits left]

    def read(self, bits: int) -> None:
        if bits:
            self.queue.append([self.latency, Fraction(bits)])

    def write(self, bits: int) -> None:
        if bits:
            self.queue.append([0, Fraction(bits)])

    @property
    def idle(self) -> bool:
        return not self.queue

    def tick(self) -> None:
        if not self.queue:
            return
        head = self.queue[0]
        if head[0] > 0:
            head[0] -= 1
        else:
            head[1] -= self.rate  # a transfer holds the channel for whole cycles
        if head[0] == 0 and head[1] <= 0:
            self.queue.pop(0)


def simulate_reference(problem: Problem, mapping: Mapping, arch: ArchSpec, *, input_onchip: bool = False,
                       output_onchip: bool = False, path_ops: int = 0, path_lanes: int = 1,
                       path_param_bits: int = 0) -> ReferenceResult:
    """Cycle-by-cycle run of one layer under one mapping: array, GLB ports, DRAM channel and output lanes.

    Block b starts when block b-1 is done on the array and its DRAM work (loading block b, draining
    block b-2's outputs) has finished: the double-buffered hand-off. With ``path_ops`` element operations
    spread evenly over the final outputs, a block is also not done before the lanes have taken every
    operation of the outputs completed so far (``path_lanes`` operations per cycle).
    """
    if arch.glb.split or problem.glb_allocation != "double_buffered":
        raise ValueError("the per-cycle reference models a double-buffered GLB only (glb.allocation: split is "
                         "checked against its formula, docs/simulator.md section 6)")
    result = ReferenceResult()
    blocks = _blocks(problem, mapping, arch, result, input_onchip, output_onchip)
    blocks[0].load_bits += path_param_bits
    blocks[0].glb_bits += path_param_bits
    outputs = problem.groups * problem.m * problem.n
    released = Fraction(0)  # element operations of the final outputs so far
    lane_cycles = 0
    glb_rate = arch.glb.bits_per_cycle
    dram = _Dram(arch)
    clock = 0

    def step() -> None:
        nonlocal clock
        clock += 1
        if clock > MAX_REFERENCE_CYCLES:
            raise RuntimeError("layer too large for the per-cycle reference")

    # The first block's operands arrive before anything computes.
    dram.read(blocks[0].load_bits)
    while not dram.idle:
        step()
        dram.tick()
    busy_total = paced_total = 0
    for b, block in enumerate(blocks):
        if b + 1 < len(blocks):
            dram.read(blocks[b + 1].load_bits)
        if b > 0:
            dram.write(blocks[b - 1].write_bits)
        array_left, glb_left = block.compute, block.glb_bits
        released += Fraction(block.finals * path_ops, outputs)
        start, busy_end, lanes_used = clock, None, 0
        while busy_end is None or not dram.idle:
            step()
            array_left -= 1 if array_left > 0 else 0
            glb_left -= glb_rate if glb_left > 0 else 0
            if lane_cycles * path_lanes < released:
                lane_cycles += 1
                lanes_used += 1
            dram.tick()
            if busy_end is None and array_left <= 0 and glb_left <= 0 and lane_cycles * path_lanes >= released:
                busy_end = clock
        busy_total += busy_end - start
        result.compute_cycles += block.compute
        paced_total += max(block.compute, lanes_used)
    dram.write(blocks[-1].write_bits)
    while not dram.idle:
        step()
        dram.tick()
    result.cycles = clock
    result.lane_stall_cycles = paced_total - result.compute_cycles
    result.glb_stall_cycles = busy_total - paced_total
    result.dram_stall_cycles = clock - busy_total
    return result
