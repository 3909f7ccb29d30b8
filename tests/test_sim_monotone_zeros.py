"""More zeros never cost more: with the same arch, dataflow and objective, a layer or model with more zeros
takes no more cycles and no more energy than the same one with fewer."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.errors import MappingError
from codesign.workload import ConvDims, GemmDims
from dataflow.mapper import OBJECTIVES
from sim.engine import simulate
from test_sim_factories import gemm_layer, small_arch, small_conv, workload

FLOWS = ("ws", "os", "rs")


def _pruned_conv(layer, filters: int, channels: int, nonzeros: int):
    """``layer`` (groups = 1) with ``filters`` x ``channels`` left and ``nonzeros`` nonzero weights among them."""
    d = layer.dims
    total = d.k * d.c * d.r * d.s
    effective = None if (filters, channels) == (d.k, d.c) else replace(d, k=filters, c=channels)
    return replace(layer, weight_density=nonzeros / total, effective_dims=effective,
                   effective_macs=nonzeros * d.n * d.p * d.q)


def _pruned_gemm(layer, rows: int, cols: int, nonzeros: int):
    d = layer.dims
    effective = None if (rows, cols) == (d.k, d.n) else replace(d, k=rows, n=cols)
    return replace(layer, weight_density=nonzeros / (d.k * d.n), effective_dims=effective,
                   effective_macs=nonzeros * d.batch * d.m)


@st.composite
def conv_pair(draw):
    """(fewer zeros, more zeros): B keeps a subset of A's filters and channels and at most A's nonzeros."""
    base = draw(small_conv().filter(lambda layer: layer.dims.groups == 1))
    d = base.dims
    taps = d.r * d.s
    ka, ca = draw(st.integers(1, d.k)), draw(st.integers(1, d.c))
    kb, cb = draw(st.integers(1, ka)), draw(st.integers(1, ca))
    nnz_a = draw(st.integers(0, ka * ca * taps))
    nnz_b = draw(st.integers(0, min(nnz_a, kb * cb * taps)))
    return _pruned_conv(base, ka, ca, nnz_a), _pruned_conv(base, kb, cb, nnz_b)


@st.composite
def gemm_pair(draw):
    base = gemm_layer(m=draw(st.integers(1, 9)), k=draw(st.integers(1, 20)), n=draw(st.integers(1, 11)))
    d = base.dims
    ka, na = draw(st.integers(1, d.k)), draw(st.integers(1, d.n))
    kb, nb = draw(st.integers(1, ka)), draw(st.integers(1, na))
    nnz_a = draw(st.integers(0, ka * na))
    nnz_b = draw(st.integers(0, min(nnz_a, kb * nb)))
    return _pruned_gemm(base, ka, na, nnz_a), _pruned_gemm(base, kb, nb, nnz_b)


def _assert_no_worse(sparser, denser):
    assert sparser.cycles <= denser.cycles
    assert sparser.energy_pj <= denser.energy_pj * (1 + 1e-12)


@pytest.mark.parametrize("flow", FLOWS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=conv_pair(), arch=small_arch(), objective=st.sampled_from(OBJECTIVES))
def test_a_conv_with_more_zeros_costs_no_more(flow, pair, arch, objective):
    fewer, more = pair
    try:
        a = simulate(workload(fewer), arch, flow, objective=objective)
    except MappingError:
        return  # the dense layer fits no mapping on this random buffer
    _assert_no_worse(simulate(workload(more), arch, flow, objective=objective), a)


@pytest.mark.parametrize("flow", FLOWS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=gemm_pair(), arch=small_arch(), objective=st.sampled_from(OBJECTIVES))
def test_a_gemm_with_more_zeros_costs_no_more(flow, pair, arch, objective):
    fewer, more = pair
    try:
        a = simulate(workload(fewer), arch, flow, objective=objective)
    except MappingError:
        return
    _assert_no_worse(simulate(workload(more), arch, flow, objective=objective), a)


@pytest.mark.parametrize("flow", FLOWS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=small_conv(), arch=small_arch(), densities=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_more_zero_activations_cost_no_more(flow, layer, arch, densities):
    if not hasattr(layer, "input_density"):
        pytest.skip("layers carry no activation density")
    denser, sparser = max(densities), min(densities)
    try:
        a = simulate(workload(replace(layer, input_density=denser)), arch, flow)
    except MappingError:
        return
    _assert_no_worse(simulate(workload(replace(layer, input_density=sparser)), arch, flow), a)


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("removed", [(16, 8), (0, 0)])  # zero weights left in place, or every row and column gone
def test_an_all_zero_layer_is_simulated_not_refused(flow, removed):
    from test_sim_factories import make_arch

    layer = _pruned_gemm(gemm_layer(m=4, k=16, n=8), *removed, 0)
    result = simulate(workload(layer), make_arch(), flow).layers[0]
    dense = simulate(workload(gemm_layer(m=4, k=16, n=8)), make_arch(), flow).layers[0]
    assert result.macs == dense.macs and result.effective_macs == 0
    assert result.energy_pj["mac"] == 0
    assert 0 < result.cycles <= dense.cycles


def _pruned_model(amount: float):
    import torch
    from torch import nn
    from torch.nn.utils import prune

    from codesign.zoo import build

    model, inputs = build("mobilenetv2-cifar")
    if amount:
        weights = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        prune.global_unstructured(weights, pruning_method=prune.L1Unstructured, amount=amount)
        for module, name in weights:
            prune.remove(module, name)
    return model, inputs


@pytest.mark.slow
@pytest.mark.parametrize("preset,flow,bits", [("eyeriss", "rs", "16,16"), ("eyeriss", "rs", "8,8"),
                                              ("fpga-8x8", "ws", "8,8"), ("fpga-8x8", "os", "8,8")])
def test_a_zoo_model_with_more_zeros_costs_no_more(preset, flow, bits):
    from codesign.arch_loader import load_arch
    from codesign.capture import from_torch
    from codesign.capture.precision import BitsPolicy, parse_bits

    arch = load_arch(preset)
    policy = BitsPolicy(default=parse_bits(bits))
    results, dense = [], None
    for amount in (0.0, 0.5, 0.8):
        model, inputs = _pruned_model(amount)
        captured = from_torch(model, inputs, bits=policy)
        # Pruning weights also moves the activations' zeros (some ReLUs see fewer): keep the dense model's
        # activation densities so that the models differ only in their weights' zeros.
        dense = dense or {layer.name: layer for layer in captured.layers}
        captured = replace(captured, layers=tuple(replace(layer, **{
            name: getattr(dense[layer.name], name) for name in ("input_density", "output_density")
            if hasattr(layer, name)}) for layer in captured.layers))
        results.append(simulate(captured, arch, flow))
    for denser, sparser in zip(results, results[1:]):
        _assert_no_worse(sparser, denser)
        for a, b in zip(denser.layers, sparser.layers):
            assert b.cycles <= a.cycles and b.total_energy_pj <= a.total_energy_pj * (1 + 1e-12), b.name
