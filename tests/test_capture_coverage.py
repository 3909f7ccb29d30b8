"""Every op of the coverage list is costed: transposed and 3-D convolution, einsum, LSTM / GRU, resampling and
data movement, MAC ops in constant subgraphs; MACs equal an independent count, parameters the model's; a layer's
graph inputs follow its ``input_shapes``; and sim / explore / sweep refuse a model with an unmapped op unless
``--allow-unsupported``."""

from __future__ import annotations

import json
import math
import textwrap

import networkx as nx
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from codesign.capture import from_torch
from codesign.capture.lowering import lower_composites
from codesign.capture.reference import flop_counter_macs
from codesign.cli import main
from codesign.errors import UnmappedOpsError
from codesign.graph_report import workload_json
from codesign.unmapped import check_mapped
from codesign.workload import ConvDims, GemmDims, Layer, OpKind, UnsupportedOp, Workload


class Wrap(nn.Module):
    """A module whose forward is a function of its submodules (keeps tests short)."""

    def __init__(self, forward, **modules) -> None:
        super().__init__()
        self._forward = forward
        for name, module in modules.items():
            setattr(self, name, module)

    def forward(self, *inputs):
        return self._forward(self, *inputs)


def capture(model: nn.Module, *shapes: tuple[int, ...], **options) -> tuple[Workload, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    inputs = tuple(torch.randn(shape) for shape in shapes)
    return from_torch(model.eval(), inputs, **options), inputs


def assert_costed(model: nn.Module, *shapes: tuple[int, ...]) -> Workload:
    """Everything mapped, MACs equal FlopCounterMode's, parameters the model's."""
    workload, inputs = capture(model, *shapes)
    assert workload.unsupported == ()
    assert workload.totals()["macs"] == flop_counter_macs(model, inputs)[0]
    assert workload.totals()["params"] == sum(p.numel() for p in model.parameters())
    assert nx.is_directed_acyclic_graph(workload.graph)
    return workload


def of_kind(workload: Workload, kind: OpKind) -> list[Layer]:
    return [layer for layer in workload.layers if layer.op is kind]


# -- transposed convolution ----------------------------------------------------------------
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    in_per_group=st.integers(1, 3), out_per_group=st.integers(1, 3), groups=st.integers(1, 3),
    kernel=st.integers(1, 3), stride=st.integers(1, 3), padding=st.integers(0, 1), dilation=st.integers(1, 2),
    size=st.integers(2, 5), bias=st.booleans(), data=st.data(),
)
def test_transposed_conv_is_a_gemm_and_an_overlap_add_with_flop_counter_macs(
    in_per_group, out_per_group, groups, kernel, stride, padding, dilation, size, bias, data
):
    output_padding = data.draw(st.integers(0, max(stride, dilation) - 1))
    conv = nn.ConvTranspose2d(in_per_group * groups, out_per_group * groups, kernel, stride=stride, padding=padding,
                              output_padding=output_padding, groups=groups, dilation=dilation, bias=bias)
    if conv(torch.randn(1, in_per_group * groups, size, size)).numel() == 0:
        return
    workload = assert_costed(conv, (2, in_per_group * groups, size, size))
    gemm, overlap_add = workload.layers
    assert (gemm.op, overlap_add.op) == (OpKind.TRANSPOSED_CONV, OpKind.RESAMPLE)
    assert gemm.dims == GemmDims(batch=groups, m=2 * size * size, k=in_per_group, n=out_per_group * kernel * kernel)
    assert gemm.loop_nest.transposed and gemm.loop_nest.macs == gemm.macs
    assert gemm.params == conv.weight.numel() and overlap_add.params == (out_per_group * groups if bias else 0)
    columns = 2 * groups * out_per_group * kernel * kernel * size * size
    assert overlap_add.elementwise_ops == columns + (math.prod(overlap_add.output_shape) if bias else 0)
    assert list(workload.graph.edges) == [(gemm.name, overlap_add.name)]


