"""N:M structured sparsity: capture reads the pattern from the weights; a systolic array built for N:M runs the
reduction N/M as long, stores the weights as values plus indices, and only for layers whose pattern it supports."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from codesign.arch import Dataflow
from codesign.capture import from_torch
from codesign.capture.pruning import nm_pattern
from codesign.contract import gemm_timing
from codesign.errors import MappingError
from codesign.prune import apply
from codesign.sparsity import STANDARD_PATTERNS, SparsitySpec, StructuredSkip, implies
from dataflow import registry
from dataflow.blocking import block_schedule
from dataflow.mapper import candidate_mappings
from dataflow.mapping import Mapping, glb_bits_needed, problem_of
from sim.engine import run_mapping, simulate
from sim.reference import simulate_reference
from test_sim_factories import conv_layer, gemm_layer, make_arch, workload


def _nm_arch(n=2, m=4, rows=8, cols=4, **kwargs):
    """A systolic (WS, OS) test array whose PEs skip n:m groups."""
    weights = replace(SparsitySpec().weights, structured=StructuredSkip(n, m))
    return make_arch(rows=rows, cols=cols, rs=False, sparsity=SparsitySpec(weights=weights), **kwargs)


def _nm_gemm(m, k, n, pattern=(2, 4), density=0.5, **kwargs):
    """A linear layer whose weights follow ``pattern`` at ``density``."""
    layer = gemm_layer(m=m, k=k, n=n, **kwargs)
    return replace(layer, weight_density=density, effective_macs=max(1, round(layer.macs * density)), nm_pattern=pattern)


def _captured(module: nn.Module, shape: tuple[int, ...]):
    return from_torch(module.eval(), (torch.randn(shape),)).layers[0]


# --------------------------------------------------------------------------------------------- capture


def test_a_2_4_pruned_conv_is_captured_as_2_4():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 8, 3)
    apply(conv, "nm:2:4")
    assert _captured(conv, (1, 16, 6, 6)).nm_pattern == (2, 4)


def test_a_2_4_conv_with_one_more_zero_is_still_2_4():
    torch.manual_seed(1)
    conv = nn.Conv2d(16, 8, 3)
    apply(conv, "nm:2:4")
    with torch.no_grad():
        conv.weight[0, 0:4, 0, 0] = torch.tensor([0.0, 0.0, 0.0, 0.7])  # one group keeps a single value
    layer = _captured(conv, (1, 16, 6, 6))
    assert layer.nm_pattern == (2, 4)
    assert layer.weight_density < 0.5


def test_randomly_pruned_weights_follow_no_pattern():
    torch.manual_seed(2)
    linear = nn.Linear(64, 32)
    with torch.no_grad():
        linear.weight[torch.rand_like(linear.weight) < 0.5] = 0.0
    layer = _captured(linear, (1, 64))
    assert 0.4 < layer.weight_density < 0.6 and layer.nm_pattern is None


@settings(max_examples=60, deadline=None)
@given(pattern=st.sampled_from(STANDARD_PATTERNS), groups=st.integers(1, 4), rows=st.integers(1, 6),
       seed=st.integers(0, 2 ** 16))
def test_weights_built_n_m_are_found_to_follow_a_pattern_that_implies_n_m(pattern, groups, rows, seed):
    """Whatever pattern is found implies the one the weights were built with, and every group of it holds."""
    n, m = pattern
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand((rows, groups, m), generator=generator)
    keep = scores.argsort(dim=-1)[..., :n]  # n positions of every group of m
    mask = torch.zeros((rows, groups, m), dtype=torch.bool).scatter_(-1, keep, True)
    mask &= torch.rand((rows, groups, m), generator=generator) < 0.9  # some kept values are zero too
    found = nm_pattern(mask.reshape(rows, groups * m))
    assert found is not None and implies(found, n, m)
    fn, fm = found
    assert int(mask.reshape(rows, -1, fm).sum(dim=-1).max()) <= fn


# --------------------------------------------------------------------------------------------- timing


@pytest.mark.parametrize("flow", ["ws", "os"])
def test_a_2_4_layer_on_a_2_4_array_runs_the_dense_cycles_of_half_the_reduction(flow):
    arch = _nm_arch(rows=4, cols=4, glb_bytes=8192)
    layer = _nm_gemm(m=8, k=32, n=8)
    problem = problem_of(layer, arch)
    assert problem.structured == (2, 4)
    block = (8, 32, 8)
    # WS: a fold of 4 PE rows holds the 2 stored values of 2 groups of 4, i.e. 8 dense rows; OS streams all 32.
    tile = (8, 8, 4) if flow == "ws" else (4, 32, 4)
    mapping = Mapping(dataflow=flow, spatial_rows="", spatial_cols="", dram_order=("m", "k", "n"), block=block,
                      array_tile=tile, onchip_order=("m", "n", "k"), glb_footprint_bits=glb_bits_needed(problem, block))
    compute = run_mapping(problem, mapping, arch).timeline.compute_cycles
    stream = 8 if flow == "ws" else 16
    assert compute == gemm_timing.gemm_compute_cycles(flow, 8, 16, 8, 4, 4, stream_tile=stream)
    assert compute < gemm_timing.gemm_compute_cycles(flow, 8, 32, 8, 4, 4, stream_tile=8 if flow == "ws" else 32)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=st.sampled_from(STANDARD_PATTERNS), groups=st.integers(1, 6), n=st.integers(1, 9),
       wbits=st.sampled_from([4, 8, 16]))
def test_compressed_weight_traffic_is_the_values_and_their_indices(pattern, groups, n, wbits):
    from codesign.workload import Bits

    nn_, m = pattern
    arch = _nm_arch(nn_, m, rows=8, glb_bytes=1 << 16)
    k = groups * m
    problem = problem_of(_nm_gemm(m=2, k=k, n=n, pattern=pattern, density=nn_ / m / 2,
                                  bits=Bits(weight=wbits, activation=8)), arch)
    assert problem.structured == pattern
    # One block holding the whole layer: the weights cross the DRAM channel once, N of every M with log2(M) bits.
    sched = block_schedule(problem, (2, k, n), ("m", "k", "n"))
    assert sched.dram_bits["weight"][0] == (k // m * nn_) * n * (wbits + (m.bit_length() - 1))


@st.composite
def _nm_layer_and_arch(draw):
    """A small conv or GEMM whose weights follow a pattern implying the array's n:m, on a small N:M array."""
    n, m = draw(st.sampled_from([(1, 2), (2, 4), (1, 4), (2, 8), (4, 8)]))
    stronger = [p for p in STANDARD_PATTERNS if implies(p, n, m)]
    pattern = draw(st.sampled_from(stronger))
    arch = _nm_arch(n, m, rows=m * draw(st.integers(1, 2)), cols=draw(st.integers(2, 5)),
                    glb_bytes=draw(st.sampled_from([2048, 8192])), dram_bytes_per_cycle=draw(st.sampled_from([1, 8])),
                    latency=draw(st.integers(0, 8)))
    density = pattern[0] / pattern[1] * draw(st.sampled_from([1.0, 0.5]))
    if draw(st.booleans()):
        layer = _nm_gemm(m=draw(st.integers(1, 8)), k=m * draw(st.integers(1, 4)), n=draw(st.integers(1, 9)),
                         pattern=pattern, density=density)
    else:
        base = conv_layer(k=draw(st.integers(1, 4)), c=m * draw(st.integers(1, 2)), h=draw(st.integers(3, 5)),
                          w=draw(st.integers(3, 5)), r=draw(st.sampled_from([1, 3])), s=draw(st.sampled_from([1, 3])),
                          density=density)
        layer = replace(base, nm_pattern=pattern, effective_macs=max(1, base.effective_macs))  # never all zero
    return layer, arch


