"""Channels that are exactly 0 for every input are dead: capture finds them in the weights and batch
norms that make them, follows them through the graph, and removes them from every conv / linear they
reach. Constant channels (a zero filter with a bias) are reported, not removed."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from codesign.capture import from_torch
from codesign.graph_report import workload_json
from codesign.workload import OpKind


class Wrap(nn.Module):
    """A module whose forward is a function of its submodules (keeps tests short)."""

    def __init__(self, forward, **modules) -> None:
        super().__init__()
        self._forward = forward
        for name, module in modules.items():
            setattr(self, name, module)

    def forward(self, *inputs):
        return self._forward(self, *inputs)


def capture(model: nn.Module, *shapes: tuple[int, ...]):
    torch.manual_seed(0)
    return from_torch(model.eval(), tuple(torch.randn(shape) for shape in shapes))


def conv(cin: int, cout: int, kernel: int = 1, *, zero_filters=(), bias: bool = False, **options) -> nn.Conv2d:
    torch.manual_seed(cin * 100 + cout)
    layer = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias, **options)
    with torch.no_grad():
        layer.weight[list(zero_filters)] = 0
    return layer


def slimmed_bn(channels: int, dead=(), constant=()) -> nn.BatchNorm2d:
    """Batch norm with random statistics; gamma = beta = 0 on ``dead``, gamma = 0 and beta = 1 on ``constant``."""
    torch.manual_seed(channels)
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight[list(dead) + list(constant)] = 0
        bn.bias[list(dead)] = 0
        bn.bias[list(constant)] = 1.0
    return bn


# -- where dead and constant channels come from ---------------------------------------------------
def test_a_dense_model_has_no_dead_or_constant_channels_and_no_effective_dims():
    workload = capture(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1)), (1, 3, 6, 6))
    for layer in workload.layers:
        assert (layer.dead_channels, layer.constant_channels, layer.dead_input_channels) == (0, 0, ())
        assert layer.effective_dims is None and layer.effective_macs is None and layer.weight_density == 1.0


def test_a_zero_filter_without_bias_is_a_dead_output_channel():
    (layer,) = capture(conv(4, 6, zero_filters=[1, 4]), (1, 4, 5, 5)).layers
    assert (layer.dead_channels, layer.constant_channels) == (2, 0)


def test_a_zero_filter_with_a_nonzero_bias_is_a_constant_channel_not_a_dead_one():
    producer = conv(4, 6, zero_filters=[1], bias=True)
    with torch.no_grad():
        producer.bias[1] = 0.25
    first, second = capture(nn.Sequential(producer, conv(6, 3)), (1, 4, 5, 5)).layers
    assert (first.dead_channels, first.constant_channels) == (0, 1)
    assert second.dead_input_channels == () and second.effective_dims is None  # a constant is still read


def test_a_zero_filter_with_a_zero_bias_is_dead():
    producer = conv(4, 6, zero_filters=[2], bias=True)
    with torch.no_grad():
        producer.bias[2] = 0
    (layer,) = capture(producer, (1, 4, 5, 5)).layers
    assert (layer.dead_channels, layer.constant_channels) == (1, 0)


def test_network_slimming_kills_the_batch_norm_channels_with_zero_gamma_and_beta():
    model = nn.Sequential(conv(3, 8, 3), slimmed_bn(8, dead=[0, 5], constant=[3]), nn.ReLU(), conv(8, 4))
    first, bn, relu, consumer = capture(model, (1, 3, 6, 6)).layers
    assert (first.dead_channels, first.effective_dims) == (0, None)  # the conv before the norm is dense
    assert (bn.dead_channels, bn.constant_channels) == (2, 1)
    assert (relu.dead_channels, relu.constant_channels) == (2, 1)  # relu(1) = 1 is still constant
    assert consumer.dead_input_channels == (0, 5)


def test_batch_norm_of_a_dead_channel_is_dead_only_when_its_output_at_zero_is_zero():
    # BN(0) = beta - mean * gamma / sqrt(var + eps): channel 0 has beta = mean * gamma / sqrt(var + eps)
    bn = nn.BatchNorm2d(4, eps=0.0)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([2.0, 2.0, 0.0, 0.0]))
        bn.running_var.copy_(torch.tensor([4.0, 4.0, 1.0, 1.0]))
        bn.weight.copy_(torch.tensor([3.0, 3.0, 1.0, 1.0]))
        bn.bias.copy_(torch.tensor([3.0, 1.0, 0.0, 0.5]))  # BN(0) = 0, -2, 0, 0.5
    model = nn.Sequential(conv(3, 4, zero_filters=[0, 1, 2, 3]), bn, conv(4, 2))
    producer, norm, consumer = capture(model, (1, 3, 4, 4)).layers
    assert producer.dead_channels == 4
    assert (norm.dead_channels, norm.constant_channels) == (2, 2)
    assert consumer.dead_input_channels == (0, 2)


@pytest.mark.parametrize(
    "activation",
    [nn.ReLU(), nn.ReLU6(), nn.Hardtanh(), nn.GELU(), nn.SiLU(), nn.Tanh(), nn.Hardswish(), nn.LeakyReLU(0.1), nn.ELU()],
    ids=lambda module: type(module).__name__,
)
def test_activations_with_f0_equal_0_keep_a_channel_dead(activation):
    *_, consumer = capture(nn.Sequential(conv(4, 6, zero_filters=[1, 3]), activation, conv(6, 2)), (1, 4, 5, 5)).layers
    assert consumer.dead_input_channels == (1, 3)


@pytest.mark.parametrize("activation", [nn.Sigmoid(), nn.Hardsigmoid()], ids=lambda module: type(module).__name__)
def test_sigmoid_turns_a_dead_channel_into_a_constant_one(activation):
    _, act, consumer = capture(nn.Sequential(conv(4, 6, zero_filters=[1, 3]), activation, conv(6, 2)), (1, 4, 5, 5)).layers
    assert (act.dead_channels, act.constant_channels) == (0, 2)
    assert consumer.dead_input_channels == ()


def test_relu_of_a_negative_constant_channel_is_dead():
    producer = conv(4, 6, zero_filters=[2], bias=True)
    with torch.no_grad():
        producer.bias[2] = -1.0
    *_, consumer = capture(nn.Sequential(producer, nn.ReLU(), conv(6, 2)), (1, 4, 5, 5)).layers
    assert consumer.dead_input_channels == (2,)


# -- how deadness moves through the graph --------------------------------------------------------
def test_add_is_dead_where_every_input_is_and_mul_where_any_input_is():
    model = Wrap(
        lambda self, x: (self.sum(self.a(x) + self.b(x)), self.product(self.a(x) * self.b(x))),
        a=conv(4, 6, zero_filters=[0, 1]), b=conv(4, 6, zero_filters=[1, 2]), sum=conv(6, 2), product=conv(6, 2),
    )
    workload = capture(model, (1, 4, 5, 5))
    assert workload.layer("sum").dead_input_channels == (1,)
    assert workload.layer("product").dead_input_channels == (0, 1, 2)


def test_a_per_channel_zero_scale_kills_its_channels_through_broadcasting():
    scale = torch.ones(1, 6, 1, 1)
    scale[0, [2, 5]] = 0  # a layer scale or a gate pruned to zero
    model = Wrap(lambda self, x: self.out(self.a(x) * self.scale), a=conv(4, 6), out=conv(6, 2),
                 scale=nn.Parameter(scale))
    assert capture(model, (1, 4, 5, 5)).layer("out").dead_input_channels == (2, 5)


def test_concat_offsets_the_dead_channels_of_its_second_input():
    model = Wrap(lambda self, x: self.out(torch.cat([self.a(x), self.b(x)], 1)),
                 a=conv(4, 3, zero_filters=[0]), b=conv(4, 5, zero_filters=[1, 4]), out=conv(8, 2))
    assert capture(model, (1, 4, 5, 5)).layer("out").dead_input_channels == (0, 4, 7)


def test_split_and_chunk_give_each_piece_its_own_dead_channels():
    model = Wrap(
        lambda self, x: [piece(part) for piece, part in zip((self.p0, self.p1, self.p2), self.a(x).split([2, 3, 3], 1))],
        a=conv(4, 8, zero_filters=[1, 2, 7]), p0=conv(2, 2), p1=conv(3, 2), p2=conv(3, 2),
    )
    workload = capture(model, (1, 4, 5, 5))
    assert [workload.layer(name).dead_input_channels for name in ("p0", "p1", "p2")] == [(1,), (0,), (2,)]


def test_a_channel_shuffle_permutes_the_dead_channels():
    def forward(self, x):
        y = self.a(x)
        n, c, h, w = y.shape
        return self.out(y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w))

    model = Wrap(forward, a=conv(4, 6, zero_filters=[1, 3]), out=conv(6, 2))
    # channel g * 3 + i moves to i * 2 + g: 1 -> 2, 3 -> 1
    assert capture(model, (1, 4, 5, 5)).layer("out").dead_input_channels == (1, 2)


@pytest.mark.parametrize(
    "pool",
    [nn.MaxPool2d(3, 1, 1), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), Wrap(lambda self, x: x.mean((2, 3), keepdim=True))],
    ids=["max", "avg", "adaptive", "mean"],
)
def test_pooling_keeps_a_channel_dead(pool):
    *_, consumer = capture(nn.Sequential(conv(4, 6, zero_filters=[0, 4]), pool, conv(6, 2)), (1, 4, 6, 6)).layers
    assert consumer.dead_input_channels == (0, 4)


def test_a_flattened_feature_map_kills_the_linear_features_of_its_dead_channels():
    model = nn.Sequential(conv(4, 3, zero_filters=[1]), nn.Flatten(), nn.Linear(3 * 2 * 2, 5))
    *_, linear = capture(model, (1, 4, 2, 2)).layers
    assert linear.dead_input_channels == (4, 5, 6, 7)  # channel 1 holds features 4..7
    assert linear.effective_dims == dataclasses.replace(linear.dims, k=8)


# -- what a consumer does with dead input channels ------------------------------------------------
def test_a_conv_drops_its_dead_input_channels_from_c_macs_and_density():
    model = nn.Sequential(conv(4, 6, zero_filters=[1, 4]), conv(6, 8, 3))
    _, consumer = capture(model, (1, 4, 5, 5)).layers
    assert consumer.dead_input_channels == (1, 4)
    assert consumer.effective_dims == dataclasses.replace(consumer.dims, c=4)
    assert consumer.weight_density == 4 / 6  # weights on dead channels count as removed
    assert consumer.effective_macs == consumer.macs * 4 // 6
    assert consumer.macs == consumer.dims.macs  # MACs stay the dense count


def test_a_depthwise_conv_loses_the_whole_group_of_a_dead_channel_and_its_output_dies():
    model = nn.Sequential(conv(4, 6, zero_filters=[0, 3]), conv(6, 6, 3, groups=6), conv(6, 2))
    _, depthwise, last = capture(model, (1, 4, 5, 5)).layers
    assert depthwise.op is OpKind.DEPTHWISE_CONV
    assert depthwise.effective_dims == dataclasses.replace(depthwise.dims, k=4, c=4, groups=4)
    assert depthwise.dead_channels == 2
    assert last.dead_input_channels == (0, 3)


def test_a_grouped_conv_drops_dead_channels_per_group_keeping_the_largest_group():
    # 2 groups of 3 input channels; group 0 loses 2 channels, group 1 loses 1: 2 channels per group remain
    model = nn.Sequential(conv(4, 6, zero_filters=[0, 1, 4]), conv(6, 4, 1, groups=2))
    _, grouped = capture(model, (1, 4, 5, 5)).layers
    assert grouped.op is OpKind.GROUPED_CONV
    assert grouped.dead_input_channels == (0, 1, 4)
    assert grouped.effective_dims == dataclasses.replace(grouped.dims, c=4)
    assert grouped.effective_macs == 25 * (2 * 1 + 2 * 2)  # group 0: 1 live channel, group 1: 2; 2 filters each


def test_a_filter_that_reads_only_dead_channels_becomes_constant_and_leaves_k():
    consumer = conv(6, 3, bias=True)
    with torch.no_grad():
        consumer.weight[2] = 0
        consumer.weight[2, [1, 4]] = 1.0  # filter 2 reads only the dead channels
    _, layer = capture(nn.Sequential(conv(4, 6, zero_filters=[1, 4]), consumer), (1, 4, 5, 5)).layers
    assert (layer.dead_channels, layer.constant_channels) == (0, 1)  # its bias
    assert layer.effective_dims == dataclasses.replace(layer.dims, k=2, c=4)


# -- a layer is never pruned to nothing ------------------------------------------------------------
def test_a_zero_initialised_classifier_captures_at_density_zero_with_dims_of_at_least_one():
    head = nn.Linear(16, 10)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)  # as torchvision's ViT and timm's MLP-Mixer initialise their heads
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    classifier = capture(model, (1, 3, 6, 6)).layers[-1]
    assert classifier.weight_density == 0.0 and classifier.effective_macs == 0
    dims = classifier.effective_dims or classifier.dims
    assert min(dims.batch, dims.m, dims.k, dims.n) >= 1
    assert classifier.dead_channels == 10


def test_a_conv_whose_every_input_is_dead_keeps_one_filter_one_channel_and_runs_no_macs():
    _, consumer = capture(nn.Sequential(conv(4, 6, zero_filters=range(6)), conv(6, 8, 3, groups=2)), (1, 4, 5, 5)).layers
    assert consumer.weight_density == 0.0 and consumer.effective_macs == 0
    assert consumer.effective_dims == dataclasses.replace(consumer.dims, k=1, c=1, groups=1)


# -- the report --------------------------------------------------------------------------------
def test_the_json_lists_dead_and_constant_channels_and_effective_dims_beside_the_dense_ones():
    producer = conv(4, 6, zero_filters=[1, 2], bias=True)
    with torch.no_grad():
        producer.bias[1] = 0
        producer.bias[2] = 0.5
    document = workload_json(capture(nn.Sequential(producer, conv(6, 8, 3)), (1, 4, 5, 5)))
    first, second = document["layers"]
    assert (first["dead_channels"], first["constant_channels"]) == (1, 1)
    assert second["dead_input_channels"] == [1]
    assert (second["dims"]["c"], second["effective_dims"]["c"]) == (6, 5)
    assert second["effective_gemm"]["k"] == 5 * 9 and second["gemm"]["k"] == 6 * 9


# -- property: capture finds exactly the channels that are zero for every input -------------------
class RecipeNet(nn.Module):
    """A random network from a recipe: pruned convs, slimmed batch norms, relu, concatenated branches,
    split / chunk, channel shuffle and residual adds. Every (filter, channel) pair of a 3x3 conv has weights
    of both signs and the inputs are white noise, so a channel is never zero for all inputs by the signs of
    its weights, only by construction. (No pooling here: it smooths the field, and a smooth nonnegative field
    under a conv whose weights sum below 0 is zero after a relu on a few samples without being dead.)"""

    def __init__(self, recipe: list[tuple], seed: int, channels: int = 4) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.recipe = recipe
        self.blocks = nn.ModuleList()

        def chance(p: float) -> bool:
            return bool(torch.rand((), generator=generator) < p)

        def make_conv(cin: int, cout: int, groups: int = 1) -> nn.Conv2d:
            layer = nn.Conv2d(cin, cout, 3, padding=1, groups=groups, bias=chance(0.5))
            with torch.no_grad():
                weight = torch.randn(layer.weight.shape, generator=generator)
                weight[:, :, 0, 0] = weight[:, :, 0, 0].abs() + 0.1
                weight[:, :, 0, 1] = -weight[:, :, 0, 1].abs() - 0.1
                for k in range(cout):
                    if chance(0.3):
                        weight[k] = 0
                    elif cin // groups > 1 and chance(0.3):
                        weight[k, int(torch.randint(cin // groups, (), generator=generator))] = 0
                layer.weight.copy_(weight)
                if layer.bias is not None:
                    bias = torch.randn(cout, generator=generator) * 0.5
                    bias[torch.rand(cout, generator=generator) < 0.4] = 0
                    layer.bias.copy_(bias)
            return layer

        for step in recipe:
            kind = step[0]
            if kind == "conv":
                _, out, grouping = step
                groups = {"plain": 1, "grouped": 2, "depthwise": channels}[grouping]
                if grouping == "depthwise":
                    out = channels
                elif channels % groups or out % groups:
                    groups = 1
                self.blocks.append(make_conv(channels, out, groups))
                channels = out
            elif kind == "bn":
                # gamma > 0, beta >= 0 and a signed shift x - mean: after a relu (x >= 0) the output is never
                # <= 0 everywhere by the signs of the parameters alone
                bn = nn.BatchNorm2d(channels)
                with torch.no_grad():
                    bn.weight.copy_(torch.rand(channels, generator=generator) + 0.5)
                    bn.bias.copy_(torch.rand(channels, generator=generator))
                    bn.running_mean.copy_(-torch.rand(channels, generator=generator))
                    bn.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
                    slimmed = torch.rand(channels, generator=generator)
                    bn.weight[slimmed < 0.4] = 0
                    bn.bias[slimmed < 0.3] = 0  # gamma = beta = 0: dead; gamma = 0 alone: constant beta
                    keeps_zero = torch.rand(channels, generator=generator) < 0.3
                    bn.running_mean[keeps_zero] = 0
                    bn.bias[keeps_zero] = 0  # BN(0) = 0: a dead input channel stays dead
                self.blocks.append(bn)
            elif kind == "branches":
                _, left, right = step
                self.blocks.append(nn.ModuleList([make_conv(channels, left), make_conv(channels, right)]))
                channels = left + right
            elif kind == "split":
                _, first = step
                first = max(1, min(first, channels - 1)) if channels > 1 else 0
                self.blocks.append(make_conv(channels - first, channels - first) if first else nn.Identity())
            elif kind == "add":
                self.blocks.append(make_conv(channels, channels))
            else:
                self.blocks.append(nn.Identity())
        self.head = make_conv(channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step, block in zip(self.recipe, self.blocks):
            kind = step[0]
            if kind == "branches":
                x = torch.cat([block[0](x), block[1](x)], 1)
            elif kind == "split":
                if isinstance(block, nn.Identity):
                    continue
                c = x.shape[1]
                first = c - block.in_channels
                left, right = x.chunk(2, 1) if first * 2 == c else x.split([first, c - first], 1)
                x = torch.cat([block(right), left], 1)
            elif kind == "shuffle":
                n, c, h, w = x.shape
                groups = step[1] if c % step[1] == 0 else 1
                if groups > 1:
                    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
            elif kind == "relu":
                x = F.relu(x)
            elif kind == "add":
                x = x + block(x)
            else:
                x = block(x)
        return self.head(x)


steps = st.one_of(
    st.tuples(st.just("conv"), st.sampled_from([2, 4, 6]), st.sampled_from(["plain", "grouped", "depthwise"])),
    st.just(("bn",)),
    st.just(("relu",)),
    st.tuples(st.just("branches"), st.integers(1, 4), st.integers(1, 4)),
    st.tuples(st.just("split"), st.integers(1, 4)),
    st.tuples(st.just("shuffle"), st.sampled_from([2, 3])),
    st.just(("add",)),
)


def observed_zero_inputs(model: nn.Module, samples: int = 3) -> dict[str, set[int]]:
    """Per conv module: the input channels that are exactly zero on every one of a few random inputs."""
    zero: dict[str, torch.Tensor] = {}
    handles = []
    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            def hook(module, inputs, path=path):
                now = (inputs[0] == 0).all(dim=3).all(dim=2).all(dim=0)
                zero[path] = zero[path] & now if path in zero else now
            handles.append(module.register_forward_pre_hook(hook))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(samples):
            model(torch.randn(2, 4, 5, 5, generator=generator))
    for handle in handles:
        handle.remove()
    return {path: set(torch.nonzero(mask).flatten().tolist()) for path, mask in zero.items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipe=st.lists(steps, min_size=1, max_size=7), seed=st.integers(0, 2**16))
def test_dead_input_channels_are_exactly_the_channels_zero_for_every_random_input(recipe, seed):
    model = RecipeNet(recipe, seed).eval()
    observed = observed_zero_inputs(model)
    workload = from_torch(model, (torch.randn(2, 4, 5, 5),), measure_activations=False)
    captured = {
        layer.module: set(layer.dead_input_channels) for layer in workload.layers if layer.op.has_macs
    }
    assert captured == observed


def test_a_layer_norm_feature_with_zero_gamma_is_its_beta_for_every_token():
    norm = nn.LayerNorm(6)
    with torch.no_grad():
        norm.weight[[1, 4]] = 0
        norm.bias.zero_()
        norm.bias[4] = 0.5
    model = nn.Sequential(nn.Linear(3, 6), norm, nn.Linear(6, 2))
    _, layer_norm, linear = capture(model, (2, 5, 3)).layers
    assert (layer_norm.dead_channels, layer_norm.constant_channels) == (1, 1)  # counted along the features
    assert linear.dead_input_channels == (1,)
