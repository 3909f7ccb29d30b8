"""The simulator's model of the binarized XNOR-popcount array ('xnor'): compute only from the contract, the fast
model equal to the per-cycle reference that steps the core edge by edge, packed-word traffic, legal mappings."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.arch import BinaryArraySpec
from codesign.contract import binary_timing
from codesign.errors import MappingError
from codesign.workload import Bits
from dataflow import registry
from dataflow.mapper import candidate_mappings
from dataflow.mapping import problem_of
from dataflow.xnor_popcount import MODEL, core_edges, max_tile_k
from sim.engine import run_mapping, simulate
from sim.reference import simulate_reference
from test_sim_factories import conv_layer, gemm_layer, make_arch, small_arch, small_conv, small_gemm, workload

WORD_BITS = [1, 2, 3, 8, 16, 32, 64]


def binary_arch(arch, rows, cols, word_bits, accumulator_bits=16):
    """``arch`` with a binary array, run as the engine runs binarized layers: the binary array's shape and PE."""
    spec = BinaryArraySpec(rows=rows, cols=cols, word_bits=word_bits, accumulator_bits=accumulator_bits)
    with_array = replace(arch, binary_array=spec)
    return replace(with_array, rows=spec.rows, cols=spec.cols, pe=spec.pe,
                   dataflows=tuple(arch.dataflows) + ("xnor",))


def binarized(layer, accumulator=16):
    return replace(layer, bits=Bits(weight=1, activation=1, accumulator=accumulator))


@st.composite
def xnor_arch(draw):
    base = draw(small_arch())
    wb = draw(st.sampled_from(WORD_BITS))
    # Small accumulators force K into several tiles (max_tile_k is a few words).
    acc = draw(st.sampled_from([binary_timing.acc_bits_for(wb), binary_timing.acc_bits_for(3 * wb), 12, 16]))
    return binary_arch(base, draw(st.integers(1, 6)), draw(st.integers(1, 6)), wb, acc)


@st.composite
def long_gemm(draw):
    """A binarized GEMM whose reduction spans several packed words."""
    return gemm_layer(m=draw(st.integers(1, 9)), k=draw(st.integers(1, 300)), n=draw(st.integers(1, 9)))


def _compare(layer, arch, pick):
    problem = problem_of(binarized(layer), arch)
    try:
        mappings = candidate_mappings(problem, arch, "xnor", "latency", limit=8)
    except MappingError:
        return None  # nothing fits this random buffer
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
    return problem, mapping, fast


def test_xnor_is_registered_after_the_built_ins():
    assert registry.get("xnor") is MODEL
    assert registry.names()[:4] == ("ws", "os", "rs", "xnor")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=st.one_of(small_conv(), small_gemm(), long_gemm()), arch=xnor_arch(), pick=st.integers(0, 7))
def test_fast_model_equals_the_per_cycle_reference(layer, arch, pick):
    _compare(layer, arch, pick)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=st.one_of(small_conv(), long_gemm()), arch=xnor_arch(), pick=st.integers(0, 7))
