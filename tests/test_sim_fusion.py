"""Fusion of batch norm and activations into their producer, and activations kept in the global buffer."""

from __future__ import annotations

import json
import math

import networkx as nx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from codesign.capture import aten_ops
from codesign.errors import MappingError
from codesign.workload import Bits, Layer, OpKind, Workload, bytes_at
from sim.engine import simulate
from test_sim_factories import conv_layer, gemm_layer, make_arch, small_arch, small_conv

SETTINGS = dict(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTIONS = [dict(fuse=f, onchip_activations=o) for f in (False, True) for o in (False, True)]


def _elementwise(name, shape, aten, op=OpKind.ELEMENTWISE, inputs=1, params=0, ops_per_value=1, bits=Bits()) -> Layer:
    """A vector layer of one aten op, ``fusable`` as capture would set it (``aten_ops.fusable``)."""
    elements = math.prod(shape)
    return Layer(name=name, op=op, aten=(f"aten.{aten}.default",), input_shapes=(shape,) * inputs, output_shape=shape,
                 elementwise_ops=elements * ops_per_value, params=params, bits=bits,
                 input_bytes=inputs * bytes_at(elements, bits.activation), weight_bytes=bytes_at(params, bits.weight),
                 output_bytes=bytes_at(elements, bits.activation), fusable=aten_ops.fusable(op, {aten}, inputs))


def batch_norm(name, shape, bits=Bits()) -> Layer:
    return _elementwise(name, shape, "batch_norm", op=OpKind.NORM, params=2 * shape[1], bits=bits)


def relu(name, shape, aten="relu", bits=Bits()) -> Layer:
    return _elementwise(name, shape, aten, bits=bits)


def add(name, shape) -> Layer:
    return _elementwise(name, shape, "add", inputs=2)


def network(layers, edges) -> Workload:
    graph = nx.DiGraph()
    graph.add_nodes_from(layer.name for layer in layers)
    graph.add_edges_from(edges)
    return Workload(model="test", layers=tuple(layers), graph=graph)


def residual_block(conv: Layer) -> Workload:
    """conv -> bn -> relu -> 1x1 conv -> bn -> add(relu, bn) -> relu: the ResNet pattern."""
    d = conv.dims
    shape = conv.output_shape
    conv2 = conv_layer(name="conv2", n=d.n, k=d.k, c=d.k, h=d.p, w=d.q, r=1, s=1, pad=0)
    layers = [conv, batch_norm("bn1", shape), relu("relu1", shape), conv2, batch_norm("bn2", shape),
              add("add", shape), relu("relu2", shape)]
    edges = [(conv.name, "bn1"), ("bn1", "relu1"), ("relu1", "conv2"), ("conv2", "bn2"), ("bn2", "add"),
             ("relu1", "add"), ("add", "relu2")]
    return network(layers, edges)


def _simulate(work, arch, flow, **options):
    try:
        return simulate(work, arch, flow, **options)
    except MappingError:
        assume(False)  # nothing fits this random buffer: covered by the mapper's error tests


@pytest.mark.parametrize("flow", ["ws", "os", "rs"])
@settings(**SETTINGS)
@given(conv=small_conv(name="conv"), arch=small_arch())
def test_fusion_and_residency_never_change_macs_and_never_cost_cycles_or_dram_bytes(flow, conv, arch):
    work = residual_block(conv)
    off = _simulate(work, arch, flow, fuse=False, onchip_activations=False)
    for options in OPTIONS[1:]:
        on = _simulate(work, arch, flow, **options)
        assert [layer.macs for layer in on.layers] == [layer.macs for layer in off.layers]
        assert on.cycles <= off.cycles
        assert on.dram_bytes <= off.dram_bytes


@pytest.mark.parametrize("flow", ["ws", "os", "rs"])
@settings(**SETTINGS)
@given(conv=small_conv(name="conv"), arch=small_arch())
def test_every_invariant_holds_with_fusion_and_residency(flow, conv, arch):
    result = _simulate(residual_block(conv), arch, flow)
    for layer in result.layers:
        assert layer.cycles >= layer.roofline_cycles >= math.ceil(layer.macs / arch.pes)
        assert layer.cycles == layer.compute_cycles + layer.stall_cycles
        assert layer.stall_cycles == layer.dram_stall_cycles + layer.glb_stall_cycles + layer.lane_stall_cycles >= 0
        assert layer.dram_bytes >= layer.compulsory_dram_bytes
        for level, operands in layer.bits_moved.items():
            for operand, bits in operands.items():
                assert layer.energy_pj[level][operand] == pytest.approx(bits * arch.energy_per_bit(level))
    assert result.cycles == sum(layer.cycles for layer in result.layers)
    assert result.dram_bytes == sum(layer.dram_bytes for layer in result.layers)
    assert result.energy_pj == pytest.approx(sum(layer.total_energy_pj for layer in result.layers))


def test_conv_bn_relu_runs_as_one_layer_and_keeps_the_element_energy():
    arch = make_arch(rows=4, cols=4, glb_bytes=8192)
    work = residual_block(conv_layer(k=4, c=3, h=6, w=6))
    result = simulate(work, arch, "os")
    by = {layer.name: layer for layer in result.layers}
    assert by["conv"].fused == ("bn1", "relu1") and by["conv2"].fused == ("bn2",)
    for name, producer in (("bn1", "conv"), ("relu1", "conv"), ("bn2", "conv2")):
        assert by[name].fused_into == producer
        assert by[name].cycles == 0
        ops = work.layer(name).elementwise_ops
        assert by[name].energy_pj["mac"] == pytest.approx(ops * arch.energy.mac_pj(8, 8))
    # Batch-norm parameters are read once; the intermediate tensors never touch DRAM.
    assert by["bn1"].dram_bytes == work.layer("bn1").weight_bytes
    assert by["relu1"].dram_bytes == 0
    # A residual add reads two activations: it is no activation and runs on its own.
    assert by["add"].fused_into is None and by["add"].cycles > 0


def test_a_batch_norm_after_a_conv_with_two_consumers_is_not_fused():
    conv = conv_layer(k=4, c=3, h=6, w=6)
    shape = conv.output_shape
    work = network([conv, batch_norm("bn", shape), relu("side", shape)], [("conv", "bn"), ("conv", "side")])
    result = simulate(work, make_arch(glb_bytes=8192), "ws")
    assert all(layer.fused_into is None for layer in result.layers)
    assert result.layers[0].fused == ()


def test_layer_norm_and_precision_changes_are_not_fused():
    fc = gemm_layer(name="fc", m=4, k=8, n=6)
    shape = fc.output_shape
    layer_norm = _elementwise("ln", shape, "layer_norm", op=OpKind.NORM, params=12)
    narrower = relu("act", shape, bits=Bits(activation=4))
    for follower in (layer_norm, narrower):
        result = simulate(network([fc, follower], [("fc", follower.name)]), make_arch(glb_bytes=8192), "ws")
        assert result.layers[1].fused_into is None


def test_the_helpers_mark_fusable_layers_as_capture_does():
    shape = (1, 4, 6, 6)
    assert batch_norm("bn", shape).fusable and relu("r", shape).fusable and relu("g", shape, aten="gelu").fusable
    assert not add("a", shape).fusable
    assert not _elementwise("ln", shape, "layer_norm", op=OpKind.NORM).fusable


def test_only_the_layers_fusable_flag_decides_fusion_not_its_aten_names():
    import dataclasses

    conv = conv_layer(k=4, c=3, h=6, w=6)
    shape = conv.output_shape
    arch = make_arch(glb_bytes=8192)
    for follower, fuses in ((dataclasses.replace(relu("act", shape), fusable=False), False),
                            (dataclasses.replace(_elementwise("act", shape, "add"), fusable=True), True)):
        result = simulate(network([conv, follower], [("conv", "act")]), arch, "ws")
        assert (result.layers[1].fused_into == "conv") is fuses


def test_gelu_after_a_linear_layer_fuses():
    fc = gemm_layer(name="fc", m=4, k=8, n=6)
    work = network([fc, relu("gelu", fc.output_shape, aten="gelu")], [("fc", "gelu")])
    assert simulate(work, make_arch(glb_bytes=8192), "ws").layers[1].fused_into == "fc"


@settings(**SETTINGS)
@given(channels=st.integers(1, 24), side=st.integers(2, 16), glb=st.sampled_from([512, 1024, 4096, 16384]))
def test_a_tensor_bigger_than_the_global_buffer_never_stays_on_chip(channels, side, glb):
    first = conv_layer(name="a", k=channels, c=2, h=side, w=side, r=1, s=1, pad=0)
    second = conv_layer(name="b", k=2, c=channels, h=side, w=side, r=1, s=1, pad=0)
    work = network([first, second], [("a", "b")])
    result = _simulate(work, make_arch(glb_bytes=glb), "ws")
    a, b = result.layers
    if first.output_bytes > glb:
        assert not a.output_onchip and b.onchip_inputs == ()
    assert a.output_onchip == (b.onchip_inputs == ("a",))
    if a.output_onchip:  # neither writes nor reads the tensor from DRAM
        assert a.accesses["dram"]["output"] == 0 and b.accesses["dram"]["input"] == 0


def test_compulsory_traffic_is_network_inputs_weights_and_outputs_when_activations_stay_on_chip():
    conv = conv_layer(k=4, c=3, h=6, w=6)
    work = residual_block(conv)
    result = simulate(work, make_arch(glb_bytes=8192), "os", fuse=False)
    assert all(layer.output_onchip for layer in result.layers[:-1])
    weights = sum(layer.weight_bytes for layer in work.layers)
    assert result.compulsory_dram_bytes == conv.input_bytes + weights + work.layers[-1].output_bytes
    assert result.dram_bytes == result.compulsory_dram_bytes


def test_with_both_off_every_layer_costs_what_it_costs_alone():
    """Off reproduces the layer-by-layer model: each layer reads its inputs from DRAM and writes its output back."""
    arch = make_arch(rows=4, cols=4, glb_bytes=4096)
    work = residual_block(conv_layer(k=4, c=3, h=6, w=6))
    whole = simulate(work, arch, "ws", fuse=False, onchip_activations=False)
    for layer, result in zip(work.layers, whole.layers):
        alone = simulate(network([layer], []), arch, "ws").layers[0]
        assert result.to_dict() == alone.to_dict()
    assert whole.to_dict()["options"] == {"fuse": False, "onchip_activations": False}


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """The CLI on a small residual model with each option switched off, and the JSON of each run."""
    from codesign.cli import main

    folder = tmp_path_factory.mktemp("fusion")
    model = folder / "block_model.py"
    model.write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Block(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)\n        self.bn1 = nn.BatchNorm2d(8)\n"
        "        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)\n        self.bn2 = nn.BatchNorm2d(8)\n"
        "    def forward(self, x):\n"
        "        y = torch.relu(self.bn1(self.conv1(x)))\n"
        "        return torch.relu(y + self.bn2(self.conv2(y)))\n\n"
        "def block():\n    return Block().eval(), (torch.randn(1, 3, 8, 8),)\n")
    docs = {}
    for flags in ((), ("--no-fuse",), ("--no-onchip-activations",), ("--no-fuse", "--no-onchip-activations")):
        out = folder / f"run{len(docs)}.json"
        status = main(["sim", f"{model}:block", "--arch", "fpga-4x4", "--dataflow", "os", "--json", str(out), "--quiet",
                       *flags])
        assert status == 0
        docs[flags] = json.loads(out.read_text())
    return f"{model}:block", docs