def test_transposed_conv_1d_and_the_convolution_op_with_transposed_set_are_costed():
    assert_costed(nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (1, 4, 7))
    model = Wrap(lambda self, x: torch.ops.aten.convolution(x, self.w, None, [2, 2], [0, 0], [1, 1], True, [0, 0], 1))
    model.w = nn.Parameter(torch.randn(4, 3, 2, 2))
    assert of_kind(assert_costed(model, (1, 4, 3, 3)), OpKind.TRANSPOSED_CONV)


def test_a_transposed_conv_input_channel_with_zero_weights_is_removed_from_its_gemm():
    conv = nn.ConvTranspose2d(4, 6, 3, stride=2)
    with torch.no_grad():
        conv.weight[1] = 0  # input channel 1 meets no nonzero weight
    gemm = capture(conv, (1, 4, 5, 5))[0].layers[0]
    assert gemm.effective_dims == GemmDims(batch=1, m=25, k=3, n=6 * 9)
    assert gemm.effective_macs == gemm.macs * 3 // 4


# -- 3-D convolution ----------------------------------------------------------------------
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    in_per_group=st.integers(1, 3), out_per_group=st.integers(1, 3), groups=st.integers(1, 2),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2)), padding=st.integers(0, 1),
)
def test_conv3d_runs_as_2d_convs_per_output_depth_slice_with_flop_counter_macs(
    in_per_group, out_per_group, groups, kernel, stride, padding
):
    conv = nn.Conv3d(in_per_group * groups, out_per_group * groups, kernel, stride=stride, padding=padding,
                     groups=groups)
    workload = assert_costed(conv, (2, in_per_group * groups, 4, 5, 5))
    (layer,) = workload.layers
    out_depth = layer.output_shape[2]
    assert layer.dims.n == 2 * out_depth and layer.dims.c == in_per_group * groups * kernel[0]
    assert (layer.dims.r, layer.dims.s) == kernel[1:] and layer.dims.stride == stride[1:]
    assert layer.loop_nest.kernel == kernel and layer.loop_nest.macs == layer.macs


def test_depthwise_conv3d_is_depthwise_and_a_dead_input_channel_removes_its_depth_slices():
    depthwise = capture(nn.Conv3d(4, 4, 3, padding=1, groups=4), (1, 4, 3, 5, 5))[0].layers[0]
    assert depthwise.op is OpKind.DEPTHWISE_CONV
    conv = nn.Conv3d(3, 4, (2, 3, 3))
    with torch.no_grad():
        conv.weight[:, 0] = 0  # input channel 0 is read by no filter
    layer = capture(conv, (1, 3, 4, 6, 6))[0].layers[0]
    assert layer.effective_dims == ConvDims(n=3, k=4, c=2 * 2, p=4, q=4, r=3, s=3, h=6, w=6)
    assert layer.effective_macs == layer.macs * 2 // 3


# -- einsum and recurrent layers ---------------------------------------------------------
class EinsumAttention(nn.Module):
    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.einsum("bhid,bhjd->bhij", q, k).softmax(-1)
        return self.proj(torch.einsum("bhij,bhjd->bhid", attn, v).transpose(1, 2).reshape(b, n, c))


def test_einsum_lowers_to_batched_matmuls_with_flop_counter_macs():
    workload = assert_costed(EinsumAttention(), (2, 5, 8))
    matmuls = of_kind(workload, OpKind.MATMUL)
    assert sum(layer.macs for layer in matmuls) == 2 * (2 * 2 * 5 * 5 * 4)
    assert all(not name.startswith("aten.einsum") for layer in workload.layers for name in layer.aten)


