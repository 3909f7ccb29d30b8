"""The simulator: every layer of a workload mapped and timed on an accelerator under one dataflow.

Per MAC layer: the mapper proposes its best few mappings; each is simulated exactly (GLB blocks
from ``dataflow.blocking``, array timing from the dataflow model (the cycle contract for WS/OS), double-buffered (or,
on a split GLB, serialized) DRAM from ``sim.memory``, energy from ``sim.energy``) and the best by the objective is kept.
Identical layers are simulated once. Layers run one after another; normalization and activations run
in their producer's output path (``sim.fusion``) and intermediate tensors stay in the GLB when they fit
(``sim.residency``). docs/simulator.md has the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from codesign.arch import ArchSpec
from codesign.contract.memory import write_cycles
from codesign.workload import Layer, OpKind, Workload
from dataflow import registry
from dataflow.blocking import BlockSchedule, block_schedule, keep_on_chip
from dataflow.interface import DataflowModel, OnChip
from dataflow.mapper import candidate_mappings, check_objective
from dataflow.mapping import LEVELS, OPERANDS, Mapping, Problem, input_words, problem_of
from dataflow.vector_ops import moves_no_data, output_path_cycles, vector_cost, vector_lanes
from sim import energy as energy_model
from sim.fusion import FusionPlan, plan_fusion
from sim.memory import Timeline, block_timeline
from sim.residency import ResidencyPlan, plan_residency, tensor_sources
from sim.results import LayerResult, SimResult, frozen_table

__all__ = ["simulate", "dense_twin", "OutputPath", "LayerRun", "run_mapping", "best_run", "layer_result", "vector_result",
           "fused_result", "network_input_layers", "width_notes", "nonzero_weight_macs", "compulsory_bits", "LOW_UTILIZATION"]

LOW_UTILIZATION = 0.25


@dataclass(frozen=True)
class OutputPath:
    """Element operations of fused layers on the vector lanes the array's outputs drain through,
    and the parameter bits (batch-norm scale and shift) they read once, before the first block."""

    ops: int
    lanes: int
    param_bits: int = 0


@dataclass(frozen=True)
class LayerRun:
    """Everything the exact simulation of one mapping produced (for results and the reference check)."""

    problem: Problem
    mapping: Mapping
    schedule: BlockSchedule
    onchip: OnChip
    timeline: Timeline
    output_path: OutputPath | None = None
    input_onchip: bool = False
    output_onchip: bool = False


def run_mapping(problem: Problem, mapping: Mapping, arch: ArchSpec, *, input_onchip: bool = False,
                output_onchip: bool = False, output_path: OutputPath | None = None) -> LayerRun:
    """Simulate one layer under one mapping exactly; optionally with its input already in the GLB, its output
    left there, and fused layers in its output path (docs/simulator.md, "Fusion" and "Residency")."""
    full = block_schedule(problem, mapping.block, mapping.dram_order)
    sched = keep_on_chip(full, problem, input_onchip, output_onchip)
    if output_path is not None and output_path.param_bits:
        load_bits = sched.load_bits.copy()
        load_bits[0] += output_path.param_bits
        sched = replace(sched, load_bits=load_bits)
    chip = registry.get(mapping.dataflow).onchip(problem, arch, mapping, sched)
    lanes = None
    if output_path is not None:
        lanes = output_path_cycles(full.final_writes, output_path.ops, problem.groups * problem.m * problem.n,
                                   output_path.lanes)
    timeline = block_timeline(chip.compute, chip.glb_port_bits, sched, arch, lanes)
    return LayerRun(problem, mapping, sched, chip, timeline, output_path, input_onchip, output_onchip)


def nonzero_weight_macs(problem: Problem) -> int:
    """MACs on nonzero weights: the mapped (structurally pruned) dims' MACs times the remaining weight density.
    These are the MACs that switch a multiplier (zero weights are gated) and the ``effective_macs`` reported."""
    return round(problem.macs * problem.weight_density)


def compulsory_bits(problem: Problem, input_counts: bool = True, output_counts: bool = True) -> int:
    """Each tensor moved once: raw input, weights, final outputs. With activations kept on chip only network
    inputs and outputs count (``input_counts`` / ``output_counts``): other tensors need not touch DRAM."""
    g = problem.groups
    bits = problem.k * problem.n * problem.weight_bits
    if input_counts:
        bits += input_words(problem, problem.m * problem.k) * problem.activation_bits
    if output_counts:
        bits += problem.m * problem.n * problem.activation_bits
    return g * bits


def width_notes(problem: Problem, arch: ArchSpec) -> list[str]:
    """What a mismatch between the layer's bit-widths and the PE it runs on does: packed lanes or extra passes."""
    pe = arch.pe
    widths = f"{problem.weight_bits}x{problem.activation_bits}-bit"
    on = f"{pe.weight_bits}x{pe.activation_bits}-bit {pe.kind.value} PEs"
    if problem.passes > 1:
        return [f"width mismatch: {widths} operands on {on} take {problem.passes} passes per tile "
                f"({problem.passes}x the cycles of a PE as wide as the layer)"]
    if problem.pack > 1:
        what = "binarized layer" if problem.weight_bits == problem.activation_bits == 1 else f"{widths} layer"
        return [f"packed lanes: {what} on {on}: {problem.pack} weights share one multiplier lane"]
    if (problem.weight_bits, problem.activation_bits) != (pe.weight_bits, pe.activation_bits):
        return [f"width mismatch: {widths} operands on {on} (narrower values in wider lanes, no speed-up)"]
    return []


