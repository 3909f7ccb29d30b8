"""Weight stationary (TPU-style, Jouppi et al. ISCA 2017): K on the rows, N on the columns, M streamed.

Each PE holds one weight (or ``pack`` narrow ones); input rows stream in from the left, skewed, and
partial sums flow down the columns. A tile is k <= rows, n <= cols*pack and up to ``stream_tile``
rows of M; its cycles are ``sim.tile_timing``'s.
"""

from __future__ import annotations

from codesign.arch import Dataflow
from dataflow.systolic import SystolicRule

RULE = SystolicRule(
    dataflow=Dataflow.WEIGHT_STATIONARY,
    rows_dim="k",
    streamed_dim="m",
    stationary="weight",
    spatial_rows="K (reduction: C/G*R*S)",
    spatial_cols="N (filters: K/G)",
)
