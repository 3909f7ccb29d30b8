"""The aten op table: which layer kind each exported op is, and the loop dimensions of MAC ops.

Ops are keyed by their overload packet name (``conv2d`` for ``aten.conv2d.default``). MAC counts
follow ``torch.utils.flop_counter`` exactly: conv = N*K*(C/G)*P*Q*R*S (3-D: times the output depth and
the filter depth), transposed conv = N*C*H*W*(K/G)*R*S over its input, mm = M*K*N, bmm = B*M*K*N, and
flops = 2 * MACs. Ops without a kernel of their own here (einsum, LSTM / GRU / RNN) are lowered by torch's
decompositions first (``COMPOSITE_OPS``).
"""

from __future__ import annotations

import math
from typing import Any, Collection, Sequence

from codesign.workload import ConvDims, ConvNdDims, GemmDims, OpKind

__all__ = [
    "CONV_OPS", "LINEAR_OPS", "GEMM_OPS", "ATTENTION_OPS", "ACTIVATIONS", "ELEMENTWISE_OPS", "POOL_OPS",
    "REDUCTION_OPS", "PER_CHANNEL_NORMS", "NORM_OPS", "SOFTMAX_OPS", "CONCAT_OPS", "VIEW_OPS", "PERMUTE_OPS",
    "SLICE_OPS", "SPLIT_OPS", "SHUFFLE_OPS", "EMBEDDING_OPS", "BOOKKEEPING_OPS", "TRANSPOSED_CONV_OPS", "COMPOSITE_OPS",
    "RESAMPLE_OPS", "SHAPE_ONLY_OPS", "MAC_OPS",
    "simple_kind", "fusable", "numel", "conv_dims", "conv_kind", "conv_nest", "conv3d_dims", "transposed_conv_gemm",
    "linear_dims", "matmul_dims", "attention_dims", "pool_window", "resample_ops",
]

