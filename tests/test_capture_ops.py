"""Each exported op becomes the right layer kind with the right loop dimensions, and the graph
follows the data flow; nothing is dropped silently."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from codesign.capture import from_torch
from codesign.workload import ConvDims, GemmDims, OpKind


class Wrap(nn.Module):
    """A module whose forward is a function of its submodules (keeps tests short)."""

    def __init__(self, forward, **modules) -> None:
        super().__init__()
        self._forward = forward
        for name, module in modules.items():
            setattr(self, name, module)

    def forward(self, *inputs):
        return self._forward(self, *inputs)


def capture(model: nn.Module, *shapes: tuple[int, ...], **options):
    torch.manual_seed(0)
    return from_torch(model.eval(), tuple(torch.randn(shape) for shape in shapes), **options)


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "groups", "kind"),
    [
        (8, 16, 1, OpKind.CONV),
        (8, 8, 8, OpKind.DEPTHWISE_CONV),
        (8, 16, 8, OpKind.DEPTHWISE_CONV),  # channel multiplier 2
        (8, 16, 2, OpKind.GROUPED_CONV),
        (8, 8, 4, OpKind.GROUPED_CONV),
    ],
)
def test_conv_kind_follows_groups_and_channels(in_channels, out_channels, groups, kind):
    workload = capture(nn.Conv2d(in_channels, out_channels, 3, groups=groups), (1, in_channels, 6, 6))
    (layer,) = workload.layers
    assert layer.op is kind
    assert layer.dims.groups == groups


def test_conv_dims_carry_stride_padding_dilation_and_output_size():
    conv = nn.Conv2d(3, 5, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2), bias=False)
    (layer,) = capture(conv, (2, 3, 9, 11)).layers
    out = conv(torch.randn(2, 3, 9, 11)).shape
    assert layer.dims == ConvDims(
        n=2, k=5, c=3, p=out[2], q=out[3], r=3, s=5, h=9, w=11,
        groups=1, stride=(2, 1), padding=(1, 2), dilation=(1, 2),
    )
    assert layer.macs == 2 * 5 * 3 * out[2] * out[3] * 3 * 5
    assert layer.params == 5 * 3 * 3 * 5


def test_conv1d_is_a_conv_of_height_one():
    (layer,) = capture(nn.Conv1d(4, 6, 3, padding=1), (1, 4, 10)).layers
    assert (layer.dims.h, layer.dims.p, layer.dims.r) == (1, 1, 1)
    assert (layer.dims.w, layer.dims.q, layer.dims.s) == (10, 10, 3)


def test_bmm_and_matmul_are_batched_gemms():
    model = Wrap(lambda self, a, b: torch.bmm(a, b) + torch.matmul(a.unsqueeze(0), b))
    workload = capture(model, (3, 4, 5), (3, 5, 6))
    gemms = [layer for layer in workload.layers if layer.op is OpKind.MATMUL]
    assert [layer.dims for layer in gemms] == [GemmDims(3, 4, 5, 6), GemmDims(3, 4, 5, 6)]


def test_matmul_with_a_weight_matrix_is_a_linear_layer():
    model = Wrap(lambda self, x: x @ self.w, w=nn.Parameter(torch.randn(5, 7)))
    (layer,) = capture(model, (2, 3, 5)).layers
    assert layer.op is OpKind.LINEAR
    assert layer.dims == GemmDims(batch=1, m=6, k=5, n=7)
    assert layer.params == 35


def test_sdpa_becomes_two_matmuls_around_a_softmax():
    model = Wrap(lambda self, q, k, v: F.scaled_dot_product_attention(q, k, v))
    workload = capture(model, (2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4))
    kinds = [layer.op for layer in workload.layers]
    assert kinds == [OpKind.MATMUL, OpKind.SOFTMAX, OpKind.MATMUL]
    qk, softmax, av = workload.layers
    assert qk.dims == GemmDims(batch=6, m=5, k=8, n=7)
    assert av.dims == GemmDims(batch=6, m=5, k=7, n=4)
    assert list(workload.graph.edges) == [(qk.name, softmax.name), (softmax.name, av.name)]


def shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def test_view_transpose_view_is_one_channel_shuffle_node():
    model = Wrap(lambda self, x: self.conv(shuffle(x, 3)), conv=nn.Conv2d(12, 4, 1))
    workload = capture(model, (1, 12, 5, 5))
    shuffle_layer, conv = workload.layers
    assert shuffle_layer.op is OpKind.CHANNEL_SHUFFLE
    assert len(shuffle_layer.folded) == 4
    assert shuffle_layer.input_bytes == shuffle_layer.output_bytes == 12 * 25  # 8-bit activations
    assert list(workload.graph.edges) == [(shuffle_layer.name, conv.name)]


def test_a_transpose_that_is_not_a_shuffle_stays_a_permute():
    model = Wrap(lambda self, x: x.view(1, 3, 4, 5).transpose(2, 3).reshape(1, 60))
    kinds = [layer.op for layer in capture(model, (1, 12, 5)).layers]
    assert OpKind.CHANNEL_SHUFFLE not in kinds
    assert OpKind.PERMUTE in kinds


def test_consecutive_views_fold_into_one_reshape_unless_asked_not_to():
    model = Wrap(lambda self, x: self.fc(x.unsqueeze(1).flatten(1).view(2, 12)), fc=nn.Linear(12, 3))
    folded = capture(model, (2, 3, 4))
    reshape = folded.layers[0]
    assert reshape.op is OpKind.RESHAPE and len(reshape.folded) == 3
    assert reshape.input_bytes == reshape.output_bytes == 0  # views move no data
    assert [layer.op for layer in folded.layers] == [OpKind.RESHAPE, OpKind.LINEAR]
    unfolded = capture(model, (2, 3, 4), fold_views=False)
    assert [layer.op for layer in unfolded.layers] == [OpKind.RESHAPE] * 3 + [OpKind.LINEAR]
    assert folded.totals()["macs"] == unfolded.totals()["macs"]


def test_chunk_gives_one_slice_per_used_piece_reading_only_that_piece():
    model = Wrap(lambda self, x: torch.cat([x.chunk(2, 1)[1], x], 1))
    workload = capture(model, (1, 6, 2, 2))
    slices = [layer for layer in workload.layers if layer.op is OpKind.SLICE]
    concat = workload.layers[-1]
    assert len(slices) == 1 and slices[0].output_shape == (1, 3, 2, 2)
    assert slices[0].input_bytes == slices[0].output_bytes == 12
    assert concat.op is OpKind.CONCAT
    assert concat.input_bytes == 12 + 24 and concat.output_bytes == 36


def test_edges_follow_the_residual_data_flow():
    model = Wrap(
        lambda self, x: F.relu(self.bn(self.conv(x)) + x),
        conv=nn.Conv2d(4, 4, 3, padding=1),
        bn=nn.BatchNorm2d(4),
    )
    workload = capture(model, (1, 4, 5, 5))
    names = [layer.name for layer in workload.layers]
    assert [layer.op for layer in workload.layers] == [OpKind.CONV, OpKind.NORM, OpKind.ELEMENTWISE, OpKind.ELEMENTWISE]
    conv, bn, add, relu = names
    assert set(workload.graph.edges) == {(conv, bn), (bn, add), (add, relu)}
    assert list(workload.graph.nodes) == names
    assert nx.is_directed_acyclic_graph(workload.graph)
    assert workload.graph.nodes[conv]["layer"] is workload.layers[0]


def test_elementwise_and_pooling_ops_count_element_operations_not_macs():
    model = Wrap(lambda self, x: F.avg_pool2d(torch.sigmoid(x), 2).mean((2, 3)))
    sigmoid, pool, mean = capture(model, (1, 3, 4, 4)).layers
    assert (sigmoid.op, pool.op, mean.op) == (OpKind.ELEMENTWISE, OpKind.POOL, OpKind.POOL)
    assert sigmoid.elementwise_ops == 48 and sigmoid.macs == 0
    assert pool.elementwise_ops == 12 * 4  # 12 outputs of a 2x2 window
    assert mean.elementwise_ops == 12  # every input element once


def test_unknown_op_is_listed_as_unsupported_with_its_count_and_the_graph_stays_connected():
    model = Wrap(lambda self, x: self.fc(torch.cumsum(torch.cumsum(self.fc(x), 1), 1)), fc=nn.Linear(4, 4))
    workload = capture(model, (2, 4))
    assert workload.unsupported == (("aten.cumsum.default", 2),)
    first, second = workload.layers
    assert list(workload.graph.edges) == [(first.name, second.name)]


def test_layer_names_are_module_paths_and_unique():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 9, 2))
    workload = capture(model, (1, 3, 3, 3))
    assert [layer.name for layer in workload.layers] == ["0", "1", "2", "3"]
    shared = Wrap(lambda self, x: self.act(self.act(x) - 1), act=nn.ReLU())
    names = [layer.name for layer in capture(shared, (1, 4)).layers]
    assert len(names) == len(set(names)) == 3
    assert names[0].startswith("act/") and names[2].startswith("act/")


def test_exported_program_is_accepted_directly():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    program = torch.export.export(model, (torch.randn(1, 3, 6, 6),))
    workload = from_torch(program, name="saved")
    assert workload.model == "saved"
    assert workload.input_shapes == ((1, 3, 6, 6),)
    assert [layer.op for layer in workload.layers] == [OpKind.CONV, OpKind.ELEMENTWISE]


def test_batch_norm_and_one_input_activations_are_fusable_adds_norms_and_convs_are_not():
    model = Wrap(
        lambda self, x: self.ln(F.gelu(self.fc(F.hardswish(F.relu6(self.bn(self.conv(x)) + x).mean((2, 3)))))),
        conv=nn.Conv2d(4, 4, 3, padding=1),
        bn=nn.BatchNorm2d(4),
        fc=nn.Linear(4, 6),
        ln=nn.LayerNorm(6),
    )
    layers = capture(model, (1, 4, 5, 5)).layers
    assert [(layer.op, layer.fusable) for layer in layers] == [
        (OpKind.CONV, False),
        (OpKind.NORM, True),  # batch norm at inference: a per-channel scale and shift
        (OpKind.ELEMENTWISE, False),  # the residual add reads two activations
        (OpKind.ELEMENTWISE, True),  # relu6 (hardtanh)
        (OpKind.POOL, False),
        (OpKind.ELEMENTWISE, True),  # hardswish
        (OpKind.LINEAR, False),
        (OpKind.ELEMENTWISE, True),  # gelu
        (OpKind.NORM, False),  # layer norm reduces over a vector first
    ]


def test_a_relu_module_and_a_one_input_mul_differ_and_the_json_carries_the_flag():
    from codesign.graph_report import workload_json

    model = Wrap(lambda self, x: self.act(self.fc(x)) * 2.0, fc=nn.Linear(4, 4), act=nn.ReLU())
    workload = capture(model, (2, 4))
    fc, relu, mul = workload.layers
    assert (relu.op, relu.fusable) == (OpKind.ELEMENTWISE, True)
    assert (mul.op, mul.fusable) == (OpKind.ELEMENTWISE, False)  # a scalar mul is no activation
    assert [item["fusable"] for item in workload_json(workload)["layers"]] == [False, True, False]
