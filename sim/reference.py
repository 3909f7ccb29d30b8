"""A slow, per-cycle reference of the simulator for small layers: the fast model must equal it exactly.

Written independently of the vectorized path: GLB blocks are walked with nested loops and residency
is tracked per tensor; tiles (WS/OS) and PE-set units (RS) are enumerated one by one; the clock is
advanced one cycle at a time, with the array, the GLB ports and the DRAM channel each doing one
cycle's work. Tile timing too is stepped edge by edge (command, beats, copy, drain), not taken from
the closed forms in ``sim.tile_timing``. Use it for layers of at most a few hundred thousand cycles.

Options the engine uses between layers: the input already in the GLB (no input fetches), the final
outputs left there (no final writes), and fused layers in the output path: vector lanes that, each
cycle, take ``lanes`` element operations of the final outputs released so far, beside the array, and
parameters fetched with the first block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from codesign.arch import ArchSpec, Dataflow
from dataflow.mapping import Mapping, Problem

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


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    """(index, size) of ``total`` cut into ``size``-chunks."""
    return [(i, min(size, total - i * size)) for i in range(math.ceil(total / size))]


def _core_edges(flow: str, tiles: list[tuple[int, int, int]], rows: int, cols: int) -> tuple[list[int], int]:
    """Edge of each tile's accepted command and of the last result row, clocking the core one edge at a time.

    Follows docs/core-protocol.md with every stream ready, independently of ``tile_timing``'s closed
    forms (see ``_ws_edges`` and ``_os_edges``).
    """
    return (_ws_edges if flow == "ws" else _os_edges)(tiles, rows, cols)


def _ws_edges(tiles: list[tuple[int, int, int]], rows: int, cols: int) -> tuple[list[int], int]:
    """WS: after the command, k weight rows then m activation rows, one per edge; a row leaves
    ``rows + cols`` edges after it entered; the next command one edge after the last result."""
    starts: list[int] = []
    edge = last_result = 0
    for m, k, _ in tiles:
        edge = last_result + 1 if starts else edge + 1  # the command's edge
        starts.append(edge)
        for _ in range(k):  # weight rows
            edge += 1
        for _ in range(m):  # activation rows
            edge += 1
            last_result = edge + rows + cols
    return starts, last_result


def _os_edges(tiles: list[tuple[int, int, int]], rows: int, cols: int) -> tuple[list[int], int]:
    """OS: k beats, the first on the command's edge; the last MAC lands ``rows + cols - 1`` edges after
    the last beat; on an edge the result bank is empty, the finished tile is copied (its last MAC
    included), row 0 going into the results FIFO, and that edge may accept the next command; the bank
    then sends one row per edge while the next tile computes. A FIFO row transfers one edge later."""
    starts: list[int] = []
    last_result = edge = 0
    phase, left = "idle", 0  # of the tile in the array, and its edges left in that phase
    pending = None  # m of a finished tile waiting in the accumulators
    bank_left = 0  # rows still in the result bank
    queue = list(tiles)
    current = None
    while queue or phase != "idle" or pending is not None or bank_left:
        edge += 1
        was_draining = bank_left > 0
        if was_draining:  # a bank row enters the FIFO
            bank_left -= 1
            last_result = edge + 1
        if phase == "feed":
            left -= 1
            if left == 0:
                phase, left = "finish", rows + cols - 1
        elif phase == "finish":
            left -= 1
            if left == 0:  # the last MAC lands on this edge
                phase, pending = "idle", current[0]
        if pending is not None and not was_draining:  # the copy: row 0 into the FIFO, the rest into the bank
            bank_left, pending = pending - 1, None
            last_result = edge + 1
        if phase == "idle" and pending is None and queue:
            current = queue.pop(0)
            starts.append(edge)
            phase, left = ("feed", current[1] - 1) if current[1] > 1 else ("finish", rows + cols - 1)
    return starts, last_result


def _systolic_block(problem: Problem, mapping: Mapping, arch: ArchSpec, bm: int, bk: int, bn: int,
                    k_first: bool, result: ReferenceResult) -> tuple[list[tuple[int, int, int]], int]:
    """(tiles as the core runs them, array-side GLB bits) of one block, tile by tile."""
    tm, tk, tn = mapping.array_tile
    tiles, bits = [], 0
    ab, wb, acc = problem.activation_bits, problem.weight_bits, problem.accumulator_bits
    for _, m in _chunks(bm, tm):
        for _, n in _chunks(bn, tn):
            for ki, k in _chunks(bk, tk):
                tiles += [(m, k, math.ceil(n / problem.pack))] * problem.passes
                result.macs += m * k * n
                reads_psum = not (k_first and ki == 0)
                result.glb_array_words["input"] += m * k
                result.glb_array_words["weight"] += k * n
                result.glb_array_words["output"] += m * n * (2 if reads_psum else 1)
                bits += m * k * ab + k * n * wb + m * n * acc * (2 if reads_psum else 1)
    return tiles, bits


def _rs_block(problem: Problem, mapping: Mapping, arch: ArchSpec, bm: int, bk: int, bn: int, k_first: bool,
              result: ReferenceResult) -> tuple[int, int]:
    """(array cycles, array-side GLB bits) of one block, unit by unit onto PE sets, pass by pass."""
    conv = problem.conv
    p, q = mapping.rs_filters, mapping.rs_channels
    out_rows, channels, filters = bm // conv.q, bk // (conv.r * conv.s), bn
    r = min(conv.r, arch.rows)
    e = min(conv.p, arch.cols)
    sets = (arch.rows // r) * (arch.cols // e)
    seg = max(1, min(conv.s, arch.pe.weight_rf_words, arch.pe.activation_rf_words))
    ab, wb, acc = problem.activation_bits, problem.weight_bits, problem.accumulator_bits
    units, bits = 0, 0
    for _, ei in _chunks(out_rows, e):
        for _, pf in _chunks(filters, p):
            for ci, qc in _chunks(channels, q):
                for ri, rr in _chunks(conv.r, r):
                    for si, ss in _chunks(conv.s, seg):
                        units += 1
                        result.macs += pf * qc * rr * ss * ei * conv.q
                        w = pf * qc * rr * ss
                        rows_in = (ei - 1) * conv.stride[0] + (rr - 1) * conv.dilation[0] + 1
                        width = (conv.q - 1) * conv.stride[1] + (ss - 1) * conv.dilation[1] + 1
                        a = qc * rows_in * width
                        c = pf * ei * conv.q
                        reads_psum = not (k_first and ci == 0 and ri == 0 and si == 0)
                        result.glb_array_words["weight"] += w
                        result.glb_array_words["input"] += a
                        result.glb_array_words["output"] += c * (2 if reads_psum else 1)
                        bits += w * wb + a * ab + c * acc * (2 if reads_psum else 1)
    # Every pass lasts the PE's configured loop: ceil(p/pack) filters x q channels x S taps x Q outputs
    # (times the weight density when zero weights are skipped), then r cycles of psum accumulation.
    from dataflow.row_stationary import ZERO_SKIPPING

    density = problem.weight_density if ZERO_SKIPPING else 1.0
    pe_cycles = max(1, math.ceil(math.ceil(p / problem.pack) * q * seg * conv.q * density))
    passes = math.ceil(units / sets)
    return passes * (pe_cycles + r) * problem.passes, bits


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
    block_tiles: list[list[tuple[int, int, int]]] = []
    for position, (g, index) in enumerate(steps):
        size = {d: min(block[d], sizes[d] - index[d] * block[d]) for d in sizes}
        keys = {"input": (g, index["m"], index["k"]), "weight": (g, index["k"], index["n"]),
                "output": (g, index["m"], index["n"])}
        load = 0
        if keys["input"] != resident["input"] and not input_onchip:
            words = -(-size["m"] * size["k"] * problem.input_unique // problem.input_im2col)
            result.dram_words["input"] += words
            load += words * ab
        if keys["weight"] != resident["weight"]:
            words = size["k"] * size["n"]
            result.dram_words["weight"] += words
            load += words * wb
        if keys["output"] != resident["output"] and index["k"] > 0:
            words = size["m"] * size["n"]
            result.dram_words["output"] += words
            load += words * acc
        resident = keys
        k_first = index["k"] == 0
        if mapping.dataflow is Dataflow.ROW_STATIONARY:
            compute, glb = _rs_block(problem, mapping, arch, size["m"], size["k"], size["n"], k_first, result)
        else:
            tiles, glb = _systolic_block(problem, mapping, arch, size["m"], size["k"], size["n"], k_first, result)
            block_tiles.append(tiles)
            compute = 0
        blocks.append(_Block(compute=compute, glb_bits=glb, load_bits=load, write_bits=0))
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
                blocks[-1].write_bits = words * (ab if final else acc)
    if block_tiles:  # the array's time per block, from the core clocked over every tile of the layer
        every = [tile for tiles in block_tiles for tile in tiles]
        starts, end = _core_edges(mapping.dataflow.value, every, arch.rows, arch.cols)
        first = 0
        for item, tiles in zip(blocks, block_tiles):
            following = first + len(tiles)
            item.compute = (starts[following] if following < len(starts) else end) - starts[first]
            first = following
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
    result = ReferenceResult()
    blocks = _blocks(problem, mapping, arch, result, input_onchip, output_onchip)
    blocks[0].load_bits += path_param_bits
    blocks[0].glb_bits += path_param_bits
    outputs = problem.groups * problem.m * problem.n
    released = Fraction(0)  # element operations of the final outputs so far
    lane_cycles = 0
    glb_rate = arch.glb.banks * arch.glb.words_per_cycle * arch.glb.word_bits
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
