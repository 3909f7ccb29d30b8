"""Weight stationary (TPU-style, Jouppi et al. ISCA 2017): K on the rows, N on the columns, M streamed.

Each PE holds one weight (or ``pack`` narrow ones); input rows stream in from the left, skewed, and
partial sums flow down the columns. A tile is k <= rows, n <= cols*pack and up to
``tile_timing.MAX_STREAM_TILE`` rows of M; its cycles are the contract's (``codesign.contract.tile_timing``).
"""

from __future__ import annotations

from dataflow import registry
from dataflow.systolic import SystolicDataflow, SystolicRule

__all__ = ["RULE", "MODEL"]

RULE = SystolicRule(
    dataflow="ws",
    stationary="weight",
    spatial_rows="K (reduction: C/G*R*S)",
    spatial_cols="N (filters: K/G)",
)
MODEL = registry.register(SystolicDataflow(RULE, "weight stationary: weights held in the PEs, inputs streamed"))
