"""Output stationary (ShiDianNao-style, Du et al. ISCA 2015): M on the rows, N on the columns, K streamed.

Each PE accumulates one output (or ``pack`` of them); inputs flow along the rows and weights down the
columns, skewed, and the finished m x n results drain at the end of the tile. A tile is m <= rows,
n <= cols*pack and up to ``tile_timing.MAX_STREAM_TILE`` of K; its cycles are the contract's
(``codesign.contract.tile_timing``).
"""

from __future__ import annotations

from dataflow import registry
from dataflow.systolic import SystolicDataflow, SystolicRule

__all__ = ["RULE", "MODEL"]

RULE = SystolicRule(
    dataflow="os",
    stationary="output",
    spatial_rows="M (output pixels: N*P*Q)",
    spatial_cols="N (filters: K/G)",
)
MODEL = registry.register(SystolicDataflow(RULE, "output stationary: outputs accumulate in the PEs, the reduction streams"))