def rnn_macs(rnn: nn.RNNBase, batch: int, steps: int) -> int:
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[type(rnn).__name__]
    directions = 2 if rnn.bidirectional else 1
    total = 0
    for layer in range(rnn.num_layers):
        inputs = rnn.input_size if layer == 0 else rnn.hidden_size * directions
        total += directions * steps * batch * gates * rnn.hidden_size * (inputs + rnn.hidden_size)
    return total


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, True)])
def test_recurrent_layers_lower_to_per_step_gemms_with_the_closed_form_macs(cell, layers, bidirectional):
    rnn = cell(6, 5, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    model = Wrap(lambda self, x: self.rnn(x)[0], rnn=rnn)
    workload, inputs = capture(model, (3, 4, 6))
    assert workload.unsupported == ()
    assert workload.totals()["macs"] == rnn_macs(rnn, batch=3, steps=4)
    assert workload.totals()["params"] == sum(p.numel() for p in rnn.parameters())
    if cell is nn.GRU:  # on the CPU FlopCounterMode sees a GRU's GEMMs (an LSTM runs as one fused kernel)
        assert workload.totals()["macs"] == flop_counter_macs(model, inputs)[0]


def test_an_autocast_region_is_inlined_and_its_ops_walked():
    def forward(self, x):
        with torch.autocast(device_type="cpu", enabled=False):
            return torch.matmul(self.fc(x), x.transpose(0, 1))

    workload = assert_costed(Wrap(forward, fc=nn.Linear(4, 4)), (3, 4))
    assert [layer.op for layer in of_kind(workload, OpKind.MATMUL) + of_kind(workload, OpKind.LINEAR)] == [
        OpKind.MATMUL, OpKind.LINEAR]


def test_unfold_is_a_view_whose_windows_the_consumer_reads():
    model = Wrap(lambda self, x: x.unfold(2, 3, 1).permute(0, 1, 3, 2).sum(-1))
    view, permute, total = assert_costed(model, (1, 2, 5)).layers
    assert view.op is OpKind.RESHAPE and view.output_shape == (1, 2, 3, 3)
    assert permute.op is OpKind.PERMUTE and permute.input_bytes == 18


def test_a_program_without_composite_ops_is_not_decomposed():
    program = torch.export.export(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval(), (torch.randn(1, 2, 2),))
    assert lower_composites(program) is program


# -- resampling and data movement on the vector unit --------------------------------------
def test_roll_moves_its_bytes_and_interpolation_counts_one_multiply_add_per_tap():
    model = Wrap(lambda self, x: (
        torch.roll(x, (1, 2), (2, 3)),
        F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
        F.interpolate(x, scale_factor=2, mode="nearest"),
    ))
    roll, bilinear, nearest = assert_costed(model, (1, 4, 3, 5)).layers
    assert roll.op is OpKind.PERMUTE and roll.input_bytes == roll.output_bytes == 60
    assert (bilinear.op, nearest.op) == (OpKind.RESAMPLE, OpKind.RESAMPLE)
    assert bilinear.elementwise_ops == 4 * 240 and nearest.elementwise_ops == 240
    assert bilinear.input_bytes == 60 and bilinear.output_bytes == 240


def test_grid_sample_on_a_grid_from_the_input_is_costed_with_affine_grid():
    model = Wrap(lambda self, x: F.grid_sample(
        x, F.affine_grid(self.loc(x.mean((2, 3))).view(-1, 2, 3), list(x.shape), align_corners=False),
        align_corners=False), loc=nn.Linear(3, 6))
    workload = assert_costed(model, (2, 3, 4, 5))
    affine, sample = of_kind(workload, OpKind.RESAMPLE)
    assert affine.elementwise_ops == 2 * 4 * 5 * 2 * 3  # theta (2 x 3) times (x, y, 1) per output value
    assert sample.elementwise_ops == 4 * (2 * 3 * 4 * 5)  # bilinear: 4 taps per output
    assert list(workload.graph.predecessors(sample.name)) == [affine.name]  # x is the network input


def test_vector_norm_new_zeros_and_reshape_as_are_layers():
    model = Wrap(lambda self, x: torch.linalg.vector_norm(x, dim=1) + x.new_zeros(x.shape[0], x.shape[2])
                 + x.reshape_as(x.view(2, 12)).sum(1, keepdim=True))
    workload = assert_costed(model, (2, 3, 4))
    kinds = {layer.aten[0]: layer for layer in workload.layers}
    norm, zeros, view = (kinds["aten.linalg_vector_norm.default"], kinds["aten.new_zeros.default"],
                         kinds["aten.reshape_as.default"])
    assert norm.op is OpKind.POOL and norm.elementwise_ops == 24
    assert zeros.op is OpKind.ELEMENTWISE and zeros.input_bytes == 0 and zeros.output_bytes == 8
    assert view.op is OpKind.RESHAPE and view.input_bytes == view.output_bytes == 0


def test_a_dead_channel_stays_dead_through_upsampling_but_grid_sample_claims_nothing():
    first = nn.Conv2d(3, 4, 1, bias=False)
    with torch.no_grad():
        first.weight[2] = 0
    for sample, dead in ((lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), (2,)),
                         (lambda x: F.grid_sample(x, torch.tanh(x[:, :2].permute(0, 2, 3, 1)), align_corners=False),
                          ())):
        model = Wrap(lambda self, x, sample=sample: self.second(sample(self.first(x))), first=first,
                     second=nn.Conv2d(4, 2, 1))
        second = capture(model, (1, 3, 4, 4))[0].layer("second")
        assert second.dead_input_channels == dead


