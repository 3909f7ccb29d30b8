"""Generate the GEMM core for a set of parameters: Verilog plus a manifest a testbench can drive it from.

The manifest's cycle formulas are the contract's own (``codesign.contract.tile_timing.contract(
dataflow).as_manifest()`` for the integer cores, ``codesign.contract.binary_timing.CONTRACT.as_manifest()``
for the binarized core), printed from the same formula objects the simulator evaluates.
"""

from __future__ import annotations

import os
from typing import Any

from codesign.contract import binary_timing, rs_timing, tile_timing
from hdl.binary_core import BinaryGemmCore, binary_command_layout
from hdl.core import GemmCore, command_layout
from hdl.emit import EmittedDesign, emit, prepare_out_dir
from hdl.params import BinaryCoreParams, CoreParams

__all__ = ["OUT_OF_RANGE", "GEMM_TILE_ORDER", "core_manifest_extra", "binary_manifest_extra", "emit_core",
           "emit_binary_core", "rs_manifest_extra", "emit_rs_array"]


# What the core does with a command field outside 1..max (docs/core-protocol.md, "Out-of-range sizes").
OUT_OF_RANGE = "0 runs as 1; any value above max (the field holds up to 2**width - 1) runs as max"
# The order a whole GEMM is cut into tiles in (codesign.contract.gemm_timing.predict_gemm_tiles).
GEMM_TILE_ORDER = ("each of M, K, N cut into full chunks of its tile maximum, then the remainder; tiles issued "
                   "M chunk outermost, then N chunk, then K chunk innermost; the host adds the partial sums of "
                   "tiles that split K")


def _fields(layout, maxima: tuple[int, int, int]) -> list[dict[str, Any]]:
    fields = []
    offset = 0
    for (name, shape), maximum in zip(((n, f.shape) for n, f in layout), maxima):
        width = shape.width if hasattr(shape, "width") else len(shape)
        fields.append({"name": name, "lsb": offset, "width": width, "max": maximum})
        offset += width
    return fields


def core_manifest_extra(params: CoreParams, core: GemmCore) -> dict[str, Any]:
    """Lane layout, command fields, buffering and the cycle formulas, as docs/core-protocol.md states them."""
    fields = _fields(command_layout(params), params.tile_max)
    m_max, k_max, n_max = params.tile_max
    return {
        "dataflow": params.dataflow,
        "protocol": "docs/core-protocol.md",
        "cmd_fields": fields,
        "cmd_out_of_range": OUT_OF_RANGE,
        "tile_max": {"m": m_max, "k": k_max, "n": n_max},
        "gemm_tile_order": GEMM_TILE_ORDER,
        "lanes": {
            "weights": {"count": params.cols, "bits": params.weight_bits, "signed": params.weight_signed,
                        "carries": "B[t, 0..cols-1] (one row of B)"},
            "acts": {"count": params.rows, "bits": params.activation_bits, "signed": params.activation_signed,
                     "carries": core.kind.acts_carry},
            "results": {"count": params.cols, "bits": params.acc_bits, "signed": params.signed,
                        "carries": "C[i, 0..cols-1] (one row of C)"},
            "order": "lane 0 in the least significant bits",
        },
        "results_fifo_depth": core.results_depth,
        "cycles": tile_timing.contract(params.dataflow).as_manifest(),
    }


def binary_manifest_extra(params: BinaryCoreParams) -> dict[str, Any]:
    """Lane layout, command fields, the bit convention and the cycle formulas of the binarized core
    (docs/core-protocol.md, "The binarized core")."""
    return {
        "dataflow": params.dataflow,
        "protocol": "docs/core-protocol.md#the-binarized-core",
        "cmd_fields": _fields(binary_command_layout(params), params.tile_max),
        "cmd_out_of_range": OUT_OF_RANGE,
        "tile_max": dict(zip("mkn", params.tile_max)),
        "k_tile": params.k_tile,
        "gemm_tile_order": GEMM_TILE_ORDER + " (K chunks are k_tile bits: max_k rounded down to whole words)",
        "cmd_k_unit": "bits (binary values) of the reduction, 1..max_k; the tile streams ceil(k / word_bits) words",
        "bit_convention": "bit 1 = +1, bit 0 = -1; bit i of word t holds reduction index t * word_bits + i",
        "lanes": {
            "weights": {"count": params.cols, "bits": params.word_bits, "signed": False,
                        "carries": "word t of every column of B: lane c = B[t*word_bits .. t*word_bits+word_bits-1, c]"},
            "acts": {"count": params.rows, "bits": params.word_bits, "signed": False,
                     "carries": "word t of every row of A: lane r = A[r, t*word_bits .. t*word_bits+word_bits-1]"},
            "results": {"count": params.rows * params.cols, "bits": params.acc_bits, "signed": True,
                        "carries": "the whole tile: lane r*cols + c = C[r, c] (zero outside m x n)"},
            "order": "lane 0 in the least significant bits",
        },
        "results_buffer": "one result register (a whole tile)",
        "cycles": binary_timing.CONTRACT.as_manifest(),
    }


