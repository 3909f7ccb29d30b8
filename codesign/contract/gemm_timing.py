"""How a GEMM is cut into tiles on a systolic array, and the compute cycles of those tiles.

Built only on ``codesign.contract.tile_timing`` (the per-tile contract with the RTL): this module decides the
tiles and their order, ``tile_timing`` says what each costs. Compute only: operands are already
on chip; memory stalls are added by ``sim.memory``.

Tiling (docs/simulator.md, "Folds"):
  - WS: K on rows, N on columns, M streamed. Tiles: k <= rows, n <= cols, m <= ``stream_tile``
    (the whole M unless the buffer forces a split). Order: m chunk, then n fold, then k fold
    (innermost, so a tile's partial sums accumulate on consecutive tiles).
  - OS: M on rows, N on columns, K streamed. Tiles: m <= rows, n <= cols, k <= ``stream_tile``.
    Order: m fold, then n fold, then k chunk (innermost).
Each dimension is cut into full chunks followed by one remainder chunk, so the last tile run is
the remainder (or full chunk) of every dimension: the sequence ends on its ``tile_cycles`` while every
other tile costs its ``issue_interval`` (OS tiles overlap their drain with the next tile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.contract import tile_timing

__all__ = ["split_sizes", "predict_gemm_tiles", "TileClasses", "tile_classes", "classes_compute_cycles",
           "gemm_compute_cycles"]

RTL_DATAFLOWS = tile_timing.DATAFLOWS


def _dataflow_name(dataflow: object) -> str:
    name = getattr(dataflow, "value", dataflow)
    if name not in RTL_DATAFLOWS:
        raise ValueError(f"no systolic tiling for dataflow {name!r}; expected one of {RTL_DATAFLOWS}")
    return str(name)


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


def split_sizes(total: int, chunk: int) -> list[int]:
    """``total`` cut into chunks of ``chunk``: all full chunks, then the remainder (if any)."""
    full, rest = divmod(total, chunk)
    return [chunk] * full + ([rest] if rest else [])


def _split_classes(total: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """(sizes, counts) of ``split_sizes`` without listing every chunk."""
    full, rest = divmod(total, chunk)
    sizes = [chunk] if full else []
    counts = [full] if full else []
    if rest:
        sizes.append(rest)
        counts.append(1)
    return np.asarray(sizes, dtype=np.int64), np.asarray(counts, dtype=np.int64)


def _tile_bounds(dataflow: str, m: int, k: int, rows: int, cols: int, stream_tile: int | None) -> tuple[int, int, int]:
    """Largest tile (m, k, n) the array takes: spatial dims bounded by the array, streamed by ``stream_tile``."""
    bounds = tile_timing.contract(dataflow).bounds(rows, cols)
    whole = {"m": m, "k": k}
    return tuple(bounds[d] if bounds[d] is not None else (stream_tile or whole[d]) for d in ("m", "k", "n"))


def predict_gemm_tiles(
    dataflow: object,
    m: int,
    k: int,
    n: int,
    rows: int,
    cols: int,
    *,
    stream_tile: int | None = None,
) -> tuple[list[tuple[int, int, int]], int]:
    """The (m, k, n) tiles of an M x K @ K x N GEMM in execution order, and their back-to-back cycles.

    ``stream_tile`` caps the streamed dimension (M for WS, K for OS); None streams it whole.
    """
    name = _dataflow_name(dataflow)
    m, k, n, rows, cols = (_positive(label, value) for label, value in
                           (("m", m), ("k", k), ("n", n), ("rows", rows), ("cols", cols)))
    if stream_tile is not None:
        stream_tile = _positive("stream_tile", stream_tile)
    m_max, k_max, n_max = _tile_bounds(name, m, k, rows, cols, stream_tile)
    m_sizes, k_sizes, n_sizes = split_sizes(m, m_max), split_sizes(k, k_max), split_sizes(n, n_max)
    # m chunk/fold outermost, n fold next, k innermost -- same nesting for both dataflows.
    tiles = [(tm, tk, tn) for tm in m_sizes for tn in n_sizes for tk in k_sizes]
    return tiles, tile_timing.sequence_cycles(name, tiles, rows, cols)


@dataclass(frozen=True)
class TileClasses:
    """The distinct tile shapes of a tiled GEMM with how often each occurs (at most 8 shapes),
    and the shape of the tile run last."""

    m: np.ndarray
    k: np.ndarray
    n: np.ndarray
    count: np.ndarray
    last: tuple[int, int, int]

    @property
    def tiles(self) -> int:
        return int(self.count.sum())

    @property
    def macs(self) -> int:
        return int((self.m * self.k * self.n * self.count).sum())


def tile_classes(
    dataflow: object,
    m: int,
    k: int,
    n: int,
    rows: int,
    cols: int,
    *,
    stream_tile: int | None = None,
    batch: int = 1,
) -> TileClasses:
    """The tiles of ``predict_gemm_tiles`` grouped by shape, times ``batch`` independent GEMMs."""
    name = _dataflow_name(dataflow)
    m, k, n, rows, cols = (_positive(label, value) for label, value in
                           (("m", m), ("k", k), ("n", n), ("rows", rows), ("cols", cols)))
    m_max, k_max, n_max = _tile_bounds(name, m, k, rows, cols, stream_tile)
    (ms, mc), (ks, kc), (ns, nc) = _split_classes(m, m_max), _split_classes(k, k_max), _split_classes(n, n_max)
    gm, gk, gn = np.meshgrid(ms, ks, ns, indexing="ij")
    cm, ck, cn = np.meshgrid(mc, kc, nc, indexing="ij")
    last = (int(ms[-1]), int(ks[-1]), int(ns[-1]))  # m, n and k chunks all at their last
    return TileClasses(m=gm.ravel(), k=gk.ravel(), n=gn.ravel(), count=(cm * ck * cn).ravel() * int(batch), last=last)


def classes_compute_cycles(dataflow: object, classes: TileClasses, rows: int, cols: int) -> int:
    """Back-to-back cycles of all tiles in ``classes``: every tile's issue interval, the last tile's own cycles."""
    name = _dataflow_name(dataflow)
    return tile_timing.classes_sequence_cycles(name, classes.m, classes.k, classes.n, classes.count, classes.last,
                                               rows, cols)


def gemm_compute_cycles(
    dataflow: object,
    m: int,
    k: int,
    n: int,
    rows: int,
    cols: int,
    *,
    stream_tile: int | None = None,
    batch: int = 1,
) -> int:
    """Fast equivalent of ``predict_gemm_tiles(...)[1]`` (times ``batch`` GEMMs run back to back)."""
    classes = tile_classes(dataflow, m, k, n, rows, cols, stream_tile=stream_tile, batch=batch)
    return classes_compute_cycles(dataflow, classes, rows, cols)
