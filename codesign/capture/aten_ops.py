"""The aten op table: which layer kind each exported op is, and the loop dimensions of MAC ops.

Ops are keyed by their overload packet name (``conv2d`` for ``aten.conv2d.default``). MAC counts
follow ``torch.utils.flop_counter`` exactly: conv = N*K*(C/G)*P*Q*R*S, mm = M*K*N, bmm = B*M*K*N,
and flops = 2 * MACs.
"""

from __future__ import annotations

import math
from typing import Any, Collection, Sequence

from codesign.workload import ConvDims, GemmDims, OpKind

__all__ = [
    "CONV_OPS", "LINEAR_OPS", "GEMM_OPS", "ATTENTION_OPS", "ACTIVATIONS", "ELEMENTWISE_OPS", "POOL_OPS",
    "REDUCTION_OPS", "PER_CHANNEL_NORMS", "NORM_OPS", "SOFTMAX_OPS", "CONCAT_OPS", "VIEW_OPS", "PERMUTE_OPS",
    "SLICE_OPS", "SPLIT_OPS", "SHUFFLE_OPS", "EMBEDDING_OPS", "BOOKKEEPING_OPS",
    "simple_kind", "fusable", "numel", "conv_dims", "conv_kind", "linear_dims", "matmul_dims", "attention_dims",
    "pool_window",
]

CONV_OPS = frozenset({"conv2d", "conv1d", "convolution", "_convolution"})
LINEAR_OPS = frozenset({"linear"})
GEMM_OPS = frozenset({"mm", "addmm", "bmm", "baddbmm", "matmul"})
ATTENTION_OPS = frozenset(
    {
        "scaled_dot_product_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_attention_math",
    }
)

# One-input, one-output elementwise activations (a lookup or a few operations per value): they can run
# in the output path of the layer that produces their input (``Layer.fusable``).
ACTIVATIONS = frozenset(
    """
    relu relu_ relu6 hardtanh hardtanh_ hardswish hardswish_ hardsigmoid hardsigmoid_ sigmoid sigmoid_
    silu silu_ gelu gelu_ tanh tanh_ leaky_relu leaky_relu_ elu elu_ selu selu_ celu celu_ mish mish_
    softplus prelu _prelu_kernel logsigmoid threshold threshold_ clamp clamp_ clamp_min clamp_min_
    clamp_max clamp_max_ clip clip_
    """.split()
)
ELEMENTWISE_OPS = ACTIVATIONS | frozenset(
    """
    glu
    add add_ sub sub_ rsub mul mul_ div div_ neg neg_ abs abs_ pow pow_ square sqrt sqrt_ rsqrt rsqrt_
    exp exp_ log log_ log2 reciprocal reciprocal_ erf erf_ sign sin cos floor ceil round trunc frac
    maximum minimum fmod remainder
    where masked_fill masked_fill_ addcmul addcdiv lerp
    eq ne gt ge lt le logical_and logical_or logical_not logical_xor bitwise_and bitwise_or bitwise_not
    to _to_copy type_as fill fill_ zero_ zeros_like ones_like full_like
    pad constant_pad_nd reflection_pad1d reflection_pad2d replication_pad1d replication_pad2d
    """.split()
)
POOL_OPS = frozenset(
    """
    max_pool1d max_pool2d max_pool2d_with_indices avg_pool1d avg_pool2d
    adaptive_avg_pool1d adaptive_avg_pool2d _adaptive_avg_pool2d adaptive_max_pool1d adaptive_max_pool2d
    """.split()
)
# Reductions over whole dimensions (global average pooling written as x.mean((2, 3)), token means).
REDUCTION_OPS = frozenset("mean sum amax amin max min var std var_mean std_mean logsumexp norm prod".split())
# Per-channel scale and shift at inference (batch norm with running statistics): foldable into the
# producer's output path (``Layer.fusable``). Layer / group / instance / RMS norms reduce over a whole
# vector first and are not.
PER_CHANNEL_NORMS = frozenset(
    """
    batch_norm _native_batch_norm_legit_no_training _native_batch_norm_legit native_batch_norm
    _batch_norm_with_update _batch_norm_no_update
    """.split()
)
NORM_OPS = PER_CHANNEL_NORMS | frozenset(
    """
    layer_norm native_layer_norm group_norm native_group_norm
    instance_norm rms_norm _fused_rms_norm local_response_norm
    """.split()
)
SOFTMAX_OPS = frozenset({"softmax", "_softmax", "log_softmax", "_log_softmax", "_safe_softmax"})
CONCAT_OPS = frozenset({"cat", "concat", "concatenate", "stack", "hstack", "vstack"})
# Views: no data moves on an accelerator (the layout change, if any, is a PERMUTE node before them).
# Identities at inference (dropout in eval mode, clone, alias) count here too.
VIEW_OPS = frozenset(
    """
    view _unsafe_view reshape flatten unflatten squeeze squeeze_ unsqueeze unsqueeze_ contiguous
    expand expand_as view_as alias clone detach lift_fresh_copy
    dropout dropout_ feature_dropout alpha_dropout feature_alpha_dropout native_dropout
    """.split()
)
PERMUTE_OPS = frozenset({"permute", "transpose", "transpose_", "t", "swapaxes", "movedim", "numpy_T", "mT", "pixel_shuffle", "pixel_unshuffle"})
SLICE_OPS = frozenset({"slice", "select", "narrow", "index_select", "index", "gather"})
SPLIT_OPS = frozenset({"split", "split_with_sizes", "chunk", "unbind", "tensor_split", "unsafe_split"})
SHUFFLE_OPS = frozenset({"channel_shuffle", "native_channel_shuffle"})
EMBEDDING_OPS = frozenset({"embedding"})
# Export bookkeeping: shape asserts and symbolic sizes are not network ops.
BOOKKEEPING_OPS = frozenset(
    {"_assert_tensor_metadata", "_assert_scalar", "_assert_async", "_functional_assert_async", "sym_size", "sym_numel",
     "sym_stride", "sym_storage_offset", "sym_constrain_range", "sym_constrain_range_for_size", "_local_scalar_dense"}
)

