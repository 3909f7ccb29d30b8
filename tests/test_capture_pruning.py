"""Pruning is read from the weights the layers use: density, effective MACs, structured dims."""

from __future__ import annotations

import dataclasses

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from codesign.capture import from_torch
from codesign.workload import OpKind


def capture(model: nn.Module, shape: tuple[int, ...]):
    return from_torch(model.eval(), (torch.randn(shape),))


def test_dense_layers_report_full_density_and_no_effective_fields():
    (layer,) = capture(nn.Conv2d(3, 4, 3), (1, 3, 5, 5)).layers
    assert layer.weight_density == 1.0
    assert layer.effective_macs is None and layer.effective_dims is None


@settings(max_examples=10, deadline=None)
@given(amount=st.integers(1, 35), seed=st.integers(0, 1000))
def test_unstructured_mask_sets_density_and_scales_macs_exactly(amount, seed):
    torch.manual_seed(seed)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    prune.random_unstructured(conv, "weight", amount=amount)
    (layer,) = capture(conv, (1, 4, 5, 5)).layers
    nonzero = int((conv.weight != 0).sum())
    assert layer.weight_density == nonzero / conv.weight.numel()
    assert layer.effective_macs == 5 * 5 * nonzero  # every weight meets P*Q inputs
    assert layer.params == conv.weight.numel() + conv.bias.numel()
    assert "aten.mul.Tensor" in layer.aten  # the weight_orig * mask the export shows


def test_zeroed_output_filters_shrink_k():
    conv = nn.Conv2d(4, 8, 3, bias=False)
    prune.ln_structured(conv, "weight", amount=3, n=1, dim=0)
    (layer,) = capture(conv, (1, 4, 6, 6)).layers
    assert layer.effective_dims == dataclasses.replace(layer.dims, k=5)
    assert layer.macs == layer.dims.macs and layer.effective_macs == layer.dims.macs * 5 // 8


def test_zero_input_channels_in_plain_weights_shrink_c():
    conv = nn.Conv2d(6, 4, 1, bias=False)
    with torch.no_grad():
        conv.weight[:, [1, 4]] = 0  # network slimming removed two input channels
    (layer,) = capture(conv, (1, 6, 3, 3)).layers
    assert layer.effective_dims == dataclasses.replace(layer.dims, c=4)
    assert layer.weight_density == 4 / 6


def test_depthwise_conv_with_dead_channels_drops_whole_groups():
    conv = nn.Conv2d(8, 8, 3, groups=8, bias=False)
    with torch.no_grad():
        conv.weight[[0, 5]] = 0
    (layer,) = capture(conv, (1, 8, 5, 5)).layers
    assert layer.op is OpKind.DEPTHWISE_CONV
    assert layer.effective_dims == dataclasses.replace(layer.dims, k=6, c=6, groups=6)


def test_grouped_conv_pruned_unevenly_keeps_the_largest_group():
    conv = nn.Conv2d(4, 8, 1, groups=2, bias=False)  # 2 groups of 4 filters x 2 channels
    with torch.no_grad():
        conv.weight[[0, 1, 2, 4, 5]] = 0  # group 0 keeps 1 filter, group 1 keeps 2
    (layer,) = capture(conv, (1, 4, 3, 3)).layers
    assert layer.effective_dims == dataclasses.replace(layer.dims, k=4, c=4, groups=2)
    assert layer.effective_macs == 9 * 3 * 2  # 3 live filters, 2 weights each, 9 pixels


def test_linear_with_dead_rows_and_columns_shrinks_n_and_k():
    linear = nn.Linear(5, 4)
    with torch.no_grad():
        linear.weight[2] = 0  # output feature 2 always zero
        linear.weight[:, 0] = 0  # input feature 0 never used
    (layer,) = capture(linear, (3, 5)).layers
    assert layer.effective_dims == dataclasses.replace(layer.dims, k=4, n=3)
    assert layer.effective_macs == 3 * 12


def test_totals_report_the_whole_model_density():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    prune.l1_unstructured(model[0], "weight", amount=8)
    workload = capture(model, (1, 4))
    totals = workload.totals()
    # A feature the first layer zeroes for every input is dead: the second layer's weights reading it count
    # as removed too (dead-channel propagation).
    first, second = [layer for layer in workload.layers if layer.op.has_macs]
    dead = len(second.dead_input_channels)
    assert first.weight_density == 8 / 16 and second.weight_density == (16 - 4 * dead) / 16
    assert totals["weight_density"] == (8 + 16 - 4 * dead) / 32
    assert totals["effective_macs"] == 8 + 16 - 4 * dead