# -- constant subgraphs that hold MACs -------------------------------------------------------
class FourierPositions(nn.Module):
    """EdgeNeXt's positional encoding: a grid computed from the input's shape only, through a 1x1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        n, _, h, w = x.shape
        ys = torch.arange(1, h + 1, dtype=torch.float32).view(1, 1, h, 1).expand(n, 4, h, w)
        xs = torch.arange(1, w + 1, dtype=torch.float32).view(1, 1, 1, w).expand(n, 4, h, w)
        return x + self.proj(torch.cat([ys.sin(), xs.cos()], 1))


def test_a_conv_on_a_grid_computed_from_shapes_is_a_layer_with_its_macs():
    workload = assert_costed(FourierPositions(), (2, 4, 3, 5))
    proj = workload.layer("proj")
    assert proj.op is OpKind.CONV and proj.macs == 2 * 4 * 8 * 3 * 5 and proj.params == 36
    assert proj.input_shapes == ((2, 8, 3, 5),)
    assert list(workload.graph.successors("proj")) == [workload.layers[-1].name]


# -- graph inputs in argument order ----------------------------------------------------------
def test_graph_inputs_follow_input_shapes_order():
    model = Wrap(lambda self, x: torch.matmul(torch.matmul(self.q(x), self.k(x).transpose(1, 2)).softmax(-1),
                                              self.v(x)),
                 v=nn.Linear(4, 6), q=nn.Linear(4, 3), k=nn.Linear(4, 3))
    workload, _ = capture(model, (1, 5, 4))
    document = workload_json(workload)
    shapes = {layer["name"]: layer["output_shape"] for layer in document["layers"]}
    for layer in document["layers"]:
        if len(layer["inputs"]) == len(layer["input_shapes"]):
            assert [shapes[name] for name in layer["inputs"]] == layer["input_shapes"], layer["name"]
    value_matmul = document["layers"][-1]
    assert value_matmul["inputs"][-1] == "v" and value_matmul["input_shapes"][-1] == [1, 5, 6]


# -- unmapped ops: refused, or reported with their share -------------------------------------
def test_parameters_only_an_unsupported_op_reads_count_in_the_totals():
    model = Wrap(lambda self, x: self.fc(torch.atan2(x, self.scale)), fc=nn.Linear(4, 2))
    model.scale = nn.Parameter(torch.ones(4))
    workload, _ = capture(model, (1, 4))
    assert workload.unsupported == (("aten.atan2.default", 1),)
    assert workload.unsupported_ops == (UnsupportedOp("aten.atan2.default", 1, macs=None, params=4),)
    assert workload.totals()["params"] == 14 and workload.totals()["unsupported_params"] == 4
    assert workload.unmapped().params_share == pytest.approx(4 / 14)
    with pytest.raises(UnmappedOpsError, match=r"^m has 1 op the simulator cannot map: aten.atan2.default x1 "
                                               r"\(29% of parameters; MACs unknown for aten.atan2.default\); "
                                               r"pass --allow-unsupported"):
        check_mapped(workload, "m", allow=False)
    assert check_mapped(workload, "m", allow=True) == workload.unmapped()


def test_the_mac_share_of_unmapped_ops_is_of_the_whole_model():
    layer = Layer(name="fc", op=OpKind.LINEAR, aten=(), input_shapes=(), output_shape=(), macs=300)
    workload = Workload(model="m", layers=(layer,), graph=nx.DiGraph(), unsupported=(("aten.foo", 2),),
                        unsupported_ops=(UnsupportedOp("aten.foo", 2, macs=100),))
    assert workload.unmapped().macs_share == 0.25 and workload.unmapped().unknown == ()
    assert Workload(model="m", layers=(layer,), graph=nx.DiGraph()).unmapped() is None


MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Cumulative(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(torch.cumsum(self.conv(x), 1).mean((2, 3)))

    def cumulative():
        return Cumulative().eval(), (torch.randn(1, 3, 6, 6),)
    """
)