def test_results_json_names_fused_layers_and_the_tensors_kept_on_chip(cli_runs):
    _, docs = cli_runs
    layers = docs[()]["layers"]
    assert docs[()]["options"] == {"fuse": True, "onchip_activations": True}
    fused = [layer for layer in layers if layer["fused_into"]]
    assert {layer["op"] for layer in fused} == {"norm", "elementwise"}
    producers = {layer["name"]: layer for layer in layers if layer["fused"]}
    for layer in fused:
        assert layer["name"] in producers[layer["fused_into"]]["fused"] and layer["cycles"] == 0
    assert any(layer["output_onchip"] for layer in layers)
    assert any(layer["onchip_inputs"] for layer in layers)
    assert not layers[-1]["output_onchip"]  # the network's output goes to DRAM


def test_cli_switches_reproduce_the_engine_with_the_option_off(cli_runs):
    from codesign.arch_loader import load_arch
    from codesign.capture import from_torch
    from codesign.model_ref import load_model

    ref, docs = cli_runs
    name, model, inputs = load_model(ref, None)
    work = from_torch(model, inputs, name=name)
    arch = load_arch("fpga-4x4")
    for flags, options in (((), {}), (("--no-fuse",), dict(fuse=False)),
                           (("--no-onchip-activations",), dict(onchip_activations=False)),
                           (("--no-fuse", "--no-onchip-activations"), dict(fuse=False, onchip_activations=False))):
        assert docs[flags] == json.loads(json.dumps(simulate(work, arch, "os", **options).to_dict()))
    assert not any(layer["fused_into"] for layer in docs[("--no-fuse",)]["layers"])
    assert not any(layer["output_onchip"] for layer in docs[("--no-onchip-activations",)]["layers"])
    off = docs[("--no-fuse", "--no-onchip-activations")]["totals"]
    assert docs[()]["totals"]["cycles"] < off["cycles"] and docs[()]["totals"]["dram_bytes"] < off["dram_bytes"]


