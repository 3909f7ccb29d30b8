"""Pruning and bit-widths: zero-gating saves energy, zero-skipping saves cycles (RS), widths change traffic."""

from __future__ import annotations

import pytest

from codesign.workload import Bits, ConvDims
from dataflow.mapping import problem_of
from sim.engine import simulate
from codesign.contract.memory import capacity_words
from test_sim_factories import conv_layer, gemm_layer, make_arch, workload

ARCH = make_arch(rows=4, cols=4, glb_bytes=8192)


def _layer(flow, layer, arch=ARCH):
    return simulate(workload(layer), arch, flow).layers[0]


@pytest.mark.parametrize("flow", ["ws", "os"])
def test_zero_gating_saves_mac_energy_but_no_systolic_cycles(flow):
    dense = _layer(flow, conv_layer(k=8, c=8))
    sparse = _layer(flow, conv_layer(k=8, c=8, density=0.25))
    assert sparse.cycles == dense.cycles
    assert sparse.effective_macs == round(dense.macs * 0.25)
    assert sparse.energy_pj["mac"] == pytest.approx(dense.energy_pj["mac"] * 0.25, rel=1e-3)


def test_row_stationary_skips_zero_weights():
    dense = _layer("rs", conv_layer(k=8, c=8))
    sparse = _layer("rs", conv_layer(k=8, c=8, density=0.25))
    assert sparse.compute_cycles < dense.compute_cycles


@pytest.mark.parametrize("flow", ["ws", "os", "rs"])
def test_structurally_pruned_layers_use_their_effective_dimensions(flow):
    full = conv_layer(k=8, c=8)
    d = full.dims
    smaller = ConvDims(n=d.n, k=4, c=8, p=d.p, q=d.q, r=d.r, s=d.s, h=d.h, w=d.w, padding=d.padding)
    pruned = _layer(flow, conv_layer(k=8, c=8, effective=smaller))
    assert pruned.macs == full.macs  # the dense count, exactly the graph's
    assert pruned.effective_macs == smaller.macs  # what the pruned layer really runs: counted once
    assert pruned.compute_cycles <= _layer(flow, full).compute_cycles


@pytest.mark.parametrize("flow", ["ws", "os", "rs"])
def test_structured_pruning_is_counted_once_as_the_graph_counts_it(flow):
    import torch
    from torch import nn
    from torch.nn.utils import prune

    from codesign.capture import from_torch

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 8, 3, padding=1)).eval()
    prune.ln_structured(model[0], "weight", amount=0.5, n=1, dim=0)
    prune.remove(model[0], "weight")
    captured = from_torch(model, (torch.randn(1, 8, 8, 8),), name="half-filters")
    conv = captured.layers[0]
    assert conv.effective_macs * 2 == conv.macs  # the graph: half the filters left
    result = simulate(captured, ARCH, flow)
    for layer, graph_layer in zip(result.layers, captured.layers):
        assert layer.macs == graph_layer.macs
        if graph_layer.op.has_macs:
            assert layer.effective_macs == graph_layer.macs_after_pruning
    assert result.macs == sum(layer.macs for layer in captured.layers)


@pytest.mark.parametrize("flow", ["ws", "os", "rs"])
def test_narrower_weights_move_fewer_dram_bits(flow):
    wide = _layer(flow, gemm_layer(m=4, k=64, n=16))
    narrow = _layer(flow, gemm_layer(m=4, k=64, n=16, bits=Bits(weight=4, activation=8)))
    assert narrow.bits_moved["dram"]["weight"] < wide.bits_moved["dram"]["weight"]


def test_narrow_weights_pack_several_macs_per_pe():
    layer = gemm_layer(m=8, k=4, n=32)
    problem = problem_of(gemm_layer(m=8, k=4, n=32, bits=Bits(weight=4, activation=8)), ARCH)
    assert (problem.pack, problem.passes) == (2, 1)
    assert problem_of(gemm_layer(bits=Bits(weight=6, activation=8)), ARCH).pack == 1
    assert problem_of(gemm_layer(bits=Bits(weight=1, activation=1)), ARCH).pack == 8
    packed = _layer("ws", gemm_layer(m=8, k=4, n=32, bits=Bits(weight=4, activation=8)))
    assert packed.compute_cycles < _layer("ws", layer).compute_cycles


def test_operands_wider_than_the_pe_take_several_passes():
    problem = problem_of(gemm_layer(bits=Bits(weight=16, activation=16)), ARCH)
    assert (problem.pack, problem.passes) == (1, 4)
    wide = _layer("os", gemm_layer(m=4, k=8, n=4, bits=Bits(weight=16, activation=16)))
    base = _layer("os", gemm_layer(m=4, k=8, n=4))
    assert wide.compute_cycles > 3 * base.compute_cycles


def test_binarized_macs_cost_only_the_adder_share():
    layer = _layer("ws", gemm_layer(bits=Bits(weight=1, activation=1)))
    table = ARCH.energy
    assert layer.energy_pj["mac"] == pytest.approx(layer.effective_macs * table.mac_8b_pj * (1 - table.multiplier_share) / 8)


def test_buffer_capacity_in_words_depends_on_the_width():
    assert capacity_words(ARCH, 8) == 8192
    assert capacity_words(ARCH, 4) == 2 * capacity_words(ARCH, 8)
    assert capacity_words(ARCH, 32) == 8192 // 4


def test_every_width_mismatch_is_a_note():
    wide = _layer("os", gemm_layer(m=4, k=8, n=4, bits=Bits(weight=16, activation=16)))
    assert any("take 4 passes per tile" in note for note in wide.notes)
    packed = _layer("ws", gemm_layer(m=8, k=4, n=32, bits=Bits(weight=4, activation=8)))
    assert any("packed lanes: 4x8-bit layer" in note and "2 weights share one multiplier lane" in note
               for note in packed.notes)
    binarized = _layer("ws", gemm_layer(bits=Bits(weight=1, activation=1)))
    assert any(note.startswith("packed lanes: binarized layer on 8x8-bit int_mac PEs") for note in binarized.notes)
    narrow = _layer("ws", gemm_layer(bits=Bits(weight=6, activation=6)))
    assert any("width mismatch: 6x6-bit operands" in note for note in narrow.notes)
    assert not any("width" in note or "packed" in note for note in _layer("ws", gemm_layer()).notes)
    assert "width mismatch" in simulate(workload(gemm_layer(m=4, k=8, n=4, bits=Bits(weight=16, activation=16))),
                                        ARCH, "os").to_dict()["layers"][0]["notes"][-1]


@pytest.mark.parametrize("flow", ["ws", "os", "rs"])
def test_every_layer_of_the_json_says_the_widths_it_ran_at(flow):
    layers = [gemm_layer(name="wide", m=4, k=16, n=8),
              gemm_layer(name="narrow", m=4, k=16, n=8, bits=Bits(weight=4, activation=6, accumulator=24))]
    result = simulate(workload(*layers), ARCH, flow).to_dict()
    assert {layer["name"]: layer["bits"] for layer in result["layers"]} == {
        "wide": {"weight": 8, "activation": 8, "accumulator": 32},
        "narrow": {"weight": 4, "activation": 6, "accumulator": 24}}
