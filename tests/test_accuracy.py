"""`codesign.accuracy`: the fake-quantized model's outputs against float32, one behaviour per test."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from codesign.accuracy import (
    AccuracyError, accuracy_proxy, accuracy_sweep, fake_quantized, quantize_weight, sqnr_db,
)
from codesign.capture.precision import BitsPolicy
from codesign.errors import BitWidthError, CodesignError
from codesign.workload import Bits
from codesign.zoo import build


def _tiny() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """Conv-BN-ReLU, depthwise, 1x1, pool, linear: five MAC layers, trained-looking batch norms."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10),
    )
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 2.0)
            module.bias.data.uniform_(-0.5, 0.5)
    return model.eval(), (torch.randn(1, 3, 12, 12),)


@pytest.fixture(scope="module")
def mobilenet_sweep():
    model, inputs = build("mobilenetv2-cifar")
    return accuracy_sweep(model, inputs, [16, 8, 4, 2, 1], evaluation=32, reestimate_bn=True)


def test_proxy_falls_as_bits_fall_on_a_zoo_model(mobilenet_sweep):
    sqnr = [result.sqnr_db for result in mobilenet_sweep]
    agreement = [result.top1_agreement for result in mobilenet_sweep]
    assert sqnr[0] > sqnr[1] > sqnr[2] > sqnr[3], sqnr  # 16 > 8 > 4 > 2 bits
    assert sqnr[4] <= min(sqnr[:4]) + 1.0, sqnr  # 1 bit lowest, or within 1 dB of it
    assert agreement[0] >= 0.95, agreement
    for higher, lower in zip(agreement, agreement[1:]):
        assert lower <= higher + 0.05, agreement
    assert [result.bits for result in mobilenet_sweep] == ["16/16", "8/8", "4/4", "2/2", "1/1"]


def test_eight_bit_conv_weights_are_per_channel_symmetric():
    model, inputs = _tiny()
    model[0].weight.data[0, 0] = 0.0  # zeros must stay zeros
    quantized = fake_quantized(model, inputs, 8)
    weight, original = quantized[0].weight.detach(), model[0].weight.detach()
    scales = []
    for channel, float_channel in zip(weight, original):
        magnitudes = channel.abs().flatten()
        nonzero = magnitudes[magnitudes > 0]
        codes = magnitudes * 127 / magnitudes.max()  # the largest weight takes the top code, 2^7 - 1
        assert torch.allclose(codes, torch.round(codes), atol=1e-3)  # every value a whole multiple of one step
        assert len(torch.unique(nonzero)) <= 2**7 - 1
        assert torch.equal(channel == 0, (float_channel == 0) | (channel == 0))
        assert torch.allclose(channel, float_channel, atol=float(float_channel.abs().max()) / 127)
        scales.append(float(magnitudes.max()))
    assert torch.all(weight[0, 0] == 0)
    assert len(set(scales)) == weight.shape[0]  # one scale per output channel, not one per tensor
    assert torch.equal(weight, quantize_weight(original, 8))  # the copy runs exactly these weights


def test_one_bit_weights_take_plus_minus_mean_magnitude_per_channel():
    model, inputs = build("resnet18-cifar")
    quantized = fake_quantized(model, inputs, 1, calibration=2)
    weight, original = quantized.stages[0].conv1.weight.detach(), model.stages[0].conv1.weight.detach()
    for channel, float_channel in zip(weight, original):
        alpha = float(float_channel.abs().mean())
        values = torch.unique(channel)
        assert len(values) == 2
        assert torch.allclose(values, torch.tensor([-alpha, alpha]), rtol=1e-5)
        assert torch.equal(channel > 0, float_channel > 0)


def test_keep_ends_keeps_first_and_last_layers_at_eight_bits():
    model, inputs = _tiny()
    kept = fake_quantized(model, inputs, 1, keep_ends=8)
    binary = fake_quantized(model, inputs, 1)
    order = kept.codesign_layer_order
    assert (order[0], order[-1]) == ("0", "13")
    assert kept.codesign_layer_bits["0"] == (8, 8) and kept.codesign_layer_bits["13"] == (8, 8)
    assert all(kept.codesign_layer_bits[name] == (1, 1) for name in order[1:-1])
    assert torch.equal(kept[0].weight, quantize_weight(model[0].weight, 8))
    assert torch.equal(kept[3].weight, binary[3].weight)  # the middle stays binarized
    x = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        assert not torch.allclose(kept[0](x), binary[0](x))  # first layer: 8 bits, not 1
        assert not torch.allclose(kept[13](torch.rand(4, 16)), binary[13](torch.rand(4, 16)))
        assert not torch.allclose(kept(x), binary(x))
    result = accuracy_proxy(model, inputs, 1, keep_ends=8, evaluation=8)
    assert dict((name, (w, a)) for name, w, a in result.layer_bits)["13"] == (8, 8)
    assert result.bits == "1/1, ends 8/8"


def test_labels_give_top1_accuracy_of_both(tmp_path):
    model, inputs = _tiny()
    images = torch.randn(24, 3, 12, 12)
    with torch.no_grad():
        labels = model(images).argmax(dim=1)
    labels[:6] = (labels[:6] + 1) % 10  # a quarter of the labels disagree with float32
    result = accuracy_proxy(model, inputs, 4, inputs=images, labels=labels)
    assert result.float_top1_accuracy == pytest.approx(0.75)
    assert result.samples == 24 and result.top1_accuracy is not None
    path = tmp_path / "eval.pt"
    torch.save({"inputs": images, "labels": labels}, path)
    assert accuracy_proxy(model, inputs, 4, inputs=str(path)) == result
    torch.save((images, labels), path)
    assert accuracy_proxy(model, inputs, 4, inputs=path) == result
    assert accuracy_proxy(model, inputs, 4, evaluation=8).top1_accuracy is None


