"""Cycle formula of GEMM tiles on the generated systolic core, shared by the simulator and RTL.

This is the contract between ``sim`` and ``hdl``: the Amaranth core is built to take exactly
these cycles, and the cocotb benches measure it (docs/core-protocol.md derives every term).

A tile computes C[m x n] = A[m x k] @ B[k x n] on an array of ``rows`` x ``cols`` PEs:
  - weight stationary (WS): k <= rows, n <= cols, m unbounded (A streams through);
  - output stationary (OS): m <= rows, n <= cols, k unbounded (the reduction streams through).
``tile_cycles`` counts clock edges from the edge that accepts the tile's command to the edge
that transfers its last result row, with every input stream valid and the output always ready.
``issue_interval`` counts edges from one tile's accepted command to the next one's when tiles run
back to back: WS waits for the last result plus ``TILE_GAP_CYCLES``; OS accepts the next command
as soon as the array is free, the finished tile draining from a result bank meanwhile.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

TILE_GAP_CYCLES = 1

# The streamed dimension of one tile (WS: m rows of A, OS: k beats) on a generated core is at most
# this; the mapper cuts longer ones into tiles, so every tile it simulates is one the RTL can run.
MAX_STREAM_TILE = 1024

DATAFLOWS = ("ws", "os")


def _check(name: str, value: int, low: int, high: int | None) -> None:
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"tile {name}={value} outside {bound}")


def _check_dataflow(dataflow: str) -> None:
    if dataflow not in DATAFLOWS:
        raise ValueError(f"no RTL timing for dataflow {dataflow!r}")


def ws_tile_cycles(m: int, k: int, n: int, rows: int, cols: int) -> int:
    """WS: k cycles of weight load, m activation rows streamed, rows + cols of skew/latency/deskew."""
    _check("k", k, 1, rows)
    _check("n", n, 1, cols)
    _check("m", m, 1, None)
    return k + m + rows + cols


def os_tile_cycles(m: int, k: int, n: int, rows: int, cols: int) -> int:
    """OS: k - 1 beats after the one on the command's edge, rows + cols - 1 to the last PE's MAC (whose
    edge writes row 0 into the results FIFO), then m result rows transferred, one per edge."""
    _check("m", m, 1, rows)
    _check("n", n, 1, cols)
    _check("k", k, 1, None)
    return (k - 1) + (rows + cols - 1) + m


def tile_cycles(dataflow: str, m: int, k: int, n: int, rows: int, cols: int) -> int:
    """Edges from the command of one tile alone to its last result row."""
    _check_dataflow(dataflow)
    if dataflow == "ws":
        return ws_tile_cycles(m, k, n, rows, cols)
    return os_tile_cycles(m, k, n, rows, cols)


def issue_interval(dataflow: str, m: int, k: int, n: int, rows: int, cols: int) -> int:
    """Edges from this tile's accepted command to the next tile's, back to back with every stream ready.

    WS: ``tile_cycles + TILE_GAP_CYCLES`` (the next tile waits for the last result). OS: the last MAC's
    edge copies the tile into the result bank and accepts the next command: the drain of m rows
    overlaps the next tile (it is over after m <= rows edges, long before that tile's own copy).
    """
    cycles = tile_cycles(dataflow, m, k, n, rows, cols)  # checks the tile
    if dataflow == "ws":
        return cycles + TILE_GAP_CYCLES
    return os_issue_interval(k, rows, cols)


def os_issue_interval(k, rows: int, cols: int):
    """OS edges between commands back to back: k - 1 beats after the command's, rows + cols - 1 to the
    last MAC, whose edge copies the tile and takes the next command (int or array ``k``)."""
    return (k - 1) + (rows + cols - 1)


def tile_cycles_array(dataflow: str, m: np.ndarray, k: np.ndarray, n: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Vectorized ``tile_cycles`` over arrays of tile sizes (no range checks)."""
    _check_dataflow(dataflow)
    return np.asarray(m, dtype=np.int64) + np.asarray(k, dtype=np.int64) + rows + cols - 2 * (dataflow == "os")


def issue_interval_array(dataflow: str, m: np.ndarray, k: np.ndarray, n: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Vectorized ``issue_interval`` over arrays of tile sizes (no range checks)."""
    _check_dataflow(dataflow)
    if dataflow == "ws":
        return tile_cycles_array(dataflow, m, k, n, rows, cols) + TILE_GAP_CYCLES
    shape = np.broadcast(np.asarray(m), np.asarray(k)).shape
    return np.broadcast_to(os_issue_interval(np.asarray(k, dtype=np.int64), rows, cols), shape)


def last_tile_correction(dataflow: str, m: int, k: int, n: int, rows: int, cols: int) -> int:
    """``tile_cycles - issue_interval`` of the last tile: what a sum of intervals must add to end on
    the last result instead of the next (absent) command (WS: -TILE_GAP_CYCLES; OS: +m, its drain)."""
    return tile_cycles(dataflow, m, k, n, rows, cols) - issue_interval(dataflow, m, k, n, rows, cols)


def sequence_cycles(dataflow: str, tiles: Sequence[tuple[int, int, int]], rows: int, cols: int) -> int:
    """Cycles of (m, k, n) tiles run back to back in this order: first command accepted to last result.

    The sum of ``issue_interval`` over all but the last tile, plus ``tile_cycles`` of the last.
    """
    tiles = list(tiles)
    if not tiles:
        return 0
    leading = sum(issue_interval(dataflow, m, k, n, rows, cols) for m, k, n in tiles[:-1])
    return leading + tile_cycles(dataflow, *tiles[-1], rows, cols)


def classes_sequence_cycles(dataflow: str, m: np.ndarray, k: np.ndarray, n: np.ndarray, count: np.ndarray,
                            last: tuple[int, int, int], rows: int, cols: int) -> int:
    """``sequence_cycles`` of tiles grouped in classes (sizes and counts), ``last`` run last.

    Sum over classes of count x interval, corrected for the last tile (it ends on its last result).
    """
    count = np.asarray(count, dtype=np.int64)
    if int(count.sum()) == 0:
        return 0
    intervals = issue_interval_array(dataflow, m, k, n, rows, cols)
    return int((intervals * count).sum()) + last_tile_correction(dataflow, *last, rows, cols)
