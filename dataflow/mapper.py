"""Mapper: search the legal mappings of a layer for an objective, deterministically and bounded.

The space per layer: (WS/OS) the streamed dimension's chunk, or (RS) the filters x channels a PE
keeps in its register files; the GLB block per GEMM dimension (tile-aligned multiples growing by
powers of two, at most ``MAX_BLOCK_CHOICES`` per dimension, plus the whole dimension); the DRAM loop
order (all six). Blocks that do not fit the GLB double-buffered are pruned before costing. Every
remaining candidate is ranked by a closed-form estimate (exact compute cycles, closed-form DRAM
traffic, max(compute, transfer) overlap), vectorized with numpy; the engine simulates the best
``limit`` exactly and keeps the best of those. Ties break by candidate order, so results are
reproducible. Identical layers (same ``Problem.signature``) are searched once by the engine.
"""

from __future__ import annotations

import math
import numpy as np

from codesign.arch import ArchSpec, Dataflow
from codesign.errors import MappingError
from dataflow import output_stationary, row_stationary, weight_stationary
from dataflow.blocking import DRAM_ORDERS
from dataflow.mapping import GEMM_DIMS, OPERAND_DIMS, Mapping, Problem, check_fits, glb_bits_needed, input_words
from dataflow.systolic import SystolicRule, layer_compute_cycles
from sim import tile_timing
from sim.memory import dram_bits_per_cycle, glb_bits_per_cycle

OBJECTIVES = ("latency", "energy", "edp")
MAX_BLOCK_CHOICES = 8
MAX_STREAM_CHOICES = 8
RULES = {Dataflow.WEIGHT_STATIONARY: weight_stationary.RULE, Dataflow.OUTPUT_STATIONARY: output_stationary.RULE}


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise MappingError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    return objective


def _spread(values: list[int], limit: int) -> list[int]:
    """At most ``limit`` of ascending ``values``, evenly spread, always keeping both ends."""
    if len(values) <= limit:
        return values
    picks = np.unique(np.round(np.linspace(0, len(values) - 1, limit)).astype(int))
    return [values[i] for i in picks]


def block_choices(total: int, unit: int) -> list[int]:
    """Tile-aligned block sizes: unit * 2^i below ``total``, then ``total`` itself."""
    values, size = [], unit
    while size < total:
        values.append(size)
        size *= 2
    values.append(total)
    return _spread(values, MAX_BLOCK_CHOICES)


def stream_choices(total: int) -> list[int]:
    """Chunks of the streamed dimension, largest first: the whole, then powers of two below it."""
    values = [total] + [2 ** j for j in range(total.bit_length() - 1, -1, -1) if 2 ** j < total]
    if len(values) > MAX_STREAM_CHOICES:
        values = values[: MAX_STREAM_CHOICES - 1] + [1]
    return values


def _refetch(t: dict[str, np.ndarray], order: tuple[str, ...], dims: tuple[str, ...]) -> np.ndarray:
    """Vectorized ``blocking.refetch_factor`` over arrays of trip counts."""
    shape = np.broadcast(*t.values()).shape
    factor = np.ones(shape, dtype=np.float64)
    result = np.ones(shape, dtype=np.float64)
    for d in order:
        if d in dims:
            result = np.where(t[d] > 1, factor, result)
        else:
            factor = factor * t[d]
    return result


