"""`codesign.prune`: each SPEC zeroes what it says, measured on the torch model; bad SPECs are one PruneError."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from codesign.errors import CodesignError
from codesign.prune import PruneError, PruneSpec, apply, is_pruned, parse_spec, parse_specs, pruned_copy


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 30, 1), nn.BatchNorm2d(30), nn.ReLU(),
        nn.Conv2d(30, 10, 3, padding=1), nn.BatchNorm2d(10), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(10, 7),
    )
    for module in model.modules():  # trained-looking batch norms: distinct gammas
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data.uniform_(0.1, 2.0)
            module.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


def _weights(model):
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _depthwise(conv) -> bool:
    return conv.groups > 1 and conv.in_channels == conv.groups


def test_unstructured_zeroes_the_global_share_within_one_weight():
    model, _ = pruned_copy(_model(), "unstructured:0.37")
    weights = _weights(model)
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert abs(zeros - 0.37 * total) <= 1


def test_unstructured_is_global_not_per_layer():
    model, _ = pruned_copy(_model(), "unstructured:0.5")
    shares = [float((w == 0).float().mean()) for w in _weights(model)]
    assert max(shares) - min(shares) > 0.05  # layers with smaller weights lose more


def test_pruned_copy_leaves_plain_weights_and_the_original_untouched():
    original = _model()
    before = [w.clone() for w in _weights(original)]
    model, report = pruned_copy(original, "unstructured:0.5")
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(original)))
    assert not is_pruned(original) and is_pruned(model)
    for module in model.modules():
        assert not hasattr(module, "weight_orig") and not hasattr(module, "weight_mask")
        assert not module._forward_pre_hooks
    assert report.zeroed == sum(int((w == 0).sum()) for w in _weights(model))


def test_filter_pruning_zeroes_whole_filters_in_every_conv_but_depthwise():
    model, report = pruned_copy(_model(), "filters:0.3")
    for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
        per_filter = conv.weight.reshape(conv.weight.shape[0], -1)
        whole = int((per_filter == 0).all(dim=1).sum())
        if _depthwise(conv):
            assert whole == 0 and int((per_filter == 0).sum()) == 0
        else:
            assert whole == round(0.3 * conv.out_channels)
            assert int((per_filter == 0).sum()) == whole * per_filter.shape[1]  # only whole filters
    assert report.skipped_layers == 1


def test_filter_pruning_removes_the_smallest_l1_filters():
    original = _model()
    model, _ = pruned_copy(original, "filters:0.5")
    conv, pruned = original[6], model[6]
    norms = conv.weight.detach().abs().reshape(conv.out_channels, -1).sum(dim=1)
    zero = (pruned.weight.reshape(conv.out_channels, -1) == 0).all(dim=1)
    assert norms[zero].max() <= norms[~zero].min()


def test_slimming_zeroes_gamma_and_beta_of_the_smallest_gammas_globally():
    original = _model()
    model, report = pruned_copy(original, "slimming:0.4")
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    gammas = torch.cat([m.weight.detach().abs() for m in original.modules() if isinstance(m, nn.BatchNorm2d)])
    dead = torch.cat([(m.weight == 0) & (m.bias == 0) for m in norms])
    assert int(dead.sum()) == round(0.4 * len(gammas)) == report.zeroed
    assert gammas[dead].max() <= gammas[~dead].min()
    # gamma zero means beta zero too: the channel outputs exactly zero
    assert all(torch.equal(m.weight == 0, m.bias == 0) for m in norms)


def test_slimming_spreads_equal_gammas_over_layers_and_keeps_a_channel_each():
    model = _model()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)  # an untrained model: every gamma is 1
    apply(model, "slimming:0.5")
    for module in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        share = float((module.weight == 0).float().mean())
        assert 0.3 <= share <= 0.7 and share < 1.0


def test_nm_leaves_exactly_n_nonzeros_in_every_group_of_m_along_the_input():
    model, report = pruned_copy(_model(), "nm:2:4")
    checked = 0
    for module in (m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))):
        weight = module.weight.detach()
        inputs = weight.shape[1]
        if inputs < 4:
            assert int((weight == 0).sum()) == 0  # stem (3 inputs) and depthwise (1 per filter): left dense
            continue
        rows = weight.movedim(1, -1).reshape(-1, inputs)
        full = inputs // 4 * 4
        groups = rows[:, :full].reshape(rows.shape[0], -1, 4)
        assert torch.all((groups != 0).sum(dim=-1) == 2)
        if inputs > full:  # a shorter last group keeps min(N, its length)
            assert torch.all((rows[:, full:] != 0).sum(dim=-1) == min(2, inputs - full))
        checked += 1
    assert checked == report.layers == 3


def test_nm_keeps_the_largest_magnitudes_of_each_group():
    original = _model()
    model, _ = pruned_copy(original, "nm:1:4")
    before, after = original[6].weight.detach(), model[6].weight.detach()
    groups = before.abs().movedim(1, -1).reshape(-1, 4)
    kept = (after.movedim(1, -1).reshape(-1, 4) != 0)
    assert torch.equal(kept.float().argmax(dim=-1), groups.argmax(dim=-1))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("unstructured:1.5", "share in [0, 1)"),
        ("filters:-0.1", "share in [0, 1)"),
        ("slimming:1", "share in [0, 1)"),
        ("unstructured:nan", "share in [0, 1)"),
        ("unstructured:half", "is not a number"),
        ("filters", "has no ratio"),
        ("nm:4:4", "1 <= N < M"),
        ("nm:5:4", "1 <= N < M"),
        ("nm:0:4", "1 <= N < M"),
        ("nm:2.5:4", "two whole numbers"),
        ("nm:2", "two whole numbers"),
        ("channels:0.5", "unknown pruning kind 'channels'"),
        ("", "empty pruning SPEC"),
    ],
)
def test_bad_spec_is_one_prune_error(spec, message):
    with pytest.raises(PruneError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")) as info:
        parse_spec(spec)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, CodesignError)


def test_specs_parse_to_canonical_text_and_drop_duplicates():
    specs = parse_specs(["unstructured:0.50", "nm:2:4,filters:.3", "unstructured:0.5"])
    assert [s.text for s in specs] == ["unstructured:0.5", "nm:2:4", "filters:0.3"]
    assert parse_spec(PruneSpec("nm", n=2, m=4)).text == "nm:2:4"


def test_a_model_without_batch_norms_cannot_be_slimmed():
    with pytest.raises(PruneError, match="no batch-norm layers"):
        pruned_copy(nn.Sequential(nn.Linear(4, 4)), "slimming:0.5")


def test_masks_and_zeros_mark_a_model_as_pruned():
    from torch.nn.utils import prune

    model = _model()
    assert not is_pruned(model)
    prune.l1_unstructured(model[0], "weight", amount=0.2)
    assert is_pruned(model)
    copy, _ = pruned_copy(model, "filters:0.2")  # existing masks are made permanent first
    assert not any(module._forward_pre_hooks for module in copy.modules())
