"""On-chip residency of activations: which intermediate tensors stay in the global buffer between layers.

Model (docs/simulator.md, "Residency"): layers run one after another in topological order. At each
layer the GLB holds that layer's working set (its mapping's double-buffered blocks; a vector layer's
streaming buffers) and, beside it, the activation tensors that stay resident. Tensors are admitted
first come, first served, in the order they are produced: a tensor stays on chip from its producer to
its last consumer when, at every layer in between, the working set plus the tensors already admitted
plus this one fit the buffer; otherwise it spills (written to DRAM and read back, as without residency).
A tensor with no consumer is a network output and always goes to DRAM; a tensor read by a consumer that
cannot take it from the GLB (a matmul, whose two operands are activations) goes to DRAM too.
Views (reshape, flatten) alias their input tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codesign.workload import Layer, Workload

__all__ = ["Tensor", "ResidencyPlan", "tensor_sources", "plan_residency"]


@dataclass(frozen=True)
class Tensor:
    """An activation tensor between layers: who writes it, its size, and the steps that read it."""

    producer: str  # the step (layer run) that writes it
    bits: int
    consumers: tuple[str, ...]


@dataclass(frozen=True)
class ResidencyPlan:
    onchip: frozenset = frozenset()  # producers whose output tensor stays in the GLB
    tensors: dict = field(default_factory=dict)  # producer -> Tensor
    sources: dict = field(default_factory=dict)  # step -> producers of the tensors it reads (views resolved)

    def output_onchip(self, step: str) -> bool:
        return step in self.onchip

    def onchip_inputs(self, step: str) -> tuple[str, ...]:
        """Producers of the tensors ``step`` reads from the GLB (in the graph's order)."""
        return tuple(p for p in self.sources.get(step, ()) if p in self.onchip)

    def onchip_input_bits(self, step: str) -> int:
        return sum(self.tensors[p].bits for p in self.onchip_inputs(step))


def tensor_sources(workload: Workload, fused_into: dict[str, str], is_view) -> dict[str, tuple[str, ...]]:
    """step -> the steps whose output tensors it reads: fused layers stand for their producer, views for
    the tensor they alias (a view of a network input reads nothing)."""
    graph = workload.graph
    alias: dict[str, tuple[str, ...]] = {}

    def resolve(name: str) -> tuple[str, ...]:
        if name in alias:
            return alias[name]
        return (fused_into.get(name, name),)

    sources = {}
    for layer in workload.layers:
        preds = list(graph.predecessors(layer.name)) if layer.name in graph else []
        found: list[str] = []
        for pred in preds:
            for p in resolve(pred):
                if p not in found:
                    found.append(p)
        if is_view(layer):
            alias[layer.name] = tuple(found)
            continue
        if layer.name in fused_into:
            continue
        sources[layer.name] = tuple(found)
    return sources


def plan_residency(workload: Workload, fused_into: dict[str, str], sources: dict[str, tuple[str, ...]],
                   working_bits: dict[str, int], capacity_bits: int, reads_from_glb) -> ResidencyPlan:
    """First-come admission of every intermediate tensor (the model in the module doc).

    ``sources``: from ``tensor_sources``. ``working_bits``: GLB bits each step's own blocks need.
    ``reads_from_glb(layer)``: the step can take its inputs from the GLB. A tensor's size is the output of its
    producer's last fused layer.
    """
    layers = {layer.name: layer for layer in workload.layers}
    order = {layer.name: i for i, layer in enumerate(workload.layers)}
    steps = list(sources)  # topological order, views and fused layers left out
    position = {name: i for i, name in enumerate(steps)}
    tail: dict[str, Layer] = {name: layers[name] for name in steps}
    for name, producer in fused_into.items():
        if producer in tail and order[name] > order[tail[producer].name]:
            tail[producer] = layers[name]
    consumers: dict[str, list[str]] = {name: [] for name in steps}
    for step, produced_by in sources.items():
        for p in produced_by:
            if p in consumers:
                consumers[p].append(step)
    tensors = {name: Tensor(name, tail[name].output_bytes * 8, tuple(consumers[name])) for name in steps}
    used = [0] * len(steps)
    onchip = set()
    for name in steps:
        tensor = tensors[name]
        if not tensor.consumers or tensor.bits <= 0:
            continue
        if not all(reads_from_glb(layers[c]) for c in tensor.consumers):
            continue
        first, last = position[name], max(position[c] for c in tensor.consumers)
        span = range(first, last + 1)
        if all(working_bits.get(steps[s], 0) + used[s] + tensor.bits <= capacity_bits for s in span):
            for s in span:
                used[s] += tensor.bits
            onchip.add(name)
    return ResidencyPlan(frozenset(onchip), tensors, sources)