_SIMPLE_KINDS: dict[str, OpKind] = {}
for _names, _kind in (
    (ELEMENTWISE_OPS, OpKind.ELEMENTWISE),
    (POOL_OPS | REDUCTION_OPS, OpKind.POOL),
    (NORM_OPS, OpKind.NORM),
    (SOFTMAX_OPS, OpKind.SOFTMAX),
    (CONCAT_OPS, OpKind.CONCAT),
    (VIEW_OPS, OpKind.RESHAPE),
    (PERMUTE_OPS, OpKind.PERMUTE),
    (SLICE_OPS, OpKind.SLICE),
    (SHUFFLE_OPS, OpKind.CHANNEL_SHUFFLE),
    (EMBEDDING_OPS, OpKind.EMBEDDING),
):
    for _name in _names:
        _SIMPLE_KINDS[_name] = _kind


def simple_kind(packet: str) -> OpKind | None:
    """The kind of a non-MAC op, or None when the table does not know it."""
    return _SIMPLE_KINDS.get(packet)


def fusable(kind: OpKind, packets: Collection[str | None], inputs: int) -> bool:
    """Whether a layer can run in its producer's output path (``Layer.fusable``).

    ``packets`` are the overload packet names of every op the layer covers, weight-side ops included
    (None for a call that is not an aten op); ``inputs`` is its number of activation inputs. True for a
    one-input ``NORM`` layer made only of per-channel norms (batch norm at inference) and for a
    one-input ``ELEMENTWISE`` layer made only of activations; False for everything else.
    """
    if inputs != 1 or not packets:
        return False
    names = set(packets)
    if kind is OpKind.NORM:
        return names <= PER_CHANNEL_NORMS
    if kind is OpKind.ELEMENTWISE:
        return names <= ACTIVATIONS
    return False


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape) if shape else 1


def _pair(value: Any, default: int) -> tuple[int, int]:
    if value is None:
        return (default, default)
    if isinstance(value, int):
        return (value, value)
    values = [int(item) for item in value]
    if len(values) == 1:
        return (values[0], values[0])
    return (values[0], values[1])


def conv_dims(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    output_shape: Sequence[int],
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
) -> ConvDims:
    """ConvDims of a 1-D or 2-D convolution from its tensor shapes (1-D is a 2-D conv of height 1)."""
    spatial = len(weight_shape) - 2
    batched = len(input_shape) == spatial + 2
    n = int(input_shape[0]) if batched else 1
    c = int(input_shape[1] if batched else input_shape[0])
    k = int(weight_shape[0])
    if spatial == 1:
        h, w = 1, int(input_shape[-1])
        r, s = 1, int(weight_shape[-1])
        p, q = 1, int(output_shape[-1])
        stride_hw = (1, _pair(stride, 1)[0])
        dilation_hw = (1, _pair(dilation, 1)[0])
        padding_hw = (0, _pair(padding, 0)[0]) if not isinstance(padding, str) else _same_padding((1, s), dilation_hw, padding)
    else:
        h, w = int(input_shape[-2]), int(input_shape[-1])
        r, s = int(weight_shape[-2]), int(weight_shape[-1])
        p, q = int(output_shape[-2]), int(output_shape[-1])
        stride_hw = _pair(stride, 1)
        dilation_hw = _pair(dilation, 1)
        padding_hw = _pair(padding, 0) if not isinstance(padding, str) else _same_padding((r, s), dilation_hw, padding)
    return ConvDims(
        n=n, k=k, c=c, p=p, q=q, r=r, s=s, h=h, w=w,
        groups=int(groups), stride=stride_hw, padding=padding_hw, dilation=dilation_hw,
    )


