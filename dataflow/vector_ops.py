"""Non-MAC layers: pooling, elementwise, normalization, softmax, data movement, embeddings, resampling.

They run on a vector unit of ``arch.cols`` lanes (one per array column, as the array's output
row is that wide), one element operation per lane per cycle, streaming operands from DRAM through
the GLB with the DRAM channel and the lanes overlapped:

    cycles = latency (if anything is read) + max(ceil(ops / lanes), read_time + write_time)

Views (reshape, flatten, ...) move no data and cost nothing; other data-movement ops (permute, roll, concat,
repeat, ...) read and write their bytes. Resampling (interpolation, grid_sample, affine_grid, a transposed
convolution's overlap-add) counts one element operation per input tap of each output value. Energy: DRAM and GLB bits at the table, plus one MAC-equivalent at activation width
per element operation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codesign.arch import ArchSpec
from codesign.contract.memory import read_cycles, write_cycles
from codesign.workload import Layer, OpKind

__all__ = ["VectorCost", "vector_lanes", "moves_no_data", "vector_cost", "output_path_cycles"]


@dataclass(frozen=True)
class VectorCost:
    lanes: int
    ops: int
    read_bytes: int
    write_bytes: int
    cycles: int
    compute_cycles: int
    roofline_cycles: int


def vector_lanes(arch: ArchSpec) -> int:
    return arch.cols


def moves_no_data(layer: Layer) -> bool:
    return layer.op is OpKind.RESHAPE


def vector_cost(layer: Layer, arch: ArchSpec, onchip_input_bytes: int = 0, output_onchip: bool = False) -> VectorCost:
    """Cycles and DRAM bytes of a non-MAC layer; ``onchip_input_bytes`` of its inputs are already in the GLB and,
    with ``output_onchip``, its output stays there (docs/simulator.md, "Residency")."""
    lanes = vector_lanes(arch)
    if moves_no_data(layer):
        return VectorCost(lanes, 0, 0, 0, 0, 0, 0)
    ops = int(layer.elementwise_ops)
    read_bytes = max(0, int(layer.input_bytes) - onchip_input_bytes) + int(layer.weight_bytes)
    write_bytes = 0 if output_onchip else int(layer.output_bytes)
    compute = math.ceil(ops / lanes)
    read_bits, write_bits = read_bytes * 8, write_bytes * 8
    transfer = int(read_cycles(read_bits, arch)) - (arch.dram.latency_cycles if read_bits else 0)
    transfer += int(write_cycles(write_bits, arch))
    latency = arch.dram.latency_cycles if read_bits else 0
    cycles = latency + max(compute, transfer)
    roofline = max(compute, int(write_cycles(read_bits + write_bits, arch)))  # bandwidth time, no latency
    return VectorCost(lanes, ops, read_bytes, write_bytes, cycles, compute, roofline)


def output_path_cycles(final_words: np.ndarray, ops: int, elements: int, lanes: int) -> np.ndarray:
    """Cycles the vector lanes spend per block on ``ops`` element operations of fused layers spread evenly over the
    ``elements`` final outputs of a MAC layer, as each block's final outputs come out of the array.

    Counted cumulatively, ``ceil(done_b * ops / (elements * lanes)) - ceil(done_{b-1} * ops / (elements * lanes))``,
    so the lanes stream without per-block rounding and the blocks sum to exactly ``ceil(ops / lanes)``.
    """
    done = np.cumsum(np.asarray(final_words, dtype=np.int64))
    if ops <= 0 or elements <= 0:
        return np.zeros(done.shape, dtype=np.int64)
    scale = elements * lanes
    upto = np.array([-(-int(d) * ops // scale) for d in done], dtype=np.int64)  # exact for big products
    return np.diff(upto, prepend=0)
