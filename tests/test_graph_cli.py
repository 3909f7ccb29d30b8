"""``codesign graph``: table and totals on stdout, JSON / GraphML files, one-line errors with exit 2."""

from __future__ import annotations

import json
import textwrap

import networkx as nx
import pytest
import torch

from codesign.capture.reference import flop_counter_macs
from codesign.cli import main

MODEL_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            x = torch.relu(self.conv(x))
            n, c, h, w = x.shape
            x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
            x = self.dw(x)
            return self.fc(x.mean((2, 3)))

    def net():
        torch.manual_seed(0)
        return Net()

    def pruned():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(8, 4, 1))
        with torch.no_grad():
            model[0].weight[[2, 5]] = 0  # two dead channels: K 8->6 here, C 8->6 in the consumer
        return model

    def untraceable():
        class Branchy(nn.Module):
            def forward(self, x):
                return x * 2 if x.sum() > 0 else x
        return Branchy()
    """
)


@pytest.fixture
def model_ref(tmp_path):
    path = tmp_path / "cli_models.py"
    path.write_text(MODEL_SOURCE)
    return str(path)


def run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_graph_prints_layers_and_writes_json_and_graphml(model_ref, tmp_path, capsys):
    json_path, graphml_path = tmp_path / "net.json", tmp_path / "net.graphml"
    status, out, err = run(
        ["graph", f"{model_ref}:net", "--input-shape", "1,3,8,8", "--json", str(json_path), "--graphml", str(graphml_path)],
        capsys,
    )
    assert status == 0, err
    assert "channel_shuffle" in out and "totals" in out
    document = json.loads(json_path.read_text())
    assert (document["format"], document["version"]) == ("codesign.workload", 1)
    assert document["model"] == "cli_models:net"
    assert document["input_shapes"] == [[1, 3, 8, 8]]
    first = document["layers"][0]
    assert {"name", "op", "macs", "params", "dims", "bits", "input_bytes", "weight_bytes", "output_bytes"} <= set(first)
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli_models_check", model_ref)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.net().eval()
    total, _ = flop_counter_macs(model, (torch.randn(1, 3, 8, 8),))
    assert document["totals"]["macs"] == sum(layer["macs"] for layer in document["layers"]) == total
    assert document["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert document["unsupported"] == []
    graph = nx.read_graphml(graphml_path)
    assert list(graph.nodes) == [layer["name"] for layer in document["layers"]]
    assert all(layer_in in graph for layer in document["layers"] for layer_in in layer["inputs"])


def test_bits_options_reach_every_layer(model_ref, tmp_path, capsys):
    json_path = tmp_path / "bits.json"
    status, _, err = run(
        ["graph", f"{model_ref}:net", "--input-shape", "1,3,8,8", "--bits", "4,6", "--kind-bits", "depthwise_conv=8,8",
         "--layer-bits", "fc=1,1,16", "--json", str(json_path), "--quiet"],
        capsys,
    )
    assert status == 0, err
    bits = {layer["name"]: layer["bits"] for layer in json.loads(json_path.read_text())["layers"]}
    assert (bits["conv"]["weight"], bits["conv"]["activation"]) == (4, 6)
    assert (bits["dw"]["weight"], bits["dw"]["activation"]) == (8, 8)
    assert bits["fc"] == {"weight": 1, "activation": 1, "accumulator": 16, "binarized": True}


def test_no_fold_keeps_every_view(model_ref, tmp_path, capsys):
    folded, unfolded = tmp_path / "folded.json", tmp_path / "unfolded.json"
    base = ["graph", f"{model_ref}:net", "--input-shape", "1,3,8,8", "--quiet"]
    assert run(base + ["--json", str(folded)], capsys)[0] == 0
    assert run(base + ["--no-fold", "--json", str(unfolded)], capsys)[0] == 0
    assert json.loads(folded.read_text())["folding"] == {"views": True}
    assert json.loads(unfolded.read_text())["folding"] == {"views": False}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["zoo:no-such-model"], "unknown zoo model"),
        (["missing_file.py:net"], "does not exist"),
        (["{ref}:nothing", "--input-shape", "1,3,8,8"], "no factory named"),
        (["{ref}:untraceable", "--input-shape", "4"], "torch.export cannot capture"),
        (["{ref}:net", "--input-shape", "1,5,8,8"], "does not run on inputs of shape (1, 5, 8, 8)"),
        (["{ref}:net", "--input-shape", "1,x,8"], "--input-shape"),
        (["{ref}:net", "--input-shape", "1,3,8,8", "--bits", "0,8"], "outside the supported range 1..32"),
        (["{ref}:net", "--input-shape", "1,3,8,8", "--bits", "8,33"], "outside the supported range 1..32"),
        (["{ref}:net", "--input-shape", "1,3,8,8", "--layer-bits", "nope=4,4"], "no layer named nope"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(model_ref, capsys, args, message):
    status, out, err = run(["graph"] + [item.format(ref=model_ref) for item in args], capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codesign: error: ")
    assert message in lines[0]
    assert "Traceback" not in out + err


def test_json_path_that_cannot_be_written_leaves_no_file(model_ref, tmp_path, capsys):
    target = tmp_path / "missing_folder" / "out.json"
    status, _, err = run(["graph", f"{model_ref}:net", "--input-shape", "1,3,8,8", "--json", str(target)], capsys)
    assert status == 2 and "cannot write" in err
    assert not target.parent.exists()
    status, _, err = run(["graph", f"{model_ref}:net", "--input-shape", "1,3,8,8", "--json", str(tmp_path)], capsys)
    assert status == 2 and "is a directory" in err
    assert sorted(item.name for item in tmp_path.iterdir()) == ["cli_models.py"]


def test_failed_json_write_after_capture_leaves_no_partial_file(model_ref, tmp_path, capsys, monkeypatch):
    import codesign.graph_report as graph_report

    def exploding(*args, **kwargs):
        raise OSError(28, "No space left on device")

    target = tmp_path / "out.json"
    monkeypatch.setattr(graph_report.json, "dumps", lambda *a, **k: "{" + "x" * 100)
    monkeypatch.setattr("os.replace", exploding)
    status, _, err = run(["graph", f"{model_ref}:net", "--input-shape", "1,3,8,8", "--json", str(target)], capsys)
    assert status == 2 and "No space left on device" in err
    assert sorted(item.name for item in tmp_path.iterdir()) == ["cli_models.py"]


def test_the_table_shows_dense_and_effective_dims_side_by_side_for_pruned_layers(model_ref, tmp_path, capsys):
    json_path = tmp_path / "pruned.json"
    status, out, err = run(["graph", f"{model_ref}:pruned", "--input-shape", "1,3,8,8", "--json", str(json_path)], capsys)
    assert status == 0, err
    assert "effective" in out and "K 8->6" in out and "C 8->6" in out and "2 dead" in out
    assert "in density" in out and "MAC in density" in out
    first, relu, consumer = json.loads(json_path.read_text())["layers"]
    assert (first["dims"]["k"], first["effective_dims"]["k"], first["dead_channels"]) == (8, 6, 2)
    assert (consumer["dims"]["c"], consumer["effective_dims"]["c"]) == (8, 6)
    assert consumer["dead_input_channels"] == [2, 5]
    assert 0.2 < consumer["input_density"] < 0.6  # after the relu, with two dead channels


def test_the_effective_column_names_only_the_dims_pruning_changed():
    from codesign.graph_report import effective_text
    from codesign.workload import ConvDims, Layer, OpKind

    dims = ConvDims(n=1, k=8, c=8, p=4, q=4, r=3, s=3, h=4, w=4)
    dense = Layer(name="conv", op=OpKind.CONV, aten=(), input_shapes=(), output_shape=(), dims=dims)
    assert effective_text(dense) == ""
    pruned = Layer(name="conv", op=OpKind.CONV, aten=(), input_shapes=(), output_shape=(), dims=dims,
                   effective_dims=ConvDims(n=1, k=4, c=6, p=4, q=4, r=3, s=3, h=4, w=4))
    assert effective_text(pruned) == "K 8->4, C 8->6"