def _same_padding(kernel: tuple[int, int], dilation: tuple[int, int], mode: str) -> tuple[int, int]:
    """padding='same' pads d*(k-1) in total, the smaller half before; 'valid' pads nothing."""
    if mode == "valid":
        return (0, 0)
    return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))  # type: ignore[return-value]


def conv_kind(dims: ConvDims) -> OpKind:
    """Depthwise: groups == C (K a multiple of C); grouped: 1 < groups < C; otherwise a plain conv."""
    if dims.groups > 1 and dims.groups == dims.c and dims.k % dims.c == 0:
        return OpKind.DEPTHWISE_CONV
    if dims.groups > 1:
        return OpKind.GROUPED_CONV
    return OpKind.CONV


def linear_dims(input_shape: Sequence[int], in_features: int, out_features: int) -> GemmDims:
    """x[..., K] @ W^T: one GEMM of M = tokens (product of the leading dims) rows."""
    tokens = numel(input_shape[:-1])
    return GemmDims(batch=1, m=int(tokens), k=int(in_features), n=int(out_features))


def matmul_dims(a_shape: Sequence[int], b_shape: Sequence[int], output_shape: Sequence[int]) -> GemmDims:
    """torch.matmul semantics: 1-D operands gain a unit dim; batch = product of the broadcast batch dims.

    When only ``a`` has batch dims, torch folds them into M (one mm); MACs are the same either way,
    and the folded form is kept: batch=1, M = all rows of ``a``.
    """
    a = list(a_shape) if len(a_shape) >= 2 else [1, *a_shape]
    b = list(b_shape) if len(b_shape) >= 2 else [*b_shape, 1]
    k, n = int(a[-1]), int(b[-1])
    if len(b) == 2:
        return GemmDims(batch=1, m=int(numel(a[:-1])), k=k, n=n)
    batch = numel(_broadcast(a[:-2], b[:-2]))
    return GemmDims(batch=int(batch), m=int(a[-2]), k=k, n=n)


def _broadcast(a: Sequence[int], b: Sequence[int]) -> list[int]:
    size = max(len(a), len(b))
    a = [1] * (size - len(a)) + list(a)
    b = [1] * (size - len(b)) + list(b)
    return [max(x, y) for x, y in zip(a, b)]


def attention_dims(
    query_shape: Sequence[int], key_shape: Sequence[int], value_shape: Sequence[int]
) -> tuple[GemmDims, GemmDims]:
    """Scaled dot-product attention as two batched GEMMs: Q K^T (L x E x S) and A V (L x S x Ev).

    Matches FlopCounterMode's sdpa formula (2*B*H*L*S*E + 2*B*H*L*S*Ev flops).
    """
    batch = numel(_broadcast(query_shape[:-2], key_shape[:-2]))
    length, embed = int(query_shape[-2]), int(query_shape[-1])
    source, value_embed = int(key_shape[-2]), int(value_shape[-1])
    return (
        GemmDims(batch=int(batch), m=length, k=embed, n=source),
        GemmDims(batch=int(batch), m=length, k=source, n=value_embed),
    )


def pool_window(packet: str, args: Sequence[Any], input_shape: Sequence[int], output_shape: Sequence[int]) -> int:
    """Element operations of a pooling or reduction op: window size per output, or every input once."""
    if packet in ("max_pool1d", "max_pool2d", "max_pool2d_with_indices", "avg_pool1d", "avg_pool2d"):
        kernel = args[1] if len(args) > 1 else 1
        kernel = [kernel] if isinstance(kernel, int) else list(kernel)
        if packet.endswith("2d") or packet.endswith("indices"):
            kernel = kernel * 2 if len(kernel) == 1 else kernel
        return numel(output_shape) * numel(kernel)
    return numel(input_shape)
