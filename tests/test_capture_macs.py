"""MACs of the captured workload equal FlopCounterMode's count, in total and per module."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from codesign.capture import from_torch
from codesign.capture.reference import flop_counter_macs
from codesign.workload import OpKind, Workload


def module_macs(workload: Workload, path: str) -> int:
    """MACs of the layers that ran in module ``path`` or one of its submodules."""
    return sum(
        layer.macs
        for layer in workload.layers
        if path == "" or layer.module == path or layer.module.startswith(path + ".")
    )


def assert_macs_match(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Workload:
    workload = from_torch(model, inputs)
    total, per_module = flop_counter_macs(model, inputs)
    assert workload.totals()["macs"] == total
    for path, macs in per_module.items():
        assert module_macs(workload, path) == macs, path
    assert workload.totals()["params"] == sum(p.numel() for p in model.parameters())
    order = {layer.name: index for index, layer in enumerate(workload.layers)}
    assert list(workload.graph.nodes) == list(order)
    assert all(order[source] < order[target] for source, target in workload.graph.edges)
    assert workload.unsupported == ()
    return workload


# -- random lightweight networks ---------------------------------------------------------------
class Attention(nn.Module):
    """Single-head or multi-head self-attention over the pixels, by SDPA or by explicit matmuls."""

    def __init__(self, channels: int, heads: int, fused: bool) -> None:
        super().__init__()
        self.heads, self.fused = heads, fused
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(tokens).reshape(n, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = torch.matmul(q, k.transpose(-2, -1)).softmax(-1) @ v
        out = self.proj(out.transpose(1, 2).reshape(n, h * w, c))
        return out.transpose(1, 2).reshape(n, c, h, w)


class RandomNet(nn.Module):
    """A network assembled from a list of block specs (see ``blocks``)."""

    def __init__(self, specs: list[tuple], channels: int = 4, classes: int = 5) -> None:
        super().__init__()
        self.specs = specs
        self.blocks = nn.ModuleList()
        for spec in specs:
            kind = spec[0]
            if kind == "conv":
                _, out, kernel, stride, grouping, pruning = spec
                groups = {"plain": 1, "grouped": 2, "depthwise": channels}[grouping]
                out = channels * 2 if grouping == "depthwise" and out > channels else (channels if grouping == "depthwise" else out)
                conv = nn.Conv2d(channels, out, kernel, stride, kernel // 2, groups=groups, bias=kernel == 1)
                if pruning == "unstructured":
                    prune.l1_unstructured(conv, "weight", amount=0.5)
                elif pruning == "filters":
                    prune.ln_structured(conv, "weight", amount=0.5, n=1, dim=0)
                self.blocks.append(nn.Sequential(conv, nn.BatchNorm2d(out), nn.ReLU6()))
                channels = out
            elif kind == "dense":  # DenseNet-style: concatenate a new 4-channel feature map
                self.blocks.append(nn.Conv2d(channels, 4, 3, 1, 1, bias=False))
                channels += 4
            elif kind == "split":  # ShuffleNetV2-style: half passes, half goes through a 1x1 conv
                self.blocks.append(nn.Conv2d(channels // 2, channels // 2, 1))
            elif kind == "attention":
                self.blocks.append(Attention(channels, spec[1], spec[2]))
            else:  # shuffle, pool: no parameters
                self.blocks.append(nn.Identity())
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for spec, block in zip(self.specs, self.blocks):
            kind = spec[0]
            if kind == "dense":
                x = torch.cat([x, block(x)], dim=1)
            elif kind == "split":
                left, right = x.chunk(2, dim=1)
                x = torch.cat([left, block(right)], dim=1)
            elif kind == "shuffle":
                n, c, h, w = x.shape
                x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
            elif kind == "pool":
                x = F.max_pool2d(x, 2) if x.shape[-1] >= 2 else x
            else:
                x = block(x)
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


conv_blocks = st.tuples(
    st.just("conv"),
    st.sampled_from([4, 8]),
    st.sampled_from([1, 3]),
    st.sampled_from([1, 2]),
    st.sampled_from(["plain", "grouped", "depthwise"]),
    st.sampled_from(["none", "none", "unstructured", "filters"]),
)
blocks = st.one_of(
    conv_blocks,
    st.just(("dense",)),
    st.just(("split",)),
    st.just(("shuffle",)),
    st.just(("pool",)),
    st.tuples(st.just("attention"), st.sampled_from([1, 2]), st.booleans()),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(blocks, min_size=1, max_size=6), size=st.sampled_from([4, 6]), seed=st.integers(0, 2**16))
def test_random_lightweight_nets_match_flop_counter_in_total_and_per_module(specs, size, seed):
    torch.manual_seed(seed)
    model = RandomNet(specs).eval()
    assert_macs_match(model, (torch.randn(1, 4, size, size),))


def test_multihead_attention_module_matches_flop_counter():
    model = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    tokens = torch.randn(2, 5, 16)

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = model

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    assert_macs_match(SelfAttention().eval(), (tokens,))


def test_linear_on_token_batches_counts_every_token():
    model = nn.Sequential(nn.Linear(6, 10), nn.GELU(), nn.Linear(10, 3)).eval()
    workload = assert_macs_match(model, (torch.randn(2, 7, 6),))
    first = workload.layer("0")
    assert first.op is OpKind.LINEAR
    assert (first.dims.batch, first.dims.m, first.dims.k, first.dims.n) == (1, 2 * 7, 6, 10)


def _zoo_names(suffix: str) -> list[str]:
    try:
        from codesign import zoo
    except ImportError:
        return []
    return [name for name in zoo.names() if name.endswith(suffix)]


@pytest.mark.parametrize("name", _zoo_names("-cifar"))
def test_zoo_model_at_cifar_size_matches_flop_counter(name):
    from codesign import zoo

    model, inputs = zoo.build(name)
    assert_macs_match(model, inputs)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenetv2", "shufflenetv2"])
def test_zoo_model_at_imagenet_size_matches_flop_counter(name):
    from codesign import zoo

    if name not in zoo.names():
        pytest.skip(f"{name} is not in the zoo")
    model, inputs = zoo.build(name)
    assert inputs[0].shape[-1] == 224
    assert_macs_match(model, inputs)