def emit_binary_core(params: BinaryCoreParams, out_dir: str | os.PathLike) -> EmittedDesign:
    """Write the binarized GEMM core of ``params`` as ``<top>.v`` and ``manifest.json`` into ``out_dir``.

    As ``emit_core``; the manifest's ``cycles`` block is ``binary_timing.CONTRACT.as_manifest()``.
    """
    prepare_out_dir(out_dir)
    core = BinaryGemmCore(params)
    return emit(core, params.top_name, out_dir, params.as_dict(), kind="binary_gemm_core",
                extra=binary_manifest_extra(params))


def emit_core(params: CoreParams, out_dir: str | os.PathLike) -> EmittedDesign:
    """Write the GEMM core of ``params`` as ``<top>.v`` and ``manifest.json`` into ``out_dir``.

    Parameters: ``params``, a checked ``CoreParams``; ``out_dir``, the folder to write into (created
    if its parent exists). Returns the ``EmittedDesign`` (both paths and the manifest dict; the
    manifest's ``cycles`` block is the contract's ``as_manifest()``). Raises OutputError when the
    folder cannot be made or written, HdlError when the design cannot be built or converted.
    """
    prepare_out_dir(out_dir)  # fail on a bad folder before building anything
    core = GemmCore(params)
    return emit(core, params.top_name, out_dir, params.as_dict(), kind="gemm_core",
                extra=core_manifest_extra(params, core))


def rs_manifest_extra(params) -> dict[str, Any]:
    """Lane layout, command fields, stream order and the pass timing of the row-stationary array
    (docs/rs-array.md); ``cycles`` is ``codesign.contract.rs_timing.as_manifest()``."""
    from hdl.rs_array import command_layout

    maxima = (params.max_p, params.max_q, params.max_taps, params.max_out_cols, params.max_stride)
    r, e = params.set_rows, params.set_cols
    return {
        "dataflow": "rs",
        "protocol": "docs/rs-array.md",
        "cmd_fields": _fields(command_layout(params), maxima),
        "cmd_out_of_range": OUT_OF_RANGE,
        "pass_limits": {"p*q*taps": params.weight_rf_words, "q*taps": params.activation_rf_words,
                        "p": params.psum_rf_words, "out_cols": params.max_out_cols},
        "sets": {"count": params.sets, "rows": r, "cols": e, "numbering": "row-major over the array"},
        "lanes": {
            "filters": {"count": params.sets * r, "bits": params.weight_bits, "signed": params.weight_signed,
                        "carries": "lane set*r + i: the filter word of set row i; beats f, c, s (s innermost)"},
            "inputs": {"count": params.sets * params.diagonals, "bits": params.activation_bits,
                       "signed": params.activation_signed,
                       "carries": "lane set*(r+(e-1)*max_stride) + d: input row d (PE (i, j) reads row "
                                  "i + stride*j); the prime (c, s), then per output column x = 1..Q-1 and channel "
                                  "c the n = min(stride, taps) new inputs stride*x + s, s = taps-n..taps-1"},
            "psums": {"count": params.sets * e, "bits": params.psum_bits, "signed": params.signed,
                      "carries": "lane set*e + j: output row j; per output column x, one beat per filter"},
            "order": "lane 0 in the least significant bits",
        },
        "cycles": rs_timing.as_manifest(),
    }


def emit_rs_array(params, out_dir: str | os.PathLike) -> EmittedDesign:
    """Write the row-stationary array of ``params`` (an ``hdl.rs_pe.RsParams``) as ``<top>.v`` and
    ``manifest.json`` into ``out_dir``. Raises as ``emit_core``."""
    from hdl.rs_array import RsArray

    prepare_out_dir(out_dir)
    array = RsArray(params)
    return emit(array, params.top_name, out_dir, params.as_dict(), kind="rs_array", extra=rs_manifest_extra(params))
