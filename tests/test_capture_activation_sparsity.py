"""Activation density is measured on the model: capture runs the exported program once and records the
share of nonzeros in the activation each layer reads (Eyeriss gates zero activations and run-length-codes
them off chip)."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from torch import nn

from codesign.capture import from_torch
from codesign.cli import main
from codesign.errors import CaptureError
from codesign.graph_report import workload_json


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 4, 1)).eval()


def layers_by_name(workload):
    return {layer.name: layer for layer in workload.layers}


def test_a_layer_after_a_relu_reads_about_half_zeros():
    layers = layers_by_name(from_torch(net(), (torch.randn(1, 3, 16, 16),)))
    assert 0.35 < layers["2"].input_density < 0.65


def test_a_layer_after_a_conv_without_activation_reads_dense_values():
    layers = layers_by_name(from_torch(net(), (torch.randn(1, 3, 16, 16),)))
    assert layers["0"].input_density == 1.0  # the random input
    assert layers["3"].input_density == 1.0


def test_the_density_is_the_exact_share_of_nonzeros_in_the_first_input():
    x = torch.randn(2, 3, 8, 8)
    model = net()
    with torch.no_grad():
        hidden = model[1](model[0](x))
    layers = layers_by_name(from_torch(model, (x,)))
    assert layers["2"].input_density == int(torch.count_nonzero(hidden)) / hidden.numel()
    assert layers["1"].input_density == 1.0  # the relu reads the conv output


def test_the_output_density_of_a_layer_is_the_input_density_of_its_consumer():
    layers = layers_by_name(from_torch(net(), (torch.randn(1, 3, 16, 16),)))
    assert layers["1"].output_density == layers["2"].input_density < 0.65  # the relu's zeros
    assert layers["0"].output_density == layers["1"].input_density == 1.0


def test_activation_inputs_replace_the_example_inputs_for_the_measurement_only():
    model = net()
    workload = from_torch(model, (torch.randn(1, 3, 8, 8),), activation_inputs=torch.zeros(1, 3, 8, 8))
    assert layers_by_name(workload)["0"].input_density == 0.0
    assert workload.input_shapes == ((1, 3, 8, 8),)


def test_a_stack_of_samples_is_measured_batch_by_batch():
    model = net()
    samples = torch.cat([torch.zeros(3, 3, 8, 8), torch.randn(1, 3, 8, 8)])
    workload = from_torch(model, (torch.randn(1, 3, 8, 8),), activation_inputs=samples)
    assert layers_by_name(workload)["0"].input_density == 0.25


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (torch.randn(1, 3, 9, 8), "have shape (1, 3, 9, 8); the model takes (1, 3, 8, 8)"),
        (torch.randn(3, 8, 8), "have shape (3, 8, 8)"),
        (torch.randn(1, 3, 8, 8, dtype=torch.float64), "are torch.float64"),
        ((torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)), "are 2 tensors; the model takes 1 inputs"),
        ("zeros", "must be a tensor"),
    ],
)
def test_activation_inputs_that_do_not_fit_the_model_are_a_one_line_capture_error(inputs, message):
    with pytest.raises(CaptureError) as info:
        from_torch(net(), (torch.randn(1, 3, 8, 8),), activation_inputs=inputs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_measurement_can_be_skipped_leaving_every_density_at_one():
    workload = from_torch(net(), (torch.randn(1, 3, 8, 8),), measure_activations=False)
    assert {layer.input_density for layer in workload.layers} == {1.0}


def test_an_exported_program_is_measured_on_its_own_example_inputs():
    model = net()
    program = torch.export.export(model, (torch.zeros(1, 3, 8, 8),))
    assert layers_by_name(from_torch(program))["0"].input_density == 0.0


def test_the_json_carries_the_input_density_of_every_layer_and_the_mac_total():
    workload = from_torch(net(), (torch.randn(1, 3, 16, 16),))
    document = workload_json(workload)
    densities = [layer["input_density"] for layer in document["layers"]]
    assert densities == [layer.input_density for layer in workload.layers]
    assert 0.5 < document["totals"]["mac_input_density"] < 1.0


def test_zoo_resnet_layers_after_a_relu_read_about_half_zeros_and_convs_feeding_a_norm_do_not():
    from codesign import zoo

    model, inputs = zoo.build("resnet18-cifar")
    workload = from_torch(model, inputs)
    graph = workload.graph
    after_relu, after_conv = [], []
    for layer in workload.layers:
        producers = [workload.layer(name) for name in graph.predecessors(layer.name)]
        if len(producers) != 1:
            continue
        if producers[0].op.has_macs:
            after_conv.append(layer.input_density)
        elif "aten.relu.default" in producers[0].aten and layer.op.has_macs:
            after_relu.append(layer.input_density)
    assert after_relu and after_conv
    assert all(0.2 < density < 0.8 for density in after_relu)
    assert all(density > 0.99 for density in after_conv)


# -- the command line ------------------------------------------------------------------------
MODEL_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn

    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))
    """
)


@pytest.fixture
def model_ref(tmp_path):
    path = tmp_path / "density_models.py"
    path.write_text(MODEL_SOURCE)
    return f"{path}:net"


def run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_inputs_option_measures_density_on_the_saved_tensor(model_ref, tmp_path, capsys):
    saved, report = tmp_path / "zeros.pt", tmp_path / "net.json"
    torch.save(torch.zeros(4, 3, 8, 8), saved)
    status, _, err = run(
        ["graph", model_ref, "--input-shape", "1,3,8,8", "--inputs", str(saved), "--json", str(report), "--quiet"], capsys
    )
    assert status == 0, err
    first = json.loads(report.read_text())["layers"][0]
    assert first["input_density"] == 0.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"not a torch file", "cannot read it with torch.load"),
        ({"x": 1}, "holds a dict, expected a tensor"),
        (torch.zeros(1, 3, 7, 8), "have shape (1, 3, 7, 8); the model takes (1, 3, 8, 8)"),
    ],
    ids=["missing", "garbage", "dict", "wrong-shape"],
)
def test_an_unreadable_or_wrong_inputs_file_is_one_error_line_and_exit_2(model_ref, tmp_path, capsys, content, message):
    path = tmp_path / "inputs.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    status, out, err = run(["graph", model_ref, "--input-shape", "1,3,8,8", "--inputs", str(path), "--quiet"], capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codesign: error: --inputs ")
    assert message in lines[0]
    assert "Traceback" not in out + err
