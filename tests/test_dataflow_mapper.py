"""Mapper and blocking: legal, deterministic, bounded search; closed-form traffic equals the block walk."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.arch import Dataflow
from codesign.errors import MappingError, SpecError
from dataflow import mapper
from dataflow.blocking import DRAM_ORDERS, block_schedule, dram_bits_closed_form
from dataflow.mapping import glb_bits_needed, problem_of
from sim import engine
from sim.engine import simulate
from test_sim_factories import conv_layer, gemm_layer, make_arch, small_arch, small_conv, small_gemm, workload

FLOWS = list(Dataflow)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=small_gemm(), bm=st.integers(1, 9), bk=st.integers(1, 20), bn=st.integers(1, 11),
       order=st.sampled_from(DRAM_ORDERS))
def test_closed_form_dram_traffic_equals_the_block_walk(layer, bm, bk, bn, order):
    problem = problem_of(layer, make_arch())
    block = (min(bm, problem.m), min(bk, problem.k), min(bn, problem.n))
    sched = block_schedule(problem, block, order)
    walked = sum(r + w for r, w in sched.dram_bits.values())
    assert walked == dram_bits_closed_form(problem, block, order)
    assert walked == int(sched.load_bits.sum() + sched.write_bits.sum())


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.value)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=small_conv(), arch=small_arch())
def test_every_candidate_fits_the_buffer_and_the_array(flow, layer, arch):
    problem = problem_of(layer, arch)
    try:
        mappings = mapper.candidate_mappings(problem, arch, flow, limit=8)
    except MappingError as error:  # only a PE holding one tap of a longer filter row is refused here
        assert flow is Dataflow.ROW_STATIONARY and "needs room for a filter row" in str(error)
        return
    for mapping in mappings:
        assert mapping.glb_footprint_bits == glb_bits_needed(problem, mapping.block) <= arch.glb.size_bytes * 8
        tm, tk, tn = mapping.array_tile
        if flow is Dataflow.WEIGHT_STATIONARY:
            assert tk <= arch.rows and tn <= arch.cols * problem.pack
        elif flow is Dataflow.OUTPUT_STATIONARY:
            assert tm <= arch.rows and tn <= arch.cols * problem.pack
        else:
            pe = arch.pe
            taps = min(problem.conv.s, pe.weight_rf_words, pe.activation_rf_words)
            filters, channels = mapping.pe_loop("filters"), mapping.pe_loop("channels")
            assert filters * channels * taps <= pe.weight_rf_words
            assert channels * taps <= pe.activation_rf_words
            assert filters <= pe.psum_rf_words


@pytest.mark.parametrize("objective", mapper.OBJECTIVES)
def test_search_is_deterministic(objective):
    arch = make_arch(rows=4, cols=4, glb_bytes=2048)
    layers = [conv_layer(name="a", k=8, c=6, h=8, w=8), gemm_layer(name="b", m=5, k=40, n=9)]
    first = simulate(workload(*layers), arch, "os", objective=objective).to_dict()
    second = simulate(workload(*layers), arch, "os", objective=objective).to_dict()
    assert first == second


def test_identical_layers_are_searched_once(monkeypatch):
    calls = []
    original = engine.best_run
    monkeypatch.setattr(engine, "best_run", lambda layer, *a, **k: calls.append(layer.name) or original(layer, *a, **k))
    layers = [conv_layer(name=f"block{i}", k=8, c=8) for i in range(4)] + [conv_layer(name="other", k=4, c=8)]
    result = simulate(workload(*layers), make_arch(), "ws")
    assert calls == ["block0", "other"]
    assert [layer.name for layer in result.layers] == ["block0", "block1", "block2", "block3", "other"]
    assert len({str(layer.mapping) for layer in result.layers[:4]}) == 1
    alone = simulate(workload(*layers), make_arch(), "ws", onchip_activations=False)
    assert len({layer.cycles for layer in alone.layers[:4]}) == 1


def test_the_objective_changes_what_is_minimized():
    arch = make_arch(rows=4, cols=4, glb_bytes=1536, dram_bytes_per_cycle=1)
    layer = [conv_layer(k=16, c=16, h=8, w=8)]
    fast = simulate(workload(*layer), arch, "ws", objective="latency").layers[0]
    frugal = simulate(workload(*layer), arch, "ws", objective="energy").layers[0]
    assert fast.cycles <= frugal.cycles
    assert frugal.total_energy_pj <= fast.total_energy_pj
    assert (fast.cycles, fast.total_energy_pj) != (frugal.cycles, frugal.total_energy_pj)  # a real trade-off here


@pytest.mark.parametrize("flow", ["ws", "os"])
def test_a_depthwise_layer_maps_and_its_low_utilization_is_reported(flow):
    arch = make_arch(rows=8, cols=8, glb_bytes=16384)
    layer = conv_layer(name="dw", k=16, c=16, h=8, w=8, groups=16)
    result = simulate(workload(layer), arch, flow).layers[0]
    assert result.macs == layer.macs
    assert result.spatial_utilization < 0.25
    assert any("utilization" in note for note in result.notes)


def test_row_stationary_maps_a_depthwise_layer_one_filter_and_channel_per_pe():
    arch = make_arch(rows=8, cols=8, glb_bytes=16384)
    layer = conv_layer(name="dw", k=16, c=16, h=8, w=8, groups=16)
    result = simulate(workload(layer), arch, "rs").layers[0]
    assert result.macs == layer.macs
    assert result.mapping["rf"] == {"filters": 1, "channels": 1}
    # PE sets are 3 filter rows x 8 output rows: two sets fill 6 of the 8 rows.
    assert result.spatial_utilization == pytest.approx(2 * 3 * 8 / 64)


def test_no_mapping_fits_names_the_layer_and_the_bytes_it_needs():
    arch = make_arch(glb_bytes=64)
    with pytest.raises(MappingError, match=r"layer big: .*64-byte global buffer.* needs \d+ bytes"):
        simulate(workload(conv_layer(name="big", k=8, c=8)), arch, "ws")


def test_an_unsupported_dataflow_is_an_error():
    with pytest.raises(MappingError, match="does not support dataflow rs"):
        simulate(workload(conv_layer()), make_arch(rs=False), "rs")


@pytest.mark.parametrize("bad", ["xs", "", "WS2"])
def test_an_unknown_dataflow_is_an_error(bad):
    with pytest.raises(MappingError, match="unknown dataflow"):
        simulate(workload(conv_layer()), make_arch(), bad)


def test_an_unknown_objective_is_an_error():
    with pytest.raises(MappingError, match="unknown objective"):
        simulate(workload(conv_layer()), make_arch(), "ws", objective="speed")


def test_row_stationary_splits_a_filter_row_longer_than_the_register_files():
    roomy = simulate(workload(conv_layer(r=3, s=3)), make_arch(rf_words=(64, 12, 16)), "rs").layers[0]
    tight = simulate(workload(conv_layer(r=3, s=3)), make_arch(rf_words=(2, 2, 2)), "rs").layers[0]
    assert tight.macs == roomy.macs
    assert tight.accesses["glb"]["output"] > roomy.accesses["glb"]["output"]  # segments add partial sums


def test_row_stationary_on_pes_holding_one_tap_is_a_clear_error():
    with pytest.raises(MappingError, match=r"^layer conv: row stationary needs room for a filter row \(S=3 taps\) in "
                                           r"each PE's register files; the PEs of test-4x4 hold 1 weight and 1 "
                                           r"activation words$"):
        simulate(workload(conv_layer(r=3, s=3)), make_arch(rf_words=(1, 1, 1)), "rs")
    assert simulate(workload(conv_layer(r=1, s=1)), make_arch(rf_words=(1, 1, 1)), "rs").layers[0].cycles > 0


def test_a_pe_without_register_files_is_refused_when_specified():
    with pytest.raises(SpecError, match="pe.weight_rf_words=0 must be a positive integer"):
        make_arch(rf_words=(0, 1, 1))


@pytest.mark.parametrize("dataflow,streamed", [("ws", "m"), ("os", "k")])
def test_no_array_tile_streams_more_than_a_generated_core_can_run(dataflow, streamed):
    from codesign.contract import tile_timing
    from tests.test_sim_factories import gemm_layer, make_arch, workload

    long = 3 * tile_timing.MAX_STREAM_TILE + 5
    sizes = {"m": long, "k": 8, "n": 8} if streamed == "m" else {"m": 8, "k": long, "n": 8}
    arch = make_arch(rows=4, cols=4, glb_bytes=1 << 24, dram_bytes_per_cycle=64)  # room to stream it whole
    result = simulate(workload(gemm_layer("long", **sizes)), arch, dataflow)
    assert result.layers[0].mapping["tiles"]["array"][streamed] <= tile_timing.MAX_STREAM_TILE
    assert result.layers[0].macs == long * 8 * 8