@pytest.mark.parametrize("content, message", [
    (b"not a torch file", "cannot read inputs file"),
    ("wrong shape", "does not fit the example input (1, 3, 12, 12)"),
    ("no inputs key", "a dict needs the inputs under one of"),
    ("missing", "does not exist"),
    ("bad labels", "5 labels for 4 inputs"),
])
def test_bad_inputs_file_is_a_one_line_error(tmp_path, content, message):
    model, inputs = _tiny()
    path = tmp_path / "inputs.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "wrong shape":
        torch.save(torch.randn(4, 3, 16, 16), path)
    elif content == "no inputs key":
        torch.save({"pictures": torch.randn(4, 3, 12, 12)}, path)
    elif content == "bad labels":
        torch.save((torch.randn(4, 3, 12, 12), torch.arange(5)), path)
    with pytest.raises(AccuracyError) as caught:
        accuracy_proxy(model, inputs, 8, inputs=path)
    assert isinstance(caught.value, CodesignError)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_callers_model_is_unchanged():
    model, inputs = _tiny()
    model[0].weight.data[0] = 0.0
    before = copy.deepcopy(model.state_dict())
    threads = torch.get_num_threads()
    accuracy_sweep(model, inputs, [8, 1], keep_ends=8, evaluation=8, reestimate_bn=True)
    fake_quantized(model, inputs, 2)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[key], after[key]) for key in before)
    assert not any(module._forward_pre_hooks for module in model.modules())
    assert not model.training
    assert model[0].weight.is_contiguous()
    assert torch.get_num_threads() == threads  # the sweep's one torch thread is given back


def test_results_are_deterministic_for_a_seed():
    model, inputs = _tiny()
    first = accuracy_sweep(model, inputs, [8, 4, 2], evaluation=16, seed=3)
    second = accuracy_sweep(model, inputs, [8, 4, 2], evaluation=16, seed=3)
    assert first == second
    other = accuracy_sweep(model, inputs, [8, 4, 2], evaluation=16, seed=4)
    assert [r.sqnr_db for r in other] != [r.sqnr_db for r in first]


def test_sweep_points_equal_single_proxies():
    model, inputs = _tiny()
    sweep = accuracy_sweep(model, inputs, [(4, 8), "2,4", Bits(8, 8)], evaluation=16)
    assert sweep == [accuracy_proxy(model, inputs, bits, evaluation=16) for bits in [(4, 8), "2,4", Bits(8, 8)]]
    assert [result.bits for result in sweep] == ["4/8", "2/4", "8/8"]


def test_float_point_is_exact_and_infinite_sqnr_serializes():
    model, inputs = _tiny()
    result = accuracy_proxy(model, inputs, 32, evaluation=8)
    assert result.sqnr_db == math.inf and result.top1_agreement == 1.0
    assert result.to_dict()["sqnr_db"] == "inf"
    assert sqnr_db(torch.ones(3), torch.zeros(3)) == 0.0


def test_per_layer_bits_from_a_policy_or_a_mapping():
    model, inputs = _tiny()
    policy = BitsPolicy(default=Bits(8, 8), by_kind={"depthwise_conv": Bits(2, 8)}, by_name={"13": Bits(4, 4)})
    result = accuracy_proxy(model, inputs, policy, keep_ends=8, evaluation=8)
    bits = {name: (w, a) for name, w, a in result.layer_bits}
    assert bits == {"0": (8, 8), "3": (2, 8), "6": (8, 8), "11": (8, 8), "13": (4, 4)}  # named: keep_ends yields
    mapped = accuracy_proxy(model, inputs, {"3": (1, 1)}, evaluation=8)
    assert {name: (w, a) for name, w, a in mapped.layer_bits}["3"] == (1, 1)
    assert {name: (w, a) for name, w, a in mapped.layer_bits}["0"] == (32, 32)  # unnamed: float32
    with pytest.raises(BitWidthError, match="no module named nope"):
        accuracy_proxy(model, inputs, {"nope": (4, 4)}, evaluation=8)
    with pytest.raises(BitWidthError, match="outside the supported range"):
        accuracy_proxy(model, inputs, 0, evaluation=8)


def test_pruned_weights_stay_zero_when_binarized():
    from torch.nn.utils import prune

    model, inputs = _tiny()
    prune.l1_unstructured(model[6], "weight", amount=0.5)  # a mask the caller keeps
    mask = model[6].weight_mask.clone()
    quantized = fake_quantized(model, inputs, 1)
    weight = quantized[6].weight.detach()
    assert torch.equal(weight == 0, mask == 0)
    for channel, float_channel in zip(weight, model[6].weight.detach()):
        alpha = float(float_channel[float_channel != 0].abs().mean())  # the mean over the surviving weights
        assert torch.allclose(channel[channel != 0].abs(), torch.tensor(alpha), rtol=1e-5)
    assert hasattr(model[6], "weight_mask") and model[6]._forward_pre_hooks  # the caller's pruning is intact
