"""Quantized models keep their own widths: Brevitas layers and PT2E quantize / dequantize ops, read with no flags."""

from __future__ import annotations

import dataclasses
import json
import textwrap
import warnings

import brevitas.nn as qnn
import pytest
import torch
from brevitas.quant import Int8ActPerTensorFloat, Int32Bias, SignedBinaryWeightPerTensorConst
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from codesign.capture import Bits, BitsPolicy, from_torch
from codesign.cli import main
from codesign.errors import CaptureError

INPUT = (1, 3, 12, 12)


class Float(nn.Module):
    """The float twin of ``Quantized``: the same layers without quantizers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


class Quantized(Float):
    """8-bit input, a conv with 4-bit weights, a 4-bit ReLU and a linear layer with 2-bit weights."""

    def __init__(self, conv_bits: int = 4, relu_bits: int = 4, fc_bits: int = 2, input_bits: int = 8) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=input_bits)
        self.conv = qnn.QuantConv2d(3, 8, 3, weight_bit_width=conv_bits)
        self.relu = qnn.QuantReLU(bit_width=relu_bits)
        self.fc = qnn.QuantLinear(8, 10, bias=True, weight_bit_width=fc_bits)

    def forward(self, x):
        return super().forward(self.inp(x))


def capture(model: nn.Module, **options):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Brevitas warns about defaults it fills in
        return from_torch(model, (torch.randn(INPUT),), **options)


def widths(workload) -> dict[str, tuple[int, int]]:
    return {layer.name: (layer.bits.weight, layer.bits.activation) for layer in workload.layers}


@pytest.fixture(scope="module")
def brevitas_net():
    torch.manual_seed(0)
    return Quantized().eval()


@pytest.fixture(scope="module")
def brevitas_workload(brevitas_net):
    return capture(brevitas_net)


def test_brevitas_layers_are_captured_at_their_own_widths_with_no_flags(brevitas_workload):
    bits = widths(brevitas_workload)
    assert bits["conv"] == (4, 8)  # 4-bit weights reading the 8-bit QuantIdentity's output
    assert bits["relu"][1] == 4  # QuantReLU quantizes its output to 4 bits
    assert bits["fc"] == (2, 4)  # 2-bit weights reading the 4-bit ReLU output through pooling and a flatten


def test_brevitas_quantizers_are_no_layers_and_no_unsupported_ops(brevitas_workload):
    float_workload = capture(Float().eval())
    assert [(layer.name, layer.op) for layer in brevitas_workload.layers] == [
        (layer.name, layer.op) for layer in float_workload.layers
    ]
    assert [layer.macs for layer in brevitas_workload.layers] == [layer.macs for layer in float_workload.layers]
    assert brevitas_workload.unsupported == ()
    assert [layer.params for layer in brevitas_workload.layers] == [layer.params for layer in float_workload.layers]


@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(conv=st.integers(2, 8), relu=st.integers(2, 8), fc=st.integers(2, 8))
def test_the_widths_read_are_the_widths_the_layers_were_built_with(conv, relu, fc):
    bits = widths(capture(Quantized(conv_bits=conv, relu_bits=relu, fc_bits=fc).eval()))
    assert (bits["conv"][0], bits["relu"][1], bits["fc"]) == (conv, relu, (fc, relu))


@pytest.mark.slow
def test_an_exported_brevitas_program_is_read_from_its_graph_as_from_its_modules(brevitas_net):
    class Mixed(nn.Module):  # input quantized by the layer itself, and binary weights
        def __init__(self) -> None:
            super().__init__()
            self.conv = qnn.QuantConv2d(3, 8, 3, weight_bit_width=5, input_quant=Int8ActPerTensorFloat, bias=False)
            self.relu = qnn.QuantReLU(bit_width=3)
            self.binary = qnn.QuantConv2d(8, 8, 3, weight_quant=SignedBinaryWeightPerTensorConst, bias=False)

        def forward(self, x):
            return self.binary(self.relu(self.conv(x)))

    from codesign.capture.quantized import exportable

    for model in (brevitas_net, Mixed().eval()):
        from_module = capture(model)
        with exportable(model), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(model, (torch.randn(INPUT),))
        assert widths(from_torch(program, (torch.randn(INPUT),))) == widths(from_module)
    assert widths(from_module)["conv"] == (5, 8) and widths(from_module)["binary"] == (1, 3)


def test_explicit_bits_win_over_the_models_own_widths(brevitas_net):
    assert set(widths(capture(brevitas_net, bits=Bits(6, 6))).values()) == {(6, 6)}
    by_kind = widths(capture(brevitas_net, bits=BitsPolicy(by_kind={"linear": Bits(3, 3)}, explicit=False)))
    assert by_kind["fc"] == (3, 3) and by_kind["conv"] == (4, 8)  # the override, and the model's own elsewhere


def test_the_models_own_widths_win_over_the_accelerators(brevitas_net):
    bits = capture(brevitas_net, arch="eyeriss")
    assert widths(bits)["conv"] == (4, 8)
    assert bits.layer("conv").bits.accumulator == 16  # what the model does not say comes from eyeriss's PEs
    assert {layer.bits for layer in capture(Float().eval(), arch="eyeriss").layers} == {Bits(16, 16, 16)}


def test_a_brevitas_bias_at_its_inputs_scale_is_a_one_line_capture_error():
    model = qnn.QuantConv2d(3, 8, 3, weight_bit_width=4, input_quant=Int8ActPerTensorFloat, bias_quant=Int32Bias).eval()
    with pytest.raises(CaptureError, match="Int8BiasPerTensorFloatInternalScaling") as error:
        capture(model)
    assert "\n" not in str(error.value)


def pt2e_quantized(weight_bits: int | None = None) -> torch.fx.GraphModule:
    """``Float`` through torchao's PT2E flow (X86 inductor quantizer), its weights at ``weight_bits`` if given."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    torch.manual_seed(0)
    example = (torch.randn(INPUT),)
    config = get_default_x86_inductor_quantization_config()
    if weight_bits is not None:
        low, high = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
        config = dataclasses.replace(config, weight=dataclasses.replace(config.weight, quant_min=low, quant_max=high))
    quantizer = X86InductorQuantizer().set_global(config)
    prepared = prepare_pt2e(torch.export.export(Float().eval(), example).module(), quantizer)
    prepared(*example)  # calibration
    return convert_pt2e(prepared)


