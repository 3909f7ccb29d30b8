"""Golden numpy model of the binarized GEMM core and the cases its benches run.

Same ``Case`` / ``Tile`` records as the integer core (``hdl.benches.golden``), JSON-serializable for a
cocotb bench in another process: operands as {-1, +1} matrices, the stream beats in the order
docs/core-protocol.md ("The binarized core") specifies (packed words, lane 0 lowest; lanes beyond the
tile and bits beyond the reduction filled with random don't-care values), the expected sums from the
XNOR-popcount model of ``hdl.binary`` (checked against the plain integer product A @ B), and the cycles
the simulator predicts, from the contract both share (``codesign.contract.binary_timing``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from codesign.contract import binary_timing
from hdl.benches.golden import Case, Tile, pack_lanes
from hdl.binary import pack_words, to_bits, valid_bits_per_word, xnor_popcount_dot
from hdl.params import BinaryCoreParams

__all__ = ["golden_binary_tile", "random_pm1", "make_binary_tile", "binary_tile_case", "binary_gemm_offsets",
           "binary_gemm_case", "assemble_binary_gemm", "binary_standard_cases"]


def golden_binary_tile(a, b, word_bits: int) -> np.ndarray:
    """C = A @ B over {-1, +1}, beat by beat through the XNOR-popcount model (packed words, masked last word);
    asserts it equals the integer product."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    k = a.shape[1]
    a_words = pack_words(to_bits(a), word_bits)
    b_words = pack_words(to_bits(b.T), word_bits)
    valid = valid_bits_per_word(k, word_bits)
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.int64)
    for r in range(a.shape[0]):
        for c in range(b.shape[1]):
            out[r, c] = sum(xnor_popcount_dot(a_words[r][t], b_words[c][t], n) for t, n in enumerate(valid))
    assert np.array_equal(out, a @ b), "XNOR-popcount model disagrees with A @ B"
    return out