def test_compute_is_the_contracts_sum_of_tiles_and_the_reference_core_agrees(layer, arch, pick):
    """The whole layer's compute equals the contract's back-to-back cycles of its tiles (whatever the GLB
    blocking), and the edge-by-edge core gives the same number for the same tiles."""
    out = _compare(layer, arch, pick)
    if out is None:
        return
    problem, mapping, fast = out
    tm, tk, tn = mapping.array_tile
    wb = arch.pe.word_bits
    k_tile = binary_timing.k_words(tk, wb) * wb
    tiles, cycles = binary_timing.predict_gemm_tiles(problem.m, problem.k, problem.n, tm, tn, wb, k_tile=k_tile)
    tiles = tiles * problem.groups
    assert fast.timeline.compute_cycles == binary_timing.sequence_cycles(tiles, arch.rows, arch.cols, wb)
    starts, end = core_edges(tiles, wb)
    assert end - starts[0] == fast.timeline.compute_cycles
    if problem.groups == 1:
        assert cycles == fast.timeline.compute_cycles


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=st.one_of(small_conv(), small_gemm(), long_gemm()), arch=xnor_arch())
def test_every_candidate_fits_the_buffer_and_the_core(layer, arch):
    problem = problem_of(binarized(layer), arch)
    try:
        mappings = candidate_mappings(problem, arch, "xnor", "latency", limit=16)
    except MappingError as exc:
        assert "global buffer" in str(exc)
        return
    wb = arch.pe.word_bits
    longest = max_tile_k(arch)
    for mapping in mappings:
        assert mapping.dataflow == "xnor"
        assert mapping.glb_footprint_bits <= arch.glb.size_bytes * 8
        tm, tk, tn = mapping.array_tile
        assert 1 <= tm <= arch.rows and 1 <= tn <= arch.cols and 1 <= tk <= longest
        assert tk % wb == 0 or tk == problem.k  # whole words, unless the tile is the whole reduction
        assert binary_timing.k_words(tk, wb) <= binary_timing.MAX_WORDS
        assert 0 < MODEL.spatial_utilization(problem, arch, mapping) <= 1


def test_glb_traffic_is_counted_in_packed_words():
    """K = 33 values with 32-bit words: two words per row per tile (the second holding one value)."""
    arch = binary_arch(make_arch(glb_bytes=1 << 20), 4, 4, 32)
    problem = problem_of(binarized(gemm_layer(m=4, k=33, n=4)), arch)
    mapping = candidate_mappings(problem, arch, "xnor", limit=1)[0]
    assert mapping.array_tile == (4, 33, 4) and mapping.block == (4, 33, 4)
    run = run_mapping(problem, mapping, arch)
    dram = run.schedule.dram_words
    assert run.onchip.words["glb"]["input"] - dram["input"][0] == 4 * 2
    assert run.onchip.words["glb"]["weight"] - dram["weight"][0] == 4 * 2
    assert run.onchip.bits["glb"]["input"] - run.schedule.dram_bits["input"][0] == 4 * 2 * 32
    assert run.onchip.words["noc"]["input"] == 4 * 4 * 2  # one word per PE per beat
    assert run.timeline.compute_cycles == binary_timing.tile_cycles(4, 33, 4, 4, 4, 32) == 2 + 2


def test_a_zoo_size_binarized_conv_simulates():
    """A ResNet-18 stage-3 conv (256 -> 256 filters, 3x3, 14x14) binarized, and a binarized classifier."""
    arch = binary_arch(make_arch(glb_bytes=256 * 1024, dram_bytes_per_cycle=16), 16, 16, 64)
    conv = binarized(conv_layer(name="conv", k=256, c=256, h=14, w=14, r=3, s=3, pad=1))
    fc = binarized(gemm_layer(name="fc", m=1, k=256 * 49, n=1000))
    result = simulate(workload(conv, fc), arch, "xnor")
    layers = {layer.name: layer for layer in result.layers}
    assert set(layers) == {"conv", "fc"} and all(layer.dataflow == "xnor" for layer in result.layers)
    for layer in result.layers:
        problem = problem_of(conv if layer.name == "conv" else fc, arch)
        assert layer.mapping["dataflow"] == "xnor"
        assert layer.roofline_cycles <= layer.cycles and layer.compute_cycles <= layer.cycles
        assert math.ceil(MODEL.mac_slots(problem, arch) / arch.pes) <= layer.compute_cycles
        assert 0 < layer.utilization <= 1
        tm, tk, tn = (layer.mapping["tiles"]["array"][d] for d in "mkn")
        k_tile = binary_timing.k_words(tk, 64) * 64
        assert layer.compute_cycles == binary_timing.gemm_compute_cycles(
            problem.m, problem.k, problem.n, tm, tn, 64, k_tile=k_tile, batch=problem.groups)
    # 196 x 2304 x 256: 13 x 16 tiles of 36 words each, the array full but for the last row fold.
    assert layers["conv"].compute_cycles == 13 * 16 * 36 + 2
    assert result.macs == conv.macs + fc.macs