@pytest.mark.parametrize("flow", ["ws", "os"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_nm_layer_and_arch(), pick=st.integers(0, 7), adapted=st.booleans())
def test_fast_model_equals_the_per_cycle_reference_on_n_m_layers(flow, case, pick, adapted):
    layer, arch = case
    problem = problem_of(layer, arch)
    assert problem.structured is not None
    try:
        if adapted:  # the engine's path: the dense original's mapping, adapted to the compressed layer
            dense = problem_of(replace(layer, weight_density=1.0, effective_macs=None), arch)
            mappings = [registry.get(flow).adapt(m, problem, arch) for m in candidate_mappings(dense, arch, flow, limit=8)]
        else:
            mappings = candidate_mappings(problem, arch, flow, limit=8)
    except MappingError:
        return  # nothing fits this buffer
    mapping = mappings[pick % len(mappings)]
    fast = run_mapping(problem, mapping, arch)
    slow = simulate_reference(problem, mapping, arch)
    t = fast.timeline
    assert (t.cycles, t.compute_cycles, t.glb_stall_cycles, t.dram_stall_cycles) == (
        slow.cycles, slow.compute_cycles, slow.glb_stall_cycles, slow.dram_stall_cycles)
    assert {op: sum(fast.schedule.dram_words[op]) for op in slow.dram_words} == slow.dram_words
    array_glb = {op: fast.onchip.words["glb"][op] - sum(fast.schedule.dram_words[op]) for op in slow.dram_words}
    assert array_glb == slow.glb_array_words


@pytest.mark.parametrize("flow", ["ws", "os"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_nm_layer_and_arch())
def test_an_n_m_layer_costs_no_more_than_its_dense_original(flow, case):
    layer, arch = case
    dense = replace(layer, weight_density=1.0, effective_macs=None, nm_pattern=None)
    try:
        before = simulate(workload(dense), arch, flow).layers[0]
    except MappingError:
        return
    after = simulate(workload(layer), arch, flow).layers[0]
    assert after.cycles <= before.cycles
    assert after.total_energy_pj <= before.total_energy_pj * (1 + 1e-12)
    assert after.zero_savings["skipped_cycles"] == before.cycles - after.cycles


@pytest.mark.parametrize("flow", ["ws", "os"])
def test_fewer_nonzeros_in_the_same_pattern_cost_no_more(flow):
    arch = _nm_arch()
    half = simulate(workload(_nm_gemm(m=16, k=64, n=16, density=0.5)), arch, flow).layers[0]
    quarter = simulate(workload(_nm_gemm(m=16, k=64, n=16, density=0.25)), arch, flow).layers[0]
    assert quarter.cycles == half.cycles and quarter.dram_bytes == half.dram_bytes
    assert quarter.energy_pj["mac"] < half.energy_pj["mac"]


@pytest.mark.parametrize("pattern,note", [((4, 8), "4:8 weights do not follow the array's 2:4"),
                                          (None, "zeros in no N:M pattern")])
def test_a_layer_the_array_cannot_compress_runs_dense_with_a_note(pattern, note):
    layer = _nm_gemm(m=16, k=64, n=16, pattern=pattern)
    arch = _nm_arch()
    sparse = simulate(workload(layer), arch, "ws").layers[0]
    dense = simulate(workload(gemm_layer(m=16, k=64, n=16)), arch, "ws").layers[0]
    assert sparse.cycles == dense.cycles and sparse.zero_savings["skipped_cycles"] == 0
    assert any(note in text for text in sparse.notes), sparse.notes


def test_an_array_without_n_m_support_skips_nothing_of_an_n_m_layer():
    layer = _nm_gemm(m=16, k=64, n=16)
    result = simulate(workload(layer), make_arch(rows=8, cols=4, rs=False), "ws").layers[0]
    assert problem_of(layer, make_arch(rows=8, cols=4, rs=False)).structured is None
    assert result.zero_savings["skipped_cycles"] == 0 and not result.notes


# --------------------------------------------------------------------------------------------- a zoo model


@pytest.fixture(scope="module")
def mobilenet_dense_and_2_4():
    from codesign.zoo import build

    model, inputs = build("mobilenetv2-cifar")
    dense = from_torch(model.eval(), inputs)
    apply(model, "nm:2:4")
    pruned = from_torch(model.eval(), inputs)
    # Pruning moves the activations' zeros too; keep the dense model's so the two differ only in their weights.
    densities = {layer.name: (layer.input_density, layer.output_density) for layer in dense.layers}
    pruned = replace(pruned, layers=tuple(replace(layer, input_density=densities[layer.name][0],
                                                  output_density=densities[layer.name][1]) for layer in pruned.layers))
    return dense, pruned


@pytest.mark.slow
def test_a_2_4_pruned_zoo_model_runs_faster_under_ws_only_on_the_2_4_preset(mobilenet_dense_and_2_4):
    from codesign.arch_loader import load_arch

    dense, pruned = mobilenet_dense_and_2_4
    # The 2:4 layers whose dims pruning left alone (a few may lose an input feature no output reads).
    nm = {layer.name for layer in pruned.layers if layer.nm_pattern == (2, 4) and layer.effective_dims is None}
    assert len(nm) >= 30
    plain, sparse = load_arch("fpga-8x8"), load_arch("fpga-8x8-sparse")
    for arch, faster in ((plain, False), (sparse, True)):
        before = {layer.name: layer.cycles for layer in simulate(dense, arch, "ws").layers}
        after = simulate(pruned, arch, "ws")
        for layer in after.layers:
            if layer.name in nm:
                assert (layer.cycles < before[layer.name]) if faster else layer.cycles == before[layer.name], layer.name
        if faster:
            assert after.totals["cycles"] < 0.8 * sum(before.values())


def _small_net():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(32 * 8 * 8, 10))
    return model, (torch.randn(1, 16, 8, 8),)


@pytest.mark.parametrize("preset,skips", [("fpga-8x8-sparse", True), ("fpga-8x8", False)])
def test_explore_reports_the_cycles_2_4_pruning_skips_on_the_sparse_preset_only(preset, skips):
    from codesign.explore import explore

    result = explore(_small_net(), preset, prune=["nm:2:4"], dataflows="ws")
    run = result.run("nm:2:4", "ws")
    baseline = result.run(result.baseline, "ws")
    skipped = run.zero_savings.get("skipped_cycles", 0)
    assert skipped == baseline.cycles - run.cycles
    assert (skipped > 0.3 * baseline.cycles) if skips else skipped == 0


# --------------------------------------------------------------------------------------------- the spec


def test_the_sparse_preset_is_fpga_8x8_with_2_4_pes():
    from codesign.arch_loader import load_arch

    sparse, plain = load_arch("fpga-8x8-sparse"), load_arch("fpga-8x8")
    assert sparse.sparsity.weights.structured == StructuredSkip(2, 4)
    assert replace(sparse, name=plain.name, source=plain.source, description=plain.description,
                   sparsity=plain.sparsity) == plain


@pytest.mark.parametrize("edit,message", [
    ({"sparsity": {"weights": {"structured": {"n": 4, "m": 4}}}}, "field sparsity.weights.structured: N:M needs 1 <= n < m"),
    ({"sparsity": {"weights": {"structured": {"n": 2, "m": 6}}}}, "m must be a power of two"),
    ({"sparsity": {"weights": {"structured": {"n": 2}}}}, "field sparsity.weights.structured.m: missing"),
    ({"sparsity": {"weights": {"action": "gate", "structured": {"n": 2, "m": 4}}}}, "needs action: skip"),
    ({"sparsity": {"activations": {"structured": {"n": 2, "m": 4}}}}, "field sparsity.activations.structured: unknown key"),
    ({"dataflows": ["ws", "rs"]}, "dataflow rs cannot skip N:M groups"),
    ({"rows": 6}, "needs rows to be a multiple of 4"),
])
def test_a_bad_structured_spec_is_one_line_and_exit_2(tmp_path, capsys, edit, message):
    import yaml

    from codesign.arch_loader import arch_to_dict, load_arch
    from codesign.cli import main

    spec = arch_to_dict(load_arch("fpga-8x8-sparse"))
    for key, value in edit.items():
        if key == "sparsity":
            for operand, fields in value.items():
                spec["sparsity"][operand] = {**spec["sparsity"].get(operand, {}), **fields}
        else:
            spec[key] = value
    if "rs" in spec["dataflows"]:
        spec["noc"] = "multicast"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    net = tmp_path / "net.py"
    net.write_text("import torch\n\ndef make():\n    return torch.nn.Linear(8, 4), (torch.randn(1, 8),)\n")
    assert main(["sim", f"{net}:make", "--arch", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not list(tmp_path.glob("*.json"))


def test_a_structured_spec_round_trips_through_yaml(tmp_path):
    from codesign.arch_loader import arch_to_yaml, load_arch

    spec = load_arch("fpga-8x8-sparse")
    path = tmp_path / "copy.yaml"
    path.write_text(arch_to_yaml(spec))
    assert load_arch(str(path)).sparsity == spec.sparsity


def test_a_derived_array_that_cannot_skip_runs_the_pattern_dense_with_a_note():
    """explore derives arrays from a spec (another shape, rs added): those that cannot skip N:M run dense."""
    arch = _nm_arch(rows=6)  # built directly, not loaded: rows 6 hold no whole groups of 4
    problem = problem_of(_nm_gemm(m=8, k=32, n=8), arch)
    assert problem.structured is None
    assert any("multiple of 4" in note for note in problem.notes)


def test_a_ws_fold_of_an_n_m_layer_spans_the_dense_rows_its_pes_hold_compressed():
    arch = _nm_arch(rows=8, cols=4, glb_bytes=1 << 16)
    problem = problem_of(_nm_gemm(m=4, k=64, n=4), arch)
    (mapping,) = candidate_mappings(problem, arch, Dataflow.WEIGHT_STATIONARY, limit=1)
    assert mapping.array_tile[1] == 16  # 8 PE rows hold 2 of every 4: 16 dense reduction rows
    assert registry.get("ws").spatial_utilization(problem, arch, mapping) == 1.0