CONV_OPS = frozenset({"conv2d", "conv1d", "conv3d", "convolution", "_convolution"})
# ``convolution`` / ``_convolution`` with ``transposed=True`` are transposed convolutions too.
TRANSPOSED_CONV_OPS = frozenset({"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"})
# Composite ops lowered with torch's own decompositions before the walk: einsum to permutes, views and bmm; the
# recurrent layers to per-timestep linear layers (input and hidden GEMMs) and their gates' elementwise ops.
COMPOSITE_OPS = frozenset(
    "einsum lstm gru rnn_tanh rnn_relu lstm_cell gru_cell rnn_tanh_cell rnn_relu_cell".split()
)
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
# Every op that carries MACs (a constant subgraph holding one of them is costed as layers, not folded away).
MAC_OPS = CONV_OPS | TRANSPOSED_CONV_OPS | LINEAR_OPS | GEMM_OPS | ATTENTION_OPS

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
    to _to_copy copy type_as fill fill_ zero_ zeros_like ones_like full_like empty_like
    new_zeros new_ones new_full new_empty
    pad constant_pad_nd reflection_pad1d reflection_pad2d replication_pad1d replication_pad2d
    """.split()
)
POOL_OPS = frozenset(
    """
    max_pool1d max_pool2d max_pool2d_with_indices avg_pool1d avg_pool2d
    adaptive_avg_pool1d adaptive_avg_pool2d _adaptive_avg_pool2d adaptive_max_pool1d adaptive_max_pool2d
    max_pool3d max_pool3d_with_indices avg_pool3d adaptive_avg_pool3d _adaptive_avg_pool3d adaptive_max_pool3d
    """.split()
)
# Reductions over whole dimensions (global average pooling written as x.mean((2, 3)), token means).
REDUCTION_OPS = frozenset(
    "mean sum amax amin max min var std var_mean std_mean logsumexp norm prod linalg_vector_norm linalg_norm "
    "frobenius_norm".split()
)
# Resampling on the vector unit: each output a weighted sum of input taps (``resample_ops``).
RESAMPLE_OPS = frozenset(
    """
    upsample_nearest1d upsample_nearest2d upsample_nearest3d _upsample_nearest_exact1d _upsample_nearest_exact2d
    _upsample_nearest_exact3d upsample_linear1d upsample_bilinear2d _upsample_bilinear2d_aa upsample_bicubic2d
    _upsample_bicubic2d_aa upsample_trilinear3d grid_sampler grid_sampler_2d grid_sampler_3d affine_grid_generator
    """.split()
)
# Ops that read only their inputs' shapes (they write a constant): no input bytes.
SHAPE_ONLY_OPS = frozenset("zeros_like ones_like full_like empty_like new_zeros new_ones new_full new_empty".split())
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
# Copies of inputs side by side (repeat and tile concatenate copies of one input).
CONCAT_OPS = frozenset({"cat", "concat", "concatenate", "stack", "hstack", "vstack", "repeat", "tile"})
# Views: no data moves on an accelerator (the layout change, if any, is a PERMUTE node before them).
# Identities at inference (dropout in eval mode, clone, alias) count here too, and Tensor.unfold (sliding windows
# as a strided view: the op that consumes them reads, and pays for, every window).
VIEW_OPS = frozenset(
    """
    view _unsafe_view reshape flatten unflatten squeeze squeeze_ unsqueeze unsqueeze_ contiguous
    expand expand_as view_as reshape_as unfold alias clone detach lift_fresh_copy
    dropout dropout_ feature_dropout alpha_dropout feature_alpha_dropout native_dropout
    """.split()
)
# Data movement that moves every element once (a roll or flip is a permutation of the elements too).
PERMUTE_OPS = frozenset(
    {"permute", "transpose", "transpose_", "t", "swapaxes", "movedim", "numpy_T", "mT", "pixel_shuffle",
     "pixel_unshuffle", "roll", "flip"}
)
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
    (RESAMPLE_OPS, OpKind.RESAMPLE),
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
    return _sizes(value, 2, default)[:2]  # type: ignore[return-value]


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


def conv_kind(dims: ConvDims | ConvNdDims) -> OpKind:
    """Depthwise: groups == C (K a multiple of C); grouped: 1 < groups < C; otherwise a plain conv."""
    if dims.groups > 1 and dims.groups == dims.c and dims.k % dims.c == 0:
        return OpKind.DEPTHWISE_CONV
    if dims.groups > 1:
        return OpKind.GROUPED_CONV
    return OpKind.CONV


def _sizes(value: Any, rank: int, default: int) -> tuple[int, ...]:
    if value is None:
        return (default,) * rank
    if isinstance(value, int):
        return (value,) * rank
    values = [int(item) for item in value]
    return tuple(values * rank) if len(values) == 1 else tuple(values)


def conv_nest(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    output_shape: Sequence[int],
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    *,
    transposed: bool = False,
    output_padding: Any = None,
) -> ConvNdDims:
    """The loop nest of a convolution of any spatial rank from its tensor shapes.

    A convolution's weight is [K, C/G, *kernel]; a transposed convolution's is [C, K/G, *kernel].
    """
    rank = len(weight_shape) - 2
    batched = len(input_shape) == rank + 2
    n = int(input_shape[0]) if batched else 1
    c = int(input_shape[1] if batched else input_shape[0])
    kernel = tuple(int(size) for size in weight_shape[2:])
    k = int(weight_shape[1]) * int(groups) if transposed else int(weight_shape[0])
    dilation_sizes = _sizes(dilation, rank, 1)
    if isinstance(padding, str):
        padding_sizes = (0,) * rank if padding == "valid" else tuple(
            d * (size - 1) // 2 for size, d in zip(kernel, dilation_sizes)
        )
    else:
        padding_sizes = _sizes(padding, rank, 0)
    return ConvNdDims(
        n=n, k=k, c=c, groups=int(groups),
        input_size=tuple(int(size) for size in input_shape[-rank:]),
        output_size=tuple(int(size) for size in output_shape[-rank:]),
        kernel=kernel, stride=_sizes(stride, rank, 1), padding=padding_sizes, dilation=dilation_sizes,
        output_padding=_sizes(output_padding, rank, 0) if transposed else (),
        transposed=transposed,
    )


def conv3d_dims(nest: ConvNdDims) -> ConvDims:
    """A 3-D convolution as 2-D convolutions, one per output depth slice, over the T input slices it reads.

    Output slice d reads input slices d*stride + t*dilation (t < T): a 2-D convolution of C*T input channels
    (each group's C/G channels times T slices) and the R x S filter, on N*D' images. MACs are exact:
    N*D' * K * (C*T/G) * P*Q * R*S = N*K*(C/G) * D'*P*Q * T*R*S. Input reuse across depth slices is not
    modelled: each slice's 2-D convolution reads its T input slices itself.
    """
    depth, height, width = nest.input_size
    out_depth, p, q = nest.output_size
    t, r, s = nest.kernel
    return ConvDims(
        n=nest.n * out_depth, k=nest.k, c=nest.c * t, p=p, q=q, r=r, s=s, h=height, w=width,
        groups=nest.groups, stride=nest.stride[1:], padding=nest.padding[1:], dilation=nest.dilation[1:],
    )


def transposed_conv_gemm(nest: ConvNdDims) -> GemmDims:
    """A transposed convolution in col2im form: per group, every input pixel times the (C/G) x (K/G * taps)
    weight matrix gives its column of K/G * taps products (GEMM M = N*prod(input), K = C/G, N = K/G*taps),
    which an overlap-add then scatters into the output. MACs = N*C*prod(input)*(K/G)*taps, FlopCounterMode's."""
    taps = math.prod(nest.kernel)
    return GemmDims(
        batch=nest.groups, m=nest.n * math.prod(nest.input_size), k=nest.c // nest.groups,
        n=(nest.k // nest.groups) * taps,
    )


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
    if packet in ("max_pool1d", "max_pool2d", "max_pool2d_with_indices", "avg_pool1d", "avg_pool2d", "max_pool3d",
                  "max_pool3d_with_indices", "avg_pool3d"):
        kernel = args[1] if len(args) > 1 else 1
        kernel = [kernel] if isinstance(kernel, int) else list(kernel)
        if len(kernel) == 1:
            kernel = kernel * (3 if "3d" in packet else 2 if "2d" in packet else 1)
        return numel(output_shape) * numel(kernel)
    return numel(input_shape)


_INTERPOLATION_TAPS = {
    "upsample_nearest1d": 1, "upsample_nearest2d": 1, "upsample_nearest3d": 1, "_upsample_nearest_exact1d": 1,
    "_upsample_nearest_exact2d": 1, "_upsample_nearest_exact3d": 1, "upsample_linear1d": 2,
    "upsample_bilinear2d": 4, "upsample_trilinear3d": 8, "upsample_bicubic2d": 16,
}
_GRID_TAPS = {0: 4, 1: 1, 2: 16}  # grid_sampler interpolation_mode: 0 bilinear, 1 nearest, 2 bicubic


def resample_ops(packet: str, args: Sequence[Any], input_shape: Sequence[int], output_shape: Sequence[int]) -> int:
    """Element operations of a resampling op: one multiply-add per input tap of each output value.

    Nearest 1 tap (a copy), linear 2, bilinear 4, trilinear 8, bicubic 16. Antialiased resizing widens the
    filter by the downscale factor along each axis: 4 (bicubic 16) taps times the input / output area ratio
    when it shrinks. grid_sample as its mode (bilinear 4 taps, 3-D trilinear 8, nearest 1, bicubic 16);
    affine_grid is theta (2 x 3 or 3 x 4) times each output point's homogeneous coordinates: 3 (2-D) or 4 (3-D)
    multiply-adds per output value.
    """
    outputs = numel(output_shape)
    if packet in _INTERPOLATION_TAPS:
        return outputs * _INTERPOLATION_TAPS[packet]
    if packet in ("_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa"):
        base = 4 if "bilinear" in packet else 16
        spatial_in = numel(input_shape[-2:]) if len(input_shape) >= 2 else 1
        spatial_out = numel(output_shape[-2:]) if len(output_shape) >= 2 else 1
        shrink = max(1, -(-spatial_in // max(spatial_out, 1)))  # the filter widens by the downscale factor
        return outputs * base * shrink
    if packet in ("grid_sampler", "grid_sampler_2d", "grid_sampler_3d"):
        mode = int(args[2]) if len(args) > 2 and isinstance(args[2], int) else 0
        taps = _GRID_TAPS.get(mode, 4)
        if len(output_shape) == 5 and taps == 4:
            taps = 8
        return outputs * taps
    if packet == "affine_grid_generator":
        return outputs * (4 if len(output_shape) == 5 else 3)
    return outputs