def test_refuses_layers_and_arrays_it_cannot_run():
    arch = binary_arch(make_arch(), 4, 4, 32)
    with pytest.raises(MappingError, match="binarized layers"):
        candidate_mappings(problem_of(gemm_layer(), arch), arch, "xnor")
    integer = replace(make_arch(), dataflows=tuple(make_arch().dataflows) + ("xnor",))
    with pytest.raises(MappingError, match="XNOR-popcount PEs"):
        candidate_mappings(problem_of(binarized(gemm_layer()), integer), integer, "xnor")
    tiny = binary_arch(make_arch(), 4, 4, 32, accumulator_bits=6)
    with pytest.raises(MappingError, match="cannot hold the dot product of one 32-bit word"):
        candidate_mappings(problem_of(binarized(gemm_layer()), tiny), tiny, "xnor")
    with pytest.raises(MappingError, match="does not support dataflow xnor"):
        simulate(workload(binarized(gemm_layer())), make_arch(), "xnor")


def test_mac_slots_count_packed_words_per_output():
    arch = binary_arch(make_arch(), 4, 4, 32)
    problem = problem_of(binarized(gemm_layer(m=3, k=65, n=5)), arch)
    assert MODEL.mac_slots(problem, arch) == 3 * 5 * 3
    candidate_mappings(problem, arch, "xnor", limit=1)
    assert math.ceil(MODEL.mac_slots(problem, arch) / arch.pes) <= run_mapping(
        problem, candidate_mappings(problem, arch, "xnor", limit=1)[0], arch).timeline.compute_cycles


def test_a_binarized_zoo_model_simulates_layer_by_layer_from_the_contract():
    """MobileNetV2 (CIFAR) with every MAC layer binarized, on an 8x8 binary array of 32-bit words: depthwise,
    pointwise and dense layers all map, and every array layer's compute is the contract's sum over its tiles."""
    from codesign.arch_loader import load_arch
    from codesign.capture import from_torch
    from codesign.zoo import build

    model, inputs = build("mobilenetv2-cifar")
    captured = from_torch(model, inputs, name="mobilenetv2-cifar")
    layers = tuple(binarized(layer) if layer.op.has_macs else layer for layer in captured.layers)
    arch = binary_arch(load_arch("fpga-8x8"), 8, 8, 32)
    result = simulate(replace(captured, layers=layers), arch, "xnor")
    by_name = {layer.name: layer for layer in layers}
    array = [layer for layer in result.layers if layer.unit == "array"]
    assert array and result.macs == sum(layer.macs for layer in layers)
    for layer in array:
        problem = problem_of(by_name[layer.name], arch)
        tm, tk, tn = (layer.mapping["tiles"]["array"][d] for d in "mkn")
        assert layer.compute_cycles == binary_timing.gemm_compute_cycles(
            problem.m, problem.k, problem.n, tm, tn, 32, k_tile=binary_timing.k_words(tk, 32) * 32,
            batch=problem.groups)


def test_the_engine_places_binarized_layers_on_the_binary_array_under_xnor():
    """An accelerator with a binary array: the int8 conv runs on the main array under WS, the binarized layer on
    the binary array's PEs under this model, timed by the contract."""
    arch = replace(make_arch(glb_bytes=1 << 16), binary_array=BinaryArraySpec(rows=3, cols=2, word_bits=16))
    layers = [conv_layer(name="int8", k=8, c=8), binarized(gemm_layer(name="binary", m=7, k=100, n=5))]
    result = simulate(workload(*layers), arch, "ws")
    placed = {layer.name: layer for layer in result.layers}
    assert {name: layer.dataflow for name, layer in placed.items()} == {"int8": "ws", "binary": "xnor"}
    binary = placed["binary"]
    assert binary.spatial_utilization == 3 * 2 / 6
    # 3 m folds x 3 n folds of one 100-bit (7-word) tile each, back to back
    assert binary.compute_cycles == binary_timing.gemm_compute_cycles(7, 100, 5, 3, 2, 16) == 9 * 7 + 2
