"""Cycle formula of GEMM tiles on the generated systolic core, shared by the simulator and the RTL.

This is the contract between ``sim`` and ``hdl``: the Amaranth core is built to take exactly these
cycles, the cocotb benches measure it, and a generated design's manifest prints the same formulas
(docs/core-protocol.md derives every term).

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

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from codesign.contract.formula import LinearFormula

__all__ = [
    "TILE_GAP_CYCLES", "MAX_STREAM_TILE", "DATAFLOWS", "TileContract", "CONTRACTS", "contract",
    "ws_tile_cycles", "os_tile_cycles", "tile_cycles", "issue_interval", "os_issue_interval",
    "tile_cycles_array", "issue_interval_array", "last_tile_correction", "sequence_cycles",
    "classes_sequence_cycles",
]

TILE_GAP_CYCLES = 1

# The streamed dimension of one tile (WS: m rows of A, OS: k beats) on a generated core is at most
# this; the mapper cuts longer ones into tiles, so every tile it simulates is one the RTL can run.
MAX_STREAM_TILE = 1024


@dataclass(frozen=True)
class TileContract:
    """One dataflow's tile timing on the generated core: which tile sizes the array bounds, which it
    streams, and the two formulas (edges of one tile alone; edges between commands back to back)."""

    dataflow: str
    rows_dim: str  # tile dimension bounded by the array's rows
    streamed_dim: str  # tile dimension streamed through (up to MAX_STREAM_TILE)
    tile: LinearFormula
    issue_interval: LinearFormula
    tile_means: str
    issue_interval_means: str

    def bounds(self, rows: int, cols: int) -> dict[str, int | None]:
        """Largest tile per dimension (None: streamed, bounded only by the core's counters)."""
        bounded = {"m": None, "k": None, "n": cols}
        bounded[self.rows_dim] = rows
        return bounded

    def as_manifest(self) -> dict[str, str]:
        """The formulas as text, for a generated design's manifest."""
        return {
            "tile": self.tile.text(),
            "from": "edge accepting cmd",
            "to": "edge transferring the last result row",
            "issue_interval": self.issue_interval.text(),
            "issue_interval_means": "edges from one accepted cmd to the next, tiles back to back",
            "sequence": "sum of issue_interval over all tiles but the last, plus the last tile's cycles",
            "python": "codesign.contract.tile_timing.tile_cycles, codesign.contract.tile_timing.issue_interval, "
                      "codesign.contract.tile_timing.sequence_cycles",
        }


_WS_TILE = LinearFormula((("k", 1), ("m", 1), ("rows", 1), ("cols", 1)))
_OS_TILE = LinearFormula((("k", 1), ("m", 1), ("rows", 1), ("cols", 1)), -2)

CONTRACTS: dict[str, TileContract] = {
    "ws": TileContract(
        dataflow="ws", rows_dim="k", streamed_dim="m",
        tile=_WS_TILE, issue_interval=_WS_TILE.plus(TILE_GAP_CYCLES),
        tile_means="k cycles of weight load, m activation rows streamed, rows + cols of skew, latency and deskew",
        issue_interval_means="the next command waits for the last result plus TILE_GAP_CYCLES",
    ),
    "os": TileContract(
        dataflow="os", rows_dim="m", streamed_dim="k",
        tile=_OS_TILE, issue_interval=LinearFormula((("k", 1), ("rows", 1), ("cols", 1)), -2),
        tile_means="k - 1 beats after the command's, rows + cols - 1 to the last MAC, then m result rows",
        issue_interval_means="the last MAC's edge copies the tile into the result bank and takes the next command",
    ),
}
DATAFLOWS = tuple(CONTRACTS)


def contract(dataflow: object) -> TileContract:
    """The tile contract of ``dataflow`` ('ws', 'os' or a Dataflow); ValueError if it has no RTL timing."""
    name = getattr(dataflow, "value", dataflow)
    if name not in CONTRACTS:
        raise ValueError(f"no RTL timing for dataflow {name!r}")
    return CONTRACTS[name]


def _check(name: str, value: int, low: int, high: int | None) -> None:
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"tile {name}={value} outside {bound}")


def _checked(dataflow: str, m: int, k: int, n: int, rows: int, cols: int) -> TileContract:
    rule = contract(dataflow)
    bounds = rule.bounds(rows, cols)
    for name, value in (("k", k), ("n", n), ("m", m)) if rule.rows_dim == "k" else (("m", m), ("n", n), ("k", k)):
        _check(name, value, 1, bounds[name])
    return rule


def ws_tile_cycles(m: int, k: int, n: int, rows: int, cols: int) -> int:
    """WS: k cycles of weight load, m activation rows streamed, rows + cols of skew/latency/deskew."""
    return tile_cycles("ws", m, k, n, rows, cols)


def os_tile_cycles(m: int, k: int, n: int, rows: int, cols: int) -> int:
    """OS: k - 1 beats after the one on the command's edge, rows + cols - 1 to the last PE's MAC (whose
    edge writes row 0 into the results FIFO), then m result rows transferred, one per edge."""
    return tile_cycles("os", m, k, n, rows, cols)


def tile_cycles(dataflow: str, m: int, k: int, n: int, rows: int, cols: int) -> int:
    """Edges from the command of one tile alone to its last result row."""
    rule = _checked(dataflow, m, k, n, rows, cols)
    return int(rule.tile(m=m, k=k, n=n, rows=rows, cols=cols))


def issue_interval(dataflow: str, m: int, k: int, n: int, rows: int, cols: int) -> int:
    """Edges from this tile's accepted command to the next tile's, back to back with every stream ready.

    WS: ``tile_cycles + TILE_GAP_CYCLES`` (the next tile waits for the last result). OS: the last MAC's
    edge copies the tile into the result bank and accepts the next command: the drain of m rows
    overlaps the next tile (it is over after m <= rows edges, long before that tile's own copy).
    """
    rule = _checked(dataflow, m, k, n, rows, cols)
    return int(rule.issue_interval(m=m, k=k, n=n, rows=rows, cols=cols))


def os_issue_interval(k, rows: int, cols: int):
    """OS edges between commands back to back: k - 1 beats after the command's, rows + cols - 1 to the
    last MAC, whose edge copies the tile and takes the next command (int or array ``k``)."""
    return CONTRACTS["os"].issue_interval(k=k, rows=rows, cols=cols)


def tile_cycles_array(dataflow: str, m: np.ndarray, k: np.ndarray, n: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Vectorized ``tile_cycles`` over arrays of tile sizes (no range checks)."""
    rule = contract(dataflow)
    m, k, n = (np.asarray(v, dtype=np.int64) for v in (m, k, n))
    shape = np.broadcast(m, k, n).shape
    return np.broadcast_to(np.asarray(rule.tile(m=m, k=k, n=n, rows=rows, cols=cols), dtype=np.int64), shape)


def issue_interval_array(dataflow: str, m: np.ndarray, k: np.ndarray, n: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Vectorized ``issue_interval`` over arrays of tile sizes (no range checks)."""
    rule = contract(dataflow)
    m, k, n = (np.asarray(v, dtype=np.int64) for v in (m, k, n))
    shape = np.broadcast(m, k).shape
    value = rule.issue_interval(m=m, k=k, n=n, rows=rows, cols=cols)
    return np.broadcast_to(np.asarray(value, dtype=np.int64), shape)


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
