"""The fast vectorized simulator equals the slow per-cycle reference, exactly, under every dataflow."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.arch import Dataflow
from codesign.errors import MappingError
from dataflow.mapper import candidate_mappings
from dataflow.mapping import problem_of
from sim.engine import run_mapping
from sim.reference import simulate_reference
from test_sim_factories import small_arch, small_conv, small_gemm, small_varied_conv

FLOWS = [Dataflow.WEIGHT_STATIONARY, Dataflow.OUTPUT_STATIONARY, Dataflow.ROW_STATIONARY]


def _compare(layer, arch, flow, pick):
    problem = problem_of(layer, arch)
    try:
        mappings = candidate_mappings(problem, arch, flow, "latency", limit=8)
    except MappingError:
        return  # nothing fits this random buffer: covered by the error tests
    mapping = mappings[pick % len(mappings)]
    fast = run_mapping(problem, mapping, arch)
    slow = simulate_reference(problem, mapping, arch)
    t = fast.timeline
    assert (t.cycles, t.compute_cycles, t.glb_stall_cycles, t.dram_stall_cycles) == (
        slow.cycles, slow.compute_cycles, slow.glb_stall_cycles, slow.dram_stall_cycles)
    assert slow.macs == problem.macs
    assert {op: sum(fast.schedule.dram_words[op]) for op in slow.dram_words} == slow.dram_words
    array_glb = {op: fast.onchip.words["glb"][op] - sum(fast.schedule.dram_words[op]) for op in slow.dram_words}
    assert array_glb == slow.glb_array_words


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.value)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=small_conv(), arch=small_arch(), pick=st.integers(0, 7))
def test_fast_model_equals_reference_on_random_convs(flow, layer, arch, pick):
    _compare(layer, arch, flow, pick)


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.value)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=small_gemm(), arch=small_arch(), pick=st.integers(0, 7))
def test_fast_model_equals_reference_on_random_gemms(flow, layer, arch, pick):
    _compare(layer, arch, flow, pick)


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.value)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=small_varied_conv(), arch=small_arch(), pick=st.integers(0, 7))
def test_fast_model_equals_reference_at_other_widths_and_densities(flow, layer, arch, pick):
    _compare(layer, arch, flow, pick)


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.value)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=small_conv(), arch=small_arch(), pick=st.integers(0, 7), input_onchip=st.booleans(),
       output_onchip=st.booleans(), ops_per_value=st.integers(0, 40), param_bits=st.sampled_from([0, 64, 1000]))
def test_fast_model_equals_reference_with_tensors_on_chip_and_a_fused_output_path(
        flow, layer, arch, pick, input_onchip, output_onchip, ops_per_value, param_bits):
    from sim.engine import OutputPath

    problem = problem_of(layer, arch)
    try:
        mappings = candidate_mappings(problem, arch, flow, "latency", limit=8)
    except MappingError:
        return
    mapping = mappings[pick % len(mappings)]
    outputs = problem.groups * problem.m * problem.n
    path = OutputPath(ops=ops_per_value * outputs, lanes=arch.cols, param_bits=param_bits)
    fast = run_mapping(problem, mapping, arch, input_onchip=input_onchip, output_onchip=output_onchip, output_path=path)
    slow = simulate_reference(problem, mapping, arch, input_onchip=input_onchip, output_onchip=output_onchip,
                              path_ops=path.ops, path_lanes=path.lanes, path_param_bits=param_bits)
    t = fast.timeline
    assert (t.cycles, t.compute_cycles, t.glb_stall_cycles, t.dram_stall_cycles, t.lane_stall_cycles) == (
        slow.cycles, slow.compute_cycles, slow.glb_stall_cycles, slow.dram_stall_cycles, slow.lane_stall_cycles)
    # The array's own cycles are the layer's alone: the output path only makes it wait.
    assert t.compute_cycles == run_mapping(problem, mapping, arch).timeline.compute_cycles
    assert {op: sum(fast.schedule.dram_words[op]) for op in slow.dram_words} == slow.dram_words
    if input_onchip:
        assert slow.dram_words["input"] == 0
