"""The pieces every dataflow's mapping search is built from: block choices, the closed-form estimate, ranking.

A dataflow's ``candidates`` lays out its own space (tile shapes, register-file loops) and uses these for
the GLB blocks (tile-aligned multiples growing by powers of two, at most ``MAX_BLOCK_CHOICES`` per
dimension, plus the whole dimension), the six DRAM loop orders, the capacity check, and a closed-form
estimate (exact compute cycles, closed-form DRAM traffic, max(compute, transfer) overlap), vectorized
with numpy. ``rank`` keeps the best; ties break by candidate order, so results are reproducible.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from codesign.arch import ArchSpec
from dataflow.blocking import DRAM_ORDERS
from dataflow.mapping import GEMM_DIMS, OPERAND_DIMS, Mapping, Problem, glb_bits_needed, input_words

__all__ = ["MAX_BLOCK_CHOICES", "MAX_STREAM_CHOICES", "DRAM_ORDERS", "block_choices", "stream_choices", "grid",
           "fits", "score", "rank", "Candidates"]

MAX_BLOCK_CHOICES = 8
MAX_STREAM_CHOICES = 8

# One pool entry: (objective value per candidate, estimated cycles per candidate, build(i) -> Mapping).
Candidates = tuple[np.ndarray, np.ndarray, Callable[[int], Mapping]]


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
    """Chunks of a streamed dimension, largest first: the whole, then powers of two below it."""
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
    w = g * problem.k * problem.n * _weight_trips(problem, t, order)
    c_all = g * problem.m * problem.n
    psum = c_all * (_refetch(t, order, OPERAND_DIMS["output"]) - 1)
    return (a * problem.activation_bits * _ratio(problem, "input") + w * problem.weight_bits * _ratio(problem, "weight")
            + c_all * problem.activation_bits * _ratio(problem, "output") + 2 * psum * problem.accumulator_bits)


def _weight_trips(problem: Problem, t: dict[str, np.ndarray], order: tuple[str, ...]) -> np.ndarray:
    """How often the weights are read whole: the loop-nest refetch, or trips(m) when a split GLB streams
    every block's filters (``blocking.dram_bits_closed_form``)."""
    if problem.streams_weights:
        return np.ones(np.broadcast(*t.values()).shape, dtype=np.float64) * t["m"]
    return _refetch(t, order, OPERAND_DIMS["weight"])


def _weight_bits(problem: Problem, blocks: dict[str, np.ndarray], order: tuple[str, ...]) -> np.ndarray:
    """The weights' share of ``_dram_bits``."""
    sizes = {"m": problem.m, "k": problem.k, "n": problem.n}
    t = {d: -(-sizes[d] // blocks[d]) for d in GEMM_DIMS}
    return (problem.groups * problem.k * problem.n * _weight_trips(problem, t, order) * problem.weight_bits
            * _ratio(problem, "weight"))


def _ratio(problem: Problem, operand: str) -> float:
    """Stored over dense size of ``operand`` off chip (1.0 when it is stored dense)."""
    for name, level, num, den in problem.stored:
        if name == operand and level == "dram":
            return num / den
    return 1


def grid(choices: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """Every combination of the per-dimension block choices, as flat arrays keyed 'm', 'k', 'n'."""
    gm, gk, gn = np.meshgrid(*(np.asarray(choices[d], dtype=np.int64) for d in GEMM_DIMS), indexing="ij")
    return {"m": gm.ravel(), "k": gk.ravel(), "n": gn.ravel()}


def fits(problem: Problem, blocks: dict[str, np.ndarray], arch: ArchSpec) -> np.ndarray:
    """Which candidate blocks fit the GLB (``glb_bits_needed`` over arrays of block sizes)."""
    return glb_bits_needed(problem, (blocks["m"], blocks["k"], blocks["n"])) <= arch.glb.size_bytes * 8


def score(objective: str, problem: Problem, arch: ArchSpec, blocks, order, busy: np.ndarray,
          glb_bits: np.ndarray, onchip_energy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(objective value, estimated cycles) of each candidate block for one DRAM loop order.

    ``busy``: the array's (or GLB ports') cycles per candidate; ``glb_bits``: its GLB port bits;
    ``onchip_energy``: any energy below the GLB the dataflow wants counted in the estimate.
    Double-buffered: ``max(busy, dram / rate) + first block's load``; split (section 6 of docs/simulator.md):
    ``max(busy, weights / rate) + (dram - weights) / rate + latency``, the fills and drains serialized.
    """
    dram = _dram_bits(problem, blocks, order)
    rate = float(arch.dram.bits_per_cycle)
    if problem.glb_allocation == "split":
        weights = _weight_bits(problem, blocks, order)
        cycles = np.maximum(busy, weights / rate) + (dram - weights) / rate + arch.dram.latency_cycles
    else:
        first = arch.dram.latency_cycles + (
            input_words(problem, blocks["m"] * blocks["k"]) * problem.activation_bits * _ratio(problem, "input")
            + blocks["k"] * blocks["n"] * problem.weight_bits * _ratio(problem, "weight")) / rate
        cycles = np.maximum(busy, dram / rate) + first
    energy = onchip_energy + glb_bits * arch.energy_per_bit("glb") + dram * arch.energy_per_bit("dram")
    if objective == "latency":
        return cycles, cycles
    if objective == "energy":
        return energy, cycles
    return cycles * energy, cycles


def rank(objective: str, candidates: list[Candidates], limit: int) -> list[Mapping]:
    """The ``limit`` best candidates over every pool entry; each entry builds its Mapping i only when chosen."""
    values = np.concatenate([c[0] for c in candidates])
    ties = np.concatenate([c[1] for c in candidates])
    starts = np.cumsum([0] + [len(c[0]) for c in candidates])
    order = np.lexsort((np.arange(values.size), ties, values))
    chosen = []
    for index in order[:limit]:
        entry = int(np.searchsorted(starts, index, side="right")) - 1
        chosen.append(candidates[entry][2](int(index - starts[entry])))
    return chosen
