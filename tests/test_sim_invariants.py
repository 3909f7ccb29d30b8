"""Invariants of every simulation: MACs preserved, bounds respected, traffic >= compulsory, energy = counts x table."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.arch import Dataflow
from sim.engine import simulate
from test_sim_factories import small_arch, small_conv, small_gemm, small_varied_conv, vector_layer, workload

FLOWS = ["ws", "os", "rs"]
SETTINGS = dict(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(layers, arch, flow, objective="latency"):
    return simulate(workload(*layers), arch, flow, objective=objective)


@pytest.mark.parametrize("flow", FLOWS)
@settings(**SETTINGS)
@given(conv=small_conv(name="conv"), fc=small_gemm(name="fc"), arch=small_arch())
def test_simulated_macs_equal_the_graphs_macs_per_layer(flow, conv, fc, arch):
    result = _run([conv, fc], arch, flow)
    assert [layer.macs for layer in result.layers] == [conv.macs, fc.macs]
    assert result.macs == conv.macs + fc.macs


@pytest.mark.parametrize("flow", FLOWS)
@settings(**SETTINGS)
@given(conv=small_conv(name="conv"), fc=small_gemm(name="fc"), arch=small_arch())
def test_cycles_at_least_roofline_at_least_macs_per_pe(flow, conv, fc, arch):
    result = _run([conv, fc, vector_layer()], arch, flow)
    for layer in result.layers:
        assert layer.cycles >= layer.roofline_cycles >= math.ceil(layer.macs / arch.pes)
        assert layer.cycles == layer.compute_cycles + layer.stall_cycles
        assert layer.stall_cycles == layer.dram_stall_cycles + layer.glb_stall_cycles + layer.lane_stall_cycles >= 0
    assert result.cycles >= result.roofline_cycles
    assert 0.0 <= result.utilization <= 1.0


@pytest.mark.parametrize("flow", FLOWS)
@settings(**SETTINGS)
@given(conv=small_varied_conv(name="conv"), arch=small_arch())
def test_narrow_and_pruned_layers_still_respect_the_roofline(flow, conv, arch):
    layer = _run([conv], arch, flow).layers[0]
    assert layer.cycles >= layer.roofline_cycles
    assert 0.0 <= layer.utilization <= 1.0


@pytest.mark.parametrize("flow", FLOWS)
@settings(**SETTINGS)
@given(conv=small_conv(name="conv"), arch=small_arch(), objective=st.sampled_from(["latency", "energy", "edp"]))
def test_accesses_are_at_least_compulsory_traffic(flow, conv, arch, objective):
    layer = _run([conv], arch, flow, objective).layers[0]
    gemm = conv.dims.gemm()
    assert layer.dram_bytes >= layer.compulsory_dram_bytes
    assert layer.accesses["dram"]["weight"] >= gemm.batch * gemm.k * gemm.n
    assert layer.accesses["dram"]["output"] >= gemm.batch * gemm.m * gemm.n
    for operand in ("weight", "input", "output"):
        assert layer.accesses["glb"][operand] >= layer.accesses["dram"][operand]
        assert layer.accesses["rf"][operand] >= layer.macs


@pytest.mark.parametrize("flow", FLOWS)
@settings(**SETTINGS)
@given(conv=small_varied_conv(name="conv"), arch=small_arch())
def test_energy_is_counts_times_the_table(flow, conv, arch):
    result = _run([conv, vector_layer()], arch, flow)
    table = arch.energy
    mac_layer, vector = result.layers
    for layer in result.layers:
        for level, operands in layer.bits_moved.items():
            for operand, bits in operands.items():
                assert layer.energy_pj[level][operand] == pytest.approx(bits * arch.energy_per_bit(level))
        total = sum(sum(v.values()) for k, v in layer.energy_pj.items() if k != "mac") + layer.energy_pj["mac"]
        assert layer.total_energy_pj == pytest.approx(total)
    bits = conv.bits
    # Zero weights switch nothing where the accelerator gates or skips them; otherwise every MAC switches.
    switched = mac_layer.effective_macs if arch.sparsity.weights.gates() else mac_layer.macs
    assert mac_layer.energy_pj["mac"] == pytest.approx(switched * table.mac_pj(bits.weight, bits.activation))
    # Fused into the conv or run alone, the relu's 256 element operations are costed.
    assert vector.energy_pj["mac"] == pytest.approx(256 * table.mac_pj(8, 8))
    assert result.energy_pj == pytest.approx(mac_layer.total_energy_pj + vector.total_energy_pj)
    # The JSON carries the same numbers.
    doc = result.to_dict()
    assert doc["totals"]["energy_pj"] == pytest.approx(result.energy_pj)
    assert doc["layers"][0]["energy_pj"]["dram"] == dict(mac_layer.energy_pj["dram"])


@settings(**SETTINGS)
@given(conv=small_conv(name="conv"), arch=small_arch())
def test_reuse_is_macs_per_access(conv, arch):
    layer = _run([conv], arch, "ws").layers[0]
    for level, operands in layer.accesses.items():
        for operand, count in operands.items():
            assert layer.reuse[level][operand] == pytest.approx(layer.macs / count if count else 0.0)


def test_totals_are_the_sum_of_layers_and_the_json_has_the_documented_keys():
    from test_sim_factories import conv_layer, gemm_layer, make_arch

    result = _run([conv_layer(), vector_layer(), gemm_layer()], make_arch(), Dataflow.OUTPUT_STATIONARY)
    doc = result.to_dict()
    assert {"arch", "dataflow", "layers", "totals"} <= set(doc)
    assert {"macs", "cycles", "energy_pj", "dram_bytes", "utilization", "roofline_cycles"} <= set(doc["totals"])
    assert doc["totals"]["cycles"] == sum(layer["cycles"] for layer in doc["layers"])
    assert doc["totals"]["dram_bytes"] == sum(layer["dram_bytes"] for layer in doc["layers"])
    assert doc["dataflow"] == "os" and len(doc["layers"]) == 3
