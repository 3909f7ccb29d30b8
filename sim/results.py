"""What a simulation returns: per-layer results and the network's totals, as frozen dataclasses.

Accesses are counted in words per memory level ('dram', 'glb', 'noc', 'rf') per operand ('weight',
'input', 'output'); energies in the table's unit per level per operand, plus 'mac'. Reuse of an operand
at a level is MACs per access there (how many MACs each fetched word feeds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from collections.abc import Mapping

from codesign.workload import Unmapped

__all__ = ["LayerResult", "SimResult", "frozen_table"]


def _plain(value):
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def frozen_table(table: Mapping) -> Mapping:
    """A read-only copy of a nested dict (results are immutable)."""
    return MappingProxyType({k: frozen_table(v) if isinstance(v, Mapping) else v for k, v in table.items()})


@dataclass(frozen=True)
class LayerResult:
    name: str
    op: str
    dataflow: str
    unit: str  # 'array' (MAC layer) or 'vector' (every other op)
    macs: int  # dense MACs of the mapped (effective) dimensions
    effective_macs: int  # MACs on non-zero weights
    cycles: int
    compute_cycles: int
    stall_cycles: int
    dram_stall_cycles: int
    glb_stall_cycles: int
    utilization: float  # MAC slots used / (PEs * cycles); slots = macs * passes / pack (docs/simulator.md)
    spatial_utilization: float  # share of PEs a full tile (or PE-set pass) occupies
    accesses: Mapping  # level -> operand -> words
    bits_moved: Mapping  # level -> operand -> bits (words at their widths: partial sums at accumulator bits)
    energy_pj: Mapping  # level -> operand -> energy; plus 'mac'
    total_energy_pj: float
    reuse: Mapping  # level -> operand -> MACs per access
    dram_bytes: int
    compulsory_dram_bytes: int
    roofline_cycles: int
    mapping: Mapping = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    fused_into: str | None = None  # the MAC layer whose output path ran this layer (its cycles are there)
    fused: tuple[str, ...] = ()  # layers this MAC layer ran in its output path
    onchip_inputs: tuple[str, ...] = ()  # producers of the input tensors read from the GLB, not DRAM
    output_onchip: bool = False  # the output tensor stayed in the GLB for its consumers
    lane_stall_cycles: int = 0  # the array waiting for its fused output path (part of stall_cycles)
    zero_savings: Mapping = field(default_factory=dict)  # array layers: what zeros saved vs the dense layer
    bits: Mapping = field(default_factory=dict)  # the layer's weight, activation and accumulator widths

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "op": self.op,
            "dataflow": self.dataflow,
            "unit": self.unit,
            "macs": self.macs,
            "effective_macs": self.effective_macs,
            "cycles": self.cycles,
            "compute_cycles": self.compute_cycles,
            "stall_cycles": self.stall_cycles,
            "dram_stall_cycles": self.dram_stall_cycles,
            "glb_stall_cycles": self.glb_stall_cycles,
            "lane_stall_cycles": self.lane_stall_cycles,
            "utilization": self.utilization,
            "spatial_utilization": self.spatial_utilization,
            "accesses": _plain(self.accesses),
            "bits_moved": _plain(self.bits_moved),
            "energy_pj": _plain(self.energy_pj),
            "total_energy_pj": self.total_energy_pj,
            "reuse": _plain(self.reuse),
            "dram_bytes": self.dram_bytes,
            "compulsory_dram_bytes": self.compulsory_dram_bytes,
            "roofline_cycles": self.roofline_cycles,
            "mapping": _plain(self.mapping),
            "notes": list(self.notes),
            "fused_into": self.fused_into,
            "fused": list(self.fused),
            "onchip_inputs": list(self.onchip_inputs),
            "output_onchip": self.output_onchip,
            "zero_savings": _plain(self.zero_savings),
            "bits": _plain(self.bits),
        }

    def renamed(self, name: str) -> "LayerResult":
        """The same result for an identical layer under another name."""
        from dataclasses import replace

        return replace(self, name=name)


@dataclass(frozen=True)
class SimResult:
    """A network on one accelerator under one dataflow."""

    arch: str
    dataflow: str
    objective: str
    energy_table: str  # which table produced energy_pj (name, unit, source)
    energy_unit: str
    layers: tuple[LayerResult, ...]
    macs: int
    cycles: int
    compute_cycles: int
    stall_cycles: int
    energy_pj: float
    dram_bytes: int
    compulsory_dram_bytes: int
    utilization: float
    roofline_cycles: int
    pes: int
    clock_mhz: float
    fuse: bool = False  # normalization and activations ran in their producers' output paths
    onchip_activations: bool = False  # intermediate tensors could stay in the GLB between layers
    unmapped: Unmapped | None = None  # ops of the model no layer covers (simulated without them, when allowed)

    @property
    def latency_ms(self) -> float:
        return self.cycles / (self.clock_mhz * 1e3)

    @property
    def totals(self) -> dict:
        return {
            "macs": self.macs,
            "cycles": self.cycles,
            "compute_cycles": self.compute_cycles,
            "stall_cycles": self.stall_cycles,
            "energy_pj": self.energy_pj,
            "dram_bytes": self.dram_bytes,
            "compulsory_dram_bytes": self.compulsory_dram_bytes,
            "utilization": self.utilization,
            "roofline_cycles": self.roofline_cycles,
            "latency_ms": self.latency_ms,
        }

    def to_dict(self) -> dict:
        return {
            "arch": self.arch,
            "dataflow": self.dataflow,
            "objective": self.objective,
            "energy_table": self.energy_table,
            "energy_unit": self.energy_unit,
            "options": {"fuse": self.fuse, "onchip_activations": self.onchip_activations},
            "layers": [layer.to_dict() for layer in self.layers],
            "totals": self.totals,
            **({"unmapped": self.unmapped.to_dict()} if self.unmapped is not None else {}),
        }

    @staticmethod
    def combine(arch: str, dataflow: str, objective: str, energy_table: str, energy_unit: str,
                layers: tuple[LayerResult, ...], pes: int, clock_mhz: float, fuse: bool = False,
                onchip_activations: bool = False) -> "SimResult":
        """Totals of layers run one after another (no overlap between layers)."""
        macs = sum(layer.macs for layer in layers)
        cycles = sum(layer.cycles for layer in layers)
        return SimResult(
            arch=arch, dataflow=dataflow, objective=objective, energy_table=energy_table, energy_unit=energy_unit,
            layers=layers, macs=macs, cycles=cycles,
            compute_cycles=sum(layer.compute_cycles for layer in layers),
            stall_cycles=sum(layer.stall_cycles for layer in layers),
            energy_pj=sum(layer.total_energy_pj for layer in layers),
            dram_bytes=sum(layer.dram_bytes for layer in layers),
            compulsory_dram_bytes=sum(layer.compulsory_dram_bytes for layer in layers),
            # cycle-weighted mean of the layers' utilization (which counts packed and multi-pass MACs)
            utilization=(sum(layer.utilization * layer.cycles for layer in layers) / cycles) if cycles else 0.0,
            roofline_cycles=sum(layer.roofline_cycles for layer in layers),
            pes=pes, clock_mhz=clock_mhz, fuse=fuse, onchip_activations=onchip_activations,
        )
