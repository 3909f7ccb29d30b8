"""Non-MAC layers: pooling, elementwise, normalization, softmax, data movement, embeddings.

They run on a vector unit of ``arch.cols`` lanes (one per array column, as the array's output
row is that wide), one element operation per lane per cycle, streaming operands from DRAM through
the GLB with the DRAM channel and the lanes overlapped:

    cycles = latency (if anything is read) + max(ceil(ops / lanes), read_time + write_time)

Views (reshape, flatten, ...) move no data and cost nothing; other data-movement ops read and write
their bytes. Energy: DRAM and GLB bits at the table, plus one MAC-equivalent at activation width
per element operation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from codesign.arch import ArchSpec
from codesign.workload import Layer, OpKind


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


def vector_cost(layer: Layer, arch: ArchSpec) -> VectorCost:
    from sim.memory import read_cycles, write_cycles

    lanes = vector_lanes(arch)
    if moves_no_data(layer):
        return VectorCost(lanes, 0, 0, 0, 0, 0, 0)
    ops = int(layer.elementwise_ops)
    read_bytes = int(layer.input_bytes) + int(layer.weight_bytes)
    write_bytes = int(layer.output_bytes)
    compute = math.ceil(ops / lanes)
    read_bits, write_bits = read_bytes * 8, write_bytes * 8
    transfer = int(read_cycles(read_bits, arch)) - (arch.dram.latency_cycles if read_bits else 0)
    transfer += int(write_cycles(write_bits, arch))
    latency = arch.dram.latency_cycles if read_bits else 0
    cycles = latency + max(compute, transfer)
    roofline = max(compute, int(write_cycles(read_bits + write_bits, arch)))  # bandwidth time, no latency
    return VectorCost(lanes, ops, read_bytes, write_bytes, cycles, compute, roofline)
