"""The simulator: every layer of a workload mapped and timed on an accelerator under one dataflow.

Per MAC layer: the mapper proposes its best few mappings; each is simulated exactly (GLB blocks
from ``dataflow.blocking``, array timing from ``sim.gemm_timing`` / the RS model, double-buffered
DRAM from ``sim.memory``, energy from ``sim.energy``) and the best by the objective is kept.
Identical layers are simulated once. Layers run one after another. docs/simulator.md has the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from codesign.arch import ArchSpec, Dataflow
from codesign.errors import MappingError
from codesign.workload import Layer, Workload
from dataflow import row_stationary, systolic
from dataflow.blocking import BlockSchedule, block_schedule
from dataflow.mapper import RULES, candidate_mappings, check_objective
from dataflow.mapping import LEVELS, OPERANDS, Mapping, Problem, input_words, parse_dataflow, problem_of
from dataflow.vector_ops import vector_cost
from sim import energy as energy_model
from sim.memory import Timeline, double_buffered, write_cycles
from sim.results import LayerResult, SimResult, frozen_table

LOW_UTILIZATION = 0.25


@dataclass(frozen=True)
class LayerRun:
    """Everything the exact simulation of one mapping produced (for results and the reference check)."""

    problem: Problem
    mapping: Mapping
    schedule: BlockSchedule
    onchip: systolic.OnChip
    timeline: Timeline


def run_mapping(problem: Problem, mapping: Mapping, arch: ArchSpec) -> LayerRun:
    """Simulate one layer under one mapping exactly."""
    sched = block_schedule(problem, mapping.block, mapping.dram_order)
    if mapping.dataflow is Dataflow.ROW_STATIONARY:
        chip = row_stationary.onchip(problem, arch, mapping, sched)
    else:
        chip = systolic.onchip(RULES[mapping.dataflow], problem, arch, mapping, sched)
    timeline = double_buffered(chip.compute, chip.glb_bits, sched.load_bits, sched.write_bits, arch)
    return LayerRun(problem, mapping, sched, chip, timeline)


def effective_macs(problem: Problem) -> int:
    return round(problem.macs * problem.weight_density)


def mac_slots(problem: Problem, dataflow: Dataflow) -> float:
    """PE-cycles the MACs need at best: packed lanes share a cycle, wide operands take several,
    and zero weights are skipped where the dataflow can (RS)."""
    macs = problem.macs
    if dataflow is Dataflow.ROW_STATIONARY and row_stationary.ZERO_SKIPPING:
        macs = macs * problem.weight_density
    return macs * problem.passes / problem.pack


def compulsory_bits(problem: Problem) -> int:
    """Each tensor moved once: raw input, weights, final outputs."""
    g = problem.groups
    return g * (input_words(problem, problem.m * problem.k) * problem.activation_bits
                + problem.k * problem.n * problem.weight_bits + problem.m * problem.n * problem.activation_bits)


def spatial_utilization(run: LayerRun, arch: ArchSpec) -> float:
    problem, mapping = run.problem, run.mapping
    if mapping.dataflow is Dataflow.ROW_STATIONARY:
        r, e, _, _, sets = row_stationary.set_shape(problem, arch)
        return sets * r * e / arch.pes
    tm, tk, tn = mapping.array_tile
    spatial = tk if mapping.dataflow is Dataflow.WEIGHT_STATIONARY else tm
    return spatial * -(-tn // problem.pack) / arch.pes


def layer_result(layer: Layer, run: LayerRun, arch: ArchSpec) -> LayerResult:
    problem, sched, chip, timeline = run.problem, run.schedule, run.onchip, run.timeline
    dram_words = {op: sum(sched.dram_words[op]) for op in OPERANDS}
    dram_bits = {op: sum(sched.dram_bits[op]) for op in OPERANDS}
    accesses = {"dram": dram_words, **{level: dict(chip.words[level]) for level in LEVELS if level != "dram"}}
    bits = {"dram": dram_bits, **{level: dict(chip.bits[level]) for level in LEVELS if level != "dram"}}
    energy = energy_model.level_energy(arch, bits)
    eff = effective_macs(problem)
    energy["mac"] = energy_model.mac_energy(arch, eff, problem.weight_bits, problem.activation_bits)
    macs = problem.macs
    reuse = {level: {op: (macs / count if count else 0.0) for op, count in ops.items()} for level, ops in accesses.items()}
    compulsory = compulsory_bits(problem)
    roofline = max(math.ceil(mac_slots(problem, run.mapping.dataflow) / arch.pes),
                   int(write_cycles(compulsory, arch)))
    cycles = timeline.cycles
    spatial = spatial_utilization(run, arch)
    notes = []
    if spatial < LOW_UTILIZATION:
        notes.append(f"low spatial utilization: a full tile occupies {spatial:.1%} of the PEs "
                     f"({layer.op.value}: the layer's dimensions do not fill the array)")
    return LayerResult(
        name=layer.name, op=layer.op.value, dataflow=run.mapping.dataflow.value, unit="array",
        macs=macs, effective_macs=eff, cycles=cycles, compute_cycles=timeline.compute_cycles,
        stall_cycles=timeline.stall_cycles, dram_stall_cycles=timeline.dram_stall_cycles,
        glb_stall_cycles=timeline.glb_stall_cycles,
        utilization=(mac_slots(problem, run.mapping.dataflow) / (arch.pes * cycles)) if cycles else 0.0,
        spatial_utilization=spatial,
        accesses=frozen_table(accesses), bits_moved=frozen_table(bits), energy_pj=frozen_table(energy),
        total_energy_pj=energy_model.total(energy), reuse=frozen_table(reuse),
        dram_bytes=math.ceil(sum(dram_bits.values()) / 8), compulsory_dram_bytes=math.ceil(compulsory / 8),
        roofline_cycles=roofline, mapping=frozen_table(run.mapping.to_dict()), notes=tuple(notes),
    )


def _objective_value(result: LayerResult, objective: str) -> tuple[float, float]:
    if objective == "latency":
        return (result.cycles, result.total_energy_pj)
    if objective == "energy":
        return (result.total_energy_pj, result.cycles)
    return (result.cycles * result.total_energy_pj, result.cycles)


def map_layer(layer: Layer, arch: ArchSpec, dataflow: Dataflow, objective: str = "latency") -> LayerResult:
    """Search the layer's mappings and return the exact result of the best."""
    problem = problem_of(layer, arch)
    best = None
    for mapping in candidate_mappings(problem, arch, dataflow, objective):
        result = layer_result(layer, run_mapping(problem, mapping, arch), arch)
        if best is None or _objective_value(result, objective) < _objective_value(best, objective):
            best = result
    return best