def random_pm1(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.choice(np.array([-1, 1], dtype=np.int64), size=shape)


def _random_word(rng: np.random.Generator, bits: int) -> int:
    return int.from_bytes(rng.bytes((bits + 7) // 8), "little") & ((1 << bits) - 1)


def make_binary_tile(params: BinaryCoreParams, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> Tile:
    """The stream beats and expected sums of one tile (``a``: m x k, ``b``: k x n, values -1 / +1)."""
    m, k = a.shape
    k2, n = b.shape
    assert k == k2
    rows, cols, wb = params.rows, params.cols, params.word_bits
    if not (1 <= m <= rows and 1 <= k <= params.max_k and 1 <= n <= cols):
        raise ValueError(f"tile {m}x{k}x{n} exceeds the core's {rows}x{params.max_k}x{cols}")
    words = binary_timing.k_words(k, wb)
    valid = valid_bits_per_word(k, wb)

    def lanes(packed, count: int) -> list[int]:
        """One beat per word: real words in the first lanes (their bits past the reduction random), random
        words in the others."""
        beats = []
        for t in range(words):
            real = [int(word) for word in packed[:, t]]
            junk = ((1 << wb) - 1) ^ ((1 << valid[t]) - 1)
            real = [word | (_random_word(rng, wb) & junk) for word in real]
            filler = [_random_word(rng, wb) for _ in range(count - len(real))]
            beats.append(pack_lanes(real + filler, wb))
        return beats

    act_beats = lanes(pack_words(to_bits(a), wb), rows)
    weight_beats = lanes(pack_words(to_bits(b.T), wb), cols)
    expected = golden_binary_tile(a, b, wb)
    return Tile(m, k, n, a.tolist(), b.tolist(), weight_beats, act_beats, expected.tolist())


def _predict(params: BinaryCoreParams, tiles: list[Tile]) -> tuple[list[int], int]:
    shapes = [(t.m, t.k, t.n) for t in tiles]
    rows, cols, wb = params.rows, params.cols, params.word_bits
    per_tile = [binary_timing.tile_cycles(*shape, rows, cols, wb) for shape in shapes]
    return per_tile, binary_timing.sequence_cycles(shapes, rows, cols, wb)


def binary_tile_case(params: BinaryCoreParams, name: str, shapes: list[tuple[int, int, int]],
                     rng: np.random.Generator, *, extreme: str | None = None, **options: Any) -> Case:
    """Independent random tiles of the given (m, k, n) shapes (k in bits), back to back.

    ``extreme``: "agree" makes every A and B value +1 (every dot product is +k, the largest), "disagree"
    makes A +1 and B -1 (every dot product is -k, the most negative).
    """
    tiles = []
    for m, k, n in shapes:
        if extreme is None:
            a, b = random_pm1(rng, (m, k)), random_pm1(rng, (k, n))
        else:
            a = np.ones((m, k), dtype=np.int64)
            b = np.full((k, n), {"agree": 1, "disagree": -1}[extreme], dtype=np.int64)
        tiles.append(make_binary_tile(params, a, b, rng))
    per_tile, total = _predict(params, tiles)
    return Case(name, tiles, predicted_tile_cycles=per_tile, predicted_cycles=total, **options)


def binary_gemm_offsets(params: BinaryCoreParams, m: int, k: int, n: int) -> list[tuple[int, int, int, int, int, int]]:
    """(m0, k0, n0, tm, tk, tn) of each tile, as ``binary_timing.gemm_tile_offsets`` cuts the GEMM (K in
    chunks of ``params.k_tile``), checked against ``predict_gemm_tiles``."""
    rows, cols, wb = params.rows, params.cols, params.word_bits
    out = binary_timing.gemm_tile_offsets(m, k, n, rows, cols, wb, k_tile=params.k_tile)
    tiles, _ = binary_timing.predict_gemm_tiles(m, k, n, rows, cols, wb, k_tile=params.k_tile)
    if [(tm, tk, tn) for *_, tm, tk, tn in out] != [tuple(t) for t in tiles]:
        raise AssertionError(f"tile order differs from codesign.contract.binary_timing: {tiles}")
    return out


def binary_gemm_case(params: BinaryCoreParams, name: str, m: int, k: int, n: int, rng: np.random.Generator,
                     **options: Any) -> Case:
    """A whole binarized GEMM cut into tiles as the simulator cuts it; cycles from ``predict_gemm_tiles``."""
    a, b = random_pm1(rng, (m, k)), random_pm1(rng, (k, n))
    tiles = [make_binary_tile(params, a[m0:m0 + tm, k0:k0 + tk], b[k0:k0 + tk, n0:n0 + tn], rng)
             for m0, k0, n0, tm, tk, tn in binary_gemm_offsets(params, m, k, n)]
    per_tile, _ = _predict(params, tiles)
    _, total = binary_timing.predict_gemm_tiles(m, k, n, params.rows, params.cols, params.word_bits,
                                                k_tile=params.k_tile)
    gemm = {"m": m, "k": k, "n": n, "a": a.tolist(), "b": b.tolist(), "expected": (a @ b).tolist()}
    return Case(name, tiles, predicted_tile_cycles=per_tile, predicted_cycles=total, gemm=gemm, **options)


def assemble_binary_gemm(params: BinaryCoreParams, case: Case, tile_results: list[list[list[int]]]) -> np.ndarray:
    """The GEMM result from its tiles' results (rows x cols each): partial sums over K tiles added by the host."""
    g = case.gemm
    assert g is not None
    out = np.zeros((g["m"], g["n"]), dtype=np.int64)
    for (m0, k0, n0, tm, tk, tn), rows in zip(binary_gemm_offsets(params, g["m"], g["k"], g["n"]), tile_results):
        out[m0:m0 + tm, n0:n0 + tn] += np.asarray(rows, dtype=np.int64)[:tm, :tn]
    return out


def binary_standard_cases(params: BinaryCoreParams, seed: int) -> list[Case]:
    """The cases ``codesign verify --array binary`` runs: a full tile, ragged tiles (K not a multiple of
    word_bits, and one that is, with m, n below the array), 1x1 tiles, extremes over the longest reduction,
    back to back, a tiled GEMM whose sizes are not multiples of the tile, one with stalls on every stream and
    short tiles behind a mostly stalled ``results``."""
    rng = np.random.default_rng(seed)
    rows, cols, wb, max_k = params.rows, params.cols, params.word_bits, params.max_k
    full = (rows, min(max_k, 3 * wb), cols)
    ragged = (max(1, rows - 1), min(max_k, 2 * wb + max(1, wb // 3)) if wb > 1 else min(max_k, 5), max(1, cols - 1))
    multiple = (max(1, rows // 2), min(max_k, 2 * wb), cols)
    one = (1, 1, 1)
    cases = [
        binary_tile_case(params, "full tile", [full], rng),
        binary_tile_case(params, "ragged tile (k mod word_bits != 0)", [ragged], rng),
        binary_tile_case(params, "k a multiple of word_bits", [multiple], rng),
        binary_tile_case(params, "1x1x1 tile", [one], rng),
        binary_tile_case(params, f"1x{min(max_k, wb)}x1 tile (one full word)", [(1, min(max_k, wb), 1)], rng),
        binary_tile_case(params, "extremes +k (all agree)", [(rows, max_k, cols)], rng, extreme="agree"),
        binary_tile_case(params, "extremes -k (all disagree)", [(rows, max_k, cols)], rng, extreme="disagree"),
        binary_tile_case(params, "back to back", [full, ragged, one, multiple, one, full], rng),
    ]
    # K over several chunks when the core's K tile is short (tests build such cores), else over a few words.
    gm, gk, gn = 2 * rows + 1, min(2 * params.k_tile + wb // 2 + 1, 3 * wb + 1), 2 * cols - 1
    cases.append(binary_gemm_case(params, f"GEMM {gm}x{gk}x{gn}", gm, gk, gn, rng))
    cases.append(binary_tile_case(params, "stalls (valid gaps, ready low)", [full, ragged, one], rng, timed=False,
                                  valid_gap_share=0.3, ready_low_share=0.4))
    cases.append(binary_tile_case(params, "results stalled, back to back", [one, ragged, one, one, full], rng,
                                  timed=False, ready_low_share=0.7))
    return cases
