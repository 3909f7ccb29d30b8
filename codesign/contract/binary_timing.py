"""Cycle formula of binarized GEMM tiles on the generated XNOR-popcount core, shared by the simulator and the RTL.

The contract between ``dataflow.xnor_popcount`` (the simulator's model of the binary array) and
``hdl.binary_core.BinaryGemmCore``: the core is built to take exactly these cycles, the cocotb bench
measures it, and the generated design's manifest prints the same formula objects
(docs/core-protocol.md, "The binarized core", derives every term).

A tile computes C[m x n] = A[m x k] @ B[k x n] over {-1, +1} on ``rows`` x ``cols`` XNOR-popcount PEs,
output stationary with operands broadcast: m <= rows, n <= cols, the reduction k (in binary values,
i.e. bits) streamed as ``k_words = ceil(k / word_bits)`` packed words, one word per PE per edge.

Symbol: ``k_words`` is the number of packed words of the tile's reduction, ``ceil(k / word_bits)``
(the last word carries ``k mod word_bits`` valid bits, or a full word when k is a multiple).

    tile_cycles    = k_words + 2   (command edge to the edge transferring the tile's results)
    issue_interval = k_words       (command edge to the next command's edge, tiles back to back)

The result drain never delays the next tile: the whole tile leaves in one ``results`` transfer
the edge after it is copied out of the accumulators, and that copy shares its edge with the next
tile's first MAC. m, n, rows and cols do not enter (broadcast operands have no skew).

GEMM tiling (as ``gemm_timing`` does for WS/OS): M folded over the rows, N over the columns, K cut
into chunks of ``k_tile`` bits (a multiple of ``word_bits`` so that every chunk but the last is whole
words; at most ``MAX_WORDS`` words and at most what the accumulator holds). Order: m fold outermost,
then n fold, then k chunk innermost; each dimension is cut into full chunks then one remainder. Partial
sums of tiles that split K are added by the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from codesign.contract.formula import LinearFormula
from codesign.contract.gemm_timing import TileClasses, split_sizes
from codesign.contract.tile_timing import TileContract

__all__ = [
    "DATAFLOW", "MAX_WORDS", "WORD_SYMBOL", "BinaryTileContract", "CONTRACT", "k_words", "acc_bits_for",
    "max_tile_k", "check_k_tile", "tile_cycles", "issue_interval", "last_tile_correction", "sequence_cycles",
    "tile_cycles_array", "issue_interval_array", "gemm_tile_offsets", "predict_gemm_tiles", "tile_classes",
    "classes_sequence_cycles", "gemm_compute_cycles",
]

DATAFLOW = "xnor"
# Packed words of one tile's reduction on a generated core (its counters' and the simulator's bound);
# longer reductions are cut into several tiles whose partial sums the host adds.
MAX_WORDS = 1024
WORD_SYMBOL = "k_words"


@dataclass(frozen=True)
class BinaryTileContract(TileContract):
    """The XNOR core's tile timing. As ``TileContract`` (m bounded by the rows, n by the columns, k
    streamed), with the formulas over ``k_words`` instead of k."""

    symbols: tuple[tuple[str, str], ...] = ()

    def as_manifest(self) -> dict[str, str]:
        out = super().as_manifest()
        out.update({
            "to": "edge transferring the tile's results (the whole m x n tile in one transfer)",
            "symbols": dict(self.symbols),
            "python": "codesign.contract.binary_timing.tile_cycles, codesign.contract.binary_timing.issue_interval, "
                      "codesign.contract.binary_timing.sequence_cycles",
        })
        return out


CONTRACT = BinaryTileContract(
    dataflow=DATAFLOW, rows_dim="m", streamed_dim="k",
    tile=LinearFormula(((WORD_SYMBOL, 1),), 2),
    issue_interval=LinearFormula(((WORD_SYMBOL, 1),)),
    tile_means="one packed word per edge from the command's edge on (k_words beats), the last MAC one edge "
               "after the last beat, the copy into the result register one edge later, the transfer one after",
    issue_interval_means="the next command (with its first beat) is accepted on the edge after the last beat: "
                         "its first MAC shares the copy's edge, so the array never idles",
    symbols=((WORD_SYMBOL, "ceil(k / word_bits): packed words of the tile's reduction (k in bits)"),),
)


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


def k_words(k, word_bits: int):
    """Packed words of a k-long reduction: ceil(k / word_bits) (int or numpy array ``k``)."""
    return -(-k // word_bits)


def acc_bits_for(k: int) -> int:
    """Smallest signed accumulator width holding any {-1,+1} dot product of length ``k`` (|dot| <= k)."""
    return int(k).bit_length() + 1


def max_tile_k(word_bits: int, accumulator_bits: int, max_words: int = MAX_WORDS) -> int:
    """Longest tile reduction (bits) of a core with ``accumulator_bits``-wide accumulators: whole words,
    at most ``max_words`` of them, and no longer than the accumulator holds (|dot| <= 2**(acc-1) - 1).

    ValueError when the accumulator cannot hold even one word's dot product.
    """
    word_bits, accumulator_bits, max_words = (_positive(n, v) for n, v in (
        ("word_bits", word_bits), ("accumulator_bits", accumulator_bits), ("max_words", max_words)))
    holds = (1 << (accumulator_bits - 1)) - 1
    if holds < word_bits:
        raise ValueError(f"a {accumulator_bits}-bit accumulator cannot hold the dot product of one "
                         f"{word_bits}-bit word (needs {acc_bits_for(word_bits)} bits)")
    return min(max_words, holds // word_bits) * word_bits


def check_k_tile(k_tile: int, word_bits: int) -> int:
    """``k_tile`` if it is a whole number of words, at most ``MAX_WORDS``; ValueError otherwise."""
    k_tile, word_bits = _positive("k_tile", k_tile), _positive("word_bits", word_bits)
    if k_tile % word_bits:
        raise ValueError(f"k_tile={k_tile} is not a multiple of word_bits={word_bits}")
    if k_tile // word_bits > MAX_WORDS:
        raise ValueError(f"k_tile={k_tile} is {k_tile // word_bits} words, above MAX_WORDS={MAX_WORDS}")
    return k_tile


def _checked(m: int, k: int, n: int, rows: int, cols: int, word_bits: int) -> int:
    for name, value, high in (("m", m, rows), ("n", n, cols)):
        if not 1 <= value <= high:
            raise ValueError(f"tile {name}={value} outside 1..{high}")
    words = k_words(_positive("k", k), _positive("word_bits", word_bits))
    if words > MAX_WORDS:
        raise ValueError(f"tile k={k} is {words} words of {word_bits} bits, above MAX_WORDS={MAX_WORDS}")
    return words


def _values(m, k, n, rows, cols, word_bits) -> dict:
    return {"m": m, "n": n, "rows": rows, "cols": cols, WORD_SYMBOL: k_words(k, word_bits)}


def tile_cycles(m: int, k: int, n: int, rows: int, cols: int, word_bits: int) -> int:
    """Edges from the command of one tile alone to the transfer of its results (k in bits)."""
    _checked(m, k, n, rows, cols, word_bits)
    return int(CONTRACT.tile(**_values(m, k, n, rows, cols, word_bits)))


def issue_interval(m: int, k: int, n: int, rows: int, cols: int, word_bits: int) -> int:
    """Edges from this tile's accepted command to the next tile's, back to back with every stream ready."""
    _checked(m, k, n, rows, cols, word_bits)
    return int(CONTRACT.issue_interval(**_values(m, k, n, rows, cols, word_bits)))


def last_tile_correction(m: int, k: int, n: int, rows: int, cols: int, word_bits: int) -> int:
    """``tile_cycles - issue_interval`` of the last tile: what a sum of intervals adds to end on the last
    result instead of the next (absent) command."""
    return tile_cycles(m, k, n, rows, cols, word_bits) - issue_interval(m, k, n, rows, cols, word_bits)


def sequence_cycles(tiles: Sequence[tuple[int, int, int]], rows: int, cols: int, word_bits: int) -> int:
    """Cycles of (m, k, n) tiles run back to back in this order: first command accepted to last results.

    The sum of ``issue_interval`` over all but the last tile, plus ``tile_cycles`` of the last.
    """
    tiles = list(tiles)
    if not tiles:
        return 0
    leading = sum(issue_interval(m, k, n, rows, cols, word_bits) for m, k, n in tiles[:-1])
    return leading + tile_cycles(*tiles[-1], rows, cols, word_bits)


def tile_cycles_array(m, k, n, rows: int, cols: int, word_bits: int) -> np.ndarray:
    """Vectorized ``tile_cycles`` over arrays of tile sizes (no range checks)."""
    m, k, n = (np.asarray(v, dtype=np.int64) for v in (m, k, n))
    shape = np.broadcast(m, k, n).shape
    return np.broadcast_to(np.asarray(CONTRACT.tile(**_values(m, k, n, rows, cols, word_bits)), dtype=np.int64), shape)


def issue_interval_array(m, k, n, rows: int, cols: int, word_bits: int) -> np.ndarray:
    """Vectorized ``issue_interval`` over arrays of tile sizes (no range checks)."""
    m, k, n = (np.asarray(v, dtype=np.int64) for v in (m, k, n))
    shape = np.broadcast(m, k, n).shape
    value = CONTRACT.issue_interval(**_values(m, k, n, rows, cols, word_bits))
    return np.broadcast_to(np.asarray(value, dtype=np.int64), shape)


def _tile_bounds(m: int, k: int, n: int, rows: int, cols: int, word_bits: int, k_tile: int | None) -> tuple[int, int, int]:
    m, k, n, rows, cols = (_positive(label, value) for label, value in
                           (("m", m), ("k", k), ("n", n), ("rows", rows), ("cols", cols)))
    k_tile = MAX_WORDS * _positive("word_bits", word_bits) if k_tile is None else check_k_tile(k_tile, word_bits)
    return rows, k_tile, cols


def gemm_tile_offsets(m: int, k: int, n: int, rows: int, cols: int, word_bits: int, *,
                      k_tile: int | None = None) -> list[tuple[int, int, int, int, int, int]]:
    """(m0, k0, n0, tm, tk, tn) of every tile of an M x K @ K x N binarized GEMM, in execution order.

    m fold outermost, n fold, k chunk innermost (a tile's partial sums accumulate on consecutive tiles);
    ``k_tile`` (bits, a multiple of ``word_bits``) caps the chunk, default ``MAX_WORDS`` words.
    """
    m_max, k_max, n_max = _tile_bounds(m, k, n, rows, cols, word_bits, k_tile)
    out = []
    for m0 in range(0, m, m_max):
        for n0 in range(0, n, n_max):
            for k0 in range(0, k, k_max):
                out.append((m0, k0, n0, min(m_max, m - m0), min(k_max, k - k0), min(n_max, n - n0)))
    return out


def predict_gemm_tiles(m: int, k: int, n: int, rows: int, cols: int, word_bits: int, *,
                       k_tile: int | None = None) -> tuple[list[tuple[int, int, int]], int]:
    """The (m, k, n) tiles of a binarized GEMM in execution order, and their back-to-back cycles."""
    m_max, k_max, n_max = _tile_bounds(m, k, n, rows, cols, word_bits, k_tile)
    tiles = [(tm, tk, tn) for tm in split_sizes(m, m_max) for tn in split_sizes(n, n_max)
             for tk in split_sizes(k, k_max)]
    return tiles, sequence_cycles(tiles, rows, cols, word_bits)


def _split_classes(total: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    full, rest = divmod(total, chunk)
    sizes, counts = ([chunk], [full]) if full else ([], [])
    if rest:
        sizes.append(rest)
        counts.append(1)
    return np.asarray(sizes, dtype=np.int64), np.asarray(counts, dtype=np.int64)


def tile_classes(m: int, k: int, n: int, rows: int, cols: int, word_bits: int, *, k_tile: int | None = None,
                 batch: int = 1) -> TileClasses:
    """The tiles of ``predict_gemm_tiles`` grouped by shape (at most 8), times ``batch`` independent GEMMs."""
    m_max, k_max, n_max = _tile_bounds(m, k, n, rows, cols, word_bits, k_tile)
    (ms, mc), (ks, kc), (ns, nc) = _split_classes(m, m_max), _split_classes(k, k_max), _split_classes(n, n_max)
    gm, gk, gn = np.meshgrid(ms, ks, ns, indexing="ij")
    cm, ck, cn = np.meshgrid(mc, kc, nc, indexing="ij")
    last = (int(ms[-1]), int(ks[-1]), int(ns[-1]))
    return TileClasses(m=gm.ravel(), k=gk.ravel(), n=gn.ravel(), count=(cm * ck * cn).ravel() * int(batch), last=last)


def classes_sequence_cycles(classes: TileClasses, rows: int, cols: int, word_bits: int) -> int:
    """Back-to-back cycles of all tiles in ``classes``: every tile's issue interval, the last tile's own cycles."""
    count = np.asarray(classes.count, dtype=np.int64)
    if int(count.sum()) == 0:
        return 0
    intervals = issue_interval_array(classes.m, classes.k, classes.n, rows, cols, word_bits)
    return int((intervals * count).sum()) + last_tile_correction(*classes.last, rows, cols, word_bits)


def gemm_compute_cycles(m: int, k: int, n: int, rows: int, cols: int, word_bits: int, *,
                        k_tile: int | None = None, batch: int = 1) -> int:
    """Fast equivalent of ``predict_gemm_tiles(...)[1]`` (times ``batch`` GEMMs run back to back)."""
    classes = tile_classes(m, k, n, rows, cols, word_bits, k_tile=k_tile, batch=batch)
    return classes_sequence_cycles(classes, rows, cols, word_bits)
