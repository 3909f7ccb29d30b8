"""The integer reference on the three networks: its output's SQNR against the float model, calibration shared
with the accuracy proxy, and steps computed from their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codesign.integer.reference import build_integer_net, conv_accumulate, evaluate, quantize_input
from codesign.integer.scheme import dequantize, quantize
from codesign.zoo.system_nets import NETS

# Measured on these seeded nets (8 seeded inputs, batch norms re-estimated on the calibration inputs as the
# accuracy proxy does for random models): resnet 36.2 dB, mobilenet 40.6 dB, lut 42.0 dB.
SQNR_BOUND_DB = {"resnet": 33.0, "mobilenet": 37.0, "lut": 38.0}


@pytest.fixture(scope="module")
def nets():
    return {name: build_integer_net(*factory(), reestimate_bn=True) + (factory,) for name, factory in NETS.items()}


@pytest.mark.parametrize("name", list(NETS))
def test_integer_reference_tracks_the_float_model(nets, name):
    net, prepared, _ = nets[name]
    inputs = torch.randn(8, *prepared.example_inputs[0].shape[1:], generator=torch.Generator().manual_seed(0))
    result = evaluate(net, prepared.program.module(), (inputs,))
    assert result.samples == 8
    assert result.sqnr_db > SQNR_BOUND_DB[name]


@pytest.mark.parametrize("name", list(NETS))
def test_the_first_layer_sees_the_input_quantized_as_the_accuracy_proxy_quantizes_it(nets, name):
    from codesign.accuracy import fake_quantized

    net, prepared, factory = nets[name]
    model, example = factory()
    proxy = fake_quantized(model, example, 8, reestimate_bn=True)
    first = proxy.codesign_layer_order[0]
    seen = []
    dict(proxy.named_modules())[first].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.randn(2, *example[0].shape[1:], generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        proxy(x)
    ours = dequantize(quantize(x.numpy(), net.input_qparams), net.input_qparams)
    assert np.allclose(seen[0].numpy(), ours, rtol=0, atol=1e-6)


def test_the_nets_have_ragged_channels(nets):
    widths = {q.weight.shape[0] for name in nets for q in nets[name][0].steps if q.kind == "mac"}
    assert any(width % 8 for width in widths) and any(width > 8 for width in widths)


def test_the_networks_cover_every_kind_of_step(nets):
    kinds = {q.kind for name in nets for q in nets[name][0].steps}
    assert kinds == {"mac", "add", "act", "maxpool", "avgpool", "alias"}
    tables = {q.step.activation.lut_name for name in nets for q in nets[name][0].steps if q.tail.table is not None}
    assert {"gelu", "hardswish", "silu"} <= tables
    groups = {q.step.geometry.groups for name in nets for q in nets[name][0].steps if q.kind == "mac"}
    assert max(groups) > 1  # the depthwise conv


def test_an_integer_conv_is_the_float_conv_of_its_codes():
    generator = np.random.default_rng(7)
    x = generator.integers(-128, 128, size=(2, 6, 7, 5))
    w = generator.integers(-127, 128, size=(4, 3, 3, 2))
    bias = generator.integers(-1000, 1000, size=4)
    acc = conv_accumulate(x, -3, w, bias, (2, 1), (1, 0), (1, 2), groups=2)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x + 3).double(), torch.from_numpy(w).double(),
                                          torch.from_numpy(bias).double(), stride=(2, 1), padding=(1, 0),
                                          dilation=(1, 2), groups=2)
    assert np.array_equal(acc, expected.numpy().astype(np.int64))


def test_input_codes_follow_the_input_quantization(nets):
    net = nets["lut"][0]
    x = np.linspace(-5, 5, 3 * 16 * 16).reshape(1, 3, 16, 16)
    codes = quantize_input(net, x)
    assert codes.min() >= -128 and codes.max() <= 127
    assert np.abs(dequantize(codes, net.input_qparams) - np.clip(x, *net.input_qparams.real_range())).max() \
        <= net.input_qparams.scale / 2 + 1e-12
