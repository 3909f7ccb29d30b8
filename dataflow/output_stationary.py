"""Output stationary (ShiDianNao-style, Du et al. ISCA 2015): M on the rows, N on the columns, K streamed.

Each PE accumulates one output (or ``pack`` of them); inputs flow along the rows and weights down the
columns, skewed, and the finished m x n results drain at the end of the tile. A tile is m <= rows,
n <= cols*pack and up to ``stream_tile`` of K; its cycles are ``sim.tile_timing``'s.
"""

from __future__ import annotations

from codesign.arch import Dataflow
from dataflow.systolic import SystolicRule

RULE = SystolicRule(
    dataflow=Dataflow.OUTPUT_STATIONARY,
    rows_dim="m",
    streamed_dim="k",
    stationary="output",
    spatial_rows="M (output pixels: N*P*Q)",
    spatial_cols="N (filters: K/G)",
)
