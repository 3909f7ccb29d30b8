"""Generate the GEMM core for a set of parameters: Verilog plus a manifest a testbench can drive it from.

The manifest's cycle formulas are the contract's own (``codesign.contract.tile_timing.contract(
dataflow).as_manifest()``), printed from the same formula objects the simulator evaluates.
"""

from __future__ import annotations

import os
from typing import Any

from codesign.contract import tile_timing
from hdl.core import GemmCore, command_layout
from hdl.emit import EmittedDesign, emit, prepare_out_dir
from hdl.params import CoreParams

__all__ = ["core_manifest_extra", "emit_core"]


def core_manifest_extra(params: CoreParams, core: GemmCore) -> dict[str, Any]:
    """Lane layout, command fields, buffering and the cycle formulas, as docs/core-protocol.md states them."""
    fields = []
    offset = 0
    for name, shape in ((n, f.shape) for n, f in command_layout(params)):
        width = shape.width if hasattr(shape, "width") else len(shape)
        fields.append({"name": name, "lsb": offset, "width": width})
        offset += width
    return {
        "dataflow": params.dataflow,
        "protocol": "docs/core-protocol.md",
        "cmd_fields": fields,
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