@st.composite
def tensor_network(draw):
    """A chain of vector layers of random sizes with random skip connections, and random working sets."""
    count = draw(st.integers(2, 9))
    sizes = [draw(st.integers(1, 64)) for _ in range(count)]
    layers, edges = [], []
    for i, size in enumerate(sizes):
        preds = [] if i == 0 else sorted({i - 1, draw(st.integers(0, i - 1))})
        edges += [(f"t{j}", f"t{i}") for j in preds]
        shape = (1, size)
        layers.append(Layer(name=f"t{i}", op=OpKind.ELEMENTWISE, aten=("aten.add.Tensor",),
                            input_shapes=(shape,) * max(1, len(preds)), output_shape=shape, elementwise_ops=size,
                            input_bytes=sum(sizes[j] for j in preds) or size, output_bytes=size))
    working = {f"t{i}": draw(st.integers(0, 64)) * 8 for i in range(count)}
    return network(layers, edges), working, draw(st.integers(16, 160)) * 8


@settings(max_examples=60, deadline=None)
@given(case=tensor_network())
def test_resident_tensors_and_working_sets_never_overflow_the_buffer(case):
    from sim.residency import plan_residency, tensor_sources

    work, working, capacity = case
    sources = tensor_sources(work, {}, lambda layer: False)
    plan = plan_residency(work, {}, sources, working, capacity, lambda layer: True)
    steps = list(sources)
    for s, step in enumerate(steps):
        live = [p for p in plan.onchip
                if steps.index(p) <= s <= max(steps.index(c) for c in plan.tensors[p].consumers)]
        if live:
            assert working[step] + sum(plan.tensors[p].bits for p in live) <= capacity
    for name, tensor in plan.tensors.items():
        if tensor.bits > capacity or not tensor.consumers:
            assert name not in plan.onchip
        for consumer in tensor.consumers:
            assert (name in plan.onchip_inputs(consumer)) == (name in plan.onchip)


def test_the_table_shows_fused_layers_by_their_producer_and_the_csv_names_it():
    import csv
    import io

    from rich.console import Console

    from codesign.sim_report import csv_text, print_run

    work = residual_block(conv_layer(name="stem.conv", k=4, c=3, h=6, w=6))
    result = simulate(work, make_arch(glb_bytes=8192), "os")
    console = Console(record=True, width=220)
    print_run(result, console)
    text = console.export_text()
    assert "fused → conv" in text and "fused → conv2" in text
    assert "fusion on: 3 layers ran in their producer's output path" in text
    rows = {row["layer"]: row for row in csv.DictReader(io.StringIO(csv_text([result])))}
    assert rows["bn1"]["fused_into"] == "stem.conv" and rows["bn1"]["cycles"] == "0"
    assert set(rows["add"]["onchip_inputs"].split()) == {"stem.conv", "conv2"} and rows["add"]["output_onchip"] == "1"
