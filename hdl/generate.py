"""Generate the GEMM core for a set of parameters: Verilog plus a manifest a testbench can drive it from."""

from __future__ import annotations

import os
from typing import Any

from hdl.core import GemmCore, command_layout
from hdl.emit import EmittedDesign, emit, prepare_out_dir
from hdl.params import CoreParams
from sim.tile_timing import TILE_GAP_CYCLES


def core_manifest_extra(params: CoreParams, core: GemmCore) -> dict[str, Any]:
    """Lane layout, command fields, buffering and the cycle formula, as docs/core-protocol.md states them."""
    m_max, k_max, n_max = params.tile_max
    fields = []
    offset = 0
    for name, shape in ((n, f.shape) for n, f in command_layout(params)):
        width = shape.width if hasattr(shape, "width") else len(shape)
        fields.append({"name": name, "lsb": offset, "width": width})
        offset += width
    lanes_acts = "A[i, 0..rows-1] (one row of A)" if params.dataflow == "ws" else "A[0..rows-1, t] (one column of A)"
    return {
        "dataflow": params.dataflow,
        "protocol": "docs/core-protocol.md",
        "cmd_fields": fields,
        "lanes": {
            "weights": {"count": params.cols, "bits": params.weight_bits, "signed": params.signed,
                        "carries": "B[t, 0..cols-1] (one row of B)"},
            "acts": {"count": params.rows, "bits": params.act_bits, "signed": params.signed, "carries": lanes_acts},
            "results": {"count": params.cols, "bits": params.acc_bits, "signed": params.signed,
                        "carries": "C[i, 0..cols-1] (one row of C)"},
            "order": "lane 0 in the least significant bits",
        },
        "results_fifo_depth": core.results_depth,
        "cycles": {
            "tile": "k + m + rows + cols" if params.dataflow == "ws" else "k + m + rows + cols - 2",
            "from": "edge accepting cmd",
            "to": "edge transferring the last result row",
            "issue_interval": (f"k + m + rows + cols + {TILE_GAP_CYCLES}" if params.dataflow == "ws"
                               else "k + rows + cols - 2"),
            "issue_interval_means": "edges from one accepted cmd to the next, tiles back to back",
            "sequence": "sum of issue_interval over all tiles but the last, plus the last tile's cycles",
            "python": "sim.tile_timing.tile_cycles, sim.tile_timing.issue_interval, sim.tile_timing.sequence_cycles",
        },
    }


def emit_core(params: CoreParams, out_dir: str | os.PathLike) -> EmittedDesign:
    """Write ``<top>.v`` and ``manifest.json`` for ``params`` into ``out_dir``."""
    prepare_out_dir(out_dir)  # fail on a bad folder before building anything
    core = GemmCore(params)
    return emit(core, params.top_name, out_dir, params.as_dict(), kind="gemm_core",
                extra=core_manifest_extra(params, core))
