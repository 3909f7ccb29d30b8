"""Builders shared by the dataflow and simulator tests: small layers, small accelerators, strategies."""

from __future__ import annotations

import networkx as nx
from hypothesis import strategies as st

from codesign.arch import ArchSpec, BufferSpec, Dataflow, DramSpec, EnergyTable, NocKind, PeSpec
from codesign.sparsity import OperandSparsity, SparsitySpec, StorageFormat, ZeroAction
from codesign.workload import Bits, ConvDims, GemmDims, Layer, OpKind, Workload, bytes_at

TABLE = EnergyTable(name="test-table", source="made up for tests", mac_8b_pj=0.25, rf_pj=1.0, noc_hop_pj=2.0,
                    glb_pj=6.0, dram_pj=200.0, access_bits=16)


def make_arch(rows=4, cols=4, glb_bytes=4096, dram_bytes_per_cycle=4, latency=5, rs=True, rf_words=(64, 12, 16),
              banks=2, pe_bits=8, sparsity: SparsitySpec | None = None) -> ArchSpec:
    flows = (Dataflow.WEIGHT_STATIONARY, Dataflow.OUTPUT_STATIONARY) + ((Dataflow.ROW_STATIONARY,) if rs else ())
    return ArchSpec(
        name=f"test-{rows}x{cols}", rows=rows, cols=cols,
        pe=PeSpec(weight_bits=pe_bits, activation_bits=pe_bits, accumulator_bits=32, weight_rf_words=rf_words[0],
                  activation_rf_words=rf_words[1], psum_rf_words=rf_words[2]),
        glb=BufferSpec(size_bytes=glb_bytes, banks=banks, words_per_cycle=1, word_bits=32),
        dram=DramSpec(bytes_per_cycle=dram_bytes_per_cycle, latency_cycles=latency),
        energy=TABLE, noc=NocKind.MULTICAST if rs else NocKind.SYSTOLIC, dataflows=flows,
        sparsity=sparsity or SparsitySpec(),
    )


