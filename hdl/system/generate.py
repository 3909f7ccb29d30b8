"""``emit_system``: the whole system's Verilog and its manifest (``codesign hdl --system``).

The manifest says what a host or an SoC needs without reading the Python: the ports (the AXI4 memory master
``axi``, the AXI4-Lite register slave ``csr``), the control and status registers, the build parameters (array,
dataflow, GLB, DMA bus, accumulator, instruction memory) and where the instruction set and its timing are
documented (docs/isa.md, docs/system-rtl.md).
"""

from __future__ import annotations

import dataclasses
import os

from hdl.emit import EmittedDesign, emit
from hdl.system.params import SystemParams

__all__ = ["SYSTEM_TOP", "CSR_OFFSETS", "emit_system", "system_top_name"]

SYSTEM_TOP = "codesign_system"
CSR_OFFSETS = {"CTRL": 0x00, "STATUS": 0x04, "ERROR_CODE": 0x08, "ERROR_PC": 0x0C, "CYCLES_LO": 0x10,
               "CYCLES_HI": 0x14, "PROGRAM_ADDR": 0x18, "PROGRAM_COUNT": 0x1C, "PC": 0x20}


def system_top_name(params: SystemParams) -> str:
    return f"system_{params.dataflow}_{params.rows}x{params.cols}"


def _parameters(params: SystemParams) -> dict:
    core = dataclasses.asdict(params.core)
    return {"dataflow": params.dataflow, "rows": params.rows, "cols": params.cols, "core": core,
            "glb_bytes": params.glb_bytes, "glb_banks": params.glb_banks, "glb_word_bits": params.glb_word_bits,
            "axi_data_bytes": params.axi_data_bytes, "dram_latency_cycles": params.dram_latency_cycles,
            "stage_rows": params.stage_rows, "acc_rows": params.acc_rows, "param_entries": params.param_entries,
            "imem_depth": params.imem_depth}


def emit_system(params: SystemParams, out_dir: str | os.PathLike, *, name: str | None = None) -> EmittedDesign:
    """Write ``<name>.v`` (default ``system_top_name``) and manifest.json of the system ``params`` into ``out_dir``."""
    from hdl.system.system import AcceleratorSystem

    top = name or system_top_name(params)
    extra = {"isa": "docs/isa.md", "blocks": "docs/system-rtl.md", "csr_offsets": CSR_OFFSETS,
             "csr_port": "csr (AXI4-Lite, 32-bit data)",
             "memory_port": f"axi (AXI4 master, {8 * params.axi_data_bytes}-bit data, 32-bit byte addresses)"}
    return emit(AcceleratorSystem(params), top, out_dir, _parameters(params), kind="system", extra=extra)
