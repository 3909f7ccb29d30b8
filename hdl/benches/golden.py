"""Golden numpy model of the GEMM core and the test cases its benches run.

A case is a sequence of tiles run back to back, JSON-serializable so that a cocotb bench in
another process can read it: operands, stream beats (lane order as docs/core-protocol.md
specifies, unused lanes filled with random don't-care values), the expected result rows, and
the cycles the simulator predicts, from the cycle contract it shares with the RTL
(``codesign.contract.tile_timing`` per tile and for tiles back to back, where OS tiles overlap their
drain with the next tile; ``codesign.contract.gemm_timing`` for whole GEMMs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from codesign.contract import gemm_timing, tile_timing
from codesign.pe import operand_range, product_range
from hdl.params import CoreParams

__all__ = ["pack_lanes", "unpack_lanes", "golden_tile", "random_operands", "Tile", "Case", "make_tile",
           "tile_case", "extreme_cases", "gemm_offsets", "gemm_case", "assemble_gemm", "standard_cases"]


def pack_lanes(values, bits: int) -> int:
    """Lanes as one unsigned integer, lane 0 in the least significant bits (two's complement)."""
    mask = (1 << bits) - 1
    word = 0
    for lane, value in enumerate(values):
        word |= (int(value) & mask) << (lane * bits)
    return word


def unpack_lanes(word: int, bits: int, count: int, is_signed: bool) -> list[int]:
    """Inverse of ``pack_lanes``."""
    mask = (1 << bits) - 1
    out = []
    for lane in range(count):
        value = (word >> (lane * bits)) & mask
        if is_signed and value >> (bits - 1):
            value -= 1 << bits
        out.append(value)
    return out


def golden_tile(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = A @ B in exact integers (int64 holds every accumulator the core can build)."""
    return np.asarray(a, dtype=np.int64) @ np.asarray(b, dtype=np.int64)


def random_operands(rng: np.random.Generator, shape: tuple[int, int], bits: int, is_signed: bool,
                    extreme_share: float = 0.2) -> np.ndarray:
    """Uniform integers of the format, with a share of them set to its minimum or maximum."""
    lo, hi = operand_range(bits, is_signed)
    values = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    pick = rng.random(shape) < extreme_share
    values[pick] = rng.choice(np.array([lo, hi], dtype=np.int64), size=int(pick.sum()))
    return values


@dataclass
class Tile:
    m: int
    k: int
    n: int
    a: list[list[int]]
    b: list[list[int]]
    weight_beats: list[int]  # packed lanes, in transfer order
    act_beats: list[int]
    expected_rows: list[list[int]]  # m rows of n results (lanes beyond n are expected zero)


@dataclass
class Case:
    """Tiles run back to back; ``timed`` cases must take exactly ``predicted_cycles``."""

    name: str
    tiles: list[Tile]
    timed: bool = True
    valid_gap_share: float = 0.0  # chance an input stream holds back a beat for a cycle
    ready_low_share: float = 0.0  # chance results.ready is low in a cycle
    predicted_tile_cycles: list[int] = field(default_factory=list)
    predicted_cycles: int = 0
    gemm: dict[str, Any] | None = None  # for whole GEMMs: M, K, N, operands, expected C

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> "Case":
        tiles = [Tile(**tile) for tile in data["tiles"]]
        return Case(**{**data, "tiles": tiles})


def make_tile(params: CoreParams, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> Tile:
    """The stream beats and expected rows of one tile (``a``: m x k, ``b``: k x n)."""
    m, k = a.shape
    k2, n = b.shape
    assert k == k2
    m_max, k_max, n_max = params.tile_max
    if not (1 <= m <= m_max and 1 <= k <= k_max and 1 <= n <= n_max):
        raise ValueError(f"tile {m}x{k}x{n} exceeds the core's {m_max}x{k_max}x{n_max}")
    wb, ab = params.weight_bits, params.activation_bits
    rows, cols = params.rows, params.cols

    def lanes(values, count, bits, is_signed):  # real values first, random don't-care in the rest
        filler = random_operands(rng, (count - len(values),), bits, is_signed, 0.5).tolist()
        return pack_lanes(list(values) + filler, bits)

    weight_beats = [lanes(b[t], cols, wb, params.weight_signed) for t in range(k)]
    if params.dataflow == "ws":
        act_beats = [lanes(a[i], rows, ab, params.activation_signed) for i in range(m)]
    else:
        act_beats = [lanes(a[:, t], rows, ab, params.activation_signed) for t in range(k)]
    expected = golden_tile(a, b)
    return Tile(m, k, n, a.tolist(), b.tolist(), weight_beats, act_beats, expected.tolist())


def _predict(params: CoreParams, tiles: list[Tile]) -> tuple[list[int], int]:
    """Each tile's own cycles (command to last result) and the whole sequence's, back to back."""
    shapes = [(t.m, t.k, t.n) for t in tiles]
    per_tile = [tile_timing.tile_cycles(params.dataflow, *shape, params.rows, params.cols) for shape in shapes]
    return per_tile, tile_timing.sequence_cycles(params.dataflow, shapes, params.rows, params.cols)


def tile_case(params: CoreParams, name: str, shapes: list[tuple[int, int, int]], rng: np.random.Generator,
              *, extreme: str | None = None, **options: Any) -> Case:
    """Independent random tiles of the given (m, k, n) shapes, back to back.

    ``extreme``: "min" fills every operand with its minimum, "max" with its maximum, "minmax"
    weights at minimum and activations at maximum, "maxmin" weights at maximum and activations at
    minimum (``extreme_cases`` picks the ones giving the largest-magnitude products).
    """
    w_lo, w_hi = operand_range(params.weight_bits, params.weight_signed)
    a_lo, a_hi = operand_range(params.activation_bits, params.activation_signed)
    tiles = []
    for m, k, n in shapes:
        if extreme is None:
            a = random_operands(rng, (m, k), params.activation_bits, params.activation_signed)
            b = random_operands(rng, (k, n), params.weight_bits, params.weight_signed)
        else:
            a_val = {"min": a_lo, "max": a_hi, "minmax": a_hi, "maxmin": a_lo}[extreme]
            b_val = {"min": w_lo, "max": w_hi, "minmax": w_lo, "maxmin": w_hi}[extreme]
            a = np.full((m, k), a_val, dtype=np.int64)
            b = np.full((k, n), b_val, dtype=np.int64)
        tiles.append(make_tile(params, a, b, rng))
    per_tile, total = _predict(params, tiles)
    return Case(name, tiles, predicted_tile_cycles=per_tile, predicted_cycles=total, **options)


# extreme -> label (activation * weight), in the order extreme_cases tries them
_EXTREMES = {"min": "min*min", "max": "max*max", "minmax": "max*min", "maxmin": "min*max"}


def extreme_cases(params: CoreParams) -> list[tuple[str, str]]:
    """(label, extreme) of the operand corners giving the largest and the most negative product.

    Both signed: min*min and max*min; both unsigned: max*max (the smallest product is 0); mixed:
    the corners that reach ``codesign.pe.product_range``'s ends (a zero end is left out).
    """
    w_lo, w_hi = operand_range(params.weight_bits, params.weight_signed)
    a_lo, a_hi = operand_range(params.activation_bits, params.activation_signed)
    corner = {"min": w_lo * a_lo, "max": w_hi * a_hi, "minmax": w_lo * a_hi, "maxmin": w_hi * a_lo}
    lo, hi = product_range(params.weight_bits, params.activation_bits, params.weight_signed,
                           params.activation_signed)
    picked = [next(e for e in _EXTREMES if corner[e] == hi)]
    if lo != 0:
        picked.append(next(e for e in _EXTREMES if corner[e] == lo))
    return [(_EXTREMES[e], e) for e in picked]


def gemm_offsets(params: CoreParams, m: int, k: int, n: int) -> list[tuple[int, int, int, int, int, int]]:
    """(m0, k0, n0, tm, tk, tn) of each tile, in ``codesign.contract.gemm_timing``'s order and sizes.

    The sizes come from ``predict_gemm_tiles``; only the offsets are added here (running sums in
    its documented nesting: m outer, n, k inner), and checked against its tile list.
    """
    tiles, _ = gemm_timing.predict_gemm_tiles(params.dataflow, m, k, n, params.rows, params.cols,
                                              stream_tile=params.stream_tile)
    m_max, k_max, n_max = params.tile_max
    out = []
    for m0 in range(0, m, m_max):
        for n0 in range(0, n, n_max):
            for k0 in range(0, k, k_max):
                out.append((m0, k0, n0, min(m_max, m - m0), min(k_max, k - k0), min(n_max, n - n0)))
    if [(tm, tk, tn) for *_, tm, tk, tn in out] != [tuple(t) for t in tiles]:
        raise AssertionError(f"tile order differs from codesign.contract.gemm_timing: {tiles}")
    return out


def gemm_case(params: CoreParams, name: str, m: int, k: int, n: int, rng: np.random.Generator, **options: Any) -> Case:
    """A whole GEMM cut into tiles as the simulator cuts it; predicted cycles from ``predict_gemm_tiles``."""
    a = random_operands(rng, (m, k), params.activation_bits, params.activation_signed)
    b = random_operands(rng, (k, n), params.weight_bits, params.weight_signed)
    tiles = []
    for m0, k0, n0, tm, tk, tn in gemm_offsets(params, m, k, n):
        tiles.append(make_tile(params, a[m0:m0 + tm, k0:k0 + tk], b[k0:k0 + tk, n0:n0 + tn], rng))
    per_tile, _ = _predict(params, tiles)
    _, total = gemm_timing.predict_gemm_tiles(params.dataflow, m, k, n, params.rows, params.cols,
                                              stream_tile=params.stream_tile)
    gemm = {"m": m, "k": k, "n": n, "a": a.tolist(), "b": b.tolist(), "expected": golden_tile(a, b).tolist()}
    return Case(name, tiles, predicted_tile_cycles=per_tile, predicted_cycles=total, gemm=gemm, **options)


def assemble_gemm(params: CoreParams, case: Case, tile_rows: list[list[list[int]]]) -> np.ndarray:
    """The GEMM result from its tiles' result rows: partial sums over k tiles added, as a host would."""
    g = case.gemm
    assert g is not None
    out = np.zeros((g["m"], g["n"]), dtype=np.int64)
    for (m0, k0, n0, tm, tk, tn), rows in zip(gemm_offsets(params, g["m"], g["k"], g["n"]), tile_rows):
        out[m0:m0 + tm, n0:n0 + tn] += np.asarray(rows, dtype=np.int64)[:tm, :tn]
    return out


def standard_cases(params: CoreParams, seed: int, *, quick: bool = False) -> list[Case]:
    """The cases ``codesign verify`` runs: full and ragged tiles, extremes, back to back, a tiled
    GEMM whose sizes are not multiples of the array, one with stalls on every stream and one whose
    results are mostly stalled while short tiles follow each other."""
    rng = np.random.default_rng(seed)
    rows, cols = params.rows, params.cols
    m_max, k_max, n_max = params.tile_max
    stream = 2 * max(rows, cols) + 1  # streamed dimension of the single tiles
    if params.dataflow == "ws":
        full, ragged = (min(stream, m_max), rows, cols), (min(3, m_max), max(1, rows - 1), max(1, cols - 1))
    else:
        full, ragged = (rows, min(stream, k_max), cols), (max(1, rows - 1), min(3, k_max), max(1, cols - 1))
    one = (1, 1, 1)
    cases = [
        tile_case(params, "full tile", [full], rng),
        tile_case(params, "ragged tile", [ragged], rng),
        tile_case(params, "1x1x1 tile", [one], rng),
    ]
    # Largest-magnitude sums over the longest reduction the accumulator was sized for.
    longest = (full[0], params.reduction_max, full[2])
    for label, extreme in extreme_cases(params):
        cases.append(tile_case(params, f"extremes {label}", [longest], rng, extreme=extreme))
    cases += [
        tile_case(params, "back to back", [full, ragged, one, full], rng),
    ]
    gm, gk, gn = (2 * rows + 1, 2 * rows + 3, 2 * cols - 1) if not quick else (rows + 1, rows + 1, cols + 1)
    cases.append(gemm_case(params, f"GEMM {gm}x{gk}x{gn}", gm, gk, gn, rng))
    cases.append(
        tile_case(params, "stalls (valid gaps, ready low)", [full, ragged], rng, timed=False,
                  valid_gap_share=0.3, ready_low_share=0.4)
    )
    # Short tiles behind a mostly stalled output: OS copies wait for the result bank to empty.
    cases.append(
        tile_case(params, "results stalled, back to back", [ragged, one, full, one], rng, timed=False,
                  ready_low_share=0.7)
    )
    return cases
