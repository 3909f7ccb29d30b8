"""Layer fusion: per-channel normalization and activations run in a MAC layer's output path.

An inference accelerator folds batch norm (a per-channel scale and shift) and elementwise activations
into the path that drains a conv's outputs, so the intermediate tensors never leave the array's output
lanes. A layer fuses into the MAC layer before it when it is such an op, reads only that layer's
output, and that output has no other consumer; chains (conv -> bn -> relu) fuse whole. Which layers are
such ops is decided at capture and recorded as ``Layer.fusable`` (``codesign.capture.aten_ops``). Timing
of the fused chain is in ``sim.engine`` (docs/simulator.md, "Fusion").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from codesign.workload import Layer, Workload

__all__ = ["FusionPlan", "plan_fusion"]


def _elements(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


@dataclass(frozen=True)
class FusionPlan:
    """Which layers run in which MAC layer's output path: producer -> fused chain in order."""

    chains: dict = field(default_factory=dict)  # producer name -> tuple of fused layer names

    @property
    def fused_into(self) -> dict[str, str]:
        return {name: producer for producer, chain in self.chains.items() for name in chain}


def _fits_after(previous: Layer, candidate: Layer) -> bool:
    """``candidate`` keeps the tensor's shape and precision, so the producer's writes stay what they were."""
    return (candidate.fusable
            and _elements(candidate.input_shapes[0]) == _elements(previous.output_shape)
            and _elements(candidate.output_shape) == _elements(previous.output_shape)
            and candidate.bits.activation == previous.bits.activation)


def plan_fusion(workload: Workload) -> FusionPlan:
    """Every MAC layer's longest chain of fusable sole consumers (each reading only its predecessor)."""
    graph = workload.graph
    layers = {layer.name: layer for layer in workload.layers}
    chains = {}
    for layer in workload.layers:
        if not layer.op.has_macs or layer.name not in graph:
            continue
        chain, tail = [], layer
        while True:
            succ = list(graph.successors(tail.name))
            if len(succ) != 1 or succ[0] not in layers:
                break
            nxt = layers[succ[0]]
            if list(graph.predecessors(nxt.name)) != [tail.name] or not _fits_after(tail, nxt):
                break
            chain.append(nxt.name)
            tail = nxt
        if chain:
            chains[layer.name] = tuple(chain)
    return FusionPlan(chains)