def conv_layer(name="conv", n=1, k=4, c=3, h=6, w=6, r=3, s=3, stride=1, pad=1, groups=1, bits=Bits(),
               density=1.0, effective: ConvDims | None = None) -> Layer:
    p = (h + 2 * pad - r) // stride + 1
    q = (w + 2 * pad - s) // stride + 1
    dims = ConvDims(n=n, k=k, c=c, p=p, q=q, r=r, s=s, h=h, w=w, groups=groups, stride=(stride, stride),
                    padding=(pad, pad))
    op = OpKind.CONV
    if groups > 1:
        op = OpKind.DEPTHWISE_CONV if groups == c else OpKind.GROUPED_CONV
    params = k * (c // groups) * r * s
    eff_macs = None
    if effective is not None or density < 1.0:
        eff_macs = round((effective or dims).macs * density)
    return Layer(name=name, op=op, aten=("aten.convolution.default",), input_shapes=((n, c, h, w),),
                 output_shape=(n, k, p, q), dims=dims, macs=dims.macs, params=params, bits=bits,
                 input_bytes=bytes_at(n * c * h * w, bits.activation), weight_bytes=bytes_at(params, bits.weight),
                 output_bytes=bytes_at(n * k * p * q, bits.activation), weight_density=density,
                 effective_dims=effective, effective_macs=eff_macs)


def gemm_layer(name="fc", batch=1, m=3, k=10, n=7, op=OpKind.LINEAR, bits=Bits()) -> Layer:
    dims = GemmDims(batch=batch, m=m, k=k, n=n)
    return Layer(name=name, op=op, aten=("aten.mm.default",), input_shapes=((batch, m, k),),
                 output_shape=(batch, m, n), dims=dims, macs=dims.macs, params=k * n if op is OpKind.LINEAR else 0,
                 bits=bits, input_bytes=bytes_at(batch * m * k, bits.activation),
                 weight_bytes=bytes_at(batch * k * n, bits.weight), output_bytes=bytes_at(batch * m * n, bits.activation))


def vector_layer(name="relu", op=OpKind.ELEMENTWISE, elements=256) -> Layer:
    """A ReLU (or, with another ``op``, a layer of that kind on the vector unit); a ReLU is fusable, as capture
    records it."""
    return Layer(name=name, op=op, aten=("aten.relu.default",), input_shapes=((1, elements),),
                 output_shape=(1, elements), elementwise_ops=elements, input_bytes=elements, output_bytes=elements,
                 fusable=op is OpKind.ELEMENTWISE)


def workload(*layers: Layer) -> Workload:
    graph = nx.DiGraph()
    for a, b in zip(layers, layers[1:]):
        graph.add_edge(a.name, b.name)
    return Workload(model="test", layers=tuple(layers), graph=graph)


@st.composite
def small_conv(draw, name="conv"):
    """A random small conv (plain, strided, grouped or depthwise) with few enough cycles for the reference."""
    groups = draw(st.sampled_from([1, 1, 2, "dw"]))
    c = draw(st.integers(1, 5))
    if groups == "dw":
        groups, k = c, c
    else:
        c, k = c * groups, draw(st.integers(1, 5)) * groups
    r = draw(st.integers(1, 3))
    h = draw(st.integers(r, 7))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, r // 2))
    return conv_layer(name=name, n=draw(st.integers(1, 2)), k=k, c=c, h=h, w=draw(st.integers(r, 7)), r=r,
                      s=r, stride=stride, pad=pad, groups=groups)


@st.composite
def small_gemm(draw, name="fc"):
    op = draw(st.sampled_from([OpKind.LINEAR, OpKind.MATMUL]))
    batch = draw(st.integers(1, 3)) if op is OpKind.MATMUL else 1
    return gemm_layer(name=name, batch=batch, m=draw(st.integers(1, 9)), k=draw(st.integers(1, 20)),
                      n=draw(st.integers(1, 11)), op=op)


@st.composite
def operand_sparsity(draw):
    """Any storage format (with its metadata), where it applies, and any action on zeros."""
    fmt = draw(st.sampled_from(list(StorageFormat)))
    meta = draw(st.integers(1, 6)) if fmt in (StorageFormat.RUN_LENGTH, StorageFormat.COORDINATE_LIST) else 0
    levels = draw(st.sampled_from([("dram",), ("glb",), ("dram", "glb")]))
    return OperandSparsity(format=fmt, metadata_bits=meta, levels=levels, action=draw(st.sampled_from(list(ZeroAction))))


@st.composite
def small_arch(draw, sparse=True):
    """A random small accelerator; with ``sparse``, also a random sparsity section (half the time the default)."""
    sparsity = None
    if sparse and draw(st.booleans()):
        sparsity = SparsitySpec(weights=draw(operand_sparsity()), activations=draw(operand_sparsity()))
    return make_arch(rows=draw(st.integers(2, 5)), cols=draw(st.integers(2, 5)),
                     glb_bytes=draw(st.sampled_from([1024, 2048, 8192])),
                     dram_bytes_per_cycle=draw(st.sampled_from([1, 2.5, 8])), latency=draw(st.integers(0, 12)),
                     banks=draw(st.integers(1, 2)), rf_words=draw(st.sampled_from([(64, 12, 16), (2, 2, 2), (4, 2, 1)])),
                     sparsity=sparsity)


@st.composite
def small_varied_conv(draw, name="conv"):
    """A small conv at varied bit-widths (packed, wide, binarized) and weight density (pruned)."""
    base = draw(small_conv(name=name))
    w, a = draw(st.sampled_from([(8, 8), (4, 8), (2, 8), (16, 16), (1, 1), (8, 12)]))
    density = draw(st.sampled_from([1.0, 0.5, 0.3]))
    d = base.dims
    return conv_layer(name=name, n=d.n, k=d.k, c=d.c, h=d.h, w=d.w, r=d.r, s=d.s, stride=d.stride[0],
                      pad=d.padding[0], groups=d.groups, bits=Bits(weight=w, activation=a), density=density)