@pytest.fixture(scope="module")
def unmapped_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "unmapped_model.py"
    path.write_text(MODEL)
    return f"{path}:cumulative"


@pytest.mark.parametrize("command", [["sim", "--dataflow", "ws"], ["explore"], ["sweep", "--bits", "8", "--no-accuracy"]])
def test_sim_explore_and_sweep_refuse_a_model_with_an_unmapped_op(command, unmapped_model, tmp_path, capsys):
    out = tmp_path / "out.json"
    status = main([command[0], unmapped_model, "--arch", "fpga-4x4", *command[1:], "--json", str(out)])
    err = capsys.readouterr().err.strip()
    assert status == 2 and not out.exists()
    assert len(err.splitlines()) == 1
    assert "has 1 op the simulator cannot map: aten.cumsum.default x1" in err and "--allow-unsupported" in err


def test_allow_unsupported_simulates_the_rest_and_reports_what_it_left_out(unmapped_model, tmp_path, capsys):
    out = tmp_path / "out.json"
    status = main(["sim", unmapped_model, "--arch", "fpga-4x4", "--dataflow", "ws", "--allow-unsupported",
                   "--json", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    assert "not simulated (1 op maps to no layer): aten.cumsum.default x1" in " ".join(printed.split())
    unmapped = json.loads(out.read_text())["unmapped"]
    assert unmapped["ops"] == [{"aten": "aten.cumsum.default", "count": 1, "macs": None, "params": 0}]
    assert unmapped["macs_unknown"] == ["aten.cumsum.default"]


@pytest.mark.parametrize("command", [["explore"], ["sweep", "--bits", "8", "--no-accuracy"]])
def test_explore_and_sweep_with_allow_unsupported_carry_the_unmapped_ops_in_their_json(command, unmapped_model,
                                                                                       tmp_path, capsys):
    out = tmp_path / "out.json"
    status = main([command[0], unmapped_model, "--arch", "fpga-4x4", *command[1:], "--allow-unsupported",
                   "--json", str(out)])
    assert status == 0
    document = json.loads(out.read_text())
    assert document["unmapped"]["ops"] == [{"aten": "aten.cumsum.default", "count": 1, "macs": None, "params": 0}]
    assert any("aten.cumsum.default x1" in note for note in document["notes"])