@pytest.fixture(scope="module")
def pt2e_workload():
    return capture(pt2e_quantized(), arch="eyeriss")  # eyeriss: 16-bit PEs, so 8 bits can only be the model's


def test_pt2e_layers_are_8_bit_and_quantize_dequantize_ops_are_no_layers(pt2e_workload):
    float_workload = capture(Float().eval())
    assert [(layer.name, layer.op, layer.macs) for layer in pt2e_workload.layers] == [
        (layer.name, layer.op, layer.macs) for layer in float_workload.layers
    ]
    assert {name: bits for name, bits in widths(pt2e_workload).items() if name in ("conv", "fc")} == {
        "conv": (8, 8), "fc": (8, 8)}
    assert pt2e_workload.unsupported == ()
    assert not [op for layer in pt2e_workload.layers for op in layer.aten if "quantize" in op]


def test_pt2e_weights_kept_as_buffers_count_as_the_models_parameters(pt2e_workload):
    float_model = Float()
    assert sum(layer.params for layer in pt2e_workload.layers) == sum(p.numel() for p in float_model.parameters())
    assert {layer.name: layer.params for layer in pt2e_workload.layers if layer.params} == {
        "conv": float_model.conv.weight.numel() + float_model.conv.bias.numel(),
        "fc": float_model.fc.weight.numel() + float_model.fc.bias.numel()}


def test_pt2e_weight_width_is_read_from_the_quantizers_range():
    assert widths(capture(pt2e_quantized(weight_bits=4)))["conv"] == (4, 8)


BREVITAS_FILE = textwrap.dedent(
    """
    import torch
    import brevitas.nn as qnn
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(bit_width=8)
            self.conv = qnn.QuantConv2d(3, 8, 3, weight_bit_width=4)
            self.relu = qnn.QuantReLU(bit_width=4)
            self.fc = qnn.QuantLinear(8 * 10 * 10, 10, bias=True, weight_bit_width=2)

        def forward(self, x):
            return self.fc(torch.flatten(self.relu(self.conv(self.inp(x))), 1))

    def net():
        torch.manual_seed(0)
        return Net().eval(), (torch.randn(1, 3, 12, 12),)
    """
)


@pytest.fixture(scope="module")
def brevitas_ref(tmp_path_factory):
    path = tmp_path_factory.mktemp("brevitas") / "brevitas_net.py"
    path.write_text(BREVITAS_FILE)
    return f"{path}:net"


def graph_json(ref, tmp_path, *flags):
    out = tmp_path / "graph.json"
    assert main(["graph", ref, "--json", str(out), "--quiet", *flags]) == 0
    return {layer["name"]: layer["bits"] for layer in json.loads(out.read_text())["layers"]}


def test_codesign_graph_shows_a_brevitas_models_widths_with_no_flags(brevitas_ref, tmp_path, capsys):
    bits = graph_json(brevitas_ref, tmp_path)
    assert (bits["conv"]["weight"], bits["conv"]["activation"]) == (4, 8)
    assert (bits["fc"]["weight"], bits["fc"]["activation"]) == (2, 4)
    assert main(["graph", brevitas_ref]) == 0
    assert "  4/8  " in capsys.readouterr().out  # the table's W/A bits column


def test_codesign_graph_bits_flag_wins_over_the_models_widths(brevitas_ref, tmp_path):
    bits = graph_json(brevitas_ref, tmp_path, "--bits", "6,6")
    assert {(item["weight"], item["activation"]) for item in bits.values()} == {(6, 6)}


def test_sim_of_a_brevitas_model_notes_each_width_mismatch_with_the_pes(brevitas_ref, tmp_path):
    out = tmp_path / "sim.json"
    assert main(["sim", brevitas_ref, "--arch", "fpga-4x4", "--dataflow", "ws", "--json", str(out), "--quiet"]) == 0
    notes = {layer["name"]: " ".join(layer["notes"]) for layer in json.loads(out.read_text())["layers"]}
    assert "4x8-bit" in notes["conv"] and "2x4-bit" in notes["fc"]


def test_a_bad_layer_override_on_a_quantized_model_is_one_line_and_exit_2(brevitas_ref, capsys):
    assert main(["graph", brevitas_ref, "--layer-bits", "nope=4,4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("codesign: error: no layer named nope") and "\n" not in err
