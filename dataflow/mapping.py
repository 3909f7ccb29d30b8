"""A layer lowered for mapping (``Problem``) and one way to run it on an array (``Mapping``).

Every MAC layer is a batch of ``groups`` GEMMs, M x K @ K x N (conv by im2col per group: M = N*P*Q
output pixels, K = C/G*R*S, N = K/G filters). A mapping says which loop dimension unrolls over the
array's rows and columns, the temporal loop order, and the tile held at each memory level: the
global-buffer (GLB) block (bm, bk, bn) walked in ``dram_order``, and inside it the array tiles.
docs/simulator.md states every formula used here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from fractions import Fraction

from codesign.arch import ArchSpec, dataflow_name
from codesign.errors import MappingError
from codesign.sparsity import StructuredSkip, implies, pattern_text
from codesign.workload import ConvDims, GemmDims, Layer

GEMM_DIMS = ("m", "k", "n")
# The operand each GEMM tensor is, and the GEMM dimensions that index it.
OPERAND_DIMS = {"input": ("m", "k"), "weight": ("k", "n"), "output": ("m", "n")}
OPERANDS = ("weight", "input", "output")
LEVELS = ("dram", "glb", "noc", "rf")

__all__ = ["GEMM_DIMS", "OPERAND_DIMS", "OPERANDS", "LEVELS", "Problem", "SUB_BYTE_BITS", "packing", "smallest_dims", "remaining_density", "structured_skip",
           "problem_of", "input_words", "glb_bits_needed", "check_fits", "Mapping"]


@dataclass(frozen=True)
class Problem:
    """A MAC layer as the mapper sees it: dims after structured pruning, widths, packing.

    ``input_ratio`` = ``input_unique / input_im2col`` (<= 1), unique input elements per im2col element:
    the GLB holds raw input and expands im2col on chip, so DRAM moves and stores only the unique share
    (kept as two integers so every rounding is exact). ``pack`` narrow MACs fit
    one PE per cycle (operands narrower than the PE); ``passes`` core passes per tile when operands
    are wider than the PE. ``conv`` is the conv view (GEMM layers as 1x1 convs over 1x1 images).

    Zeros (``codesign.sparsity``): ``weight_density`` of the mapped weights, ``input_density`` of the input
    activations (1 unless the accelerator acts on activation zeros), what the array does with each kind of
    zero (``weight_action``, ``activation_action``: 'none', 'gate', 'skip'), and ``stored``: the stored over
    dense size of each compressed (operand, level) as (operand, level, numerator, denominator).
    ``structured`` is the (N, M) an N:M systolic array compresses this layer's weights to (``structured_skip``;
    None when it runs dense); the dims stay dense: the array's K folds shrink (``compressed_k``), the weights are
    stored as values plus indices (``stored``), activations are read at full K. ``notes`` say why a layer with zeros on such an array runs dense.
    ``glb_allocation`` and ``glb_filter_bits`` are the accelerator's GLB allocation (``BufferSpec``): how a block
    fits (``glb_bits_needed``), whether filters stay between blocks (``streams_weights``) and how transfers overlap.
    """

    name: str
    groups: int
    m: int
    k: int
    n: int
    conv: ConvDims
    weight_bits: int
    activation_bits: int
    accumulator_bits: int
    weight_density: float = 1.0
    input_unique: int = 1
    input_im2col: int = 1
    pack: int = 1
    passes: int = 1
    input_density: float = 1.0
    weight_action: str = "skip"
    activation_action: str = "none"
    stored: tuple[tuple[str, str, int, int], ...] = ()
    structured: tuple[int, int] | None = None
    notes: tuple[str, ...] = ()
    glb_allocation: str = "double_buffered"
    glb_filter_bits: int = 0

    @property
    def input_ratio(self) -> float:
        return self.input_unique / self.input_im2col

    @property
    def macs(self) -> int:
        return self.groups * self.m * self.k * self.n

    def operand_bits(self, operand: str, final: bool = True) -> int:
        """Bits per word of an operand; outputs are partial sums (accumulator bits) until final."""
        if operand == "weight":
            return self.weight_bits
        if operand == "input":
            return self.activation_bits
        return self.activation_bits if final else self.accumulator_bits

    def signature(self) -> tuple:
        """Everything but the name: identical layers map and simulate identically."""
        return (self.groups, self.m, self.k, self.n, self.conv, self.weight_bits, self.activation_bits,
                self.accumulator_bits, self.weight_density, self.input_unique, self.input_im2col, self.pack, self.passes,
                self.input_density, self.weight_action, self.activation_action, self.stored, self.structured,
                self.notes, self.glb_allocation, self.glb_filter_bits)

    @property
    def streams_weights(self) -> bool:
        """A split GLB keeps no filters between blocks: every block's filters come from DRAM through the
        filter share (docs/simulator.md section 6)."""
        return self.glb_allocation == "split"

    @property
    def index_bits(self) -> int:
        """Index bits stored with each weight value of an N:M compressed layer: log2(M); 0 when dense."""
        return self.structured[1].bit_length() - 1 if self.structured else 0

    def compressed_k(self, k):
        """Stored weight rows of ``k`` consecutive reduction rows starting on a group boundary (ints or arrays):
        ``floor(k / M) * N + min(k mod M, N)`` under N:M compression, else ``k``."""
        if not self.structured:
            return k
        n, m = self.structured
        return k // m * n + np.minimum(k % m, n) if isinstance(k, np.ndarray) else k // m * n + min(k % m, n)

    @property
    def switched_macs(self) -> int:
        """MACs that switch the datapath: zero weights and zero activations switch nothing where the
        accelerator gates (or skips) them; the rest are counted like any MAC."""
        share = self.weight_density if self.weight_action != "none" else 1.0
        if self.activation_action != "none":
            share *= self.input_density
        return round(self.macs * share)

    def stored_bits(self, operand: str, level: str, dense_bits):
        """``dense_bits`` of ``operand`` ('weight', 'input', 'output') as stored at ``level`` ('dram', 'glb'):
        ``ceil(dense_bits * stored / dense)`` for a compressed format, else unchanged (ints or arrays)."""
        for name, where, num, den in self.stored:
            if name == operand and where == level:
                return _scaled_ceil(dense_bits, num, den)
        return dense_bits


def _scaled_ceil(bits, num: int, den: int):
    if isinstance(bits, np.ndarray):
        if bits.size and int(bits.max()) * num >= 1 << 62:  # beyond int64: exact Python integers
            return np.array([-(-int(b) * num // den) for b in bits.ravel()], dtype=np.int64).reshape(bits.shape)
        return -(-bits.astype(np.int64) * num // den)
    return -(-int(bits) * num // den)


def _conv_view(dims: ConvDims | GemmDims) -> ConvDims:
    if isinstance(dims, ConvDims):
        return dims
    return ConvDims(n=dims.m, k=dims.n * dims.batch, c=dims.k * dims.batch, p=1, q=1, r=1, s=1, h=1, w=1,
                    groups=dims.batch)


SUB_BYTE_BITS = 4  # weights this narrow or narrower pack into one 8-bit multiplier lane


def packing(weight_bits: int, activation_bits: int, arch: ArchSpec) -> tuple[int, int]:
    """(pack, passes). Sub-byte weights (<= 4 bits) share one 8-bit multiplier lane of the PE,
    ``min(8, pe_bits) // weight_bits`` of them (same activation, different filters), as in DSP packing of
    INT4 MACs; byte and wider weights run one MAC per PE per cycle. Operands wider than the PE take
    ceil(w/pe_w) * ceil(a/pe_a) bit-sliced passes."""
    pe = arch.pe
    passes = math.ceil(weight_bits / pe.weight_bits) * math.ceil(activation_bits / pe.activation_bits)
    if passes > 1:
        return 1, passes
    if weight_bits <= SUB_BYTE_BITS:
        return max(1, min(8, pe.weight_bits) // weight_bits), 1
    return 1, 1


def smallest_dims(dims: ConvDims | GemmDims) -> ConvDims | GemmDims:
    """What is left of a layer whose weights are all zero: no filter is removed to nothing, so one filter of
    one input channel (one group) remains, never more than any layer with a nonzero weight keeps."""
    if isinstance(dims, ConvDims):
        return replace(dims, k=1, c=1, groups=1)
    return replace(dims, k=1, n=1)


def remaining_density(layer: Layer, dims: ConvDims | GemmDims) -> float:
    """Nonzero share of the weights the mapped ``dims`` still hold.

    A layer's ``weight_density`` is over its whole dense weight; once whole filters or channels are removed
    (``effective_dims``), the remaining weights are denser: nonzero MACs over the effective dims' MACs.
    """
    if layer.effective_macs is None:
        return float(layer.weight_density)
    return min(1.0, layer.effective_macs / dims.macs) if dims.macs else 0.0


def structured_skip(layer: Layer, dims: ConvDims | GemmDims, arch: ArchSpec) -> tuple[StructuredSkip | None, tuple[str, ...]]:
    """The N:M compression the array applies to ``layer`` mapped with ``dims``, or None and a note saying why not.

    It applies when the accelerator's systolic array skips N:M groups (``sparsity.weights.structured``) and has
    the shape for it (``SparsitySpec.array_problem``; a spec derived from it may not), the layer's zeros follow a
    pattern that implies the array's N:M (a 1:4 layer runs on a 2:4 array), its input channels per kernel
    position are whole groups of M, and the compressed weights (N values of b + log2 M bits per M) take no more
    room than dense ones (``N * (b + log2 M) <= M * b``). docs/simulator.md, "Sparsity".
    """
    skip = arch.sparsity.weights.structured
    if skip is None or not layer.effective_macs:  # no N:M array, no zeros, or nothing left to run (smallest_dims)
        return None, ()
    want = pattern_text(skip.pattern)
    reason = arch.sparsity.array_problem(arch.rows, tuple(dataflow_name(flow) for flow in arch.dataflows))
    if reason:  # an array derived from the spec (another shape, another dataflow) or a binary array beside it
        notes = (f"N:M skipping: {arch.name}: {reason}: the weights' N:M pattern is not used",)
        return None, notes if layer.nm_pattern is not None else ()
    if layer.nm_pattern is None:
        return None, (f"N:M skipping: zeros in no N:M pattern (the array skips {want}): gated, not skipped",)
    have = pattern_text(layer.nm_pattern)
    if not implies(tuple(layer.nm_pattern), skip.n, skip.m):
        return None, (f"N:M skipping: {have} weights do not follow the array's {want}: run dense, zeros gated",)
    conv = _conv_view(dims)
    channels = conv.c // conv.groups
    if channels % skip.m:
        return None, (f"N:M skipping: {channels} input channels per filter tap are not whole groups of {skip.m}: "
                      f"run dense, zeros gated",)
    bits = layer.bits.weight
    if skip.n * (bits + skip.metadata_bits) > skip.m * bits:
        return None, (f"N:M skipping: {bits}-bit weights take more room as {want} values with {skip.metadata_bits}-bit "
                      f"indices than dense: run dense, zeros gated",)
    return skip, ()


def problem_of(layer: Layer, arch: ArchSpec, network_input: bool = False) -> Problem:
    """Lower a MAC layer (its effective dims, after structured pruning) for mapping on ``arch``;
    ``network_input``: the layer streams the network's own input (stored dense when the spec says
    ``compress_network_input: false``)."""
    dims = layer.effective_dims if layer.effective_dims is not None else layer.dims
    if dims is None:
        raise MappingError(f"layer {layer.name}: a {layer.op.value} layer has no loop dimensions to map")
    if layer.effective_macs == 0:
        dims = smallest_dims(layer.dims)  # every weight is zero: one filter of one channel is left, at density 0
    gemm = dims.gemm()
    if min(gemm.batch, gemm.m, gemm.k, gemm.n) < 1:
        raise MappingError(f"layer {layer.name}: empty GEMM {gemm.batch}x({gemm.m}x{gemm.k}x{gemm.n})")
    im2col = gemm.batch * gemm.m * gemm.k
    unique = im2col
    if isinstance(dims, ConvDims):
        unique = min(im2col, dims.n * dims.c * dims.h * dims.w)
    bits = layer.bits
    pack, passes = packing(bits.weight, bits.activation, arch)
    density = remaining_density(layer, dims)
    zeros = arch.sparsity
    acts = zeros.activations
    input_density = float(getattr(layer, "input_density", 1.0)) if (acts.compressed or acts.gates()) else 1.0
    output_density = float(getattr(layer, "output_density", 1.0)) if acts.compressed else 1.0
    elements = {"weight": gemm.batch * gemm.k * gemm.n, "input": unique, "output": gemm.batch * gemm.m * gemm.n}
    densities = {"weight": density, "input": input_density, "output": output_density}
    widths = {"weight": bits.weight, "input": bits.activation, "output": bits.activation}
    skip, notes = structured_skip(layer, dims, arch)
    stored = []
    for operand in ("weight", "input", "output"):
        spec = zeros.operand(operand)
        for level in ("dram", "glb"):
            if operand == "output" and level == "glb":
                continue  # partial sums accumulate in the GLB at accumulator width, uncompressed
            if operand == "weight" and skip is not None:  # N values and their indices per group of M, everywhere
                ratio = Fraction(skip.n * (bits.weight + skip.metadata_bits), skip.m * bits.weight)
            else:
                ratio = spec.ratio(level, elements[operand], round(densities[operand] * elements[operand]),
                                   widths[operand], network_input=network_input and operand == "input")
            if ratio != 1:
                stored.append((operand, level, ratio.numerator, ratio.denominator))
    return Problem(
        name=layer.name,
        groups=gemm.batch,
        m=gemm.m,
        k=gemm.k,
        n=gemm.n,
        conv=_conv_view(dims),
        weight_bits=bits.weight,
        activation_bits=bits.activation,
        accumulator_bits=bits.accumulator,
        weight_density=density,
        input_unique=unique,
        input_im2col=im2col,
        pack=pack,
        passes=passes,
        input_density=input_density,
        weight_action=zeros.weights.action.value,
        activation_action=acts.action.value,
        stored=tuple(stored),
        structured=skip.pattern if skip is not None else None,
        notes=notes,
        glb_allocation=arch.glb.allocation,
        glb_filter_bits=arch.glb.filter_bytes * 8,
    )


def input_words(problem: Problem, im2col_words: int) -> int:
    """Raw input words behind ``im2col_words`` expanded ones (what DRAM moves and the GLB holds)."""
    return -(-im2col_words * problem.input_unique // problem.input_im2col)


def glb_bits_needed(problem: Problem, block: tuple[int, int, int]) -> int:
    """GLB bits a block needs (docs/simulator.md section 6), input and weights at their stored size where the
    GLB holds them compressed. Double-buffered: 2 x (raw input + weights + partial sums at accumulator bits).
    Split: raw input + partial sums, once, plus the filter share the weights stream through."""
    bm, bk, bn = block
    inputs = problem.stored_bits("input", "glb", input_words(problem, bm * bk) * problem.activation_bits)
    psums = bm * bn * problem.accumulator_bits
    if problem.glb_allocation == "split":
        return inputs + psums + problem.glb_filter_bits
    return 2 * (inputs + problem.stored_bits("weight", "glb", bk * bn * problem.weight_bits) + psums)


def check_fits(problem: Problem, block: tuple[int, int, int], arch: ArchSpec) -> None:
    """MappingError naming the layer and the bytes it needs when even ``block`` (its smallest) does not fit."""
    need_bits = glb_bits_needed(problem, block)
    have_bits = arch.glb.size_bytes * 8
    if need_bits > have_bits:
        raise MappingError(
            f"layer {problem.name}: no mapping fits the {arch.glb.size_bytes}-byte global buffer; its smallest "
            f"tile {block[0]}x{block[1]}x{block[2]} (m x k x n) needs {math.ceil(need_bits / 8)} bytes "
            + ("single-buffered with its filter share" if problem.glb_allocation == "split" else "double-buffered")
        )


@dataclass(frozen=True)
class Mapping:
    """How one layer runs: spatial unrolling, temporal order, tiles per memory level.

    ``dataflow`` is the registered name of the dataflow model that proposed it. ``pe_loops`` are the
    dataflow's own loop bounds inside a PE (row stationary: the filters and channels a PE keeps in its
    register files), reported under "rf".
    """

    dataflow: str
    spatial_rows: str  # loop dimension unrolled over the array's rows
    spatial_cols: str
    dram_order: tuple[str, ...]  # GLB blocks walked outer -> inner over these GEMM dims
    block: tuple[int, int, int]  # GLB tile (m, k, n)
    array_tile: tuple[int, int, int]  # largest array tile (m, k, n)
    onchip_order: tuple[str, ...]  # array tiles inside a block, outer -> inner
    glb_footprint_bits: int  # GLB capacity the block needs under the GLB's allocation (``glb_bits_needed``)
    pe_loops: tuple[tuple[str, int], ...] = ()

    def pe_loop(self, name: str) -> int:
        """One of ``pe_loops`` by name (KeyError if the dataflow has no such loop)."""
        return dict(self.pe_loops)[name]

    def to_dict(self) -> dict:
        data = {
            "dataflow": self.dataflow,
            "spatial": {"rows": self.spatial_rows, "cols": self.spatial_cols},
            "temporal_order": {"dram": list(self.dram_order), "onchip": list(self.onchip_order)},
            "tiles": {
                "glb": dict(zip(GEMM_DIMS, self.block)),
                "array": dict(zip(GEMM_DIMS, self.array_tile)),
            },
            "glb_bytes": math.ceil(self.glb_footprint_bits / 8),
        }
        if self.pe_loops:
            data["rf"] = dict(self.pe_loops)
        return data
