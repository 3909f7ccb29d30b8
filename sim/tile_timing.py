"""Cycle formula of one GEMM tile on the generated systolic core, shared by the simulator and RTL.

This is the contract between ``sim`` and ``hdl``: the Amaranth core is built to take exactly
these cycles, and the cocotb benches measure it (docs/core-protocol.md derives every term).

A tile computes C[m x n] = A[m x k] @ B[k x n] on an array of ``rows`` x ``cols`` PEs:
  - weight stationary (WS): k <= rows, n <= cols, m unbounded (A streams through);
  - output stationary (OS): m <= rows, n <= cols, k unbounded (the reduction streams through).
``tile_cycles`` counts clock edges from the edge that accepts the tile's command to the edge
that transfers its last result row, with every input stream valid and the output always ready.
Tiles run back to back with ``TILE_GAP_CYCLES`` between one tile's last result and the next
command.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

TILE_GAP_CYCLES = 1


def _check(name: str, value: int, low: int, high: int | None) -> None:
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"tile {name}={value} outside {bound}")


def ws_tile_cycles(m: int, k: int, n: int, rows: int, cols: int) -> int:
    """WS: k cycles of weight load, m activation rows streamed, rows + cols of skew/latency/deskew."""
    _check("k", k, 1, rows)
    _check("n", n, 1, cols)
    _check("m", m, 1, None)
    return k + m + rows + cols


def os_tile_cycles(m: int, k: int, n: int, rows: int, cols: int) -> int:
    """OS: k operand beats, rows + cols - 1 until the last PE's MAC, then m result rows drained."""
    _check("m", m, 1, rows)
    _check("n", n, 1, cols)
    _check("k", k, 1, None)
    return k + m + rows + cols


def tile_cycles(dataflow: str, m: int, k: int, n: int, rows: int, cols: int) -> int:
    if dataflow == "ws":
        return ws_tile_cycles(m, k, n, rows, cols)
    if dataflow == "os":
        return os_tile_cycles(m, k, n, rows, cols)
    raise ValueError(f"no RTL timing for dataflow {dataflow!r}")


def tile_cycles_array(dataflow: str, m: np.ndarray, k: np.ndarray, n: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Vectorized ``tile_cycles`` over arrays of tile sizes (no range checks)."""
    if dataflow not in ("ws", "os"):
        raise ValueError(f"no RTL timing for dataflow {dataflow!r}")
    return np.asarray(m, dtype=np.int64) + np.asarray(k, dtype=np.int64) + rows + cols


def sequence_cycles(per_tile_cycles: Sequence[int]) -> int:
    """Cycles of tiles run back to back: first command accepted to last result transferred."""
    count = len(per_tile_cycles)
    if count == 0:
        return 0
    return int(sum(per_tile_cycles)) + (count - 1) * TILE_GAP_CYCLES
