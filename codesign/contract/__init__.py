"""The cycle contract: what the simulator predicts and the generated RTL takes, in one place.

``tile_timing`` holds the per-tile formulas of the generated systolic core, ``gemm_timing`` how a GEMM is
cut into those tiles, and ``memory`` the transfer times of the DRAM channel and the global buffer at the
rates an accelerator spec gives; ``isa`` and ``system_timing`` the instruction set of the generated system and
the cycles of every instruction and program (docs/isa.md), which the compiler, its executor and the system RTL
share. ``dataflow``, ``sim`` and ``hdl`` all read it; it imports none of them.
"""

from codesign.contract import gemm_timing, isa, memory, system_timing, tile_timing

__all__ = ["gemm_timing", "isa", "memory", "system_timing", "tile_timing"]