def vector_result(layer: Layer, arch: ArchSpec, dataflow: Dataflow) -> LayerResult:
    cost = vector_cost(layer, arch)
    ab = layer.bits.activation
    read_words = math.ceil(cost.read_bytes * 8 / ab)
    write_words = math.ceil(cost.write_bytes * 8 / ab)
    accesses = {"dram": {"weight": 0, "input": read_words, "output": write_words},
                "glb": {"weight": 0, "input": 2 * read_words, "output": 2 * write_words},
                "noc": {op: 0 for op in OPERANDS}, "rf": {op: 0 for op in OPERANDS}}
    bits = {"dram": {"weight": 0, "input": cost.read_bytes * 8, "output": cost.write_bytes * 8},
            "glb": {"weight": 0, "input": 2 * cost.read_bytes * 8, "output": 2 * cost.write_bytes * 8},
            "noc": {op: 0 for op in OPERANDS}, "rf": {op: 0 for op in OPERANDS}}
    energy = energy_model.level_energy(arch, bits)
    energy["mac"] = cost.ops * arch.energy.mac_pj(ab, ab)
    reuse = {level: {op: 0.0 for op in OPERANDS} for level in LEVELS}
    return LayerResult(
        name=layer.name, op=layer.op.value, dataflow=dataflow.value, unit="vector", macs=0, effective_macs=0,
        cycles=cost.cycles, compute_cycles=cost.compute_cycles, stall_cycles=cost.cycles - cost.compute_cycles,
        dram_stall_cycles=cost.cycles - cost.compute_cycles, glb_stall_cycles=0,
        utilization=0.0, spatial_utilization=0.0,
        accesses=frozen_table(accesses), bits_moved=frozen_table(bits), energy_pj=frozen_table(energy),
        total_energy_pj=energy_model.total(energy), reuse=frozen_table(reuse),
        dram_bytes=cost.read_bytes + cost.write_bytes, compulsory_dram_bytes=cost.read_bytes + cost.write_bytes,
        roofline_cycles=cost.roofline_cycles, mapping=frozen_table({"unit": "vector", "lanes": cost.lanes}),
    )


def _maps_on_array(layer: Layer) -> bool:
    return layer.op.has_macs and (layer.effective_dims or layer.dims) is not None


def simulate(workload: Workload, arch: ArchSpec, dataflow: str | Dataflow, *, objective: str = "latency",
             progress: bool = False) -> SimResult:
    """Map and simulate every layer of ``workload`` on ``arch`` under ``dataflow`` ('ws', 'os' or 'rs')."""
    flow = parse_dataflow(dataflow)
    check_objective(objective)
    if not arch.supports(flow):
        supported = ", ".join(d.value for d in arch.dataflows)
        raise MappingError(f"accelerator {arch.name} does not support dataflow {flow.value} (it supports {supported})")
    memo: dict[tuple, LayerResult] = {}
    results = []
    layers = workload.layers
    bar = _progress(progress, f"simulating {workload.model} ({flow.value})", len(layers))
    try:
        for layer in layers:
            if _maps_on_array(layer):
                key = problem_of(layer, arch).signature() + (layer.op,)
                if key not in memo:
                    memo[key] = map_layer(layer, arch, flow, objective)
                results.append(memo[key].renamed(layer.name))
            else:
                results.append(vector_result(layer, arch, flow))
            if bar:
                bar[0].advance(bar[1])
    finally:
        if bar:
            bar[0].stop()
    return SimResult.combine(
        arch=arch.name, dataflow=flow.value, objective=objective,
        energy_table=energy_model.table_name(arch), energy_unit=energy_model.table_unit(arch),
        layers=tuple(results), pes=arch.pes, clock_mhz=arch.clock_mhz,
    )


def _progress(enabled: bool, description: str, total: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   transient=True)
    task = bar.add_task(description, total=total)
    bar.start()
    return bar, task