def layer_result(layer: Layer, run: LayerRun, arch: ArchSpec, *, input_counts: bool = True,
                 output_counts: bool = True) -> LayerResult:
    """The result of ``layer`` from its exact ``run``: cycles and stalls, accesses, energy, reuse, roofline.
    ``input_counts`` / ``output_counts``: whether its input and output count as compulsory DRAM traffic."""
    problem, sched, chip, timeline = run.problem, run.schedule, run.onchip, run.timeline
    model = registry.get(run.mapping.dataflow)
    dram_words = {op: sum(sched.dram_words[op]) for op in OPERANDS}
    dram_bits = {op: sum(sched.dram_bits[op]) for op in OPERANDS}
    accesses = {"dram": dram_words, **{level: dict(chip.words[level]) for level in LEVELS if level != "dram"}}
    bits = {"dram": dram_bits, **{level: dict(chip.bits[level]) for level in LEVELS if level != "dram"}}
    energy = energy_model.level_energy(arch, bits)
    eff = nonzero_weight_macs(problem)
    energy["mac"] = energy_model.mac_energy(arch, problem.switched_macs, problem.weight_bits, problem.activation_bits)
    mapped = problem.macs  # the MACs the array runs: the structurally pruned dims'
    reuse = {level: {op: (mapped / count if count else 0.0) for op, count in ops.items()}
             for level, ops in accesses.items()}
    compulsory = compulsory_bits(problem, input_counts, output_counts)
    path = run.output_path
    path_ops, path_bits = (path.ops, path.param_bits) if path else (0, 0)
    # The roofline of a producer covers its fused layers: their operations on the lanes, their parameters.
    slots = model.mac_slots(problem, arch)
    roofline = max(math.ceil(slots / arch.pes),
                   -(-path_ops // vector_lanes(arch)), int(write_cycles(compulsory + path_bits, arch)))
    cycles = timeline.cycles
    spatial = model.spatial_utilization(problem, arch, run.mapping)
    notes = []
    if spatial < LOW_UTILIZATION:
        notes.append(f"low spatial utilization: a full tile occupies {spatial:.1%} of the PEs "
                     f"({layer.op.value}: the layer's dimensions do not fill the array)")
    notes.extend(width_notes(problem, arch))
    notes.extend(problem.notes)  # why a layer with zeros runs dense on an N:M array (dataflow.mapping)
    return LayerResult(
        name=layer.name, op=layer.op.value, dataflow=run.mapping.dataflow, unit="array",
        macs=layer.macs, effective_macs=eff, cycles=cycles, compute_cycles=timeline.compute_cycles,
        stall_cycles=timeline.stall_cycles, dram_stall_cycles=timeline.dram_stall_cycles,
        glb_stall_cycles=timeline.glb_stall_cycles, lane_stall_cycles=timeline.lane_stall_cycles,
        utilization=(slots / (arch.pes * cycles)) if cycles else 0.0,
        spatial_utilization=spatial,
        accesses=frozen_table(accesses), bits_moved=frozen_table(bits), energy_pj=frozen_table(energy),
        total_energy_pj=energy_model.total(energy), reuse=frozen_table(reuse),
        dram_bytes=math.ceil(sum(dram_bits.values()) / 8), compulsory_dram_bytes=math.ceil(compulsory / 8),
        roofline_cycles=roofline, mapping=frozen_table(run.mapping.to_dict()), notes=tuple(notes),
        output_onchip=run.output_onchip,
    )


def _objective_value(result: LayerResult, objective: str) -> tuple[float, float]:
    if objective == "latency":
        return (result.cycles, result.total_energy_pj)
    if objective == "energy":
        return (result.total_energy_pj, result.cycles)
    return (result.cycles * result.total_energy_pj, result.cycles)


def best_run(layer: Layer, arch: ArchSpec, dataflow: object, objective: str = "latency", *,
             network_input: bool = False) -> tuple[LayerRun, LayerResult]:
    """Search the layer's mappings; the exact run and result of the best (the layer alone, DRAM in and out).
    ``network_input``: the layer streams the network's own input (``problem_of``)."""
    problem = problem_of(layer, arch, network_input)
    best = None
    for mapping in candidate_mappings(problem, arch, dataflow, objective):
        run = run_mapping(problem, mapping, arch)
        result = layer_result(layer, run, arch)
        if best is None or _objective_value(result, objective) < _objective_value(best[1], objective):
            best = (run, result)
    return best


def vector_result(layer: Layer, arch: ArchSpec, dataflow: str, *, onchip_input_bytes: int = 0,
                  output_onchip: bool = False, compulsory_bytes: int | None = None) -> LayerResult:
    """A non-MAC layer on the vector unit; ``onchip_input_bytes`` of its inputs come from the GLB and, with
    ``output_onchip``, its output stays there. ``compulsory_bytes`` defaults to everything it reads and writes."""
    cost = vector_cost(layer, arch, onchip_input_bytes, output_onchip)
    ab = layer.bits.activation
    moves = not moves_no_data(layer)
    kept_in = min(onchip_input_bytes, int(layer.input_bytes)) if moves else 0
    kept_out = int(layer.output_bytes) if output_onchip and moves else 0
    compulsory = cost.read_bytes + cost.write_bytes if compulsory_bytes is None or not moves else compulsory_bytes
    roofline = cost.roofline_cycles
    if compulsory_bytes is not None and moves:
        roofline = max(cost.compute_cycles, int(write_cycles(compulsory * 8, arch)))
    read_words = math.ceil(cost.read_bytes * 8 / ab)
    write_words = math.ceil(cost.write_bytes * 8 / ab)
    # A tensor already in the GLB is read there once; one from DRAM is written into the GLB first (and an
    # output drained to DRAM is read back out of it).
    kept_in_words, kept_out_words = math.ceil(kept_in * 8 / ab), math.ceil(kept_out * 8 / ab)
    accesses = {"dram": {"weight": 0, "input": read_words, "output": write_words},
                "glb": {"weight": 0, "input": 2 * read_words + kept_in_words, "output": 2 * write_words + kept_out_words},
                "noc": {op: 0 for op in OPERANDS}, "rf": {op: 0 for op in OPERANDS}}
    bits = {"dram": {"weight": 0, "input": cost.read_bytes * 8, "output": cost.write_bytes * 8},
            "glb": {"weight": 0, "input": (2 * cost.read_bytes + kept_in) * 8,
                    "output": (2 * cost.write_bytes + kept_out) * 8},
            "noc": {op: 0 for op in OPERANDS}, "rf": {op: 0 for op in OPERANDS}}
    energy = energy_model.level_energy(arch, bits)
    energy["mac"] = cost.ops * arch.energy.mac_pj(ab, ab)
    reuse = {level: {op: 0.0 for op in OPERANDS} for level in LEVELS}
    return LayerResult(
        name=layer.name, op=layer.op.value, dataflow=dataflow, unit="vector", macs=0, effective_macs=0,
        cycles=cost.cycles, compute_cycles=cost.compute_cycles, stall_cycles=cost.cycles - cost.compute_cycles,
        dram_stall_cycles=cost.cycles - cost.compute_cycles, glb_stall_cycles=0,
        utilization=0.0, spatial_utilization=0.0,
        accesses=frozen_table(accesses), bits_moved=frozen_table(bits), energy_pj=frozen_table(energy),
        total_energy_pj=energy_model.total(energy), reuse=frozen_table(reuse),
        dram_bytes=cost.read_bytes + cost.write_bytes, compulsory_dram_bytes=compulsory,
        roofline_cycles=roofline, mapping=frozen_table({"unit": "vector", "lanes": cost.lanes}),
        output_onchip=bool(kept_out),
    )


def fused_result(layer: Layer, producer: str, arch: ArchSpec, dataflow: str) -> LayerResult:
    """A layer run in ``producer``'s output path: no cycles of its own (they are the producer's), no traffic for
    its input or output; its parameters read once (DRAM, into the GLB, out to the lanes) and its element
    operations' energy still counted."""
    ab = layer.bits.activation
    param_bytes = int(layer.weight_bytes)
    words = math.ceil(param_bytes * 8 / ab)
    zero = {op: 0 for op in OPERANDS}
    accesses = {"dram": {**zero, "weight": words}, "glb": {**zero, "weight": 2 * words}, "noc": zero, "rf": zero}
    bits = {"dram": {**zero, "weight": param_bytes * 8}, "glb": {**zero, "weight": 2 * param_bytes * 8},
            "noc": zero, "rf": zero}
    energy = energy_model.level_energy(arch, bits)
    energy["mac"] = int(layer.elementwise_ops) * arch.energy.mac_pj(ab, ab)
    reuse = {level: {op: 0.0 for op in OPERANDS} for level in LEVELS}
    return LayerResult(
        name=layer.name, op=layer.op.value, dataflow=dataflow, unit="vector", macs=0, effective_macs=0,
        cycles=0, compute_cycles=0, stall_cycles=0, dram_stall_cycles=0, glb_stall_cycles=0,
        utilization=0.0, spatial_utilization=0.0,
        accesses=frozen_table(accesses), bits_moved=frozen_table(bits), energy_pj=frozen_table(energy),
        total_energy_pj=energy_model.total(energy), reuse=frozen_table(reuse),
        dram_bytes=param_bytes, compulsory_dram_bytes=param_bytes, roofline_cycles=0,
        mapping=frozen_table({"unit": "vector", "lanes": vector_lanes(arch), "fused_into": producer}),
        fused_into=producer,
    )


def _maps_on_array(layer: Layer) -> bool:
    return layer.op.has_macs and (layer.effective_dims or layer.dims) is not None


def _vector_working_bits(layer: Layer, arch: ArchSpec) -> int:
    """GLB bits a vector layer streams through: one lane-wide row per input and output, double-buffered."""
    if moves_no_data(layer):
        return 0
    return 2 * vector_lanes(arch) * layer.bits.activation * (len(layer.input_shapes) + 1)


def _chain_path(chain: tuple[Layer, ...], arch: ArchSpec) -> OutputPath:
    return OutputPath(ops=sum(int(item.elementwise_ops) for item in chain), lanes=vector_lanes(arch),
                      param_bits=sum(int(item.weight_bytes) * 8 for item in chain))


class _Runs:
    """Every exact run the simulation makes, cached under one key: the layer's ``Problem.signature()`` (what
    identical layers share), the mapping, and the options between layers (input or output in the GLB, the
    fused output path). A run is simulated once however many layers, phases or decisions ask for it."""

    def __init__(self, arch: ArchSpec, model: DataflowModel, objective: str,
                 network_inputs: frozenset[str] = frozenset()):
        self.arch, self.model, self.objective = arch, model, objective
        self.network_inputs = network_inputs  # layers that stream the network's own input
        self._best: dict[tuple, Mapping] = {}
        self._runs: dict[tuple, LayerRun] = {}
        # Where each kind of layer runs: the main array under ``model``; binarized layers on the binary array,
        # when the accelerator has one, under its own dataflow model (docs/simulator.md, "Binary array").
        self._placed: dict[str, tuple[DataflowModel, ArchSpec]] = {model.name: (model, arch)}
        binary = arch.binary_array
        if binary is not None:
            self._placed[binary.dataflow] = (registry.get(binary.dataflow), binary.view(arch))

    def place(self, layer: Layer) -> tuple[DataflowModel, ArchSpec]:
        """The dataflow model and the array (as an ``ArchSpec``) ``layer`` runs on."""
        binary = self.arch.binary_array
        if binary is not None and layer.bits.binarized:
            return self._placed[binary.dataflow]
        return self.model, self.arch

    def arch_for(self, mapping: Mapping) -> ArchSpec:
        """The array a mapping was made for."""
        return self._placed[mapping.dataflow][1]

    def problem(self, layer: Layer, arch: ArchSpec) -> Problem:
        """``problem_of`` the layer on ``arch``, knowing whether it streams the network's input."""
        return problem_of(layer, arch, layer.name in self.network_inputs)

    def best(self, layer: Layer) -> LayerRun:
        """The layer alone under its best mapping (searched once per signature and array)."""
        model, arch = self.place(layer)
        problem = self.problem(layer, arch)
        key = (model.name, problem.signature())
        if key not in self._best:
            run, _ = best_run(layer, arch, model.name, self.objective, network_input=layer.name in self.network_inputs)
            self._best[key] = run.mapping
            self._runs[(problem.signature(), run.mapping, False, False, None)] = run
        return self.run(problem, self._best[key])

    def run(self, problem: Problem, mapping: Mapping, *, input_onchip: bool = False, output_onchip: bool = False,
            output_path: OutputPath | None = None) -> LayerRun:
        key = (problem.signature(), mapping, input_onchip, output_onchip, output_path)
        if key not in self._runs:
            self._runs[key] = run_mapping(problem, mapping, self.arch_for(mapping), input_onchip=input_onchip,
                                          output_onchip=output_onchip, output_path=output_path)
        return self._runs[key]


def dense_twin(workload: Workload) -> Workload:
    """The workload with every weight kept: no zeros, no removed filters or channels (``workload`` itself when
    nothing is pruned). Its schedule is the one a pruned model runs: docs/simulator.md, "Pruning"."""
    layers = tuple(layer if _is_dense(layer) else replace(layer, weight_density=1.0, effective_dims=None,
                                                            effective_macs=None, **_dense_activations(layer))
                   for layer in workload.layers)
    if all(a is b for a, b in zip(layers, workload.layers)):
        return workload
    return replace(workload, layers=layers)


ACTIVATION_DENSITIES = ("input_density", "output_density")


def _dense_activations(layer: Layer) -> dict:
    return {name: 1.0 for name in ACTIVATION_DENSITIES if hasattr(layer, name)}


def _is_dense(layer: Layer) -> bool:
    return (layer.weight_density == 1.0 and layer.effective_dims is None and layer.effective_macs is None
            and all(getattr(layer, name, 1.0) == 1.0 for name in ACTIVATION_DENSITIES))


def _pruned_runs(workload: Workload, dense_runs: dict[str, LayerRun], cache: _Runs) -> dict[str, LayerRun]:
    """Each pruned array layer alone under its dense original's mapping, adapted to its smaller dims."""
    runs = dict(dense_runs)
    for layer in workload.layers:
        if layer.name in runs and not _is_dense(layer):
            model, arch = cache.place(layer)
            problem = cache.problem(layer, arch)
            mapping = model.adapt(runs[layer.name].mapping, problem, arch)
            runs[layer.name] = cache.run(problem, mapping)
    return runs


def _search_phase(workload: Workload, cache: _Runs, progress: bool) -> dict[str, LayerRun]:
    """Phase 1: every array layer's best mapping, run alone (DRAM in and out)."""
    runs: dict[str, LayerRun] = {}
    layers = workload.layers
    bar = _progress(progress, f"simulating {workload.model} ({cache.model.name})", len(layers))
    try:
        for layer in layers:
            if _maps_on_array(layer):
                runs[layer.name] = cache.best(layer)
            if bar:
                bar[0].advance(bar[1])
    finally:
        if bar:
            bar[0].stop()
    return runs


def _fusion_phase(workload: Workload, runs: dict[str, LayerRun], cache: _Runs) -> dict[str, tuple[str, ...]]:
    """Phase 2: the fusion chains that pay: the longest prefix of each planned chain whose producer, with the
    prefix in its output path, takes no more cycles than the producer and the prefix run one after another (a
    scheduler fuses when it does not slow the network down; on every realistic layer the whole chain fuses)."""
    arch = cache.arch
    layers = {layer.name: layer for layer in workload.layers}
    plan = plan_fusion(workload)
    chosen = {}
    for producer, chain in plan.chains.items():
        if producer not in runs:
            continue
        run = runs[producer]
        for length in range(len(chain), 0, -1):
            members = tuple(layers[name] for name in chain[:length])
            path = _chain_path(members, arch)
            separate = run.timeline.cycles + sum(vector_result(item, arch, cache.model.name).cycles for item in members)
            if cache.run(run.problem, run.mapping, output_path=path).timeline.cycles <= separate:
                chosen[producer] = chain[:length]
                break
    return chosen


def _residency_phase(workload: Workload, runs: dict[str, LayerRun], fused_into: dict[str, str],
                     arch: ArchSpec) -> ResidencyPlan:
    """Phase 3: which intermediate tensors stay in the GLB beside each step's working set."""
    by_name = {layer.name: layer for layer in workload.layers}
    sources = tensor_sources(workload, fused_into, moves_no_data)
    working = {name: (runs[name].mapping.glb_footprint_bits if name in runs
                      else _vector_working_bits(by_name[name], arch)) for name in sources}

    def reads_from_glb(layer: Layer) -> bool:
        # An array layer takes one activation operand from the GLB; a matmul's are both activations.
        if layer.name not in runs:
            return True
        return layer.op is not OpKind.MATMUL and len(sources[layer.name]) == 1

    return plan_residency(workload, fused_into, sources, working, arch.glb.size_bytes * 8, reads_from_glb)


def _result_phase(workload: Workload, runs: dict[str, LayerRun], chains: dict[str, tuple[str, ...]],
                  residency: ResidencyPlan | None, cache: _Runs, dense: Workload,
                  dense_runs: dict[str, LayerRun]) -> tuple[LayerResult, ...]:
    """Phase 4: every layer's result under the fusion and residency decided (``residency`` None: off), with
    what its zeros saved against its dense original (``dense``, ``dense_runs``) under the same schedule."""
    arch, flow = cache.arch, cache.model.name
    by_name = {layer.name: layer for layer in workload.layers}
    dense_layers = {layer.name: layer for layer in dense.layers}
    fused_into = FusionPlan(chains).fused_into
    plan = residency or ResidencyPlan()
    results = []
    for layer in workload.layers:
        if layer.name in fused_into:
            results.append(fused_result(layer, fused_into[layer.name], arch, flow))
            continue
        inputs_kept = plan.onchip_inputs(layer.name)
        output_kept = plan.output_onchip(layer.name)
        tensor = plan.tensors.get(layer.name)
        network_output = tensor is None or not tensor.consumers
        if layer.name in runs:
            chain = chains.get(layer.name, ())
            path = _chain_path(tuple(by_name[n] for n in chain), arch) if chain else None
            alone = runs[layer.name]
            run = cache.run(_written_problem(layer, chain, by_name, alone, cache), alone.mapping,
                            input_onchip=bool(inputs_kept), output_onchip=output_kept, output_path=path)
            counts = {}
            if residency is not None:
                counts = dict(input_counts=not plan.sources.get(layer.name), output_counts=network_output)
            result = layer_result(layer, run, cache.arch_for(run.mapping), **counts)
            original = dense_runs[layer.name]
            saved = dict(NO_SAVINGS)
            if original.problem.signature() != alone.problem.signature():
                options = dict(input_onchip=bool(inputs_kept), output_onchip=output_kept, output_path=path)
                baseline = layer_result(dense_layers[layer.name], cache.run(original.problem, original.mapping,
                                                                            **options),
                                        cache.arch_for(original.mapping), **counts)
                saved = _savings(baseline, result)
            results.append(replace(result, fused=chain, onchip_inputs=inputs_kept, zero_savings=frozen_table(saved)))
            continue
        compulsory = None
        if residency is not None:
            compulsory = (_network_input_bytes(layer, plan.sources.get(layer.name, ()), plan.tensors)
                          + int(layer.weight_bytes) + (int(layer.output_bytes) if network_output else 0))
        result = vector_result(layer, arch, flow, onchip_input_bytes=plan.onchip_input_bits(layer.name) // 8,
                               output_onchip=output_kept, compulsory_bytes=compulsory)
        results.append(replace(result, onchip_inputs=inputs_kept))
    return tuple(replace(result, bits=frozen_table(_bits_of(by_name[result.name]))) for result in results)


def _written_problem(layer: Layer, chain: tuple[str, ...], by_name: dict[str, Layer], alone: LayerRun,
                     cache: _Runs) -> Problem:
    """The problem a MAC layer runs as with ``chain`` in its output path: what it writes is the chain's last
    output, so a compressed output is stored at that tensor's measured density (a fused ReLU's zeros), not the
    pre-activation one's (docs/simulator.md, "Fusion"). ``alone.problem`` when nothing fused changes it."""
    if not chain or not alone.problem.stored:
        return alone.problem
    tail = by_name[chain[-1]]
    density = float(getattr(tail, "output_density", 1.0))
    if density == float(getattr(layer, "output_density", 1.0)):
        return alone.problem
    return cache.problem(replace(layer, output_density=density), cache.arch_for(alone.mapping))


def _bits_of(layer) -> dict:
    """The widths a layer ran at (its capture's, after --bits / --layer-bits / the arch's defaults)."""
    return {"weight": layer.bits.weight, "activation": layer.bits.activation, "accumulator": layer.bits.accumulator}


NO_SAVINGS = {"skipped_cycles": 0, "gated_energy_pj": 0.0, "compressed_dram_bytes": 0, "energy_pj": 0.0}


def _savings(dense: LayerResult, sparse: LayerResult) -> dict:
    """What a layer's zeros saved against its dense original under the same mapping: cycles (skipped weights and
    removed filters or channels), MAC energy (gated or removed MACs), DRAM bytes (compressed or removed data)
    and energy in all."""
    return {"skipped_cycles": dense.cycles - sparse.cycles,
            "gated_energy_pj": dense.energy_pj["mac"] - sparse.energy_pj["mac"],
            "compressed_dram_bytes": dense.dram_bytes - sparse.dram_bytes,
            "energy_pj": dense.total_energy_pj - sparse.total_energy_pj}


def network_input_layers(workload: Workload, arch: ArchSpec) -> frozenset[str]:
    """The MAC layers that stream the network's own input (they read no layer's output), when the spec stores
    that input dense (``sparsity.activations.compress_network_input: false``); else none need telling apart."""
    if arch.sparsity.activations.compress_network_input:
        return frozenset()
    sources = tensor_sources(workload, {}, moves_no_data)
    return frozenset(layer.name for layer in workload.layers
                     if layer.op.has_macs and layer.name in sources and not sources[layer.name])


def _network_input_bytes(layer: Layer, sources: tuple[str, ...], tensors: dict) -> int:
    """Bytes a layer reads that no layer produced (network inputs): its inputs less its source tensors."""
    return max(0, int(layer.input_bytes) - sum(tensors[p].bits // 8 for p in sources if p in tensors))


def simulate(workload: Workload, arch: ArchSpec, dataflow: object, *, objective: str = "latency",
             progress: bool = False, fuse: bool = True, onchip_activations: bool = True) -> SimResult:
    """Map and simulate every layer of ``workload`` on ``arch`` under one dataflow.

    Parameters:
        workload: a captured network (``codesign.from_torch``).
        arch: the accelerator (``codesign.load_arch``).
        dataflow: a registered dataflow name ('ws', 'os', 'rs', or one added with ``dataflow.register``)
            or a ``Dataflow`` member; the accelerator must list it.
        objective: what the mapper minimizes per layer: 'latency', 'energy' or 'edp'.
        progress: show a progress bar on the terminal.
        fuse: batch norms and activations run in their producer's output path.
        onchip_activations: intermediate tensors stay in the GLB between layers when they fit. With both
            off every layer reads its inputs from DRAM and writes its output back (docs/simulator.md).

    Returns a ``SimResult``: per-layer results in the workload's order and the network's totals; with
    ``unmapped`` set when the workload has ops no layer covers (they are not simulated: callers refuse such a
    model unless asked, ``codesign.unmapped``).

    Raises ``MappingError`` for an unknown dataflow or objective, a dataflow the accelerator does not
    support, or a layer no mapping fits.
    """
    registry.get(dataflow)  # an unknown dataflow is reported before anything else
    check_objective(objective)
    model = registry.for_arch(arch, dataflow)
    cache = _Runs(arch, model, objective, network_input_layers(workload, arch))
    # The schedule (mappings, fusion, residency) is the dense model's; pruned layers run it on their zeros.
    dense = dense_twin(workload)
    dense_runs = _search_phase(dense, cache, progress)
    chains = _fusion_phase(dense, dense_runs, cache) if fuse else {}
    residency = _residency_phase(dense, dense_runs, FusionPlan(chains).fused_into, arch) if onchip_activations else None
    runs = dense_runs if dense is workload else _pruned_runs(workload, dense_runs, cache)
    results = _result_phase(workload, runs, chains, residency, cache, dense, dense_runs)
    result = SimResult.combine(
        arch=arch.name, dataflow=model.name, objective=objective,
        energy_table=energy_model.table_name(arch), energy_unit=energy_model.table_unit(arch),
        layers=results, pes=arch.pes, clock_mhz=arch.clock_mhz, fuse=fuse,
        onchip_activations=onchip_activations,
    )
    # ops no layer covers are not simulated: the result says which, and what share of the model they hold
    return replace(result, unmapped=workload.unmapped()) if workload.unsupported else result


def _progress(enabled: bool, description: str, total: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   transient=True)
    task = bar.add_task(description, total=total)
    bar.start()
    return bar, task