def _dram_bits(problem: Problem, blocks: dict[str, np.ndarray], order: tuple[str, ...]) -> np.ndarray:
    sizes = {"m": problem.m, "k": problem.k, "n": problem.n}
    t = {d: -(-sizes[d] // blocks[d]) for d in GEMM_DIMS}
    g = problem.groups
    a = g * input_words(problem, problem.m * problem.k) * _refetch(t, order, OPERAND_DIMS["input"])
    w = g * problem.k * problem.n * _refetch(t, order, OPERAND_DIMS["weight"])
    c_all = g * problem.m * problem.n
    psum = c_all * (_refetch(t, order, OPERAND_DIMS["output"]) - 1)
    return (a * problem.activation_bits + w * problem.weight_bits + c_all * problem.activation_bits
            + 2 * psum * problem.accumulator_bits)


def _grid(choices: dict[str, list[int]]) -> dict[str, np.ndarray]:
    gm, gk, gn = np.meshgrid(*(np.asarray(choices[d], dtype=np.int64) for d in GEMM_DIMS), indexing="ij")
    return {"m": gm.ravel(), "k": gk.ravel(), "n": gn.ravel()}


def _fits(problem: Problem, blocks: dict[str, np.ndarray], arch: ArchSpec) -> np.ndarray:
    """Which candidate blocks fit the GLB (``glb_bits_needed`` over arrays of block sizes)."""
    return glb_bits_needed(problem, (blocks["m"], blocks["k"], blocks["n"])) <= arch.glb.size_bytes * 8


def _score(objective: str, problem: Problem, arch: ArchSpec, blocks, order, busy: np.ndarray,
           glb_bits: np.ndarray, onchip_energy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(objective value, estimated cycles) of each candidate block for one order."""
    dram = _dram_bits(problem, blocks, order)
    rate = float(dram_bits_per_cycle(arch))
    first = arch.dram.latency_cycles + (input_words(problem, blocks["m"] * blocks["k"]) * problem.activation_bits
                                        + blocks["k"] * blocks["n"] * problem.weight_bits) / rate
    cycles = np.maximum(busy, dram / rate) + first
    energy = onchip_energy + glb_bits * arch.energy_per_bit("glb") + dram * arch.energy_per_bit("dram")
    if objective == "latency":
        return cycles, cycles
    if objective == "energy":
        return energy, cycles
    return cycles * energy, cycles


def _rank(objective: str, candidates: list[tuple[np.ndarray, np.ndarray, object]], limit: int) -> list[Mapping]:
    """The ``limit`` best candidates; each pool entry builds its Mapping i only when chosen."""
    values = np.concatenate([c[0] for c in candidates])
    ties = np.concatenate([c[1] for c in candidates])
    starts = np.cumsum([0] + [len(c[0]) for c in candidates])
    order = np.lexsort((np.arange(values.size), ties, values))
    chosen = []
    for index in order[:limit]:
        entry = int(np.searchsorted(starts, index, side="right")) - 1
        chosen.append(candidates[entry][2](int(index - starts[entry])))
    return chosen


def _systolic_candidates(rule: SystolicRule, problem: Problem, arch: ArchSpec, objective: str,
                         limit: int) -> list[Mapping]:
    sizes = {"m": problem.m, "k": problem.k, "n": problem.n}
    streamed = rule.streamed_dim
    glb_rate = glb_bits_per_cycle(arch)
    pool = []
    smallest = None
    # Streamed chunks no longer than a generated core's tile (sim.tile_timing.MAX_STREAM_TILE).
    for stream in stream_choices(min(sizes[streamed], tile_timing.MAX_STREAM_TILE)):
        bound = rule.tile_bounds(problem, arch, stream)
        tile = tuple(min(b, sizes[d]) for b, d in zip(bound, GEMM_DIMS))
        smallest = tile
        choices = {d: block_choices(sizes[d], tile[i]) for i, d in enumerate(GEMM_DIMS)}
        blocks = _grid(choices)
        keep = _fits(problem, blocks, arch)
        if not keep.any():
            continue
        blocks = {d: v[keep] for d, v in blocks.items()}
        compute = layer_compute_cycles(rule, problem, arch, tile)
        g = problem.groups
        tm, tk, tn = tile
        glb_bits = g * (problem.m * problem.k * math.ceil(problem.n / tn) * problem.activation_bits
                        + problem.k * problem.n * math.ceil(problem.m / tm) * problem.weight_bits
                        + (2 * math.ceil(problem.k / tk) - 1) * problem.m * problem.n * problem.accumulator_bits)
        busy = np.full(blocks["m"].shape, max(compute, glb_bits / glb_rate), dtype=np.float64)
        onchip = np.zeros(blocks["m"].shape)
        for order in DRAM_ORDERS:
            value, cycles = _score(objective, problem, arch, blocks, order, busy, np.full(busy.shape, glb_bits), onchip)

            def build(i, order=order, blocks=blocks, tile=tile):
                block = tuple(int(blocks[d][i]) for d in GEMM_DIMS)
                return Mapping(
                    dataflow=rule.dataflow, spatial_rows=rule.spatial_rows, spatial_cols=rule.spatial_cols,
                    dram_order=order, block=block, array_tile=tile,
                    onchip_order=("m", "n", "k"), glb_bits=glb_bits_needed(problem, block),
                )

            pool.append((value, cycles, build))
    if not pool:
        check_fits(problem, smallest, arch)  # raises, naming the layer and the bytes it needs
        raise MappingError(f"layer {problem.name}: no mapping fits the global buffer")
    return _rank(objective, pool, limit)


def _rs_candidates(problem: Problem, arch: ArchSpec, objective: str, limit: int) -> list[Mapping]:
    conv = problem.conv
    taps = conv.r * conv.s
    rows, channels = problem.m // conv.q, problem.k // taps
    e = row_stationary.set_shape(problem, arch)[1]
    choices = {
        "m": [conv.q * v for v in block_choices(rows, min(e, rows))],
        "k": [taps * v for v in block_choices(channels, 1)],
        "n": block_choices(problem.n, 1),
    }
    blocks = _grid(choices)
    keep = _fits(problem, blocks, arch)
    if not keep.any():
        check_fits(problem, (conv.q * min(e, rows), taps, 1), arch)
        raise MappingError(f"layer {problem.name}: no mapping fits the global buffer")
    blocks = {d: v[keep] for d, v in blocks.items()}
    pool = []
    for p, q in row_stationary.rf_choices(problem, arch):
        busy = problem.groups * row_stationary.block_cycles(
            problem, arch, p, q, blocks["m"] // conv.q, blocks["k"] // taps, blocks["n"]) * (
            (-(-rows // (blocks["m"] // conv.q))) * (-(-channels // (blocks["k"] // taps))) * (-(-problem.n // blocks["n"])))
        busy = busy.astype(np.float64)
        zeros = np.zeros(busy.shape)
        for order in DRAM_ORDERS:
            value, cycles = _score(objective, problem, arch, blocks, order, busy, zeros, zeros)

            def build(i, order=order, p=p, q=q):
                block = tuple(int(blocks[d][i]) for d in GEMM_DIMS)
                return Mapping(
                    dataflow=Dataflow.ROW_STATIONARY, spatial_rows=row_stationary.SPATIAL_ROWS,
                    spatial_cols=row_stationary.SPATIAL_COLS, dram_order=order, block=block,
                    array_tile=(conv.q * e, taps, p), onchip_order=("output rows/e", "filters/p", "channels/q", "R/rows"),
                    glb_bits=glb_bits_needed(problem, block), rs_filters=p, rs_channels=q,
                )

            pool.append((value, cycles, build))
    return _rank(objective, pool, limit)


def candidate_mappings(problem: Problem, arch: ArchSpec, dataflow: Dataflow, objective: str = "latency",
                       limit: int = 8) -> list[Mapping]:
    """The ``limit`` best legal mappings of ``problem`` by the estimate, best first (MappingError if none)."""
    check_objective(objective)
    if not arch.supports(dataflow):
        supported = ", ".join(d.value for d in arch.dataflows)
        raise MappingError(f"accelerator {arch.name} does not support dataflow {dataflow.value} (it supports {supported})")
    if dataflow is Dataflow.ROW_STATIONARY:
        return _rs_candidates(problem, arch, objective, limit)
    return _systolic_candidates(RULES[dataflow], problem, arch, objective, limit)
